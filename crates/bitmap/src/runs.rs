//! Iterators over coalesced dirty runs.
//!
//! The scan works a word at a time: zero words are skipped with one compare,
//! run starts/ends inside a word are found with `trailing_zeros` /
//! `trailing_ones`, and all-ones words extend a run with one compare. Each
//! word is loaded exactly once, so the cost is O(words + runs).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::bitmap::DirtyBitmap;

/// A byte range `[offset, offset + len)` of the volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// First byte.
    pub offset: u64,
    /// Length in bytes (> 0 for ranges yielded by [`Runs`]).
    pub len: u64,
}

impl ByteRange {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// Iterator over coalesced dirty (or, from [`DirtyBitmap::clean_bit_runs`], clean) runs
/// as `(first_bit, nbits)`; see [`DirtyBitmap::bit_runs`]. Weakly consistent under
/// concurrent writers.
#[derive(Debug)]
pub struct BitRuns<'a> {
    words: &'a [AtomicU64],
    /// Index of the word held in `cur`.
    idx: usize,
    /// Bits of word `idx` not yet consumed (consumed bits are zeroed).
    cur: u64,
    /// All ones for runs of clean bits (each word is inverted as it is loaded), else 0.
    flip: u64,
    /// Bits in the bitmap: an inverted last word has ones past it, which are masked off.
    nbits: u64,
}

impl<'a> BitRuns<'a> {
    pub(crate) fn new(words: &'a [AtomicU64], nbits: u64, clean: bool) -> Self {
        let mut runs = BitRuns { words, idx: 0, cur: 0, flip: if clean { u64::MAX } else { 0 }, nbits };
        runs.cur = runs.load(0).unwrap_or(0);
        runs
    }

    /// Loads word `idx`, or `None` past the end.
    fn load(&self, idx: usize) -> Option<u64> {
        let w = self.words.get(idx)?.load(Ordering::Acquire) ^ self.flip;
        let past = (idx as u64 + 1) * 64;
        // Bits past nbits are always clear, so only an inverted word needs the mask.
        if self.flip != 0 && past > self.nbits {
            return Some(w & (u64::MAX >> (past - self.nbits)));
        }
        Some(w)
    }
}

impl Iterator for BitRuns<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        // Skip clean words.
        while self.cur == 0 {
            self.idx += 1;
            self.cur = self.load(self.idx)?;
        }
        let tz = self.cur.trailing_zeros();
        let ones = (self.cur >> tz).trailing_ones();
        let base = self.idx as u64 * 64;
        let start = base + u64::from(tz);
        if tz + ones < 64 {
            // Run ends inside this word: consume it and stop.
            let mask = ((1u64 << ones) - 1) << tz;
            self.cur &= !mask;
            return Some((start, u64::from(ones)));
        }
        // Run reaches the top of the word: extend it through following words.
        let mut end = base + 64;
        self.cur = 0;
        loop {
            self.idx += 1;
            let Some(w) = self.load(self.idx) else {
                break;
            };
            if w == u64::MAX {
                end += 64;
                continue;
            }
            let ones = w.trailing_ones();
            end += u64::from(ones);
            // ones < 64 here; drop the consumed low run and keep the rest.
            self.cur = w & !((1u64 << ones) - 1);
            break;
        }
        Some((start, end - start))
    }
}

/// Iterator over coalesced dirty (or clean) runs as byte ranges; see [`DirtyBitmap::runs`].
#[derive(Debug)]
pub struct Runs<'a> {
    bits: BitRuns<'a>,
    shift: u32,
    size: u64,
    nbits: u64,
}

impl<'a> Runs<'a> {
    pub(crate) fn new(bm: &'a DirtyBitmap, bits: BitRuns<'a>, shift: u32) -> Self {
        Runs { bits, shift, size: bm.size(), nbits: bm.len_bits() }
    }
}

impl Iterator for Runs<'_> {
    type Item = ByteRange;

    fn next(&mut self) -> Option<ByteRange> {
        let (first, n) = self.bits.next()?;
        let offset = first << self.shift;
        let end_bit = first + n;
        // A run that includes the last granule ends at `size` (clipping a
        // partial last granule); otherwise end_bit < nbits, so
        // end_bit << shift < size and cannot overflow.
        let end = if end_bit >= self.nbits { self.size } else { end_bit << self.shift };
        Some(ByteRange { offset, len: end - offset })
    }
}
