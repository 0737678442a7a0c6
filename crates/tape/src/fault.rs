//! Faults of a backup stream acted out on its source: a copy device, switch or drive
//! that fails after N bytes, or hangs until the job is cancelled (only a timeout
//! catches a hang), or gets stuck in a system call that no cancellation reaches (a hung
//! device: only the copy device's detached worker survives it). The backup manager computes one effective fault per stream from its
//! components and hands it to the segment transfer through this wrapper.

use plexus_copy::CopyControl;
use plexus_volume::{BlockDevice, Result, VolumeError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// When a stream's source stops delivering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceFault {
    /// Reads fail with an I/O error once this many bytes were delivered.
    pub fail_after: Option<u64>,
    /// Reads block once this many bytes were delivered, until the transfer is cancelled.
    pub hang_after: Option<u64>,
    /// Reads block in a real system call once this many bytes were delivered, ignoring
    /// cancellation: a `read` of a pipe nobody writes, for the rest of the process.
    pub stuck_after: Option<u64>,
}

impl SourceFault {
    /// Whether any fault is set.
    pub fn is_set(&self) -> bool {
        self.fail_after.is_some() || self.hang_after.is_some() || self.stuck_after.is_some()
    }
}

/// A source device with a fault: the wrapped device does the real work until it triggers.
pub struct FaultySource<'a> {
    inner: &'a dyn BlockDevice,
    fault: SourceFault,
    ctl: &'a CopyControl,
    delivered: AtomicU64,
}

impl<'a> FaultySource<'a> {
    /// Wraps `inner`; a hang ends when `ctl` is cancelled.
    pub fn new(inner: &'a dyn BlockDevice, fault: SourceFault, ctl: &'a CopyControl) -> Self {
        Self::starting_at(inner, fault, ctl, 0)
    }

    /// Like `new`, for a stream that already moved `delivered` bytes (its fault's byte
    /// counts are the stream's, not this transfer's).
    pub fn starting_at(inner: &'a dyn BlockDevice, fault: SourceFault, ctl: &'a CopyControl, delivered: u64) -> Self {
        FaultySource { inner, fault, ctl, delivered: AtomicU64::new(delivered) }
    }

    fn injected(&self, what: String) -> VolumeError {
        VolumeError::Io { path: self.inner.label().into(), op: "read (injected fault)", source: std::io::Error::other(what) }
    }
}

impl BlockDevice for FaultySource<'_> {
    fn label(&self) -> &str {
        self.inner.label()
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let before = self.delivered.fetch_add(buf.len() as u64, Ordering::Relaxed);
        let after = before + buf.len() as u64;
        if self.fault.stuck_after.is_some_and(|l| after > l) {
            block_in_syscall();
            return Err(self.injected("the stream was stuck in a system call".into()));
        }
        if let Some(limit) = self.fault.hang_after.filter(|l| after > *l) {
            while !self.ctl.is_cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
            return Err(self.injected(format!("the stream hung after {limit} bytes and was cancelled")));
        }
        if let Some(limit) = self.fault.fail_after.filter(|l| after > *l) {
            return Err(self.injected(format!("the stream failed after {limit} bytes")));
        }
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.inner.write_at(offset, data)
    }
    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
    // Faults are on what the stream delivers; writes pass through, zeroes with them.
    fn write_zeroes(&self, offset: u64, len: u64, punch: bool) -> Result<()> {
        self.inner.write_zeroes(offset, len, punch)
    }
    fn allocation(&self, offset: u64, len: u64) -> Result<Vec<(u64, bool)>> {
        // A source that has stopped delivering does not say where its data is either,
        // so a reader that skips holes cannot route around the fault.
        let delivered = self.delivered.load(Ordering::Relaxed);
        if let Some(limit) = self.fault.fail_after.filter(|l| delivered > *l) {
            return Err(self.injected(format!("the stream failed after {limit} bytes")));
        }
        self.inner.allocation(offset, len)
    }
    fn cache(&self, offset: u64, len: u64) -> Result<()> {
        self.inner.cache(offset, len)
    }
}

/// Blocks the calling thread in `read(2)` on a pipe whose write end it keeps open and
/// never writes: no flag, signal handler or timeout of ours ends it.
fn block_in_syscall() {
    use std::io::Read;
    match std::io::pipe() {
        Ok((mut reader, writer)) => {
            let _ = reader.read(&mut [0u8; 1]);
            drop(writer);
        }
        // No pipe to block on: block the thread for good all the same (park is a futex wait).
        Err(_) => loop {
            std::thread::park();
        },
    }
}
