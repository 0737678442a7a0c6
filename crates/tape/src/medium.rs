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
        self.behind.sync()
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
///
/// Linux reports a writeback error once per open file description, to whichever
/// `fsync` comes first, and both syncs use the same descriptor. Had the background and
/// the foreground sync run at once, the foreground one could return success while the
/// background one took the error and stored it only after the foreground had looked:
/// a filemark would then count as durable over lost data. So [`WriteBehind::sync`] is
/// the one owner of the result: the two never overlap (one lock), and the foreground
/// sync reports its own error or any a background sync stored before it, after its own
/// `fdatasync` returned. The drive then refuses further writes (it is poisoned).
pub(crate) struct WriteBehind {
    file: Arc<dyn SyncData>,
    flusher: Mutex<Option<(SyncSender<()>, JoinHandle<()>)>>,
    /// An error a background sync hit, for the next foreground sync to report: the
    /// kernel reports a writeback error to a descriptor once, and the thread took it.
    failed: Arc<Mutex<Option<io::Error>>>,
    /// Held by every sync, background or foreground, while it runs.
    syncing: Arc<Mutex<()>>,
}

/// What a sync of a [`WriteBehind`] calls: `File::sync_data`, or a test's stand-in.
pub(crate) trait SyncData: Send + Sync + 'static {
    fn sync_data(&self) -> io::Result<()>;
}

impl SyncData for File {
    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
}

impl WriteBehind {
    pub(crate) fn new(file: Arc<impl SyncData>) -> Self {
        WriteBehind { file, flusher: Mutex::new(None), failed: Arc::new(Mutex::new(None)), syncing: Arc::new(Mutex::new(())) }
    }

    /// The foreground sync: waits for a background sync that runs, syncs, and fails if
    /// it or any background sync since the last foreground one failed.
    pub(crate) fn sync(&self) -> io::Result<()> {
        let _one = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        let r = self.file.sync_data();
        match self.take_error() {
            Some(e) => Err(e),
            None => r,
        }
    }

    /// Asks for a background sync; kicks during a running sync collapse into one more.
    pub(crate) fn kick(&self) {
        let Ok(mut slot) = self.flusher.lock() else { return };
        if slot.is_none() {
            let (kick, kicked) = sync_channel::<()>(1);
            let (file, failed, syncing) = (self.file.clone(), self.failed.clone(), self.syncing.clone());
            let spawned = std::thread::Builder::new().name("plexus-flush".into()).spawn(move || {
                while kicked.recv().is_ok() {
                    let _one = syncing.lock().unwrap_or_else(|p| p.into_inner());
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

#[cfg(test)]
mod tests {
    use super::{SyncData, WriteBehind};
    use std::io;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A descriptor as the kernel treats it: one writeback error pending, reported to
    /// the first sync that asks (slowly: the disk is writing), success to all later ones.
    #[derive(Default)]
    struct OneError {
        calls: AtomicU32,
        started: AtomicBool,
    }

    impl SyncData for OneError {
        fn sync_data(&self) -> io::Result<()> {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                self.started.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            Ok(())
        }
    }

    #[test]
    fn a_writeback_error_taken_by_the_background_sync_reaches_the_foreground_one() {
        let file = Arc::new(OneError::default());
        let behind = WriteBehind::new(file.clone());
        behind.kick();
        let t = Instant::now();
        while !file.started.load(Ordering::SeqCst) {
            assert!(t.elapsed() < Duration::from_secs(10), "the background sync never ran");
            std::thread::yield_now();
        }
        // The background sync holds the error; the foreground sync, called while it
        // runs, must report it (it used to see success from its own fdatasync).
        let r = behind.sync();
        assert_eq!(r.err().and_then(|e| e.raw_os_error()), Some(libc::EIO));
        assert_eq!(file.calls.load(Ordering::SeqCst), 2);
        // Reported once: the next sync has nothing left to report.
        assert!(behind.sync().is_ok());
    }
}
