//! The applier: strict sequence order from shuffled batches, duplicates, refusals, and
//! durability across crashes (modelled with crashable targets and state stores).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::*;
use plexus_journal::bench::{replay_bench, XorShift};
use plexus_journal::{Applier, ApplyTarget, RecordKind, StateStore, RECORD_HEADER};

const VOL: usize = 64 << 10;

/// Record `seq`: on volume 1 or 2, at an offset that overlaps others (so order matters),
/// data tagged with its seq. Every 7th is a Zeroes record, every 11th a Punch.
fn record(out: &mut Vec<u8>, seq: u64) {
    let volume = 1 + (seq % 2) as u32;
    let offset = (seq * 1536) % (VOL as u64 - 4096);
    if seq.is_multiple_of(7) {
        enc(out, seq, volume, RecordKind::Zeroes, offset, &[], 1000);
    } else if seq.is_multiple_of(11) {
        enc(out, seq, volume, RecordKind::Punch, offset, &[], 300);
    } else {
        let mut d = vec![(seq % 251) as u8; 100 + (seq as usize * 37) % 3000];
        d[..8].copy_from_slice(&seq.to_le_bytes());
        enc(out, seq, volume, RecordKind::Write, offset, &d, d.len() as u64);
    }
}

fn batch(seqs: &[u64]) -> Vec<u8> {
    let mut b = Vec::new();
    for &s in seqs {
        record(&mut b, s);
    }
    b
}

/// Final bytes of both volumes after applying 1..=n in order.
fn reference(n: u64) -> (Vec<u8>, Vec<u8>) {
    let (a, b) = (CrashTarget::new(VOL), CrashTarget::new(VOL));
    let ap = open(CrashStore::new(), &a, &b, 1 << 20);
    ap.receive(&batch(&(1..=n).collect::<Vec<_>>())).unwrap();
    (a.bytes(), b.bytes())
}

fn open(store: Arc<CrashStore>, a: &Arc<CrashTarget>, b: &Arc<CrashTarget>, window: u64) -> Applier {
    let ta: Arc<dyn ApplyTarget> = a.clone();
    let tb: Arc<dyn ApplyTarget> = b.clone();
    let store: Arc<dyn StateStore> = store;
    Applier::open_with_store(store, Path::new("mem"), vec![(1, ta), (2, tb)], window).unwrap()
}

fn shuffled(n: u64, window: usize, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (1..=n).collect();
    let mut rng = XorShift::new(seed);
    for chunk in v.chunks_mut(window) {
        for i in (1..chunk.len()).rev() {
            chunk.swap(i, rng.below(i as u64 + 1) as usize);
        }
    }
    v
}

#[test]
fn records_shuffled_within_a_window_apply_in_exact_sequence_order() {
    let n = 600;
    let (a, b) = (CrashTarget::new(VOL), CrashTarget::new(VOL));
    let ap = open(CrashStore::new(), &a, &b, 1 << 20);
    let order = shuffled(n, 40, 1);
    for chunk in order.chunks(13) {
        ap.receive(&batch(chunk)).unwrap();
    }
    assert_eq!((ap.applied(), ap.buffered()), (n, (0, 0)));
    let mut log: Vec<u64> = a.log.lock().unwrap().clone();
    let log_b = b.log.lock().unwrap().clone();
    assert!(log.windows(2).all(|w| w[0] < w[1]) && log_b.windows(2).all(|w| w[0] < w[1]), "each volume's writes in seq order");
    log.extend(log_b);
    log.sort_unstable();
    let writes: Vec<u64> = (1..=n).filter(|s| !s.is_multiple_of(7) && !s.is_multiple_of(11)).collect();
    assert_eq!(log, writes, "every write applied exactly once");
    let (ra, rb) = reference(n);
    assert!(a.bytes() == ra && b.bytes() == rb, "final bytes as if applied in order");
}

#[test]
fn early_records_wait_in_the_buffer_and_duplicates_are_dropped() {
    let (a, b) = (CrashTarget::new(VOL), CrashTarget::new(VOL));
    let ap = open(CrashStore::new(), &a, &b, 1 << 20);
    assert_eq!(ap.receive(&batch(&[3, 4, 6])).unwrap(), 0);
    assert_eq!(ap.buffered().0, 3);
    assert_eq!(ap.receive(&batch(&[4, 1])).unwrap(), 1, "4 is already buffered, 1 applies");
    assert_eq!(ap.receive(&batch(&[2, 2, 1])).unwrap(), 4, "2 fills the gap: 3 and 4 follow");
    assert_eq!(ap.buffered().0, 1);
    assert_eq!(ap.receive(&batch(&[1, 2, 3, 4, 5])).unwrap(), 6, "a resend after a reconnect");
    assert_eq!(ap.buffered(), (0, 0));
    let log = a.log.lock().unwrap().len() + b.log.lock().unwrap().len();
    assert_eq!(log, 6, "each record applied once");
}

