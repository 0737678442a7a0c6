//! Write-intent records that cover whole extents: one sync per extent between snapshots,
//! exact bits in memory and in snapshots, a crash rounding up (never losing) marks.

use plexus_bitmap::DurableBitmap;
use std::fs;
use std::sync::Arc;
use std::thread;

const G: u64 = 4096;
const EXTENT: u64 = 1 << 20;
const PER: u64 = EXTENT / G;
const SIZE: u64 = 64 << 20;
const NBITS: u64 = SIZE / G;

fn bit(w: &[u64], b: u64) -> bool {
    w.get((b / 64) as usize).is_some_and(|x| x & (1 << (b % 64)) != 0)
}

#[test]
fn one_record_per_extent_exact_in_memory_rounded_up_after_a_crash() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v.bitmap");
    let d = Arc::new(DurableBitmap::create(&path, SIZE, G, true).expect("create").with_intent_extent(EXTENT));
    // Four threads mark scattered 4 KiB granules, many per extent.
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let d = Arc::clone(&d);
            thread::spawn(move || {
                for i in 0..500u64 {
                    let b = (i * 7919 + t * 104_729) % NBITS;
                    d.mark_range(b * G, 1).expect("mark");
                    assert!(d.bitmap().test_bit(b), "a mark reads back at once");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("join");
    }
    let exact = d.bitmap().snapshot_words();
    let touched: std::collections::BTreeSet<u64> = (0..NBITS).filter(|&b| bit(&exact, b)).map(|b| b / PER).collect();
    // One 32-byte record per extent touched, not one per granule.
    let log_len = fs::metadata(dir.path().join("v.bitmap.log")).expect("log").len();
    assert_eq!(log_len, 32 * touched.len() as u64);
    assert!(exact.iter().map(|w| u64::from(w.count_ones())).sum::<u64>() > touched.len() as u64);
    drop(d);
    // A crash: the log brings back whole extents, every mark among them.
    let back = DurableBitmap::open(&path, true).expect("open").with_intent_extent(EXTENT);
    let words = back.bitmap().snapshot_words();
    for b in 0..NBITS {
        assert_eq!(bit(&words, b), touched.contains(&(b / PER)), "bit {b}");
        if bit(&exact, b) {
            assert!(bit(&words, b));
        }
    }
}

#[test]
fn a_snapshot_keeps_exact_bits_and_the_next_mark_in_an_extent_logs_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v.bitmap");
    let d = DurableBitmap::create(&path, SIZE, G, true).expect("create").with_intent_extent(EXTENT);
    d.mark_range(0, G).expect("mark");
    d.mark_range(5 * G, G).expect("mark in the same extent: no record");
    let log = dir.path().join("v.bitmap.log");
    assert_eq!(fs::metadata(&log).expect("log").len(), 32);
    d.flush().expect("snapshot");
    assert_eq!(fs::metadata(&log).expect("log").len(), 0);
    d.clear_range(0, G).expect("clear");
    // After the snapshot no extent is covered: a mark logs again (else a crash would lose it).
    d.mark_range(9 * G, G).expect("mark");
    assert_eq!(fs::metadata(&log).expect("log").len(), 32);
    d.flush().expect("snapshot");
    drop(d);
    let back = DurableBitmap::open(&path, true).expect("open");
    assert_eq!(back.bitmap().bit_runs().collect::<Vec<_>>(), vec![(5, 1), (9, 1)]);
}
