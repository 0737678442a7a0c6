//! Checkpoints: dirty-bitmap generations of a primary. Marks land in the current
//! generation only, a checkpoint freezes it at one write boundary, the chain survives a
//! reopen and a release, and whatever a crash leaves reopens cleanly or is E_CORRUPT.

use plexus_mirror::{Checkpoints, Generation};
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const G: u64 = 64 << 10;
const SIZE: u64 = 16 << 20;

fn open(dir: &Path) -> Checkpoints {
    Checkpoints::open(dir, SIZE, G).expect("open")
}

fn mark(c: &Checkpoints, offset: u64, len: u64) {
    c.guard().mark(offset, len).expect("mark");
}

/// The dirty granules of `generation` over the whole volume.
fn dirty(c: &Checkpoints, generation: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut at = 0;
    for (len, d) in c.extents(generation, 0, SIZE).expect("extents") {
        if d {
            out.extend((at / G)..(at + len).div_ceil(G));
        }
        at += len;
    }
    out
}

fn numbers(c: &Checkpoints) -> Vec<(u64, bool)> {
    c.generations().iter().map(|g| (g.number, g.frozen)).collect()
}

#[test]
fn marks_land_in_the_current_generation_and_a_checkpoint_freezes_exactly_them() {
    let d = tempfile::tempdir().expect("tmp");
    let c = open(d.path());
    assert_eq!(numbers(&c), vec![(1, false)]);
    assert_eq!(c.current(), 1);
    mark(&c, 10, 5); // granule 0
    mark(&c, 3 * G + 1, 2 * G); // granules 3, 4, 5
    assert_eq!(dirty(&c, 1), vec![0, 3, 4, 5]);
    assert_eq!(c.checkpoint().expect("checkpoint"), 2);
    assert_eq!(numbers(&c), vec![(1, true), (2, false)]);
    assert_eq!(dirty(&c, 2), Vec::<u64>::new(), "the new generation starts empty");
    mark(&c, 4 * G, 1); // already in generation 1: must be recorded in 2 all the same
    mark(&c, 9 * G, G);
    assert_eq!(dirty(&c, 1), vec![0, 3, 4, 5], "a frozen generation is no longer marked");
    assert_eq!(dirty(&c, 2), vec![4, 9]);
    let gens = c.generations();
    assert_eq!(gens[0].dirty_bytes, 4 * G);
    assert_eq!(gens[1].dirty_bytes, 2 * G);
    assert!(gens[0].frozen_ns.is_some() && gens[1].frozen_ns.is_none());
    assert_eq!(gens[0].frozen_ns, Some(gens[1].started_ns), "one moment ends the old and starts the new");
    assert!(gens[0].started_ns <= gens[1].started_ns);
    // Runs are clipped to the range asked.
    assert_eq!(c.extents(1, 2 * G + 7, 2 * G).expect("clip"), vec![(G - 7, false), (G + 7, true)]);
    assert_eq!(c.extents(2, SIZE, 0).expect("empty"), vec![]);
    assert_eq!(c.extents(1, SIZE - 1, 2).expect_err("past the end").code(), "E_RANGE");
    assert_eq!(c.extents(7, 0, G).expect_err("unknown").code(), "E_NOENT");
    assert_eq!(c.guard().mark(SIZE, 1).expect_err("past the end").code(), "E_RANGE");
}

