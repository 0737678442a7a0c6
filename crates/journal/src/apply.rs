//! The sequenced applier on the remote site: takes received batches (hostile bytes),
//! applies their records to the group's volumes strictly in sequence order, buffering
//! the ones that arrive early, and persists the applied sequence number durably *after*
//! the data it covers (targets synced first, then the state slot written and synced).
//!
//! State: two fixed 48-byte slots (`docs/journal-format.md`), written alternately with a
//! generation number; a torn slot write leaves the other slot, the previous value. So
//! after any crash, [`Applier::durable`] never names data that was not synced.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{JournalError, Result};
use crate::format::{decode_batch, RecordKind, RecordRef, RECORD_HEADER};

/// Where applied records land: one remote volume, through its write path.
pub trait ApplyTarget: Send + Sync {
    /// Writes `data` at `offset`.
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Makes `len` bytes at `offset` read as zeroes; `punch` also deallocates them.
    fn write_zeroes(&self, offset: u64, len: u64, punch: bool) -> io::Result<()>;
    /// Makes everything written so far durable.
    fn sync(&self) -> io::Result<()>;
}

/// Where the applier keeps its durable state (two slots), so a test can model a torn
/// write or a crash after the Nth sync on the real code path.
pub trait StateStore: Send + Sync {
    /// The whole stored content (empty when new).
    fn read(&self) -> io::Result<Vec<u8>>;
    /// Writes `bytes` at `offset` (not yet durable).
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes the writes so far durable.
    fn sync(&self) -> io::Result<()>;
}

/// A [`StateStore`] in a file: `pwrite` + `fdatasync`.
#[derive(Debug)]
pub struct FileStateStore {
    path: PathBuf,
    file: File,
}

