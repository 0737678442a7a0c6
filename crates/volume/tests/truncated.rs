//! Another program truncating a volume's data file must never crash the reader (a
//! SIGBUS with a mapped file): every read gets E_CORRUPT naming the volume and offset.

use plexus_volume::{Access, BlockDevice, Fill, Volume};
use std::fs::OpenOptions;
use std::sync::atomic::{AtomicBool, Ordering};

const SIZE: u64 = 16 << 20;

fn filled(dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
    let p = dir.path().join(format!("{name}.img"));
    let v = Volume::create(&p, SIZE, 4096).expect("create");
    plexus_volume::fill(&v, 0, SIZE, Fill::Random(7)).expect("fill");
    v.flush().expect("flush");
    p
}

/// Truncates the data file behind the volume's back, as another program would.
fn truncate(p: &std::path::Path, len: u64) {
    OpenOptions::new().write(true).open(p).expect("open for truncate").set_len(len).expect("truncate");
}

#[test]
fn a_read_past_the_truncated_end_is_corrupt_naming_volume_and_offset() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = filled(&d, "victim");
    let v = Volume::open(&p, Access::ReadOnly).expect("open");
    truncate(&p, 1 << 20);
    // Inside what is left: still readable.
    let mut head = vec![0u8; 4096];
    v.read_at(0, &mut head).expect("read before the new end");
    // Past the new end: an error, never zeros and never a signal.
    let mut buf = vec![0xAAu8; 8192];
    let e = v.read_at(8 << 20, &mut buf).expect_err("read past the truncated end");
    assert_eq!(e.code(), "E_CORRUPT");
    let msg = e.to_string();
    assert!(msg.contains("volume victim"), "{msg}");
    assert!(msg.contains(&format!("offset {}", 8 << 20)), "{msg}");
    // Straddling the new end: the read fails at the end, it is not padded with zeros.
    let e = v.read_at((1 << 20) - 4096, &mut buf).expect_err("read across the truncated end");
    assert_eq!(e.code(), "E_CORRUPT");
    assert!(e.to_string().contains(&format!("offset {}", 1 << 20)), "{e}");
}

#[test]
fn a_checksum_of_a_truncated_volume_is_corrupt() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = filled(&d, "victim");
    let v = Volume::open(&p, Access::ReadOnly).expect("open");
    truncate(&p, 0);
    let e = v.checksum(0, SIZE).expect_err("checksum after truncation");
    assert_eq!(e.code(), "E_CORRUPT");
    assert!(e.to_string().contains("volume victim") && e.to_string().contains("offset 0"), "{e}");
}

#[test]
fn truncating_while_checksums_run_gives_errors_not_a_crash() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = filled(&d, "victim");
    let v = Volume::open(&p, Access::ReadOnly).expect("open");
    let truncated = AtomicBool::new(false);
    let err = std::thread::scope(|s| {
        let reader = s.spawn(|| loop {
            let after = truncated.load(Ordering::SeqCst);
            match v.checksum(0, SIZE) {
                Ok(_) if !after => continue,
                Ok(sum) => panic!("a checksum begun after the truncation succeeded: {sum}"),
                Err(e) => return e,
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(30));
        truncate(&p, 4 << 20);
        truncated.store(true, Ordering::SeqCst);
        reader.join().expect("reader thread")
    });
    assert_eq!(err.code(), "E_CORRUPT", "{err}");
    assert!(err.to_string().contains("volume victim"), "{err}");
}

#[test]
fn a_volume_copy_from_a_truncated_source_fails_in_the_kernel_and_buffered_paths() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = filled(&d, "src");
    let src = Volume::open(&p, Access::ReadOnly).expect("open src");
    let dst = Volume::create(&d.path().join("dst.img"), SIZE, 4096).expect("create dst");
    truncate(&p, 2 << 20);
    let mut buf = vec![0u8; SIZE as usize];
    let e = src.read_at(0, &mut buf).expect_err("buffered read");
    assert_eq!(e.code(), "E_CORRUPT");
    let (from, to) = (src.backing_file(false).expect("source file"), dst.backing_file(true).expect("destination file"));
    match from.copy_to(&to, 0, SIZE) {
        None => {} // the kernel cannot copy here: the buffered path above is the one used
        Some(r) => {
            let e = r.expect_err("kernel copy past the truncated end");
            assert_eq!(e.code(), "E_CORRUPT");
            assert!(e.to_string().contains("volume src") && e.to_string().contains(&format!("offset {}", 2 << 20)), "{e}");
        }
    }
    // A read-only volume does not lend its file for writing.
    assert!(src.backing_file(true).is_none());
}

#[test]
fn a_source_truncated_between_the_two_splices_of_a_kernel_copy_is_corrupt_naming_the_source() {
    // The kernel copy splices source pages into a pipe, then the pipe into the
    // destination. A truncation in between leaves the pipe holding pages the file no
    // longer has: the write side then fails (ENODATA), which is the source's fault.
    let d = tempfile::tempdir().expect("tempdir");
    let p = filled(&d, "src");
    let src = Volume::open(&p, Access::ReadOnly).expect("open src");
    let dst = Volume::create(&d.path().join("dst.img"), SIZE, 4096).expect("create dst");
    let (from, to) = (src.backing_file(false).expect("source file"), dst.backing_file(true).expect("destination file"));
    if from.copy_to(&to, 0, 4096).is_none() {
        return; // no kernel copy here
    }
    let stop = AtomicBool::new(false);
    let errors = std::thread::scope(|s| {
        let cutter = s.spawn(|| {
            let f = OpenOptions::new().write(true).open(&p).expect("open for truncate");
            while !stop.load(Ordering::SeqCst) {
                // Pages in the cache, for the splices to take; then cut them away.
                let _ = std::fs::read(&p);
                std::thread::sleep(std::time::Duration::from_millis(2));
                f.set_len(0).expect("truncate");
                f.set_len(SIZE).expect("extend");
            }
        });
        let mut errors: Vec<plexus_volume::VolumeError> = Vec::new();
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(4)
            && errors.iter().filter(|e| e.code() != "E_CORRUPT").count() < 3
            && errors.len() < 2000
        {
            if let Some(Err(e)) = from.copy_to(&to, 0, SIZE) {
                errors.push(e);
            }
        }
        stop.store(true, Ordering::SeqCst);
        cutter.join().expect("cutter");
        errors
    });
    assert!(!errors.is_empty(), "no copy ever met the truncation");
    let wrong: Vec<String> = errors
        .iter()
        .filter(|e| e.code() != "E_CORRUPT" || !e.to_string().contains("volume src"))
        .map(|e| format!("{}: {e}", e.code()))
        .collect();
    assert!(wrong.is_empty(), "{} of {} errors do not blame the source: {:?}", wrong.len(), errors.len(), &wrong[..wrong.len().min(3)]);
}
