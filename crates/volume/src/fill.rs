//! Filling ranges with a byte pattern or with reproducible pseudo-random data.
//!
//! Random bytes are a function of (seed, absolute offset) only, so filling a range in
//! one call or in many pieces gives the same bytes, and a test can recompute them.

use crate::device::{check_range, BlockDevice};
use crate::error::Result;

/// Write this many bytes per call to the device.
const PIECE: u64 = 4 << 20;

/// What to fill with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Every byte the same.
    Pattern(u8),
    /// Pseudo-random bytes derived from the seed and each byte's offset.
    Random(u64),
}

/// SplitMix64: a counter-based mixer, so word `i` never depends on word `i-1`.
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random bytes for `[offset, offset + out.len())` under `seed`.
pub fn random_bytes(seed: u64, offset: u64, out: &mut [u8]) {
    let head = (offset % 8) as usize;
    let mut word = offset / 8;
    let mut pos = 0usize;
    let mut skip = head;
    while pos < out.len() {
        let bytes = mix(seed, word).to_le_bytes();
        for b in bytes.iter().skip(skip) {
            let Some(slot) = out.get_mut(pos) else { return };
            *slot = *b;
            pos += 1;
        }
        skip = 0;
        word += 1;
    }
}

/// Fills `[offset, offset + len)` of `dev`.
pub fn fill(dev: &dyn BlockDevice, offset: u64, len: u64, what: Fill) -> Result<()> {
    check_range(dev.label(), offset, len, dev.size())?;
    let mut buf = vec![0u8; PIECE.min(len) as usize];
    if let Fill::Pattern(b) = what {
        buf.fill(b);
    }
    let mut at = offset;
    while at < offset + len {
        let n = PIECE.min(offset + len - at) as usize;
        let piece = buf.get_mut(..n).unwrap_or_default();
        if let Fill::Random(seed) = what {
            random_bytes(seed, at, piece);
        }
        dev.write_at(at, piece)?;
        at += n as u64;
    }
    Ok(())
}
