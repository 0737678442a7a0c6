//! Test doubles: [`MemExport`], a sparse in-memory export with dirty bitmaps, injected
//! faults, delays and an admission policy; and [`EventLog`], which records server events.

use crate::export::{Errno, Export, Extent, IoFailure, Peer};
use crate::proto::consts::{BASE_ALLOCATION, STATE_DIRTY, STATE_HOLE, STATE_ZERO};
use crate::server::{Event, Events};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Allocation and dirty-tracking granularity of [`MemExport`].
pub const CHUNK: u64 = 64 * 1024;
const DIRTY_PREFIX: &str = "qemu:dirty-bitmap:";

#[derive(Default)]
struct Knobs {
    fault: Option<Errno>,
    delay: Duration,
    refusal: Option<String>,
}

/// A sparse in-memory export: 64 KiB chunks allocated on first write, freed by trim and
/// by zeroing with holes allowed, so `base:allocation` reports real holes.
pub struct MemExport {
    size: u64,
    chunks: RwLock<BTreeMap<u64, Box<[u8]>>>,
    bitmaps: RwLock<BTreeMap<String, BTreeSet<u64>>>,
    read_only: AtomicBool,
    knobs: RwLock<Knobs>,
    flushes: AtomicU64,
}

fn poisoned() -> IoFailure {
    IoFailure::new(Errno::Io, "lock poisoned")
}

impl MemExport {
    /// An all-zero export of `size` bytes.
    pub fn new(size: u64) -> Self {
        MemExport {
            size,
            chunks: RwLock::default(),
            bitmaps: RwLock::default(),
            read_only: AtomicBool::new(false),
            knobs: RwLock::default(),
            flushes: AtomicU64::new(0),
        }
    }

    /// Makes writes fail (the server sees `read_only()` at negotiation).
    pub fn set_read_only(&self, ro: bool) {
        self.read_only.store(ro, Ordering::SeqCst);
    }

    /// Starts a dirty bitmap offered as `qemu:dirty-bitmap:NAME`, marking what is written from now on.
    pub fn add_dirty_bitmap(&self, name: &str) {
        if let Ok(mut b) = self.bitmaps.write() {
            b.entry(name.to_owned()).or_default();
        }
    }

    /// Makes every data operation fail with `errno` (or succeed again with `None`).
    pub fn set_fault(&self, errno: Option<Errno>) {
        if let Ok(mut k) = self.knobs.write() {
            k.fault = errno;
        }
    }

    /// Makes reads and writes take at least `delay`.
    pub fn set_delay(&self, delay: Duration) {
        if let Ok(mut k) = self.knobs.write() {
            k.delay = delay;
        }
    }

    /// Refuses every client with `reason` (or admits all with `None`).
    pub fn set_refusal(&self, reason: Option<&str>) {
        if let Ok(mut k) = self.knobs.write() {
            k.refusal = reason.map(str::to_owned);
        }
    }

