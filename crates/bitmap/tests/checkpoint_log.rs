//! Checkpoints that log what a resync cleared (clear records) instead of rewriting the
//! snapshot: what they cost, what a crash at each point leaves, how a mark logged after a
//! clear survives replay, torn and hostile clear records, compaction, and old sidecars.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use plexus_bitmap::{BitmapError, DurableBitmap};

const G: u64 = 65536;
const NBITS: u64 = 1000;
const SIZE: u64 = NBITS * G;
/// Mark record trailer ("PLOG") and clear record trailer ("PCLR"), as u32.
const MARK: u32 = 0x504C_4F47;
const CLEAR: u32 = 0x5043_4C52;

fn log_of(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.log", p.display()))
}

fn log_len(p: &Path) -> u64 {
    fs::metadata(log_of(p)).unwrap().len()
}

fn runs(d: &DurableBitmap) -> Vec<(u64, u64)> {
    d.bitmap().bit_runs().collect()
}

/// Opens as a crashed owner's successor would: the old handle vanished without a close,
/// drop or flush (as under SIGKILL), so only what reached the disk counts.
fn reopen_after_kill(d: DurableBitmap, path: &Path) -> DurableBitmap {
    std::mem::forget(d);
    DurableBitmap::open(path, true).unwrap()
}

/// A record as the log holds it; a clear record's CRC also covers its trailer.
fn record(kind: u32, generation: u64, first: u64, n: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0..8].copy_from_slice(&generation.to_le_bytes());
    b[8..16].copy_from_slice(&first.to_le_bytes());
    b[16..24].copy_from_slice(&n.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..24]);
    if kind == CLEAR {
        h.update(&CLEAR.to_le_bytes());
    }
    b[24..28].copy_from_slice(&h.finalize().to_le_bytes());
    b[28..32].copy_from_slice(&kind.to_le_bytes());
    b
}

fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vol.bitmap");
    (dir, path)
}

#[test]
fn a_checkpoint_appends_clear_records_with_one_sync_and_a_crash_keeps_them_cleared() {
    let (_dir, path) = fresh();
    let d = DurableBitmap::create(&path, SIZE, G, true).unwrap();
    d.mark_all().unwrap();
    let before = d.stats();
    // A resync copies the first 600 granules in two pieces, clearing each behind it.
    d.clear_range_in_memory(0, 300 * G).unwrap();
    d.clear_range_in_memory(300 * G, 300 * G).unwrap();
    d.checkpoint().unwrap();
    let after = d.stats();
    assert_eq!(d.generation(), 1, "no snapshot");
    assert_eq!(log_len(&path), 2 * 32, "the mark of everything and one clear of the merged range");
    assert_eq!((after.snapshots - before.snapshots, after.syncs - before.syncs, after.bytes_written - before.bytes_written), (0, 1, 32));
    // Nothing cleared since: the next checkpoint costs nothing.
    d.checkpoint().unwrap();
    assert_eq!(d.stats(), after);
    let d = reopen_after_kill(d, &path);
    assert_eq!(runs(&d), vec![(600, 400)]);
    assert_eq!(DurableBitmap::read_only(&path).unwrap().bit_runs().collect::<Vec<_>>(), vec![(600, 400)], "observers see the clear too");
}

#[test]
fn a_crash_before_the_checkpoint_brings_the_cleared_bits_back() {
    let (_dir, path) = fresh();
    let d = DurableBitmap::create(&path, SIZE, G, true).unwrap();
    d.mark_all().unwrap();
    d.clear_range_in_memory(0, 10 * G).unwrap();
    d.checkpoint().unwrap();
    d.clear_range_in_memory(10 * G, 10 * G).unwrap();
    let d = reopen_after_kill(d, &path);
    assert_eq!(runs(&d), vec![(10, 990)], "the second range was never checkpointed: copied again");
}

