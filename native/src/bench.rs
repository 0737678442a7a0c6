//! Micro-benchmark kernels, run natively so the N-API call cost does not hide them.

use napi_derive::napi;

/// The machine's memcpy bandwidth in bytes per second (best of `rounds`).
#[napi]
pub fn memcpy_bandwidth(bytes: u32, rounds: u32) -> f64 {
    plexus_copy::memcpy_bandwidth(bytes as usize, rounds)
}

/// Nanoseconds per dirty-bitmap `set_bit`, averaged over `ops` calls on `bits` bits.
#[napi]
pub fn bitmap_set_ns(bits: f64, ops: f64) -> napi::Result<f64> {
    plexus_bitmap::bench::set_bit_ns(bits as u64, ops as u64).map_err(crate::error::to_js)
}

/// Milliseconds to iterate the dirty runs of a `bits`-bit bitmap with `fraction` set.
#[napi]
pub fn bitmap_runs_ms(bits: f64, fraction: f64) -> napi::Result<BitmapRunsTiming> {
    let (ms, runs) = plexus_bitmap::bench::runs_ms(bits as u64, fraction, 5).map_err(crate::error::to_js)?;
    Ok(BitmapRunsTiming { ms, runs: runs as f64 })
}

/// Result of [`bitmap_runs_ms`].
#[napi(object)]
pub struct BitmapRunsTiming {
    /// Best time over five iterations, in milliseconds.
    pub ms: f64,
    /// Runs found.
    pub runs: f64,
}
