//! Zeroing, hole punching, allocation runs and read-ahead hints, on volumes and on the
//! in-memory and fault-injecting devices. Allocation is reported at the file system's
//! block size, so the writes here are 64 KiB-aligned.

use plexus_volume::{fill, Access, BlockDevice, Fault, FaultyDevice, Fill, MemDevice, Volume};
use std::fs;

const K64: u64 = 64 << 10;

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn read(dev: &dyn BlockDevice, offset: u64, len: u64) -> Vec<u8> {
    let mut b = vec![0u8; len as usize];
    dev.read_at(offset, &mut b).expect("read");
    b
}

fn total(runs: &[(u64, bool)]) -> u64 {
    runs.iter().map(|r| r.0).sum()
}

#[test]
fn zeroes_and_punched_holes_read_back_as_zero_and_leave_the_neighbours() {
    let d = dir();
    let v = Volume::create(&d.path().join("z.img"), 1 << 20, 4096).expect("create");
    fill(&v, 0, 1 << 20, Fill::Random(1)).expect("fill");
    let before = read(&v, 0, 1 << 20);
    // Unaligned on both ends, so the file system has partial blocks to zero by hand.
    v.write_zeroes(1000, 70_000, false).expect("zero range");
    v.write_zeroes(300_000, 200_001, true).expect("punch");
    let after = read(&v, 0, 1 << 20);
    for (i, (a, b)) in after.iter().zip(before.iter()).enumerate() {
        let zeroed = (1000..71_000).contains(&i) || (300_000..500_001).contains(&i);
        if zeroed {
            assert_eq!(*a, 0, "byte {i} should be zero");
        } else {
            assert_eq!(a, b, "byte {i} should be untouched");
        }
    }
    v.write_zeroes(5, 0, true).expect("an empty range is nothing to do");
}

#[test]
fn a_fresh_volume_is_one_hole_and_writes_show_as_data_where_they_landed() {
    let d = dir();
    let size = 4 << 20;
    let v = Volume::create(&d.path().join("a.img"), size, 4096).expect("create");
    assert_eq!(v.allocation(0, size).expect("alloc"), vec![(size, true)]);
    v.write_at(4 * K64, &[7u8; K64 as usize]).expect("w1");
    v.write_at(16 * K64, &[8u8; 2 * K64 as usize]).expect("w2");
    let want = vec![(4 * K64, true), (K64, false), (11 * K64, true), (2 * K64, false), (size - 18 * K64, true)];
    assert_eq!(v.allocation(0, size).expect("alloc"), want);
    v.flush().expect("flush");
    assert_eq!(v.allocation(0, size).expect("alloc after fsync"), want);
    // A sub-range is clipped to exactly what was asked.
    assert_eq!(v.allocation(3 * K64 + 100, 2 * K64).expect("clip"), vec![(K64 - 100, true), (K64, false), (100, true)]);
    assert_eq!(v.allocation(4 * K64 + 5, 10).expect("inside data"), vec![(10, false)]);
    assert_eq!(v.allocation(size, 0).expect("empty"), vec![]);
}

#[test]
fn a_punched_hole_comes_back_as_a_hole_and_zeroing_never_shows_data_as_a_hole_wrongly() {
    let d = dir();
    let size = 2 << 20;
    let v = Volume::create(&d.path().join("p.img"), size, 4096).expect("create");
    fill(&v, 0, size, Fill::Pattern(0xaa)).expect("fill");
    assert_eq!(v.allocation(0, size).expect("alloc"), vec![(size, false)]);
    v.write_zeroes(8 * K64, 3 * K64, true).expect("punch");
    assert_eq!(v.allocation(0, size).expect("alloc"), vec![(8 * K64, false), (3 * K64, true), (size - 11 * K64, false)]);
    // Zeroing without punch may leave the space allocated (or unwritten): whatever is
    // reported, every hole reads as zeroes.
    v.write_zeroes(20 * K64, K64, false).expect("zero");
    let runs = v.allocation(0, size).expect("alloc");
    assert_eq!(total(&runs), size);
    let mut at = 0;
    for (len, hole) in runs {
        if hole {
            assert!(read(&v, at, len).iter().all(|&b| b == 0), "hole at {at} reads non-zero");
        }
        at += len;
    }
}