    /// How many flushes the export has seen.
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::SeqCst)
    }

    /// Whether any chunk is allocated in `[offset, offset+len)`.
    pub fn allocated(&self, offset: u64, len: u64) -> bool {
        let Ok(chunks) = self.chunks.read() else { return false };
        chunks.range(offset / CHUNK..offset.saturating_add(len).div_ceil(CHUNK)).next().is_some()
    }

    /// The server checks ranges first; this keeps direct callers from overflowing too.
    fn check(&self, offset: u64, len: u64) -> Result<(), IoFailure> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(IoFailure::new(Errno::Inval, "range passes the end of the export")),
        }
    }

    fn pre(&self, delay: bool) -> Result<(), IoFailure> {
        let (fault, pause) = {
            let k = self.knobs.read().map_err(|_| poisoned())?;
            (k.fault, k.delay)
        };
        if delay && !pause.is_zero() {
            std::thread::sleep(pause);
        }
        match fault {
            Some(errno) => Err(IoFailure::new(errno, "injected fault")),
            None => Ok(()),
        }
    }

    fn mark_dirty(&self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        if let Ok(mut maps) = self.bitmaps.write() {
            for set in maps.values_mut() {
                set.extend(offset / CHUNK..=(offset + len - 1) / CHUNK);
            }
        }
    }

    /// Calls `f(chunk index, offset within chunk, range within the caller's buffer)` for
    /// each chunk that `[offset, offset+len)` touches.
    fn spans(offset: u64, len: u64, mut f: impl FnMut(u64, usize, std::ops::Range<usize>)) {
        let mut pos = 0u64;
        while pos < len {
            let at = offset + pos;
            let within = at % CHUNK;
            let n = (CHUNK - within).min(len - pos);
            f(at / CHUNK, within as usize, pos as usize..(pos + n) as usize);
            pos += n;
        }
    }

    fn zero(&self, offset: u64, len: u64, may_free: bool) -> Result<(), IoFailure> {
        self.check(offset, len)?;
        let mut chunks = self.chunks.write().map_err(|_| poisoned())?;
        Self::spans(offset, len, |idx, within, range| {
            if may_free && within == 0 && range.len() as u64 == CHUNK {
                chunks.remove(&idx);
            } else if let Some(c) = chunks.get_mut(&idx) {
                if let Some(s) = c.get_mut(within..within + range.len()) {
                    s.fill(0);
                }
            }
        });
        drop(chunks);
        self.mark_dirty(offset, len);
        Ok(())
    }

    fn extents(&self, offset: u64, len: u64, flag_of: impl Fn(u64) -> u32) -> Vec<Extent> {
        let mut out: Vec<Extent> = Vec::new();
        let end = offset.saturating_add(len).min(self.size);
        let mut at = offset;
        while at < end {
            let n = (CHUNK - at % CHUNK).min(end - at);
            let flags = flag_of(at / CHUNK);
            match out.last_mut() {
                Some(last) if last.flags == flags => last.len += n,
                _ => out.push(Extent { len: n, flags }),
            }
            at += n;
        }
        out
    }
}

