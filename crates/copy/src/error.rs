//! Errors of the copy engine.

use plexus_volume::VolumeError;
use std::fmt;

/// Why a copy stopped.
#[derive(Debug)]
pub enum CopyError {
    /// A read or write on a device failed.
    Device(VolumeError),
    /// The caller cancelled the copy; `bytes_copied` were copied before it stopped.
    Cancelled { bytes_copied: u64 },
    /// Source and destination cannot be copied onto each other.
    Size { detail: String },
}

impl CopyError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            CopyError::Device(e) => e.code(),
            CopyError::Cancelled { .. } => "E_CANCELLED",
            CopyError::Size { .. } => "E_SIZE",
        }
    }
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyError::Device(e) => write!(f, "{e}"),
            CopyError::Cancelled { bytes_copied } => {
                write!(f, "copy cancelled after {bytes_copied} bytes")
            }
            CopyError::Size { detail } => write!(f, "{detail}"),
        }
    }
}

impl std::error::Error for CopyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CopyError::Device(e) => Some(e),
            _ => None,
        }
    }
}

impl From<VolumeError> for CopyError {
    fn from(e: VolumeError) -> Self {
        CopyError::Device(e)
    }
}
