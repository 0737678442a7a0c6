//! The sequenced journal of a consistency group: append (assigns the group's next
//! sequence number), group commit, batched reads for the shipper, release up to what
//! the remote durably applied, recovery on open. Format: `docs/journal-format.md`.
//!
//! Locks, in the order they may be taken: `meta` (the durable state file, held across
//! its rewrite so releases and resets persist in order) -> `inner` (segments and
//! counters; held only for in-memory work and the page-cache write of an append) ->
//! `sync` (group-commit bookkeeping) / `waiters`. No fdatasync runs under `inner`
//! except the one-per-segment sync of a roll.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{JournalError, Result};
use crate::format::{self, parse_record, RecordKind, RecordRef, RECORD_HEADER};
use crate::io::{OsSync, SyncIo};
use crate::segment::{self, Scanned, Segment};
use crate::state::{self, JournalState};

/// Default size at which the journal starts a new segment file.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Smallest segment size `open_with` accepts.
pub const MIN_SEGMENT_BYTES: u64 = 4096;
/// Records up to this size are written with one `pwrite` from a scratch buffer; larger
/// ones as two (header, data) to avoid copying the data.
const COALESCE_WRITE: usize = 64 << 10;

/// Options of [`Journal::open_with`].
#[derive(Clone)]
pub struct JournalOptions {
    /// Most bytes of encoded records held (appended, not released); beyond: `E_FULL`.
    pub capacity: u64,
    /// Segment file size at which a new segment is started.
    pub segment_bytes: u64,
    /// The fdatasync implementation (`None`: the real one). Tests inject faults here.
    pub sync_io: Option<Arc<dyn SyncIo>>,
}

impl JournalOptions {
    /// Options with `capacity` and the default segment size.
    pub fn new(capacity: u64) -> JournalOptions {
        JournalOptions { capacity, segment_bytes: DEFAULT_SEGMENT_BYTES, sync_io: None }
    }
}

impl fmt::Debug for JournalOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalOptions")
            .field("capacity", &self.capacity)
            .field("segment_bytes", &self.segment_bytes)
            .field("sync_io", &self.sync_io.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// A batch of encoded records read from the journal, in wire form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// The records exactly as on disk (each self-describing and checksummed).
    pub bytes: Vec<u8>,
    /// Sequence number of the first record (0 if the batch is empty).
    pub first: u64,
    /// Sequence number of the last record (0 if the batch is empty).
    pub last: u64,
    /// Number of records.
    pub count: u64,
}

/// What [`Journal::read_batch_into`] put in the caller's buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchInto {
    /// Bytes of records at the start of the buffer.
    pub len: usize,
    /// Sequence numbers of the first and last record (0 if empty).
    pub first: u64,
    /// Last sequence number.
    pub last: u64,
    /// Records.
    pub count: u64,
}

/// A run of a segment file holding records of a batch.
struct Span {
    file: Arc<File>,
    path: PathBuf,
    start: u64,
    end: u64,
}

/// Where a held record lands, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Sequence number.
    pub seq: u64,
    /// Volume of the group.
    pub volume: u32,
    /// What the record does.
    pub kind: RecordKind,
    /// Byte offset in the volume.
    pub offset: u64,
    /// Bytes affected.
    pub len: u64,
}

/// Segments and counters: everything appends, reads and releases change together.
#[derive(Debug)]
struct Inner {
    segments: VecDeque<Segment>,
    /// The sequence number the next append gets.
    next: u64,
    /// Records <= this are released; held records are exactly `released+1 .. next`.
    released: u64,
    held_bytes: u64,
    /// A segment was created (or a stale one removed) since the last directory fsync.
    dir_dirty: bool,
    /// Reused buffer for coalescing a small record's header and data into one pwrite.
    scratch: Vec<u8>,
}

/// Group-commit bookkeeping.
#[derive(Debug, Default)]
struct SyncState {
    /// Every record <= this is durable.
    synced: u64,
    /// A leader is running fdatasync right now.
    in_flight: bool,
}

