//! The checkpoints of an initial copy or resync log what was copied (clear records in
//! the primary bitmap's log) instead of rewriting its snapshot, and a crash after one
//! keeps what was copied and every write made since.

mod common;
use common::*;
use plexus_copy::{CopyControl, CopyOptions};
use plexus_mirror::{Direction, Mirror, Mode};
use plexus_volume::{fill, BlockDevice, Fill};
use std::fs;
use std::path::Path;

const G: u64 = 64 << 10;

/// The generation in the header of the snapshot at `path`.
fn generation(path: &Path) -> u64 {
    let b = fs::read(path).expect("snapshot");
    u64::from_le_bytes(b.get(40..48).and_then(|s| s.try_into().ok()).expect("header"))
}

fn log_len(path: &Path) -> u64 {
    fs::metadata(format!("{}.log", path.display())).expect("log").len()
}

#[test]
fn checkpoints_append_to_the_log_and_never_rewrite_the_snapshot() {
    let d = tempfile::tempdir().expect("tmp");
    // 80 MiB of data: a checkpoint on the way (every 64 MiB) and one at the end.
    let size = 80 << 20;
    let (p, s) = volumes(d.path(), size);
    fill(p.as_ref(), 0, size, Fill::Pattern(0x5a)).expect("fill");
    let m = mirror(d.path(), &p, &s, G, false);
    let snap = files(d.path()).primary_dirty;
    let (gen0, log0) = (generation(&snap), log_len(&snap));
    let opts = CopyOptions { threads: 2, chunk_size: 4 << 20, sync: true, max_rate: 0, uncache_source: false };
    m.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("copy");
    assert_eq!(generation(&snap), gen0, "no snapshot was written");
    let grown = log_len(&snap) - log0;
    assert!(grown > 0 && grown.is_multiple_of(32) && grown <= 2 * 4 * 32, "the log grew by {grown} bytes");
    assert_eq!(m.dirty_bytes(), 0);
    let mut b = vec![0u8; 1 << 20];
    s.read_at(size - (1 << 20), &mut b).expect("read");
    assert!(b.iter().all(|&x| x == 0x5a), "copied to the end");
    // As after a crash: the log alone says everything was copied.
    std::mem::forget(m);
    let m = Mirror::open(p.clone(), s.clone(), &files(d.path()), Mode::Duplex, true).expect("reopen");
    assert_eq!(m.dirty_bytes(), 0);
}

#[test]
fn a_write_into_a_copied_region_after_a_checkpoint_survives_a_crash() {
    let d = tempfile::tempdir().expect("tmp");
    let size = 32 << 20;
    let (p, s) = volumes(d.path(), size);
    fill(p.as_ref(), 0, size, Fill::Random(5)).expect("fill");
    {
        let m = mirror(d.path(), &p, &s, G, false);
        let ctl = CopyControl::new();
        std::thread::scope(|sc| {
            sc.spawn(|| {
                while ctl.progress().0 < 8 << 20 {
                    std::thread::yield_now();
                }
                ctl.cancel();
            });
            // One thread in order: the first granules are copied first.
            let opts = CopyOptions { threads: 1, chunk_size: G, sync: true, max_rate: 0, uncache_source: false };
            let e = m.resync(Direction::Forward, false, &opts, &ctl).expect_err("cancelled");
            assert_eq!(e.code(), "E_CANCELLED");
        });
        // Its checkpoint on the way out logged the copied granules as clear; this write
        // (duplexed, so its intent mark is logged after that clear) must outlive a crash.
        m.write_primary(G, &[0xEE; 4096]).expect("write");
        std::mem::forget(m);
    }
    let m = Mirror::open(p.clone(), s.clone(), &files(d.path()), Mode::Duplex, true).expect("reopen");
    let runs = m.dirty_runs();
    assert!(runs.first().is_some_and(|r| r.offset <= G && G < r.offset + r.len), "{runs:?}");
    let left = m.dirty_bytes();
    assert!(left < size, "the copied part stays copied: {left} bytes left");
    m.resync(Direction::Forward, false, &CopyOptions::default(), &CopyControl::new()).expect("resume");
    assert_eq!(sum(&p), sum(&s));
    let mut b = [0u8; 4096];
    s.read_at(G, &mut b).expect("read");
    assert_eq!(b, [0xEE; 4096]);
}
