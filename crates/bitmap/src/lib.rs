//! Dirty bitmaps for mirror resync: one bit per power-of-two granule of a
//! volume, set lock-free by writers, scanned as coalesced byte runs by the
//! resync, and optionally persisted as a crash-safe sidecar (snapshot +
//! write-intent log, see `docs/bitmap-sidecar.md`).

#![deny(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod bench;
mod bitmap;
mod error;
mod format;
mod recovery;
mod runs;
mod sidecar;
mod view;

pub use bitmap::{DirtyBitmap, MAX_GRANULARITY, MIN_GRANULARITY};
pub use error::{BitmapError, Result};
pub use runs::{BitRuns, ByteRange, Runs};
pub use sidecar::{DurableBitmap, SidecarStats, INTENT_EXTENT};
pub use view::BitmapView;

/// Default granularity: 64 KiB per bit.
pub const DEFAULT_GRANULARITY: u64 = 65536;
