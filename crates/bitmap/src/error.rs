//! Error type for the bitmap crate.
//!
//! Every variant maps to a short, stable code (`E_IO`, `E_CORRUPT`, ...) so
//! callers and operators can match on failures without parsing messages.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// `ENOSPC` on Linux; used to report a full disk with its own code.
const ENOSPC: i32 = 28;

/// Everything that can go wrong when building, querying or persisting a bitmap.
#[derive(Debug)]
pub enum BitmapError {
    /// An operating-system I/O call failed.
    Io {
        /// File or directory the operation was acting on.
        path: PathBuf,
        /// Short name of the operation (`"open"`, `"fsync"`, `"rename"`, ...).
        op: &'static str,
        /// The underlying OS error.
        source: io::Error,
    },
    /// A persisted file failed validation (magic, version, CRC, length, fields).
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// What exactly was wrong, with offsets where useful.
        detail: String,
    },
    /// Invalid geometry or argument (bad granularity, zero size, ...).
    Invalid {
        /// What was wrong.
        detail: String,
    },
    /// A byte or bit range lies (partly) outside the volume.
    Range {
        /// The offending range and the volume size.
        detail: String,
    },
    /// Two geometries that must match do not (merge, or a sidecar opened with
    /// an expected geometry).
    Mismatch {
        /// Both geometries.
        detail: String,
    },
    /// An earlier write or fsync of the sidecar failed; the on-disk state is
    /// unknown, so no further durable writes are attempted (retrying an fsync
    /// after failure can silently report success for lost pages).
    Poisoned {
        /// The sidecar path.
        path: PathBuf,
    },
}

impl BitmapError {
    /// Stable machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            BitmapError::Io { source, .. } => {
                if source.kind() == io::ErrorKind::NotFound {
                    "E_NOENT"
                } else if source.raw_os_error() == Some(ENOSPC) {
                    "E_NOSPC"
                } else {
                    "E_IO"
                }
            }
            BitmapError::Corrupt { .. } => "E_CORRUPT",
            BitmapError::Invalid { .. } => "E_INVALID",
            BitmapError::Range { .. } => "E_RANGE",
            BitmapError::Mismatch { .. } => "E_SIZE",
            BitmapError::Poisoned { .. } => "E_IO",
        }
    }

    /// Builds a closure that wraps an `io::Error` with path and operation,
    /// for use with `map_err`.
    pub(crate) fn io(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> BitmapError {
        let path = path.to_path_buf();
        move |source| BitmapError::Io { path, op, source }
    }

    /// Shorthand for a `Corrupt` error.
    pub(crate) fn corrupt(path: &Path, detail: impl Into<String>) -> BitmapError {
        BitmapError::Corrupt { path: path.to_path_buf(), detail: detail.into() }
    }
}

impl fmt::Display for BitmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BitmapError::Io { path, op, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            BitmapError::Corrupt { path, detail } => {
                write!(f, "{} is corrupt: {detail}", path.display())
            }
            BitmapError::Invalid { detail } => write!(f, "invalid argument: {detail}"),
            BitmapError::Range { detail } => write!(f, "out of range: {detail}"),
            BitmapError::Mismatch { detail } => write!(f, "geometry mismatch: {detail}"),
            BitmapError::Poisoned { path } => {
                write!(f, "{} is poisoned by an earlier failed write/fsync; no further durable writes", path.display())
            }
        }
    }
}

impl std::error::Error for BitmapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BitmapError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, BitmapError>;
