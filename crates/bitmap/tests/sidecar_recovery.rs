//! Crash-recovery behaviour of the durable sidecar (snapshot + intent log).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use plexus_bitmap::{BitmapError, DurableBitmap};

const G: u64 = 65536;
const SIZE: u64 = 1000 * G + 123;

struct Fx {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn fx() -> Fx {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vol.bitmap");
    Fx { _dir: dir, path }
}

fn log_of(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.log", p.display()))
}

fn tmp_of(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.tmp", p.display()))
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).expect("stat").len()
}

fn code<T>(r: Result<T, BitmapError>) -> &'static str {
    match r {
        Ok(_) => "OK",
        Err(e) => e.code(),
    }
}

fn dirty_bits(d: &DurableBitmap) -> Vec<(u64, u64)> {
    d.bitmap().bit_runs().collect()
}

#[test]
fn durable_marks_survive_drop_without_flush() {
    let f = fx();
    let d = DurableBitmap::create(&f.path, SIZE, G, true).expect("create");
    assert_eq!(d.generation(), 1);
    assert_eq!(d.mark_range(0, 1).expect("mark"), 1);
    assert_eq!(d.mark_range(SIZE - 1, 1).expect("mark last"), 1);
    assert_eq!(d.mark_range(60 * G, 10 * G).expect("mark"), 10);
    assert_eq!(file_len(&log_of(&f.path)), 3 * 32);
    // Fast path: already dirty, no new record.
    assert_eq!(d.mark_range(61 * G, 3).expect("mark"), 0);
    assert_eq!(file_len(&log_of(&f.path)), 3 * 32);
    drop(d);

    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(dirty_bits(&d), vec![(0, 1), (60, 10), (1000, 1)]);
    assert_eq!(d.bitmap().dirty_bytes(), G + 10 * G + 123);
    assert_eq!(d.generation(), 1);
    // Appending continues after the replayed records.
    d.mark_range(500 * G, 1).expect("mark");
    assert_eq!(file_len(&log_of(&f.path)), 4 * 32);
    drop(d);
    let d = DurableBitmap::open(&f.path, true).expect("reopen");
    assert!(d.bitmap().test_bit(500));
    assert_eq!(d.bitmap().count(), 13);
}

#[test]
fn flush_writes_snapshot_and_truncates_log() {
    let f = fx();
    let d = DurableBitmap::create(&f.path, SIZE, G, true).expect("create");
    d.mark_range(3 * G, 2 * G).expect("mark");
    d.flush().expect("flush");
    assert_eq!(d.generation(), 2);
    assert_eq!(file_len(&log_of(&f.path)), 0);
    assert_eq!(file_len(&f.path), 64 + 16 * 8);
    assert!(!tmp_of(&f.path).exists());
    drop(d);
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(dirty_bits(&d), vec![(3, 2)]);
    assert_eq!(d.generation(), 2);
}

#[test]
fn non_durable_mode_persists_only_on_flush() {
    let f = fx();
    let d = DurableBitmap::create(&f.path, SIZE, G, false).expect("create");
    assert!(!d.is_durable());
    d.mark_range(0, G).expect("mark");
    assert_eq!(file_len(&log_of(&f.path)), 0, "no log records in non-durable mode");
    drop(d);
    let d = DurableBitmap::open(&f.path, false).expect("open");
    assert_eq!(d.bitmap().count(), 0, "unflushed marks are lost by design");
    d.mark_range(0, G).expect("mark");
    d.flush().expect("flush");
    drop(d);
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(dirty_bits(&d), vec![(0, 1)]);
}

fn three_records(f: &Fx) {
    let d = DurableBitmap::create(&f.path, SIZE, G, true).expect("create");
    d.mark_range(G, 1).expect("r1");
    d.mark_range(10 * G, 1).expect("r2");
    d.mark_range(20 * G, 1).expect("r3");
}

#[test]
fn torn_tail_garbage_is_truncated() {
    let f = fx();
    three_records(&f);
    let log = log_of(&f.path);
    let mut fh = OpenOptions::new().append(true).open(&log).expect("open log");
    fh.write_all(&[0xAB; 10]).expect("garbage");
    drop(fh);
    assert_eq!(file_len(&log), 3 * 32 + 10);
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(dirty_bits(&d), vec![(1, 1), (10, 1), (20, 1)]);
    assert_eq!(file_len(&log), 3 * 32, "log truncated to valid prefix");
    // New records go after the valid prefix and are readable.
    d.mark_range(30 * G, 1).expect("mark");
    drop(d);
    let d = DurableBitmap::open(&f.path, true).expect("reopen");
    assert_eq!(d.bitmap().count(), 4);
}

#[test]
fn half_written_last_record_is_dropped() {
    let f = fx();
    three_records(&f);
    let log = log_of(&f.path);
    let fh = OpenOptions::new().write(true).open(&log).expect("open log");
    fh.set_len(2 * 32 + 16).expect("cut");
    drop(fh);
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(dirty_bits(&d), vec![(1, 1), (10, 1)]);
    assert_eq!(file_len(&log), 2 * 32);
}

