//! A stream's fault acted out on its source: fail after N bytes, or hang until cancelled.

use plexus_tape::{write_segment, CopyControl, Drive, FaultySource, FormatOptions, SourceFault};
use plexus_volume::{fill, Fill, MemDevice};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn source(size: usize) -> MemDevice {
    let m = MemDevice::new("src", size);
    fill(&m, 0, size as u64, Fill::Random(3)).expect("fill");
    m
}

fn blank(dir: &std::path::Path) -> Drive {
    let mut o = FormatOptions::new("F00001L9", 16 << 20);
    o.block_size = 64 * 1024;
    Drive::format(&dir.join("c.tape"), &o).expect("format")
}

#[test]
fn a_stream_failing_after_n_bytes_fails_the_segment_and_leaves_the_cartridge_as_it_was() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = source(4 << 20);
    let mut drive = blank(dir.path());
    let ctl = CopyControl::new();
    let faulty = FaultySource::new(&src, SourceFault { fail_after: Some(1 << 20), hang_after: None, ..Default::default() }, &ctl);
    let err = write_segment(&mut drive, &faulty, 0, 4 << 20, &ctl).expect_err("must fail");
    assert_eq!(err.code(), "E_IO");
    assert!(err.to_string().contains("failed after 1048576 bytes"), "{err}");
    assert!(drive.files().is_empty());
    // The same drive takes the segment again once the fault is gone.
    let r = write_segment(&mut drive, &src, 0, 4 << 20, &CopyControl::new()).expect("retry");
    assert_eq!(r.bytes, 4 << 20);
    assert_eq!(drive.files().len(), 1);
}

#[test]
fn a_hanging_stream_blocks_until_cancelled() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = source(4 << 20);
    let mut drive = blank(dir.path());
    let ctl = Arc::new(CopyControl::new());
    let canceller = {
        let ctl = ctl.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            ctl.cancel();
        })
    };
    let started = Instant::now();
    let faulty = FaultySource::new(&src, SourceFault { fail_after: None, hang_after: Some(512 * 1024), ..Default::default() }, &ctl);
    let err = write_segment(&mut drive, &faulty, 0, 4 << 20, &ctl).expect_err("must not complete");
    canceller.join().expect("join");
    // It really waited for the cancel (a timeout is the only way out of a hang).
    assert!(started.elapsed() >= Duration::from_millis(140));
    assert!(["E_IO", "E_CANCELLED"].contains(&err.code()), "{err}");
    assert!(drive.files().is_empty());
}

#[test]
fn a_failed_source_refuses_allocation_queries_too_and_passes_zeroes_through() {
    use plexus_volume::BlockDevice;
    let src = source(1 << 20);
    let ctl = CopyControl::new();
    let faulty = FaultySource::new(&src, SourceFault { fail_after: Some(4096), ..Default::default() }, &ctl);
    assert_eq!(faulty.allocation(0, 1 << 20).expect("before the fault"), vec![(1 << 20, false)]);
    let mut buf = vec![0u8; 8192];
    assert!(faulty.read_at(0, &mut buf).is_err(), "past the budget");
    let e = faulty.allocation(0, 1 << 20).expect_err("after the fault");
    assert_eq!(e.code(), "E_IO");
    assert!(e.to_string().contains("failed after 4096 bytes"), "{e}");
    faulty.write_zeroes(0, 100, true).expect("writes are not faulted");
    assert!(src.contents()[..100].iter().all(|&b| b == 0));
}
