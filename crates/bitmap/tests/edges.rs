//! Geometry, range edges and single-bit semantics of `DirtyBitmap`.

use plexus_bitmap::{BitmapError, ByteRange, DirtyBitmap, DEFAULT_GRANULARITY};

const G: u64 = 4096;

fn bm(size: u64) -> DirtyBitmap {
    DirtyBitmap::new(size, G).expect("valid geometry")
}

fn code<T>(r: Result<T, BitmapError>) -> &'static str {
    match r {
        Ok(_) => "OK",
        Err(e) => e.code(),
    }
}

#[test]
fn geometry_rounds_up_partial_last_granule() {
    let b = bm(10 * G + 100);
    assert_eq!(b.len_bits(), 11);
    assert_eq!(b.size(), 10 * G + 100);
    assert_eq!(b.granularity(), G);
    let d = DirtyBitmap::new(1 << 30, DEFAULT_GRANULARITY).expect("default");
    assert_eq!(d.len_bits(), (1 << 30) / 65536);
}

#[test]
fn invalid_geometry_is_e_invalid() {
    assert_eq!(code(DirtyBitmap::new(1 << 20, 1000)), "E_INVALID");
    assert_eq!(code(DirtyBitmap::new(1 << 20, 256)), "E_INVALID");
    assert_eq!(code(DirtyBitmap::new(1 << 20, 128 << 20)), "E_INVALID");
    assert_eq!(code(DirtyBitmap::new(1 << 20, 0)), "E_INVALID");
    assert_eq!(code(DirtyBitmap::new(0, G)), "E_INVALID");
    assert_eq!(code(DirtyBitmap::new(1, 512)), "OK");
    assert_eq!(code(DirtyBitmap::new(1, 64 << 20)), "OK");
}

#[test]
fn unaligned_ranges_mark_touched_granules() {
    let b = bm(100 * G);
    assert_eq!(b.mark_range(1, 1).expect("in range"), 1);
    assert!(b.test_bit(0));
    assert!(!b.test_bit(1));
    assert_eq!(b.count(), 1);

    let b = bm(100 * G);
    assert_eq!(b.mark_range(G - 1, 2).expect("in range"), 2);
    assert!(b.test_bit(0) && b.test_bit(1) && !b.test_bit(2));

    // Exactly one granule, aligned.
    let b = bm(100 * G);
    assert_eq!(b.mark_range(5 * G, G).expect("in range"), 1);
    assert!(b.test_bit(5) && !b.test_bit(4) && !b.test_bit(6));
}

#[test]
fn mark_returns_newly_set_count() {
    let b = bm(100 * G);
    assert_eq!(b.mark_range(0, 10 * G).expect("ok"), 10);
    assert_eq!(b.mark_range(5 * G, 10 * G).expect("ok"), 5);
    assert_eq!(b.mark_range(0, 15 * G).expect("ok"), 0);
    assert_eq!(b.count(), 15);
}

#[test]
fn ranges_spanning_word_boundary() {
    let b = bm(1000 * G);
    assert_eq!(b.mark_range(60 * G, 10 * G).expect("ok"), 10);
    assert_eq!(b.count(), 10);
    assert!(!b.test_bit(59));
    assert!(b.test_bit(60) && b.test_bit(63) && b.test_bit(64) && b.test_bit(69));
    assert!(!b.test_bit(70));
    let runs: Vec<_> = b.runs().collect();
    assert_eq!(runs, vec![ByteRange { offset: 60 * G, len: 10 * G }]);
    // Many whole words at once.
    let b = bm(1000 * G);
    assert_eq!(b.mark_range(3 * G, 900 * G).expect("ok"), 900);
    assert_eq!(b.count(), 900);
    assert!(!b.test_bit(2) && b.test_bit(3) && b.test_bit(902) && !b.test_bit(903));
}

#[test]
fn first_and_last_bit_with_partial_last_granule() {
    let size = 10 * G + 100;
    let b = bm(size);
    b.mark_range(size - 1, 1).expect("last byte");
    assert!(b.test_bit(10));
    assert_eq!(b.count(), 1);
    assert_eq!(b.dirty_bytes(), 100);
    let runs: Vec<_> = b.runs().collect();
    assert_eq!(runs, vec![ByteRange { offset: 10 * G, len: 100 }]);

    b.mark_range(0, 1).expect("first byte");
    assert_eq!(b.dirty_bytes(), G + 100);
    b.mark_range(0, size).expect("whole volume");
    assert_eq!(b.count(), 11);
    assert_eq!(b.dirty_bytes(), size);
    let runs: Vec<_> = b.runs().collect();
    assert_eq!(runs, vec![ByteRange { offset: 0, len: size }]);
}

#[test]
fn dirty_bytes_full_granules() {
    let b = bm(64 * G);
    b.mark_range(63 * G, G).expect("ok");
    b.mark_range(0, 1).expect("ok");
    assert_eq!(b.dirty_bytes(), 2 * G);
}

