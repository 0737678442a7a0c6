//! Errors of the volume layer, each with a stable code that crosses into JavaScript.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What went wrong with a volume; `code()` is the stable identifier scripts match on.
#[derive(Debug)]
pub enum VolumeError {
    /// An operating-system call failed.
    Io { path: PathBuf, op: &'static str, source: io::Error },
    /// The volume (or its identity file) does not exist.
    NotFound { path: PathBuf },
    /// A volume already exists where one was to be created.
    Exists { path: PathBuf },
    /// An access fell outside the volume.
    Range { volume: String, offset: u64, len: u64, size: u64 },
    /// Sizes that must agree do not (copy between volumes of different sizes, ...).
    Size { detail: String },
    /// An argument is malformed (block size not a power of two, zero size, ...).
    Invalid { detail: String },
    /// A write to a volume opened read-only.
    ReadOnly { volume: String },
    /// A file on disk is not what it claims to be.
    Corrupt { path: PathBuf, detail: String },
    /// The operation conflicts with another use of the same volume.
    Busy { volume: String, detail: String },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, VolumeError>;

impl VolumeError {
    /// The stable code of this error (E_RANGE, E_NOENT, ...).
    pub fn code(&self) -> &'static str {
        match self {
            VolumeError::Io { source, .. } => io_code(source),
            VolumeError::NotFound { .. } => "E_NOENT",
            VolumeError::Exists { .. } => "E_EXISTS",
            VolumeError::Range { .. } => "E_RANGE",
            VolumeError::Size { .. } => "E_SIZE",
            VolumeError::Invalid { .. } => "E_INVALID",
            VolumeError::ReadOnly { .. } => "E_READONLY",
            VolumeError::Corrupt { .. } => "E_CORRUPT",
            VolumeError::Busy { .. } => "E_BUSY",
        }
    }

    /// Wraps an I/O error, turning "not found" into the dedicated variant.
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        let path = path.into();
        if source.kind() == io::ErrorKind::NotFound {
            VolumeError::NotFound { path }
        } else {
            VolumeError::Io { path, op, source }
        }
    }
}

/// Maps an OS error to the code users see: a full disk and a denied permission are
/// common enough operationally to deserve their own codes.
pub fn io_code(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => "E_NOSPC",
        Some(libc::EACCES) | Some(libc::EPERM) => "E_ACCESS",
        Some(libc::ENOENT) => "E_NOENT",
        _ => "E_IO",
    }
}

impl fmt::Display for VolumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VolumeError::Io { path, op, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            VolumeError::NotFound { path } => write!(f, "no such file: {}", path.display()),
            VolumeError::Exists { path } => write!(f, "already exists: {}", path.display()),
            VolumeError::Range { volume, offset, len, size } => {
                write!(f, "volume {volume}: range offset {offset} length {len} is past the end (size {size})")
            }
            VolumeError::Size { detail } => write!(f, "{detail}"),
            VolumeError::Invalid { detail } => write!(f, "{detail}"),
            VolumeError::ReadOnly { volume } => write!(f, "volume {volume} is read-only"),
            VolumeError::Corrupt { path, detail } => {
                write!(f, "{} is corrupt: {detail}", path.display())
            }
            VolumeError::Busy { volume, detail } => write!(f, "volume {volume} is busy: {detail}"),
        }
    }
}

impl std::error::Error for VolumeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VolumeError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
