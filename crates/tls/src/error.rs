//! Error type for loading TLS credentials.
//!
//! Every variant maps to a stable code (`E_NOENT`, `E_INVALID`, ...) so the binding and the
//! CLI report a bad credentials directory the same way as any other bad input.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while loading credentials into a [`crate::TlsServer`].
#[derive(Debug)]
pub enum TlsError {
    /// A credentials file or directory could not be read.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Short name of the operation (`"read"`, `"open"`).
        op: &'static str,
        /// The underlying OS error.
        source: io::Error,
    },
    /// A credentials file was read but its content is unusable (bad PEM, a malformed PSK
    /// line, a key that does not match its certificate, a certificate the CA did not sign).
    Invalid {
        /// The offending file, with `:LINE` for PSK files.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// OpenSSL refused a setting that does not depend on the input (a library built without
    /// PSK or TLS 1.3, say): not the operator's fault.
    Setup {
        /// What was being set and OpenSSL's error.
        detail: String,
    },
}

impl TlsError {
    /// Stable machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            TlsError::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => "E_NOENT",
                io::ErrorKind::PermissionDenied => "E_ACCESS",
                _ => "E_IO",
            },
            TlsError::Invalid { .. } => "E_INVALID",
            TlsError::Setup { .. } => "E_INTERNAL",
        }
    }

    /// A closure wrapping an `io::Error` with path and operation, for `map_err`.
    pub(crate) fn io(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> TlsError {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, op, source }
    }

    /// Shorthand for an `Invalid` error.
    pub(crate) fn invalid(path: &Path, detail: impl Into<String>) -> TlsError {
        TlsError::Invalid { path: path.to_path_buf(), detail: detail.into() }
    }

    /// A closure wrapping OpenSSL's error stack for a setting the input does not influence.
    pub(crate) fn setup(what: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> TlsError {
        move |e| TlsError::Setup { detail: format!("{what}: {e}") }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Io { path, op, source } => write!(f, "{op} {}: {source}", path.display()),
            TlsError::Invalid { path, detail } => write!(f, "{}: {detail}", path.display()),
            TlsError::Setup { detail } => write!(f, "TLS set-up failed: {detail}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, TlsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_os_error() {
        let p = Path::new("/x/ca-cert.pem");
        assert_eq!(TlsError::io(p, "read")(io::Error::from(io::ErrorKind::NotFound)).code(), "E_NOENT");
        assert_eq!(TlsError::io(p, "read")(io::Error::from(io::ErrorKind::PermissionDenied)).code(), "E_ACCESS");
        assert_eq!(TlsError::io(p, "read")(io::Error::other("disk on fire")).code(), "E_IO");
        assert_eq!(TlsError::invalid(p, "no certificate").code(), "E_INVALID");
        assert_eq!(TlsError::invalid(p, "no certificate").to_string(), "/x/ca-cert.pem: no certificate");
    }
}
