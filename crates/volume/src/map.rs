//! The one place that touches memory maps. Every `unsafe` block in Plexus lives here.
//!
//! Volumes are mapped read-only and written through the file descriptor (`pwrite`).
//! Linux keeps a single page cache per file, so a write through the descriptor is
//! visible through the map at once. Writing through the descriptor rather than the map
//! turns a full disk into an `ENOSPC` error instead of a SIGBUS on a sparse file.
#![allow(unsafe_code)]

use memmap2::{Advice, MmapOptions, MmapRaw};
use std::fs::File;
use std::io;

/// A read-only shared mapping of a whole file of fixed length.
pub(crate) struct MappedRegion {
    raw: MmapRaw,
    len: usize,
}

impl MappedRegion {
    /// Maps `len` bytes of `file` read-only. `len` must be non-zero and equal the file length.
    pub(crate) fn map(file: &File, len: u64) -> io::Result<Self> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "volume too large to map"))?;
        let raw = MmapOptions::new().len(len).map_raw_read_only(file)?;
        Ok(MappedRegion { raw, len })
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Calls `f` with the mapped bytes `[offset, offset + len)`; None if out of bounds.
    ///
    /// The slice only lives for the call, so it never outlives the mapping.
    pub(crate) fn with_slice<R>(&self, offset: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: [start, end) lies inside the live mapping (checked above), which stays
        // mapped for the whole call because `self` is borrowed. Plexus never truncates a
        // mapped volume file (volumes have a fixed size recorded in their identity file).
        // Other threads or processes may change these bytes through the file descriptor
        // while `f` runs; every bit pattern is a valid `u8`, and callers treat the bytes
        // as a snapshot of unspecified interleaving, exactly like a concurrent `pread`.
        let bytes = unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(start), len) };
        Some(f(bytes))
    }

    /// Hints the kernel that the mapping will be read front to back.
    pub(crate) fn advise_sequential(&self) {
        // Advice is only a hint: failing to give it changes speed, never results.
        let _ = self.raw.advise(Advice::Sequential);
    }
}
