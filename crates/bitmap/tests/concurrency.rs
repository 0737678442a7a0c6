//! Many threads marking at once: no lost or double-counted bits.

use std::sync::Arc;
use std::thread;

use plexus_bitmap::{DirtyBitmap, DurableBitmap};

const G: u64 = 4096;
const NBITS: u64 = 5000;

/// Ranges (in granules) for thread `t`: a disjoint stripe plus ranges that
/// overlap every other thread's.
fn ranges_for(t: u64) -> Vec<(u64, u64)> {
    let mut v = vec![(t * 500, 400)]; // disjoint stripes 0..4000
    for i in 0..50u64 {
        v.push((4000 + (i * 17 + t * 3) % 900, 1 + (i + t) % 40)); // overlapping
    }
    v.push((100, 3000)); // big overlap shared by everyone
    v
}

fn expected_union() -> u64 {
    let mut seen = vec![false; NBITS as usize];
    for t in 0..8 {
        for (first, n) in ranges_for(t) {
            for b in first..(first + n).min(NBITS) {
                seen[b as usize] = true;
            }
        }
    }
    seen.iter().filter(|&&s| s).count() as u64
}

#[test]
fn eight_threads_mark_union() {
    let bm = Arc::new(DirtyBitmap::new(NBITS * G, G).expect("new"));
    let newly: u64 = (0..8u64)
        .map(|t| {
            let bm = Arc::clone(&bm);
            thread::spawn(move || {
                ranges_for(t)
                    .into_iter()
                    .map(|(first, n)| {
                        let len = (n * G).min(NBITS * G - first * G);
                        // Unaligned start inside the first granule.
                        bm.mark_range(first * G + 1, len - 1).expect("mark")
                    })
                    .sum::<u64>()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("join"))
        .sum();
    let want = expected_union();
    assert_eq!(bm.count(), want);
    assert_eq!(newly, want, "each bit reported newly set exactly once");
}

#[test]
fn eight_threads_durable_marks_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vol.bitmap");
    let d = Arc::new(DurableBitmap::create(&path, NBITS * G, G, true).expect("create"));
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let d = Arc::clone(&d);
            thread::spawn(move || {
                let mut newly = 0;
                for (first, n) in ranges_for(t) {
                    let n = n.min(NBITS - first);
                    newly += d.mark_range(first * G, n * G).expect("mark");
                    // Invariant: once mark_range returns, the bits read as set.
                    assert!(d.bitmap().all_range_dirty(first * G, n * G));
                }
                newly
            })
        })
        .collect();
    let newly: u64 = handles.into_iter().map(|h| h.join().expect("join")).sum();
    let want = expected_union();
    assert_eq!(d.bitmap().count(), want);
    assert_eq!(newly, want);
    let words = d.bitmap().snapshot_words();
    drop(d);
    let d = DurableBitmap::open(&path, true).expect("open");
    assert_eq!(d.bitmap().snapshot_words(), words);
}

#[test]
fn swap_out_during_marking_loses_nothing() {
    let bm = Arc::new(DirtyBitmap::new(NBITS * G, G).expect("new"));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let bm = Arc::clone(&bm);
            thread::spawn(move || {
                for b in (t..NBITS).step_by(4) {
                    bm.set_bit(b);
                }
            })
        })
        .collect();
    let taken = DirtyBitmap::new(NBITS * G, G).expect("acc");
    for _ in 0..50 {
        let w = bm.swap_out();
        let part = DirtyBitmap::from_words(NBITS * G, G, &w).expect("words");
        taken.merge_from(&part).expect("merge");
    }
    for h in writers {
        h.join().expect("join");
    }
    taken.merge_from(&bm).expect("merge rest");
    assert_eq!(taken.count(), NBITS);
}
