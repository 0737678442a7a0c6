//! Finding the whole blocks of a source that are holes, so a segment records them as
//! hole records instead of blocks of zeroes (format version 2).
//!
//! The source is asked for its allocation a window at a time (SEEK_DATA/SEEK_HOLE for a
//! volume file), so the memory used follows the extents of one window, never the size
//! of the volume; a hole that crosses windows is followed into the next ones, so a
//! 16 TiB hole is one record, not one per window.

use plexus_volume::{BlockDevice, Result};
use std::collections::VecDeque;

/// Bytes of allocation asked for at once.
const WINDOW: u64 = 1 << 30;

/// The allocation of `[start, end)` of a source, read ahead a window at a time.
pub(crate) struct Holes<'a> {
    src: &'a dyn BlockDevice,
    end: u64,
    /// Runs `(start, end, hole)` not yet passed, in order, covering up to `queried`.
    runs: VecDeque<(u64, u64, bool)>,
    queried: u64,
}

impl<'a> Holes<'a> {
    /// Allocation of `src` over `[start, end)`.
    pub(crate) fn new(src: &'a dyn BlockDevice, start: u64, end: u64) -> Self {
        Holes { src, end, runs: VecDeque::new(), queried: start }
    }

    /// Bytes from `at` on that are one hole, up to at least `want` when the hole
    /// reaches that far (0 when `at` holds data). `at` never goes backwards.
    pub(crate) fn hole_from(&mut self, at: u64, want: u64) -> Result<u64> {
        while self.runs.front().is_some_and(|r| r.1 <= at) {
            self.runs.pop_front();
        }
        if self.runs.is_empty() && !self.fill(at)? {
            return Ok(0);
        }
        let Some(&(_, mut end, hole)) = self.runs.front() else { return Ok(0) };
        if !hole {
            return Ok(0);
        }
        // Follow the hole into later windows while it reaches the end of what is known.
        while end - at < want && end == self.queried && self.queried < self.end {
            let Some(run) = self.runs.pop_front() else { break };
            let more = self.fill(end)?;
            match self.runs.front_mut() {
                Some(next) if more && next.2 => {
                    next.0 = run.0;
                    end = next.1;
                }
                _ => {
                    self.runs.push_front(run);
                    break;
                }
            }
        }
        Ok(end - at)
    }

    /// Reads the next window from `from`; false when nothing is left.
    fn fill(&mut self, from: u64) -> Result<bool> {
        let from = from.max(self.queried);
        if from >= self.end {
            return Ok(false);
        }
        let len = WINDOW.min(self.end - from);
        let mut at = from;
        for (n, hole) in self.src.allocation(from, len)? {
            match self.runs.back_mut() {
                Some(last) if last.2 == hole && last.1 == at => last.1 += n,
                _ => self.runs.push_back((at, at + n, hole)),
            }
            at += n;
        }
        self.queried = from + len;
        Ok(!self.runs.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plexus_volume::{fill, Fill, Volume};

    #[test]
    fn holes_are_found_and_followed_across_windows() {
        let d = tempfile::tempdir().expect("tempdir");
        let size = 3 * WINDOW;
        let v = Volume::create(&d.path().join("v.img"), size, 4096).expect("create");
        fill(&v, 1 << 20, 4096, Fill::Random(1)).expect("data");
        fill(&v, size - 8192, 4096, Fill::Random(2)).expect("tail");
        let mut h = Holes::new(&v, 0, size);
        assert_eq!(h.hole_from(0, 1 << 20).expect("first"), 1 << 20);
        assert_eq!(h.hole_from(1 << 20, 4096).expect("data"), 0);
        // From just after the data block to the tail: across both window boundaries.
        let from = (1 << 20) + 4096;
        assert_eq!(h.hole_from(from, size).expect("long"), size - 8192 - from);
        assert_eq!(h.hole_from(size - 8192, 4096).expect("tail"), 0);
        assert_eq!(h.hole_from(size - 4096, 4096).expect("last"), 4096);
    }
}