#[test]
fn ranges_past_the_end_are_refused_with_e_range() {
    let d = dir();
    let v = Volume::create(&d.path().join("r.img"), 8 * K64, 4096).expect("create");
    assert_eq!(v.allocation(8 * K64 - 1, 2).expect_err("alloc").code(), "E_RANGE");
    assert_eq!(v.allocation(u64::MAX, 2).expect_err("overflow").code(), "E_RANGE");
    assert_eq!(v.write_zeroes(8 * K64, 1, false).expect_err("zero").code(), "E_RANGE");
    assert_eq!(v.write_zeroes(1, u64::MAX, true).expect_err("punch overflow").code(), "E_RANGE");
    assert_eq!(v.cache(0, 8 * K64 + 1).expect_err("cache").code(), "E_RANGE");
    v.cache(0, 8 * K64).expect("the whole volume can be cached");
    v.cache(3, 0).expect("an empty hint");
}

#[test]
fn a_read_only_volume_refuses_zeroes_but_answers_allocation_and_cache() {
    let d = dir();
    let p = d.path().join("ro.img");
    let v = Volume::create(&p, 4 * K64, 4096).expect("create");
    v.write_at(K64, &[1u8; K64 as usize]).expect("w");
    drop(v);
    let v = Volume::open(&p, Access::ReadOnly).expect("open");
    assert_eq!(v.write_zeroes(0, K64, false).expect_err("zero").code(), "E_READONLY");
    assert_eq!(v.write_zeroes(0, K64, true).expect_err("punch").code(), "E_READONLY");
    assert_eq!(v.write_zeroes(0, 0, true).expect_err("even empty").code(), "E_READONLY");
    assert_eq!(read(&v, K64, K64), vec![1u8; K64 as usize], "nothing was zeroed");
    assert_eq!(v.allocation(0, 4 * K64).expect("alloc"), vec![(K64, true), (K64, false), (2 * K64, true)]);
    v.cache(0, 4 * K64).expect("cache");
}

#[test]
fn allocation_of_a_file_truncated_by_another_program_ends_in_a_hole_and_never_panics() {
    let d = dir();
    let p = d.path().join("t.img");
    let size = 16 * K64;
    let v = Volume::create(&p, size, 4096).expect("create");
    fill(&v, 0, size, Fill::Pattern(3)).expect("fill");
    let other = fs::OpenOptions::new().write(true).open(&p).expect("open behind the volume");
    other.set_len(6 * K64).expect("truncate");
    assert_eq!(v.allocation(0, size).expect("alloc"), vec![(6 * K64, false), (10 * K64, true)]);
    assert_eq!(v.allocation(8 * K64, K64).expect("all past the end"), vec![(K64, true)]);
    other.set_len(0).expect("truncate to nothing");
    assert_eq!(v.allocation(0, size).expect("alloc"), vec![(size, true)]);
    // Zeroing a range past the file's end keeps the size the kernel has (KEEP_SIZE).
    v.write_zeroes(2 * K64, K64, true).expect("punch past the end");
    assert_eq!(fs::metadata(&p).expect("stat").len(), 0);
}

