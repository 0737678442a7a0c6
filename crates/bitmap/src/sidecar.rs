//! Durable persistence of a dirty bitmap next to a volume.
//!
//! Two files: a snapshot `PATH` (header + words, replaced atomically by
//! write-tmp/fsync/rename/fsync-dir) and a log `PATH.log` of fixed 32-byte
//! records: marks appended (and `fdatasync`ed) before a covered write may be
//! acknowledged, and clears appended by a checkpoint for what a resync copied, so a
//! checkpoint costs what changed, not the size of the bitmap. Records carry the
//! snapshot generation they extend; writing a snapshot bumps the generation, then
//! truncates the log, so a crash between the two leaves only stale records that
//! recovery ignores. The formats and recovery rules are in `docs/bitmap-sidecar.md`.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::bitmap::DirtyBitmap;
use crate::error::{BitmapError, Result};
use crate::format::{self, Record, HEADER_LEN, RECORD_LEN};
use crate::recovery::{peek_log, read_snapshot, replay_log};
use crate::view::BitmapView;

/// Mutable log state; everything that must change together lives behind one
/// mutex so appends, snapshots and truncation are serialised.
#[derive(Debug)]
struct LogState {
    file: File,
    /// Length of the valid log prefix; the next record is written here.
    len: u64,
    /// Generation of the current snapshot; stamped into every record.
    generation: u64,
    /// No bit is set on disk (snapshot and log): clearing then needs no snapshot.
    disk_clear: bool,
    /// Intent extents a synced log record since the last snapshot covers whole: a
    /// later mark inside one needs no I/O. Cleared with every snapshot.
    covered: Vec<u64>,
    /// Bit ranges of records written but not yet published (their sync is pending):
    /// every snapshot includes them, so a snapshot (which truncates the log) never
    /// drops a record whose bits its writer is about to publish.
    pending: Vec<(u64, u64)>,
    /// Records appended so far (a marker's ticket for the group commit).
    appended: u64,
    /// Covered extents whose record may not be synced yet, with its ticket: a later mark
    /// inside one waits for that sync instead of logging again.
    unsynced: std::collections::HashMap<u64, u64>,
    /// Bit ranges cleared in memory since the last snapshot or checkpoint: what the next
    /// checkpoint logs as cleared (those of them still clear then).
    cleared: Cleared,
    /// The next checkpoint must write a snapshot: bits left memory some other way than
    /// `clear_range_in_memory` (`swap_out`), or too many ranges were cleared to track.
    snapshot_due: bool,
    /// The snapshot on disk is version 1, whose readers know no clear record: clears are
    /// persisted by a (version 2) snapshot until one has been written.
    old_snapshot: bool,
}

impl LogState {
    fn new(file: File, len: u64, generation: u64, disk_clear: bool, old_snapshot: bool) -> Self {
        LogState {
            file,
            len,
            generation,
            disk_clear,
            covered: Vec::new(),
            pending: Vec::new(),
            appended: 0,
            unsynced: std::collections::HashMap::new(),
            cleared: Cleared::default(),
            snapshot_due: false,
            old_snapshot,
        }
    }

    /// Notes bits `first..=last` cleared in memory, for the next checkpoint.
    fn note_cleared(&mut self, first: u64, last: u64) {
        if self.disk_clear || self.snapshot_due {
            return;
        }
        if !self.cleared.insert(first, last) {
            self.snapshot_due = true;
            self.cleared = Cleared::default();
        }
    }
}

/// Disjoint, non-adjacent inclusive bit ranges, merged as they are added.
#[derive(Debug, Default)]
struct Cleared {
    /// First bit -> last bit.
    ranges: std::collections::BTreeMap<u64, u64>,
}

/// Cleared ranges tracked before a checkpoint falls back to a snapshot: a resync clears
/// in order, so its ranges merge into a handful; only a scattered clearing reaches this.
const MAX_CLEARED_RANGES: usize = 4096;

impl Cleared {
    /// Adds `first..=last`; false once more than [`MAX_CLEARED_RANGES`] are held.
    fn insert(&mut self, first: u64, last: u64) -> bool {
        let (mut lo, mut hi) = (first, last);
        if let Some((&s, &e)) = self.ranges.range(..=first).next_back() {
            if e.saturating_add(1) >= first {
                lo = s;
                hi = hi.max(e);
            }
        }
        let absorbed: Vec<(u64, u64)> =
            self.ranges.range(lo..).take_while(|&(&s, _)| s <= hi.saturating_add(1)).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in absorbed {
            hi = hi.max(e);
            self.ranges.remove(&s);
        }
        self.ranges.insert(lo, hi);
        self.ranges.len() <= MAX_CLEARED_RANGES
    }
}

