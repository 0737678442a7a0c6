//! Group commit: concurrent syncs share fdatasyncs; a failed one poisons the journal.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::*;
use plexus_journal::{Journal, JournalOptions};

#[test]
fn eight_threads_appending_and_syncing_share_fdatasyncs() {
    let dir = tempfile::tempdir().unwrap();
    // 2 ms per fdatasync, like a disk: syncs queue up behind one another and group.
    let io = CountingSync::new(2000, -1);
    let j = Arc::new(
        Journal::open_with(dir.path(), JournalOptions { capacity: 1 << 30, segment_bytes: 64 << 20, sync_io: Some(io.clone()) }).unwrap(),
    );
    const PER: u64 = 100;
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let j = Arc::clone(&j);
            std::thread::spawn(move || {
                for i in 0..PER {
                    let d = payload(t, i, 512);
                    let seq = j.append(&write(t, i * 512, &d)).unwrap();
                    j.sync().unwrap();
                    assert!(seq <= j.last_seq());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let appends = 8 * PER;
    let syncs = io.files.load(Ordering::SeqCst);
    assert_eq!(j.sync_count(), syncs);
    eprintln!("{appends} append+sync pairs, {syncs} fdatasyncs");
    assert!(syncs * 3 < appends, "{syncs} fdatasyncs for {appends} appends: group commit should share them");
    // Nothing new appended: a sync is free.
    j.sync().unwrap();
    assert_eq!(io.files.load(Ordering::SeqCst), syncs);
}

#[test]
fn a_failed_fdatasync_poisons_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let io = CountingSync::new(0, 1);
    let j = Journal::open_with(dir.path(), JournalOptions { capacity: 1 << 30, segment_bytes: 64 << 20, sync_io: Some(io) }).unwrap();
    j.append(&write(1, 0, b"one")).unwrap();
    j.sync().unwrap();
    j.append(&write(1, 0, b"two")).unwrap();
    assert_eq!(j.sync().unwrap_err().code(), "E_IO");
    // fjall's rule: never retry an fsync after a failure; nothing more is written.
    assert_eq!(j.append(&write(1, 0, b"three")).unwrap_err().code(), "E_IO");
    assert_eq!(j.sync().unwrap_err().code(), "E_IO");
    assert_eq!(j.release(1).unwrap_err().code(), "E_IO");
    drop(j);
    // Reopening recovers what the page cache has.
    let j = Journal::open(dir.path(), 1 << 30).unwrap();
    assert_eq!(j.last_seq(), 2);
}

#[test]
fn sync_with_nothing_appended_issues_no_fdatasync() {
    let dir = tempfile::tempdir().unwrap();
    let io = CountingSync::new(0, -1);
    let j =
        Journal::open_with(dir.path(), JournalOptions { capacity: 1 << 30, segment_bytes: 64 << 20, sync_io: Some(io.clone()) }).unwrap();
    j.sync().unwrap();
    assert_eq!(io.files.load(Ordering::SeqCst), 0);
    j.append(&write(1, 0, b"x")).unwrap();
    j.sync().unwrap();
    j.sync().unwrap();
    assert_eq!(io.files.load(Ordering::SeqCst), 1);
}
