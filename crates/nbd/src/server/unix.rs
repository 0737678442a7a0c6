//! The Unix socket file: created 0600 from the first moment, replacing a stale one
//! atomically, never a live one, and removed only while it is still ours.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A bound socket file and the identity of the inode bound.
pub(crate) struct UnixSocketFile {
    pub(crate) listener: UnixListener,
    pub(crate) path: PathBuf,
    dev: u64,
    ino: u64,
}

/// Binds `path`. The socket is bound inside a fresh 0700 directory, made 0600, then
/// renamed into place: no moment exists where others could connect through looser
/// permissions, and a stale socket file is replaced in one step. A live socket (one that
/// accepts connections) or a file of another kind is left alone and reported.
pub(crate) fn bind(path: &Path) -> io::Result<UnixSocketFile> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists and is not a socket", path.display())));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("a server is already listening on {}", path.display())));
        }
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "socket path has no file name"))?;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let staging = parent.join(format!(".{}.{}.{nanos}", name.to_string_lossy(), std::process::id()));
    fs::DirBuilder::new().mode(0o700).create(&staging)?;
    let result = bind_in(&staging, path);
    let _ = fs::remove_dir(&staging);
    result
}

fn bind_in(staging: &Path, path: &Path) -> io::Result<UnixSocketFile> {
    let temp = staging.join("s");
    let listener = UnixListener::bind(&temp)?;
    fs::set_permissions(&temp, fs::Permissions::from_mode(0o600))?;
    if let Err(e) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    let meta = fs::symlink_metadata(path)?;
    Ok(UnixSocketFile { listener, path: path.to_owned(), dev: meta.dev(), ino: meta.ino() })
}

impl UnixSocketFile {
    /// Removes the file if it is still the one we bound (not replaced by someone else).
    pub(crate) fn remove(&self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path) {
            if meta.dev() == self.dev && meta.ino() == self.ino {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}
