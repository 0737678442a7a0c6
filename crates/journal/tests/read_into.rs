//! `read_batch_into`: whole records into the caller's reused buffer, the same bytes as
//! `read_batch`, `None` when the first record alone does not fit.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use plexus_journal::{decode_batch, Journal, RecordKind, RecordRef, RECORD_HEADER};

fn append(j: &Journal, len: usize, fill: u8) -> u64 {
    let data = vec![fill; len];
    j.append(&RecordRef { seq: 0, volume: 1, kind: RecordKind::Write, offset: 0, len: len as u64, data: &data }).unwrap()
}

#[test]
fn reads_as_many_whole_records_as_fit_the_same_bytes_as_read_batch() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), 1 << 30).unwrap();
    for i in 0..10u8 {
        append(&j, 4096, i);
    }
    let per = RECORD_HEADER + 4096;
    let mut buf = vec![0u8; per * 3 + 100];
    let got = j.read_batch_into(2, &mut buf).unwrap().unwrap();
    assert_eq!((got.first, got.last, got.count, got.len), (2, 4, 3, per * 3));
    let same = j.read_batch(2, per * 3).unwrap();
    assert_eq!(&buf[..got.len], &same.bytes[..]);
    let recs = decode_batch(&buf[..got.len]).unwrap();
    assert_eq!(recs.iter().map(|r| (r.seq, r.data[0])).collect::<Vec<_>>(), vec![(2, 1), (3, 2), (4, 3)]);
    // Past the last record: an empty batch.
    assert_eq!(j.read_batch_into(11, &mut buf).unwrap().unwrap().count, 0);
}

#[test]
fn a_first_record_larger_than_the_buffer_is_none_and_read_batch_still_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), 1 << 30).unwrap();
    append(&j, 1 << 20, 7);
    let mut small = vec![0u8; 64 << 10];
    assert!(j.read_batch_into(1, &mut small).unwrap().is_none());
    let own = j.read_batch(1, 0).unwrap();
    assert_eq!(own.count, 1);
    assert_eq!(decode_batch(&own.bytes).unwrap()[0].data.len(), 1 << 20);
}

#[test]
fn released_records_are_e_range() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), 1 << 30).unwrap();
    append(&j, 512, 1);
    append(&j, 512, 2);
    j.release(1).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    assert_eq!(j.read_batch_into(1, &mut buf).unwrap_err().code(), "E_RANGE");
    assert_eq!(j.read_batch_into(2, &mut buf).unwrap().unwrap().count, 1);
}
