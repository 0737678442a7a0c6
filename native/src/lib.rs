//! The napi-rs binding of the Plexus core. It converts types and errors only; every
//! decision lives in the crates under `crates/`.
#![deny(clippy::all)]

mod bench;
mod bitmap;
mod copy;
mod error;
mod job;
mod lock;
mod mirror;
mod tape;
mod volume;
mod xcopy;

pub use bench::{bitmap_runs_ms, bitmap_set_ns, memcpy_bandwidth, BitmapRunsTiming};
pub use bench::{mirror_write_path_ns, MirrorWritePath, WriteCost, WritePathTask};
pub use bitmap::NativeBitmap;
pub use copy::{CopyJob, CopyJobOptions, CopyProgress, CopyResult, Extent};
pub use lock::NativeOwnerLock;
pub use mirror::{MirrorJob, MirrorPaths, NativeMirror};
pub use tape::{
    BlockWritten, CartridgeFormat, CartridgeLabel, NativeDrive, RestoreOptions, TapeFile, TapeFileWritten, TapeJob, TapeJobResult,
    TapePosition, TapeRecovery, TapeSpace,
};
pub use volume::{exchange_volume_data, random_bytes, NativeVolume, VolumeInfo};
pub use xcopy::{plan_segment_commands, XcopyChunk, XcopyCommand, XcopyJob, XcopyOptions, XcopyResult, XcopyStop};
