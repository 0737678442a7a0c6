//! Remote replication as JavaScript classes: a consistency group's write path and
//! journal (`NativeReplicaGroup`, at the primary site) and the sequenced applier
//! (`NativeApplier`, at the remote site). The link and the shipping loop are
//! TypeScript (src/remote/); the bytes never leave Rust except as whole batches.

use crate::error::{coded, guard, to_js, Coded};
use crate::nbd::NativePlex;
use crate::volume::NativeVolume;
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;
use plexus_bitmap::DurableBitmap;
use plexus_export::Plex;
use plexus_journal::{Applier, ApplyTarget, Journal, JournalError, JournalOptions};
use plexus_replica::{ReplicaError, ReplicaGroup, ReplicaMode};
use plexus_volume::BlockDevice;
use std::path::PathBuf;
use std::sync::Arc;

impl Coded for JournalError {
    fn stable_code(&self) -> &'static str {
        self.code()
    }
}

impl Coded for ReplicaError {
    fn stable_code(&self) -> &'static str {
        self.code()
    }
}

/// One member volume of a group.
#[napi(object)]
pub struct ReplicaMember {
    /// Its id within the group (records name it).
    pub id: u32,
    /// Its dirty-bitmap sidecar (created if absent).
    pub bitmap: String,
    /// The volume's size in bytes.
    pub size: f64,
    /// Bytes per bit.
    pub granularity: f64,
}

/// How a group is opened.
#[napi(object)]
pub struct ReplicaGroupOptions {
    /// The journal's directory.
    pub journal: String,
    /// Most bytes the journal holds.
    pub capacity: f64,
    /// Bytes per journal segment file (default 64 MiB).
    pub segment_bytes: Option<f64>,
    /// The members.
    pub members: Vec<ReplicaMember>,
    /// `async`, `sync` or `track`.
    pub mode: String,
}

/// What the journal holds.
#[napi(object)]
pub struct JournalStats {
    /// Oldest held sequence number (next when empty).
    pub first: f64,
    /// Newest appended (0: none yet).
    pub last: f64,
    /// Records held.
    pub records: f64,
    /// Bytes held.
    pub bytes: f64,
}

/// What one resync step copied.
#[napi(object)]
pub struct ReplicaCopyStep {
    /// Where the next step starts.
    pub next: f64,
    /// Bytes of dirty regions appended.
    pub bytes: f64,
    /// Of them, bytes sent as data (the rest as holes).
    pub data_bytes: f64,
    /// Records appended.
    pub records: f64,
    /// No dirty region left in this member.
    pub done: bool,
}

fn mode_of(s: &str) -> napi::Result<ReplicaMode> {
    match s {
        "async" => Ok(ReplicaMode::Async),
        "sync" => Ok(ReplicaMode::Sync),
        "track" => Ok(ReplicaMode::Track),
        _ => Err(coded("E_INVALID", format!("replication mode must be async, sync or track, not '{s}'"))),
    }
}

fn mode_name(m: ReplicaMode) -> &'static str {
    match m {
        ReplicaMode::Async => "async",
        ReplicaMode::Sync => "sync",
        ReplicaMode::Track => "track",
    }
}

/// A consistency group's replicated write path and journal.
#[napi]
pub struct NativeReplicaGroup {
    pub(crate) inner: Arc<ReplicaGroup>,
}

#[napi]
impl NativeReplicaGroup {
    /// Opens the group's journal (recovering what a crash left) and its members' bitmaps.
    #[napi(factory, catch_unwind)]
    pub fn open(opts: ReplicaGroupOptions) -> napi::Result<Self> {
        let capacity = crate::args::to_u64("capacity", opts.capacity)?;
        let mut jopts = JournalOptions::new(capacity);
        if let Some(s) = opts.segment_bytes {
            jopts.segment_bytes = crate::args::to_u64("segmentBytes", s)?;
        }
        let journal = Journal::open_with(&PathBuf::from(&opts.journal), jopts).map_err(to_js)?;
        let mut members = Vec::with_capacity(opts.members.len());
        for m in &opts.members {
            let (size, g) = crate::args::bitmap_geometry(m.size, m.granularity)?;
            let b = DurableBitmap::open_or_create(&m.bitmap, size, g, true).map_err(to_js)?;
            members.push((m.id, Arc::new(b)));
        }
        Ok(NativeReplicaGroup { inner: Arc::new(ReplicaGroup::new(Arc::new(journal), members, mode_of(&opts.mode)?)) })
    }

