//! A duplexed write that the secondary refuses suspends the pair (PSUE) at once, in the
//! engine: the region stays recorded durably, the other plexes still get the write, no
//! split or close can clear the record, and the resync afterwards is differential.

mod common;
use common::*;
use plexus_copy::{CopyControl, CopyOptions};
use plexus_mirror::{split_group, write_primary_all, Direction, Mirror, MirrorFiles, Mode};
use plexus_volume::{fill, Access, Fault, FaultyDevice, Fill, Volume};
use std::path::Path;
use std::sync::Arc;

const G: u64 = 64 << 10;
const SIZE: u64 = 8 << 20;

fn plex_files(dir: &Path, name: &str) -> MirrorFiles {
    MirrorFiles {
        primary_dirty: dir.join(format!("{name}.p.bitmap")),
        secondary_dirty: dir.join(format!("{name}.s.bitmap")),
        filled: dir.join(format!("{name}.f.bitmap")),
    }
}

/// The secondary `b` behind a device that takes the initial copy and `extra` more bytes,
/// then refuses every write (a disk going bad).
fn failing_after(dir: &Path, extra: u64) -> Arc<FaultyDevice<Volume>> {
    let v = Volume::open(&dir.join("s.img"), Access::ReadWrite).expect("open s");
    Arc::new(FaultyDevice::new(v, Fault::FailWritesAfter(SIZE + extra)))
}

#[test]
fn a_refused_duplexed_write_suspends_the_plex_keeps_the_bits_and_still_writes_the_other_plex() {
    let d = tempfile::tempdir().expect("tmp");
    let (p, _) = volumes(d.path(), SIZE);
    let c = Arc::new(Volume::create(&d.path().join("c.img"), SIZE, 4096).expect("c"));
    fill(p.as_ref(), 0, SIZE, Fill::Random(5)).expect("fill");
    let b = failing_after(d.path(), 4096);
    let mb = Mirror::create(p.clone(), b.clone(), &plex_files(d.path(), "b"), G, true, false).expect("b");
    let mc = Mirror::create_sharing(p.clone(), c.clone(), &plex_files(d.path(), "c"), G, true, false, Some(&mb)).expect("c");
    let opts = CopyOptions::default();
    mb.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("copy b");
    mc.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("copy c");
    write_primary_all(&[&mb, &mc], 0, &[1u8; 4096]).expect("the last write b takes");
    assert_eq!(mb.failure(), None);

    // b refuses this one: the write is still acknowledged (the primary and c have it).
    write_primary_all(&[&mb, &mc], 3 * G + 100, &[2u8; 8192]).expect("write with one plex failing");
    assert_eq!(mb.mode(), Mode::Track, "b is suspended at once");
    assert!(mb.failure().is_some_and(|f| f.contains("failed")), "{:?}", mb.failure());
    assert_eq!(mc.mode(), Mode::Duplex);
    assert_eq!(mc.failure(), None);
    assert_eq!(sum(&p), sum(&c), "the healthy plex got the write");
    // Later writes are tracked for b, duplexed to c.
    write_primary_all(&[&mb, &mc], 7 * G, &[3u8; 10]).expect("later write");
    assert_eq!(sum(&p), sum(&c));
    let dirty: Vec<(u64, u64)> = mb.dirty_runs().iter().map(|r| (r.offset, r.len)).collect();
    assert_eq!(dirty, vec![(0, G), (3 * G, G), (7 * G, G)], "the first granule's write-intent bit is still set too");

    // Nothing may clear the record: not a split, a group split, or a clean close.
    assert_eq!(mb.quiesce().split().expect_err("split").code(), "E_STATE");
    assert_eq!(split_group(&[&mc, &mb]).expect_err("group").code(), "E_STATE");
    assert_eq!(mc.mode(), Mode::Duplex, "a refused group split splits nothing");
    assert_eq!(mb.clear_intent().expect_err("close").code(), "E_STATE");

    // The owner dies (nothing flushed); the disk comes back; the pair is reopened as
    // PSUE and resynced differentially: only the intent extent that may differ (the
    // log's records cover whole 4 MiB extents; all three granules lie in the first) is
    // copied, not the volume.
    std::mem::forget(mb);
    drop(mc);
    let healthy = Arc::new(Volume::open(&d.path().join("s.img"), Access::ReadWrite).expect("s"));
    let mb = Mirror::open(p.clone(), healthy.clone(), &plex_files(d.path(), "b"), Mode::Track, true).expect("reopen");
    let extent = plexus_bitmap::INTENT_EXTENT.min(SIZE);
    assert_eq!(mb.dirty_bytes(), extent);
    assert_ne!(sum(&p), sum(&healthy));
    let r = mb.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("resync");
    assert_eq!(r.bytes_copied, extent);
    assert_eq!(sum(&p), sum(&healthy));
    assert_eq!(mb.failure(), None);
}

