//! The first bytes of a larger device, as a device of their own: a mirror's secondary
//! may be larger than its primary (an array pairs a volume with one of equal or larger
//! capacity), and only the primary's size is mirrored.

use crate::device::{check_range, BlockDevice};
use crate::error::Result;
use crate::volume::BackingFile;
use std::sync::Arc;

/// `[0, size)` of `inner`; every access past `size` fails E_RANGE as past a device's end.
pub struct Prefix {
    inner: Arc<dyn BlockDevice>,
    size: u64,
}

impl Prefix {
    /// The first `size` bytes of `inner` (all of it if it is smaller).
    pub fn new(inner: Arc<dyn BlockDevice>, size: u64) -> Self {
        let size = size.min(inner.size());
        Prefix { inner, size }
    }

    /// `inner` itself when it already has `size` bytes, else its first `size` bytes.
    pub fn of(inner: Arc<dyn BlockDevice>, size: u64) -> Arc<dyn BlockDevice> {
        if inner.size() == size {
            inner
        } else {
            Arc::new(Prefix::new(inner, size))
        }
    }
}

impl BlockDevice for Prefix {
    fn label(&self) -> &str {
        self.inner.label()
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(self.label(), offset, buf.len() as u64, self.size)?;
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        check_range(self.label(), offset, data.len() as u64, self.size)?;
        self.inner.write_at(offset, data)
    }
    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
    fn backing_file(&self, write: bool) -> Option<BackingFile<'_>> {
        // Same offsets in the same file; callers copy only ranges they checked against
        // `size` (the copy engine plans within the smaller device).
        self.inner.backing_file(write)
    }
    fn write_zeroes(&self, offset: u64, len: u64, punch: bool) -> Result<()> {
        check_range(self.label(), offset, len, self.size)?;
        self.inner.write_zeroes(offset, len, punch)
    }
    fn allocation(&self, offset: u64, len: u64) -> Result<Vec<(u64, bool)>> {
        check_range(self.label(), offset, len, self.size)?;
        self.inner.allocation(offset, len)
    }
    fn cache(&self, offset: u64, len: u64) -> Result<()> {
        check_range(self.label(), offset, len, self.size)?;
        self.inner.cache(offset, len)
    }
    fn uncache(&self, offset: u64, len: u64) {
        self.inner.uncache(offset, len.min(self.size.saturating_sub(offset)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemDevice;

    #[test]
    fn a_prefix_passes_its_range_through_and_refuses_the_rest() {
        let inner: Arc<dyn BlockDevice> = Arc::new(MemDevice::new("big", 8192));
        let p = Prefix::of(inner.clone(), 4096);
        assert_eq!(p.size(), 4096);
        p.write_at(4000, &[7u8; 96]).expect("inside");
        let mut b = [0u8; 96];
        inner.read_at(4000, &mut b).expect("read inner");
        assert_eq!(b, [7u8; 96]);
        assert_eq!(p.write_at(4000, &[1u8; 97]).expect_err("past").code(), "E_RANGE");
        assert_eq!(p.read_at(4096, &mut [0u8; 1]).expect_err("past").code(), "E_RANGE");
        assert_eq!(p.write_zeroes(0, 4097, true).expect_err("past").code(), "E_RANGE");
        // Same size: no wrapper at all.
        assert!(Arc::ptr_eq(&Prefix::of(inner.clone(), 8192), &inner));
    }
}
