//! Region locks: a write and a background copy of the same region never interleave.
//!
//! Locks are striped by granule: granule `g` maps to stripe `g % STRIPES`. A range
//! takes its stripes in ascending order, so two ranges can never deadlock.

use std::sync::{Mutex, MutexGuard};

const STRIPES: u64 = 4096;

/// Striped locks over the granules of a volume.
pub struct RegionLocks {
    stripes: Vec<Mutex<()>>,
    shift: u32,
}

/// Held while a region is being written or copied.
pub struct RegionGuard<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl RegionLocks {
    /// Locks for granules of `granularity` bytes (a power of two).
    pub fn new(granularity: u64) -> Self {
        RegionLocks { stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(), shift: granularity.max(1).trailing_zeros() }
    }

    /// Locks every granule that `[offset, offset + len)` touches.
    pub fn lock(&self, offset: u64, len: u64) -> RegionGuard<'_> {
        let first = offset >> self.shift;
        let last = (offset + len.max(1) - 1) >> self.shift;
        let mut idx: Vec<usize> = if last - first + 1 >= STRIPES {
            (0..STRIPES as usize).collect()
        } else {
            (first..=last).map(|g| (g % STRIPES) as usize).collect()
        };
        idx.sort_unstable();
        idx.dedup();
        let guards = idx
            .into_iter()
            .filter_map(|i| self.stripes.get(i))
            // A panic while holding a stripe poisons only the lock, not the data it
            // orders; carrying on is safe.
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
            .collect();
        RegionGuard { _guards: guards }
    }
}