/// The group commit of the log: one fdatasync for every record appended before it began.
#[derive(Debug, Default)]
struct GroupSync {
    /// Records (by ticket) known durable.
    synced: u64,
    /// A leader is syncing now.
    syncing: bool,
    /// Syncs issued (for tests and benchmarks).
    count: u64,
}

/// What a sidecar wrote and synced since it was created or opened: the cost a benchmark
/// reports (a resync's checkpoints, the marks of a write load).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SidecarStats {
    /// Bytes written to the snapshot (its tmp file) and the log.
    pub bytes_written: u64,
    /// fsyncs and fdatasyncs of the sidecar's files and directory.
    pub syncs: u64,
    /// Snapshots written.
    pub snapshots: u64,
    /// Log records appended.
    pub records: u64,
}

/// [`SidecarStats`] as counters that any thread may bump.
#[derive(Debug, Default)]
struct IoCounters {
    bytes: std::sync::atomic::AtomicU64,
    syncs: std::sync::atomic::AtomicU64,
    snapshots: std::sync::atomic::AtomicU64,
    records: std::sync::atomic::AtomicU64,
}

impl IoCounters {
    fn wrote(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn synced(&self, n: u64) {
        self.syncs.fetch_add(n, Ordering::Relaxed);
    }
}

/// The intent extent a dirty bitmap of a pair uses (DRBD's activity-log extent is 4 MiB
/// too); see [`DurableBitmap::with_intent_extent`].
pub const INTENT_EXTENT: u64 = 4 << 20;

fn test_covered(covered: &[u64], e: u64) -> bool {
    covered.get((e / 64) as usize).is_some_and(|w| w & (1 << (e % 64)) != 0)
}

fn unset_covered(covered: &mut [u64], e: u64) {
    if let Some(w) = covered.get_mut((e / 64) as usize) {
        *w &= !(1 << (e % 64));
    }
}

fn set_covered(covered: &mut Vec<u64>, e: u64) {
    let i = (e / 64) as usize;
    if covered.len() <= i {
        covered.resize(i + 1, 0);
    }
    if let Some(w) = covered.get_mut(i) {
        *w |= 1 << (e % 64);
    }
}

/// A [`DirtyBitmap`] persisted to a snapshot file plus a write-intent log.
///
/// Invariant in durable mode: **a set bit is durable.** Bits are only set
/// (under the log mutex) after the record covering them has been synced, so
/// any thread that observes a bit set — including the lock-free fast path of
/// [`mark_range`](Self::mark_range) — may rely on it surviving a crash. The
/// type enforces it: [`bitmap()`](Self::bitmap) lends only a read view, and
/// every way to set bits ([`mark_range`](Self::mark_range),
/// [`merge_from`](Self::merge_from), [`merge_words`](Self::merge_words)) is
/// durable first.
#[derive(Debug)]
pub struct DurableBitmap {
    bitmap: DirtyBitmap,
    path: PathBuf,
    tmp_path: PathBuf,
    log_path: PathBuf,
    durable: bool,
    poisoned: AtomicBool,
    log: Mutex<LogState>,
    /// Bits one log record covers at least (1: exactly the bits marked).
    extent_bits: u64,
    group: Mutex<GroupSync>,
    synced: std::sync::Condvar,
    /// The log, for the group commit's fdatasync outside the log mutex.
    sync_file: Option<File>,
    /// What was written and synced (for [`stats`](Self::stats)).
    io: IoCounters,
    /// Without write intent: a bit was set in memory since the last snapshot, so the
    /// next checkpoint must be a snapshot (only a snapshot persists marks then).
    unlogged: AtomicBool,
    /// The least log length a checkpoint compacts (see [`with_log_limit`](Self::with_log_limit)).
    log_floor: u64,
}

/// A log below this length is never compacted into a snapshot by a checkpoint.
const MIN_LOG_LIMIT: u64 = 1 << 20;

/// `path` with `suffix` appended to its file name (`vol.bitmap` -> `vol.bitmap.log`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

/// fsyncs the directory containing `path` so a rename/create in it is durable.
fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(BitmapError::io(dir, "fsync dir"))
}

