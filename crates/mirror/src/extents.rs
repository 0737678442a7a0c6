//! Runs an exporter reports about a pair: which regions are dirty on either side, and
//! which regions of the secondary (as hosts see it) are holes.

use crate::error::Result;
use crate::mirror::{read_lock, Mirror, Mode};
use plexus_bitmap::BitmapView;

/// Which volume of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The primary: its dirty bitmap records writes to it since the split (while
    /// duplexing, the write intent of duplexed writes, or what the copy has left).
    Primary,
    /// The secondary: its dirty bitmap records writes to the split image.
    Secondary,
}

/// Appends a run, merged into the last one when it is of the same kind.
pub(crate) fn push_run(runs: &mut Vec<(u64, bool)>, len: u64, flag: bool) {
    match runs.last_mut() {
        Some((l, f)) if *f == flag => *l += len,
        _ if len > 0 => runs.push((len, flag)),
        _ => {}
    }
}

/// `(len, dirty)` runs covering exactly `[offset, offset+len)` (already range-checked):
/// granule boundaries inside, the first and last run clipped to the range.
pub(crate) fn bit_extents(view: BitmapView<'_>, offset: u64, len: u64) -> Vec<(u64, bool)> {
    let g = view.granularity();
    let end = offset.saturating_add(len);
    let mut runs = Vec::new();
    let mut at = offset;
    while at < end {
        let bit = at / g;
        let next = (bit + 1).saturating_mul(g).min(end);
        push_run(&mut runs, next - at, view.test_bit(bit));
        at = next;
    }
    runs
}

impl Mirror {
    /// `(len, dirty)` runs of one side's dirty bitmap covering exactly
    /// `[offset, offset+len)`, split at granule boundaries and clipped to the range.
    /// E_RANGE past the end. The bits are read as they are now; a write in flight may
    /// be marked a moment before its data lands (never after).
    pub fn dirty_extents(&self, side: Side, offset: u64, len: u64) -> Result<Vec<(u64, bool)>> {
        plexus_volume::check_range(self.primary.label(), offset, len, self.size())?;
        let bitmap = match side {
            Side::Primary => &self.p_dirty,
            Side::Secondary => &self.s_dirty,
        };
        Ok(bit_extents(bitmap.bitmap(), offset, len))
    }

    /// `(len, hole)` runs of the secondary as hosts read it ([`read_secondary`](Self::read_secondary)),
    /// covering exactly `[offset, offset+len)`. During an instant split, regions not
    /// yet filled are served from the primary and reported as data (which promises
    /// nothing); filled ones are the secondary's own allocation. E_RANGE past the end.
    pub fn secondary_allocation(&self, offset: u64, len: u64) -> Result<Vec<(u64, bool)>> {
        let mode = read_lock(&self.mode);
        if *mode != Mode::Instant {
            return Ok(self.secondary.allocation(offset, len)?);
        }
        plexus_volume::check_range(self.secondary.label(), offset, len, self.size())?;
        // Under the region lock, as a read is, so a fill cannot change a granule between
        // the test of its bit and the query of the secondary.
        let _region = self.locks.lock(offset, len);
        let mut runs = Vec::new();
        let mut at = offset;
        for (n, filled) in bit_extents(self.filled.bitmap(), offset, len) {
            if filled {
                for (l, hole) in self.secondary.allocation(at, n)? {
                    push_run(&mut runs, l, hole);
                }
            } else {
                push_run(&mut runs, n, false);
            }
            at += n;
        }
        Ok(runs)
    }
}
