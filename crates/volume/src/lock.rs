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

    /// Whether some live process holds the lock at `path` right now. Asked without
    /// taking the lock, even for an instant (which would make an owner starting at
    /// that moment fail with E_BUSY): from the kernel's table of locks (/proc/locks)
    /// where there is one; otherwise by a probe on a read-only descriptor. A lock file
    /// that cannot be examined (stat or open fails, other than it not existing) counts
    /// as held: "unknown" must never settle a live owner's work as dead.
    pub fn is_held(path: &Path) -> bool {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(_) => return true,
        };
        if let Some(table) = read_lock_table() {
            // A held lock missing from one reading would settle a live owner as dead:
            // "not held" must be seen in every reading (see LOCK_TABLE_READINGS).
            return in_lock_table(&table, &meta)
                || (1..LOCK_TABLE_READINGS).any(|_| read_lock_table().is_none_or(|t| in_lock_table(&t, &meta)));
        }
        let file = match OpenOptions::new().read(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(_) => return true,
        };
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

/// Readings of /proc/locks that must all miss a lock before it counts as free. The
/// kernel hands the table out a page per `read`, resuming by position, so a reading
/// taken while other locks come and go can skip a held one (seen about once in 500
/// readings with six processes churning SQLite's locks): independent misses in a row
/// make that vanishingly rare.
const LOCK_TABLE_READINGS: usize = 3;

fn read_lock_table() -> Option<String> {
    std::fs::read_to_string("/proc/locks").ok()
}

/// Whether /proc/locks (`table`) lists a flock on the file `meta` describes. Lines read
/// `1: FLOCK  ADVISORY  WRITE 4242 fe:00:10010787 0 EOF`: major:minor (hex) and inode.
/// A line on the same device and inode counts. On overlay file systems the device
/// shown may differ from the one stat gives: a line with the inode alone counts only
/// while the file holds an owner's pid (an owner writes it after taking the lock and
/// empties it on release), which keeps an unrelated lock on an equal inode elsewhere
/// from counting.
fn in_lock_table(table: &str, meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dev = meta.dev();
    let (major, minor) = (u64::from(rustix::fs::major(dev)), u64::from(rustix::fs::minor(dev)));
    table.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = f.iter().position(|x| *x == "FLOCK") else { return false };
        // FLOCK ADVISORY WRITE pid maj:min:ino start end
        let Some(id) = f.get(at + 4) else { return false };
        let mut parts = id.split(':');
        let (Some(ma), Some(mi), Some(ino), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else { return false };
        if ino.parse::<u64>().ok() != Some(meta.ino()) {
            return false;
        }
        let same_dev = u64::from_str_radix(ma, 16).ok() == Some(major) && u64::from_str_radix(mi, 16).ok() == Some(minor);
        same_dev || meta.len() > 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_table_is_read_by_device_and_inode() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("x.lock");
        std::fs::write(&path, "").expect("write");
        let meta = std::fs::metadata(&path).expect("stat");
        use std::os::unix::fs::MetadataExt;
        let dev = meta.dev();
        let (ma, mi) = (u64::from(rustix::fs::major(dev)), u64::from(rustix::fs::minor(dev)));
        let line = |maj: u64, ino: u64| format!("1: FLOCK  ADVISORY  WRITE 4242 {maj:02x}:{mi:02x}:{ino} 0 EOF\n");
        assert!(in_lock_table(&line(ma, meta.ino()), &meta));
        assert!(!in_lock_table(&line(ma, meta.ino() + 1), &meta));
        // Another device, same inode: only while the file names an owner.
        assert!(!in_lock_table(&line(ma + 1, meta.ino()), &meta));
        std::fs::write(&path, "4242").expect("write");
        let meta = std::fs::metadata(&path).expect("stat");
        assert!(in_lock_table(&line(ma + 1, meta.ino()), &meta));
        assert!(!in_lock_table("1: POSIX  ADVISORY  WRITE 4242 00:00:1 0 EOF\n", &meta));
        assert!(!in_lock_table("garbage\n", &meta));
    }

    #[test]
    fn held_while_an_owner_lock_lives_and_free_after() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("y.lock");
        assert!(!OwnerLock::is_held(&path));
        let l = OwnerLock::try_acquire(&path, "y").expect("acquire");
        assert!(OwnerLock::is_held(&path));
        drop(l);
        assert!(!OwnerLock::is_held(&path));
    }
}