#[test]
fn a_mark_logged_after_a_clear_record_survives_a_crash() {
    let (_dir, path) = fresh();
    let d = DurableBitmap::create(&path, SIZE, G, true).unwrap();
    d.mark_all().unwrap();
    d.clear_range_in_memory(0, 100 * G).unwrap();
    d.checkpoint().unwrap();
    // A write into the copied range after the checkpoint: logged after the clear.
    assert_eq!(d.mark_range(42 * G, 1).unwrap(), 1);
    let d = reopen_after_kill(d, &path);
    assert_eq!(runs(&d), vec![(42, 1), (100, 900)], "replayed in order: the mark after the clear stands");
}

#[test]
fn a_mark_before_the_checkpoint_into_a_cleared_range_is_not_logged_as_cleared() {
    let (_dir, path) = fresh();
    let d = DurableBitmap::create(&path, SIZE, G, true).unwrap();
    d.mark_all().unwrap();
    d.clear_range_in_memory(0, 100 * G).unwrap();
    // Written again after its copy but before the checkpoint: still dirty in memory.
    d.mark_range(7 * G, 2 * G).unwrap();
    d.checkpoint().unwrap();
    let d = reopen_after_kill(d, &path);
    assert_eq!(runs(&d), vec![(7, 2), (100, 900)]);
}

#[test]
fn with_intent_extents_a_clear_uncovers_its_extents_so_the_next_mark_logs_again() {
    let (_dir, path) = fresh();
    // 16 granules per extent: one mark record covers a whole extent.
    let d = DurableBitmap::create(&path, SIZE, G, true).unwrap().with_intent_extent(16 * G);
    d.mark_range(0, 1).unwrap();
    assert_eq!(log_len(&path), 32);
    d.mark_range(5 * G, 1).unwrap();
    assert_eq!(log_len(&path), 32, "inside a covered extent: no record");
    d.clear_range_in_memory(0, 16 * G).unwrap();
    d.checkpoint().unwrap();
    assert_eq!(log_len(&path), 64);
    // Without a new record this mark would be undone by the clear on replay.
    d.mark_range(9 * G, 1).unwrap();
    assert_eq!(log_len(&path), 96);
    let d = reopen_after_kill(d, &path);
    let bits = runs(&d);
    assert!(bits.iter().any(|&(f, n)| f <= 9 && 9 < f + n), "{bits:?}");
}

#[test]
fn a_torn_clear_record_is_cut_and_only_brings_its_bits_back() {
    let (_dir, path) = fresh();
    let d = DurableBitmap::create(&path, SIZE, G, true).unwrap();
    d.mark_all().unwrap();
    d.clear_range_in_memory(0, 500 * G).unwrap();
    d.checkpoint().unwrap();
    std::mem::forget(d);
    let good = fs::read(log_of(&path)).unwrap();
    assert_eq!(good.len(), 64);
    for cut in [33usize, 48, 63] {
        fs::write(log_of(&path), &good[..cut]).unwrap();
        let d = DurableBitmap::open(&path, true).unwrap();
        assert_eq!(d.bitmap().count(), NBITS, "cut at {cut}");
        assert_eq!(log_len(&path), 32, "the torn record is cut");
        drop(d);
    }
    // A damaged clear record stops replay there, whatever byte is hit (its trailer too:
    // a clear never turns into a mark).
    for i in 32..64 {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        fs::write(log_of(&path), &bad).unwrap();
        let d = DurableBitmap::open(&path, true).unwrap();
        assert_eq!(d.bitmap().count(), NBITS, "byte {i}");
    }
}

#[test]
fn a_checksummed_clear_record_outside_the_bitmap_is_corrupt() {
    let (_dir, path) = fresh();
    drop(DurableBitmap::create(&path, SIZE, G, true).unwrap());
    for (first, n) in [(NBITS, 1), (0, NBITS + 1), (u64::MAX, 2), (3, 0)] {
        fs::write(log_of(&path), record(CLEAR, 1, first, n)).unwrap();
        let e = DurableBitmap::open(&path, true).unwrap_err();
        assert_eq!(e.code(), "E_CORRUPT", "{first}+{n}");
        assert!(e.to_string().contains("vol.bitmap.log"), "{e}");
        assert_eq!(DurableBitmap::read_only(&path).unwrap_err().code(), "E_CORRUPT");
    }
}

