//! Operations that move a pair between modes: split (alone or as a consistency group),
//! resync (differential, full, reverse) and the background fill of an instant split.

use crate::error::{MirrorError, Result};
use crate::mirror::{Mirror, Mode, Quiesced};
use plexus_bitmap::ByteRange;
use plexus_copy::{copy_stream_with, ChunkHook, CopyControl, CopyOptions, CopyReport};
use plexus_volume::{BlockDevice, VolumeError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

/// Copy direction of a resync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Primary to secondary.
    Forward,
    /// Secondary to primary (restore).
    Reverse,
}

/// A durable checkpoint of resync progress is taken after this many bytes of data copied.
const CHECKPOINT_BYTES: u64 = 64 << 20;

impl Quiesced<'_> {
    /// The current mode.
    pub fn mode(&self) -> Mode {
        *self.mode
    }

    /// Splits a duplexing pair: from here on the secondary is an independent image
    /// as of this instant (no write is in flight while `self` is held).
    pub fn split(&mut self) -> Result<()> {
        let m = self.mirror;
        if *self.mode != Mode::Duplex {
            return Err(MirrorError::State { detail: format!("pair {} is already split", m.primary.label()) });
        }
        m.refuse_if_suspended()?;
        m.primary.flush()?;
        m.secondary.flush()?;
        // Bits set while duplexing only guarded against a crash between the two
        // writes of one duplexed write; every such write has finished, so they are stale.
        m.p_dirty.clear()?;
        m.s_dirty.clear()?;
        *self.mode = Mode::Track;
        Ok(())
    }

    /// Sets the mode directly (a pair reopened after a restart, a failure to PSUE).
    pub fn set_mode(&mut self, mode: Mode) {
        *self.mode = mode;
    }
}

/// Splits several pairs at one write boundary: all are quiesced before any is split,
/// so a write that depends on another (to a different volume) cannot land on one side
/// of the split while the write it depends on lands on the other.
pub fn split_group(mirrors: &[&Mirror]) -> Result<()> {
    let mut held: Vec<Quiesced<'_>> = Vec::with_capacity(mirrors.len());
    for (i, m) in mirrors.iter().enumerate() {
        if mirrors.iter().take(i).any(|o| std::ptr::eq(*o, *m)) {
            continue;
        }
        held.push(m.quiesce());
    }
    if let Some(q) = held.iter().find(|q| q.mode() != Mode::Duplex) {
        return Err(MirrorError::State { detail: format!("pair {} is already split", q.mirror.primary.label()) });
    }
    for q in held.iter() {
        q.mirror.refuse_if_suspended()?;
    }
    for q in held.iter_mut() {
        q.split()?;
    }
    Ok(())
}

/// Clears bits behind the copy and checkpoints progress durably.
struct ResyncHook<'a> {
    mirror: &'a Mirror,
    dst: &'a dyn BlockDevice,
    checkpoint: RwLock<()>,
    since: AtomicU64,
    failure: Mutex<Option<MirrorError>>,
}

impl ResyncHook<'_> {
    /// Data first, then the cleared bits: a crash between the two only recopies. The
    /// bitmap's checkpoint logs only the ranges cleared since the last one (one sync), so
    /// a checkpoint costs what was copied, not the size of the bitmap.
    fn checkpoint(&self) -> Result<()> {
        let _all = self.checkpoint.write().unwrap_or_else(|p| p.into_inner());
        self.dst.flush()?;
        self.mirror.p_dirty.checkpoint()?;
        Ok(())
    }

    fn stash(&self, e: MirrorError) -> VolumeError {
        let msg = e.to_string();
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(e);
        }
        VolumeError::Busy { volume: self.mirror.primary.label().to_owned(), detail: msg }
    }
}

impl ChunkHook for ResyncHook<'_> {
    fn around(&self, chunk: ByteRange, copy: &mut dyn FnMut() -> plexus_volume::Result<u64>) -> plexus_volume::Result<()> {
        // Only data counts towards a checkpoint: a hole costs nothing to copy again after
        // a crash, so a thin volume's holes never pay a snapshot's syncs (256 of them for
        // a 16 GiB volume holding 64 MiB, before).
        let data = {
            let _ckpt = self.checkpoint.read().unwrap_or_else(|p| p.into_inner());
            let _region = self.mirror.locks.lock(chunk.offset, chunk.len);
            let data = copy()?;
            self.mirror.p_dirty.clear_range_in_memory(chunk.offset, chunk.len).map_err(|e| self.stash(e.into()))?;
            data
        };
        if self.since.fetch_add(data, Ordering::Relaxed) + data >= CHECKPOINT_BYTES {
            self.since.store(0, Ordering::Relaxed);
            self.checkpoint().map_err(|e| self.stash(e))?;
        }
        Ok(())
    }
}

/// Chunk size for copies over a bitmap: whole granules, never less than the default.
fn chunk_for(m: &Mirror, opts: &CopyOptions) -> CopyOptions {
    let g = m.granularity;
    let chunk = opts.chunk_size.max(g).div_ceil(g) * g;
    // A resync or fill reads the live primary in bulk: its page cache is left as the
    // application made it (Volume::uncache says what a bulk read would leave behind).
    CopyOptions { chunk_size: chunk, sync: false, threads: opts.threads, max_rate: opts.max_rate, uncache_source: true }
}

