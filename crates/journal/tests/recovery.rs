//! What reopening recovers after a crash or damage: torn tails cut, damage refused,
//! release/reset/epoch durable, capacity, the directory lock.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use common::*;
use plexus_journal::{decode_batch, Journal, RECORD_HEADER, SEGMENT_HEADER};

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .collect();
    v.sort();
    v
}

fn flip(path: &Path, at: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[at as usize] ^= 0x40;
    std::fs::write(path, b).unwrap();
}

/// Ten 100-byte records in one segment: record i (seq i+1) starts here.
fn rec_at(i: u64) -> u64 {
    SEGMENT_HEADER as u64 + i * (RECORD_HEADER as u64 + 100)
}

fn ten(dir: &Path) {
    let j = Journal::open(dir, 1 << 30).unwrap();
    append_n(&j, 10, 100);
}

fn assert_continues_at(dir: &Path, next: u64) {
    let j = Journal::open(dir, 1 << 30).unwrap();
    assert_eq!(j.next_seq(), next);
    assert_eq!(j.append(&write(1, 0, b"more")).unwrap(), next);
    let b = j.read_batch(1, 1 << 20).unwrap();
    let recs = decode_batch(&b.bytes).unwrap();
    assert_eq!(recs.len() as u64, next);
    assert_eq!(recs.last().unwrap().data, b"more");
}

#[test]
fn torn_tail_cut_mid_record_is_truncated_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    ten(dir.path());
    let seg = &segments(dir.path())[0];
    OpenOptions::new().write(true).open(seg).unwrap().set_len(rec_at(9) + 70).unwrap();
    assert_continues_at(dir.path(), 10);
    // Cut inside the header of the last record ("more", 4 bytes of data) this time.
    let seg = &segments(dir.path())[0];
    let len = std::fs::metadata(seg).unwrap().len();
    OpenOptions::new().write(true).open(seg).unwrap().set_len(len - (RECORD_HEADER as u64 + 4) + 20).unwrap();
    assert_continues_at(dir.path(), 10);
}

#[test]
fn torn_tail_with_a_flipped_byte_in_the_last_record_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    ten(dir.path());
    flip(&segments(dir.path())[0], rec_at(9) + RECORD_HEADER as u64 + 50);
    assert_continues_at(dir.path(), 10);
}

#[test]
fn a_zero_filled_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    ten(dir.path());
    let seg = &segments(dir.path())[0];
    let len = std::fs::metadata(seg).unwrap().len();
    OpenOptions::new().write(true).open(seg).unwrap().set_len(len + 8192).unwrap();
    assert_continues_at(dir.path(), 11);
}

#[test]
fn a_corrupt_middle_record_is_e_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    ten(dir.path());
    flip(&segments(dir.path())[0], rec_at(4) + RECORD_HEADER as u64 + 3);
    let err = Journal::open(dir.path(), 1 << 30).unwrap_err();
    assert_eq!(err.code(), "E_CORRUPT", "{err}");
}

#[test]
fn damage_in_an_earlier_segment_is_e_corrupt_even_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = Journal::open_with(dir.path(), opts(1 << 30, 4096)).unwrap();
        append_n(&j, 100, 500);
    }
    let segs = segments(dir.path());
    assert!(segs.len() > 3);
    let len = std::fs::metadata(&segs[1]).unwrap().len();
    flip(&segs[1], len - 10);
    assert_eq!(Journal::open(dir.path(), 1 << 30).unwrap_err().code(), "E_CORRUPT");
}

#[test]
fn a_missing_middle_segment_is_e_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = Journal::open_with(dir.path(), opts(1 << 30, 4096)).unwrap();
        append_n(&j, 100, 500);
    }
    std::fs::remove_file(&segments(dir.path())[2]).unwrap();
    assert_eq!(Journal::open(dir.path(), 1 << 30).unwrap_err().code(), "E_CORRUPT");
}

