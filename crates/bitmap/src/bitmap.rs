//! In-memory dirty bitmap: one bit per granule, lock-free and shareable.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{BitmapError, Result};
use crate::runs::{BitRuns, Runs};

/// Smallest allowed granularity (one sector).
pub const MIN_GRANULARITY: u64 = 512;
/// Largest allowed granularity (64 MiB).
pub const MAX_GRANULARITY: u64 = 64 << 20;

/// A dirty bitmap over a volume of `size` bytes with one bit per
/// `granularity`-byte granule.
///
/// All methods take `&self` and are safe to call from many threads at once.
/// Individual bit operations are atomic; multi-word operations (`count`,
/// `runs`, `snapshot_words`) are weakly consistent under concurrent writers
/// (each word is read once, atomically). The bitmap imposes no ordering on the
/// caller's data I/O; callers that need one synchronise externally.
pub struct DirtyBitmap {
    granularity: u64,
    /// log2(granularity); granule index = byte offset >> shift.
    shift: u32,
    size: u64,
    nbits: u64,
    words: Box<[AtomicU64]>,
}

/// Mask with bits `lo..=hi` set (both in `0..64`, `lo <= hi`).
fn span_mask(lo: u64, hi: u64) -> u64 {
    (u64::MAX >> (63 - hi)) & (u64::MAX << lo)
}

impl DirtyBitmap {
    /// Creates an all-clean bitmap. `granularity` must be a power of two in
    /// 512 B ..= 64 MiB and `size` must be non-zero (`E_INVALID` otherwise).
    pub fn new(size: u64, granularity: u64) -> Result<Self> {
        let (shift, nbits, nwords) = Self::geometry(size, granularity)?;
        let words = (0..nwords).map(|_| AtomicU64::new(0)).collect();
        Ok(DirtyBitmap { granularity, shift, size, nbits, words })
    }

    /// Rebuilds a bitmap from words produced by [`snapshot_words`](Self::snapshot_words).
    /// `E_INVALID` if the word count is wrong or bits past `len_bits()` are set.
    pub fn from_words(size: u64, granularity: u64, words: &[u64]) -> Result<Self> {
        let (shift, nbits, nwords) = Self::geometry(size, granularity)?;
        if words.len() != nwords {
            return Err(BitmapError::Invalid { detail: format!("expected {nwords} words for {nbits} bits, got {}", words.len()) });
        }
        // Bits past nbits must stay zero: count() and runs() rely on it.
        let tail_bits = nbits % 64;
        if tail_bits != 0 {
            let last = words.last().copied().unwrap_or(0);
            if last & !span_mask(0, tail_bits - 1) != 0 {
                return Err(BitmapError::Invalid { detail: format!("bits set past the last granule (bit {nbits} and up)") });
            }
        }
        let words = words.iter().map(|&w| AtomicU64::new(w)).collect();
        Ok(DirtyBitmap { granularity, shift, size, nbits, words })
    }

    /// Validates geometry; returns (shift, nbits, nwords).
    fn geometry(size: u64, granularity: u64) -> Result<(u32, u64, usize)> {
        if !granularity.is_power_of_two() || !(MIN_GRANULARITY..=MAX_GRANULARITY).contains(&granularity) {
            return Err(BitmapError::Invalid {
                detail: format!("granularity {granularity} must be a power of two in {MIN_GRANULARITY}..={MAX_GRANULARITY}"),
            });
        }
        if size == 0 {
            return Err(BitmapError::Invalid { detail: "volume size must be > 0".into() });
        }
        let nbits = size.div_ceil(granularity);
        let nwords = usize::try_from(nbits.div_ceil(64))
            .map_err(|_| BitmapError::Invalid { detail: format!("{nbits} bits do not fit in memory on this platform") })?;
        Ok((granularity.trailing_zeros(), nbits, nwords))
    }

    /// Bytes per granule (per bit).
    pub fn granularity(&self) -> u64 {
        self.granularity
    }

    /// Volume size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of bits (granules): `ceil(size / granularity)`.
    pub fn len_bits(&self) -> u64 {
        self.nbits
    }

    fn word(&self, bit: u64) -> Option<&AtomicU64> {
        if bit >= self.nbits {
            return None;
        }
        usize::try_from(bit / 64).ok().and_then(|i| self.words.get(i))
    }

    /// Sets one bit with a single `fetch_or`; returns true if it was newly set.
    /// Out-of-range bits are ignored (returns false).
    pub fn set_bit(&self, bit: u64) -> bool {
        let mask = 1u64 << (bit % 64);
        self.word(bit).is_some_and(|w| w.fetch_or(mask, Ordering::Relaxed) & mask == 0)
    }

    /// True if `bit` is set (false for out-of-range bits).
    pub fn test_bit(&self, bit: u64) -> bool {
        let mask = 1u64 << (bit % 64);
        self.word(bit).is_some_and(|w| w.load(Ordering::Acquire) & mask != 0)
    }

