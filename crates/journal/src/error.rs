//! Error type for the journal crate.
//!
//! Every variant maps to a short, stable code (`E_IO`, `E_CORRUPT`, `E_FULL`, ...) so the
//! binding and the shipper can match on failures without parsing messages.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// `ENOSPC` on Linux; a full disk gets its own code.
const ENOSPC: i32 = 28;

/// Everything that can go wrong in the journal, the batch codec or the applier.
#[derive(Debug)]
pub enum JournalError {
    /// An operating-system I/O call on a journal or state file failed.
    Io {
        /// File or directory the operation was acting on.
        path: PathBuf,
        /// Short name of the operation (`"pwrite"`, `"fdatasync"`, `"rename"`, ...).
        op: &'static str,
        /// The underlying OS error.
        source: io::Error,
    },
    /// A file on disk failed validation (magic, version, checksum, sequence, length).
    Corrupt {
        /// The offending file, or `"batch"` for bytes read back from the journal.
        path: PathBuf,
        /// What was wrong, with offsets and sequence numbers where useful.
        detail: String,
    },
    /// Bytes received from the network do not form a valid batch.
    Protocol {
        /// What was wrong, with the byte offset in the batch.
        detail: String,
    },
    /// A sequence number or length outside what the call allows.
    Range {
        /// The offending value and the allowed range.
        detail: String,
    },
    /// The journal holds too many bytes for this record; release some first.
    Full {
        /// Bytes held (appended, not released).
        held: u64,
        /// Encoded size of the refused record.
        need: u64,
        /// The configured capacity.
        capacity: u64,
    },
    /// Another process (or another handle in this one) holds the journal directory.
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// An earlier fsync (or an unrecoverable write) failed: what is on disk is unknown,
    /// so no further write is attempted. Retrying an fsync after a failure can report
    /// success for pages the kernel already dropped (the "fsyncgate" lesson fjall follows).
    Poisoned {
        /// The journal directory or state file.
        path: PathBuf,
    },
    /// An apply target (a remote volume) failed a write, zero or sync.
    Target {
        /// The volume id.
        volume: u32,
        /// `"write"`, `"write_zeroes"` or `"sync"`.
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// Invalid option or argument (zero capacity, tiny segment size, ...).
    Invalid {
        /// What was wrong.
        detail: String,
    },
}

impl JournalError {
    /// Stable machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            JournalError::Io { source, .. } => {
                if source.raw_os_error() == Some(ENOSPC) {
                    "E_NOSPC"
                } else {
                    "E_IO"
                }
            }
            JournalError::Corrupt { .. } => "E_CORRUPT",
            JournalError::Protocol { .. } => "E_PROTOCOL",
            JournalError::Range { .. } => "E_RANGE",
            JournalError::Full { .. } => "E_FULL",
            JournalError::Busy { .. } => "E_BUSY",
            JournalError::Poisoned { .. } => "E_IO",
            JournalError::Target { .. } => "E_IO",
            JournalError::Invalid { .. } => "E_INVALID",
        }
    }

    /// Builds a closure that wraps an `io::Error` with path and operation, for `map_err`.
    pub(crate) fn io(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> JournalError {
        let path = path.to_path_buf();
        move |source| JournalError::Io { path, op, source }
    }

    /// Shorthand for a `Corrupt` error.
    pub(crate) fn corrupt(path: &Path, detail: impl Into<String>) -> JournalError {
        JournalError::Corrupt { path: path.to_path_buf(), detail: detail.into() }
    }

    /// Shorthand for a `Protocol` error.
    pub(crate) fn protocol(detail: impl Into<String>) -> JournalError {
        JournalError::Protocol { detail: detail.into() }
    }

    /// Shorthand for a `Range` error.
    pub(crate) fn range(detail: impl Into<String>) -> JournalError {
        JournalError::Range { detail: detail.into() }
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Io { path, op, source } => write!(f, "{op} {}: {source}", path.display()),
            JournalError::Corrupt { path, detail } => write!(f, "{} is corrupt: {detail}", path.display()),
            JournalError::Protocol { detail } => write!(f, "invalid batch: {detail}"),
            JournalError::Range { detail } => write!(f, "out of range: {detail}"),
            JournalError::Full { held, need, capacity } => {
                write!(f, "journal full: {held} bytes held + {need} > capacity {capacity}")
            }
            JournalError::Busy { path } => write!(f, "{} is locked by another journal handle", path.display()),
            JournalError::Poisoned { path } => {
                write!(f, "{} is poisoned by an earlier failed write/fsync; no further writes", path.display())
            }
            JournalError::Target { volume, op, source } => write!(f, "{op} on volume {volume}: {source}"),
            JournalError::Invalid { detail } => write!(f, "invalid argument: {detail}"),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Io { source, .. } | JournalError::Target { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, JournalError>;
