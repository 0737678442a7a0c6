//! One consistency group's write path: its journal, its members' dirty bitmaps and its
//! mode, and the rule that orders each change with its record.

use crate::error::{ReplicaError, Result};
use plexus_bitmap::DurableBitmap;
use plexus_journal::{Journal, RecordKind, RecordRef};
use plexus_mirror::RegionLocks;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

/// How the group records changes now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaMode {
    /// Journaled; acknowledged after the local commit and the append (PAIR, COPY).
    Async,
    /// Journaled; acknowledged once the remote applied the record (003 Fig. 4).
    Sync,
    /// Marked in the dirty bitmaps (PSUS, PSUE): the link is down or the pair split.
    Track,
}

/// What a change does to the volume.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    /// New bytes.
    Write(&'a [u8]),
    /// The range reads as zeroes from now on (`punch`: it may be deallocated).
    Zeroes {
        /// Whether the range may be deallocated.
        punch: bool,
    },
}

/// One member volume.
pub(crate) struct Member {
    pub(crate) bitmap: Arc<DurableBitmap>,
    /// A change's record and its local commit are ordered together per region, so the
    /// remote applies overlapping writes in the order the local volume saw them.
    pub(crate) locks: RegionLocks,
}

#[derive(Default)]
struct Acks {
    applied: u64,
    durable: u64,
}

/// A consistency group's write path.
pub struct ReplicaGroup {
    journal: Arc<Journal>,
    members: RwLock<HashMap<u32, Arc<Member>>>,
    mode: RwLock<ReplicaMode>,
    acks: Mutex<Acks>,
    acked: Condvar,
    sync_timeout_ms: AtomicU64,
    events: Mutex<Vec<String>>,
    /// Held by a resync step from its first append to the clearing of its bits, and by
    /// a suspension while it folds: a fold never falls between a step's append and its
    /// clear (which would lose the regions the fold marked). Never taken while holding a
    /// region lock.
    pub(crate) copy_gate: Mutex<()>,
    /// Changes between their append and their local commit, by the journal's last
    /// sequence number when each began (its record is newer): how far a release may go.
    inflight: Mutex<std::collections::BTreeMap<u64, u32>>,
}

