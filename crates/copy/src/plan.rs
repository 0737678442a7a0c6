//! Cutting byte ranges into chunks that threads take one at a time, as they go: a plan
//! holds the range being cut, never the list of chunks (25 M of them for 100 TiB).

use plexus_bitmap::ByteRange;

/// Cuts one range at a time into chunks of at most `chunk` bytes, cut at multiples of
/// `chunk` so that chunks of neighbouring ranges line up with the volume's own layout.
#[derive(Clone, Copy, Debug)]
pub struct Chunker {
    chunk: u64,
    at: u64,
    end: u64,
}

impl Chunker {
    /// A chunker with nothing to cut yet (a chunk of 0 counts as 1).
    pub fn new(chunk: u64) -> Self {
        Chunker { chunk: chunk.max(1), at: 0, end: 0 }
    }

    /// Starts cutting `r`, dropping what was left of the range before.
    pub fn start(&mut self, r: ByteRange) {
        self.at = r.offset;
        self.end = r.offset.saturating_add(r.len);
    }

    /// The next chunk of the range being cut; `None` once it is used up.
    pub fn next_chunk(&mut self) -> Option<ByteRange> {
        if self.at >= self.end {
            return None;
        }
        let boundary = (self.at / self.chunk + 1).saturating_mul(self.chunk);
        let next = boundary.min(self.end);
        let c = ByteRange { offset: self.at, len: next - self.at };
        self.at = next;
        Some(c)
    }

    /// How many chunks `r` is cut into.
    pub fn count(&self, r: ByteRange) -> u64 {
        match r.len {
            0 => 0,
            len => (r.offset.saturating_add(len) - 1) / self.chunk - r.offset / self.chunk + 1,
        }
    }
}

/// The chunks of a stream of ranges, cut lazily (see [`Chunker`]); empty ranges are
/// dropped, order is preserved.
#[derive(Clone, Debug)]
pub struct Chunks<I> {
    ranges: I,
    cut: Chunker,
}

impl<I: Iterator<Item = ByteRange>> Iterator for Chunks<I> {
    type Item = ByteRange;

    fn next(&mut self) -> Option<ByteRange> {
        loop {
            if let Some(c) = self.cut.next_chunk() {
                return Some(c);
            }
            self.cut.start(self.ranges.next()?);
        }
    }
}

/// Cuts `ranges` into chunks of at most `chunk` bytes as they are asked for.
pub fn chunks<I: IntoIterator<Item = ByteRange>>(ranges: I, chunk: u64) -> Chunks<I::IntoIter> {
    Chunks { ranges: ranges.into_iter(), cut: Chunker::new(chunk) }
}

/// Splits `ranges` into chunks of at most `chunk` bytes, cut at multiples of `chunk`
/// so that chunks of neighbouring ranges line up with the volume's own layout.
/// Empty ranges are dropped; order is preserved. (A copy cuts as it goes, with
/// [`chunks`]; this list is for callers that want it whole.)
pub fn chunk_ranges(ranges: &[ByteRange], chunk: u64) -> Vec<ByteRange> {
    chunks(ranges.iter().copied(), chunk).collect()
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
    fn chunks_come_lazily_and_are_counted_without_cutting() {
        let ranges = [r(100, 250), r(0, 0), r(512, 128), r(u64::MAX - 10, 10)];
        let mut lazy = chunks(ranges.iter().copied(), 128);
        assert_eq!(lazy.next(), Some(r(100, 28)));
        assert_eq!(lazy.by_ref().take(2).collect::<Vec<_>>(), vec![r(128, 128), r(256, 94)]);
        assert_eq!(lazy.next(), Some(r(512, 128)));
        assert_eq!(lazy.next(), Some(r(u64::MAX - 10, 10)));
        assert_eq!(lazy.next(), None);
        let c = Chunker::new(128);
        assert_eq!(ranges.iter().map(|&x| c.count(x)).collect::<Vec<_>>(), vec![3, 0, 1, 1]);
    }

    #[test]
    fn normalize_merges_overlapping_and_touching_ranges() {
        assert_eq!(normalize(&[r(50, 10), r(0, 10), r(10, 5), r(55, 20), r(90, 0)]), vec![r(0, 15), r(50, 25)]);
    }
}
