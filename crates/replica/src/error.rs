//! Errors of the replicated write path: the layers below keep their codes.

use plexus_bitmap::BitmapError;
use plexus_journal::JournalError;
use plexus_volume::VolumeError;
use std::fmt;

/// Why a replicated change or a resync step failed.
#[derive(Debug)]
pub enum ReplicaError {
    /// The group's journal.
    Journal(JournalError),
    /// A member's dirty bitmap.
    Bitmap(BitmapError),
    /// A volume read during a resync.
    Volume(VolumeError),
    /// Not a member of the group, or not allowed in its mode.
    State { detail: String },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, ReplicaError>;

impl ReplicaError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ReplicaError::Journal(e) => e.code(),
            ReplicaError::Bitmap(e) => e.code(),
            ReplicaError::Volume(e) => e.code(),
            ReplicaError::State { .. } => "E_STATE",
        }
    }
}

impl fmt::Display for ReplicaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaError::Journal(e) => write!(f, "{e}"),
            ReplicaError::Bitmap(e) => write!(f, "{e}"),
            ReplicaError::Volume(e) => write!(f, "{e}"),
            ReplicaError::State { detail } => write!(f, "{detail}"),
        }
    }
}

impl std::error::Error for ReplicaError {}

impl From<JournalError> for ReplicaError {
    fn from(e: JournalError) -> Self {
        ReplicaError::Journal(e)
    }
}

impl From<BitmapError> for ReplicaError {
    fn from(e: BitmapError) -> Self {
        ReplicaError::Bitmap(e)
    }
}

impl From<VolumeError> for ReplicaError {
    fn from(e: VolumeError) -> Self {
        ReplicaError::Volume(e)
    }
}