#[test]
fn bad_crc_record_stops_replay() {
    let f = fx();
    three_records(&f);
    let log = log_of(&f.path);
    let mut bytes = fs::read(&log).expect("read");
    bytes[32 + 9] ^= 0x01; // first_bit of record 2
    fs::write(&log, &bytes).expect("write");
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(dirty_bits(&d), vec![(1, 1)], "replay stops at the first bad record");
    assert_eq!(file_len(&log), 32);
}

#[test]
fn torn_snapshot_tmp_is_ignored() {
    let f = fx();
    three_records(&f);
    fs::write(tmp_of(&f.path), b"PLXBMAP\0 half a snapshot").expect("tmp");
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(d.bitmap().count(), 3);
    assert!(!tmp_of(&f.path).exists(), "stale tmp removed");
    d.flush().expect("flush works after a torn tmp");
}

#[test]
fn missing_snapshot_is_e_noent_and_missing_log_is_empty() {
    let f = fx();
    assert_eq!(code(DurableBitmap::open(&f.path, true)), "E_NOENT");
    let d = DurableBitmap::create(&f.path, SIZE, G, true).expect("create");
    d.mark_range(0, 1).expect("mark");
    d.flush().expect("flush");
    drop(d);
    fs::remove_file(log_of(&f.path)).expect("rm log");
    let d = DurableBitmap::open(&f.path, true).expect("open without log");
    assert_eq!(d.bitmap().count(), 1);
    assert!(log_of(&f.path).exists());
}

#[test]
fn every_corrupted_snapshot_byte_is_e_corrupt() {
    let f = fx();
    let d = DurableBitmap::create(&f.path, 200 * G + 5, G, true).expect("create");
    d.mark_range(0, 70 * G).expect("mark");
    d.flush().expect("flush");
    drop(d);
    let good = fs::read(&f.path).expect("read");
    assert_eq!(good.len(), 64 + 4 * 8);
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            fs::write(&f.path, &bad).expect("write");
            let r = DurableBitmap::open(&f.path, true);
            assert_eq!(code(r), "E_CORRUPT", "byte {i} ^ {flip:#x}");
        }
    }
    // Every truncation and an extension.
    for n in 0..good.len() {
        fs::write(&f.path, &good[..n]).expect("write");
        assert_eq!(code(DurableBitmap::open(&f.path, true)), "E_CORRUPT", "len {n}");
    }
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 8]);
    fs::write(&f.path, &longer).expect("write");
    let e = DurableBitmap::open(&f.path, true).expect_err("too long");
    assert_eq!(e.code(), "E_CORRUPT");
    assert!(e.to_string().contains("vol.bitmap"), "{e}");
    fs::write(&f.path, &good).expect("restore");
    assert_eq!(DurableBitmap::open(&f.path, true).expect("good again").bitmap().count(), 70);
}

#[test]
fn random_garbage_never_panics() {
    let f = fx();
    let mut x = 0x1234_5678_9abc_def1u64;
    for n in [0usize, 1, 63, 64, 65, 72, 96, 128, 4096] {
        for _ in 0..20 {
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            fs::write(&f.path, &bytes).expect("write");
            assert!(DurableBitmap::open(&f.path, true).is_err());
        }
    }
}

#[test]
fn stale_generation_records_are_ignored_after_flush() {
    let f = fx();
    let d = DurableBitmap::create(&f.path, SIZE, G, true).expect("create");
    d.mark_range(7 * G, G).expect("mark");
    let old_log = fs::read(log_of(&f.path)).expect("read log");
    d.clear().expect("clear");
    assert_eq!(d.generation(), 2);
    drop(d);
    // Put the generation-1 record back, as if the truncation had not reached disk.
    fs::write(log_of(&f.path), &old_log).expect("restore old log");
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(d.bitmap().count(), 0, "cleared bit must not be resurrected");
}

#[test]
fn crash_after_rename_before_log_truncate() {
    let f = fx();
    let d = DurableBitmap::create(&f.path, SIZE, G, true).expect("create");
    d.mark_range(2 * G, G).expect("A");
    d.mark_range(9 * G, G).expect("B");
    let old_log = fs::read(log_of(&f.path)).expect("read log");
    // Resync copied A; clearing it writes a generation-2 snapshot with B only.
    d.clear_range(2 * G, G).expect("clear A");
    drop(d);
    fs::write(log_of(&f.path), &old_log).expect("simulate untruncated log");
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(dirty_bits(&d), vec![(9, 1)], "nothing lost, nothing resurrected");
    // The stale records stay in the log but new ones (gen 2) still apply.
    d.mark_range(30 * G, 1).expect("C");
    drop(d);
    let d = DurableBitmap::open(&f.path, true).expect("reopen");
    assert_eq!(dirty_bits(&d), vec![(9, 1), (30, 1)]);
}

