//! Mirrored pairs for Plexus (capability A): duplexed writes, instant consistent
//! splits (alone or as a consistency group), dirty-bitmap tracking on both sides,
//! differential / full / reverse resync, and copy-on-write instant splits (Fig. 5b)
//! that are usable at once while a background fill completes them.
#![deny(unsafe_code)]

pub mod bench;
pub mod checkpoints;
pub mod error;
mod extents;
mod locks;
mod manifest;
pub mod mirror;
pub mod ops;
mod write;

pub use checkpoints::{CheckpointGuard, Checkpoints, Generation};
pub use error::{MirrorError, Result};
pub use extents::Side;
pub use locks::{RegionGuard, RegionLocks};
pub use mirror::{Absent, Mirror, MirrorFiles, Mode, Quiesced};
pub use ops::{split_group, Direction};
pub use write::{write_primary_all, write_zeroes_primary_all};
