//! The I/O a drive does on its cartridge, behind a small trait so tests can put a
//! fault-injecting medium (a full disk, a failed sync) on the real drive code path.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Positional I/O on the bytes of one cartridge. Methods take `&self` so the writer
/// stage of a transfer can run on its own thread while the drive keeps the medium.
pub trait Medium: Send + Sync {
    /// Current length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset`; UnexpectedEof if the medium ends first.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `bufs`, back to back, starting at `offset`.
    fn write_at(&self, offset: u64, bufs: &[&[u8]]) -> io::Result<()>;
    /// Cuts (or extends) the medium to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes every write so far durable.
    fn sync(&self) -> io::Result<()>;
    /// Starts writing what was written so far back to storage without waiting, so
    /// the sync at the next filemark finds little left to do. Only a hint.
    fn write_behind(&self) {}
}

/// A cartridge file.
pub struct FileMedium {
    file: Arc<File>,
    behind: WriteBehind,
}

impl FileMedium {
    /// Wraps an open cartridge file.
    pub fn new(file: File) -> Self {
        let file = Arc::new(file);
        FileMedium { behind: WriteBehind::new(file.clone()), file }
    }

    /// The underlying file (for locking).
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Medium for FileMedium {
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&self, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
        // One pwritev per record puts the header and the payload into the page cache
        // with a single copy.
        let mut slices: Vec<IoSlice<'_>> = bufs.iter().filter(|b| !b.is_empty()).map(|b| IoSlice::new(b)).collect();
        let mut rest: &mut [IoSlice<'_>] = &mut slices;
        let mut at = offset;
        while !rest.is_empty() {
            match rustix::io::pwritev(&self.file, rest, at) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    at += n as u64;
                    IoSlice::advance_slices(&mut rest, n);
                }
                Err(e) if e == rustix::io::Errno::INTR => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync(&self) -> io::Result<()> {
        if let Some(e) = self.behind.take_error() {
            return Err(e);
        }
        self.file.sync_data()
    }

    fn write_behind(&self) {
        self.behind.kick();
    }
}

/// Starts writeback of a file in the background: a thread runs `fdatasync` whenever
/// it is kicked, so the disk writes a segment while it is produced instead of all of
/// it at the filemark. (`sync_file_range` would do without a thread but needs `unsafe`;
/// `fadvise(DONTNEED)` starts writeback too, but also evicts part of the file from the
/// page cache.) The thread starts at the first kick and is joined on drop.
pub(crate) struct WriteBehind {
    file: Arc<File>,
    flusher: Mutex<Option<(SyncSender<()>, JoinHandle<()>)>>,
    /// An error a background sync hit, for the next foreground sync to report: the
    /// kernel reports a writeback error to a descriptor once, and the thread took it.
    failed: Arc<Mutex<Option<io::Error>>>,
}

impl WriteBehind {
    pub(crate) fn new(file: Arc<File>) -> Self {
        WriteBehind { file, flusher: Mutex::new(None), failed: Arc::new(Mutex::new(None)) }
    }

    /// Asks for a background sync; kicks during a running sync collapse into one more.
    pub(crate) fn kick(&self) {
        let Ok(mut slot) = self.flusher.lock() else { return };
        if slot.is_none() {
            let (kick, kicked) = sync_channel::<()>(1);
            let (file, failed) = (self.file.clone(), self.failed.clone());
            let spawned = std::thread::Builder::new().name("plexus-flush".into()).spawn(move || {
                while kicked.recv().is_ok() {
                    if let Err(e) = file.sync_data() {
                        if let Ok(mut f) = failed.lock() {
                            f.get_or_insert(e);
                        }
                    }
                }
            });
            // Without the thread the data is simply written at the next sync.
            let Ok(thread) = spawned else { return };
            *slot = Some((kick, thread));
        }
        if let Some((kick, _)) = slot.as_ref() {
            let _ = kick.try_send(());
        }
    }

    /// The error a background sync hit, if any (taken: reported once).
    pub(crate) fn take_error(&self) -> Option<io::Error> {
        self.failed.lock().ok().and_then(|mut f| f.take())
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        if let Some((kick, thread)) = self.flusher.get_mut().ok().and_then(|f| f.take()) {
            drop(kick);
            let _ = thread.join();
        }
    }
}

/// What a [`FaultyMedium`] does once its fault triggers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediumFault {
    /// Writes fail with this OS error number (e.g. `libc::ENOSPC`) once `after` bytes
    /// have been written; the write that crosses the limit writes nothing.
    WriteErrorAfter { after: u64, errno: i32 },
    /// Every sync fails with EIO.
    SyncError,
    /// Reads fail with EIO once `after` bytes have been read.
    ReadErrorAfter { after: u64 },
}

/// Wraps a medium and injects a fault; the wrapped medium does the real work until then.
pub struct FaultyMedium<M: Medium> {
    inner: M,
    fault: MediumFault,
    written: AtomicU64,
    read: AtomicU64,
}

impl<M: Medium> FaultyMedium<M> {
    /// Wraps `inner` with `fault`.
    pub fn new(inner: M, fault: MediumFault) -> Self {
        FaultyMedium { inner, fault, written: AtomicU64::new(0), read: AtomicU64::new(0) }
    }
}

impl<M: Medium> Medium for FaultyMedium<M> {
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if let MediumFault::ReadErrorAfter { after } = self.fault {
            if self.read.fetch_add(buf.len() as u64, Ordering::SeqCst) + buf.len() as u64 > after {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
        }
        self.inner.read_at(offset, buf)
    }

    fn write_at(&self, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
        if let MediumFault::WriteErrorAfter { after, errno } = self.fault {
            let n: u64 = bufs.iter().map(|b| b.len() as u64).sum();
            if self.written.fetch_add(n, Ordering::SeqCst) + n > after {
                return Err(io::Error::from_raw_os_error(errno));
            }
        }
        self.inner.write_at(offset, bufs)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn write_behind(&self) {
        self.inner.write_behind()
    }

    fn sync(&self) -> io::Result<()> {
        if self.fault == MediumFault::SyncError {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.inner.sync()
    }
}