#[test]
fn without_write_intent_the_divergence_is_still_made_durable() {
    let d = tempfile::tempdir().expect("tmp");
    let (p, _) = volumes(d.path(), SIZE);
    fill(p.as_ref(), 0, SIZE, Fill::Random(6)).expect("fill");
    let b = failing_after(d.path(), 0);
    let m = Mirror::create(p.clone(), b.clone(), &files(d.path()), G, false, false).expect("pair");
    m.resync(Direction::Forward, false, &CopyOptions::default(), &CopyControl::new()).expect("copy");
    m.write_primary(5 * G, b"refused by the secondary").expect("write");
    assert_eq!(m.mode(), Mode::Track);
    std::mem::forget(m);
    let healthy = Arc::new(Volume::open(&d.path().join("s.img"), Access::ReadWrite).expect("s"));
    let m = Mirror::open(p.clone(), healthy.clone(), &files(d.path()), Mode::Track, false).expect("reopen");
    assert_eq!(m.dirty_runs().iter().map(|r| (r.offset, r.len)).collect::<Vec<_>>(), vec![(5 * G, G)]);
    m.resync(Direction::Forward, false, &CopyOptions::default(), &CopyControl::new()).expect("resync");
    assert_eq!(sum(&p), sum(&healthy));
}

#[test]
fn a_suspend_whose_bitmap_flush_fails_still_writes_the_other_plexes_and_leaves_duplex() {
    let d = tempfile::tempdir().expect("tmp");
    let (p, _) = volumes(d.path(), SIZE);
    let c = Arc::new(Volume::create(&d.path().join("c.img"), SIZE, 4096).expect("c"));
    fill(p.as_ref(), 0, SIZE, Fill::Random(8)).expect("fill");
    let b = failing_after(d.path(), 0);
    // Without write intent the suspension flushes b's primary bitmap; that flush fails.
    let mb = Mirror::create(p.clone(), b.clone(), &plex_files(d.path(), "b"), G, false, false).expect("b");
    let mc = Mirror::create_sharing(p.clone(), c.clone(), &plex_files(d.path(), "c"), G, false, false, Some(&mb)).expect("c");
    let opts = CopyOptions::default();
    mb.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("copy b");
    mc.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("copy c");
    std::fs::create_dir(d.path().join("b.p.bitmap.tmp")).expect("block b's bitmap snapshot");

    let e = write_primary_all(&[&mb, &mc], 2 * G, &[9u8; 4096]).expect_err("the flush failure is reported");
    assert_eq!(e.code(), "E_IO", "{e}");
    assert!(mb.failure().is_some(), "b is recorded as failed");
    assert_eq!(mb.mode(), Mode::Track, "b left duplex although its flush failed");
    assert_eq!(mc.mode(), Mode::Duplex);
    assert_eq!(sum(&p), sum(&c), "the healthy plex still got the write");
}