    /// Adds member `m` (a volume joining the group).
    #[napi(catch_unwind)]
    pub fn add_member(&self, m: ReplicaMember) -> napi::Result<()> {
        let (size, g) = crate::args::bitmap_geometry(m.size, m.granularity)?;
        let b = DurableBitmap::open_or_create(&m.bitmap, size, g, true).map_err(to_js)?;
        self.inner.add_member(m.id, Arc::new(b)).map_err(to_js)
    }

    /// Routes `plex`'s changes through the group as member `id`.
    #[napi(catch_unwind)]
    pub fn attach(&self, plex: &NativePlex, id: u32) {
        plex.inner.set_replica(Some((self.inner.clone(), id)));
    }

    /// Stops routing `plex`'s changes through any group.
    #[napi(catch_unwind)]
    pub fn detach(&self, plex: &NativePlex) {
        plex.inner.set_replica(None);
    }

    /// `async`, `sync` or `track`.
    #[napi(getter)]
    pub fn mode(&self) -> String {
        mode_name(self.inner.mode()).to_string()
    }

    /// Switches mode (`track` without folding: use `suspend` for a link failure or split).
    #[napi(catch_unwind)]
    pub fn set_mode(&self, mode: String) -> napi::Result<()> {
        self.inner.set_mode(mode_of(&mode)?);
        Ok(())
    }

    /// How long a synchronous write waits for the remote.
    #[napi(catch_unwind)]
    pub fn set_sync_timeout(&self, ms: f64) -> napi::Result<()> {
        self.inner.set_sync_timeout(crate::args::millis("syncTimeout", ms)?);
        Ok(())
    }

    /// The remote's newest applied and durable sequence numbers.
    #[napi(catch_unwind)]
    pub fn acknowledge(&self, applied: f64, durable: f64) -> napi::Result<()> {
        self.inner.acknowledge(crate::args::to_u64("applied", applied)?, crate::args::to_u64("durable", durable)?);
        Ok(())
    }

    /// Restarts the acknowledged numbers at `base` (a new epoch).
    #[napi(catch_unwind)]
    pub fn reset_acks(&self, base: f64) -> napi::Result<()> {
        self.inner.reset_acks(crate::args::to_u64("base", base)?);
        Ok(())
    }

    /// [applied, durable] as last acknowledged.
    #[napi(catch_unwind)]
    pub fn acknowledged(&self) -> Vec<f64> {
        let (a, d) = self.inner.acknowledged();
        vec![a as f64, d as f64]
    }

    /// Folds the unsent journal into the bitmaps and tracks from now on; bytes folded.
    #[napi(catch_unwind)]
    pub fn suspend(&self, why: String) -> napi::Result<f64> {
        Ok(self.inner.suspend(&why).map_err(to_js)? as f64)
    }

    /// Suspensions that happened in the write path (journal full, sync timeout), oldest first.
    #[napi(catch_unwind)]
    pub fn take_events(&self) -> Vec<String> {
        self.inner.take_events()
    }

