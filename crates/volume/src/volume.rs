//! A volume: a sparse file of fixed size with an identity file beside it, read and
//! written through its descriptor (`pread`/`pwrite` into owned buffers).
//!
//! Volumes used to be read through a shared memory map. Another program can truncate
//! the data file at any time, and a read of a mapped page past the new end of file is
//! a SIGBUS that kills the whole process; nothing cheap makes a shared file map safe
//! against that (see docs/design.md, "Reads and writes by descriptor"). A `pread` past the end
//! returns a short count instead, which becomes E_CORRUPT naming the volume and the
//! offset. Reading into an owned buffer also gives every caller a stable snapshot: a
//! checksum computed over the buffer covers exactly the bytes later written from it.

use crate::device::{check_range, BlockDevice};
use crate::error::{Result, VolumeError};
use crate::identity::{identity_path, sync_parent, validate_block_size, Identity};
use rustix::io::Errno;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
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
            return Err(VolumeError::Size { detail: format!("volume size {size} is not a multiple of the block size {block_size}") });
        }
        if identity_path(path).exists() {
            return Err(VolumeError::Exists { path: identity_path(path) });
        }
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(|e| match e.kind() {
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
        let file =
            OpenOptions::new().read(true).write(access == Access::ReadWrite).open(path).map_err(|e| VolumeError::io(path, "open", e))?;
        let len = file.metadata().map_err(|e| VolumeError::io(path, "stat", e))?.len();
        if len != identity.size {
            return Err(VolumeError::Corrupt {
                path: path.to_owned(),
                detail: format!("data file is {len} bytes but its identity says {}", identity.size),
            });
        }
        // Reads are mostly front to back (checksums, copies, backups): a hint only.
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Volume { name, path: path.to_owned(), file, identity, access })
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

    /// SHA-256 of `[offset, offset+len)`, lower-case hex. E_CORRUPT if the data file
    /// turns out shorter than the identity says (truncated by another program).
    pub fn checksum(&self, offset: u64, len: u64) -> Result<String> {
        check_range(&self.name, offset, len, self.size())?;
        let mut hasher = Sha256::new();
        const PIECE: u64 = 1 << 20;
        let mut buf = vec![0u8; PIECE.min(len) as usize];
        let mut at = offset;
        while at < offset + len {
            let n = PIECE.min(offset + len - at) as usize;
            let piece = buf.get_mut(..n).unwrap_or_default();
            self.pread(at, piece)?;
            hasher.update(&*piece);
            at += n as u64;
        }
        Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Fills `buf` from `offset` of the data file, all of it: a read that ends early is
    /// E_CORRUPT (the file is shorter than its identity says), never zeros.
    fn pread(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            let at = offset + done as u64;
            match self.file.read_at(rest, at) {
                Ok(0) => return Err(self.short(at)),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(VolumeError::Io {
                        path: self.path.clone(),
                        op: "read",
                        source: std::io::Error::new(e.kind(), format!("volume {} at offset {at}: {e}", self.name)),
                    })
                }
            }
        }
        Ok(())
    }

    /// The error of a read that found the end of the data file at `offset`.
    pub(crate) fn short(&self, offset: u64) -> VolumeError {
        let now = self.file.metadata().map(|m| format!("{} bytes", m.len())).unwrap_or_else(|_| "of unknown length".into());
        VolumeError::Corrupt {
            path: self.path.clone(),
            detail: format!(
                "volume {}: the data file ends before offset {offset} (it is now {now}, its identity says {} bytes); was it truncated by another program?",
                self.name,
                self.identity.size
            ),
        }
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
        self.pread(offset, buf)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        if self.access == Access::ReadOnly {
            return Err(VolumeError::ReadOnly { volume: self.name.clone() });
        }
        check_range(&self.name, offset, data.len() as u64, self.size())?;
        self.file.write_all_at(data, offset).map_err(|e| VolumeError::io(&self.path, "write", e))
    }

    fn flush(&self) -> Result<()> {
        // Every write goes through the descriptor, so fsync covers them all.
        self.file.sync_data().map_err(|e| VolumeError::io(&self.path, "fsync", e))
    }

    fn backing_file(&self, write: bool) -> Option<BackingFile<'_>> {
        if write && self.access == Access::ReadOnly {
            return None;
        }
        Some(BackingFile { volume: self })
    }

    // The data file is the raw image with no header (docs/volume-format.md), so device
    // offsets are file offsets in the three calls below.

    fn write_zeroes(&self, offset: u64, len: u64, punch: bool) -> Result<()> {
        use rustix::fs::{fallocate, FallocateFlags};
        if self.access == Access::ReadOnly {
            return Err(VolumeError::ReadOnly { volume: self.name.clone() });
        }
        check_range(&self.name, offset, len, self.size())?;
        if len == 0 {
            return Ok(());
        }
        // KEEP_SIZE: a range at the end must never grow the file past its identity's size.
        let mut tries = vec![FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE];
        if punch {
            // Punching also zeroes; where it is refused, zeroing in place still gives
            // the contract (zeroes), only not the space back.
            tries.insert(0, FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE);
        }
        for flags in tries {
            match fallocate(&self.file, flags, offset, len) {
                Ok(()) => return Ok(()),
                // The file system does not do this mode (tmpfs has no ZERO_RANGE, ...).
                Err(Errno::OPNOTSUPP | Errno::NOSYS) => {}
                Err(e) => {
                    let source = std::io::Error::new(
                        std::io::Error::from(e).kind(),
                        format!("volume {} at offset {offset} length {len}: {e}", self.name),
                    );
                    return Err(VolumeError::io(&self.path, "fallocate", source));
                }
            }
        }
        crate::device::zero_through_writes(self, offset, len)
    }

    fn allocation(&self, offset: u64, len: u64) -> Result<Vec<(u64, bool)>> {
        check_range(&self.name, offset, len, self.size())?;
        self.extents(offset, offset + len)
    }

    fn cache(&self, offset: u64, len: u64) -> Result<()> {
        check_range(&self.name, offset, len, self.size())?;
        let Some(n) = std::num::NonZeroU64::new(len) else { return Ok(()) };
        rustix::fs::fadvise(&self.file, offset, Some(n), rustix::fs::Advice::WillNeed)
            .map_err(|e| VolumeError::io(&self.path, "fadvise", std::io::Error::from(e)))
    }
    fn uncache(&self, offset: u64, len: u64) {
        // A bulk read through the page cache leaves large readahead folios behind, and
        // small writes into those cost several times more in ext4 (measured: 4 KiB random
        // writes at 61k IOPS before a cold sequential read of the file, 15k after). A
        // copy's pages are not wanted again soon; dirty pages are not dropped by this.
        if let Some(n) = std::num::NonZeroU64::new(len) {
            let _ = rustix::fs::fadvise(&self.file, offset, Some(n), rustix::fs::Advice::DontNeed);
        }
    }
}

