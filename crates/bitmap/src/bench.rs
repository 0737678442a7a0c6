//! Timing kernels for `plexus bench`: they run natively so that the cost of crossing
//! into JavaScript does not swamp operations that take nanoseconds.

use crate::bitmap::DirtyBitmap;
use crate::error::Result;
use std::hint::black_box;
use std::time::Instant;

/// Average nanoseconds per `set_bit` over `ops` calls on a bitmap of `nbits` bits,
/// touching bits in a scattered but deterministic order.
pub fn set_bit_ns(nbits: u64, ops: u64) -> Result<f64> {
    let bm = DirtyBitmap::new(nbits.max(1) * 512, 512)?;
    let mask = nbits.next_power_of_two() - 1;
    let t = Instant::now();
    let mut x: u64 = 0x9E37_79B9;
    for _ in 0..ops {
        // An LCG step spreads the bits over the whole map without a division.
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let bit = (x >> 20) & mask;
        black_box(bm.set_bit(if bit < nbits { bit } else { bit - nbits / 2 }));
    }
    Ok(t.elapsed().as_nanos() as f64 / ops.max(1) as f64)
}

/// Milliseconds to iterate the coalesced runs of a bitmap of `nbits` bits with
/// `fraction` of them set at random (best of `rounds`), and the number of runs found.
pub fn runs_ms(nbits: u64, fraction: f64, rounds: u32) -> Result<(f64, u64)> {
    let bm = DirtyBitmap::new(nbits.max(1) * 512, 512)?;
    let target = (nbits as f64 * fraction.clamp(0.0, 1.0)) as u64;
    let mut x: u64 = 12345;
    let mut set = 0;
    while set < target {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        if bm.set_bit((x >> 11) % nbits) {
            set += 1;
        }
    }
    let mut best = f64::MAX;
    let mut runs = 0;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        runs = black_box(bm.runs().count() as u64);
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((best, runs))
}

/// Durable marks per second from `threads` writers, each mark dirtying a granule no
/// record covers yet (so each needs its record made durable), on a fresh sidecar in
/// `dir`; and the log fdatasyncs they took. With the group commit, concurrent marks share
/// syncs: 8 writers get several times one writer's rate.
pub fn durable_marks_per_s(dir: &std::path::Path, threads: u64, marks_per_thread: u64) -> Result<(f64, u64)> {
    let g = 65536u64;
    let nbits = threads * marks_per_thread;
    let d = std::sync::Arc::new(crate::DurableBitmap::create(dir.join("bench.bitmap"), nbits * g, g, true)?);
    let t0 = std::time::Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let d = std::sync::Arc::clone(&d);
                s.spawn(move || -> Result<()> {
                    for i in 0..marks_per_thread {
                        d.mark_range((i * threads + t) * g, 1)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join().map_err(|_| crate::BitmapError::Mismatch { detail: "a bench writer panicked".into() })??;
        }
        Ok(())
    })?;
    Ok((nbits as f64 / t0.elapsed().as_secs_f64(), d.log_syncs()))
}