    /// What the journal holds.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> JournalStats {
        let j = self.inner.journal();
        JournalStats {
            first: j.first_seq() as f64,
            last: j.last_seq() as f64,
            records: j.held_records() as f64,
            bytes: j.held_bytes() as f64,
        }
    }

    /// Releases up to the remote's durable point, never past a change not yet committed
    /// locally; the point released to.
    #[napi(catch_unwind)]
    pub fn release_durable(&self, durable: f64) -> napi::Result<f64> {
        Ok(self.inner.release_durable(crate::args::to_u64("durable", durable)?).map_err(to_js)? as f64)
    }

    /// Replays the held journal onto the members' write paths (`plexes[i]` is member
    /// `ids[i]`), not replicated: after a crash of the owner. [records, bytes] replayed.
    #[napi(catch_unwind)]
    pub fn redo(&self, ids: Vec<u32>, plexes: Vec<&NativePlex>) -> napi::Result<Vec<f64>> {
        if ids.len() != plexes.len() {
            return Err(coded("E_INVALID", "one member id per write path"));
        }
        let targets: std::collections::HashMap<u32, Arc<dyn ApplyTarget>> =
            ids.iter().zip(plexes.iter()).map(|(id, p)| (*id, Arc::new(PlexTarget(p.inner.clone())) as Arc<dyn ApplyTarget>)).collect();
        let (r, b) = self.inner.redo(&targets).map_err(to_js)?;
        Ok(vec![r as f64, b as f64])
    }

    /// One resync step of member `id`, reading `volume`, off the JS thread.
    #[napi(ts_return_type = "Promise<ReplicaCopyStep>", catch_unwind)]
    pub fn copy_step(
        &self,
        id: u32,
        volume: &NativeVolume,
        from: f64,
        max_bytes: f64,
        budget: f64,
    ) -> napi::Result<AsyncTask<CopyStepTask>> {
        Ok(AsyncTask::new(CopyStepTask {
            group: self.inner.clone(),
            id,
            source: volume.inner.clone(),
            from: crate::args::to_u64("from", from)?,
            max: crate::args::to_u64("maxBytes", max_bytes)?,
            budget: crate::args::to_u64("budget", budget)?,
        }))
    }

    /// Dirty bytes of member `id`.
    #[napi(catch_unwind)]
    pub fn dirty_bytes(&self, id: u32) -> napi::Result<f64> {
        Ok(self.inner.dirty_bytes(id).map_err(to_js)? as f64)
    }

    /// Member `id`'s dirty words (for a reverse resync: the other site merges them).
    #[napi(catch_unwind)]
    pub fn dirty_words(&self, id: u32) -> napi::Result<Buffer> {
        let words = self.inner.bitmap_words(id).map_err(to_js)?;
        Ok(words.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>().into())
    }

    /// Marks in member `id` every granule `words` (little-endian u64s) marks; bytes newly dirty.
    #[napi(catch_unwind)]
    pub fn merge_dirty(&self, id: u32, words: Buffer) -> napi::Result<f64> {
        if !words.len().is_multiple_of(8) {
            return Err(coded("E_PROTOCOL", "dirty words must be a multiple of 8 bytes"));
        }
        let w: Vec<u64> = words.chunks_exact(8).map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect();
        Ok(self.inner.merge_words(id, &w).map_err(to_js)? as f64)
    }

    /// Marks all of member `id` dirty (a full copy).
    #[napi(catch_unwind)]
    pub fn mark_all(&self, id: u32) -> napi::Result<()> {
        self.inner.mark_all(id).map_err(to_js)
    }

    /// Clears member `id`'s bitmap (durably).
    #[napi(catch_unwind)]
    pub fn clear_dirty(&self, id: u32) -> napi::Result<()> {
        self.inner.clear_all(id).map_err(to_js)
    }

    /// Coalesced dirty runs of member `id` as [offset, length] pairs, at most `max` of them.
    #[napi(catch_unwind)]
    pub fn dirty_runs(&self, id: u32, max: u32) -> napi::Result<Vec<Vec<f64>>> {
        Ok(self.inner.runs(id, max as usize).map_err(to_js)?.into_iter().map(|(o, l)| vec![o as f64, l as f64]).collect())
    }
}

/// `copyStep` on the libuv pool.
pub struct CopyStepTask {
    group: Arc<ReplicaGroup>,
    id: u32,
    source: Arc<dyn BlockDevice>,
    from: u64,
    max: u64,
    budget: u64,
}

impl Task for CopyStepTask {
    type Output = plexus_replica::CopyStep;
    type JsValue = ReplicaCopyStep;
    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard(|| self.group.copy_step(self.id, self.source.as_ref(), self.from, self.max, self.budget).map_err(to_js))
    }
    fn resolve(&mut self, _env: Env, s: Self::Output) -> napi::Result<ReplicaCopyStep> {
        Ok(ReplicaCopyStep {
            next: s.next as f64,
            bytes: s.bytes as f64,
            data_bytes: s.data_bytes as f64,
            records: s.records as f64,
            done: s.done,
        })
    }
}

