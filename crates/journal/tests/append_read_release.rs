//! Append, read_batch and release round trips: across segment rolls, from 8 threads.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use plexus_journal::{decode_batch, Journal, RecordKind, RecordRef};

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("seg-")).count()
}

#[test]
fn eight_threads_append_across_segment_rolls_every_seq_once_and_intact() {
    let dir = tempfile::tempdir().unwrap();
    let j = Arc::new(Journal::open_with(dir.path(), opts(1 << 30, 64 << 10)).unwrap());
    const PER: u64 = 400;
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let j = Arc::clone(&j);
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for i in 0..PER {
                    let len = 16 + ((i as usize * 97 + t as usize * 13) % 3000);
                    let d = payload(t, i, len);
                    seqs.push(j.append(&write(t, i * 4096, &d)).unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut all = HashSet::new();
    for th in threads {
        let seqs = th.join().unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "one thread's seqs increase");
        all.extend(seqs);
    }
    let n = 8 * PER;
    assert_eq!(all.len() as u64, n);
    assert_eq!(j.last_seq(), n);
    assert_eq!((j.first_seq(), j.next_seq(), j.held_records()), (1, n + 1, n));
    assert!(segment_files(dir.path()) > 5, "the journal rolled segments");

    let mut from = 1;
    let mut seen = 0;
    let mut bytes = 0;
    while from <= n {
        let b = j.read_batch(from, 100 << 10).unwrap();
        assert_eq!(b.first, from);
        let recs = decode_batch(&b.bytes).unwrap();
        assert_eq!(recs.len() as u64, b.count);
        for (k, r) in recs.iter().enumerate() {
            assert_eq!(r.seq, from + k as u64);
            let i = r.offset / 4096;
            assert_eq!(r.data, &payload(r.volume, i, r.data.len())[..], "record {} intact", r.seq);
        }
        bytes += b.bytes.len() as u64;
        seen += b.count;
        from = b.last + 1;
    }
    assert_eq!(seen, n);
    assert_eq!(bytes, j.held_bytes(), "held bytes are the encoded records");
    assert_eq!(j.read_batch(n + 1, 1 << 20).unwrap().count, 0, "past the end: empty");

    // Release half: whole segments below go, first_seq moves, reads below are E_RANGE.
    let files_before = segment_files(dir.path());
    j.release(n / 2).unwrap();
    assert_eq!(j.first_seq(), n / 2 + 1);
    assert_eq!(j.held_records(), n / 2);
    assert!(segment_files(dir.path()) < files_before);
    assert_eq!(j.read_batch(n / 2, 1 << 20).unwrap_err().code(), "E_RANGE");
    assert_eq!(j.read_batch(n / 2 + 1, 1).unwrap().count, 1, "at least one record even over max_bytes");
    assert_eq!(j.release(n + 1).unwrap_err().code(), "E_RANGE");
    j.release(n).unwrap();
    assert_eq!((j.first_seq(), j.held_records(), j.held_bytes()), (n + 1, 0, 0));
    assert_eq!(segment_files(dir.path()), 1, "only the active segment stays");
    assert_eq!(j.append(&write(0, 0, b"after")).unwrap(), n + 1);
}

#[test]
fn extents_from_lists_held_records_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open_with(dir.path(), opts(1 << 30, 4096)).unwrap();
    append_n(&j, 20, 700);
    j.append(&RecordRef { seq: 0, volume: 2, kind: RecordKind::Zeroes, offset: 1 << 30, len: 1 << 35, data: &[] }).unwrap();
    j.append(&RecordRef { seq: 0, volume: 3, kind: RecordKind::Punch, offset: 0, len: 512, data: &[] }).unwrap();
    j.release(4).unwrap();
    let ex = j.extents_from(2).unwrap();
    assert_eq!(ex.len(), 18, "released records are skipped");
    assert_eq!(ex[0].seq, 5);
    assert!(ex.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!((ex[16].volume, ex[16].kind, ex[16].len), (2, RecordKind::Zeroes, 1 << 35));
    assert_eq!((ex[17].kind, ex[17].len), (RecordKind::Punch, 512));
    assert_eq!(j.extents_from(22).unwrap()[0].seq, 22);
    assert!(j.extents_from(23).unwrap().is_empty());
}

#[test]
fn invalid_records_are_e_range_and_append_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), 1 << 20).unwrap();
    let bad = RecordRef { seq: 0, volume: 1, kind: RecordKind::Write, offset: 0, len: 10, data: b"short" };
    assert_eq!(j.append(&bad).unwrap_err().code(), "E_RANGE");
    let zero_with_data = RecordRef { kind: RecordKind::Zeroes, len: 5, ..bad };
    assert_eq!(j.append(&zero_with_data).unwrap_err().code(), "E_RANGE");
    let overflow = RecordRef { seq: 0, volume: 1, kind: RecordKind::Punch, offset: u64::MAX, len: 2, data: &[] };
    assert_eq!(j.append(&overflow).unwrap_err().code(), "E_RANGE");
    assert_eq!(j.last_seq(), 0);
    assert_eq!(j.first_seq(), 1);
}

#[test]
fn a_record_bigger_than_a_segment_gets_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open_with(dir.path(), opts(1 << 30, 4096)).unwrap();
    let big = payload(1, 0, 100_000);
    j.append(&write(1, 0, b"small")).unwrap();
    j.append(&write(1, 0, &big)).unwrap();
    j.append(&write(1, 0, b"small again")).unwrap();
    let b = j.read_batch(2, 10).unwrap();
    assert_eq!((b.first, b.last, b.count), (2, 2, 1));
    assert_eq!(decode_batch(&b.bytes).unwrap()[0].data, &big[..]);
    assert_eq!(j.read_batch(1, 1 << 20).unwrap().count, 3, "a batch spans segments");
}

#[test]
fn wait_appended_wakes_on_append_and_on_wake() {
    let dir = tempfile::tempdir().unwrap();
    let j = Arc::new(Journal::open(dir.path(), 1 << 20).unwrap());
    assert_eq!(j.wait_appended(0, Duration::from_millis(20)), 0, "times out");
    let j2 = Arc::clone(&j);
    let waiter = std::thread::spawn(move || j2.wait_appended(0, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(50));
    j.append(&write(1, 0, b"x")).unwrap();
    assert_eq!(waiter.join().unwrap(), 1);
    let j3 = Arc::clone(&j);
    let t0 = std::time::Instant::now();
    let waiter = std::thread::spawn(move || j3.wait_appended(1, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(50));
    j.wake();
    assert_eq!(waiter.join().unwrap(), 1);
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_journal_and_the_applier_are_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Journal>();
    shared::<plexus_journal::Applier>();
}
