//! The group commit of durable marks: concurrent marks share fdatasyncs, every mark is
//! durable when it returns (a reopen without a flush finds it), and a snapshot taken
//! while marks are syncing keeps their bits.
#![allow(clippy::unwrap_used)]

use plexus_bitmap::DurableBitmap;
use std::sync::Arc;

const G: u64 = 65536;

#[test]
fn concurrent_marks_share_syncs_and_every_returned_mark_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.bitmap");
    let (threads, per) = (8u64, 200u64);
    let d = Arc::new(DurableBitmap::create(&path, threads * per * G, G, true).unwrap());
    std::thread::scope(|s| {
        for t in 0..threads {
            let d = Arc::clone(&d);
            s.spawn(move || {
                for i in 0..per {
                    let bit = i * threads + t;
                    d.mark_range(bit * G, 1).unwrap();
                    assert!(d.bitmap().test_bit(bit));
                }
            });
        }
    });
    let marks = threads * per;
    assert!(d.log_syncs() < marks, "{} syncs for {marks} marks: none shared", d.log_syncs());
    drop(d);
    // As after a crash: no flush, the log replayed.
    let back = DurableBitmap::open(&path, true).unwrap();
    assert_eq!(back.bitmap().count(), marks);
}

#[test]
fn a_snapshot_between_a_marks_append_and_its_publication_keeps_its_bits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.bitmap");
    let d = Arc::new(DurableBitmap::create(&path, 4096 * G, G, true).unwrap());
    // Flushes (snapshot + log truncation) race marks on other threads.
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let d = Arc::clone(&d);
            s.spawn(move || {
                for i in 0..256u64 {
                    d.mark_range((i * 4 + t) * G, 1).unwrap();
                }
            });
        }
        let d2 = Arc::clone(&d);
        s.spawn(move || {
            for _ in 0..50 {
                d2.flush().unwrap();
            }
        });
    });
    assert_eq!(d.bitmap().count(), 1024);
    drop(d);
    assert_eq!(DurableBitmap::open(&path, true).unwrap().bitmap().count(), 1024, "every mark survives");
}

#[test]
#[ignore = "a benchmark: cargo test --release -p plexus-bitmap --test group_commit -- --ignored --nocapture"]
fn durable_mark_throughput_by_writers() {
    let one = plexus_bitmap::bench::durable_marks_per_s(tempfile::tempdir().unwrap().path(), 1, 400).unwrap();
    let eight = plexus_bitmap::bench::durable_marks_per_s(tempfile::tempdir().unwrap().path(), 8, 400).unwrap();
    println!(
        "1 writer: {:.0} marks/s ({} syncs); 8 writers: {:.0} marks/s ({} syncs); ratio {:.2}",
        one.0,
        one.1,
        eight.0,
        eight.1,
        eight.0 / one.0
    );
}

#[test]
fn next_set_finds_the_first_set_bit_a_word_at_a_time() {
    let b = plexus_bitmap::DirtyBitmap::new(1000 * G, G).unwrap();
    assert_eq!(b.next_set(0), None);
    for bit in [3u64, 64, 65, 500, 999] {
        b.set_bit(bit);
    }
    assert_eq!(b.next_set(0), Some(3));
    assert_eq!(b.next_set(4), Some(64));
    assert_eq!(b.next_set(65), Some(65));
    assert_eq!(b.next_set(66), Some(500));
    assert_eq!(b.next_set(501), Some(999));
    assert_eq!(b.next_set(1000), None);
    assert_eq!(b.next_set(u64::MAX), None);
}
