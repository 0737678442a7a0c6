//! The write path of a consistency group: journaled changes (async and sync), tracked
//! changes, suspension folding the unsent journal into the dirty bitmaps, and the
//! suspensions a full journal or a silent remote cause.

mod common;

use common::{group, pattern, records, replay, Rec, GRAN};
use plexus_journal::RecordKind;
use plexus_replica::{Change, ReplicaError, ReplicaMode};
use plexus_volume::{BlockDevice, MemDevice};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

const SIZE: u64 = 4 << 20;
const BIG: u64 = 256 << 20;

type R = std::result::Result<(), ReplicaError>;

#[test]
fn async_changes_append_one_record_each_before_the_local_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = group(dir.path(), &[1, 2], SIZE, BIG, ReplicaMode::Async);
    let data = pattern(1, 4096);
    let mut seen = Vec::new();
    let mut note = |expect: u64| {
        // The local commit runs once the record is in the journal.
        seen.push((expect, g.journal().last_seq()));
        Ok(())
    };
    g.change::<ReplicaError>(1, 4096, 4096, Change::Write(&data), || note(1)).expect("write");
    g.change::<ReplicaError>(2, 8192, 12288, Change::Zeroes { punch: false }, || note(2)).expect("zeroes");
    g.change::<ReplicaError>(1, GRAN, 2 * GRAN, Change::Zeroes { punch: true }, || note(3)).expect("punch");
    assert_eq!(seen, vec![(1, 1), (2, 2), (3, 3)]);

    let got = records(g.journal());
    let want = vec![
        Rec { seq: 1, volume: 1, kind: RecordKind::Write, offset: 4096, len: 4096, data: data.clone() },
        Rec { seq: 2, volume: 2, kind: RecordKind::Zeroes, offset: 8192, len: 12288, data: vec![] },
        Rec { seq: 3, volume: 1, kind: RecordKind::Punch, offset: GRAN, len: 2 * GRAN, data: vec![] },
    ];
    assert_eq!(got, want);
    // Journaled changes are not tracked.
    assert_eq!(g.dirty_bytes(1).expect("dirty"), 0);
    assert_eq!(g.dirty_bytes(2).expect("dirty"), 0);
    assert!(g.take_events().is_empty());
}

#[test]
fn a_failed_local_commit_is_returned_to_the_caller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Async);
    let data = pattern(2, 512);
    let err = g
        .change(1, 0, 512, Change::Write(&data), || Err(ReplicaError::State { detail: "local disk gone".into() }))
        .expect_err("local failure");
    assert_eq!(err.code(), "E_STATE");
    assert_eq!(err.to_string(), "local disk gone");
}

#[test]
fn overlapping_concurrent_writers_replay_to_the_local_bytes() {
    const REGION: usize = 64 << 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Arc::new(group(dir.path(), &[7], SIZE, BIG, ReplicaMode::Async));
    let local = Arc::new(MemDevice::new("local", SIZE as usize));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (g, local) = (Arc::clone(&g), Arc::clone(&local));
            thread::spawn(move || {
                for i in 0..40u64 {
                    // Same region for all, some shifted by a few sectors so the overlaps
                    // are partial too (two granules locked).
                    let offset = if i % 3 == 0 { (t * 4096) % REGION as u64 } else { 0 };
                    let data = pattern(t * 1000 + i + 1, REGION);
                    let change = if i % 7 == 6 { Change::Zeroes { punch: i % 2 == 0 } } else { Change::Write(&data) };
                    g.change::<ReplicaError>(7, offset, REGION as u64, change, || {
                        match change {
                            Change::Write(d) => local.write_at(offset, d)?,
                            Change::Zeroes { punch } => local.write_zeroes(offset, REGION as u64, punch)?,
                        }
                        Ok(())
                    })
                    .expect("change");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let recs = records(g.journal());
    assert_eq!(recs.len(), 8 * 40);
    assert!(recs.windows(2).all(|w| matches!(w, [a, b] if b.seq == a.seq + 1)), "seqs are consecutive");
    let mut replayed = vec![0u8; SIZE as usize];
    replay(&recs, &mut replayed);
    assert!(replayed == local.contents(), "replaying the journal in sequence order gives the local volume's bytes");
}

#[test]
fn track_mode_marks_the_bitmap_and_appends_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Track);
    let data = pattern(3, 100);
    let mut ran = 0;
    g.change::<ReplicaError>(1, 3 * GRAN + 10, 100, Change::Write(&data), || {
        ran += 1;
        Ok(())
    })
    .expect("tracked write");
    g.change::<ReplicaError>(1, 5 * GRAN, 2 * GRAN, Change::Zeroes { punch: true }, || {
        ran += 1;
        Ok(())
    })
    .expect("tracked punch");
    assert_eq!(ran, 2);
    assert_eq!(g.journal().last_seq(), 0);
    assert_eq!(g.journal().held_records(), 0);
    assert_eq!(g.runs(1, 10).expect("runs"), vec![(3 * GRAN, GRAN), (5 * GRAN, 2 * GRAN)]);
}

#[test]
fn suspend_folds_only_records_the_remote_has_not_made_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = group(dir.path(), &[1, 2], SIZE, BIG, ReplicaMode::Async);
    let data = pattern(4, 1000);
    // Records 1..=5 on distinct granules, alternating members.
    let places = [(1u32, 0u64), (2, 2 * GRAN), (1, 4 * GRAN), (2, 6 * GRAN), (1, 8 * GRAN)];
    for &(v, off) in &places {
        g.change::<ReplicaError>(v, off, 1000, Change::Write(&data), || Ok(())).expect("write");
    }
    // Applied through 4 but durable only through 2: records 3, 4, 5 may still be lost remotely.
    g.acknowledge(4, 2);
    assert_eq!(g.acknowledged(), (4, 2));
    let folded = g.suspend("link to B failed: reset by peer").expect("suspend");
    assert_eq!(folded, 3 * 1000);
    assert_eq!(g.mode(), ReplicaMode::Track);
    assert_eq!(g.runs(1, 10).expect("runs"), vec![(4 * GRAN, GRAN), (8 * GRAN, GRAN)]);
    assert_eq!(g.runs(2, 10).expect("runs"), vec![(6 * GRAN, GRAN)]);
    assert_eq!(g.journal().held_records(), 0);
    assert_eq!(g.journal().held_bytes(), 0);
    // Numbering goes on after the records that were dropped.
    assert_eq!(g.journal().next_seq(), 6);
    let events = g.take_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains("link to B failed: reset by peer"), "{events:?}");
    assert!(events[0].contains("3000 bytes"), "{events:?}");

    // Again: nothing to do, no event.
    assert_eq!(g.suspend("again").expect("suspend again"), 0);
    assert!(g.take_events().is_empty());
    assert_eq!(g.runs(1, 10).expect("runs").len(), 2);
}