#[test]
fn records_apply_in_log_order_and_stale_clears_are_ignored() {
    let (_dir, path) = fresh();
    drop(DurableBitmap::create(&path, SIZE, G, true).unwrap());
    let mut log = Vec::new();
    log.extend_from_slice(&record(MARK, 1, 0, 100));
    log.extend_from_slice(&record(CLEAR, 1, 10, 80));
    log.extend_from_slice(&record(MARK, 1, 50, 5));
    log.extend_from_slice(&record(CLEAR, 0, 0, 100)); // stale generation: skipped
    log.extend_from_slice(&record(CLEAR, 2, 95, 2)); // newer: applied
    fs::write(log_of(&path), &log).unwrap();
    let d = DurableBitmap::open(&path, true).unwrap();
    assert_eq!(runs(&d), vec![(0, 10), (50, 5), (90, 5), (97, 3)]);
}

#[test]
fn a_mark_in_flight_during_a_checkpoint_is_never_cleared_on_disk() {
    let (_dir, path) = fresh();
    let d = Arc::new(DurableBitmap::create(&path, SIZE, G, true).unwrap().with_intent_extent(8 * G));
    d.mark_all().unwrap();
    // Writers mark granules while a resync clears ranges behind its copy and checkpoints:
    // whatever the interleaving, every mark that returned is durable.
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let d = Arc::clone(&d);
            s.spawn(move || {
                let mut x = 0x9E37_79B9u64 + t;
                for _ in 0..2000 {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    d.mark_range((x >> 33) % NBITS * G, 1).unwrap();
                }
            });
        }
        let d = Arc::clone(&d);
        s.spawn(move || {
            for i in 0..800u64 {
                d.clear_range_in_memory((i * 37) % (NBITS - 20) * G, 20 * G).unwrap();
                if i % 4 == 3 {
                    d.checkpoint().unwrap();
                }
            }
        });
    });
    let memory = d.bitmap().snapshot_words();
    let d = Arc::into_inner(d).unwrap();
    let d = reopen_after_kill(d, &path);
    for (i, (m, r)) in memory.iter().zip(d.bitmap().snapshot_words()).enumerate() {
        assert_eq!(m & !r, 0, "word {i}: a bit set in memory was lost");
    }
}

#[test]
fn a_long_log_is_compacted_into_a_snapshot_by_the_next_checkpoint() {
    let (_dir, path) = fresh();
    // The snapshot of 1000 bits is 192 bytes: with no floor, six records fit in the log.
    let d = DurableBitmap::create(&path, SIZE, G, true).unwrap().with_log_limit(0);
    d.mark_all().unwrap();
    for i in 0..5 {
        d.clear_range_in_memory(2 * i * G, G).unwrap();
        d.checkpoint().unwrap();
    }
    assert_eq!((d.generation(), log_len(&path)), (1, 6 * 32));
    d.clear_range_in_memory(20 * G, G).unwrap();
    d.checkpoint().unwrap();
    assert_eq!((d.generation(), log_len(&path)), (2, 0), "compacted");
    let d = reopen_after_kill(d, &path);
    assert_eq!(d.bitmap().count(), NBITS - 6);
}

#[test]
fn scattered_clearing_past_what_is_tracked_falls_back_to_a_snapshot() {
    let (_dir, path) = fresh();
    let d = DurableBitmap::create(&path, 20_000 * 512, 512, true).unwrap();
    d.mark_all().unwrap();
    for b in (0..20_000u64).step_by(2) {
        d.clear_range_in_memory(b * 512, 512).unwrap();
    }
    d.checkpoint().unwrap();
    assert_eq!(d.generation(), 2);
    let d = reopen_after_kill(d, &path);
    assert_eq!(d.bitmap().count(), 10_000);
}

#[test]
fn after_swap_out_a_checkpoint_writes_a_snapshot() {
    let (_dir, path) = fresh();
    let d = DurableBitmap::create(&path, SIZE, G, true).unwrap();
    d.mark_range(0, 3 * G).unwrap();
    let _ = d.swap_out();
    d.checkpoint().unwrap();
    assert_eq!(d.generation(), 2);
    assert_eq!(reopen_after_kill(d, &path).bitmap().count(), 0);
}