/// A change between its append and its local commit (see `ReplicaGroup::release_durable`).
struct Inflight<'a> {
    group: &'a ReplicaGroup,
    since: u64,
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        let mut m = lock(&self.group.inflight);
        if let Some(n) = m.get_mut(&self.since) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.since);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every guarded value is updated in one assignment: a poisoned lock holds a whole one.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ReplicaGroup {
    /// A group over `journal` with `members` (volume id, its dirty bitmap), in `mode`.
    pub fn new(journal: Arc<Journal>, members: Vec<(u32, Arc<DurableBitmap>)>, mode: ReplicaMode) -> Self {
        let members = members
            .into_iter()
            .map(|(id, bitmap)| {
                let g = bitmap.bitmap().granularity();
                (id, Arc::new(Member { bitmap, locks: RegionLocks::new(g) }))
            })
            .collect();
        ReplicaGroup {
            journal,
            members: RwLock::new(members),
            mode: RwLock::new(mode),
            acks: Mutex::new(Acks::default()),
            acked: Condvar::new(),
            sync_timeout_ms: AtomicU64::new(10_000),
            events: Mutex::new(Vec::new()),
            copy_gate: Mutex::new(()),
            inflight: Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    /// The group's journal.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// The mode now.
    pub fn mode(&self) -> ReplicaMode {
        *self.mode.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Switches between the journaled modes, or to Track; leaving Track (a resync) is
    /// the caller's: the bitmaps then name what the resync must still copy.
    pub fn set_mode(&self, mode: ReplicaMode) {
        *self.mode.write().unwrap_or_else(|p| p.into_inner()) = mode;
        self.wake_waiters();
    }

    /// Wakes synchronous writes to look at the mode again. Through the acks lock: a
    /// waiter between its look and its wait holds it, so the wake cannot fall between.
    fn wake_waiters(&self) {
        drop(lock(&self.acks));
        self.acked.notify_all();
    }

    /// How long a synchronous write waits for the remote before the group suspends.
    pub fn set_sync_timeout(&self, timeout: Duration) {
        self.sync_timeout_ms.store(timeout.as_millis().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// The remote's newest applied and durably applied sequence numbers, as it reported them.
    pub fn acknowledge(&self, applied: u64, durable: u64) {
        let mut a = lock(&self.acks);
        a.applied = a.applied.max(applied);
        a.durable = a.durable.max(durable);
        drop(a);
        self.acked.notify_all();
    }

    /// (applied, durable) as last acknowledged.
    pub fn acknowledged(&self) -> (u64, u64) {
        let a = lock(&self.acks);
        (a.applied, a.durable)
    }

    fn enter_inflight(&self) -> Inflight<'_> {
        let mut m = lock(&self.inflight);
        let since = self.journal.last_seq();
        *m.entry(since).or_insert(0) += 1;
        Inflight { group: self, since }
    }

    /// Releases the journal up to `durable` (the remote's durable point), but never past
    /// a record whose change is not yet committed locally: that record is what a restart
    /// after a crash replays locally (`redo`). Returns the point released to.
    pub fn release_durable(&self, durable: u64) -> Result<u64> {
        let floor = lock(&self.inflight).keys().next().copied();
        let upto = floor.map_or(durable, |f| durable.min(f)).min(self.journal.last_seq());
        if upto >= self.journal.first_seq() {
            self.journal.release(upto)?;
        }
        Ok(upto)
    }

    /// Replays every record the journal holds onto the members' volumes, in sequence
    /// order (`targets`: their write paths, not replicated), then syncs them. After a
    /// crash of the owner between a record's append and its local commit, this makes the
    /// local volumes hold what the remote will: every held record is newer than the last
    /// fold and was appended before its change, so the replay ends in the same bytes.
    /// Returns (records, bytes) replayed.
    pub fn redo(&self, targets: &HashMap<u32, Arc<dyn plexus_journal::ApplyTarget>>) -> Result<(u64, u64)> {
        let (mut records, mut bytes) = (0u64, 0u64);
        let mut from = self.journal.first_seq();
        let io = |e: std::io::Error| ReplicaError::State { detail: format!("replaying the journal: {e}") };
        loop {
            let batch = self.journal.read_batch(from, 8 << 20)?;
            if batch.count == 0 {
                break;
            }
            for r in plexus_journal::decode_batch(&batch.bytes)? {
                let t = targets.get(&r.volume).ok_or_else(|| ReplicaError::State {
                    detail: format!("the journal names volume {}, which is not a member", r.volume),
                })?;
                match r.kind {
                    RecordKind::Write => t.write(r.offset, r.data).map_err(io)?,
                    RecordKind::Zeroes => t.write_zeroes(r.offset, r.len, false).map_err(io)?,
                    RecordKind::Punch => t.write_zeroes(r.offset, r.len, true).map_err(io)?,
                }
                records += 1;
                bytes += r.len;
            }
            from = batch.last + 1;
        }
        for t in targets.values() {
            t.sync().map_err(io)?;
        }
        Ok((records, bytes))
    }

    /// Forgets acknowledgements (a new epoch: the remote's numbering restarts at the journal's next seq - 1).
    pub fn reset_acks(&self, base: u64) {
        *lock(&self.acks) = Acks { applied: base, durable: base };
        self.acked.notify_all();
    }

    /// What happened that the owner should log (a suspension and why), oldest first.
    pub fn take_events(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.events))
    }

    /// Dirty bytes of member `volume`'s bitmap.
    pub fn dirty_bytes(&self, volume: u32) -> Result<u64> {
        Ok(self.member(volume)?.bitmap.bitmap().dirty_bytes())
    }

    /// Member `volume`'s bitmap words (a reverse resync sends them to the other site).
    pub fn bitmap_words(&self, volume: u32) -> Result<Vec<u64>> {
        Ok(self.member(volume)?.bitmap.bitmap().snapshot_words())
    }

    /// Marks what `words` marks in member `volume` (durably); bits newly set.
    pub fn merge_words(&self, volume: u32, words: &[u64]) -> Result<u64> {
        Ok(self.member(volume)?.bitmap.merge_words(words)?)
    }

    /// Marks all of member `volume` (a full copy).
    pub fn mark_all(&self, volume: u32) -> Result<()> {
        self.member(volume)?.bitmap.mark_all()?;
        Ok(())
    }

    /// Marks `[offset, offset+len)` of member `volume` (durably).
    pub fn mark(&self, volume: u32, offset: u64, len: u64) -> Result<()> {
        self.member(volume)?.bitmap.mark_range(offset, len)?;
        Ok(())
    }

    /// Clears member `volume`'s bitmap (durably).
    pub fn clear_all(&self, volume: u32) -> Result<()> {
        self.member(volume)?.bitmap.clear()?;
        Ok(())
    }

    /// Member `volume`'s coalesced dirty runs (offset, len), at most `max`.
    pub fn runs(&self, volume: u32, max: usize) -> Result<Vec<(u64, u64)>> {
        Ok(self.member(volume)?.bitmap.bitmap().runs().take(max).map(|r| (r.offset, r.len)).collect())
    }

    /// Adds member `volume` (a volume joining the group; its bitmap names what its
    /// initial copy must still send). E_STATE if the id is taken.
    pub fn add_member(&self, volume: u32, bitmap: Arc<DurableBitmap>) -> Result<()> {
        let mut members = self.members.write().unwrap_or_else(|p| p.into_inner());
        if members.contains_key(&volume) {
            return Err(ReplicaError::State { detail: format!("volume {volume} is already a member of the group") });
        }
        let g = bitmap.bitmap().granularity();
        members.insert(volume, Arc::new(Member { bitmap, locks: RegionLocks::new(g) }));
        Ok(())
    }

    pub(crate) fn member(&self, volume: u32) -> Result<Arc<Member>> {
        let members = self.members.read().unwrap_or_else(|p| p.into_inner());
        members.get(&volume).cloned().ok_or_else(|| ReplicaError::State { detail: format!("volume {volume} is not a member of the group") })
    }

    /// Applies one change: `local` commits it to the volume (and its local mirrors). In
    /// a journaled mode the record is appended first, then the local commit; in Track
    /// the bitmap mark is durable first. Both happen under the region's lock, so
    /// overlapping changes get sequence numbers in the order the volume saw them. A full
    /// journal or a failed append suspends the group (Track) instead of failing the
    /// write; a synchronous write waits for the remote's acknowledgement, and suspends
    /// the group when it does not come in time.
    pub fn change<E: From<ReplicaError>>(
        &self,
        volume: u32,
        offset: u64,
        len: u64,
        change: Change<'_>,
        local: impl FnOnce() -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let m = self.member(volume)?;
        // Outside the member, a record could never be folded into its bitmap (and
        // would make every later suspension fail): refuse it before anything.
        let size = m.bitmap.bitmap().size();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            let detail = format!("change at offset {offset} len {len} of volume {volume} exceeds its size {size}");
            return Err(ReplicaError::Bitmap(plexus_bitmap::BitmapError::Range { detail }).into());
        }
        let region = m.locks.lock(offset, len);
        let mut _inflight = None;
        let mode = self.mode.read().unwrap_or_else(|p| p.into_inner());
        let current = *mode;
        let journaled = match current {
            ReplicaMode::Track => {
                m.bitmap.mark_range(offset, len).map_err(ReplicaError::from)?;
                None
            }
            sync_or_async => {
                // Registered before the append: the record this change gets is newer than
                // the journal's last now, and no release may pass it until the local
                // commit is done (a tracked change has no record to keep).
                _inflight = Some(self.enter_inflight());
                let (kind, data) = match change {
                    Change::Write(d) => (RecordKind::Write, d),
                    Change::Zeroes { punch: false } => (RecordKind::Zeroes, &[][..]),
                    Change::Zeroes { punch: true } => (RecordKind::Punch, &[][..]),
                };
                match self.journal.append(&RecordRef { seq: 0, volume, kind, offset, len, data }) {
                    Ok(seq) => Some((seq, sync_or_async == ReplicaMode::Sync)),
                    Err(e) => {
                        drop(mode);
                        // Suspending takes the copy gate, which a resync step holds
                        // while it waits for region locks: let go of ours first. Once
                        // tracked, the order of overlapping changes no longer matters.
                        drop(region);
                        let why = if e.code() == "E_FULL" { format!("journal full ({e})") } else { format!("journal append failed: {e}") };
                        self.suspend(&why)?;
                        m.bitmap.mark_range(offset, len).map_err(ReplicaError::from)?;
                        return local();
                    }
                }
            }
        };
        drop(mode);
        local()?;
        drop(region);
        if let Some((seq, true)) = journaled {
            if !self.wait_applied(seq) {
                self.suspend(&format!("the remote did not apply sequence {seq} within the synchronous timeout"))?;
            }
        }
        Ok(())
    }

    /// Waits until the remote applied `seq` (true), or the timeout passed (false). A
    /// group suspended meanwhile folded the record into a bitmap: true, nothing to wait for.
    fn wait_applied(&self, seq: u64) -> bool {
        let deadline = Instant::now() + Duration::from_millis(self.sync_timeout_ms.load(Ordering::Relaxed));
        let mut a = lock(&self.acks);
        loop {
            if a.applied >= seq || self.mode() == ReplicaMode::Track {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            a = self.acked.wait_timeout(a, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Suspends the group (PSUE or PSUS): every journal record the remote has not made
    /// durable is folded into its member's bitmap, the journal is emptied and changes are
    /// tracked from now on. Returns the bytes folded. Idempotent.
    pub fn suspend(&self, why: &str) -> Result<u64> {
        let _gate = lock(&self.copy_gate);
        // Read before taking the mode: wait_applied holds the acks while it reads the
        // mode, so waiting for the acks while holding the mode can deadlock. An older
        // `durable` only folds more (a superset is safe: copied again).
        let durable = lock(&self.acks).durable;
        let mut mode = self.mode.write().unwrap_or_else(|p| p.into_inner());
        if *mode == ReplicaMode::Track {
            return Ok(0);
        }
        let from = (durable + 1).max(self.journal.first_seq());
        let mut folded = 0u64;
        for e in self.journal.extents_from(from)? {
            self.member(e.volume)?.bitmap.mark_range(e.offset, e.len)?;
            folded += e.len;
        }
        // The marks are durable (mark_range returns once logged): only now may the
        // records go.
        self.journal.reset(self.journal.next_seq())?;
        *mode = ReplicaMode::Track;
        drop(mode);
        lock(&self.events).push(format!("suspended: {why}; {folded} bytes of unsent journal folded into the dirty bitmaps"));
        self.wake_waiters();
        Ok(folded)
    }
}