#[test]
fn a_batch_overflowing_the_window_is_refused_whole() {
    let (a, b) = (CrashTarget::new(VOL), CrashTarget::new(VOL));
    let ap = open(CrashStore::new(), &a, &b, 1000);
    ap.receive(&batch(&[1, 2])).unwrap();
    // 3 is missing: 4..=10 would all wait, over 1000 bytes.
    let err = ap.receive(&batch(&[4, 5, 6, 8, 9, 10])).unwrap_err();
    assert_eq!(err.code(), "E_PROTOCOL", "{err}");
    assert_eq!((ap.applied(), ap.buffered()), (2, (0, 0)), "nothing from the batch kept");
    // With 3 first the same records apply straight through: nothing is buffered.
    assert_eq!(ap.receive(&batch(&[3, 4, 5, 6, 7, 8, 9, 10])).unwrap(), 10);
}

#[test]
fn a_record_for_an_unknown_volume_refuses_the_batch() {
    let (a, b) = (CrashTarget::new(VOL), CrashTarget::new(VOL));
    let ap = open(CrashStore::new(), &a, &b, 1 << 20);
    let mut bad = batch(&[1, 2]);
    enc(&mut bad, 3, 9, RecordKind::Write, 0, b"nope", 4);
    assert_eq!(ap.receive(&bad).unwrap_err().code(), "E_PROTOCOL");
    assert_eq!(ap.applied(), 0, "refused before anything applied");
    assert_eq!(ap.receive(&bad[..5]).unwrap_err().code(), "E_PROTOCOL", "a torn batch");
}

#[test]
fn commit_and_reopen_resume_from_the_durable_seq() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("applied");
    let (a, b) = (CrashTarget::new(VOL), CrashTarget::new(VOL));
    let targets = |a: &Arc<CrashTarget>, b: &Arc<CrashTarget>| -> Vec<(u32, Arc<dyn ApplyTarget>)> { vec![(1, a.clone()), (2, b.clone())] };
    {
        let ap = Applier::open(&state, targets(&a, &b), 1 << 20).unwrap();
        assert_eq!((ap.applied(), ap.durable()), (0, 0));
        ap.receive(&batch(&(1..=50).collect::<Vec<_>>())).unwrap();
        assert_eq!(ap.commit().unwrap(), 50);
        ap.receive(&batch(&(51..=60).collect::<Vec<_>>())).unwrap();
        assert_eq!((ap.applied(), ap.durable()), (60, 50));
    }
    let (a, b) = (a.after_crash(), b.after_crash());
    let ap = Applier::open(&state, targets(&a, &b), 1 << 20).unwrap();
    assert_eq!((ap.applied(), ap.durable()), (50, 50));
    assert_eq!(ap.receive(&batch(&(40..=70).collect::<Vec<_>>())).unwrap(), 70);
    let (ra, rb) = reference(70);
    assert!(a.bytes() == ra && b.bytes() == rb);
    ap.reset_epoch(1000, 3).unwrap();
    drop(ap);
    let ap = Applier::open(&state, targets(&a, &b), 1 << 20).unwrap();
    assert_eq!((ap.durable(), ap.epoch()), (1000, 3));
    assert_eq!(ap.receive(&batch(&[1001])).unwrap(), 1001);
}

#[test]
fn a_crash_between_target_sync_and_state_write_keeps_the_old_durable_seq() {
    let store = CrashStore::new();
    let (a, b) = (CrashTarget::new(VOL), CrashTarget::new(VOL));
    let ap = open(store.clone(), &a, &b, 1 << 20);
    ap.receive(&batch(&(1..=20).collect::<Vec<_>>())).unwrap();
    assert_eq!(ap.commit().unwrap(), 20);
    ap.receive(&batch(&(21..=40).collect::<Vec<_>>())).unwrap();
    store.writes_left.store(0, Ordering::SeqCst);
    assert_eq!(ap.commit().unwrap_err().code(), "E_IO");
    assert!(a.syncs.load(Ordering::SeqCst) >= 2, "the targets were synced before the failed state write");
    assert_eq!(ap.durable(), 20);
    assert_eq!(ap.commit().unwrap_err().code(), "E_IO", "poisoned");
    drop(ap);
    let (a2, b2) = (a.after_crash(), b.after_crash());
    let ap = open(store.after_crash(), &a2, &b2, 1 << 20);
    assert_eq!(ap.durable(), 20);
    // Reapplying everything after the durable point, in order, lands the same bytes.
    ap.receive(&batch(&(21..=40).collect::<Vec<_>>())).unwrap();
    let (ra, rb) = reference(40);
    assert!(a2.bytes() == ra && b2.bytes() == rb);
}