impl Volume {
    /// Data and hole runs of `[start, end)` from SEEK_DATA / SEEK_HOLE. These move the
    /// descriptor's shared file position, which nothing else here uses (all I/O is
    /// positional), and each call's answer is its own return value, so concurrent
    /// queries do not disturb each other.
    ///
    /// Another program may truncate or rewrite the file between two seeks. Whatever it
    /// does, this ends, never panics, and never calls data a hole unless the kernel
    /// just said so: past the end of file there is nothing (ENXIO), which reads as
    /// zeroes if the file grows back, so it is a hole; a seek that makes no progress
    /// (the file changed under us) ends the scan with the rest reported as data, which
    /// promises nothing.
    fn extents(&self, start: u64, end: u64) -> Result<Vec<(u64, bool)>> {
        use rustix::fs::{seek, SeekFrom};
        let mut runs: Vec<(u64, bool)> = Vec::new();
        let mut push = |len: u64, hole: bool| match runs.last_mut() {
            Some((l, h)) if *h == hole => *l += len,
            _ => runs.push((len, hole)),
        };
        let failed = |e: Errno, at: u64| {
            let source = std::io::Error::new(std::io::Error::from(e).kind(), format!("volume {} at offset {at}: {e}", self.name));
            VolumeError::io(&self.path, "seek data/hole", source)
        };
        let mut at = start;
        while at < end {
            let data = match seek(&self.file, SeekFrom::Data(at)) {
                Ok(p) => p.clamp(at, end),
                Err(Errno::NXIO) => end,
                // A file system that cannot tell: all data.
                Err(Errno::INVAL | Errno::OPNOTSUPP) => {
                    push(end - at, false);
                    break;
                }
                Err(e) => return Err(failed(e, at)),
            };
            if data > at {
                push(data - at, true);
                at = data;
                continue;
            }
            let hole = match seek(&self.file, SeekFrom::Hole(at)) {
                Ok(p) => p.min(end),
                // At or past the end of file now: truncated since the last seek.
                Err(Errno::NXIO) => {
                    push(end - at, true);
                    break;
                }
                Err(e) => return Err(failed(e, at)),
            };
            if hole <= at {
                push(end - at, false);
                break;
            }
            push(hole - at, false);
            at = hole;
        }
        Ok(runs)
    }
}

