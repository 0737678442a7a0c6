//! The machine's memcpy bandwidth, the ceiling a volume copy is measured against.

use std::hint::black_box;
use std::time::Instant;

/// Copies a `bytes`-long buffer `rounds` times and returns the best rate in bytes/s.
pub fn memcpy_bandwidth(bytes: usize, rounds: u32) -> f64 {
    let src = vec![0x5au8; bytes];
    let mut dst = vec![0u8; bytes];
    // The first pass faults every page in, so it is not timed.
    dst.copy_from_slice(&src);
    let mut best = f64::MAX;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        dst.copy_from_slice(black_box(&src));
        black_box(&dst);
        best = best.min(t.elapsed().as_secs_f64());
    }
    bytes as f64 / best.max(1e-9)
}