#[test]
fn a_crash_after_the_nth_state_sync_never_claims_unsynced_data() {
    let n = 120;
    let (ra, rb) = reference(n);
    for crash_after in 0..6 {
        let store = CrashStore::new();
        store.syncs_left.store(crash_after, Ordering::SeqCst);
        let (a, b) = (CrashTarget::new(VOL), CrashTarget::new(VOL));
        let ap = open(store.clone(), &a, &b, 1 << 20);
        let order = shuffled(n, 16, crash_after as u64);
        for chunk in order.chunks(20) {
            ap.receive(&batch(chunk)).unwrap();
            if ap.commit().is_err() {
                break;
            }
        }
        let durable_before = ap.durable();
        drop(ap);
        let (a2, b2) = (a.after_crash(), b.after_crash());
        let ap = open(store.after_crash(), &a2, &b2, 1 << 20);
        assert!(ap.durable() <= durable_before, "crash after {crash_after}");
        // Everything <= durable is on the synced images: replaying the rest gives the
        // reference bytes.
        let rest: Vec<u64> = (ap.durable() + 1..=n).collect();
        ap.receive(&batch(&rest)).unwrap();
        assert!(a2.bytes() == ra && b2.bytes() == rb, "crash after {crash_after} sync(s): durable {}", ap.durable());
    }
}

#[test]
fn a_torn_state_slot_falls_back_to_the_previous_value() {
    let store = CrashStore::new();
    let (a, b) = (CrashTarget::new(VOL), CrashTarget::new(VOL));
    let ap = open(store.clone(), &a, &b, 1 << 20);
    ap.receive(&batch(&(1..=5).collect::<Vec<_>>())).unwrap();
    ap.commit().unwrap();
    ap.receive(&batch(&(6..=9).collect::<Vec<_>>())).unwrap();
    ap.commit().unwrap();
    drop(ap);
    // Generation 2 went to slot 0: tear it.
    store.volatile.lock().unwrap()[30] ^= 0xff;
    let ap = open(store.clone(), &a, &b, 1 << 20);
    assert_eq!(ap.durable(), 5);
    drop(ap);
    store.volatile.lock().unwrap()[48 + 30] ^= 0xff;
    let ta: Arc<dyn ApplyTarget> = a.clone();
    let s: Arc<dyn StateStore> = store;
    assert_eq!(Applier::open_with_store(s, Path::new("mem"), vec![(1, ta)], 1).unwrap_err().code(), "E_CORRUPT");
}

#[test]
fn the_replay_bench_runs_and_lands_the_right_bytes() {
    let f = replay_bench(4096, 2000, 32, 7);
    assert!(f.records_per_s > 0.0 && f.memcpy_bytes_per_s > 0.0);
    let f = replay_bench(RECORD_HEADER, 500, 1, 1);
    assert!(f.bytes_per_s > 0.0);
}

#[test]
fn a_paused_applier_holds_receives_back_until_resumed() {
    use plexus_journal::{encode_record, Applier, RecordKind, RecordRef};
    let dir = tempfile::tempdir().unwrap();
    struct Null;
    impl plexus_journal::ApplyTarget for Null {
        fn write(&self, _o: u64, _d: &[u8]) -> std::io::Result<()> {
            Ok(())
        }
        fn write_zeroes(&self, _o: u64, _l: u64, _p: bool) -> std::io::Result<()> {
            Ok(())
        }
        fn sync(&self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let a = std::sync::Arc::new(
        Applier::open(
            &dir.path().join("state"),
            vec![(1, std::sync::Arc::new(Null) as std::sync::Arc<dyn plexus_journal::ApplyTarget>)],
            1 << 20,
        )
        .unwrap(),
    );
    let mut batch = Vec::new();
    encode_record(&mut batch, &RecordRef { seq: 1, volume: 1, kind: RecordKind::Write, offset: 0, len: 4, data: b"abcd" });
    a.pause();
    let a2 = std::sync::Arc::clone(&a);
    let t = std::thread::spawn(move || a2.receive(&batch).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(a.applied(), 0, "nothing applied while paused");
    a.resume();
    assert_eq!(t.join().unwrap(), 1);
}
