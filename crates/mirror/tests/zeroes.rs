//! Zeroing through a pair follows the rules of a write: duplexed in PAIR, tracked
//! exactly in a split, preserved first in an instant split, and a plex that refuses it
//! is suspended as for a refused write. Plus the runs an exporter reads.

mod common;
use common::*;
use plexus_copy::{CopyControl, CopyOptions};
use plexus_mirror::{split_group, write_zeroes_primary_all, Absent, Direction, Mirror, MirrorFiles, Mode, Side};
use plexus_volume::{fill, Access, BlockDevice, Fault, FaultyDevice, Fill, Volume};
use std::path::Path;
use std::sync::Arc;

const G: u64 = 64 << 10;
const SIZE: u64 = 8 << 20;

fn paired(d: &Path) -> (Arc<Volume>, Arc<Volume>, Mirror) {
    let (p, s) = volumes(d, SIZE);
    fill(p.as_ref(), 0, SIZE, Fill::Random(11)).expect("fill");
    let m = mirror(d, &p, &s, G, false);
    m.resync(Direction::Forward, false, &CopyOptions::default(), &CopyControl::new()).expect("initial copy");
    (p, s, m)
}

fn zeroes(m: &Mirror, secondary: bool, offset: u64, len: u64) -> bool {
    read(m, secondary, offset, len as usize).iter().all(|&b| b == 0)
}

fn plex_files(dir: &Path, name: &str) -> MirrorFiles {
    MirrorFiles {
        primary_dirty: dir.join(format!("{name}.p.bitmap")),
        secondary_dirty: dir.join(format!("{name}.s.bitmap")),
        filled: dir.join(format!("{name}.f.bitmap")),
    }
}

#[test]
fn in_pair_zeroes_reach_both_plexes() {
    let d = tempfile::tempdir().expect("tmp");
    let (p, s, m) = paired(d.path());
    m.write_zeroes_primary(1000, 3 * G, false).expect("zero");
    m.write_zeroes_primary(8 * G, 4 * G, true).expect("punch");
    assert_eq!(sum(&p), sum(&s));
    assert!(zeroes(&m, false, 1000, 3 * G) && zeroes(&m, true, 1000, 3 * G));
    assert!(zeroes(&m, true, 8 * G, 4 * G));
    assert!(!zeroes(&m, true, 12 * G, G), "the neighbour is untouched");
    // The punched, aligned range is a hole on both volumes, and the pair says so.
    assert!(p.allocation(8 * G, 4 * G).expect("alloc p").contains(&(4 * G, true)));
    assert_eq!(m.secondary_allocation(8 * G, 4 * G).expect("alloc s"), vec![(4 * G, true)]);
    // The write-intent bits of the duplexed zeroes, until a clean close clears them.
    assert_eq!(m.dirty_extents(Side::Primary, 0, 13 * G).expect("extents"), vec![(4 * G, true), (4 * G, false), (4 * G, true), (G, false)]);
    m.clear_intent().expect("close");
    assert_eq!(m.dirty_extents(Side::Primary, 0, SIZE).expect("extents"), vec![(SIZE, false)]);
    // A mirrored secondary cannot be zeroed directly, as it cannot be written.
    assert_eq!(m.write_zeroes_secondary(0, G, true).expect_err("mirrored").code(), "E_STATE");
}