#[test]
fn concurrent_writers_with_checkpoints_in_the_middle_record_every_write_in_exactly_one_generation() {
    let d = tempfile::tempdir().expect("tmp");
    let c = open(d.path());
    let threads = 4u64;
    let per = 48u64; // 4 x 48 distinct granules of the 256 the volume has
    let checkpointed = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let records: Vec<Vec<(u64, u64, bool)>> = std::thread::scope(|sc| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (c, checkpointed, done) = (&c, &checkpointed, &done);
                sc.spawn(move || {
                    let mut seen = Vec::new();
                    for i in 0..per {
                        let granule = i * threads + t;
                        let after = checkpointed.load(Ordering::Acquire);
                        let guard = c.guard();
                        let generation = guard.generation();
                        guard.mark(granule * G, G).expect("mark");
                        // The data write happens here, under the guard.
                        std::thread::yield_now();
                        drop(guard);
                        done.fetch_add(1, Ordering::Release);
                        seen.push((granule, generation, after));
                    }
                    seen
                })
            })
            .collect();
        // Checkpoints while the writers are at it, not before they start or after they end.
        let wait_for = |n: u64| {
            while done.load(Ordering::Acquire) < n {
                std::thread::yield_now();
            }
        };
        wait_for(30);
        c.checkpoint().expect("first checkpoint");
        checkpointed.store(true, Ordering::Release);
        wait_for(100);
        c.checkpoint().expect("second checkpoint");
        workers.into_iter().map(|w| w.join().expect("writer")).collect()
    });
    let gens: Vec<u64> = c.generations().iter().map(|g| g.number).collect();
    assert_eq!(gens, vec![1, 2, 3]);
    let by_gen: HashMap<u64, Vec<u64>> = gens.iter().map(|&g| (g, dirty(&c, g))).collect();
    let total: usize = by_gen.values().map(Vec::len).sum();
    assert_eq!(total as u64, threads * per, "every mark is in exactly one generation, none lost");
    assert!(by_gen[&1].len() >= 30 && !by_gen[&2].is_empty(), "the checkpoints fell among the writes");
    for (granule, generation, after) in records.into_iter().flatten() {
        for (g, bits) in &by_gen {
            assert_eq!(bits.contains(&granule), *g == generation, "granule {granule} seen in {generation}, checked in {g}");
        }
        if after {
            assert!(generation >= 2, "a write after the first checkpoint returned is not recorded before it");
        }
    }
}

#[test]
fn the_chain_survives_a_reopen_and_numbering_continues() {
    let d = tempfile::tempdir().expect("tmp");
    let before: Vec<Generation>;
    {
        let c = open(d.path());
        mark(&c, 0, G);
        c.checkpoint().expect("2");
        mark(&c, 5 * G, 3 * G);
        c.checkpoint().expect("3");
        mark(&c, SIZE - 1, 1);
        before = c.generations();
        assert_eq!(Checkpoints::open(d.path(), SIZE, G).err().map(|e| e.code()), Some("E_BUSY"), "one owner at a time");
    }
    let c = open(d.path());
    assert_eq!(c.generations(), before);
    assert_eq!(dirty(&c, 1), vec![0]);
    assert_eq!(dirty(&c, 2), vec![5, 6, 7]);
    assert_eq!(dirty(&c, 3), vec![SIZE / G - 1]);
    mark(&c, G, 1);
    assert_eq!(dirty(&c, 3), vec![1, SIZE / G - 1], "the current generation goes on recording");
    assert_eq!(c.checkpoint().expect("4"), 4);
    drop(c);
    assert_eq!(Checkpoints::open(d.path(), SIZE * 2, G).err().map(|e| e.code()), Some("E_SIZE"));
    assert_eq!(Checkpoints::open(d.path(), SIZE, G * 2).err().map(|e| e.code()), Some("E_SIZE"));
}

#[test]
fn release_drops_frozen_generations_only_and_their_files() {
    let d = tempfile::tempdir().expect("tmp");
    let c = open(d.path());
    mark(&c, 0, G);
    c.checkpoint().expect("2");
    mark(&c, G, G);
    c.checkpoint().expect("3");
    assert_eq!(c.release(3).expect_err("current").code(), "E_STATE");
    assert_eq!(c.release(9).expect_err("unknown").code(), "E_NOENT");
    c.release(1).expect("release 1");
    assert!(!d.path().join("gen-1.bitmap").exists() && !d.path().join("gen-1.bitmap.log").exists());
    assert_eq!(c.release(1).expect_err("twice").code(), "E_NOENT");
    assert_eq!(c.extents(1, 0, G).expect_err("gone").code(), "E_NOENT");
    assert_eq!(numbers(&c), vec![(2, true), (3, false)]);
    assert_eq!(dirty(&c, 2), vec![1]);
    drop(c);
    let c = open(d.path());
    assert_eq!(numbers(&c), vec![(2, true), (3, false)]);
    c.release(2).expect("release 2");
    assert_eq!(c.checkpoint().expect("numbers are never reused"), 4);
    assert_eq!(numbers(&c), vec![(3, true), (4, false)]);
}

