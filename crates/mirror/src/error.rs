//! Errors of the mirror engine: the layers below keep their codes.

use plexus_bitmap::BitmapError;
use plexus_copy::CopyError;
use plexus_volume::VolumeError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a mirror operation failed.
#[derive(Debug)]
pub enum MirrorError {
    /// A volume read or write failed.
    Volume(VolumeError),
    /// A bitmap could not be read, marked or persisted.
    Bitmap(BitmapError),
    /// A copy failed or was cancelled.
    Copy(CopyError),
    /// The operation is not allowed in the pair's current mode.
    State { detail: String },
    /// A duplexed write to the secondary failed: the pair is suspended (PSUE).
    Suspended { detail: String },
    /// Something named does not exist (a checkpoint generation, ...).
    NotFound { detail: String },
    /// A file of the engine's own (the checkpoint manifest, ...) failed validation.
    Corrupt { path: PathBuf, detail: String },
    /// An operating-system call on a file of the engine's own failed.
    Io { path: PathBuf, op: &'static str, source: io::Error },
    /// An earlier failure left the on-disk state unknown; reopen to continue.
    Poisoned { detail: String },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, MirrorError>;

impl MirrorError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            MirrorError::Volume(e) => e.code(),
            MirrorError::Bitmap(e) => e.code(),
            MirrorError::Copy(e) => e.code(),
            MirrorError::State { .. } => "E_STATE",
            MirrorError::Suspended { .. } => "E_IO",
            MirrorError::NotFound { .. } => "E_NOENT",
            MirrorError::Corrupt { .. } => "E_CORRUPT",
            MirrorError::Io { source, .. } => plexus_volume::error::io_code(source),
            MirrorError::Poisoned { .. } => "E_IO",
        }
    }
}

impl fmt::Display for MirrorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorError::Volume(e) => write!(f, "{e}"),
            MirrorError::Bitmap(e) => write!(f, "{e}"),
            MirrorError::Copy(e) => write!(f, "{e}"),
            MirrorError::State { detail }
            | MirrorError::Suspended { detail }
            | MirrorError::NotFound { detail }
            | MirrorError::Poisoned { detail } => write!(f, "{detail}"),
            MirrorError::Corrupt { path, detail } => write!(f, "{} is corrupt: {detail}", path.display()),
            MirrorError::Io { path, op, source } => write!(f, "{op} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for MirrorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MirrorError::Volume(e) => Some(e),
            MirrorError::Bitmap(e) => Some(e),
            MirrorError::Copy(e) => Some(e),
            MirrorError::Io { source, .. } => Some(source),
            MirrorError::State { .. }
            | MirrorError::Suspended { .. }
            | MirrorError::NotFound { .. }
            | MirrorError::Corrupt { .. }
            | MirrorError::Poisoned { .. } => None,
        }
    }
}

impl MirrorError {
    /// Wraps an I/O error on `path`, for use with `map_err`.
    pub(crate) fn io(path: &std::path::Path, op: &'static str) -> impl FnOnce(io::Error) -> MirrorError {
        let path = path.to_path_buf();
        move |source| MirrorError::Io { path, op, source }
    }
}

impl From<VolumeError> for MirrorError {
    fn from(e: VolumeError) -> Self {
        MirrorError::Volume(e)
    }
}
impl From<BitmapError> for MirrorError {
    fn from(e: BitmapError) -> Self {
        MirrorError::Bitmap(e)
    }
}
impl From<CopyError> for MirrorError {
    fn from(e: CopyError) -> Self {
        match e {
            CopyError::Device(v) => MirrorError::Volume(v),
            other => MirrorError::Copy(other),
        }
    }
}