impl Export for MemExport {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_only(&self) -> bool {
        self.read_only.load(Ordering::SeqCst)
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoFailure> {
        self.pre(true)?;
        self.check(offset, buf.len() as u64)?;
        let chunks = self.chunks.read().map_err(|_| poisoned())?;
        Self::spans(offset, buf.len() as u64, |idx, within, range| {
            let src = chunks.get(&idx).and_then(|c| c.get(within..within + range.len()));
            if let Some(dst) = buf.get_mut(range) {
                match src {
                    Some(s) => dst.copy_from_slice(s),
                    None => dst.fill(0),
                }
            }
        });
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8], _fua: bool) -> Result<(), IoFailure> {
        self.pre(true)?;
        self.check(offset, data.len() as u64)?;
        let mut chunks = self.chunks.write().map_err(|_| poisoned())?;
        Self::spans(offset, data.len() as u64, |idx, within, range| {
            let c = chunks.entry(idx).or_insert_with(|| vec![0; CHUNK as usize].into_boxed_slice());
            if let (Some(dst), Some(src)) = (c.get_mut(within..within + range.len()), data.get(range)) {
                dst.copy_from_slice(src);
            }
        });
        drop(chunks);
        self.mark_dirty(offset, data.len() as u64);
        Ok(())
    }
    fn flush(&self) -> Result<(), IoFailure> {
        self.pre(false)?;
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn trim(&self, offset: u64, len: u64, _fua: bool) -> Result<(), IoFailure> {
        self.pre(false)?;
        self.zero(offset, len, true)
    }
    fn write_zeroes(&self, offset: u64, len: u64, may_trim: bool, _fua: bool) -> Result<(), IoFailure> {
        self.pre(false)?;
        self.zero(offset, len, may_trim)
    }
    fn fast_zero(&self, offset: u64, len: u64, may_trim: bool, fua: bool) -> Result<(), IoFailure> {
        self.write_zeroes(offset, len, may_trim, fua)
    }
    fn meta_contexts(&self) -> Vec<String> {
        let Ok(maps) = self.bitmaps.read() else { return Vec::new() };
        maps.keys().map(|k| format!("{DIRTY_PREFIX}{k}")).collect()
    }
    fn block_status(&self, context: &str, offset: u64, len: u64) -> Result<Vec<Extent>, IoFailure> {
        self.pre(false)?;
        if context == BASE_ALLOCATION {
            let chunks = self.chunks.read().map_err(|_| poisoned())?;
            return Ok(self.extents(offset, len, |idx| if chunks.contains_key(&idx) { 0 } else { STATE_HOLE | STATE_ZERO }));
        }
        let maps = self.bitmaps.read().map_err(|_| poisoned())?;
        match context.strip_prefix(DIRTY_PREFIX).and_then(|name| maps.get(name)) {
            Some(set) => Ok(self.extents(offset, len, |idx| if set.contains(&idx) { STATE_DIRTY } else { 0 })),
            None => Err(IoFailure::new(Errno::Inval, format!("unknown context {context}"))),
        }
    }
    fn admit(&self, _peer: &Peer) -> Result<(), String> {
        match self.knobs.read().ok().and_then(|k| k.refusal.clone()) {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}

/// Records every server event, for tests to inspect and wait on.
#[derive(Default)]
pub struct EventLog {
    events: Mutex<Vec<Event>>,
    changed: Condvar,
}

impl EventLog {
    /// An empty log.
    pub fn new() -> Self {
        EventLog::default()
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Waits up to `timeout` for an event matching `pred`; whether one came.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Event) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let Ok(mut events) = self.events.lock() else { return false };
        loop {
            if events.iter().any(&pred) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            events = match self.changed.wait_timeout(events, left) {
                Ok((e, _)) => e,
                Err(_) => return false,
            };
        }
    }
}

impl Events for EventLog {
    fn event(&self, e: Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(e);
        }
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_reads_writes_and_holes() {
        let m = MemExport::new(4 * CHUNK);
        m.add_dirty_bitmap("b");
        let mut buf = vec![1u8; 100];
        assert!(m.read(CHUNK - 50, &mut buf).is_ok());
        assert!(buf.iter().all(|&b| b == 0));
        assert!(m.write(CHUNK - 50, &[7u8; 100], false).is_ok());
        assert!(m.read(CHUNK - 50, &mut buf).is_ok());
        assert!(buf.iter().all(|&b| b == 7));
        assert!(m.allocated(0, 2 * CHUNK) && !m.allocated(2 * CHUNK, 2 * CHUNK));
        let ext = m.block_status(BASE_ALLOCATION, 0, 4 * CHUNK).unwrap_or_default();
        assert_eq!(ext, vec![Extent { len: 2 * CHUNK, flags: 0 }, Extent { len: 2 * CHUNK, flags: STATE_HOLE | STATE_ZERO }]);
        assert!(m.trim(0, CHUNK, false).is_ok());
        assert!(!m.allocated(0, CHUNK) && m.allocated(CHUNK, CHUNK));
        let dirty = m.block_status("qemu:dirty-bitmap:b", 0, 4 * CHUNK).unwrap_or_default();
        assert_eq!(dirty, vec![Extent { len: 2 * CHUNK, flags: STATE_DIRTY }, Extent { len: 2 * CHUNK, flags: 0 }]);
        assert!(m.block_status("qemu:dirty-bitmap:nope", 0, 1).is_err());
        assert!(m.read(u64::MAX, &mut buf).is_err() && m.write(4 * CHUNK, &[1], false).is_err());
        assert!(m.trim(u64::MAX, 2, false).is_err());
    }

    #[test]
    fn faults_and_refusals() {
        let m = MemExport::new(CHUNK);
        m.set_fault(Some(Errno::Io));
        assert_eq!(m.flush().map_err(|f| f.errno), Err(Errno::Io));
        m.set_fault(None);
        assert!(m.flush().is_ok());
        assert_eq!(m.flush_count(), 1);
        m.set_refusal(Some("not you"));
        assert_eq!(m.admit(&Peer::Unix), Err("not you".to_owned()));
    }
}
