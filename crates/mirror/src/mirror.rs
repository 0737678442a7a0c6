//! One mirrored pair: the write and read paths in each mode.
//!
//! The engine knows three modes; the pair states users see map onto them
//! (COPY, PAIR, COPY(RS) → `Duplex`; PSUS, PSUE → `Track`; an instant split whose
//! background fill has not finished → `Instant`). SMPL has no engine at all.

use crate::error::{MirrorError, Result};
use crate::locks::RegionLocks;
use plexus_bitmap::{ByteRange, DurableBitmap, INTENT_EXTENT};
use plexus_volume::{BlockDevice, Prefix};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How writes are handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every primary write goes to both volumes (COPY, PAIR, COPY(RS)).
    Duplex,
    /// The volumes are independent; writes mark each side's dirty bitmap (PSUS, PSUE).
    Track,
    /// Split without a prior copy (Fig. 5b): the secondary shows the primary as of the
    /// split; regions not yet filled are read from the primary, and a primary write
    /// first preserves the old region on the secondary.
    Instant,
}

/// Where a pair keeps its bitmaps.
#[derive(Clone, Debug)]
pub struct MirrorFiles {
    /// Regions changed on the primary (or still to copy).
    pub primary_dirty: PathBuf,
    /// Regions changed on the secondary since the split.
    pub secondary_dirty: PathBuf,
    /// Regions of an instant split already filled on the secondary.
    pub filled: PathBuf,
}

/// The stand-in for a secondary that cannot be opened (its file is gone, its disk
/// offline): every read and write fails, so the pair stays suspended, but the pair's
/// bitmaps stay open and go on recording the primary's writes, and the resync once the
/// secondary is back is differential.
pub struct Absent {
    label: String,
    size: u64,
    why: String,
}

impl Absent {
    /// A missing secondary called `label`, of the primary's `size`, unavailable because of `why`.
    pub fn new(label: &str, size: u64, why: &str) -> Self {
        Absent { label: label.to_owned(), size, why: why.to_owned() }
    }

    fn refuse(&self, op: &'static str) -> plexus_volume::VolumeError {
        plexus_volume::VolumeError::Io {
            path: self.label.clone().into(),
            op,
            source: std::io::Error::other(format!("secondary {} is unavailable: {}", self.label, self.why)),
        }
    }
}

impl BlockDevice for Absent {
    fn label(&self) -> &str {
        &self.label
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> plexus_volume::Result<()> {
        Err(self.refuse("read"))
    }
    fn write_at(&self, _offset: u64, _data: &[u8]) -> plexus_volume::Result<()> {
        Err(self.refuse("write"))
    }
    fn flush(&self) -> plexus_volume::Result<()> {
        Ok(())
    }
    fn write_zeroes(&self, _offset: u64, _len: u64, _punch: bool) -> plexus_volume::Result<()> {
        Err(self.refuse("write zeroes"))
    }
    // Refused rather than the default "all data": an exporter must not present a
    // missing disk as readable.
    fn allocation(&self, _offset: u64, _len: u64) -> plexus_volume::Result<Vec<(u64, bool)>> {
        Err(self.refuse("seek data"))
    }
    fn cache(&self, _offset: u64, _len: u64) -> plexus_volume::Result<()> {
        Err(self.refuse("fadvise"))
    }
}

/// A mirrored pair of equal-sized devices.
pub struct Mirror {
    pub(crate) primary: Arc<dyn BlockDevice>,
    pub(crate) secondary: Arc<dyn BlockDevice>,
    pub(crate) p_dirty: DurableBitmap,
    pub(crate) s_dirty: DurableBitmap,
    pub(crate) filled: DurableBitmap,
    pub(crate) mode: RwLock<Mode>,
    pub(crate) locks: Arc<RegionLocks>,
    pub(crate) granularity: u64,
    pub(crate) write_intent: bool,
    /// Why the pair was suspended by a failed duplexed write (PSUE), if it was.
    pub(crate) failure: Mutex<Option<String>>,
}

pub(crate) fn read_lock(m: &RwLock<Mode>) -> RwLockReadGuard<'_, Mode> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

/// Exclusive access to a mirror's mode: no write is in flight while it is held.
pub struct Quiesced<'a> {
    pub(crate) mirror: &'a Mirror,
    pub(crate) mode: RwLockWriteGuard<'a, Mode>,
}

