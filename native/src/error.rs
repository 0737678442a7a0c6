//! One mapping from core errors to JavaScript errors.
//!
//! napi-rs rejects async tasks with a fixed status, so the stable code travels in the
//! message as `E_CODE: message`; `src/native/errors.ts` lifts it into `error.code`
//! before any caller sees it. That keeps sync calls and Promises on one rule.

use napi::{Error, Status};

/// Builds the JavaScript error for `code` and `message`.
pub fn coded(code: &str, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("{code}: {message}"))
}

/// Anything with a stable code converts the same way.
pub trait Coded: std::fmt::Display {
    /// The stable code.
    fn stable_code(&self) -> &'static str;
}

impl Coded for plexus_volume::VolumeError {
    fn stable_code(&self) -> &'static str {
        self.code()
    }
}
impl Coded for plexus_copy::CopyError {
    fn stable_code(&self) -> &'static str {
        self.code()
    }
}
impl Coded for plexus_bitmap::BitmapError {
    fn stable_code(&self) -> &'static str {
        self.code()
    }
}

/// Converts a core error into the JavaScript error.
pub fn to_js<E: Coded>(e: E) -> Error {
    coded(e.stable_code(), &e)
}

/// Turns a JavaScript number into a byte offset or length, refusing negatives and
/// fractions (E_INVALID) instead of wrapping them.
pub fn to_u64(what: &str, v: f64) -> napi::Result<u64> {
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0) {
        return Err(coded("E_INVALID", format!("{what} must be a non-negative integer, got {v}")));
    }
    Ok(v as u64)
}
impl Coded for plexus_mirror::MirrorError {
    fn stable_code(&self) -> &'static str {
        self.code()
    }
}
