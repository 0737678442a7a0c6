//! A volume: a sparse file of fixed size with an identity file beside it, read through
//! a memory map and written through its descriptor.

use crate::device::{check_range, BlockDevice};
use crate::error::{Result, VolumeError};
use crate::identity::{identity_path, sync_parent, validate_block_size, Identity};
use crate::map::MappedRegion;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// How a volume is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads only; writes fail with E_READONLY.
    ReadOnly,
    /// Reads and writes.
    ReadWrite,
}

/// An open volume. Cheap to share between threads (`&Volume` is `Sync`).
pub struct Volume {
    name: String,
    path: PathBuf,
    file: File,
    map: MappedRegion,
    identity: Identity,
    access: Access,
}

impl Volume {
    /// Creates a sparse volume of `size` bytes at `path` with a fresh identity.
    /// E_EXISTS if either file exists; E_INVALID for a bad block size or zero size;
    /// E_SIZE if `size` is not a multiple of the block size.
    pub fn create(path: &Path, size: u64, block_size: u64) -> Result<Volume> {
        let block_size = validate_block_size(block_size)?;
        if size == 0 {
            return Err(VolumeError::Invalid { detail: "volume size must be greater than zero".into() });
        }
        if !size.is_multiple_of(u64::from(block_size)) {
            return Err(VolumeError::Size {
                detail: format!("volume size {size} is not a multiple of the block size {block_size}"),
            });
        }
        if identity_path(path).exists() {
            return Err(VolumeError::Exists { path: identity_path(path) });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => VolumeError::Exists { path: path.to_owned() },
                _ => VolumeError::io(path, "create", e),
            })?;
        let made = (|| {
            file.set_len(size).map_err(|e| VolumeError::io(path, "set length", e))?;
            file.sync_all().map_err(|e| VolumeError::io(path, "fsync", e))?;
            // The identity is written last: a volume without one is incomplete and the
            // create can simply be repeated after removing the data file.
            Identity::new(size, block_size)?.store(path)
        })();
        if let Err(e) = made {
            let _ = fs::remove_file(path);
            return Err(e);
        }
        sync_parent(path)?;
        Volume::open(path, Access::ReadWrite)
    }

    /// Opens an existing volume; E_NOENT if it is missing, E_CORRUPT if the data file's
    /// length disagrees with its identity.
    pub fn open(path: &Path, access: Access) -> Result<Volume> {
        let identity = Identity::load(path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(access == Access::ReadWrite)
            .open(path)
            .map_err(|e| VolumeError::io(path, "open", e))?;
        let len = file.metadata().map_err(|e| VolumeError::io(path, "stat", e))?.len();
        if len != identity.size {
            return Err(VolumeError::Corrupt {
                path: path.to_owned(),
                detail: format!("data file is {len} bytes but its identity says {}", identity.size),
            });
        }
        let map = MappedRegion::map(&file, len).map_err(|e| VolumeError::io(path, "mmap", e))?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Volume { name, path: path.to_owned(), file, map, identity, access })
    }

    /// Deletes the data file and the identity file.
    pub fn remove(path: &Path) -> Result<()> {
        let meta = identity_path(path);
        if !meta.exists() && !path.exists() {
            return Err(VolumeError::NotFound { path: path.to_owned() });
        }
        for p in [&meta, &path.to_path_buf()] {
            match fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(VolumeError::io(p, "remove", e)),
            }
        }
        sync_parent(path)
    }

    /// The volume's name (its file stem), used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Path of the data file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The persisted identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.identity.block_size
    }
    /// Whether writes are refused.
    pub fn is_read_only(&self) -> bool {
        self.access == Access::ReadOnly
    }

    /// SHA-256 of `[offset, offset+len)`, lower-case hex.
    pub fn checksum(&self, offset: u64, len: u64) -> Result<String> {
        check_range(&self.name, offset, len, self.size())?;
        self.map.advise_sequential();
        let mut hasher = Sha256::new();
        const PIECE: u64 = 1 << 20;
        let mut at = offset;
        while at < offset + len {
            let n = PIECE.min(offset + len - at) as usize;
            self.map.with_slice(at, n, |b| hasher.update(b)).ok_or_else(|| self.range_err(at, n as u64))?;
            at += n as u64;
        }
        Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    fn range_err(&self, offset: u64, len: u64) -> VolumeError {
        VolumeError::Range { volume: self.name.clone(), offset, len, size: self.size() }
    }
}

impl BlockDevice for Volume {
    fn label(&self) -> &str {
        &self.name
    }

    fn size(&self) -> u64 {
        self.identity.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(&self.name, offset, buf.len() as u64, self.size())?;
        self.map
            .with_slice(offset, buf.len(), |b| buf.copy_from_slice(b))
            .ok_or_else(|| self.range_err(offset, buf.len() as u64))
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        if self.access == Access::ReadOnly {
            return Err(VolumeError::ReadOnly { volume: self.name.clone() });
        }
        check_range(&self.name, offset, data.len() as u64, self.size())?;
        self.file
            .write_all_at(data, offset)
            .map_err(|e| VolumeError::io(&self.path, "write", e))
    }

    fn flush(&self) -> Result<()> {
        // Writes go through the descriptor, so fsync covers them; the map is read-only
        // and never holds dirty pages of its own, which makes msync unnecessary.
        self.file.sync_data().map_err(|e| VolumeError::io(&self.path, "fsync", e))
    }

    fn with_bytes(&self, offset: u64, len: usize, f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Option<Result<()>> {
        if offset.checked_add(len as u64).is_none_or(|end| end > self.map.len() as u64) {
            return Some(Err(self.range_err(offset, len as u64)));
        }
        self.map.with_slice(offset, len, f)
    }
}

/// Swaps the data of two volumes of equal size by exchanging their data files in one
/// atomic rename (RENAME_EXCHANGE): no byte is copied, and a crash leaves either the
/// old or the new arrangement, never a mix. Identities stay with their names.
pub fn exchange_data(a: &Path, b: &Path) -> Result<()> {
    let ia = Identity::load(a)?;
    let ib = Identity::load(b)?;
    if ia.size != ib.size {
        return Err(VolumeError::Size {
            detail: format!("cannot exchange {} ({} bytes) with {} ({} bytes)", a.display(), ia.size, b.display(), ib.size),
        });
    }
    rustix::fs::renameat_with(rustix::fs::CWD, a, rustix::fs::CWD, b, rustix::fs::RenameFlags::EXCHANGE)
        .map_err(|e| VolumeError::io(a, "exchange", std::io::Error::from(e)))?;
    sync_parent(a)?;
    sync_parent(b)
}
