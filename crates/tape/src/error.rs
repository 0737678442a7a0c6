//! Errors of the tape layer, each with a stable code that crosses into JavaScript.
//! Messages name the cartridge (by barcode), and the file and block where one applies.

use plexus_volume::error::io_code;
use plexus_volume::VolumeError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// What went wrong with a cartridge or a transfer; `code()` is the stable identifier.
#[derive(Debug)]
pub enum TapeError {
    /// An operating-system call on the cartridge file failed (E_NOSPC, E_ACCESS, E_IO).
    Io { cartridge: String, op: &'static str, source: io::Error },
    /// The source or destination device of a transfer failed.
    Device(VolumeError),
    /// The cartridge file does not exist.
    NotFound { path: PathBuf },
    /// A cartridge file already exists where one was to be formatted.
    Exists { path: PathBuf },
    /// A label, record header or payload fails its checks.
    Corrupt { cartridge: String, file: Option<u32>, block: Option<u64>, detail: String },
    /// A write would pass the end of the medium; nothing of it was written.
    EndOfMedium { cartridge: String, needed: u64, available: u64 },
    /// A read ran into the end of the recorded data.
    EndOfData { cartridge: String, file: u32 },
    /// A position that is not on the medium.
    Range { cartridge: String, detail: String },
    /// A malformed argument (barcode, block size, capacity, ...).
    Invalid { detail: String },
    /// A write to a cartridge loaded read-only.
    ReadOnly { cartridge: String },
    /// The cartridge is loaded elsewhere, or the drive is in a state that forbids this.
    Busy { cartridge: String, detail: String },
    /// The caller cancelled a transfer; what it had written was rolled back.
    Cancelled { bytes: u64 },
    /// A sync failed earlier, so what the page cache holds is unknown: no more writes.
    Poisoned { cartridge: String },
    /// The destination of a restore refused the data (a volume's write path: a fence,
    /// a pair's state), with its own stable code.
    Sink { code: &'static str, detail: String },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, TapeError>;

impl TapeError {
    /// The stable code of this error (E_CORRUPT, E_EOM, ...).
    pub fn code(&self) -> &'static str {
        match self {
            TapeError::Io { source, .. } => io_code(source),
            TapeError::Device(e) => e.code(),
            TapeError::NotFound { .. } => "E_NOENT",
            TapeError::Exists { .. } => "E_EXISTS",
            TapeError::Corrupt { .. } => "E_CORRUPT",
            TapeError::EndOfMedium { .. } => "E_EOM",
            TapeError::EndOfData { .. } => "E_EOD",
            TapeError::Range { .. } => "E_RANGE",
            TapeError::Invalid { .. } => "E_INVALID",
            TapeError::ReadOnly { .. } => "E_READONLY",
            TapeError::Busy { .. } => "E_BUSY",
            TapeError::Cancelled { .. } => "E_CANCELLED",
            TapeError::Poisoned { .. } => "E_IO",
            TapeError::Sink { code, .. } => code,
        }
    }

    /// A corrupt-record error at `file`/`block` of cartridge `barcode`.
    pub(crate) fn corrupt_at(barcode: &str, file: u32, block: Option<u64>, detail: impl Into<String>) -> Self {
        TapeError::Corrupt { cartridge: barcode.to_owned(), file: Some(file), block, detail: detail.into() }
    }
}

impl fmt::Display for TapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapeError::Io { cartridge, op, source } => write!(f, "cartridge {cartridge}: {op}: {source}"),
            TapeError::Device(e) => write!(f, "{e}"),
            TapeError::NotFound { path } => write!(f, "no such cartridge: {}", path.display()),
            TapeError::Exists { path } => write!(f, "cartridge already exists: {}", path.display()),
            TapeError::Corrupt { cartridge, file, block, detail } => {
                write!(f, "cartridge {cartridge}")?;
                if let Some(n) = file {
                    write!(f, " file {n}")?;
                }
                if let Some(b) = block {
                    write!(f, " block {b}")?;
                }
                write!(f, " is corrupt: {detail}")
            }
            TapeError::EndOfMedium { cartridge, needed, available } => {
                write!(f, "cartridge {cartridge}: end of medium ({needed} bytes needed, {available} left before the end)")
            }
            TapeError::EndOfData { cartridge, file } => {
                write!(f, "cartridge {cartridge}: end of data reached at file {file}")
            }
            TapeError::Range { cartridge, detail } => write!(f, "cartridge {cartridge}: {detail}"),
            TapeError::Invalid { detail } => write!(f, "{detail}"),
            TapeError::ReadOnly { cartridge } => write!(f, "cartridge {cartridge} is loaded read-only"),
            TapeError::Busy { cartridge, detail } => write!(f, "cartridge {cartridge} is busy: {detail}"),
            TapeError::Cancelled { bytes } => write!(f, "transfer cancelled after {bytes} bytes"),
            TapeError::Poisoned { cartridge } => {
                write!(f, "cartridge {cartridge}: an earlier sync failed, so no further writes are accepted; reload the cartridge")
            }
            TapeError::Sink { detail, .. } => write!(f, "{detail}"),
        }
    }
}

impl std::error::Error for TapeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TapeError::Io { source, .. } => Some(source),
            TapeError::Device(e) => Some(e),
            _ => None,
        }
    }
}

impl From<VolumeError> for TapeError {
    fn from(e: VolumeError) -> Self {
        TapeError::Device(e)
    }
}