#[test]
fn without_write_intent_a_checkpoint_snapshots_marks_and_logs_clears() {
    let (_dir, path) = fresh();
    let d = DurableBitmap::create(&path, SIZE, G, false).unwrap();
    d.mark_all().unwrap();
    d.checkpoint().unwrap();
    assert_eq!((d.generation(), log_len(&path)), (2, 0), "marks in memory only: a snapshot");
    d.clear_range_in_memory(0, 10 * G).unwrap();
    d.checkpoint().unwrap();
    assert_eq!((d.generation(), log_len(&path)), (2, 32), "only clears since: a clear record");
    std::mem::forget(d);
    assert_eq!(runs(&DurableBitmap::open(&path, false).unwrap()), vec![(10, 990)]);
}

/// Rewrites the snapshot at `path` as version 1 (header CRC fixed up).
fn make_version_1(path: &Path) {
    let mut b = fs::read(path).unwrap();
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32fast::hash(&b[..52]);
    b[52..56].copy_from_slice(&crc.to_le_bytes());
    fs::write(path, &b).unwrap();
}

#[test]
fn a_version_1_sidecar_is_read_and_its_first_clearing_checkpoint_upgrades_it() {
    let (_dir, path) = fresh();
    let d = DurableBitmap::create(&path, SIZE, G, true).unwrap();
    d.mark_range(0, 50 * G).unwrap();
    d.mark_range(600 * G, G).unwrap();
    drop(d);
    make_version_1(&path);
    let d = DurableBitmap::open(&path, true).unwrap();
    assert_eq!(runs(&d), vec![(0, 50), (600, 1)], "version-1 snapshot and mark records read");
    d.clear_range_in_memory(0, 10 * G).unwrap();
    d.checkpoint().unwrap();
    // Clears next to a version-1 snapshot would be lost on a reader that knows only
    // version 1: they go into a (version-2) snapshot instead.
    assert_eq!((d.generation(), log_len(&path)), (2, 0));
    assert_eq!(u32::from_le_bytes(fs::read(&path).unwrap()[8..12].try_into().unwrap()), 2);
    d.clear_range_in_memory(10 * G, 10 * G).unwrap();
    d.checkpoint().unwrap();
    assert_eq!((d.generation(), log_len(&path)), (2, 32), "from then on clears are logged");
    assert_eq!(runs(&reopen_after_kill(d, &path)), vec![(20, 30), (600, 1)]);
}

#[test]
fn mutated_logs_never_panic_and_both_readers_agree() {
    let (_dir, path) = fresh();
    drop(DurableBitmap::create(&path, SIZE, G, true).unwrap());
    let snapshot = fs::read(&path).unwrap();
    let mut base = Vec::new();
    for (i, (kind, first, n)) in
        [(MARK, 0u64, 900u64), (CLEAR, 10, 100), (MARK, 50, 3), (CLEAR, 800, 200), (MARK, 999, 1)].into_iter().enumerate()
    {
        base.extend_from_slice(&record(kind, 1 + (i as u64 % 2), first, n));
    }
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..400 {
        let mut log = base.clone();
        match round % 4 {
            0 => {
                let at = (next() % log.len() as u64) as usize;
                log[at] ^= 1 << (next() % 8);
            }
            1 => log.truncate((next() % log.len() as u64) as usize),
            2 => {
                // A well-formed record with random fields.
                let kind = if next() % 2 == 0 { MARK } else { CLEAR };
                log.extend_from_slice(&record(kind, next() % 3, next() % (NBITS + 10), next() % (NBITS + 10)));
            }
            _ => log.extend((0..next() % 64).map(|_| next() as u8)),
        }
        fs::write(&path, &snapshot).unwrap();
        fs::write(log_of(&path), &log).unwrap();
        let seen = DurableBitmap::read_only(&path);
        match DurableBitmap::open(&path, true) {
            Ok(d) => assert_eq!(d.bitmap().snapshot_words(), seen.unwrap().snapshot_words(), "round {round}"),
            Err(e) => {
                assert_eq!(e.code(), "E_CORRUPT", "round {round}: {e}");
                assert_eq!(seen.map(|_| ()).map_err(|e: BitmapError| e.code()), Err("E_CORRUPT"));
            }
        }
    }
}
