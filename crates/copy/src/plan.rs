//! Cutting byte ranges into chunks that threads take one at a time.

use plexus_bitmap::ByteRange;

/// Splits `ranges` into chunks of at most `chunk` bytes, cut at multiples of `chunk`
/// so that chunks of neighbouring ranges line up with the volume's own layout.
/// Empty ranges are dropped; order is preserved.
pub fn chunk_ranges(ranges: &[ByteRange], chunk: u64) -> Vec<ByteRange> {
    let chunk = chunk.max(1);
    let mut out = Vec::new();
    for r in ranges {
        let end = r.offset.saturating_add(r.len);
        let mut at = r.offset;
        while at < end {
            let boundary = (at / chunk + 1).saturating_mul(chunk);
            let next = boundary.min(end);
            out.push(ByteRange { offset: at, len: next - at });
            at = next;
        }
    }
    out
}

/// Sorts ranges and merges those that overlap or touch, so nothing is copied twice.
pub fn normalize(ranges: &[ByteRange]) -> Vec<ByteRange> {
    let mut v: Vec<ByteRange> = ranges.iter().copied().filter(|r| r.len > 0).collect();
    v.sort_by_key(|r| r.offset);
    let mut out: Vec<ByteRange> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if r.offset <= last.offset + last.len => {
                let end = (r.offset + r.len).max(last.offset + last.len);
                last.len = end - last.offset;
            }
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(offset: u64, len: u64) -> ByteRange {
        ByteRange { offset, len }
    }

    #[test]
    fn chunks_are_cut_at_multiples_of_the_chunk_size() {
        let c = chunk_ranges(&[r(100, 250)], 128);
        assert_eq!(c, vec![r(100, 28), r(128, 128), r(256, 94)]);
        assert_eq!(c.iter().map(|x| x.len).sum::<u64>(), 250);
    }

    #[test]
    fn normalize_merges_overlapping_and_touching_ranges() {
        assert_eq!(normalize(&[r(50, 10), r(0, 10), r(10, 5), r(55, 20), r(90, 0)]), vec![r(0, 15), r(50, 25)]);
    }
}