    /// The first set bit at or after `from`, a word at a time (None: none set). Weakly
    /// consistent under concurrent writers, like the run iterators.
    pub fn next_set(&self, from: u64) -> Option<u64> {
        self.next_in(from, self.nbits, false)
    }

    /// The first clear bit at or after `from`, a word at a time (None: all set).
    pub fn next_clear(&self, from: u64) -> Option<u64> {
        self.next_in(from, self.nbits, true)
    }

    /// The first bit in `from..end` that is set (or, with `clear`, clear), reading only
    /// the words that range touches.
    pub(crate) fn next_in(&self, from: u64, end: u64, clear: bool) -> Option<u64> {
        let end = end.min(self.nbits);
        if from >= end {
            return None;
        }
        let flip = if clear { u64::MAX } else { 0 };
        let mut idx = usize::try_from(from / 64).ok()?;
        // Bits below `from` in its word do not count.
        let mut w = (self.words.get(idx)?.load(Ordering::Acquire) ^ flip) & (u64::MAX << (from % 64));
        loop {
            if w != 0 {
                let bit = idx as u64 * 64 + u64::from(w.trailing_zeros());
                return (bit < end).then_some(bit);
            }
            idx += 1;
            if idx as u64 * 64 >= end {
                return None;
            }
            w = self.words.get(idx)?.load(Ordering::Acquire) ^ flip;
        }
    }

    /// Clears one bit (no-op when out of range).
    pub fn clear_bit(&self, bit: u64) {
        if let Some(w) = self.word(bit) {
            w.fetch_and(!(1u64 << (bit % 64)), Ordering::Relaxed);
        }
    }

    /// Granule span `first..=last` touched by the byte range, `None` for an
    /// empty range, `E_RANGE` if the range does not fit in the volume.
    pub(crate) fn bit_span(&self, offset: u64, len: u64) -> Result<Option<(u64, u64)>> {
        let end = offset.checked_add(len).filter(|&e| e <= self.size).ok_or_else(|| BitmapError::Range {
            detail: format!("byte range offset {offset} len {len} exceeds volume size {}", self.size),
        })?;
        if len == 0 {
            return Ok(None);
        }
        Ok(Some((offset >> self.shift, (end - 1) >> self.shift)))
    }

    /// Same as `bit_span` but clips to the volume instead of failing; used by
    /// the boolean queries, which have no error channel.
    fn clipped_span(&self, offset: u64, len: u64) -> Option<(u64, u64)> {
        let end = offset.saturating_add(len).min(self.size);
        (offset < end).then(|| (offset >> self.shift, (end - 1) >> self.shift))
    }

    /// Calls `f(word, mask)` for every word overlapping bits `first..=last`.
    /// Stops early (returning false) when `f` returns false.
    fn for_each_word(&self, first: u64, last: u64, mut f: impl FnMut(&AtomicU64, u64) -> bool) -> bool {
        let (fw, lw) = (first / 64, last / 64);
        for wi in fw..=lw {
            let lo = if wi == fw { first % 64 } else { 0 };
            let hi = if wi == lw { last % 64 } else { 63 };
            let Some(word) = usize::try_from(wi).ok().and_then(|i| self.words.get(i)) else {
                return false;
            };
            if !f(word, span_mask(lo, hi)) {
                return false;
            }
        }
        true
    }

    /// Sets bits `first..=last` one word (one `fetch_or`) at a time; returns
    /// how many were newly set. Caller guarantees the span is in range.
    pub(crate) fn set_bits(&self, first: u64, last: u64, order: Ordering) -> u64 {
        let mut newly = 0u64;
        self.for_each_word(first, last, |w, mask| {
            let old = w.fetch_or(mask, order);
            newly += u64::from((mask & !old).count_ones());
            true
        });
        newly
    }

    /// Clears bits `first..=last` one word at a time. Caller guarantees the span is in range.
    pub(crate) fn clear_bits(&self, first: u64, last: u64) {
        self.for_each_word(first, last, |w, mask| {
            w.fetch_and(!mask, Ordering::Relaxed);
            true
        });
    }

    /// ORs whole words in (a word count mismatch ORs the common prefix; bits
    /// past `len_bits()` must be clear in `words`); returns how many bits were
    /// newly set.
    pub(crate) fn or_words(&self, words: &[u64], order: Ordering) -> u64 {
        let mut newly = 0u64;
        for (dst, &w) in self.words.iter().zip(words.iter()) {
            if w != 0 {
                let old = dst.fetch_or(w, order);
                newly += u64::from((w & !old).count_ones());
            }
        }
        newly
    }

    /// True if every bit in `first..=last` is set.
    pub(crate) fn all_bits_set(&self, first: u64, last: u64) -> bool {
        self.for_each_word(first, last, |w, mask| w.load(Ordering::Acquire) & mask == mask)
    }