#[test]
fn allocation_racing_truncations_and_rewrites_always_covers_the_range() {
    let d = dir();
    let p = d.path().join("race.img");
    let size = 64 * K64;
    let v = Volume::create(&p, size, 4096).expect("create");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let f = fs::OpenOptions::new().write(true).open(&p).expect("open");
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let _ = f.set_len((i * 7 % 64) * K64);
                let _ = std::os::unix::fs::FileExt::write_all_at(&f, &[1u8; 4096], (i * 13 % 64) * K64);
            }
        });
        for _ in 0..2000 {
            let runs = v.allocation(K64 / 2, size - K64).expect("alloc");
            assert_eq!(total(&runs), size - K64);
            assert!(runs.iter().all(|r| r.0 > 0));
            assert!(runs.windows(2).all(|w| w[0].1 != w[1].1), "adjacent runs of one kind are merged: {runs:?}");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

#[test]
fn memory_devices_zero_in_place_and_report_everything_as_data() {
    let m = MemDevice::new("mem", 4096);
    m.write_at(0, &[9u8; 4096]).expect("w");
    m.write_zeroes(100, 200, true).expect("zero");
    let c = m.contents();
    assert!(c[100..300].iter().all(|&b| b == 0));
    assert!(c[..100].iter().chain(c[300..].iter()).all(|&b| b == 9));
    assert_eq!(m.allocation(10, 100).expect("alloc"), vec![(100, false)]);
    assert_eq!(m.write_zeroes(4000, 97, false).expect_err("range").code(), "E_RANGE");
    assert_eq!(m.allocation(4000, 97).expect_err("range").code(), "E_RANGE");
    m.cache(0, 4096).expect("cache");
}

/// A device that implements only the required methods: it gets the defaults.
struct Plain(MemDevice);

impl BlockDevice for Plain {
    fn label(&self) -> &str {
        self.0.label()
    }
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> plexus_volume::Result<()> {
        self.0.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> plexus_volume::Result<()> {
        self.0.write_at(offset, data)
    }
    fn flush(&self) -> plexus_volume::Result<()> {
        Ok(())
    }
}

#[test]
fn the_defaults_zero_through_writes_in_pieces_and_call_everything_data() {
    let size = 3 << 20;
    let p = Plain(MemDevice::new("plain", size));
    p.write_at(0, &vec![5u8; size]).expect("w");
    // More than one 1 MiB piece, starting and ending inside pieces.
    p.write_zeroes(1000, (2 << 20) + 77, true).expect("zero");
    let c = p.0.contents();
    assert!(c[1000..1000 + (2 << 20) + 77].iter().all(|&b| b == 0));
    assert_eq!(c[999], 5);
    assert_eq!(c[1000 + (2 << 20) + 77], 5);
    assert_eq!(p.allocation(0, size as u64).expect("alloc"), vec![(size as u64, false)]);
    assert_eq!(p.allocation(0, 0).expect("empty"), vec![]);
    assert_eq!(p.write_zeroes(size as u64, 1, false).expect_err("range").code(), "E_RANGE");
    assert_eq!(p.cache(size as u64, 1).expect_err("range").code(), "E_RANGE");
}

#[test]
fn a_faulty_device_counts_zeroes_as_writes_and_fails_queries_once_reads_fail() {
    let d = dir();
    let v = Volume::create(&d.path().join("f.img"), 8 * K64, 4096).expect("create");
    v.write_at(2 * K64, &[1u8; K64 as usize]).expect("w");
    let w = FaultyDevice::new(v, Fault::FailWritesAfter(3 * K64));
    // The inner volume's holes show through the wrapper.
    assert_eq!(w.allocation(0, 8 * K64).expect("alloc"), vec![(2 * K64, true), (K64, false), (5 * K64, true)]);
    w.write_zeroes(0, 2 * K64, true).expect("within the budget");
    w.write_at(0, &[1u8; 4096]).expect("still within");
    assert_eq!(w.write_zeroes(4 * K64, K64, true).expect_err("past the budget").code(), "E_IO");
    assert_eq!(w.write_at(0, b"x").expect_err("writes too").code(), "E_IO");

    let r = FaultyDevice::new(MemDevice::new("m", 8192), Fault::FailReadsAfter(4096));
    r.allocation(0, 8192).expect("before the fault");
    r.cache(0, 8192).expect("before the fault");
    let mut buf = [0u8; 4096];
    r.read_at(0, &mut buf).expect("the budget");
    r.allocation(0, 8192).expect("at the limit, not past it");
    assert!(r.read_at(4096, &mut buf).is_err());
    assert_eq!(r.allocation(0, 8192).expect_err("after the fault").code(), "E_IO");
    assert_eq!(r.cache(0, 8192).expect_err("after the fault").code(), "E_IO");
    r.write_zeroes(0, 10, false).expect("a read fault does not stop writes");
}

#[test]
fn zeroing_falls_back_to_writes_where_the_file_system_refuses_zero_range() {
    // tmpfs punches holes but has no ZERO_RANGE (EOPNOTSUPP): the fallback path.
    let Ok(d) = tempfile::tempdir_in("/dev/shm") else {
        eprintln!("no /dev/shm here: the fallback is not exercised");
        return;
    };
    let v = Volume::create(&d.path().join("shm.img"), 8 * K64, 4096).expect("create");
    fill(&v, 0, 8 * K64, Fill::Pattern(0x55)).expect("fill");
    v.write_zeroes(K64 + 3, K64, false).expect("zero by writes");
    v.write_zeroes(4 * K64, 2 * K64, true).expect("punch");
    let c = read(&v, 0, 8 * K64);
    for (i, b) in c.iter().enumerate() {
        let i = i as u64;
        let zeroed = (K64 + 3..2 * K64 + 3).contains(&i) || (4 * K64..6 * K64).contains(&i);
        assert_eq!(*b, if zeroed { 0 } else { 0x55 }, "byte {i}");
    }
    let runs = v.allocation(0, 8 * K64).expect("alloc");
    assert_eq!(total(&runs), 8 * K64);
    assert!(runs.contains(&(2 * K64, true)), "the punched range is a hole on tmpfs too: {runs:?}");
}