#[test]
fn out_of_range_is_e_range() {
    let size = 10 * G + 100;
    let b = bm(size);
    assert_eq!(code(b.mark_range(size, 1)), "E_RANGE");
    assert_eq!(code(b.mark_range(size - 1, 2)), "E_RANGE");
    assert_eq!(code(b.mark_range(u64::MAX, 2)), "E_RANGE");
    assert_eq!(code(b.mark_range(1, u64::MAX)), "E_RANGE");
    assert_eq!(code(b.mark_range(size + 1, 0)), "E_RANGE");
    assert_eq!(code(b.clear_range(size, 1)), "E_RANGE");
    assert_eq!(b.mark_range(size, 0).expect("empty at end"), 0);
    assert_eq!(b.mark_range(5, 0).expect("empty"), 0);
    assert_eq!(b.count(), 0);
    let msg = b.mark_range(size, 1).expect_err("range").to_string();
    assert!(msg.contains(&size.to_string()), "{msg}");
}

#[test]
fn range_queries() {
    let b = bm(100 * G);
    b.mark_range(10 * G, 5 * G).expect("ok");
    assert!(b.is_range_dirty(0, 11 * G));
    assert!(!b.is_range_dirty(0, 10 * G));
    assert!(b.is_range_dirty(14 * G + 5, 1));
    assert!(!b.is_range_dirty(15 * G, G));
    assert!(!b.is_range_dirty(12 * G, 0));
    assert!(b.all_range_dirty(10 * G, 5 * G));
    assert!(b.all_range_dirty(10 * G + 7, 3));
    assert!(!b.all_range_dirty(10 * G, 6 * G));
    assert!(!b.all_range_dirty(9 * G + 4095, 2));
    assert!(b.all_range_dirty(50 * G, 0));
    assert!(!b.all_range_dirty(100 * G, 1), "past the end is never 'all dirty'");
}

#[test]
fn clear_and_clear_range() {
    let b = bm(200 * G);
    b.mark_range(0, 200 * G).expect("ok");
    // Partially touched granules 60 and 70 are cleared too.
    b.clear_range(60 * G + 1, 10 * G).expect("ok");
    assert!(b.test_bit(59) && !b.test_bit(60) && !b.test_bit(70) && b.test_bit(71));
    assert_eq!(b.count(), 200 - 11);
    b.clear_range(0, 0).expect("empty");
    assert_eq!(b.count(), 200 - 11);
    b.clear();
    assert_eq!(b.count(), 0);
    assert_eq!(b.runs().count(), 0);
}

#[test]
fn single_bits() {
    let b = bm(100 * G);
    assert!(b.set_bit(99));
    assert!(!b.set_bit(99));
    assert!(b.test_bit(99));
    assert!(!b.set_bit(100), "out of range ignored");
    assert!(!b.test_bit(100));
    b.clear_bit(99);
    assert!(!b.test_bit(99));
    b.clear_bit(1 << 40);
    assert_eq!(b.count(), 0);
}

#[test]
fn words_roundtrip_and_swap_out() {
    let b = bm(130 * G);
    b.mark_range(63 * G, 3 * G).expect("ok");
    b.set_bit(129);
    let w = b.snapshot_words();
    assert_eq!(w.len(), 3);
    assert_eq!(w, vec![1 << 63, 0b11, 0b10]);
    let c = DirtyBitmap::from_words(130 * G, G, &w).expect("roundtrip");
    assert_eq!(c.snapshot_words(), w);
    assert_eq!(code(DirtyBitmap::from_words(130 * G, G, &w[..2])), "E_INVALID");
    assert_eq!(code(DirtyBitmap::from_words(130 * G, G, &[0, 0, 0b100])), "E_INVALID");

    let taken = b.swap_out();
    assert_eq!(taken, w);
    assert_eq!(b.count(), 0);
}

#[test]
fn error_codes_and_display() {
    use std::io;
    use std::path::PathBuf;
    let io_err = |source| BitmapError::Io { path: PathBuf::from("/x/vol.bitmap"), op: "open", source };
    assert_eq!(io_err(io::Error::from(io::ErrorKind::NotFound)).code(), "E_NOENT");
    assert_eq!(io_err(io::Error::from_raw_os_error(28)).code(), "E_NOSPC");
    let e = io_err(io::Error::other("boom"));
    assert_eq!(e.code(), "E_IO");
    assert!(std::error::Error::source(&e).is_some());
    assert!(e.to_string().contains("/x/vol.bitmap"));
    let p = BitmapError::Poisoned { path: PathBuf::from("/y") };
    assert_eq!(p.code(), "E_IO");
    assert!(p.to_string().contains("/y"));
    let c = BitmapError::Corrupt { path: PathBuf::from("/z"), detail: "bad".into() };
    assert_eq!(c.code(), "E_CORRUPT");
    assert!(c.to_string().contains("/z"));
}