/// Writes `bytes` to `tmp` and fsyncs it. On failure the tmp file is removed
/// (best effort); the real snapshot is never touched here.
fn write_tmp(tmp: &Path, bytes: &[u8]) -> Result<()> {
    let res = File::create(tmp).map_err(BitmapError::io(tmp, "create")).and_then(|mut f| {
        f.write_all(bytes).map_err(BitmapError::io(tmp, "write"))?;
        f.sync_all().map_err(BitmapError::io(tmp, "fsync"))
    });
    if res.is_err() {
        let _ = fs::remove_file(tmp);
    }
    res
}

impl DurableBitmap {
    /// Creates (or overwrites) an empty sidecar at `path`: an empty log
    /// `PATH.log` and a generation-1 snapshot. The log is truncated first so
    /// records of a previous bitmap at this path can never apply to the new one.
    pub fn create(path: impl AsRef<Path>, size: u64, granularity: u64, durable: bool) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let bitmap = DirtyBitmap::new(size, granularity)?;
        let log_path = sibling(&path, ".log");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(BitmapError::io(&log_path, "create"))?;
        file.sync_all().map_err(BitmapError::io(&log_path, "fsync"))?;
        let tmp_path = sibling(&path, ".tmp");
        let bytes = format::encode_snapshot(granularity, size, bitmap.len_bits(), 1, &bitmap.snapshot_words());
        write_tmp(&tmp_path, &bytes)?;
        fs::rename(&tmp_path, &path).map_err(BitmapError::io(&path, "rename"))?;
        // One directory fsync makes both the log's and the snapshot's entries durable.
        sync_dir(&path)?;
        let io = IoCounters::default();
        io.wrote(bytes.len() as u64);
        io.synced(3);
        io.snapshots.store(1, Ordering::Relaxed);
        Ok(Self::assemble_with(io, bitmap, path, tmp_path, log_path, durable, LogState::new(file, 0, 1, true, false)))
    }

    /// Opens an existing sidecar: loads and validates the snapshot (`E_NOENT`
    /// if missing, `E_CORRUPT` if invalid), replays the intent log up to its
    /// first torn record and truncates the log to that valid prefix.
    pub fn open(path: impl AsRef<Path>, durable: bool) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (h, words) = read_snapshot(&path)?;
        let bitmap = DirtyBitmap::from_words(h.size, h.granularity, &words).map_err(|e| match e {
            BitmapError::Invalid { detail } => BitmapError::corrupt(&path, detail),
            other => other,
        })?;
        let tmp_path = sibling(&path, ".tmp");
        // A leftover tmp is a torn snapshot write that never got renamed; it
        // carries nothing we need.
        let _ = fs::remove_file(&tmp_path);
        let log_path = sibling(&path, ".log");
        let (file, len) = replay_log(&log_path, &bitmap, h.generation)?;
        // The log may have just been created; make its directory entry durable.
        sync_dir(&path)?;
        // Just loaded, the bits in memory are exactly those on disk.
        let disk_clear = bitmap.count() == 0;
        let state = LogState::new(file, len, h.generation, disk_clear, h.version < format::VERSION);
        Ok(Self::assemble_with(IoCounters::default(), bitmap, path, tmp_path, log_path, durable, state))
    }

    /// Opens the sidecar if it exists, else creates it. If it exists with a
    /// different size or granularity, fails with `E_SIZE`.
    pub fn open_or_create(path: impl AsRef<Path>, size: u64, granularity: u64, durable: bool) -> Result<Self> {
        let path = path.as_ref();
        match Self::open(path, durable) {
            Ok(db) => {
                let bm = &db.bitmap;
                if bm.size() != size || bm.granularity() != granularity {
                    return Err(BitmapError::Mismatch {
                        detail: format!(
                            "{} has size {} gran {}, expected size {size} gran {granularity}",
                            path.display(),
                            bm.size(),
                            bm.granularity()
                        ),
                    });
                }
                Ok(db)
            }
            Err(e) if e.code() == "E_NOENT" && !path.exists() => Self::create(path, size, granularity, durable),
            Err(e) => Err(e),
        }
    }

    fn assemble_with(
        io: IoCounters,
        bitmap: DirtyBitmap,
        path: PathBuf,
        tmp_path: PathBuf,
        log_path: PathBuf,
        durable: bool,
        state: LogState,
    ) -> Self {
        // Without a second handle the group commit syncs through the log mutex instead.
        let sync_file = state.file.try_clone().ok();
        DurableBitmap {
            bitmap,
            path,
            tmp_path,
            log_path,
            durable,
            poisoned: AtomicBool::new(false),
            log: Mutex::new(state),
            extent_bits: 1,
            group: Mutex::new(GroupSync::default()),
            synced: std::sync::Condvar::new(),
            sync_file,
            io,
            unlogged: AtomicBool::new(false),
            log_floor: MIN_LOG_LIMIT,
        }
    }

    /// What this handle wrote and synced so far (opening counts nothing).
    pub fn stats(&self) -> SidecarStats {
        let io = &self.io;
        SidecarStats {
            bytes_written: io.bytes.load(Ordering::Relaxed),
            syncs: io.syncs.load(Ordering::Relaxed),
            snapshots: io.snapshots.load(Ordering::Relaxed),
            records: io.records.load(Ordering::Relaxed),
        }
    }

    /// Log fdatasyncs issued by marks so far (several concurrent marks share one).
    pub fn log_syncs(&self) -> u64 {
        self.group.lock().unwrap_or_else(PoisonError::into_inner).count
    }

    /// Returns once record `ticket` (and every one before it) is durable: the first
    /// waiter becomes the leader and syncs for all records appended so far; the others
    /// wait for it (a group commit: one fdatasync for every mark that arrived meanwhile).
    fn sync_through(&self, ticket: u64) -> Result<()> {
        let mut g = self.group.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.is_poisoned() {
                return Err(BitmapError::Poisoned { path: self.path.clone() });
            }
            if g.synced >= ticket {
                return Ok(());
            }
            if !g.syncing {
                break;
            }
            g = self.synced.wait(g).unwrap_or_else(PoisonError::into_inner);
        }
        g.syncing = true;
        g.count += 1;
        drop(g);
        self.io.synced(1);
        // Writers that were about to append get the CPU first (2 cores, many writers):
        // their records then ride on this sync instead of waiting for the next.
        std::thread::yield_now();
        // Every record appended before this read is covered by the sync below.
        let upto = self.lock().appended;
        let res = match &self.sync_file {
            Some(f) => f.sync_data(),
            None => self.lock().file.sync_data(),
        };
        let mut g = self.group.lock().unwrap_or_else(PoisonError::into_inner);
        g.syncing = false;
        if res.is_ok() {
            g.synced = g.synced.max(upto);
        }
        drop(g);
        self.synced.notify_all();
        res.map_err(|source| {
            // fjall/PostgreSQL lesson: after a failed fsync the page cache may
            // have dropped the dirty pages, and a retry can falsely succeed.
            self.poisoned.store(true, Ordering::Release);
            BitmapError::Io { path: self.log_path.clone(), op: "append", source }
        })
    }

    /// Makes each write-intent record cover whole extents of `bytes` (rounded to whole
    /// granules): the first mark in an extent logs and syncs all of it, later marks
    /// anywhere in it only set their bits in memory, until the next snapshot. The bits
    /// in memory and in every snapshot stay exact; a bitmap recovered from the log after
    /// a crash is rounded up to whole extents. Only for bitmaps where a superset is safe
    /// (what changed, what to copy), never for one that promises work done (filled).
    pub fn with_intent_extent(mut self, bytes: u64) -> Self {
        self.extent_bits = (bytes / self.bitmap.granularity().max(1)).max(1);
        self
    }

    /// Sets the least log length past which a checkpoint compacts the log into a snapshot
    /// (default 1 MiB; the limit is this or the size of a snapshot, whichever is larger).
    /// A smaller floor bounds the log of a small bitmap more tightly, at more snapshots.
    pub fn with_log_limit(mut self, bytes: u64) -> Self {
        self.log_floor = bytes;
        self
    }

    /// A read-only view of the bits in memory (queries, `runs()`, ...). Bits
    /// are set only through this type, so that they are logged first.
    pub fn bitmap(&self) -> BitmapView<'_> {
        BitmapView::new(&self.bitmap)
    }

    /// Reads a sidecar without writing anything: the snapshot plus every valid
    /// record of the log (a torn tail is ignored, not cut; a missing log is
    /// empty; a leftover `PATH.tmp` stays). For observers such as `pair display`
    /// while another process may own the bitmap. The result is a detached copy.
    pub fn read_only(path: impl AsRef<Path>) -> Result<DirtyBitmap> {
        let path = path.as_ref();
        let (h, words) = read_snapshot(path)?;
        let bitmap = DirtyBitmap::from_words(h.size, h.granularity, &words).map_err(|e| match e {
            BitmapError::Invalid { detail } => BitmapError::corrupt(path, detail),
            other => other,
        })?;
        peek_log(&sibling(path, ".log"), &bitmap, h.generation)?;
        Ok(bitmap)
    }

    /// Snapshot file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Intent-log path (`PATH.log`).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// True if marks are logged and synced before `mark_range` returns.
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// True once a write/fsync of the sidecar has failed.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Generation of the current snapshot.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock cannot leave LogState inconsistent:
        // `len`/`generation` are only updated after the I/O they describe.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check_poisoned(&self) -> Result<()> {
        if self.is_poisoned() {
            return Err(BitmapError::Poisoned { path: self.path.clone() });
        }
        Ok(())
    }

    /// Marks the granules touched by `[offset, offset+len)`; returns how many
    /// bits were newly set. In durable mode, when this returns `Ok` the marks
    /// are on stable storage, so the caller may acknowledge its write.
    pub fn mark_range(&self, offset: u64, len: u64) -> Result<u64> {
        if !self.durable {
            let newly = self.bitmap.mark_range(offset, len)?;
            if newly > 0 {
                self.unlogged.store(true, Ordering::Release);
            }
            return Ok(newly);
        }
        self.check_poisoned()?;
        let Some((first, last)) = self.bitmap.bit_span(offset, len)? else {
            return Ok(0);
        };
        // Fast path, no lock and no I/O: valid because a set bit is durable.
        if self.bitmap.all_bits_set(first, last) {
            return Ok(0);
        }
        let mut st = self.lock();
        self.check_poisoned()?;
        // Re-check: another thread may have made these bits durable meanwhile.
        if self.bitmap.all_bits_set(first, last) {
            return Ok(0);
        }
        let per = self.extent_bits;
        let (e_first, e_last) = (first / per, last / per);
        let ticket = if (e_first..=e_last).all(|e| test_covered(&st.covered, e)) {
            // A record since the last snapshot covers these extents whole: no I/O of our
            // own, only (if that record's sync is still running) a wait for it.
            let t = (e_first..=e_last).filter_map(|e| st.unsynced.get(&e).copied()).max().unwrap_or(0);
            if t == 0 {
                // Durable already. Set under the lock, so no snapshot can miss them.
                return Ok(self.bitmap.set_bits(first, last, Ordering::Release));
            }
            t
        } else {
            let log_first = e_first * per;
            let log_last = ((e_last + 1) * per).min(self.bitmap.len_bits()).saturating_sub(1).max(last);
            let rec = Record::mark(st.generation, log_first, log_last - log_first + 1).encode();
            // Set before the append: even a failed one may have left a record on disk.
            st.disk_clear = false;
            if let Err(source) = st.file.write_all_at(&rec, st.len) {
                self.poisoned.store(true, Ordering::Release);
                return Err(BitmapError::Io { path: self.log_path.clone(), op: "append", source });
            }
            st.len += RECORD_LEN as u64;
            st.appended += 1;
            self.io.wrote(RECORD_LEN as u64);
            self.io.records.fetch_add(1, Ordering::Relaxed);
            let t = st.appended;
            // Covered from now on (one record per extent), durable once ticket t is synced.
            for e in e_first..=e_last {
                set_covered(&mut st.covered, e);
                st.unsynced.insert(e, t);
            }
            t
        };
        st.pending.push((first, last));
        drop(st);
        // The sync outside the log mutex: marks arriving meanwhile append their records
        // and share the next one.
        let synced = self.sync_through(ticket);
        let mut st = self.lock();
        if let Some(i) = st.pending.iter().position(|&p| p == (first, last)) {
            st.pending.swap_remove(i);
        }
        synced?;
        if st.unsynced.len() > 1024 {
            let done = self.group.lock().unwrap_or_else(PoisonError::into_inner).synced;
            st.unsynced.retain(|_, t| *t > done);
        } else {
            for e in e_first..=e_last {
                if st.unsynced.get(&e).is_some_and(|&t| t <= ticket) {
                    st.unsynced.remove(&e);
                }
            }
        }
        // Only now, with the record (or a snapshot holding its bits) durable, publish
        // the bits (Release pairs with the Acquire loads of the fast path).
        Ok(self.bitmap.set_bits(first, last, Ordering::Release))
    }

    /// Writes a new snapshot of the current bits with generation + 1 and then
    /// truncates the log. Crash-safe at every step (see module docs).
    pub fn flush(&self) -> Result<()> {
        let mut st = self.lock();
        self.flush_locked(&mut st)
    }

    /// Clears the granules touched by the range in memory and persists the
    /// result with a snapshot (the log can only add bits).
    pub fn clear_range(&self, offset: u64, len: u64) -> Result<()> {
        let mut st = self.lock();
        self.check_poisoned()?;
        self.bitmap.clear_range(offset, len)?;
        self.flush_locked(&mut st)
    }

    /// Clears every bit and persists the result with a snapshot (unless no bit is set
    /// on disk: then clearing memory is enough, and saves the snapshot's three syncs).
    pub fn clear(&self) -> Result<()> {
        let mut st = self.lock();
        self.check_poisoned()?;
        self.bitmap.clear();
        if st.disk_clear {
            return Ok(());
        }
        self.flush_locked(&mut st)
    }

    /// Takes the dirty set out of memory (see [`DirtyBitmap::swap_out`]) for a
    /// resync while new writes keep marking. The on-disk state still holds the
    /// taken bits until the next `flush` (or `checkpoint`, which then writes a
    /// snapshot), so call either only once the resync of the taken set has
    /// completed; if it fails, merge the set back.
    pub fn swap_out(&self) -> Vec<u64> {
        // Under the lock so a concurrent flush never persists a half-swapped set.
        let mut st = self.lock();
        st.snapshot_due = true;
        self.bitmap.swap_out()
    }

    /// Marks the whole volume dirty (durably in durable mode).
    pub fn mark_all(&self) -> Result<u64> {
        self.mark_range(0, self.bitmap.size())
    }

    /// ORs another bitmap's bits into this one (durably in durable mode);
    /// `E_SIZE` unless both have the same geometry.
    pub fn merge_from(&self, other: &DurableBitmap) -> Result<u64> {
        let (a, b) = (&self.bitmap, &other.bitmap);
        if a.size() != b.size() || a.granularity() != b.granularity() {
            return Err(BitmapError::Mismatch {
                detail: format!(
                    "cannot merge {} (size {} gran {}) into {} (size {} gran {})",
                    other.path.display(),
                    b.size(),
                    b.granularity(),
                    self.path.display(),
                    a.size(),
                    a.granularity()
                ),
            });
        }
        self.merge_words(&b.snapshot_words())
    }

    /// ORs `words` (one bit per granule, as [`BitmapView::snapshot_words`]
    /// gives them; bits past `len_bits()` are ignored) into the bitmap and
    /// returns how many bits were newly set. In durable mode the union is
    /// written as a new snapshot *before* any new bit is visible in memory, so
    /// "a set bit is durable" still holds. `E_SIZE` on a wrong word count.
    pub fn merge_words(&self, words: &[u64]) -> Result<u64> {
        let bm = &self.bitmap;
        let current = bm.snapshot_words();
        if words.len() != current.len() {
            return Err(BitmapError::Mismatch {
                detail: format!("{} words given for {} ({} words)", words.len(), self.path.display(), current.len()),
            });
        }
        let tail = bm.len_bits() % 64;
        let mut merged = current.clone();
        let last = merged.len().saturating_sub(1);
        for (i, (m, w)) in merged.iter_mut().zip(words.iter()).enumerate() {
            let w = if i == last && tail != 0 { w & (u64::MAX >> (64 - tail)) } else { *w };
            *m |= w;
        }
        if merged == current {
            return Ok(0);
        }
        if !self.durable {
            let newly = bm.or_words(&merged, Ordering::Release);
            // After the bits: a checkpoint that sees the flag snapshots them.
            self.unlogged.store(true, Ordering::Release);
            return Ok(newly);
        }
        {
            let mut st = self.lock();
            self.check_poisoned()?;
            // Bits marked since `current` was read stay set: OR them in again.
            let now = bm.snapshot_words();
            for (m, n) in merged.iter_mut().zip(now.iter()) {
                *m |= n;
            }
            self.persist_locked(&mut st, &merged)?;
        }
        Ok(bm.or_words(&merged, Ordering::Release))
    }

    /// Clears the granules the byte range touches in memory only; the next
    /// snapshot (`flush`) persists it. Clearing early never breaks the
    /// invariant (a write to a cleared granule logs it again); until the
    /// snapshot, a crash only brings the bits back. For a resync that clears
    /// each chunk behind its copy and checkpoints now and then.
    pub fn clear_range_in_memory(&self, offset: u64, len: u64) -> Result<()> {
        let Some((first, last)) = self.bitmap.bit_span(offset, len)? else {
            return Ok(());
        };
        // Under the lock so a snapshot in progress never sees a half-cleared range, and a
        // checkpoint finds every range cleared before it.
        let mut st = self.lock();
        self.bitmap.clear_bits(first, last);
        st.note_cleared(first, last);
        Ok(())
    }

    /// Persists what changed in memory since the last snapshot or checkpoint, at a cost
    /// that follows the change, not the size of the bitmap: the ranges cleared in memory
    /// (by [`clear_range_in_memory`](Self::clear_range_in_memory)) are appended to the log
    /// as clear records and synced once. A crash afterwards brings back none of them, and
    /// every mark logged after them still applies. Only granules still clear, and not
    /// being marked (a mark logged but not yet published), are logged as cleared.
    ///
    /// A snapshot is written instead (as [`flush`](Self::flush) does) when the log has
    /// grown past the size of a snapshot (and 1 MiB), after a `swap_out`, when clearing
    /// was too scattered to track, over a version-1 snapshot, and without write intent
    /// when a bit was set since the last snapshot (marks are then in memory only).
    pub fn checkpoint(&self) -> Result<()> {
        let mut st = self.lock();
        self.check_poisoned()?;
        if st.snapshot_due || (!self.durable && self.unlogged.load(Ordering::Acquire)) {
            return self.flush_locked(&mut st);
        }
        if st.cleared.ranges.is_empty() {
            return Ok(());
        }
        if st.disk_clear {
            // Nothing is set on disk: there is nothing to clear there.
            st.cleared = Cleared::default();
            return Ok(());
        }
        if st.old_snapshot {
            return self.flush_locked(&mut st);
        }
        let room = self.log_limit().saturating_sub(st.len) / RECORD_LEN as u64;
        let Some(records) = self.clear_records(&st, room) else {
            // Compaction: the log would outgrow a snapshot.
            return self.flush_locked(&mut st);
        };
        st.cleared = Cleared::default();
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.len() * RECORD_LEN);
        for &(first, n) in &records {
            buf.extend_from_slice(&Record::clear(st.generation, first, n).encode());
        }
        if let Err(source) = st.file.write_all_at(&buf, st.len) {
            self.poisoned.store(true, Ordering::Release);
            return Err(BitmapError::Io { path: self.log_path.clone(), op: "append", source });
        }
        st.len += buf.len() as u64;
        st.appended += records.len() as u64;
        self.io.wrote(buf.len() as u64);
        self.io.records.fetch_add(records.len() as u64, Ordering::Relaxed);
        // A record covering an extent whole no longer vouches for every bit in it: the
        // next mark there must log again, or a crash would replay the clear over it.
        let per = self.extent_bits;
        for &(first, n) in &records {
            for e in first / per..=(first + n - 1) / per {
                unset_covered(&mut st.covered, e);
            }
        }
        let ticket = st.appended;
        drop(st);
        // The sync outside the log mutex, shared with marks syncing meanwhile.
        self.sync_through(ticket)
    }

    /// The clear records (first bit, count) for the ranges cleared since the last
    /// checkpoint: the bits of each that are clear in memory now, less those of marks in
    /// flight (`pending`: logged, not yet published; a clear logged after their record
    /// would undo it on replay). `None` if more than `room` records would be needed.
    fn clear_records(&self, st: &LogState, room: u64) -> Option<Vec<(u64, u64)>> {
        let bm = &self.bitmap;
        let mut pending = st.pending.clone();
        pending.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut push = |first: u64, end: u64| -> bool {
            // Cut `first..end` around every pending range.
            let mut at = first;
            for &(p_first, p_last) in &pending {
                if p_last < at || p_first >= end {
                    continue;
                }
                if p_first > at {
                    out.push((at, p_first - at));
                }
                at = p_last.saturating_add(1);
                if at >= end {
                    break;
                }
            }
            if at < end {
                out.push((at, end - at));
            }
            out.len() as u64 <= room
        };
        for (&first, &last) in &st.cleared.ranges {
            let end = last.saturating_add(1).min(bm.len_bits());
            let mut at = first;
            while let Some(c) = bm.next_in(at, end, true) {
                let s = bm.next_in(c, end, false).unwrap_or(end);
                if !push(c, s) {
                    return None;
                }
                at = s;
            }
        }
        Some(out)
    }

    /// The log length past which a checkpoint compacts it into a snapshot: the size of a
    /// snapshot (so compaction at most doubles what the checkpoints wrote), at least the
    /// floor (1 MiB unless set).
    fn log_limit(&self) -> u64 {
        let snapshot = (HEADER_LEN as u64).saturating_add(self.bitmap.len_bits().div_ceil(64).saturating_mul(8));
        snapshot.max(self.log_floor)
    }

    fn flush_locked(&self, st: &mut LogState) -> Result<()> {
        // Cleared before the words are read: a mark setting bits after the read sets it again.
        let unlogged = self.unlogged.swap(false, Ordering::AcqRel);
        let words = self.bitmap.snapshot_words();
        let res = self.persist_locked(st, &words);
        if res.is_err() && unlogged {
            self.unlogged.store(true, Ordering::Release);
        }
        res
    }

    /// Writes `words` as the next snapshot and truncates the log.
    fn persist_locked(&self, st: &mut LogState, words: &[u64]) -> Result<()> {
        self.check_poisoned()?;
        let next = st.generation + 1;
        let bm = &self.bitmap;
        // Records still syncing are about to publish their bits; the log holding them is
        // truncated below, so the snapshot holds them instead.
        let mut with_pending;
        let words = if st.pending.is_empty() {
            words
        } else {
            with_pending = words.to_vec();
            for &(first, last) in &st.pending {
                for bit in first..=last {
                    if let Some(w) = with_pending.get_mut((bit / 64) as usize) {
                        *w |= 1u64 << (bit % 64);
                    }
                }
            }
            &with_pending[..]
        };
        let bytes = format::encode_snapshot(bm.granularity(), bm.size(), bm.len_bits(), next, words);
        // Failures up to and including rename leave the old snapshot and old
        // log intact and consistent, so they are plain errors.
        write_tmp(&self.tmp_path, &bytes)?;
        self.io.wrote(bytes.len() as u64);
        self.io.synced(if st.len == 0 { 2 } else { 3 });
        self.io.snapshots.fetch_add(1, Ordering::Relaxed);
        fs::rename(&self.tmp_path, &self.path).map_err(BitmapError::io(&self.path, "rename"))?;
        st.generation = next;
        // After the rename, a failure leaves durability unknown: poison.
        let res = sync_dir(&self.path).and_then(|()| {
            // An empty log is already durably empty: every path that leaves `len` at
            // 0 (create, a replay that cut a torn tail, this truncation) synced it.
            if st.len == 0 {
                return Ok(());
            }
            st.file.set_len(0).and_then(|()| st.file.sync_all()).map_err(BitmapError::io(&self.log_path, "truncate"))
        });
        if res.is_err() {
            self.poisoned.store(true, Ordering::Release);
        }
        res?;
        st.len = 0;
        st.disk_clear = words.iter().all(|&w| w == 0);
        // The snapshot holds only the exact bits: no extent is covered whole any more.
        st.covered.clear();
        st.unsynced.clear();
        // The snapshot holds every clear too, and is of the current version.
        st.cleared = Cleared::default();
        st.snapshot_due = false;
        st.old_snapshot = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const G: u64 = 65536;

    fn clear_records_on_disk(d: &DurableBitmap) -> Vec<(u64, u64)> {
        let log = fs::read(&d.log_path).unwrap();
        log.chunks(RECORD_LEN)
            .filter_map(Record::decode)
            .filter(|r| r.kind == format::RecordKind::Clear)
            .map(|r| (r.first_bit, r.nbits))
            .collect()
    }

    #[test]
    fn a_checkpoint_leaves_out_the_bits_of_marks_logged_but_not_yet_published() {
        let dir = tempfile::tempdir().unwrap();
        let d = DurableBitmap::create(dir.path().join("v.bitmap"), 1000 * G, G, true).unwrap();
        d.mark_all().unwrap();
        d.clear_range_in_memory(0, 100 * G).unwrap();
        // As between a mark's append and its publication (its sync still running): its
        // record precedes the clear in the log, so a clear of its bits would undo it.
        d.lock().pending.extend([(10, 12), (40, 40), (95, 120)]);
        d.checkpoint().unwrap();
        assert_eq!(clear_records_on_disk(&d), vec![(0, 10), (13, 27), (41, 54)]);
    }

    #[test]
    fn cleared_ranges_merge_when_they_touch_or_overlap() {
        let mut c = Cleared::default();
        for (a, b) in [(10, 19), (30, 39), (20, 29), (5, 7), (50, 60), (8, 9), (55, 70)] {
            assert!(c.insert(a, b));
        }
        assert_eq!(c.ranges.into_iter().collect::<Vec<_>>(), vec![(5, 39), (50, 70)]);
        let mut c = Cleared::default();
        let ok = (0..=MAX_CLEARED_RANGES as u64).all(|i| c.insert(2 * i, 2 * i));
        assert!(!ok, "past the bound, tracking gives up");
    }
}