#[test]
fn in_a_split_zeroes_mark_exactly_the_touched_granules_and_the_resync_copies_them() {
    let d = tempfile::tempdir().expect("tmp");
    let (p, s, m) = paired(d.path());
    m.quiesce().split().expect("split");
    let frozen = sum(&s);
    // Granules 10, 11 and 12: a range starting inside 10 and ending inside 12.
    m.write_zeroes_primary(10 * G + 5, 2 * G, true).expect("punch");
    m.write_zeroes_primary(20 * G, G, false).expect("zero one aligned granule");
    assert_eq!(sum(&s), frozen, "the split image does not change");
    let want = vec![(10 * G, false), (3 * G, true), (7 * G, false), (G, true), (SIZE - 21 * G, false)];
    assert_eq!(m.dirty_extents(Side::Primary, 0, SIZE).expect("extents"), want);
    assert_eq!(m.dirty_extents(Side::Secondary, 0, SIZE).expect("extents"), vec![(SIZE, false)]);
    // Clipped to the range asked, at both ends.
    assert_eq!(m.dirty_extents(Side::Primary, 9 * G + 5, 2 * G).expect("clip"), vec![(G - 5, false), (G + 5, true)]);
    assert_eq!(m.dirty_extents(Side::Primary, 11 * G + 1, 10).expect("inside"), vec![(10, true)]);
    assert_eq!(m.dirty_extents(Side::Primary, SIZE, 0).expect("empty"), vec![]);
    assert_eq!(m.dirty_extents(Side::Primary, SIZE - 1, 2).expect_err("past the end").code(), "E_RANGE");
    // The split secondary can be zeroed too; that marks its own bitmap.
    m.write_zeroes_secondary(30 * G, 10, false).expect("zero s");
    assert_eq!(m.dirty_extents(Side::Secondary, 29 * G, 3 * G).expect("s"), vec![(G, false), (G, true), (G, false)]);
    assert_eq!(m.dirty_bytes(), 5 * G);
    let r = m.resync(Direction::Forward, false, &CopyOptions::default(), &CopyControl::new()).expect("resync");
    assert_eq!(r.bytes_copied, 5 * G, "exactly the granules the zeroes touched");
    assert_eq!(sum(&p), sum(&s));
}

#[test]
fn in_an_instant_split_the_secondary_keeps_the_old_image_when_the_primary_is_zeroed() {
    let d = tempfile::tempdir().expect("tmp");
    let (p, s) = volumes(d.path(), SIZE);
    fill(p.as_ref(), 0, SIZE, Fill::Random(12)).expect("fill");
    let at_split = sum(&p);
    let m = mirror(d.path(), &p, &s, G, true);
    assert_eq!(m.mode(), Mode::Instant);
    // Nothing filled yet: everything comes from the primary and is reported as data.
    assert_eq!(m.secondary_allocation(0, SIZE).expect("alloc"), vec![(SIZE, false)]);
    let old = read(&m, true, 3 * G, 3 * G as usize);
    m.write_zeroes_primary(3 * G + 7, 2 * G, true).expect("punch the primary");
    assert!(zeroes(&m, false, 3 * G + 7, 2 * G));
    assert_eq!(read(&m, true, 3 * G, 3 * G as usize), old, "the image is preserved");
    assert_eq!(m.unfilled_bytes(), SIZE - 3 * G, "exactly the touched granules were filled first");
    let mut raw = vec![0u8; 3 * G as usize];
    s.read_at(3 * G, &mut raw).expect("raw");
    assert_eq!(raw, old, "on the secondary itself");
    assert_eq!(m.dirty_extents(Side::Primary, 2 * G, 5 * G).expect("extents"), vec![(G, false), (3 * G, true), (G, false)]);
    // Zeroing the secondary of an instant split fills the granule first, so the rest of
    // it keeps the image; the punched part is then the secondary's own hole.
    let around = read(&m, true, 8 * G, 2 * G as usize);
    m.write_zeroes_secondary(8 * G, G, true).expect("punch s");
    let after = read(&m, true, 8 * G, 2 * G as usize);
    assert!(after[..G as usize].iter().all(|&b| b == 0));
    assert_eq!(after[G as usize..], around[G as usize..]);
    assert_eq!(m.secondary_allocation(7 * G, 3 * G).expect("alloc"), vec![(G, false), (G, true), (G, false)]);
    m.fill(&CopyOptions::default(), &CopyControl::new()).expect("fill");
    assert_eq!(m.mode(), Mode::Track);
    m.write_secondary(8 * G, &around[..G as usize]).expect("undo the secondary's zeroes");
    assert_eq!(sum(&s), at_split);
}

