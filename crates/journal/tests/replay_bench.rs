//! Runs the replay benchmark and prints its figures:
//! `cargo test --release -p plexus-journal --test replay_bench -- --ignored --nocapture`.
#![allow(clippy::unwrap_used)]

use plexus_journal::bench::{append_bench, replay_bench};

#[test]
#[ignore = "a benchmark: run in release"]
fn replay_figures() {
    for (size, records, window) in [(4096usize, 400_000u64, 64usize), (65536, 20_000, 64), (1 << 20, 1500, 8)] {
        // Warm once, then measure.
        replay_bench(size, records / 4, window, 1);
        let f = replay_bench(size, records, window, 2);
        println!(
            "record {size:>8} B x {records:>7}, window {window:>3}: {:>10.0} records/s, {:>6.2} GB/s applied, memcpy {:>6.2} GB/s ({:.0}%)",
            f.records_per_s,
            f.bytes_per_s / 1e9,
            f.memcpy_bytes_per_s / 1e9,
            100.0 * f.bytes_per_s / f.memcpy_bytes_per_s
        );
    }
}

#[test]
#[ignore = "a benchmark: run in release"]
fn append_figures() {
    for segment in [64u64 << 20, 4 << 30] {
        for threads in [1usize, 8] {
            let dir = tempfile::tempdir().unwrap();
            let r = append_bench(dir.path(), 4096, 200_000, threads, segment);
            println!(
                "append 4 KiB from {threads} thread(s), {} MiB segments: {r:.0} records/s ({:.2} GB/s)",
                segment >> 20,
                r * 4096.0 / 1e9
            );
        }
    }
}