/// A remote volume as the applier's target: its write path without replication or fence.
struct PlexTarget(Arc<Plex>);

fn io_err(e: plexus_export::plex::PlexError) -> std::io::Error {
    std::io::Error::other(format!("{}: {e}", e.code()))
}

impl ApplyTarget for PlexTarget {
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write_local(offset, data).map_err(io_err)
    }
    fn write_zeroes(&self, offset: u64, len: u64, punch: bool) -> std::io::Result<()> {
        self.0.write_zeroes_local(offset, len, punch).map_err(io_err)
    }
    fn sync(&self) -> std::io::Result<()> {
        self.0.flush().map_err(io_err)
    }
}

/// The sequenced applier of one group at the remote site.
#[napi]
pub struct NativeApplier {
    pub(crate) inner: Arc<Applier>,
}

#[napi]
impl NativeApplier {
    /// Opens the applier whose durable state is at `state`, applying to `plexes[i]` as member `ids[i]`.
    #[napi(factory, catch_unwind)]
    pub fn open(state: String, ids: Vec<u32>, plexes: Vec<&NativePlex>, window: f64) -> napi::Result<Self> {
        if ids.len() != plexes.len() {
            return Err(coded("E_INVALID", "one member id per target volume"));
        }
        let targets: Vec<(u32, Arc<dyn ApplyTarget>)> =
            ids.iter().zip(plexes.iter()).map(|(id, p)| (*id, Arc::new(PlexTarget(p.inner.clone())) as Arc<dyn ApplyTarget>)).collect();
        let a = Applier::open(&PathBuf::from(state), targets, crate::args::to_u64("window", window)?).map_err(to_js)?;
        Ok(NativeApplier { inner: Arc::new(a) })
    }

    /// Syncs the targets and records the applied seq durably, off the JS thread; the durable seq.
    #[napi(ts_return_type = "Promise<number>", catch_unwind)]
    pub fn commit(&self) -> AsyncTask<CommitTask> {
        AsyncTask::new(CommitTask { applier: self.inner.clone() })
    }

    /// Newest applied seq.
    #[napi(getter)]
    pub fn applied(&self) -> f64 {
        self.inner.applied() as f64
    }

    /// Newest durably applied seq.
    #[napi(getter)]
    pub fn durable(&self) -> f64 {
        self.inner.durable() as f64
    }

    /// The epoch recorded with the state.
    #[napi(getter)]
    pub fn epoch(&self) -> f64 {
        self.inner.epoch() as f64
    }

    /// Restarts the sequence: the next record expected is `seq + 1`, in `epoch`. Durable.
    #[napi(catch_unwind)]
    pub fn reset(&self, seq: f64, epoch: f64) -> napi::Result<()> {
        self.inner.reset_epoch(crate::args::to_u64("seq", seq)?, crate::args::to_u64("epoch", epoch)?).map_err(to_js)
    }

    /// Holds later batches back (from the link and the data channel alike) until
    /// `resume`; returns once none is being applied.
    #[napi(catch_unwind)]
    pub fn pause(&self) {
        self.inner.pause();
    }

    /// Lets batches be applied again after `pause`.
    #[napi(catch_unwind)]
    pub fn resume(&self) {
        self.inner.resume();
    }

    /// [records, bytes] buffered out of order.
    #[napi(catch_unwind)]
    pub fn buffered(&self) -> Vec<f64> {
        let (r, b) = self.inner.buffered();
        vec![r as f64, b as f64]
    }
}

/// `commit` on the libuv pool.
pub struct CommitTask {
    applier: Arc<Applier>,
}

impl Task for CommitTask {
    type Output = u64;
    type JsValue = f64;
    fn compute(&mut self) -> napi::Result<u64> {
        guard(|| self.applier.commit().map_err(to_js))
    }
    fn resolve(&mut self, _env: Env, v: u64) -> napi::Result<f64> {
        Ok(v as f64)
    }
}