impl FileStateStore {
    /// Opens `path`, creating it (and making its directory entry durable) if absent.
    pub fn open(path: &Path) -> Result<FileStateStore> {
        let existed = path.exists();
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(JournalError::io(path, "open"))?;
        if !existed {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            File::open(dir).and_then(|d| d.sync_all()).map_err(JournalError::io(dir, "fsync dir"))?;
        }
        Ok(FileStateStore { path: path.to_path_buf(), file })
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl StateStore for FileStateStore {
    fn read(&self) -> io::Result<Vec<u8>> {
        let len = self.file.metadata()?.len().min(4096) as usize;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, offset)
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

const SLOT_MAGIC: [u8; 8] = *b"PLXASTA1";
const SLOT_VERSION: u32 = 1;
const SLOT_LEN: usize = 48;

/// One state slot's content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    generation: u64,
    applied: u64,
    epoch: u64,
}

fn encode_slot(s: &Slot) -> [u8; SLOT_LEN] {
    let mut b = [0u8; SLOT_LEN];
    b[0..8].copy_from_slice(&SLOT_MAGIC);
    b[8..12].copy_from_slice(&SLOT_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&s.generation.to_le_bytes());
    b[24..32].copy_from_slice(&s.applied.to_le_bytes());
    b[32..40].copy_from_slice(&s.epoch.to_le_bytes());
    let crc = crc32fast::hash(&b[0..44]);
    b[44..48].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode_slot(b: &[u8]) -> Option<Slot> {
    let b: &[u8; SLOT_LEN] = b.get(..SLOT_LEN)?.try_into().ok()?;
    let u64_at = |at: usize| b.get(at..at + 8).and_then(|s| s.try_into().ok()).map(u64::from_le_bytes).unwrap_or(0);
    if b[0..8] != SLOT_MAGIC || b[44..48] != crc32fast::hash(&b[0..44]).to_le_bytes() || b[8..12] != SLOT_VERSION.to_le_bytes() {
        return None;
    }
    Some(Slot { generation: u64_at(16), applied: u64_at(24), epoch: u64_at(32) })
}

/// The newest valid slot; a new (empty or all-zero) store is applied 0. Both slots
/// damaged is `E_CORRUPT`: there is no safe value to fall back to.
fn load_slots(bytes: &[u8], what: &Path) -> Result<Slot> {
    let a = bytes.get(..SLOT_LEN).and_then(decode_slot);
    let b = bytes.get(SLOT_LEN..).and_then(decode_slot);
    match (a, b) {
        (Some(a), Some(b)) => Ok(if a.generation >= b.generation { a } else { b }),
        (Some(s), None) | (None, Some(s)) => Ok(s),
        (None, None) if bytes.iter().all(|&x| x == 0) => Ok(Slot::default()),
        (None, None) => Err(JournalError::corrupt(what, "neither applier state slot is valid")),
    }
}

/// Multiplicative hash of a sequence number: the reorder map's keys are dense integers,
/// so SipHash's DoS resistance buys nothing and costs a lot per record.
#[derive(Default)]
struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// An early record, copied out of its batch until its turn comes.
#[derive(Debug)]
struct Pending {
    volume: u32,
    kind: RecordKind,
    offset: u64,
    len: u64,
    data: Vec<u8>,
}

impl Pending {
    fn as_ref(&self, seq: u64) -> RecordRef<'_> {
        RecordRef { seq, volume: self.volume, kind: self.kind, offset: self.offset, len: self.len, data: &self.data }
    }
}

/// Bytes a buffered record counts against the window (its header too, so a flood of
/// data-less records is bounded as well).
fn cost(data_len: usize) -> u64 {
    (RECORD_HEADER + data_len) as u64
}

/// The reorder buffer and the in-memory applied point; one receive at a time.
#[derive(Debug, Default)]
struct Reorder {
    applied: u64,
    pending: HashMap<u64, Pending, BuildHasherDefault<SeqHasher>>,
    pending_bytes: u64,
    /// While set, `receive` waits: the owner needs the targets still between two batches.
    paused: bool,
}

/// What the commit path serialises on: the slot generation and the epoch.
#[derive(Debug)]
struct CommitState {
    generation: u64,
    epoch: u64,
}

/// Applies received batches in strict sequence order. `Send + Sync`.
pub struct Applier {
    store: Arc<dyn StateStore>,
    what: PathBuf,
    targets: HashMap<u32, Arc<dyn ApplyTarget>>,
    window: u64,
    reorder: Mutex<Reorder>,
    /// Mirror of `reorder.applied`, set only after the record's target write returned.
    applied: AtomicU64,
    durable: AtomicU64,
    commit: Mutex<CommitState>,
    poisoned: AtomicBool,
    /// Wakes receives waiting out a pause.
    resumed: std::sync::Condvar,
}

impl std::fmt::Debug for Applier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applier").field("state", &self.what).field("applied", &self.applied()).field("durable", &self.durable()).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Applier {
    /// Opens the applier with its durable state in the file `state` (created if absent:
    /// applied 0). `targets`: volume id -> target. `window`: most bytes buffered out of
    /// order; a batch that would need more is refused whole (`E_PROTOCOL`).
    pub fn open(state: &Path, targets: Vec<(u32, Arc<dyn ApplyTarget>)>, window: u64) -> Result<Applier> {
        let store = Arc::new(FileStateStore::open(state)?);
        Applier::open_with_store(store, state, targets, window)
    }

    /// Like [`open`](Self::open) with any [`StateStore`]; `what` names it in errors.
    pub fn open_with_store(
        store: Arc<dyn StateStore>,
        what: &Path,
        targets: Vec<(u32, Arc<dyn ApplyTarget>)>,
        window: u64,
    ) -> Result<Applier> {
        let bytes = store.read().map_err(JournalError::io(what, "read"))?;
        let slot = load_slots(&bytes, what)?;
        let mut map = HashMap::new();
        for (id, t) in targets {
            if map.insert(id, t).is_some() {
                return Err(JournalError::Invalid { detail: format!("volume {id} given twice") });
            }
        }
        Ok(Applier {
            store,
            what: what.to_path_buf(),
            targets: map,
            window,
            reorder: Mutex::new(Reorder { applied: slot.applied, ..Reorder::default() }),
            applied: AtomicU64::new(slot.applied),
            durable: AtomicU64::new(slot.applied),
            commit: Mutex::new(CommitState { generation: slot.generation, epoch: slot.epoch }),
            poisoned: AtomicBool::new(false),
            resumed: std::sync::Condvar::new(),
        })
    }

    fn target(&self, volume: u32) -> Result<&Arc<dyn ApplyTarget>> {
        self.targets.get(&volume).ok_or_else(|| JournalError::protocol(format!("record for unknown volume {volume}")))
    }

    fn apply(&self, rec: &RecordRef<'_>) -> Result<()> {
        let t = self.target(rec.volume)?;
        let (op, res) = match rec.kind {
            RecordKind::Write => ("write", t.write(rec.offset, rec.data)),
            RecordKind::Zeroes => ("write_zeroes", t.write_zeroes(rec.offset, rec.len, false)),
            RecordKind::Punch => ("write_zeroes", t.write_zeroes(rec.offset, rec.len, true)),
        };
        res.map_err(|source| JournalError::Target { volume: rec.volume, op, source })
    }

    /// Applies every buffered record that is next in sequence.
    fn drain(&self, r: &mut Reorder) -> Result<()> {
        while let Some(p) = r.pending.remove(&(r.applied + 1)) {
            let seq = r.applied + 1;
            if let Err(e) = self.apply(&p.as_ref(seq)) {
                // Keep it for a retry: the next receive drains again first.
                r.pending.insert(seq, p);
                return Err(e);
            }
            r.pending_bytes -= cost(p.data.len());
            r.applied = seq;
            self.applied.store(seq, Ordering::Release);
        }
        Ok(())
    }

    /// Takes a received batch (hostile bytes, see [`decode_batch`]): drops records <=
    /// applied (duplicates after a reconnect), buffers early ones, applies every record
    /// now next in sequence, strictly in order. Refused whole, nothing kept: a record
    /// for an unknown volume, or more than `window` bytes left buffered (`E_PROTOCOL`).
    /// Returns the newest applied sequence number.
    pub fn receive(&self, batch: &[u8]) -> Result<u64> {
        let mut recs = decode_batch(batch)?;
        for rec in &recs {
            self.target(rec.volume)?;
        }
        // Stable sort: linear on an already ordered batch, the common case.
        recs.sort_by_key(|r| r.seq);
        let mut r = lock(&self.reorder);
        while r.paused {
            r = self.resumed.wait(r).unwrap_or_else(|e| e.into_inner());
        }
        // Plan first, so a refused batch changes nothing: which records apply now (a
        // run continuing `applied`, through buffered ones), and what stays buffered.
        let mut next = r.applied + 1;
        let mut gap = false;
        let mut prev = 0;
        let (mut drained, mut added) = (0u64, 0u64);
        for rec in &recs {
            if rec.seq <= r.applied || rec.seq == prev || r.pending.contains_key(&rec.seq) {
                continue;
            }
            prev = rec.seq;
            if !gap {
                while let Some(p) = r.pending.get(&next) {
                    drained += cost(p.data.len());
                    next += 1;
                }
                if rec.seq == next {
                    next += 1;
                    continue;
                }
                gap = true;
            }
            added += cost(rec.data.len());
        }
        let after = r.pending_bytes - drained + added;
        if after > self.window && added > 0 {
            return Err(JournalError::protocol(format!(
                "batch would leave {after} bytes buffered out of order, over the window of {}",
                self.window
            )));
        }
        self.drain(&mut r)?;
        let mut prev = 0;
        for rec in &recs {
            if rec.seq <= r.applied || rec.seq == prev || r.pending.contains_key(&rec.seq) {
                continue;
            }
            prev = rec.seq;
            if rec.seq == r.applied + 1 {
                // In order: straight from the batch, no copy.
                self.apply(rec)?;
                r.applied = rec.seq;
                self.applied.store(rec.seq, Ordering::Release);
                self.drain(&mut r)?;
            } else {
                r.pending_bytes += cost(rec.data.len());
                let p = Pending { volume: rec.volume, kind: rec.kind, offset: rec.offset, len: rec.len, data: rec.data.to_vec() };
                r.pending.insert(rec.seq, p);
            }
        }
        Ok(r.applied)
    }

    /// Holds every later `receive` back until [`resume`](Self::resume); returns once no
    /// batch is being applied (a receive applies under the reorder lock taken here), so
    /// the targets hold a whole prefix of the sequence meanwhile (a consistent split of
    /// their local mirrors, for instance).
    pub fn pause(&self) {
        lock(&self.reorder).paused = true;
    }

    /// Lets receives go on after [`pause`](Self::pause).
    pub fn resume(&self) {
        lock(&self.reorder).paused = false;
        self.resumed.notify_all();
    }

    /// Newest applied sequence number (in memory: written to the targets, maybe not
    /// durable yet).
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Newest durable sequence number: its data was synced before it was recorded.
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// The group's epoch as last persisted.
    pub fn epoch(&self) -> u64 {
        lock(&self.commit).epoch
    }

    /// Records buffered out of order: (count, bytes counted against the window).
    pub fn buffered(&self) -> (u64, u64) {
        let r = lock(&self.reorder);
        (r.pending.len() as u64, r.pending_bytes)
    }

    fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(JournalError::Poisoned { path: self.what.clone() });
        }
        Ok(())
    }

    fn sync_targets(&self) -> Result<()> {
        for (&volume, t) in &self.targets {
            if let Err(source) = t.sync() {
                // What the target holds durably is now unknown; a later "successful" sync
                // may not cover the lost pages, so never claim durability again.
                self.poisoned.store(true, Ordering::SeqCst);
                return Err(JournalError::Target { volume, op: "sync", source });
            }
        }
        Ok(())
    }

    /// Writes the other slot and syncs it; poisons on failure.
    fn store_slot(&self, c: &mut CommitState, applied: u64, epoch: u64) -> Result<()> {
        let slot = Slot { generation: c.generation + 1, applied, epoch };
        let at = (slot.generation % 2) * SLOT_LEN as u64;
        let res = self.store.write_at(at, &encode_slot(&slot)).and_then(|()| self.store.sync());
        if let Err(e) = res {
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(JournalError::io(&self.what, "write state")(e));
        }
        c.generation = slot.generation;
        c.epoch = epoch;
        self.durable.store(applied, Ordering::Release);
        Ok(())
    }

    /// Syncs every target, then durably records `applied()` (as read before the target
    /// syncs, so everything it covers was written before them) as the durable sequence
    /// number. Returns it. Failures poison the applier (`E_IO` from then on).
    pub fn commit(&self) -> Result<u64> {
        let mut c = lock(&self.commit);
        self.check_poison()?;
        let applied = self.applied();
        if applied == self.durable() {
            return Ok(applied);
        }
        self.sync_targets()?;
        let epoch = c.epoch;
        self.store_slot(&mut c, applied, epoch)?;
        Ok(applied)
    }

    /// Sets the base (a resync or a new epoch restarts the sequence): the next expected
    /// record is `seq + 1`; anything buffered is dropped; the targets are synced and the
    /// new base persisted before this returns. Keeps the epoch.
    pub fn reset(&self, seq: u64) -> Result<()> {
        let epoch = self.epoch();
        self.reset_epoch(seq, epoch)
    }

    /// [`reset`](Self::reset) that also durably sets the epoch.
    pub fn reset_epoch(&self, seq: u64, epoch: u64) -> Result<()> {
        let mut c = lock(&self.commit);
        self.check_poison()?;
        let mut r = lock(&self.reorder);
        self.sync_targets()?;
        self.store_slot(&mut c, seq, epoch)?;
        r.pending.clear();
        r.pending_bytes = 0;
        r.applied = seq;
        self.applied.store(seq, Ordering::Release);
        Ok(())
    }
}
