//! Every way to set bits goes through the durable path (the view lent by `bitmap()`
//! cannot mark), and observers can read a sidecar without writing to it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use plexus_bitmap::DurableBitmap;

const G: u64 = 65536;
const SIZE: u64 = 300 * G + 7;

fn sibling(p: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", p.display()))
}

/// Size, mtime and bytes of each file in `dir` (sorted by name).
fn files(dir: &Path) -> Vec<(String, u64, SystemTime, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .expect("readdir")
        .map(|e| {
            let e = e.expect("entry");
            let m = e.metadata().expect("stat");
            (e.file_name().to_string_lossy().into_owned(), m.len(), m.modified().expect("mtime"), fs::read(e.path()).expect("read"))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Opens as a crashed owner's successor would: the old handle vanished without any
/// close, drop or flush (as under SIGKILL), so only what reached the disk counts.
fn reopen_after_kill(d: DurableBitmap, path: &Path) -> DurableBitmap {
    std::mem::forget(d);
    DurableBitmap::open(path, true).expect("reopen")
}

#[test]
fn merges_and_whole_volume_marks_are_durable_before_they_are_visible() {
    let dir = tempfile::tempdir().expect("tmp");
    let a_path = dir.path().join("a.bitmap");
    let b_path = dir.path().join("b.bitmap");
    let c_path = dir.path().join("c.bitmap");
    let a = DurableBitmap::create(&a_path, SIZE, G, true).expect("a");
    let b = DurableBitmap::create(&b_path, SIZE, G, true).expect("b");
    a.mark_range(0, 1).expect("mark a");
    b.mark_range(10 * G, 3 * G).expect("mark b");
    b.mark_range(SIZE - 1, 1).expect("mark b last");
    assert_eq!(a.merge_from(&b).expect("merge"), 4);
    assert_eq!(a.merge_from(&b).expect("merge again"), 0, "nothing new");
    let a = reopen_after_kill(a, &a_path);
    assert_eq!(a.bitmap().bit_runs().collect::<Vec<_>>(), vec![(0, 1), (10, 3), (300, 1)]);

    let c = DurableBitmap::create(&c_path, SIZE, G, true).expect("c");
    assert_eq!(c.mark_all().expect("mark all"), 301);
    let c = reopen_after_kill(c, &c_path);
    assert_eq!(c.bitmap().count(), 301);
    assert_eq!(c.bitmap().dirty_bytes(), SIZE);

    // Words past the last bit are ignored; a wrong word count is refused.
    let d = DurableBitmap::create(&c_path, SIZE, G, true).expect("d");
    let mut words = vec![0u64; 5];
    words[1] = 1 << 3;
    words[4] = u64::MAX;
    assert_eq!(d.merge_words(&words).expect("words"), 1 + 301 % 64);
    assert_eq!(d.merge_words(&[0; 4]).expect_err("count").code(), "E_SIZE");
    let d = reopen_after_kill(d, &c_path);
    assert!(d.bitmap().test_bit(67));
    assert_eq!(d.bitmap().count(), 1 + 301 % 64);

    let other = DurableBitmap::create(dir.path().join("x.bitmap"), SIZE + G, G, true).expect("x");
    assert_eq!(d.merge_from(&other).expect_err("geometry").code(), "E_SIZE");
}

#[test]
fn a_lazy_clear_is_persisted_by_the_next_snapshot_and_a_crash_only_brings_bits_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("v.bitmap");
    let d = DurableBitmap::create(&p, SIZE, G, true).expect("create");
    d.mark_range(0, 4 * G).expect("mark");
    d.clear_range_in_memory(0, 2 * G).expect("clear");
    assert_eq!(d.bitmap().count(), 2);
    // A write to a cleared granule logs it again.
    d.mark_range(0, 1).expect("mark again");
    let d = reopen_after_kill(d, &p);
    assert_eq!(d.bitmap().count(), 4, "before a snapshot the cleared bits come back");
    d.clear_range_in_memory(0, 2 * G).expect("clear");
    d.flush().expect("flush");
    let d = reopen_after_kill(d, &p);
    assert_eq!(d.bitmap().bit_runs().collect::<Vec<_>>(), vec![(2, 2)]);
}

#[test]
fn reading_a_sidecar_read_only_writes_nothing_and_sees_every_logged_mark() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("v.bitmap");
    let d = DurableBitmap::create(&p, SIZE, G, true).expect("create");
    d.mark_range(5 * G, G).expect("mark");
    d.flush().expect("flush");
    d.mark_range(50 * G, 2 * G).expect("mark logged");
    std::mem::forget(d);
    // A torn append at the end of the log and a leftover snapshot tmp: what an
    // opener would cut and delete, and a read-only reader must leave alone.
    fs::OpenOptions::new().append(true).open(sibling(&p, ".log")).expect("log").write_all(&[0xAB; 19]).expect("tear");
    fs::write(sibling(&p, ".tmp"), b"half a snapshot").expect("tmp");
    let before = files(dir.path());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let b = DurableBitmap::read_only(&p).expect("read only");
    assert_eq!(b.bit_runs().collect::<Vec<_>>(), vec![(5, 1), (50, 2)]);
    assert_eq!(files(dir.path()), before, "nothing written, truncated or removed");

    // Without a log at all, the reader does not create one.
    fs::remove_file(sibling(&p, ".log")).expect("rm log");
    let before = files(dir.path());
    assert_eq!(DurableBitmap::read_only(&p).expect("no log").bit_runs().collect::<Vec<_>>(), vec![(5, 1)]);
    assert_eq!(files(dir.path()), before);
    assert_eq!(DurableBitmap::read_only(dir.path().join("missing.bitmap")).expect_err("missing").code(), "E_NOENT");
}