/// The journal of one consistency group. `Send + Sync`: share it (in an `Arc`) between
/// the writer threads, the syncer and the shipper.
pub struct Journal {
    dir: PathBuf,
    capacity: u64,
    segment_bytes: u64,
    io: Arc<dyn SyncIo>,
    /// Held for the journal's lifetime: the flock on `dir/lock` is released when it closes.
    _lock: File,
    meta: Mutex<JournalState>,
    inner: Mutex<Inner>,
    /// Mirror of `inner.next - 1`, readable without the lock (sync targets, waiters).
    last: AtomicU64,
    poisoned: AtomicBool,
    sync: Mutex<SyncState>,
    sync_done: Condvar,
    syncs: AtomicU64,
    waiters: AtomicUsize,
    wait_lock: Mutex<u64>,
    wait_cv: Condvar,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal").field("dir", &self.dir).field("last_seq", &self.last_seq()).finish()
    }
}

/// Locks a mutex, recovering the guard if a thread panicked while holding it: every
/// critical section leaves the state consistent before any call that could panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes the exclusive flock on `dir/lock`; `E_BUSY` if someone else holds it.
fn take_lock(dir: &Path) -> Result<File> {
    let path = dir.join("lock");
    let file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(JournalError::io(&path, "open"))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(JournalError::Busy { path }),
        Err(e) => Err(JournalError::io(&path, "flock")(e.into())),
    }
}

impl Journal {
    /// Opens (creating if absent) the journal in `dir` with the default segment size.
    /// See [`open_with`](Self::open_with).
    pub fn open(dir: &Path, capacity: u64) -> Result<Journal> {
        Journal::open_with(dir, JournalOptions::new(capacity))
    }