#[test]
fn crash_before_rename_keeps_old_state() {
    let f = fx();
    let d = DurableBitmap::create(&f.path, SIZE, G, true).expect("create");
    d.mark_range(2 * G, G).expect("A");
    d.mark_range(9 * G, G).expect("B");
    let old_snap = fs::read(&f.path).expect("snap");
    let old_log = fs::read(log_of(&f.path)).expect("log");
    d.flush().expect("flush");
    let new_snap = fs::read(&f.path).expect("snap");
    drop(d);
    // Crash before rename: old snapshot + old log, and a complete-looking tmp.
    fs::write(&f.path, &old_snap).expect("old snap");
    fs::write(log_of(&f.path), &old_log).expect("old log");
    fs::write(tmp_of(&f.path), &new_snap).expect("tmp");
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(dirty_bits(&d), vec![(2, 1), (9, 1)]);
    assert_eq!(d.generation(), 1);
}

#[test]
fn open_or_create_checks_geometry() {
    let f = fx();
    let d = DurableBitmap::open_or_create(&f.path, SIZE, G, true).expect("create");
    d.mark_range(0, 1).expect("mark");
    drop(d);
    let d = DurableBitmap::open_or_create(&f.path, SIZE, G, true).expect("open");
    assert_eq!(d.bitmap().count(), 1);
    drop(d);
    assert_eq!(code(DurableBitmap::open_or_create(&f.path, SIZE + G, G, true)), "E_SIZE");
    assert_eq!(code(DurableBitmap::open_or_create(&f.path, SIZE, 2 * G, true)), "E_SIZE");
}

#[test]
fn create_over_existing_resets() {
    let f = fx();
    let d = DurableBitmap::create(&f.path, SIZE, G, true).expect("create");
    d.mark_range(0, 10 * G).expect("mark");
    drop(d);
    let d = DurableBitmap::create(&f.path, SIZE, G, true).expect("recreate");
    assert_eq!(d.bitmap().count(), 0);
    drop(d);
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(d.bitmap().count(), 0, "old log records do not leak into the new bitmap");
}

#[test]
fn swap_out_keeps_disk_state_until_flush() {
    let f = fx();
    let d = DurableBitmap::create(&f.path, SIZE, G, true).expect("create");
    d.mark_range(0, 3 * G).expect("mark");
    let taken = d.swap_out();
    assert_eq!(taken.first().copied(), Some(0b111));
    assert_eq!(d.bitmap().count(), 0);
    // A new write to a swapped-out granule must be logged again.
    assert_eq!(d.mark_range(G, 1).expect("remark"), 1);
    drop(d);
    // Crash before resync finished: everything is still dirty on disk.
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(dirty_bits(&d), vec![(0, 3)]);
    let _ = d.swap_out();
    d.mark_range(G, 1).expect("remark");
    d.flush().expect("resync done");
    drop(d);
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(dirty_bits(&d), vec![(1, 1)]);
}

#[test]
fn durable_range_errors() {
    let f = fx();
    let d = DurableBitmap::create(&f.path, SIZE, G, true).expect("create");
    assert_eq!(code(d.mark_range(SIZE, 1)), "E_RANGE");
    assert_eq!(code(d.clear_range(SIZE, 1)), "E_RANGE");
    assert_eq!(d.mark_range(SIZE, 0).expect("empty"), 0);
    assert_eq!(file_len(&log_of(&f.path)), 0);
    assert_eq!(code(DurableBitmap::create(&f.path, SIZE, 3000, true)), "E_INVALID");
}

#[test]
fn clearing_what_is_clear_on_disk_writes_no_snapshot() {
    let f = fx();
    // Nothing on disk (a mark without write intent is in memory only): a clear only
    // clears memory (no new generation, no syncs).
    let d = DurableBitmap::create(&f.path, SIZE, G, false).expect("create");
    d.mark_range(3 * G, G).expect("mark in memory only");
    d.clear().expect("clear");
    assert_eq!((d.generation(), d.bitmap().count()), (1, 0));
    drop(d);
    let d = DurableBitmap::open(&f.path, true).expect("open");
    // A durable mark is on disk: clearing must persist a snapshot.
    d.mark_range(5 * G, G).expect("mark");
    d.clear().expect("clear");
    assert_eq!(d.generation(), 2);
    drop(d);
    let d = DurableBitmap::open(&f.path, true).expect("open");
    assert_eq!(d.bitmap().count(), 0);
    // A flushed snapshot with a bit set, then a clear: persisted too.
    d.mark_range(9 * G, G).expect("mark");
    d.flush().expect("flush");
    d.clear().expect("clear");
    drop(d);
    assert_eq!(DurableBitmap::open(&f.path, true).expect("open").bitmap().count(), 0);
}