#[test]
fn a_full_journal_suspends_the_group_instead_of_failing_the_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Room for one 4 KiB record (48-byte header), not two.
    let g = group(dir.path(), &[1], SIZE, 4096 + 48 + 100, ReplicaMode::Async);
    let data = pattern(5, 4096);
    g.change::<ReplicaError>(1, 0, 4096, Change::Write(&data), || Ok(())).expect("first write");
    let mut ran = false;
    g.change::<ReplicaError>(1, 10 * GRAN, 4096, Change::Write(&data), || {
        ran = true;
        Ok(())
    })
    .expect("the second write succeeds locally");
    assert!(ran);
    assert_eq!(g.mode(), ReplicaMode::Track);
    // Both the unsent first record and the write that did not fit are dirty.
    assert_eq!(g.runs(1, 10).expect("runs"), vec![(0, GRAN), (10 * GRAN, GRAN)]);
    assert_eq!(g.journal().held_records(), 0);
    let events = g.take_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains("journal full"), "{events:?}");
    // Tracked from now on.
    g.change::<ReplicaError>(1, 20 * GRAN, 4096, Change::Write(&data), || Ok(())).expect("tracked");
    assert_eq!(g.journal().held_records(), 0);
    assert_eq!(g.runs(1, 10).expect("runs").len(), 3);
}

#[test]
fn a_sync_change_waits_for_the_remote_to_apply_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Arc::new(group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Sync));
    g.set_sync_timeout(Duration::from_secs(20));
    let (tx, rx) = mpsc::channel::<Instant>();
    let acker = {
        let g = Arc::clone(&g);
        thread::spawn(move || {
            // Wait until the record is there, then take our time before acknowledging.
            while g.journal().last_seq() < 1 {
                thread::sleep(Duration::from_millis(1));
            }
            thread::sleep(Duration::from_millis(100));
            let at = Instant::now();
            g.acknowledge(1, 0);
            tx.send(at).expect("send");
        })
    };
    let data = pattern(6, 4096);
    let start = Instant::now();
    g.change::<ReplicaError>(1, 0, 4096, Change::Write(&data), || Ok(())).expect("sync write");
    let returned = Instant::now();
    acker.join().expect("acker");
    let acked = rx.recv().expect("ack time");
    assert!(returned >= acked, "the change returned before the acknowledgement");
    assert!(returned - start >= Duration::from_millis(100), "waited {:?}", returned - start);
    assert_eq!(g.mode(), ReplicaMode::Sync);
    assert_eq!(g.dirty_bytes(1).expect("dirty"), 0);
    assert!(g.take_events().is_empty());
}