    /// Opens (creating if absent) the journal in `dir`, recovering what a crash left:
    /// every record's checksum is verified, a torn tail (a partial or damaged last record
    /// of the last segment) is cut off, damage anywhere else is `E_CORRUPT`. A second
    /// open of the same directory (this process or another) is `E_BUSY`.
    pub fn open_with(dir: &Path, opts: JournalOptions) -> Result<Journal> {
        if opts.capacity == 0 {
            return Err(JournalError::Invalid { detail: "capacity 0".into() });
        }
        if opts.segment_bytes < MIN_SEGMENT_BYTES {
            return Err(JournalError::Invalid { detail: format!("segment size {} under {MIN_SEGMENT_BYTES}", opts.segment_bytes) });
        }
        let io: Arc<dyn SyncIo> = opts.sync_io.clone().unwrap_or_else(|| Arc::new(OsSync));
        fs::create_dir_all(dir).map_err(JournalError::io(dir, "mkdir"))?;
        let lock_file = take_lock(dir)?;
        let st = state::load(dir)?;
        let files = segment::list(dir)?;
        let mut segments: VecDeque<Segment> = VecDeque::new();
        let mut top = 0u64; // highest seq seen in any segment, kept or dropped
        for (i, (first, path)) in files.iter().enumerate() {
            let next_first = files.get(i + 1).map(|(f, _)| *f);
            // A segment wholly below the released point is not needed: drop it without
            // reading it (its unlink may not have been durable, or its unsynced pages
            // may have been lost after the remote had them; neither matters now).
            if next_first.is_some_and(|n| n.saturating_sub(1) <= st.released) {
                fs::remove_file(path).map_err(JournalError::io(path, "unlink"))?;
                continue;
            }
            match segment::scan(path, *first, next_first.is_none())? {
                Scanned::Discarded => {}
                Scanned::Valid(seg) => {
                    top = top.max(seg.last());
                    if seg.last() <= st.released {
                        fs::remove_file(&seg.path).map_err(JournalError::io(&seg.path, "unlink"))?;
                    } else {
                        segments.push_back(seg);
                    }
                }
            }
        }
        for pair in segments.iter().collect::<Vec<_>>().windows(2) {
            if let [a, b] = pair {
                if b.first != a.last() + 1 {
                    return Err(JournalError::corrupt(
                        &b.path,
                        format!("starts at seq {}, the previous segment ends at {}", b.first, a.last()),
                    ));
                }
            }
        }
        let next = (top + 1).max(st.floor).max(st.released + 1);
        let released = match segments.front() {
            Some(f) if f.first > st.released + 1 => {
                return Err(JournalError::corrupt(
                    &f.path,
                    format!("starts at seq {}, records after {} are missing", f.first, st.released),
                ));
            }
            Some(_) => st.released,
            None => next - 1,
        };
        let held_bytes = segments.iter().map(|s| s.bytes_between(released.saturating_sub(s.first - 1).min(s.count()), s.count())).sum();
        // Truncations, unlinks and a new lock file must survive a crash too.
        io.sync_dir(dir).map_err(JournalError::io(dir, "fsync dir"))?;
        let j = Journal {
            dir: dir.to_path_buf(),
            capacity: opts.capacity,
            segment_bytes: opts.segment_bytes,
            io,
            _lock: lock_file,
            meta: Mutex::new(JournalState { released, floor: st.floor, epoch: st.epoch }),
            inner: Mutex::new(Inner { segments, next, released, held_bytes, dir_dirty: false, scratch: Vec::new() }),
            last: AtomicU64::new(next - 1),
            poisoned: AtomicBool::new(false),
            // What recovery kept is on disk now (scanned from it, tail synced).
            sync: Mutex::new(SyncState { synced: next - 1, in_flight: false }),
            sync_done: Condvar::new(),
            syncs: AtomicU64::new(0),
            waiters: AtomicUsize::new(0),
            wait_lock: Mutex::new(0),
            wait_cv: Condvar::new(),
        };
        Ok(j)
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(JournalError::Poisoned { path: self.dir.clone() });
        }
        Ok(())
    }

    fn poison(&self) {
        self.poisoned.store(true, Ordering::SeqCst);
        // Wake group-commit waiters so they see the poison instead of sleeping forever.
        let _g = lock(&self.sync);
        self.sync_done.notify_all();
    }

    /// Assigns the next sequence number and writes the record (header + data) into the
    /// current segment with `pwrite` (page cache: survives a kill -9 of the process, not
    /// a power loss until [`sync`](Self::sync)). `E_FULL` (nothing appended, the journal
    /// stays usable) when held bytes + this record would exceed the capacity; `E_RANGE`
    /// for an invalid record (Write data not `len` bytes, lengths over the limits).
    pub fn append(&self, rec: &RecordRef<'_>) -> Result<u64> {
        rec.validate()?;
        self.check_poison()?;
        let need = rec.encoded_len();
        let mut g = lock(&self.inner);
        if g.held_bytes + need > self.capacity {
            return Err(JournalError::Full { held: g.held_bytes, need, capacity: self.capacity });
        }
        let seq = g.next;
        let roll = match g.segments.back() {
            None => true,
            Some(s) => s.count() > 0 && s.len + need > self.segment_bytes,
        };
        if roll {
            self.roll(&mut g, seq)?;
        }
        let inner = &mut *g;
        let Some(seg) = inner.segments.back_mut() else {
            return Err(JournalError::Invalid { detail: "no active segment after a roll".into() });
        };
        let mut h = [0u8; RECORD_HEADER];
        format::write_header(&mut h, &RecordRef { seq, ..*rec });
        // The write happens under the lock: it is a page-cache memcpy, and writing in
        // sequence order means a crash can only ever tear the tail (no holes to recover).
        let written = if rec.data.len() <= COALESCE_WRITE {
            inner.scratch.clear();
            inner.scratch.extend_from_slice(&h);
            inner.scratch.extend_from_slice(rec.data);
            seg.file.write_all_at(&inner.scratch, seg.len)
        } else {
            seg.file.write_all_at(&h, seg.len).and_then(|()| seg.file.write_all_at(rec.data, seg.len + RECORD_HEADER as u64))
        };
        if let Err(e) = written {
            // Undo a partial write so the next record lands on a clean tail; if even that
            // fails, what the file holds is unknown: stop writing.
            let undone = seg.file.set_len(seg.len).is_ok();
            let err = JournalError::io(&seg.path, "pwrite")(e);
            drop(g);
            if !undone {
                self.poison();
            }
            return Err(err);
        }
        seg.offsets.push(seg.len);
        seg.len += need;
        seg.dirty = true;
        inner.next += 1;
        inner.held_bytes += need;
        self.last.store(seq, Ordering::SeqCst);
        drop(g);
        self.notify_appended();
        Ok(seq)
    }

    /// Starts a new segment at `first`. The full one is fdatasynced first, so every
    /// segment but the last is durable whole: recovery then needs to accept a torn tail
    /// only in the last one (one extra sync per segment, e.g. per 64 MiB).
    fn roll(&self, g: &mut Inner, first: u64) -> Result<()> {
        if let Some(old) = g.segments.back_mut() {
            if old.dirty {
                self.syncs.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = self.io.sync_file(&old.file) {
                    self.poison();
                    return Err(JournalError::io(&old.path, "fdatasync")(e));
                }
                old.dirty = false;
            }
        }
        let seg = segment::create(&self.dir, first)?;
        g.segments.push_back(seg);
        g.dir_dirty = true;
        Ok(())
    }

    /// Group commit: returns once every record appended before the call is durable.
    /// Concurrent callers share fdatasyncs: while one is in flight the others wait, and
    /// the first to find none running leads the next one, covering everything appended
    /// by then. After a failed fdatasync the journal is poisoned: this and every later
    /// append and sync fail with `E_IO`.
    pub fn sync(&self) -> Result<()> {
        let target = self.last.load(Ordering::SeqCst);
        let mut s = lock(&self.sync);
        loop {
            self.check_poison()?;
            if s.synced >= target {
                return Ok(());
            }
            if !s.in_flight {
                break;
            }
            s = self.sync_done.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.in_flight = true;
        drop(s);
        let (files, dir_dirty, upto) = {
            let mut g = lock(&self.inner);
            let files: Vec<(Arc<File>, PathBuf)> = g
                .segments
                .iter_mut()
                .filter(|seg| seg.dirty)
                .map(|seg| {
                    seg.dirty = false;
                    (Arc::clone(&seg.file), seg.path.clone())
                })
                .collect();
            let dir_dirty = std::mem::take(&mut g.dir_dirty);
            (files, dir_dirty, g.next - 1)
        };
        let mut res = Ok(());
        if dir_dirty {
            res = self.io.sync_dir(&self.dir).map_err(JournalError::io(&self.dir, "fsync dir"));
        }
        for (file, path) in &files {
            if res.is_err() {
                break;
            }
            self.syncs.fetch_add(1, Ordering::Relaxed);
            res = self.io.sync_file(file).map_err(JournalError::io(path, "fdatasync"));
        }
        if res.is_err() {
            self.poisoned.store(true, Ordering::SeqCst);
        }
        let mut s = lock(&self.sync);
        s.in_flight = false;
        if res.is_ok() {
            s.synced = s.synced.max(upto);
        }
        self.sync_done.notify_all();
        res
    }

    /// fdatasyncs issued so far (group commit and segment rolls), for tests and metrics.
    pub fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Newest appended sequence number (0 if none ever).
    pub fn last_seq(&self) -> u64 {
        self.last.load(Ordering::SeqCst)
    }

    /// The sequence number the next append gets (`last_seq() + 1`).
    pub fn next_seq(&self) -> u64 {
        self.last_seq() + 1
    }

    /// Oldest sequence number still held (`next_seq()` when nothing is held).
    pub fn first_seq(&self) -> u64 {
        lock(&self.inner).released + 1
    }

    /// Records held (appended, not yet released).
    pub fn held_records(&self) -> u64 {
        let g = lock(&self.inner);
        g.next - 1 - g.released
    }

    /// Encoded bytes of the records held; what `capacity` bounds.
    pub fn held_bytes(&self) -> u64 {
        lock(&self.inner).held_bytes
    }

    /// The group's epoch (opaque; the replication layer changes it on a resync).
    pub fn epoch(&self) -> u64 {
        lock(&self.meta).epoch
    }

    /// Durably sets the group's epoch.
    pub fn set_epoch(&self, epoch: u64) -> Result<()> {
        self.check_poison()?;
        let mut m = lock(&self.meta);
        let new = JournalState { epoch, ..*m };
        state::store(&self.dir, &*self.io, &new)?;
        *m = new;
        Ok(())
    }

    /// Up to `max_bytes` (at least one record if any, even a bigger one) of encoded
    /// records starting at `from`, in wire form, verified as read (`E_CORRUPT`). `from`
    /// must be >= `first_seq()` (else `E_RANGE`); past `last_seq()` the batch is empty.
    /// One `pread` per segment the batch spans.
    pub fn read_batch(&self, from: u64, max_bytes: usize) -> Result<Batch> {
        let Some((spans, total)) = self.plan_batch(from, max_bytes as u64, true)? else {
            return Ok(Batch::default());
        };
        let mut bytes = vec![0u8; total as usize];
        let (last, count) = self.fill_batch(&spans, &mut bytes, from)?;
        Ok(Batch { bytes, first: from, last, count })
    }

    /// [`read_batch`](Self::read_batch) into `buf` (a buffer the caller reuses, so no
    /// fresh memory is faulted in per batch): as many whole records from `from` as fit.
    /// `None` when the first record alone is larger than `buf` (read it with
    /// `read_batch`); an empty batch (count 0) when `from` is past the last record.
    pub fn read_batch_into(&self, from: u64, buf: &mut [u8]) -> Result<Option<BatchInto>> {
        let Some((spans, total)) = self.plan_batch(from, buf.len() as u64, false)? else {
            return Ok(Some(BatchInto::default()));
        };
        if total == 0 {
            return Ok(None);
        }
        let Some(dst) = buf.get_mut(..total as usize) else {
            return Err(JournalError::Invalid { detail: "batch larger than its buffer".into() });
        };
        let (last, count) = self.fill_batch(&spans, dst, from)?;
        Ok(Some(BatchInto { len: total as usize, first: from, last, count }))
    }

    /// The file spans holding records from `from` on, at most `max` bytes (`at_least_one`:
    /// the first record even if it alone is bigger); None past the last record.
    fn plan_batch(&self, from: u64, max: u64, at_least_one: bool) -> Result<Option<(Vec<Span>, u64)>> {
        let mut spans = Vec::new();
        let mut total = 0u64;
        let mut seq = from;
        let g = lock(&self.inner);
        if from <= g.released {
            return Err(JournalError::range(format!("read from seq {from}, but records <= {} are released", g.released)));
        }
        if from >= g.next {
            return Ok(None);
        }
        let idx = g.segments.partition_point(|s| s.last() < from);
        'segments: for seg in g.segments.iter().skip(idx) {
            let mut i = seq - seg.first;
            let start = seg.start_of(i);
            let mut end = start;
            while i < seg.count() {
                let e = seg.start_of(i + 1);
                if (total > 0 || !at_least_one) && total + (e - end) > max {
                    break;
                }
                total += e - end;
                end = e;
                i += 1;
            }
            if end > start {
                spans.push(Span { file: Arc::clone(&seg.file), path: seg.path.clone(), start, end });
            }
            seq = seg.first + i;
            if i < seg.count() {
                break 'segments;
            }
        }
        Ok(Some((spans, total)))
    }

    /// Reads `spans` into `bytes` (outside the lock: the files stay readable through
    /// their Arc even if a release unlinks them meanwhile, and nothing rewrites bytes once
    /// appended) and checks every record and its sequence; (last seq, count).
    fn fill_batch(&self, spans: &[Span], bytes: &mut [u8], from: u64) -> Result<(u64, u64)> {
        let mut at = 0usize;
        for sp in spans {
            let n = (sp.end - sp.start) as usize;
            let Some(dst) = bytes.get_mut(at..at + n) else {
                return Err(JournalError::Invalid { detail: "batch span outside its buffer".into() });
            };
            sp.file.read_exact_at(dst, sp.start).map_err(JournalError::io(&sp.path, "pread"))?;
            at += n;
        }
        let mut off = 0usize;
        let mut expect = from;
        while off < bytes.len() {
            match parse_record(bytes, off) {
                Ok((rec, n)) if rec.seq == expect => {
                    off += n;
                    expect += 1;
                }
                Ok((rec, _)) => {
                    return Err(JournalError::corrupt(&self.dir, format!("read seq {} where {expect} belongs", rec.seq)));
                }
                Err(bad) => return Err(JournalError::corrupt(&self.dir, format!("reading seq {expect}: {}", bad.detail()))),
            }
        }
        Ok((expect - 1, expect - from))
    }

    /// Records <= `upto` are no longer needed (the remote applied them durably). The
    /// release point is persisted first, then whole segments below it are deleted (all
    /// but the active one), so after a crash and reopen `first_seq()` reflects it.
    /// Releasing past `last_seq()` is `E_RANGE`; releasing an older point is a no-op.
    pub fn release(&self, upto: u64) -> Result<()> {
        self.check_poison()?;
        let mut m = lock(&self.meta);
        {
            let g = lock(&self.inner);
            if upto >= g.next {
                return Err(JournalError::range(format!("release up to seq {upto}, but the last appended is {}", g.next - 1)));
            }
            if upto <= g.released {
                return Ok(());
            }
        }
        // Persist before forgetting: outside `inner`, so appends go on during the fsyncs.
        let new = JournalState { released: upto, ..*m };
        state::store(&self.dir, &*self.io, &new)?;
        *m = new;
        let doomed = {
            let mut g = lock(&self.inner);
            let old = g.released;
            let freed: u64 = g
                .segments
                .iter()
                .filter(|s| s.count() > 0 && s.last() > old && s.first <= upto)
                .map(|s| s.bytes_between(old.saturating_sub(s.first - 1).min(s.count()), (upto + 1 - s.first).min(s.count())))
                .sum();
            g.held_bytes -= freed;
            g.released = upto;
            let mut doomed = Vec::new();
            while g.segments.len() > 1 && g.segments.front().is_some_and(|s| s.last() <= upto) {
                if let Some(s) = g.segments.pop_front() {
                    doomed.push(s.path);
                }
            }
            doomed
        };
        // No directory fsync needed: if an unlink is lost in a crash, reopen finds the
        // segment below the persisted release point and deletes it again.
        for path in doomed {
            fs::remove_file(&path).map_err(JournalError::io(&path, "unlink"))?;
        }
        Ok(())
    }

    /// `(volume, kind, offset, len)` of every held record with seq >= `from`, in order:
    /// folds an unsent journal into the dirty bitmaps when the link breaks. Records
    /// released meanwhile are skipped (the remote has them).
    pub fn extents_from(&self, from: u64) -> Result<Vec<Extent>> {
        let mut out = Vec::new();
        let mut seq = from;
        loop {
            seq = seq.max(self.first_seq());
            let batch = match self.read_batch(seq, 8 << 20) {
                Err(e) if e.code() == "E_RANGE" => continue,
                other => other?,
            };
            if batch.count == 0 {
                return Ok(out);
            }
            for rec in format::decode_batch(&batch.bytes)? {
                out.push(Extent { seq: rec.seq, volume: rec.volume, kind: rec.kind, offset: rec.offset, len: rec.len });
            }
            seq = batch.last + 1;
        }
    }

    /// Drops every record; the next append gets `next` (>= `next_seq()`, else
    /// `E_RANGE`). Durable: the new floor is persisted before any segment is deleted.
    pub fn reset(&self, next: u64) -> Result<()> {
        self.check_poison()?;
        let mut m = lock(&self.meta);
        // Held across the reset: appends must not slip between the check and the drop.
        let mut g = lock(&self.inner);
        if next < g.next || next == u64::MAX {
            return Err(JournalError::range(format!("reset to seq {next}, but the next is already {}", g.next)));
        }
        let new = JournalState { released: next - 1, floor: next, epoch: m.epoch };
        state::store(&self.dir, &*self.io, &new)?;
        *m = new;
        let doomed: Vec<PathBuf> = g.segments.drain(..).map(|s| s.path).collect();
        g.next = next;
        g.released = next - 1;
        g.held_bytes = 0;
        self.last.store(next - 1, Ordering::SeqCst);
        drop(g);
        {
            let mut s = lock(&self.sync);
            s.synced = s.synced.max(next - 1);
            self.sync_done.notify_all();
        }
        for path in doomed {
            fs::remove_file(&path).map_err(JournalError::io(&path, "unlink"))?;
        }
        self.wake();
        Ok(())
    }

    fn notify_appended(&self) {
        // Only touch the condvar when someone waits: a futex wake per append would cost
        // more than the append. Pairs with the SeqCst increment in `wait_appended`.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = lock(&self.wait_lock);
            self.wait_cv.notify_all();
        }
    }

    /// Wakes every [`wait_appended`](Self::wait_appended) caller now (e.g. to stop a shipper).
    pub fn wake(&self) {
        let mut g = lock(&self.wait_lock);
        *g += 1;
        self.wait_cv.notify_all();
    }

    /// Blocks until `last_seq() > seq`, a [`wake`](Self::wake), or `timeout`; returns
    /// `last_seq()`. The shipper waits on this instead of polling.
    pub fn wait_appended(&self, seq: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut g = lock(&self.wait_lock);
        let woken = *g;
        self.waiters.fetch_add(1, Ordering::SeqCst);
        loop {
            let last = self.last.load(Ordering::SeqCst);
            let now = Instant::now();
            if last > seq || *g != woken || now >= deadline {
                self.waiters.fetch_sub(1, Ordering::SeqCst);
                return last;
            }
            g = self.wait_cv.wait_timeout(g, deadline - now).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
        }
    }
}
