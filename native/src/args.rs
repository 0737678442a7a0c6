//! Numbers from JavaScript, checked before anything is allocated or converted.
//!
//! A JavaScript number is an f64: NaN, ±Infinity, -0, fractions and values past 2^53
//! all reach the binding. Converting one unchecked can panic (`Duration::from_secs_f64`
//! of 1e300) or abort the process (a `vec![0; 2^53]` fails to allocate, which Rust
//! cannot unwind from). Every numeric argument goes through one of these helpers,
//! which refuse bad values with E_INVALID (not a number of that kind) or E_RANGE (too
//! large for what it sizes), naming the argument. Panics that still happen are caught
//! at the boundary ([`crate::error::guard`], `#[napi(catch_unwind)]`) as E_INTERNAL.

use crate::error::coded;
use std::time::Duration;

/// The largest integer a JavaScript number holds exactly (2^53 - 1).
pub const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// Bytes one call may return in a Buffer (allocated before it is filled): 1 GiB.
pub const MAX_BUFFER: u64 = 1 << 30;

/// The longest timeout: 2^31 - 1 ms (24.8 days), as `setTimeout` allows.
pub const MAX_TIMEOUT_MS: f64 = 2_147_483_647.0;

/// Bits of one dirty bitmap held in memory: 2^31 (256 MiB of words; a 128 TiB volume
/// at a 64 KiB granularity).
pub const MAX_BITMAP_BITS: u64 = 1 << 31;

/// Bits of a benchmark's bitmap: 2^27 (16 MiB).
pub const MAX_BENCH_BITS: u64 = 1 << 27;

/// Worker threads one job may ask for.
pub const MAX_THREADS: u32 = 256;

/// A byte offset, length or count: a whole number from 0 to 2^53 - 1 (E_INVALID).
pub fn to_u64(what: &str, v: f64) -> napi::Result<u64> {
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_SAFE) {
        return Err(coded("E_INVALID", format!("{what} must be a whole number from 0 to 2^53-1, got {v}")));
    }
    Ok(v as u64)
}

/// Like [`to_u64`], at most `max` (E_RANGE naming the bound).
pub fn to_u64_max(what: &str, v: f64, max: u64) -> napi::Result<u64> {
    let n = to_u64(what, v)?;
    if n > max {
        return Err(coded("E_RANGE", format!("{what} must be at most {max}, got {n}")));
    }
    Ok(n)
}

/// The length of a Buffer to allocate: at most [`MAX_BUFFER`] (E_RANGE).
pub fn buffer_len(what: &str, v: f64) -> napi::Result<usize> {
    let n = to_u64_max(what, v, MAX_BUFFER)?;
    usize::try_from(n).map_err(|_| coded("E_RANGE", format!("{what} {n} does not fit in memory on this platform")))
}

/// A timeout in milliseconds: positive, finite, at most [`MAX_TIMEOUT_MS`].
pub fn millis(what: &str, v: f64) -> napi::Result<Duration> {
    if !(v.is_finite() && v > 0.0) {
        return Err(coded("E_INVALID", format!("{what} must be a positive number of milliseconds, got {v}")));
    }
    if v > MAX_TIMEOUT_MS {
        return Err(coded("E_RANGE", format!("{what} must be at most {MAX_TIMEOUT_MS} ms (24.8 days), got {v}")));
    }
    Ok(Duration::from_secs_f64(v / 1000.0))
}

/// A fraction from 0 to 1.
pub fn fraction(what: &str, v: f64) -> napi::Result<f64> {
    if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
        return Err(coded("E_INVALID", format!("{what} must be a number from 0 to 1, got {v}")));
    }
    Ok(v)
}

/// A whole number from 0 to 2^32 - 1 (a file number, a command id, a block size).
/// napi-rs would wrap a `u32` argument silently (NaN to 0, -1 to 2^32 - 1): such
/// arguments are taken as numbers and checked here instead.
pub fn to_u32(what: &str, v: f64) -> napi::Result<u32> {
    Ok(to_u64_max(what, v, u64::from(u32::MAX))? as u32)
}

/// A thread count (0 or absent: the default): at most [`MAX_THREADS`].
pub fn threads(v: Option<f64>) -> napi::Result<usize> {
    Ok(v.map(|n| to_u64_max("threads", n, u64::from(MAX_THREADS))).transpose()?.unwrap_or(0) as usize)
}

/// A volume size and bitmap granularity whose bitmap fits in memory: the bits
/// (`size / granularity`, rounded up) are at most [`MAX_BITMAP_BITS`] (E_RANGE).
pub fn bitmap_geometry(size: f64, granularity: f64) -> napi::Result<(u64, u64)> {
    let (size, granularity) = (to_u64("size", size)?, to_u64("granularity", granularity)?);
    if granularity == 0 {
        return Err(coded("E_INVALID", "granularity must be at least one byte"));
    }
    if size.div_ceil(granularity) > MAX_BITMAP_BITS {
        return Err(coded(
            "E_RANGE",
            format!("a volume of {size} bytes at a granularity of {granularity} bytes needs more than 2^31 bitmap bits; use a larger granularity"),
        ));
    }
    Ok((size, granularity))
}