#[test]
fn a_sync_change_already_acknowledged_does_not_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Sync);
    g.set_sync_timeout(Duration::from_secs(20));
    // The acknowledgement comes in while the local commit runs.
    let start = Instant::now();
    g.change::<ReplicaError>(1, 0, 512, Change::Zeroes { punch: false }, || {
        g.acknowledge(1, 1);
        Ok(())
    })
    .expect("sync write");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(g.mode(), ReplicaMode::Sync);
}

#[test]
fn a_sync_change_nobody_acknowledges_suspends_the_group_after_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Sync);
    g.set_sync_timeout(Duration::from_millis(200));
    let data = pattern(7, 4096);
    let start = Instant::now();
    g.change::<ReplicaError>(1, 3 * GRAN, 4096, Change::Write(&data), || Ok(())).expect("the write still succeeds");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(190), "returned after {took:?}");
    assert!(took < Duration::from_secs(5), "returned after {took:?}");
    assert_eq!(g.mode(), ReplicaMode::Track);
    assert_eq!(g.runs(1, 10).expect("runs"), vec![(3 * GRAN, GRAN)]);
    assert_eq!(g.journal().held_records(), 0);
    let events = g.take_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains("synchronous timeout"), "{events:?}");
}

#[test]
fn sync_writers_acknowledgements_and_suspensions_racing_never_deadlock() {
    // wait_applied holds the ack lock while it reads the mode; suspend holds the mode
    // while it reads the acks. Hammer both from many threads; a watchdog fails the test
    // instead of hanging it.
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Arc::new(group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Sync));
    g.set_sync_timeout(Duration::from_millis(2));
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for t in 0..4u64 {
        let (g, stop, progress) = (Arc::clone(&g), Arc::clone(&stop), Arc::clone(&progress));
        workers.push(thread::spawn(move || {
            let data = pattern(t, 512);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let off = ((t * 16 + i % 16) * GRAN) % SIZE;
                g.change::<ReplicaError>(1, off, 512, Change::Write(&data), || Ok(())).expect("write");
                progress.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    {
        let (g, stop) = (Arc::clone(&g), Arc::clone(&stop));
        workers.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let last = g.journal().last_seq();
                g.acknowledge(last, last.saturating_sub(1));
            }
        }));
    }
    {
        let (g, stop) = (Arc::clone(&g), Arc::clone(&stop));
        workers.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                g.suspend("test").expect("suspend");
                g.take_events();
                g.clear_all(1).expect("clear");
                g.set_mode(ReplicaMode::Sync);
                thread::yield_now();
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = 0;
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(500));
        let now = progress.load(Ordering::Relaxed);
        assert!(now > last, "no sync write finished in 500 ms: the write path deadlocked");
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
}

#[test]
fn an_unknown_member_is_a_state_error_and_nothing_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Async);
    let mut ran = false;
    let data = [1u8; 16];
    let err = g
        .change::<ReplicaError>(99, 0, 16, Change::Write(&data), || {
            ran = true;
            Ok(())
        })
        .expect_err("unknown member");
    assert_eq!(err.code(), "E_STATE");
    assert!(err.to_string().contains("volume 99"), "{err}");
    assert!(!ran);
    assert_eq!(g.journal().last_seq(), 0);
    assert_eq!(g.dirty_bytes(99).expect_err("dirty").code(), "E_STATE");
    assert_eq!(g.runs(99, 1).expect_err("runs").code(), "E_STATE");
    assert_eq!(g.mark(99, 0, 1).expect_err("mark").code(), "E_STATE");
    assert_eq!(g.bitmap_words(99).expect_err("words").code(), "E_STATE");
    let dup = g.add_member(1, common::bitmap(dir.path(), "dup", SIZE)).expect_err("duplicate");
    assert_eq!(dup.code(), "E_STATE");
}

#[test]
fn hostile_ranges_are_refused_without_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    for mode in [ReplicaMode::Track, ReplicaMode::Async] {
        let g = group(dir.path().join(format!("{mode:?}")).as_path(), &[1], SIZE, BIG, mode);
        let mut ran = false;
        let r: R = g.change(1, u64::MAX - 10, 100, Change::Zeroes { punch: true }, || {
            ran = true;
            Ok(())
        });
        let err = r.expect_err("overflowing range");
        assert_eq!(err.code(), "E_RANGE", "{mode:?}: {err}");
        assert!(!ran, "{mode:?}");
        // A write whose data is shorter than its length.
        let r: R = g.change(1, 0, 4096, Change::Write(&[0u8; 10]), || Ok(()));
        if mode == ReplicaMode::Async {
            // The append refuses it, which suspends the group; the change itself goes on.
            r.expect("suspended, tracked");
            assert_eq!(g.mode(), ReplicaMode::Track);
        } else {
            r.expect("tracked");
        }
        assert!(g.runs(1, 10).expect("runs").contains(&(0, GRAN)));
    }
}
