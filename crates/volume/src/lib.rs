//! Volumes for Plexus: sparse files of fixed size with a persisted unique identity,
//! read and written through the descriptor into owned buffers, behind the
//! [`BlockDevice`] contract so tests can swap in memory and fault-injecting devices.
#![forbid(unsafe_code)]

pub mod device;
pub mod error;
pub mod fill;
pub mod identity;
pub mod lock;
pub mod prefix;
pub mod volume;

pub use device::{check_range, zero_through_writes, BlockDevice, Fault, FaultyDevice, MemDevice};
pub use error::{Result, VolumeError};
pub use fill::{fill, random_bytes, Fill};
pub use identity::{identity_path, Identity, VolumeId};
pub use lock::OwnerLock;
pub use prefix::Prefix;
pub use volume::{exchange_data, Access, BackingFile, Volume};
