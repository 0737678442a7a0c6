//! A copy over a stream of ranges: cut into chunks as the threads go, so the plan of a
//! huge volume takes no memory that grows with it; checked, trimmed and counted as it
//! comes.
#![allow(clippy::unwrap_used)]

use plexus_bitmap::ByteRange;
use plexus_copy::{copy_stream_with, ChunkHook, CopyControl, CopyOptions, NoHook};
use plexus_volume::{fill, BlockDevice, Fill, MemDevice};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

fn opts(threads: usize, chunk: u64) -> CopyOptions {
    CopyOptions { threads, chunk_size: chunk, sync: false, max_rate: 0, uncache_source: false }
}

/// A device of any size that holds nothing: for plans too large to back with memory.
struct Void(u64);

impl BlockDevice for Void {
    fn label(&self) -> &str {
        "void"
    }
    fn size(&self) -> u64 {
        self.0
    }
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> plexus_volume::Result<()> {
        Ok(())
    }
    fn write_at(&self, _offset: u64, _data: &[u8]) -> plexus_volume::Result<()> {
        Ok(())
    }
    fn flush(&self) -> plexus_volume::Result<()> {
        Ok(())
    }
}

/// Records the chunks instead of copying them, and checks that the plan has taken no
/// more ranges from the stream than the chunks handed out so far need.
struct Lazy<'a> {
    taken: &'a AtomicU64,
    seen: Mutex<(u64, u64)>,
}

impl ChunkHook for Lazy<'_> {
    fn around(&self, chunk: ByteRange, _copy: &mut dyn FnMut() -> plexus_volume::Result<u64>) -> plexus_volume::Result<()> {
        let mut seen = self.seen.lock().unwrap();
        seen.0 += 1;
        seen.1 += chunk.len;
        // One range per chunk here: taken <= chunks started (by both threads).
        assert!(
            self.taken.load(Ordering::SeqCst) <= seen.0 + 2,
            "the plan read ahead: {} ranges for {} chunks",
            self.taken.load(Ordering::SeqCst),
            seen.0
        );
        Ok(())
    }
}

#[test]
fn the_plan_of_a_petabyte_takes_its_ranges_as_the_copy_goes() {
    // 256 Ki ranges of 1 GiB every 4 GiB (a 1 PiB volume, 256 TiB to copy), in 1 GiB
    // chunks: a list of the chunks made up front would hold 256 Ki of them.
    let dev = Void(1 << 50);
    let taken = AtomicU64::new(0);
    let ranges = (0..1u64 << 18).map(|i| {
        taken.fetch_add(1, Ordering::SeqCst);
        ByteRange { offset: i << 32, len: 1 << 30 }
    });
    let hook = Lazy { taken: &taken, seen: Mutex::new((0, 0)) };
    let ctl = CopyControl::new();
    let r = copy_stream_with(&dev, &dev, ranges, 1 << 48, &opts(2, 1 << 30), &ctl, &hook).unwrap();
    assert_eq!((r.bytes_copied, r.chunks), (1 << 48, 1 << 18));
    assert_eq!(*hook.seen.lock().unwrap(), (1 << 18, 1 << 48));
}

#[test]
fn streamed_ranges_are_copied_once_each_and_counted() {
    let src = MemDevice::new("src", 100_000);
    let dst = MemDevice::new("dst", 100_000);
    fill(&src, 0, 100_000, Fill::Pattern(7)).unwrap();
    let ranges = vec![
        ByteRange { offset: 10, len: 5 },
        ByteRange { offset: 12, len: 10 }, // overlaps the one before: only 15..22 is new
        ByteRange { offset: 20, len: 0 },
        ByteRange { offset: 5000, len: 9000 },
        ByteRange { offset: 99_990, len: 10 },
    ];
    let ctl = CopyControl::new();
    // The caller expected less than the stream holds: progress follows what is found.
    let r = copy_stream_with(&src, &dst, ranges.into_iter(), 100, &opts(2, 4096), &ctl, &NoHook).unwrap();
    assert_eq!(r.bytes_copied, 12 + 9000 + 10);
    assert_eq!(r.chunks, 1 + 4 + 1);
    assert_eq!(ctl.progress(), (9022, 9022));
    for (i, b) in dst.contents().iter().enumerate() {
        let inside = (10..22).contains(&i) || (5000..14_000).contains(&i) || i >= 99_990;
        assert_eq!(*b, if inside { 7 } else { 0 }, "byte {i}");
    }
}

#[test]
fn a_range_past_the_end_stops_the_stream_with_e_range_when_it_comes_up() {
    let src = MemDevice::new("src", 1000);
    let dst = MemDevice::new("dst", 500);
    fill(&src, 0, 1000, Fill::Pattern(1)).unwrap();
    let ranges = [ByteRange { offset: 0, len: 10 }, ByteRange { offset: 400, len: 200 }];
    let e = copy_stream_with(&src, &dst, ranges.into_iter(), 210, &opts(1, 64), &CopyControl::new(), &NoHook).unwrap_err();
    assert_eq!(e.code(), "E_RANGE");
    assert!(e.to_string().contains("dst"), "{e}");
}

#[test]
fn a_cancelled_stream_with_ranges_left_is_e_cancelled() {
    let src = MemDevice::new("src", 1 << 20);
    let dst = MemDevice::new("dst", 1 << 20);
    let ctl = CopyControl::new();
    ctl.cancel();
    let ranges = (0..16u64).map(|i| ByteRange { offset: i << 16, len: 1 << 16 });
    let e = copy_stream_with(&src, &dst, ranges, 1 << 20, &opts(2, 1 << 16), &ctl, &NoHook).unwrap_err();
    assert_eq!(e.code(), "E_CANCELLED");
    // Nothing left to copy: a cancel changes nothing.
    let r = copy_stream_with(&src, &dst, std::iter::empty(), 0, &opts(2, 1 << 16), &ctl, &NoHook).unwrap();
    assert_eq!(r.bytes_copied, 0);
}
