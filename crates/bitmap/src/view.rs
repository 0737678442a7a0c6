//! A read-only view of a [`DirtyBitmap`]: what a [`DurableBitmap`](crate::DurableBitmap)
//! lends its callers, so no bit can be set behind the write-intent log.

use crate::bitmap::DirtyBitmap;
use crate::runs::{BitRuns, Runs};

/// Queries over a bitmap, without any way to set or clear a bit. Marks go through the
/// owner ([`DurableBitmap::mark_range`](crate::DurableBitmap::mark_range),
/// [`merge_from`](crate::DurableBitmap::merge_from), ...), which logs them first.
#[derive(Clone, Copy, Debug)]
pub struct BitmapView<'a> {
    inner: &'a DirtyBitmap,
}

impl<'a> BitmapView<'a> {
    pub(crate) fn new(inner: &'a DirtyBitmap) -> Self {
        BitmapView { inner }
    }

    /// Bytes per granule (per bit).
    pub fn granularity(&self) -> u64 {
        self.inner.granularity()
    }

    /// Volume size in bytes.
    pub fn size(&self) -> u64 {
        self.inner.size()
    }

    /// Number of bits (granules).
    pub fn len_bits(&self) -> u64 {
        self.inner.len_bits()
    }

    /// True if `bit` is set (false for out-of-range bits).
    pub fn test_bit(&self, bit: u64) -> bool {
        self.inner.test_bit(bit)
    }

    /// The first set bit at or after `from` (word-wise scan), if any.
    pub fn next_set(&self, from: u64) -> Option<u64> {
        self.inner.next_set(from)
    }

    /// True if any granule touched by the byte range is dirty.
    pub fn is_range_dirty(&self, offset: u64, len: u64) -> bool {
        self.inner.is_range_dirty(offset, len)
    }

    /// True if every granule touched by the byte range is dirty.
    pub fn all_range_dirty(&self, offset: u64, len: u64) -> bool {
        self.inner.all_range_dirty(offset, len)
    }

    /// Number of dirty granules.
    pub fn count(&self) -> u64 {
        self.inner.count()
    }

    /// Dirty bytes (a dirty partial last granule counts only its real length).
    pub fn dirty_bytes(&self) -> u64 {
        self.inner.dirty_bytes()
    }

    /// The words, copied out.
    pub fn snapshot_words(&self) -> Vec<u64> {
        self.inner.snapshot_words()
    }

    /// Coalesced dirty runs as byte ranges.
    pub fn runs(&self) -> Runs<'a> {
        self.inner.runs()
    }

    /// Coalesced dirty runs as `(first_bit, nbits)`.
    pub fn bit_runs(&self) -> BitRuns<'a> {
        self.inner.bit_runs()
    }

    /// Coalesced clean runs (bits clear) as byte ranges, found a word at a time.
    pub fn clean_runs(&self) -> Runs<'a> {
        self.inner.clean_runs()
    }

    /// The first clear bit at or after `from` (word-wise scan), if any.
    pub fn next_clear(&self, from: u64) -> Option<u64> {
        self.inner.next_clear(from)
    }
}

/// The view cannot set bits: this does not compile.
///
/// ```compile_fail
/// let dir = std::env::temp_dir().join("plexus-view-doctest.bitmap");
/// let d = plexus_bitmap::DurableBitmap::create(&dir, 1 << 20, 65536, true).unwrap();
/// d.bitmap().mark_range(0, 1).unwrap();
/// ```
///
/// Nor can it merge another bitmap in behind the log:
///
/// ```compile_fail
/// let dir = std::env::temp_dir().join("plexus-view-doctest2.bitmap");
/// let d = plexus_bitmap::DurableBitmap::create(&dir, 1 << 20, 65536, true).unwrap();
/// let other = plexus_bitmap::DirtyBitmap::new(1 << 20, 65536).unwrap();
/// d.bitmap().merge_from(&other).unwrap();
/// ```
#[allow(dead_code)]
fn view_cannot_mark() {}