#[test]
fn every_truncation_and_every_flipped_byte_of_the_manifest_is_e_corrupt() {
    let d = tempfile::tempdir().expect("tmp");
    {
        let c = open(d.path());
        c.checkpoint().expect("2");
        c.checkpoint().expect("3");
    }
    let path = d.path().join("checkpoints.manifest");
    let good = fs::read(&path).expect("manifest");
    for n in 0..good.len() {
        fs::write(&path, &good[..n]).expect("truncate");
        let e = Checkpoints::open(d.path(), SIZE, G).err().map(|e| e.code());
        assert_eq!(e, Some("E_CORRUPT"), "truncated to {n} bytes");
    }
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        fs::write(&path, &bad).expect("flip");
        assert_eq!(Checkpoints::open(d.path(), SIZE, G).err().map(|e| e.code()), Some("E_CORRUPT"), "byte {i} flipped");
    }
    let mut long = good.clone();
    long.extend_from_slice(&[0u8; 64]);
    fs::write(&path, &long).expect("extend");
    assert_eq!(Checkpoints::open(d.path(), SIZE, G).err().map(|e| e.code()), Some("E_CORRUPT"), "trailing bytes");
    fs::write(&path, &good).expect("restore");
    assert_eq!(numbers(&open(d.path())), vec![(1, true), (2, true), (3, false)]);
}

#[test]
fn a_crash_before_the_manifest_names_the_new_generation_reopens_the_old_state_with_no_mark_lost() {
    let d = tempfile::tempdir().expect("tmp");
    let path = d.path().join("checkpoints.manifest");
    {
        let c = open(d.path());
        mark(&c, 2 * G, G);
        let old = fs::read(&path).expect("manifest");
        c.checkpoint().expect("2");
        mark(&c, 7 * G, G);
        drop(c);
        // As if the rename of the new manifest had never reached the disk.
        fs::write(&path, old).expect("old manifest back");
    }
    // A torn store of the next manifest, too.
    fs::write(d.path().join("checkpoints.manifest.tmp"), b"PLXCKPT\0torn").expect("tmp");
    let c = open(d.path());
    assert_eq!(numbers(&c), vec![(1, false)], "the old state");
    assert_eq!(dirty(&c, 1), vec![2, 7], "the orphan's marks are kept in the current generation");
    assert!(!d.path().join("gen-2.bitmap").exists(), "the orphan is gone");
    assert!(!d.path().join("checkpoints.manifest.tmp").exists());
    assert_eq!(c.checkpoint().expect("again"), 2);
    assert_eq!(dirty(&c, 2), Vec::<u64>::new(), "a fresh generation 2");
}

#[test]
fn a_crash_during_a_release_leaves_files_the_next_open_removes() {
    let d = tempfile::tempdir().expect("tmp");
    let c = open(d.path());
    mark(&c, 0, G);
    c.checkpoint().expect("2");
    let saved: Vec<(String, Vec<u8>)> =
        ["gen-1.bitmap", "gen-1.bitmap.log"].iter().map(|n| (n.to_string(), fs::read(d.path().join(n)).expect("read gen-1"))).collect();
    c.release(1).expect("release");
    drop(c);
    for (n, b) in &saved {
        fs::write(d.path().join(n), b).expect("as if the removal never happened");
    }
    let c = open(d.path());
    assert_eq!(numbers(&c), vec![(2, false)]);
    assert!(!d.path().join("gen-1.bitmap").exists() && !d.path().join("gen-1.bitmap.log").exists());
}