impl Mirror {
    /// Pairs two devices of equal size. A normal pair starts in `Duplex` with every
    /// region marked to copy (COPY); an `instant` pair starts split, in `Instant`.
    pub fn create(
        primary: Arc<dyn BlockDevice>,
        secondary: Arc<dyn BlockDevice>,
        files: &MirrorFiles,
        granularity: u64,
        write_intent: bool,
        instant: bool,
    ) -> Result<Mirror> {
        Self::create_sharing(primary, secondary, files, granularity, write_intent, instant, None)
    }

    /// [`Mirror::create`] for a further plex of a primary that already has pairs: all
    /// pairs of one primary must share `with`'s region locks (see [`write_primary_all`](crate::write_primary_all)).
    #[allow(clippy::too_many_arguments)]
    pub fn create_sharing(
        primary: Arc<dyn BlockDevice>,
        secondary: Arc<dyn BlockDevice>,
        files: &MirrorFiles,
        granularity: u64,
        write_intent: bool,
        instant: bool,
        with: Option<&Mirror>,
    ) -> Result<Mirror> {
        let secondary = fit_secondary(&primary, secondary)?;
        let size = primary.size();
        let p_dirty = DurableBitmap::create(&files.primary_dirty, size, granularity, write_intent)?;
        let s_dirty = DurableBitmap::create(&files.secondary_dirty, size, granularity, write_intent)?;
        let filled = DurableBitmap::create(&files.filled, size, granularity, write_intent)?;
        if !instant {
            // Everything is still to be copied: the initial copy is a resync of all bits.
            // With write intent the mark is already a synced log record; without, only a
            // snapshot makes it durable.
            p_dirty.mark_all()?;
            if !write_intent {
                p_dirty.flush()?;
            }
        }
        let mode = if instant { Mode::Instant } else { Mode::Duplex };
        Self::assemble(primary, secondary, p_dirty, s_dirty, filled, mode, write_intent, with)
    }

    /// Reopens a pair in `mode` from its bitmaps.
    pub fn open(
        primary: Arc<dyn BlockDevice>,
        secondary: Arc<dyn BlockDevice>,
        files: &MirrorFiles,
        mode: Mode,
        write_intent: bool,
    ) -> Result<Mirror> {
        Self::open_sharing(primary, secondary, files, mode, write_intent, None)
    }

    /// [`Mirror::open`] sharing region locks with another pair of the same primary.
    pub fn open_sharing(
        primary: Arc<dyn BlockDevice>,
        secondary: Arc<dyn BlockDevice>,
        files: &MirrorFiles,
        mode: Mode,
        write_intent: bool,
        with: Option<&Mirror>,
    ) -> Result<Mirror> {
        let secondary = fit_secondary(&primary, secondary)?;
        let p_dirty = DurableBitmap::open(&files.primary_dirty, write_intent)?;
        let s_dirty = DurableBitmap::open(&files.secondary_dirty, write_intent)?;
        let filled = DurableBitmap::open(&files.filled, write_intent)?;
        for b in [&p_dirty, &s_dirty, &filled] {
            if b.bitmap().size() != primary.size() || primary.size() != secondary.size() {
                return Err(MirrorError::State { detail: format!("bitmap {} does not match the pair's volumes", b.path().display()) });
            }
        }
        Self::assemble(primary, secondary, p_dirty, s_dirty, filled, mode, write_intent, with)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        primary: Arc<dyn BlockDevice>,
        secondary: Arc<dyn BlockDevice>,
        p_dirty: DurableBitmap,
        s_dirty: DurableBitmap,
        filled: DurableBitmap,
        mode: Mode,
        write_intent: bool,
        with: Option<&Mirror>,
    ) -> Result<Mirror> {
        // What changed may be over-recorded after a crash, never under: whole intent
        // extents keep the write path at one sync per extent (docs/bitmap-sidecar.md).
        // Not `filled`, which promises work done and must stay exact.
        let (p_dirty, s_dirty) = (p_dirty.with_intent_extent(INTENT_EXTENT), s_dirty.with_intent_extent(INTENT_EXTENT));
        let granularity = p_dirty.bitmap().granularity();
        let locks = match with {
            Some(other) => {
                if other.granularity != granularity || other.primary.size() != primary.size() {
                    return Err(MirrorError::State {
                        detail: format!("all plexes of {} must have the same size and granularity", primary.label()),
                    });
                }
                other.locks.clone()
            }
            None => Arc::new(RegionLocks::new(granularity)),
        };
        Ok(Mirror {
            primary,
            secondary,
            p_dirty,
            s_dirty,
            filled,
            mode: RwLock::new(mode),
            locks,
            granularity,
            write_intent,
            failure: Mutex::new(None),
        })
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *read_lock(&self.mode)
    }

