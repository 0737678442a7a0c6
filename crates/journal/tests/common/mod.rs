//! Test doubles shared by the scenario tests: fault-injecting sync, crashable targets
//! and state stores, record builders.
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plexus_journal::{encode_record, ApplyTarget, Journal, JournalOptions, RecordKind, RecordRef, StateStore, SyncIo};

/// Real fdatasync, counted, optionally slowed down (a disk's latency makes group commit
/// visible) and failing from the Nth call on.
#[derive(Default)]
pub struct CountingSync {
    pub files: AtomicU64,
    pub delay_us: u64,
    /// Calls to `sync_file` left before they start failing (-1: never fail).
    pub fail_after: AtomicI64,
}

impl CountingSync {
    pub fn new(delay_us: u64, fail_after: i64) -> Arc<CountingSync> {
        Arc::new(CountingSync { files: AtomicU64::new(0), delay_us, fail_after: AtomicI64::new(fail_after) })
    }
}

impl SyncIo for CountingSync {
    fn sync_file(&self, file: &File) -> io::Result<()> {
        self.files.fetch_add(1, Ordering::SeqCst);
        if self.fail_after.load(Ordering::SeqCst) == 0 {
            return Err(io::Error::other("injected fdatasync failure"));
        }
        self.fail_after.fetch_sub(1, Ordering::SeqCst);
        if self.delay_us > 0 {
            std::thread::sleep(Duration::from_micros(self.delay_us));
        }
        file.sync_data()
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

pub fn opts(capacity: u64, segment_bytes: u64) -> JournalOptions {
    JournalOptions { capacity, segment_bytes, sync_io: None }
}

/// Deterministic data for a record: its first 8 bytes name (volume, i), the rest a pattern.
pub fn payload(volume: u32, i: u64, len: usize) -> Vec<u8> {
    let tag = (u64::from(volume) << 32) | i;
    (0..len).map(|k| if k < 8 { tag.to_le_bytes()[k] } else { (tag as usize).wrapping_mul(31).wrapping_add(k) as u8 }).collect()
}

pub fn write<'a>(volume: u32, offset: u64, data: &'a [u8]) -> RecordRef<'a> {
    RecordRef { seq: 0, volume, kind: RecordKind::Write, offset, len: data.len() as u64, data }
}

/// Appends `n` writes of `len` bytes to volume 1 (record i at offset i*len).
pub fn append_n(j: &Journal, n: u64, len: usize) {
    for i in 0..n {
        let d = payload(1, i, len);
        j.append(&write(1, i * len as u64, &d)).unwrap();
    }
}

/// Encodes one record with an explicit seq.
pub fn enc(out: &mut Vec<u8>, seq: u64, volume: u32, kind: RecordKind, offset: u64, data: &[u8], len: u64) {
    encode_record(out, &RecordRef { seq, volume, kind, offset, len, data });
}

/// A volume with a page-cache image and a durable image: `sync` copies one to the
/// other, `crash` throws the page cache away. Logs the tag (first 8 data bytes) of every
/// write, to check the applier's order.
pub struct CrashTarget {
    pub volatile: Mutex<Vec<u8>>,
    pub durable: Mutex<Vec<u8>>,
    pub log: Mutex<Vec<u64>>,
    pub syncs: AtomicU64,
}

impl CrashTarget {
    pub fn new(size: usize) -> Arc<CrashTarget> {
        Arc::new(CrashTarget {
            volatile: Mutex::new(vec![0; size]),
            durable: Mutex::new(vec![0; size]),
            log: Mutex::new(Vec::new()),
            syncs: AtomicU64::new(0),
        })
    }
    /// A target restarted from what was durable.
    pub fn after_crash(&self) -> Arc<CrashTarget> {
        let d = self.durable.lock().unwrap().clone();
        Arc::new(CrashTarget {
            volatile: Mutex::new(d.clone()),
            durable: Mutex::new(d),
            log: Mutex::new(Vec::new()),
            syncs: AtomicU64::new(0),
        })
    }
    pub fn bytes(&self) -> Vec<u8> {
        self.volatile.lock().unwrap().clone()
    }
}

impl ApplyTarget for CrashTarget {
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut v = self.volatile.lock().unwrap();
        let o = offset as usize;
        if o + data.len() > v.len() {
            return Err(io::Error::other("past the end"));
        }
        v[o..o + data.len()].copy_from_slice(data);
        if data.len() >= 8 {
            self.log.lock().unwrap().push(u64::from_le_bytes(data[..8].try_into().unwrap()));
        }
        Ok(())
    }
    fn write_zeroes(&self, offset: u64, len: u64, _punch: bool) -> io::Result<()> {
        let mut v = self.volatile.lock().unwrap();
        let (o, n) = (offset as usize, len as usize);
        if o + n > v.len() {
            return Err(io::Error::other("past the end"));
        }
        v[o..o + n].fill(0);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        let v = self.volatile.lock().unwrap().clone();
        *self.durable.lock().unwrap() = v;
        Ok(())
    }
}

/// A state store with volatile and durable content; syncs after the allowed number
/// fail (the machine "crashed" there), and `after_crash` keeps only the durable content.
pub struct CrashStore {
    pub volatile: Mutex<Vec<u8>>,
    pub durable: Mutex<Vec<u8>>,
    /// Syncs left before they fail (-1: never).
    pub syncs_left: AtomicI64,
    /// Writes left before they fail (-1: never).
    pub writes_left: AtomicI64,
}

impl CrashStore {
    pub fn new() -> Arc<CrashStore> {
        Arc::new(CrashStore {
            volatile: Mutex::new(Vec::new()),
            durable: Mutex::new(Vec::new()),
            syncs_left: AtomicI64::new(-1),
            writes_left: AtomicI64::new(-1),
        })
    }
    pub fn after_crash(&self) -> Arc<CrashStore> {
        let d = self.durable.lock().unwrap().clone();
        Arc::new(CrashStore {
            volatile: Mutex::new(d.clone()),
            durable: Mutex::new(d),
            syncs_left: AtomicI64::new(-1),
            writes_left: AtomicI64::new(-1),
        })
    }
}

fn take(budget: &AtomicI64) -> bool {
    let left = budget.load(Ordering::SeqCst);
    if left == 0 {
        return false;
    }
    if left > 0 {
        budget.fetch_sub(1, Ordering::SeqCst);
    }
    true
}

impl StateStore for CrashStore {
    fn read(&self) -> io::Result<Vec<u8>> {
        Ok(self.volatile.lock().unwrap().clone())
    }
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        if !take(&self.writes_left) {
            return Err(io::Error::other("crashed before the state write"));
        }
        let mut v = self.volatile.lock().unwrap();
        let end = offset as usize + bytes.len();
        if v.len() < end {
            v.resize(end, 0);
        }
        v[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        if !take(&self.syncs_left) {
            return Err(io::Error::other("crashed before the state sync"));
        }
        let v = self.volatile.lock().unwrap().clone();
        *self.durable.lock().unwrap() = v;
        Ok(())
    }
}