#[test]
fn a_torn_header_of_a_new_last_segment_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    ten(dir.path());
    // A roll that crashed right after creating the file: header half written.
    std::fs::write(dir.path().join("seg-00000000000000000011.log"), b"PLXJSE").unwrap();
    assert_continues_at(dir.path(), 11);
}

#[test]
fn reopen_after_release_and_reset_keeps_first_and_next_seq() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = Journal::open_with(dir.path(), opts(1 << 30, 4096)).unwrap();
        append_n(&j, 50, 300);
        j.release(30).unwrap();
    }
    {
        let j = Journal::open_with(dir.path(), opts(1 << 30, 4096)).unwrap();
        assert_eq!((j.first_seq(), j.last_seq(), j.held_records()), (31, 50, 20));
        assert_eq!(j.read_batch(30, 1 << 20).unwrap_err().code(), "E_RANGE");
        assert_eq!(j.read_batch(31, 1 << 20).unwrap().count, 20);
        assert_eq!(j.held_bytes(), 20 * (RECORD_HEADER as u64 + 300));
        assert_eq!(j.reset(10).unwrap_err().code(), "E_RANGE");
        j.reset(1000).unwrap();
        assert_eq!((j.first_seq(), j.next_seq(), j.held_records()), (1000, 1000, 0));
        j.set_epoch(7).unwrap();
    }
    {
        let j = Journal::open_with(dir.path(), opts(1 << 30, 4096)).unwrap();
        assert_eq!((j.first_seq(), j.next_seq(), j.epoch()), (1000, 1000, 7));
        assert_eq!(j.append(&write(1, 0, b"x")).unwrap(), 1000);
    }
    let j = Journal::open(dir.path(), 1 << 30).unwrap();
    assert_eq!((j.first_seq(), j.last_seq()), (1000, 1000));
}

#[test]
fn a_crash_between_release_state_and_unlink_drops_the_segments_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let saved: Vec<(PathBuf, Vec<u8>)>;
    {
        let j = Journal::open_with(dir.path(), opts(1 << 30, 4096)).unwrap();
        append_n(&j, 50, 300);
        saved = segments(dir.path()).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect();
        j.release(40).unwrap();
    }
    // The unlinks "did not reach the disk": put the files back.
    for (p, b) in &saved {
        std::fs::write(p, b).unwrap();
    }
    let j = Journal::open_with(dir.path(), opts(1 << 30, 4096)).unwrap();
    assert_eq!((j.first_seq(), j.last_seq()), (41, 50));
    assert!(segments(dir.path()).len() < saved.len());
}

#[test]
fn capacity_full_then_release_frees_room() {
    let dir = tempfile::tempdir().unwrap();
    let rec = RECORD_HEADER as u64 + 1000;
    let j = Journal::open_with(dir.path(), opts(10 * rec, 4096)).unwrap();
    append_n(&j, 10, 1000);
    let d = payload(1, 99, 1000);
    let err = j.append(&write(1, 0, &d)).unwrap_err();
    assert_eq!(err.code(), "E_FULL", "{err}");
    assert_eq!(j.last_seq(), 10, "nothing appended");
    j.release(3).unwrap();
    for k in 0..3 {
        assert_eq!(j.append(&write(1, 0, &d)).unwrap(), 11 + k);
    }
    assert_eq!(j.append(&write(1, 0, &d)).unwrap_err().code(), "E_FULL");
    assert_eq!(j.held_bytes(), 10 * rec);
}

#[test]
fn a_second_open_of_the_same_dir_is_e_busy() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(Journal::open(dir.path(), 1 << 20).unwrap_err().code(), "E_BUSY");
    drop(j);
    Journal::open(dir.path(), 1 << 20).unwrap();
}

#[test]
fn a_corrupt_state_file_is_e_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = Journal::open(dir.path(), 1 << 20).unwrap();
        append_n(&j, 3, 10);
        j.release(2).unwrap();
    }
    flip(&dir.path().join("state"), 20);
    assert_eq!(Journal::open(dir.path(), 1 << 20).unwrap_err().code(), "E_CORRUPT");
}
