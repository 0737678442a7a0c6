//! OR-merging bitmaps.

use plexus_bitmap::DirtyBitmap;

const G: u64 = 65536;

#[test]
fn merge_is_union() {
    let a = DirtyBitmap::new(300 * G, G).expect("a");
    let b = DirtyBitmap::new(300 * G, G).expect("b");
    a.mark_range(0, 10 * G).expect("ok");
    a.mark_range(100 * G, G).expect("ok");
    b.mark_range(5 * G, 10 * G).expect("ok");
    b.mark_range(299 * G, G).expect("ok");
    a.merge_from(&b).expect("same geometry");
    assert_eq!(a.count(), 15 + 1 + 1);
    assert!(a.test_bit(14) && a.test_bit(299) && a.test_bit(100));
    assert!(!a.test_bit(15));
    // Source unchanged.
    assert_eq!(b.count(), 11);
    // Idempotent.
    a.merge_from(&b).expect("again");
    assert_eq!(a.count(), 17);
}

#[test]
fn merge_geometry_mismatch_is_e_size() {
    let a = DirtyBitmap::new(300 * G, G).expect("a");
    let other_size = DirtyBitmap::new(301 * G, G).expect("b");
    let other_gran = DirtyBitmap::new(300 * G, G * 2).expect("c");
    // Same nbits, different size: still a mismatch.
    let same_bits = DirtyBitmap::new(300 * G - 1, G).expect("d");
    for o in [&other_size, &other_gran, &same_bits] {
        o.mark_range(0, 1).expect("ok");
        let e = a.merge_from(o).expect_err("mismatch");
        assert_eq!(e.code(), "E_SIZE");
    }
    assert_eq!(a.count(), 0, "failed merge changes nothing");
}