    /// Marks every granule touched by bytes `[offset, offset+len)` dirty and
    /// returns how many bits were newly set. `E_RANGE` if the range ends past
    /// the volume (or overflows); an empty in-range range is a no-op.
    pub fn mark_range(&self, offset: u64, len: u64) -> Result<u64> {
        Ok(match self.bit_span(offset, len)? {
            Some((first, last)) => self.set_bits(first, last, Ordering::Relaxed),
            None => 0,
        })
    }

    /// True if any granule touched by the byte range is dirty (the range is
    /// clipped to the volume; an empty range is never dirty).
    pub fn is_range_dirty(&self, offset: u64, len: u64) -> bool {
        let Some((first, last)) = self.clipped_span(offset, len) else {
            return false;
        };
        // "all words have no overlap" is the negation of "any dirty".
        !self.for_each_word(first, last, |w, mask| w.load(Ordering::Acquire) & mask == 0)
    }

    /// True if every granule touched by the byte range is already dirty, so a
    /// writer can skip marking/persisting. An empty in-range range is
    /// vacuously true; a range past the end is false (let `mark_range` report it).
    pub fn all_range_dirty(&self, offset: u64, len: u64) -> bool {
        match self.bit_span(offset, len) {
            Ok(Some((first, last))) => self.all_bits_set(first, last),
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Number of dirty granules.
    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.load(Ordering::Relaxed).count_ones())).sum()
    }

    /// Dirty bytes: `count * granularity`, except a dirty partial last granule
    /// counts only its real length (the volume ends inside it).
    pub fn dirty_bytes(&self) -> u64 {
        let count = self.count();
        let last = self.nbits - 1;
        if count > 0 && self.test_bit(last) {
            // (count-1)*gran <= last*gran < size, so no overflow.
            (count - 1) * self.granularity + (self.size - (last << self.shift))
        } else {
            count * self.granularity
        }
    }

    /// Clears every bit.
    pub fn clear(&self) {
        for w in self.words.iter() {
            w.store(0, Ordering::Relaxed);
        }
    }

    /// Clears every granule touched (fully or partially) by the byte range.
    /// Intended for a caller that has just copied the whole of each touched
    /// granule, so clearing a partially-covered granule is correct.
    /// `E_RANGE` as for `mark_range`.
    pub fn clear_range(&self, offset: u64, len: u64) -> Result<()> {
        if let Some((first, last)) = self.bit_span(offset, len)? {
            self.clear_bits(first, last);
        }
        Ok(())
    }

    /// OR-merges `other` into `self`. `E_SIZE` unless both have the same size
    /// and granularity.
    pub fn merge_from(&self, other: &DirtyBitmap) -> Result<()> {
        if self.size != other.size || self.granularity != other.granularity {
            return Err(BitmapError::Mismatch {
                detail: format!(
                    "cannot merge size {} gran {} into size {} gran {}",
                    other.size, other.granularity, self.size, self.granularity
                ),
            });
        }
        for (dst, src) in self.words.iter().zip(other.words.iter()) {
            let v = src.load(Ordering::Relaxed);
            if v != 0 {
                dst.fetch_or(v, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Copies the words out (for persistence); `len_bits().div_ceil(64)` words.
    pub fn snapshot_words(&self) -> Vec<u64> {
        self.words.iter().map(|w| w.load(Ordering::Acquire)).collect()
    }

    /// Atomically swaps every word to zero and returns the old words. Each
    /// word is taken exactly once, so a concurrent mark lands either in the
    /// returned set or in the bitmap — never lost. Used to hand a resync the
    /// dirty set while new writes keep marking.
    pub fn swap_out(&self) -> Vec<u64> {
        self.words.iter().map(|w| w.swap(0, Ordering::AcqRel)).collect()
    }

    /// Coalesced dirty runs as byte ranges, merged across word boundaries;
    /// the last run is clipped to `size()`.
    pub fn runs(&self) -> Runs<'_> {
        Runs::new(self, self.bit_runs(), self.shift)
    }

    /// Coalesced dirty runs as `(first_bit, nbits)`.
    pub fn bit_runs(&self) -> BitRuns<'_> {
        BitRuns::new(&self.words, self.nbits, false)
    }

    /// Coalesced clean runs (granules whose bit is clear) as byte ranges, found a word at
    /// a time like [`runs`](Self::runs); the last run is clipped to `size()`.
    pub fn clean_runs(&self) -> Runs<'_> {
        Runs::new(self, self.clean_bit_runs(), self.shift)
    }

    /// Coalesced clean runs as `(first_bit, nbits)`.
    pub fn clean_bit_runs(&self) -> BitRuns<'_> {
        BitRuns::new(&self.words, self.nbits, true)
    }
}

impl fmt::Debug for DirtyBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirtyBitmap")
            .field("size", &self.size)
            .field("granularity", &self.granularity)
            .field("nbits", &self.nbits)
            .field("dirty", &self.count())
            .finish()
    }
}
