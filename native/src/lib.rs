//! The napi-rs binding of the Plexus core. It converts types and errors only; every
//! decision lives in the crates under `crates/`.
#![deny(clippy::all)]

mod bench;
mod bitmap;
mod copy;
mod error;
mod volume;

pub use bench::{bitmap_runs_ms, bitmap_set_ns, memcpy_bandwidth, BitmapRunsTiming};
pub use bitmap::NativeBitmap;
pub use copy::{CopyJob, CopyJobOptions, CopyProgress, CopyResult, Extent};
pub use volume::{NativeVolume, VolumeInfo};
