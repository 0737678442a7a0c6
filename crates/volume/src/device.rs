//! The block-device contract every copy source and destination honours, so tests can
//! put in-memory and fault-injecting devices on the real copy path.

use crate::error::{Result, VolumeError};
use crate::volume::BackingFile;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// A fixed-size byte-addressed device. Implementations must be safe to use from many
/// threads at once; concurrent writes to disjoint ranges must not interfere.
pub trait BlockDevice: Send + Sync {
    /// Name used in error messages.
    fn label(&self) -> &str;
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`; E_RANGE if the range passes the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Writes `data` at `offset`; E_RANGE past the end, E_READONLY if read-only.
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()>;
    /// Makes every acknowledged write durable.
    fn flush(&self) -> Result<()>;
    /// The plain file holding the device's bytes at the same offsets, for copies the
    /// kernel does from file to file ([`BackingFile::copy_to`]); `write`: the caller
    /// will write through it, so a read-only device answers `None`. `None` (memory,
    /// fault-injecting wrappers) means "copy through a buffer with `read_at`/`write_at`".
    ///
    /// No device lends its bytes in memory: a reader always gets its own copy
    /// (`read_at`), so what it checksums is what it writes, and no outside change to a
    /// file (a truncation) can fault the process (see docs/design.md).
    fn backing_file(&self, _write: bool) -> Option<BackingFile<'_>> {
        None
    }
    /// Makes `[offset, offset+len)` read as zeroes; with `punch` the device may also
    /// deallocate it. E_RANGE past the end, E_READONLY if read-only. The default writes
    /// zeroes through [`write_at`](Self::write_at) in bounded pieces.
    fn write_zeroes(&self, offset: u64, len: u64, _punch: bool) -> Result<()> {
        zero_through_writes(self, offset, len)
    }
    /// Runs `(len, hole)` covering exactly `[offset, offset+len)`, in order; a hole reads
    /// as zeroes, data may hold anything. E_RANGE past the end. The default knows
    /// nothing of allocation and reports everything as data, which is always true.
    fn allocation(&self, offset: u64, len: u64) -> Result<Vec<(u64, bool)>> {
        check_range(self.label(), offset, len, self.size())?;
        Ok(if len == 0 { Vec::new() } else { vec![(len, false)] })
    }
    /// Hints that `[offset, offset+len)` will be read soon. E_RANGE past the end; the
    /// default does nothing else.
    fn cache(&self, offset: u64, len: u64) -> Result<()> {
        check_range(self.label(), offset, len, self.size())
    }
    /// Hints that `[offset, offset+len)`, just read in bulk (by a copy), will not be
    /// read again soon: its clean pages may leave the page cache. Best effort, never an
    /// error; the default does nothing.
    fn uncache(&self, _offset: u64, _len: u64) {}
}

/// Zeroes written per call by [`zero_through_writes`]: bounded so a huge range never
/// allocates a huge buffer.
const ZERO_PIECE: u64 = 1 << 20;

/// Makes `[offset, offset+len)` of `dev` zero by writing zeroes, 1 MiB at a time: what
/// any device can do when it has nothing better.
pub fn zero_through_writes<D: BlockDevice + ?Sized>(dev: &D, offset: u64, len: u64) -> Result<()> {
    check_range(dev.label(), offset, len, dev.size())?;
    if len == 0 {
        // Still refuses a read-only device, as an empty write_at does.
        return dev.write_at(offset, &[]);
    }
    let zeroes = vec![0u8; ZERO_PIECE.min(len) as usize];
    let end = offset + len;
    let mut at = offset;
    while at < end {
        let n = ZERO_PIECE.min(end - at) as usize;
        dev.write_at(at, zeroes.get(..n).unwrap_or_default())?;
        at += n as u64;
    }
    Ok(())
}

/// Checks that `[offset, offset+len)` lies within a device of `size` bytes.
pub fn check_range(label: &str, offset: u64, len: u64, size: u64) -> Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(VolumeError::Range { volume: label.to_owned(), offset, len, size }),
    }
}

/// A device held in memory; for tests and for staging small images.
pub struct MemDevice {
    label: String,
    bytes: RwLock<Vec<u8>>,
}

impl MemDevice {
    /// A zero-filled device of `size` bytes.
    pub fn new(label: &str, size: usize) -> Self {
        MemDevice { label: label.to_owned(), bytes: RwLock::new(vec![0; size]) }
    }

    /// A copy of the whole contents.
    pub fn contents(&self) -> Vec<u8> {
        self.bytes.read().map(|b| b.clone()).unwrap_or_default()
    }
}

impl BlockDevice for MemDevice {
    fn label(&self) -> &str {
        &self.label
    }
    fn size(&self) -> u64 {
        self.bytes.read().map(|b| b.len() as u64).unwrap_or(0)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(&self.label, offset, buf.len() as u64, self.size())?;
        let b = self.bytes.read().map_err(|_| poisoned(&self.label))?;
        let start = offset as usize;
        buf.copy_from_slice(b.get(start..start + buf.len()).ok_or_else(|| poisoned(&self.label))?);
        Ok(())
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        check_range(&self.label, offset, data.len() as u64, self.size())?;
        let mut b = self.bytes.write().map_err(|_| poisoned(&self.label))?;
        let start = offset as usize;
        b.get_mut(start..start + data.len()).ok_or_else(|| poisoned(&self.label))?.copy_from_slice(data);
        Ok(())
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    fn write_zeroes(&self, offset: u64, len: u64, _punch: bool) -> Result<()> {
        check_range(&self.label, offset, len, self.size())?;
        let mut b = self.bytes.write().map_err(|_| poisoned(&self.label))?;
        let start = offset as usize;
        b.get_mut(start..start + len as usize).ok_or_else(|| poisoned(&self.label))?.fill(0);
        Ok(())
    }
    // Memory has no holes: the default allocation (all data) and cache (no-op) are exact.
}

fn poisoned(label: &str) -> VolumeError {
    VolumeError::Busy { volume: label.to_owned(), detail: "in-memory device lock poisoned".into() }
}

/// What a [`FaultyDevice`] does once its fault triggers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Writes fail with an I/O error after this many bytes were written; zeroed bytes
    /// count as written.
    FailWritesAfter(u64),
    /// Reads fail with an I/O error after this many bytes were read; once they do,
    /// allocation queries and cache hints fail too (the device has gone bad).
    FailReadsAfter(u64),
}

/// Wraps a device and injects a fault; the wrapped device does the real work until then.
pub struct FaultyDevice<D: BlockDevice> {
    inner: D,
    fault: Fault,
    read: AtomicU64,
    written: AtomicU64,
}

impl<D: BlockDevice> FaultyDevice<D> {
    /// Wraps `inner` with `fault`.
    pub fn new(inner: D, fault: Fault) -> Self {
        FaultyDevice { inner, fault, read: AtomicU64::new(0), written: AtomicU64::new(0) }
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    fn injected(&self, op: &'static str) -> VolumeError {
        VolumeError::Io { path: self.inner.label().into(), op, source: std::io::Error::other("injected fault") }
    }
}

impl<D: BlockDevice> BlockDevice for FaultyDevice<D> {
    fn label(&self) -> &str {
        self.inner.label()
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if let Fault::FailReadsAfter(limit) = self.fault {
            if self.read.fetch_add(buf.len() as u64, Ordering::SeqCst) + buf.len() as u64 > limit {
                return Err(self.injected("read"));
            }
        }
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.count_write(data.len() as u64, "write")?;
        self.inner.write_at(offset, data)
    }
    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
    fn write_zeroes(&self, offset: u64, len: u64, punch: bool) -> Result<()> {
        self.count_write(len, "write zeroes")?;
        self.inner.write_zeroes(offset, len, punch)
    }
    fn allocation(&self, offset: u64, len: u64) -> Result<Vec<(u64, bool)>> {
        self.refuse_if_reads_failed("seek data")?;
        self.inner.allocation(offset, len)
    }
    fn cache(&self, offset: u64, len: u64) -> Result<()> {
        self.refuse_if_reads_failed("fadvise")?;
        self.inner.cache(offset, len)
    }
    fn uncache(&self, offset: u64, len: u64) {
        self.inner.uncache(offset, len);
    }
}

impl<D: BlockDevice> FaultyDevice<D> {
    /// Counts `len` bytes against a write fault; the error once the budget is spent.
    fn count_write(&self, len: u64, op: &'static str) -> Result<()> {
        if let Fault::FailWritesAfter(limit) = self.fault {
            if self.written.fetch_add(len, Ordering::SeqCst) + len > limit {
                return Err(self.injected(op));
            }
        }
        Ok(())
    }

    /// Queries that read no bytes still fail once reads do, so nothing routes around
    /// the fault by asking where the data is first.
    fn refuse_if_reads_failed(&self, op: &'static str) -> Result<()> {
        match self.fault {
            Fault::FailReadsAfter(limit) if self.read.load(Ordering::SeqCst) > limit => Err(self.injected(op)),
            _ => Ok(()),
        }
    }
}