impl Mirror {
    /// Resynchronises the pair: copies the union of both sides' dirty regions (all of
    /// the volume with `full`) in `direction`, with writes duplexed meanwhile. Also
    /// resumes an interrupted initial copy or resync: the bits still set are what is
    /// left. Progress is checkpointed durably every 64 MiB.
    pub fn resync(&self, direction: Direction, full: bool, opts: &CopyOptions, ctl: &CopyControl) -> Result<CopyReport> {
        {
            let mut q = self.quiesce();
            // A resync is the retry of a suspended pair: its record of the divergence
            // is in the bitmaps, which the copy below works from.
            self.clear_failure();
            if full {
                self.p_dirty.mark_all()?;
            }
            self.p_dirty.merge_from(&self.s_dirty)?;
            if q.mode() == Mode::Instant {
                // Regions never filled hold whatever the secondary had before the pair.
                let unfilled: Vec<u64> = self.filled.bitmap().snapshot_words().iter().map(|w| !w).collect();
                self.p_dirty.merge_words(&unfilled)?;
            }
            // The union is durable before the secondary's own record of it is cleared (with
            // write intent it already is: marks and merges were durable when they returned).
            self.p_dirty.checkpoint()?;
            self.s_dirty.clear()?;
            q.set_mode(Mode::Duplex);
        }
        let (src, dst): (&dyn BlockDevice, &dyn BlockDevice) = match direction {
            Direction::Forward => (self.primary.as_ref(), self.secondary.as_ref()),
            Direction::Reverse => (self.secondary.as_ref(), self.primary.as_ref()),
        };
        let hook = ResyncHook { mirror: self, dst, checkpoint: RwLock::new(()), since: AtomicU64::new(0), failure: Mutex::new(None) };
        // The dirty runs are scanned a word at a time as the copy goes, never listed: the
        // plan's memory does not grow with the volume. Granules that duplexed writes mark
        // ahead of the scan are copied too (both sides already agree there; harmless).
        let view = self.p_dirty.bitmap();
        let result = copy_stream_with(src, dst, view.runs(), view.dirty_bytes(), &chunk_for(self, opts), ctl, &hook);
        // Keep what was copied even when the copy failed or was cancelled.
        let saved = hook.checkpoint();
        if let Some(e) = hook.failure.lock().ok().and_then(|mut f| f.take()) {
            return Err(e);
        }
        let report = result?;
        saved?;
        if let Some(f) = self.failure() {
            // A duplexed write failed while the copy ran: the pair is suspended again.
            return Err(MirrorError::Suspended {
                detail: format!("pair {} → {} was suspended (PSUE) during the resync: {f}", self.primary.label(), self.secondary.label()),
            });
        }
        Ok(report)
    }

    /// Fills an instant split's secondary in the background: every granule not yet
    /// preserved by a write is copied from the primary. When all are filled the pair
    /// becomes an ordinary split (`Track`). Cancellable; resumes where it stopped.
    pub fn fill(&self, opts: &CopyOptions, ctl: &CopyControl) -> Result<CopyReport> {
        if self.mode() != Mode::Instant {
            return Ok(CopyReport { bytes_copied: 0, chunks: 0, elapsed: Duration::ZERO, threads: 0 });
        }
        // What is left to fill: the clean runs of `filled`, scanned a word at a time as the
        // copy goes (granules filled meanwhile are skipped by the hook).
        let f = self.filled.bitmap();
        let hook = FillHook { mirror: self, failure: Mutex::new(None) };
        let (p, s) = (self.primary.as_ref(), self.secondary.as_ref());
        let result = copy_stream_with(p, s, f.clean_runs(), self.unfilled_bytes(), &chunk_for(self, opts), ctl, &hook);
        if let Some(e) = hook.failure.lock().ok().and_then(|mut f| f.take()) {
            return Err(e);
        }
        let report = result?;
        self.filled.flush()?;
        let mut q = self.quiesce();
        if q.mode() == Mode::Instant && self.unfilled_bytes() == 0 {
            q.set_mode(Mode::Track);
        }
        Ok(report)
    }
}

/// Fills chunk by chunk under the region lock, skipping granules a write already preserved.
struct FillHook<'a> {
    mirror: &'a Mirror,
    failure: Mutex<Option<MirrorError>>,
}

impl ChunkHook for FillHook<'_> {
    fn around(&self, chunk: ByteRange, _copy: &mut dyn FnMut() -> plexus_volume::Result<u64>) -> plexus_volume::Result<()> {
        // The generic copy would overwrite granules preserved since the plan was made
        // (they now differ from the primary), so the fill copies only what is unfilled.
        let mode = self.mirror.mode.read().unwrap_or_else(|p| p.into_inner());
        if *mode != Mode::Instant {
            return Ok(());
        }
        let _region = self.mirror.locks.lock(chunk.offset, chunk.len);
        self.mirror.fill_locked(chunk).map_err(|e| {
            let msg = e.to_string();
            if let Ok(mut f) = self.failure.lock() {
                f.get_or_insert(e);
            }
            VolumeError::Busy { volume: self.mirror.secondary.label().to_owned(), detail: msg }
        })
    }
}
