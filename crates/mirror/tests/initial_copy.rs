//! The initial copy and resync never overwrite a region with data older than a write
//! that raced them.

mod common;
use common::*;
use plexus_copy::{CopyControl, CopyOptions};
use plexus_mirror::{Direction, Mode};
use plexus_volume::{fill, Fill};
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn writes_racing_the_initial_copy_end_up_on_both_sides() {
    let d = tempfile::tempdir().expect("tmp");
    let size = 64 << 20;
    let (p, s) = volumes(d.path(), size);
    fill(p.as_ref(), 0, size, Fill::Random(1)).expect("fill");
    let m = mirror(d.path(), &p, &s, 64 << 10, false);
    assert_eq!(m.mode(), Mode::Duplex);
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        for t in 0..2u64 {
            let (m, stop) = (&m, &stop);
            sc.spawn(move || {
                let mut x = 0x1234_5678u64 + t;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) || n < 200 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let off = (x >> 20) % (size - 70_000);
                    let len = 1 + (x >> 50) % 70_000;
                    m.write_primary(off, &vec![(x >> 8) as u8; len as usize]).expect("write");
                    n += 1;
                }
            });
        }
        let opts = CopyOptions { threads: 2, chunk_size: 256 << 10, sync: true, max_rate: 0, uncache_source: false };
        let r = m.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("copy");
        assert_eq!(r.bytes_copied, size);
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(sum(&p), sum(&s));
}

#[test]
fn the_secondary_of_a_duplexing_pair_cannot_be_written() {
    let d = tempfile::tempdir().expect("tmp");
    let (p, s) = volumes(d.path(), 1 << 20);
    let m = mirror(d.path(), &p, &s, 64 << 10, false);
    let e = m.write_secondary(0, b"x").expect_err("duplex");
    assert_eq!(e.code(), "E_STATE");
}

#[test]
fn a_smaller_secondary_is_refused_and_a_larger_one_mirrors_the_primary_size_only() {
    use plexus_volume::{fill, BlockDevice, Fill, Volume};
    let d = tempfile::tempdir().expect("tmp");
    let p = std::sync::Arc::new(Volume::create(&d.path().join("a.img"), 1 << 20, 4096).expect("a"));
    let s = std::sync::Arc::new(Volume::create(&d.path().join("b.img"), 2 << 20, 4096).expect("b"));
    let e = plexus_mirror::Mirror::create(s.clone(), p.clone(), &files(d.path()), 65536, true, false).err().expect("smaller");
    assert_eq!(e.code(), "E_SIZE");

    fill(p.as_ref(), 0, 1 << 20, Fill::Random(1)).expect("fill p");
    fill(s.as_ref(), 1 << 20, 1 << 20, Fill::Random(2)).expect("fill s tail");
    let tail = s.checksum(1 << 20, 1 << 20).expect("tail");
    let m = plexus_mirror::Mirror::create(p.clone(), s.clone(), &files(d.path()), 65536, true, false).expect("larger");
    m.resync(plexus_mirror::Direction::Forward, false, &plexus_copy::CopyOptions::default(), &plexus_copy::CopyControl::new())
        .expect("copy");
    assert_eq!(m.size(), 1 << 20);
    assert_eq!(p.checksum(0, 1 << 20).expect("p"), s.checksum(0, 1 << 20).expect("s head"));
    assert_eq!(s.checksum(1 << 20, 1 << 20).expect("tail after"), tail);
    assert_eq!(s.size(), 2 << 20);
}

#[test]
fn an_interrupted_copy_resumes_from_the_durable_bitmap() {
    let d = tempfile::tempdir().expect("tmp");
    let size = 32 << 20;
    let (p, s) = volumes(d.path(), size);
    fill(p.as_ref(), 0, size, Fill::Random(9)).expect("fill");
    {
        let m = mirror(d.path(), &p, &s, 64 << 10, false);
        let ctl = CopyControl::new();
        // One thread, tiny chunks, cancelled once part is done: a stand-in for a crash.
        std::thread::scope(|sc| {
            sc.spawn(|| {
                while ctl.progress().0 < 8 << 20 {
                    std::thread::yield_now();
                }
                ctl.cancel();
            });
            let opts = CopyOptions { threads: 1, chunk_size: 64 << 10, sync: true, max_rate: 0, uncache_source: false };
            let e = m.resync(Direction::Forward, false, &opts, &ctl).expect_err("cancelled");
            assert_eq!(e.code(), "E_CANCELLED");
        });
    }
    let m = plexus_mirror::Mirror::open(p.clone(), s.clone(), &files(d.path()), Mode::Duplex, true).expect("reopen");
    let left = m.dirty_bytes();
    assert!(left > 0 && left < size, "left {left}");
    let r = m.resync(Direction::Forward, false, &CopyOptions::default(), &CopyControl::new()).expect("resume");
    assert_eq!(r.bytes_copied, left, "only what was left is copied");
    assert_eq!(sum(&p), sum(&s));
}