#[test]
fn a_missing_or_damaged_generation_bitmap_is_e_corrupt_and_a_lost_manifest_is_never_guessed() {
    let d = tempfile::tempdir().expect("tmp");
    {
        let c = open(d.path());
        c.checkpoint().expect("2");
    }
    let g1 = d.path().join("gen-1.bitmap");
    let bytes = fs::read(&g1).expect("gen-1");
    fs::remove_file(&g1).expect("lose gen-1");
    let e = Checkpoints::open(d.path(), SIZE, G).err().expect("missing bitmap");
    assert_eq!(e.code(), "E_CORRUPT");
    assert!(e.to_string().contains("generation 1"), "{e}");
    fs::write(&g1, &bytes[..20]).expect("torn gen-1");
    assert_eq!(Checkpoints::open(d.path(), SIZE, G).err().map(|e| e.code()), Some("E_CORRUPT"));
    fs::write(&g1, &bytes).expect("restore");
    open(d.path());
    // Without its manifest, a chain past generation 1 is not rebuilt by guessing.
    fs::remove_file(d.path().join("checkpoints.manifest")).expect("lose the manifest");
    assert_eq!(Checkpoints::open(d.path(), SIZE, G).err().map(|e| e.code()), Some("E_CORRUPT"));
}

#[test]
fn a_crash_while_a_chain_is_first_created_keeps_what_generation_1_recorded() {
    let d = tempfile::tempdir().expect("tmp");
    {
        let c = open(d.path());
        mark(&c, 4 * G, 1);
    }
    // As if the first manifest had never been written: only gen-1's files remain.
    fs::remove_file(d.path().join("checkpoints.manifest")).expect("no manifest");
    let c = open(d.path());
    assert_eq!(numbers(&c), vec![(1, false)]);
    assert_eq!(dirty(&c, 1), vec![4], "gen-1's marks are taken over, not cleared");
}

#[test]
fn a_checkpoint_that_cannot_write_its_manifest_changes_nothing() {
    let d = tempfile::tempdir().expect("tmp");
    let c = open(d.path());
    mark(&c, 0, G);
    // The temporary manifest cannot be created: the store fails before its rename.
    fs::create_dir(d.path().join("checkpoints.manifest.tmp")).expect("block the temp file");
    assert!(c.checkpoint().is_err());
    assert_eq!(numbers(&c), vec![(1, false)]);
    assert!(!d.path().join("gen-2.bitmap").exists(), "the new bitmap was taken back");
    mark(&c, G, 1);
    assert_eq!(dirty(&c, 1), vec![0, 1], "marks still go to generation 1");
    fs::remove_dir(d.path().join("checkpoints.manifest.tmp")).expect("unblock");
    assert_eq!(c.checkpoint().expect("now it works"), 2);
    drop(c);
    assert_eq!(numbers(&open(d.path())), vec![(1, true), (2, false)]);
}

#[test]
fn a_bad_geometry_is_refused_before_anything_is_written() {
    let d = tempfile::tempdir().expect("tmp");
    assert_eq!(Checkpoints::open(d.path(), SIZE, 3000).err().map(|e| e.code()), Some("E_INVALID"));
    assert_eq!(Checkpoints::open(d.path(), 0, G).err().map(|e| e.code()), Some("E_INVALID"));
    assert!(!d.path().join("checkpoints.manifest").exists());
    open(d.path());
}

#[test]
fn a_checkpoint_waits_for_a_write_in_flight_and_holds_the_next_one_off() {
    let d = tempfile::tempdir().expect("tmp");
    let c = open(d.path());
    let returned = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let guard = c.guard();
        guard.mark(3 * G, 1).expect("mark");
        let t = sc.spawn(|| {
            let n = c.checkpoint().expect("checkpoint");
            returned.store(true, Ordering::Release);
            n
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!returned.load(Ordering::Acquire), "the checkpoint did not wait for the write under the guard");
        // The data write would happen here; the mark is still in generation 1.
        assert_eq!(guard.generation(), 1);
        drop(guard);
        assert_eq!(t.join().expect("checkpoint thread"), 2);
    });
    assert_eq!(dirty(&c, 1), vec![3]);
    assert_eq!(c.guard().generation(), 2);
}