#[test]
fn a_secondary_refusing_duplexed_zeroes_suspends_the_pair_as_a_refused_write_does() {
    let d = tempfile::tempdir().expect("tmp");
    let (p, _) = volumes(d.path(), SIZE);
    let c = Arc::new(Volume::create(&d.path().join("c.img"), SIZE, 4096).expect("c"));
    fill(p.as_ref(), 0, SIZE, Fill::Random(13)).expect("fill");
    // b takes the initial copy, then refuses everything (a disk going bad).
    let b = Arc::new(FaultyDevice::new(Volume::open(&d.path().join("s.img"), Access::ReadWrite).expect("s"), Fault::FailWritesAfter(SIZE)));
    let mb = Mirror::create(p.clone(), b.clone(), &plex_files(d.path(), "b"), G, true, false).expect("b");
    let mc = Mirror::create_sharing(p.clone(), c.clone(), &plex_files(d.path(), "c"), G, true, false, Some(&mb)).expect("c");
    let opts = CopyOptions::default();
    mb.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("copy b");
    mc.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("copy c");

    write_zeroes_primary_all(&[&mb, &mc], 2 * G + 100, G, true).expect("acknowledged with one plex failing");
    assert_eq!(mb.mode(), Mode::Track, "b is suspended at once");
    assert!(mb.failure().is_some_and(|f| f.contains("write zeroes")), "{:?}", mb.failure());
    assert_eq!(mc.mode(), Mode::Duplex);
    assert_eq!(sum(&p), sum(&c), "the healthy plex got the zeroes");
    assert_eq!(mb.dirty_extents(Side::Primary, 0, 5 * G).expect("extents"), vec![(2 * G, false), (2 * G, true), (G, false)]);
    assert_eq!(mb.quiesce().split().expect_err("split").code(), "E_STATE");
    assert_eq!(split_group(&[&mc, &mb]).expect_err("group").code(), "E_STATE");
    assert_eq!(mb.clear_intent().expect_err("close").code(), "E_STATE");

    // The disk comes back: the resync is differential and makes the plexes equal.
    std::mem::forget(mb);
    let healthy = Arc::new(Volume::open(&d.path().join("s.img"), Access::ReadWrite).expect("s"));
    let mb = Mirror::open(p.clone(), healthy.clone(), &plex_files(d.path(), "b"), Mode::Track, true).expect("reopen");
    let r = mb.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("resync");
    // After the owner died, the write-intent log names whole 4 MiB extents.
    assert_eq!(r.bytes_copied, plexus_bitmap::INTENT_EXTENT.min(SIZE));
    assert_eq!(sum(&p), sum(&healthy));
}

#[test]
fn a_missing_secondary_refuses_zeroes_and_allocation_while_the_primary_is_still_tracked() {
    let d = tempfile::tempdir().expect("tmp");
    let (p, s, m) = paired(d.path());
    m.quiesce().split().expect("split");
    drop(m);
    let absent: Arc<dyn BlockDevice> = Arc::new(Absent::new("s", SIZE, "its disk is offline"));
    let m = Mirror::open(p.clone(), absent, &files(d.path()), Mode::Track, true).expect("open over the stand-in");
    m.write_zeroes_primary(4 * G, G, true).expect("the primary is zeroed and tracked");
    assert_eq!(m.dirty_extents(Side::Primary, 3 * G, 3 * G).expect("extents"), vec![(G, false), (G, true), (G, false)]);
    assert_eq!(m.write_zeroes_secondary(0, G, true).expect_err("absent").code(), "E_IO");
    assert_eq!(m.secondary_allocation(0, G).expect_err("absent").code(), "E_IO");
    drop(s);
}

#[test]
fn zeroes_are_range_checked_and_an_empty_range_is_nothing() {
    let d = tempfile::tempdir().expect("tmp");
    let (_p, _s, m) = paired(d.path());
    assert_eq!(m.write_zeroes_primary(SIZE - 1, 2, true).expect_err("past the end").code(), "E_RANGE");
    assert_eq!(m.write_zeroes_primary(1, u64::MAX, false).expect_err("overflow").code(), "E_RANGE");
    m.write_zeroes_primary(SIZE, 0, true).expect("empty");
    assert_eq!(m.secondary_allocation(SIZE, 1).expect_err("past the end").code(), "E_RANGE");
    m.quiesce().split().expect("split");
    assert_eq!(m.write_zeroes_secondary(SIZE, 1, true).expect_err("past the end").code(), "E_RANGE");
    m.write_zeroes_secondary(0, 0, true).expect("empty");
    assert_eq!(m.dirty_bytes(), 0, "nothing was marked");
    // Plexes that do not share their region locks are refused, as for writes.
    let d2 = tempfile::tempdir().expect("tmp");
    let (_p2, _s2, other) = paired(d2.path());
    assert_eq!(write_zeroes_primary_all(&[&m, &other], 0, G, true).expect_err("locks").code(), "E_STATE");
    write_zeroes_primary_all(&[], 0, G, true).expect("no plex, nothing to do");
}