    /// Why a failed duplexed write suspended the pair (it is then in `Track`, PSUE),
    /// or `None`. Cleared by the next resync.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn clear_failure(&self) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Suspends the pair after its secondary refused a duplexed write that the primary
    /// took: the region (already marked in the primary bitmap before the write) is
    /// made durable even without write intent, so no split, close or crash can lose
    /// the only record of the divergence. The caller switches the mode to `Track`.
    pub(crate) fn suspend(&self, offset: u64, len: u64, e: &plexus_volume::VolumeError) -> Result<()> {
        {
            let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert_with(|| {
                format!("a duplexed write to secondary {} at offset {offset} length {len} failed: {e}", self.secondary.label())
            });
        }
        if !self.p_dirty.is_durable() {
            self.p_dirty.flush()?;
        }
        Ok(())
    }

    pub(crate) fn refuse_if_suspended(&self) -> Result<()> {
        match self.failure() {
            Some(f) => Err(MirrorError::State {
                detail: format!("pair {} → {} is suspended (PSUE): {f}; resync it first", self.primary.label(), self.secondary.label()),
            }),
            None => Ok(()),
        }
    }

    /// The secondary's name (its label, as in error messages).
    pub fn secondary_label(&self) -> &str {
        self.secondary.label()
    }

    /// Bytes per bitmap bit.
    pub fn granularity(&self) -> u64 {
        self.granularity
    }

    /// Size of each volume.
    pub fn size(&self) -> u64 {
        self.primary.size()
    }

    /// Waits for in-flight writes to finish and holds new ones off until dropped.
    pub fn quiesce(&self) -> Quiesced<'_> {
        Quiesced { mirror: self, mode: self.mode.write().unwrap_or_else(|p| p.into_inner()) }
    }

    /// Granule-aligned cover of a byte range, clipped to the volume.
    pub(crate) fn aligned(&self, offset: u64, len: u64) -> ByteRange {
        let g = self.granularity;
        let start = offset / g * g;
        let end = (offset + len).div_ceil(g).saturating_mul(g).min(self.size());
        ByteRange { offset: start, len: end.saturating_sub(start) }
    }

    /// Reads the primary.
    pub fn read_primary(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        Ok(self.primary.read_at(offset, buf)?)
    }

    /// Reads the secondary as a host sees it: during an instant split, regions not yet
    /// filled come from the primary, which still holds them as of the split.
    pub fn read_secondary(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mode = read_lock(&self.mode);
        if *mode != Mode::Instant {
            return Ok(self.secondary.read_at(offset, buf)?);
        }
        plexus_volume::check_range(self.secondary.label(), offset, buf.len() as u64, self.size())?;
        let _region = self.locks.lock(offset, buf.len() as u64);
        let g = self.granularity;
        let mut at = offset;
        let end = offset + buf.len() as u64;
        while at < end {
            let next = ((at / g + 1) * g).min(end);
            let piece = buf
                .get_mut((at - offset) as usize..(next - offset) as usize)
                .ok_or_else(|| MirrorError::State { detail: "read slice out of bounds".into() })?;
            if self.filled.bitmap().test_bit(at / g) {
                self.secondary.read_at(at, piece)?;
            } else {
                self.primary.read_at(at, piece)?;
            }
            at = next;
        }
        Ok(())
    }

    /// Copies the unfilled granules of `range` (granule-aligned) from the primary to the
    /// secondary and records them as filled. The caller holds the region lock.
    pub(crate) fn fill_locked(&self, range: ByteRange) -> Result<()> {
        let g = self.granularity;
        let mut buf = Vec::new();
        let mut copied = false;
        let mut at = range.offset;
        let end = range.offset + range.len;
        while at < end {
            if self.filled.bitmap().test_bit(at / g) {
                at += g;
                continue;
            }
            let mut run_end = at;
            while run_end < end && !self.filled.bitmap().test_bit(run_end / g) {
                run_end += g;
            }
            let run_end = run_end.min(end);
            buf.resize((run_end - at) as usize, 0);
            self.primary.read_at(at, &mut buf)?;
            self.secondary.write_at(at, &buf)?;
            copied = true;
            at = run_end;
        }
        if copied {
            if self.write_intent {
                // The preserved data must be on disk before "filled" is: otherwise a
                // crash could leave a filled bit over a region that was never written.
                self.secondary.flush()?;
            }
            self.filled.mark_range(range.offset, range.len)?;
        }
        Ok(())
    }

    /// Dirty bytes on either side (the union a resync would copy).
    pub fn dirty_bytes(&self) -> u64 {
        let p = self.p_dirty.bitmap().snapshot_words();
        let s = self.s_dirty.bitmap().snapshot_words();
        let bits: u64 = p.iter().zip(s.iter()).map(|(a, b)| u64::from((a | b).count_ones())).sum();
        let size = self.size();
        (bits * self.granularity).min(size)
    }

    /// Bytes of an instant split not yet filled on the secondary.
    pub fn unfilled_bytes(&self) -> u64 {
        self.size().saturating_sub(self.filled.bitmap().dirty_bytes())
    }

    /// Makes every acknowledged write durable: the data of both volumes. The bitmaps need
    /// nothing: with write intent, every mark was durable before its write was
    /// acknowledged; without it, a crash needs a full resync anyway. What an NBD FLUSH
    /// does: a snapshot per flush would cost four syncs and forget the intent extents.
    pub fn flush_data(&self) -> Result<()> {
        self.primary.flush()?;
        self.secondary.flush()?;
        Ok(())
    }

    /// Persists every bitmap (for a clean close).
    pub fn flush(&self) -> Result<()> {
        self.primary.flush()?;
        self.secondary.flush()?;
        for b in [&self.p_dirty, &self.s_dirty, &self.filled] {
            b.flush()?;
        }
        Ok(())
    }
}

