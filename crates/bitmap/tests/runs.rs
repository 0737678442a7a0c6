//! Coalesced run iteration, checked against a naive bit-by-bit scan.

use plexus_bitmap::{ByteRange, DirtyBitmap};

const G: u64 = 512;

/// Naive reference: walk every bit.
fn naive_runs(b: &DirtyBitmap) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut start = None;
    for bit in 0..b.len_bits() {
        match (b.test_bit(bit), start) {
            (true, None) => start = Some(bit),
            (false, Some(s)) => {
                out.push((s, bit - s));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, b.len_bits() - s));
    }
    out
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn empty_bitmap_has_no_runs() {
    let b = DirtyBitmap::new(1000 * G, G).expect("ok");
    assert_eq!(b.runs().next(), None);
    assert_eq!(b.bit_runs().next(), None);
}

#[test]
fn runs_coalesce_across_words() {
    let b = DirtyBitmap::new(1000 * G, G).expect("ok");
    b.mark_range(60 * G, 4 * G).expect("ok"); // bits 60..64, end of word 0
    b.mark_range(64 * G, 70 * G).expect("ok"); // bits 64..134: full word 1, into word 2
    b.set_bit(200);
    b.set_bit(202);
    let runs: Vec<_> = b.runs().collect();
    assert_eq!(
        runs,
        vec![ByteRange { offset: 60 * G, len: 74 * G }, ByteRange { offset: 200 * G, len: G }, ByteRange { offset: 202 * G, len: G },]
    );
    assert_eq!(b.bit_runs().collect::<Vec<_>>(), vec![(60, 74), (200, 1), (202, 1)]);
    assert_eq!(runs.iter().map(|r| r.len).sum::<u64>(), b.dirty_bytes());
}

#[test]
fn full_bitmap_is_one_clipped_run() {
    let size = 64 * 3 * G + 7;
    let b = DirtyBitmap::new(size, G).expect("ok");
    b.mark_range(0, size).expect("ok");
    let runs: Vec<_> = b.runs().collect();
    assert_eq!(runs, vec![ByteRange { offset: 0, len: size }]);
    assert_eq!(runs.first().map(ByteRange::end), Some(size));
}

#[test]
fn run_ending_exactly_at_word_top_then_gap() {
    let b = DirtyBitmap::new(256 * G, G).expect("ok");
    b.mark_range(0, 128 * G).expect("ok"); // words 0 and 1 full, word 2 empty
    b.set_bit(129);
    assert_eq!(b.bit_runs().collect::<Vec<_>>(), vec![(0, 128), (129, 1)]);
}

#[test]
fn random_patterns_match_naive() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..200u64 {
        let nbits = 1 + rng.next() % 700;
        let size = nbits * G - (rng.next() % G);
        let b = DirtyBitmap::new(size, G).expect("ok");
        assert_eq!(b.len_bits(), nbits);
        // Mix of dense stretches and scattered bits.
        let density = rng.next() % 4;
        for bit in 0..nbits {
            if rng.next() % 4 < density {
                b.set_bit(bit);
            }
        }
        for _ in 0..(rng.next() % 4) {
            let a = rng.next() % size;
            let len = rng.next() % (size - a + 1);
            b.mark_range(a, len).expect("in range");
        }
        let want = naive_runs(&b);
        let got: Vec<_> = b.bit_runs().collect();
        assert_eq!(got, want, "round {round}");
        let bytes: Vec<_> = b.runs().collect();
        assert_eq!(bytes.len(), want.len());
        let total: u64 = bytes.iter().map(|r| r.len).sum();
        assert_eq!(total, b.dirty_bytes(), "round {round}");
        assert!(bytes.iter().all(|r| r.len > 0 && r.end() <= size));
        assert!(bytes.windows(2).all(|w| w.first().map(ByteRange::end) < w.get(1).map(|r| r.offset)));
    }
}

/// Naive reference for clean runs: walk every bit.
fn naive_clean_runs(b: &DirtyBitmap) -> Vec<(u64, u64)> {
    let inv = DirtyBitmap::new(b.size(), b.granularity()).expect("ok");
    for bit in 0..b.len_bits() {
        if !b.test_bit(bit) {
            inv.set_bit(bit);
        }
    }
    naive_runs(&inv)
}

#[test]
fn clean_runs_and_next_clear_match_naive() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    for round in 0..200u64 {
        let nbits = 1 + rng.next() % 700;
        let size = nbits * G - (rng.next() % G);
        let b = DirtyBitmap::new(size, G).expect("ok");
        let density = rng.next() % 5;
        for bit in 0..nbits {
            if rng.next() % 4 < density {
                b.set_bit(bit);
            }
        }
        let want = naive_clean_runs(&b);
        assert_eq!(b.clean_bit_runs().collect::<Vec<_>>(), want, "round {round}");
        let bytes: Vec<_> = b.clean_runs().collect();
        let clean: u64 = bytes.iter().map(|r| r.len).sum();
        assert_eq!(clean, size - b.dirty_bytes(), "round {round}: clean bytes, the last granule clipped");
        for from in [0, rng.next() % nbits, nbits - 1, nbits] {
            let naive = (from..nbits).find(|&x| !b.test_bit(x));
            assert_eq!(b.next_clear(from), naive, "round {round} from {from}");
            let naive = (from..nbits).find(|&x| b.test_bit(x));
            assert_eq!(b.next_set(from), naive, "round {round} from {from}");
        }
    }
    let full = DirtyBitmap::new(128 * G, G).expect("ok");
    full.mark_range(0, 128 * G).expect("ok");
    assert_eq!((full.clean_runs().next(), full.next_clear(0)), (None, None));
    let empty = DirtyBitmap::new(130 * G + 1, G).expect("ok");
    assert_eq!(empty.clean_runs().collect::<Vec<_>>(), vec![ByteRange { offset: 0, len: 130 * G + 1 }]);
}
