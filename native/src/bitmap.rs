//! Dirty bitmaps as a JavaScript class.

use crate::copy::Extent;
use crate::error::{to_js, to_u64};
use napi_derive::napi;
use plexus_bitmap::DurableBitmap;
use std::path::Path;

/// A dirty bitmap persisted in a sidecar file.
#[napi]
pub struct NativeBitmap {
    inner: DurableBitmap,
}

#[napi]
impl NativeBitmap {
    /// Creates an empty bitmap for a volume of `size` bytes at `path` (replacing any).
    /// With `durable`, each newly dirtied region is fsynced before `markRange` returns.
    #[napi(factory, catch_unwind)]
    pub fn create(path: String, size: f64, granularity: f64, durable: bool) -> napi::Result<Self> {
        let (size, granularity) = crate::args::bitmap_geometry(size, granularity)?;
        let inner = DurableBitmap::create(Path::new(&path), size, granularity, durable).map_err(to_js)?;
        Ok(NativeBitmap { inner })
    }

    /// Opens a bitmap, replaying its write-intent log (a torn tail is dropped).
    #[napi(factory, catch_unwind)]
    pub fn open(path: String, durable: bool) -> napi::Result<Self> {
        Ok(NativeBitmap { inner: DurableBitmap::open(Path::new(&path), durable).map_err(to_js)? })
    }

    /// Dirty regions of a bitmap file, read without writing anything (the log's torn
    /// tail is skipped, not cut): for observers while another process may own the bitmap.
    #[napi(catch_unwind)]
    pub fn read_runs(path: String) -> napi::Result<Vec<Extent>> {
        let b = DurableBitmap::read_only(Path::new(&path)).map_err(to_js)?;
        Ok(b.runs().map(|r| Extent { offset: r.offset as f64, length: r.len as f64 }).collect())
    }

    /// Bytes per bit.
    #[napi(getter, catch_unwind)]
    pub fn granularity(&self) -> f64 {
        self.inner.bitmap().granularity() as f64
    }

    /// Size of the volume covered, in bytes.
    #[napi(getter, catch_unwind)]
    pub fn size(&self) -> f64 {
        self.inner.bitmap().size() as f64
    }

    /// Number of bits.
    #[napi(getter, catch_unwind)]
    pub fn bits(&self) -> f64 {
        self.inner.bitmap().len_bits() as f64
    }

    /// Marks every granule the byte range touches; returns how many were newly dirtied.
    #[napi(catch_unwind)]
    pub fn mark_range(&self, offset: f64, length: f64) -> napi::Result<f64> {
        let n = self.inner.mark_range(to_u64("offset", offset)?, to_u64("length", length)?).map_err(to_js)?;
        Ok(n as f64)
    }

    /// Whether any granule of the range is dirty.
    #[napi(catch_unwind)]
    pub fn is_dirty(&self, offset: f64, length: f64) -> napi::Result<bool> {
        Ok(self.inner.bitmap().is_range_dirty(to_u64("offset", offset)?, to_u64("length", length)?))
    }

    /// Number of dirty granules.
    #[napi(catch_unwind)]
    pub fn count(&self) -> f64 {
        self.inner.bitmap().count() as f64
    }

    /// Bytes covered by dirty granules (the last granule counts only its real length).
    #[napi(catch_unwind)]
    pub fn dirty_bytes(&self) -> f64 {
        self.inner.bitmap().dirty_bytes() as f64
    }

    /// Dirty regions, coalesced into byte ranges in ascending order.
    #[napi(catch_unwind)]
    pub fn runs(&self) -> Vec<Extent> {
        self.inner.bitmap().runs().map(|r| Extent { offset: r.offset as f64, length: r.len as f64 }).collect()
    }

    /// ORs another bitmap of the same geometry into this one (E_SIZE otherwise).
    #[napi(catch_unwind)]
    pub fn merge_from(&self, other: &NativeBitmap) -> napi::Result<()> {
        self.inner.merge_from(&other.inner).map_err(to_js)?;
        self.inner.flush().map_err(to_js)
    }

    /// Clears every bit, durably.
    #[napi(catch_unwind)]
    pub fn clear(&self) -> napi::Result<()> {
        self.inner.clear().map_err(to_js)
    }

    /// Clears the granules a byte range touches, durably.
    #[napi(catch_unwind)]
    pub fn clear_range(&self, offset: f64, length: f64) -> napi::Result<()> {
        self.inner.clear_range(to_u64("offset", offset)?, to_u64("length", length)?).map_err(to_js)
    }

    /// Writes a fresh snapshot and empties the write-intent log.
    #[napi(catch_unwind)]
    pub fn flush(&self) -> napi::Result<()> {
        self.inner.flush().map_err(to_js)
    }
}