impl Mirror {
    /// Closes a PAIR cleanly: with both volumes flushed, the write-intent bits of
    /// finished duplexed writes are stale, so they are cleared. A pair found in PAIR
    /// with bits set was therefore not closed cleanly: those regions need a resync.
    pub fn clear_intent(&self) -> Result<()> {
        let q = self.quiesce();
        if q.mode() != Mode::Duplex {
            return Err(MirrorError::State { detail: format!("pair {} is not duplexing", self.primary.label()) });
        }
        self.refuse_if_suspended()?;
        self.primary.flush()?;
        self.secondary.flush()?;
        self.p_dirty.clear()?;
        Ok(())
    }

    /// SHA-256 of the secondary as hosts see it (unfilled regions of an instant split
    /// read from the primary), lower-case hex.
    pub fn checksum_secondary(&self, offset: u64, len: u64) -> Result<String> {
        use sha2::{Digest, Sha256};
        plexus_volume::check_range(self.secondary.label(), offset, len, self.size())?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; (1u64 << 20).min(len.max(1)) as usize];
        let mut at = offset;
        while at < offset + len {
            let n = (buf.len() as u64).min(offset + len - at) as usize;
            let piece = buf.get_mut(..n).unwrap_or_default();
            self.read_secondary(at, piece)?;
            h.update(&*piece);
            at += n as u64;
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl Mirror {
    /// Regions where primary and secondary may differ: the union of both sides' bits.
    pub fn dirty_runs(&self) -> Vec<ByteRange> {
        let mut runs: Vec<ByteRange> = self.p_dirty.bitmap().runs().chain(self.s_dirty.bitmap().runs()).collect();
        runs.sort_by_key(|r| r.offset);
        let mut out: Vec<ByteRange> = Vec::with_capacity(runs.len());
        for r in runs {
            match out.last_mut() {
                Some(l) if r.offset <= l.offset + l.len => l.len = l.len.max(r.offset + r.len - l.offset),
                _ => out.push(r),
            }
        }
        out
    }

    /// Records, durably, that a region of the primary differs from the secondary
    /// (after the primary's data was replaced behind the pair, as by a promotion).
    pub fn mark_dirty(&self, offset: u64, len: u64) -> Result<()> {
        self.p_dirty.mark_range(offset, len)?;
        Ok(self.p_dirty.flush()?)
    }
}

/// The secondary as the pair sees it: a secondary equal to or larger than its primary
/// (JP 2002-041345, Fig. 4) is used for the primary's size only, the rest of it left
/// alone; a smaller one is E_SIZE.
fn fit_secondary(primary: &Arc<dyn BlockDevice>, secondary: Arc<dyn BlockDevice>) -> Result<Arc<dyn BlockDevice>> {
    if secondary.size() < primary.size() {
        return Err(MirrorError::Volume(plexus_volume::VolumeError::Size {
            detail: format!(
                "size mismatch: secondary {} is {} bytes, smaller than primary {} ({} bytes)",
                secondary.label(),
                secondary.size(),
                primary.label(),
                primary.size()
            ),
        }));
    }
    Ok(Prefix::of(secondary, primary.size()))
}
