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

pub use crate::args::to_u64;

/// Runs `f`, turning a panic (a bug: a broken invariant, never bad input, which
/// `crate::args` refuses first) into E_INTERNAL instead of letting it unwind into
/// Node, which aborts the process. Every `Task::compute` runs inside it; the sync
/// functions have `#[napi(catch_unwind)]`, whose errors `src/errors.ts` maps to E_INTERNAL.
pub fn guard<T>(f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied()).unwrap_or("a panic");
        Err(coded("E_INTERNAL", format!("internal error in the native core (a bug, please report it): {what}")))
    })
}

impl Coded for plexus_mirror::MirrorError {
    fn stable_code(&self) -> &'static str {
        self.code()
    }
}
