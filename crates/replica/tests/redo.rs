//! After a crash between a record's append and its local commit: the held journal is
//! replayed onto the volumes, and the journal is never released past a change still in
//! flight, so the record a restart needs is still there.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use plexus_journal::{ApplyTarget, RecordKind, RecordRef};
use plexus_replica::{Change, ReplicaError, ReplicaGroup, ReplicaMode};
use std::collections::HashMap;
use std::sync::Arc;

mod common;

use common::MemTarget;

const SIZE: u64 = 1 << 20;

fn group(dir: &std::path::Path) -> ReplicaGroup {
    common::group(dir, &[1], SIZE, 64 << 20, ReplicaMode::Async)
}

#[test]
fn redo_replays_held_records_in_order_onto_the_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let g = group(dir.path());
    // Appended, never committed locally (the owner died): written straight to the journal.
    for (i, fill) in [(0u64, 1u8), (4096, 2), (0, 3)] {
        let data = vec![fill; 4096];
        g.journal().append(&RecordRef { seq: 0, volume: 1, kind: RecordKind::Write, offset: i, len: 4096, data: &data }).unwrap();
    }
    g.journal().append(&RecordRef { seq: 0, volume: 1, kind: RecordKind::Zeroes, offset: 4096, len: 1024, data: &[] }).unwrap();
    let vol = MemTarget::new(SIZE as usize, 9);
    let targets: HashMap<u32, Arc<dyn ApplyTarget>> = HashMap::from([(1, vol.clone() as Arc<dyn ApplyTarget>)]);
    assert_eq!(g.redo(&targets).unwrap(), (4, 4096 * 3 + 1024));
    let v = vol.bytes();
    assert!(v[..4096].iter().all(|&b| b == 3), "the later write of offset 0 wins");
    assert!(v[4096..5120].iter().all(|&b| b == 0));
    assert!(v[5120..8192].iter().all(|&b| b == 2));
    assert!(v[8192..].iter().all(|&b| b == 9));
}

#[test]
fn redo_refuses_a_record_for_a_volume_that_is_not_a_member() {
    let dir = tempfile::tempdir().unwrap();
    let g = group(dir.path());
    g.journal().append(&RecordRef { seq: 0, volume: 7, kind: RecordKind::Punch, offset: 0, len: 4096, data: &[] }).unwrap();
    let targets: HashMap<u32, Arc<dyn ApplyTarget>> = HashMap::new();
    assert_eq!(g.redo(&targets).unwrap_err().code(), "E_STATE");
}

#[test]
fn the_journal_is_not_released_past_a_change_still_committing_locally() {
    let dir = tempfile::tempdir().unwrap();
    let g = Arc::new(group(dir.path()));
    g.change(1, 0, 4096, Change::Write(&[1u8; 4096]), || Ok::<(), ReplicaError>(())).unwrap();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let g2 = Arc::clone(&g);
    let writer = std::thread::spawn(move || {
        g2.change(1, 8192, 4096, Change::Write(&[2u8; 4096]), || {
            entered_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            Ok::<(), ReplicaError>(())
        })
        .unwrap();
    });
    entered_rx.recv().unwrap();
    // Record 2 is appended, its local commit not done: a durable point of 2 releases 1 only.
    assert_eq!(g.journal().last_seq(), 2);
    assert_eq!(g.release_durable(2).unwrap(), 1);
    assert_eq!(g.journal().first_seq(), 2);
    go_tx.send(()).unwrap();
    writer.join().unwrap();
    assert_eq!(g.release_durable(2).unwrap(), 2);
}