/// A volume's data file, lent to the copy engine so the kernel moves the bytes from one
/// volume to another through a pipe (`splice`): no user-space buffer, one copy in the
/// page cache where `pread` + `pwrite` (and `dd`) make two. Lent for writing only when
/// the volume is writable.
pub struct BackingFile<'a> {
    volume: &'a Volume,
}

/// Bytes a copy moves through its pipe per `splice` pair: the largest pipe an
/// unprivileged process may ask for by default (`/proc/sys/fs/pipe-max-size`).
const PIPE_BYTES: usize = 1 << 20;

impl BackingFile<'_> {
    /// Copies `[offset, offset+len)` of this file to the same offsets of `dst`'s file in
    /// the kernel: `splice` file -> pipe takes references to the source's cached pages,
    /// `splice` pipe -> file copies them into the destination's. Holes read as zeros and
    /// are written as zeros, as a copy through a buffer does. `None` when the kernel
    /// cannot do it here (nothing was copied): copy through a buffer instead. A source
    /// that ends early (truncated by another program) is E_CORRUPT naming volume and
    /// offset; the pipe holds page references, not a mapping, so a truncation can
    /// never fault the process.
    ///
    /// Measured against `copy_file_range` (which splices through an internal pipe of
    /// 64 KiB, so it calls the file system's write 16 times as often) and against
    /// `pread` + `pwrite`: see docs/design.md, "Reads and writes by descriptor".
    pub fn copy_to(&self, dst: &BackingFile<'_>, offset: u64, len: u64) -> Option<Result<()>> {
        use rustix::pipe::{fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};
        let (src, out) = (self.volume, dst.volume);
        let end = offset.checked_add(len)?;
        if check_range(&src.name, offset, len, src.size()).and(check_range(&out.name, offset, len, out.size())).is_err() {
            return None;
        }
        // A pipe per call, not per worker: a splice that fails or falls back half-way can
        // leave bytes in the pipe, and a reused pipe would then write them into the next
        // chunk. Creating one costs four system calls per chunk (4 MiB), next to nothing.
        let (from_pipe, to_pipe) = pipe_with(PipeFlags::CLOEXEC).ok()?;
        // A smaller pipe only costs more calls.
        let cap = fcntl_setpipe_size(&to_pipe, PIPE_BYTES).unwrap_or(1 << 16).max(4096);
        let failed = |op: &'static str, e: Errno, at: u64| VolumeError::Io {
            path: src.path.clone(),
            op,
            source: std::io::Error::new(
                std::io::Error::from(e).kind(),
                format!("volume {} to volume {} at offset {at}: {e}", src.name, out.name),
            ),
        };
        let mut at = offset;
        while at < end {
            let want = usize::try_from(end - at).map_or(cap, |n| n.min(cap));
            let mut off_in = at;
            let n = match splice(&src.file, Some(&mut off_in), &to_pipe, None, want, SpliceFlags::empty()) {
                Ok(0) => return Some(Err(src.short(at))),
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                // Nothing copied yet and this file cannot be spliced: use a buffer.
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) if at == offset => return None,
                Err(e) => return Some(Err(failed("read (splice)", e, at))),
            };
            let mut off_out = at;
            let mut left = n;
            while left > 0 {
                match splice(&from_pipe, None, &out.file, Some(&mut off_out), left, SpliceFlags::empty()) {
                    Ok(0) => return Some(Err(failed("write (splice)", Errno::IO, off_out))),
                    Ok(m) => left -= m,
                    Err(Errno::INTR) => {}
                    // The destination cannot be spliced into and nothing was written yet.
                    Err(Errno::INVAL | Errno::OPNOTSUPP) if off_out == offset => return None,
                    // The pipe holds source pages the source lost since the first splice
                    // (truncated in between, on kernels that check): the source's fault.
                    Err(Errno::NODATA) => return Some(Err(src.short(at))),
                    Err(e) => {
                        let e = std::io::Error::from(e);
                        return Some(Err(VolumeError::io(&out.path, "write (splice)", e)));
                    }
                }
            }
            at += n as u64;
        }
        Some(Ok(()))
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
