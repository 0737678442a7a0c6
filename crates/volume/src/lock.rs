//! Exclusive ownership of a resource across processes, released by the kernel when the
//! owner exits or dies, so a crashed owner never leaves a stale lock behind.

use crate::error::{Result, VolumeError};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// An exclusive advisory lock on a lock file (flock), holding the owner's pid inside.
pub struct OwnerLock {
    file: File,
    path: PathBuf,
}

impl OwnerLock {
    /// Takes the lock or fails at once with E_BUSY naming the process that holds it.
    pub fn try_acquire(path: &Path, what: &str) -> Result<OwnerLock> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| VolumeError::io(path, "open lock", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(VolumeError::Busy {
                    volume: what.to_owned(),
                    detail: if holder.is_empty() { "in use by another process".into() } else { format!("in use by process {holder}") },
                });
            }
            Err(TryLockError::Error(e)) => return Err(VolumeError::io(path, "lock", e)),
        }
        file.set_len(0).map_err(|e| VolumeError::io(path, "truncate lock", e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| VolumeError::io(path, "seek lock", e))?;
        write!(file, "{}", std::process::id()).map_err(|e| VolumeError::io(path, "write lock", e))?;
        Ok(OwnerLock { file, path: path.to_owned() })
    }

    /// Whether some live process holds the lock at `path` right now.
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else { return false };
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(_) => true,
        }
    }

    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}
