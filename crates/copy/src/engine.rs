//! The threaded copy engine: workers take chunks from a shared plan, cut from a stream of
//! ranges as they go, until the plan is done, an error stops them, or the caller cancels.

use crate::error::CopyError;
use crate::plan::{normalize, Chunker};
use plexus_bitmap::ByteRange;
use plexus_volume::{check_range, BlockDevice};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default chunk: large enough that per-chunk overhead vanishes, small enough that
/// two threads share a volume evenly and cancellation is prompt.
pub const DEFAULT_CHUNK: u64 = 4 << 20;

/// How to copy.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Bytes per chunk.
    pub chunk_size: u64,
    /// Flush the destination before reporting success.
    pub sync: bool,
    /// Copy pace in bytes per second (0: as fast as possible), so a background copy
    /// leaves bandwidth to the application that writes the volume.
    pub max_rate: u64,
    /// Drop each chunk's pages of the source from the page cache once copied: for copies
    /// that read a live volume in bulk (a pair's resync or fill), so they leave its cache
    /// as the application made it (see `Volume::uncache`).
    pub uncache_source: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions { threads: 0, chunk_size: DEFAULT_CHUNK, sync: true, max_rate: 0, uncache_source: false }
    }
}

/// Shared between a running copy and whoever watches it: progress counters that can be
/// polled from any thread, and the cancel flag.
#[derive(Debug, Default)]
pub struct CopyControl {
    cancel: AtomicBool,
    done: AtomicU64,
    total: AtomicU64,
}

impl CopyControl {
    /// A fresh control block.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the copy to stop after the chunks in flight.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
    /// (bytes copied so far, bytes to copy in all).
    pub fn progress(&self) -> (u64, u64) {
        (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed))
    }
    /// Starts counting a transfer of `total` bytes.
    pub fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
    }
    /// Sets the bytes done (a transfer that reports the progress of another one it runs).
    pub fn set_done(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
    }
    /// Counts `n` more bytes done; returns the bytes done so far.
    pub fn add(&self, n: u64) -> u64 {
        self.done.fetch_add(n, Ordering::Relaxed) + n
    }
}

/// Wraps the copy of each chunk: a mirror takes its region lock here and clears its
/// dirty bits after the copy, so a racing write can never be overwritten by older data.
pub trait ChunkHook: Sync {
    /// Runs `copy` for `chunk`, doing whatever must surround it. `copy` returns the bytes
    /// of data it copied (the chunk less the source's holes, which it punched instead).
    fn around(&self, chunk: ByteRange, copy: &mut dyn FnMut() -> plexus_volume::Result<u64>) -> plexus_volume::Result<()>;
}

/// The hook that only copies.
pub struct NoHook;

impl ChunkHook for NoHook {
    fn around(&self, _chunk: ByteRange, copy: &mut dyn FnMut() -> plexus_volume::Result<u64>) -> plexus_volume::Result<()> {
        copy().map(|_| ())
    }
}

/// What a finished copy did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyReport {
    /// Bytes copied.
    pub bytes_copied: u64,
    /// Chunks copied.
    pub chunks: u64,
    /// Wall time from start to the end of the final flush.
    pub elapsed: Duration,
    /// Threads used.
    pub threads: usize,
}

/// Copies the whole of `src` onto `dst`; they must be the same size (E_SIZE).
pub fn copy_all(src: &dyn BlockDevice, dst: &dyn BlockDevice, opts: &CopyOptions, ctl: &CopyControl) -> Result<CopyReport, CopyError> {
    if src.size() != dst.size() {
        return Err(CopyError::Size {
            detail: format!("size mismatch: {} is {} bytes but {} is {} bytes", src.label(), src.size(), dst.label(), dst.size()),
        });
    }
    copy_ranges(src, dst, &[ByteRange { offset: 0, len: src.size() }], opts, ctl)
}

/// Copies each byte range of `src` to the same offsets of `dst`. Overlapping ranges are
/// merged first, so each byte is copied once.
pub fn copy_ranges(
    src: &dyn BlockDevice,
    dst: &dyn BlockDevice,
    ranges: &[ByteRange],
    opts: &CopyOptions,
    ctl: &CopyControl,
) -> Result<CopyReport, CopyError> {
    copy_ranges_with(src, dst, ranges, opts, ctl, &NoHook)
}

/// [`copy_ranges`] with a hook around each chunk.
pub fn copy_ranges_with(
    src: &dyn BlockDevice,
    dst: &dyn BlockDevice,
    ranges: &[ByteRange],
    opts: &CopyOptions,
    ctl: &CopyControl,
    hook: &dyn ChunkHook,
) -> Result<CopyReport, CopyError> {
    let ranges = normalize(ranges);
    for r in &ranges {
        check_range(src.label(), r.offset, r.len, src.size())?;
        check_range(dst.label(), r.offset, r.len, dst.size())?;
    }
    let total = ranges.iter().map(|r| r.len).sum();
    let cut = Chunker::new(opts.chunk_size);
    let chunks = ranges.iter().map(|&r| cut.count(r)).sum();
    run(src, dst, ranges.into_iter(), total, chunks, opts, ctl, hook)
}

/// Copies a stream of byte ranges in ascending order (a bitmap's dirty runs, scanned as
/// the copy goes), with a hook around each chunk. Nothing is planned up front: the
/// threads cut chunks from the stream under a mutex, so the plan's memory does not grow
/// with the volume. `total` is the bytes the caller expects, for progress (a stream that
/// holds more raises it). A range past the end of either device stops the copy with
/// E_RANGE when it comes up; a part of a range that lies before the end of an earlier one
/// is not copied again.
pub fn copy_stream_with<I>(
    src: &dyn BlockDevice,
    dst: &dyn BlockDevice,
    ranges: I,
    total: u64,
    opts: &CopyOptions,
    ctl: &CopyControl,
    hook: &dyn ChunkHook,
) -> Result<CopyReport, CopyError>
where
    I: Iterator<Item = ByteRange> + Send,
{
    let chunks = total.div_ceil(opts.chunk_size.max(1));
    run(src, dst, ranges, total, chunks, opts, ctl, hook)
}

/// What the threads take chunks from: the stream of ranges, checked and cut as it goes.
struct Plan<'a, I> {
    ranges: I,
    src: &'a dyn BlockDevice,
    dst: &'a dyn BlockDevice,
    cut: Chunker,
    /// End of the last range taken: what lies before it was handed out already.
    reached: u64,
    /// Bytes handed out so far (a paced chunk starts once those are due).
    before: u64,
}

impl<I: Iterator<Item = ByteRange>> Plan<'_, I> {
    /// The next chunk and the bytes handed out before it; `None` when the stream ends.
    fn take(&mut self) -> Result<Option<(ByteRange, u64)>, CopyError> {
        loop {
            if let Some(c) = self.cut.next_chunk() {
                let before = self.before;
                self.before += c.len;
                return Ok(Some((c, before)));
            }
            let Some(r) = self.ranges.next() else { return Ok(None) };
            check_range(self.src.label(), r.offset, r.len, self.src.size())?;
            check_range(self.dst.label(), r.offset, r.len, self.dst.size())?;
            // In range of both devices, so the end cannot overflow.
            let (start, end) = (r.offset.max(self.reached), r.offset + r.len);
            if start < end {
                self.cut.start(ByteRange { offset: start, len: end - start });
                self.reached = end;
            }
        }
    }
}

/// The copy itself: `threads` workers take chunks from the plan until it ends, an error
/// stops them, or the caller cancels. `chunks` (the expected count) only caps the threads.
#[allow(clippy::too_many_arguments)]
fn run<I>(
    src: &dyn BlockDevice,
    dst: &dyn BlockDevice,
    ranges: I,
    total: u64,
    chunks: u64,
    opts: &CopyOptions,
    ctl: &CopyControl,
    hook: &dyn ChunkHook,
) -> Result<CopyReport, CopyError>
where
    I: Iterator<Item = ByteRange> + Send,
{
    let start = Instant::now();
    ctl.start(total);
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    }
    .clamp(1, usize::try_from(chunks).unwrap_or(usize::MAX).max(1));
    let plan = Mutex::new(Plan { ranges, src, dst, cut: Chunker::new(opts.chunk_size), reached: 0, before: 0 });
    let copied = AtomicU64::new(0);
    let first_error: Mutex<Option<CopyError>> = Mutex::new(None);
    let failed = AtomicBool::new(false);
    let fail = |e: CopyError| {
        failed.store(true, Ordering::Relaxed);
        if let Ok(mut slot) = first_error.lock() {
            slot.get_or_insert(e);
        }
    };

    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut scratch = Vec::new();
                while !failed.load(Ordering::Relaxed) && !ctl.is_cancelled() {
                    let next = plan.lock().unwrap_or_else(|p| p.into_inner()).take();
                    let (chunk, before) = match next {
                        Ok(Some(c)) => c,
                        Ok(None) => break,
                        Err(e) => {
                            fail(e);
                            break;
                        }
                    };
                    // A stream may hold more than the caller expected: progress never passes 100%.
                    ctl.total.fetch_max(before + chunk.len, Ordering::Relaxed);
                    if !pace(start, before, opts.max_rate, ctl) {
                        break;
                    }
                    if let Err(e) = hook.around(chunk, &mut || copy_chunk(src, dst, chunk, &mut scratch, opts.uncache_source)) {
                        fail(e.into());
                        break;
                    }
                    ctl.add(chunk.len);
                    copied.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });

    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    let (bytes_copied, _) = ctl.progress();
    // Cancelled with work left (a chunk handed out and not copied, or more in the stream).
    if ctl.is_cancelled() {
        let mut plan = plan.into_inner().unwrap_or_else(|p| p.into_inner());
        if bytes_copied < plan.before || !matches!(plan.take(), Ok(None)) {
            return Err(CopyError::Cancelled { bytes_copied });
        }
    }
    if opts.sync {
        dst.flush()?;
    }
    Ok(CopyReport { bytes_copied, chunks: copied.into_inner(), elapsed: start.elapsed(), threads })
}

/// Waits, before a chunk, until the `before` bytes ahead of it are due at `rate` bytes
/// per second since `start`: the copy keeps to its rate, the first chunk starts at once
/// and nothing waits after the last one. The wait is sliced so that a cancellation ends
/// it promptly; false when cancelled.
fn pace(start: Instant, before: u64, rate: u64, ctl: &CopyControl) -> bool {
    if rate == 0 {
        return true;
    }
    // Never a panic: a due time past what a Duration holds is "not yet", for ever (until cancelled).
    let due = Duration::try_from_secs_f64(before as f64 / rate as f64).unwrap_or(Duration::MAX);
    while let Some(wait) = due.checked_sub(start.elapsed()) {
        if ctl.is_cancelled() {
            return false;
        }
        std::thread::sleep(wait.min(Duration::from_millis(50)));
    }
    !ctl.is_cancelled()
}

/// Copies one chunk: in the kernel (`splice` through a pipe) from volume file to volume file,
/// else through `scratch` (a buffer of this worker's own: what is written is exactly
/// what was read, whatever happens to the source meanwhile).
fn copy_chunk(
    src: &dyn BlockDevice,
    dst: &dyn BlockDevice,
    c: ByteRange,
    scratch: &mut Vec<u8>,
    uncache: bool,
) -> plexus_volume::Result<u64> {
    let data = copy_chunk_data(src, dst, c, scratch)?;
    if uncache {
        src.uncache(c.offset, c.len);
    }
    Ok(data)
}

/// Copies one chunk, keeping the source's holes: a region the file system reports as a
/// hole (SEEK_HOLE) is punched in the destination instead of written as zeroes, so a
/// thin volume stays thin and its holes cost no I/O. Devices that know no holes copy
/// everything. Returns the bytes of data copied.
fn copy_chunk_data(src: &dyn BlockDevice, dst: &dyn BlockDevice, c: ByteRange, scratch: &mut Vec<u8>) -> plexus_volume::Result<u64> {
    let runs = match src.allocation(c.offset, c.len) {
        Ok(runs) if runs.iter().any(|&(_, hole)| hole) => runs,
        _ => return copy_range(src, dst, c, scratch).map(|()| c.len),
    };
    // A hole past a truncation of the source is not zeroes but a damaged volume: reading
    // the chunk's last byte fails (E_CORRUPT, naming the volume and offset) if the file no
    // longer reaches it, as a full read would.
    if c.len > 0 {
        src.read_at(c.offset + c.len - 1, &mut [0u8; 1])?;
    }
    let mut at = c.offset;
    let mut data = 0;
    for (len, hole) in runs {
        let run = ByteRange { offset: at, len };
        if hole {
            dst.write_zeroes(at, len, true)?;
        } else {
            copy_range(src, dst, run, scratch)?;
            data += len;
        }
        at += len;
    }
    Ok(data)
}

fn copy_range(src: &dyn BlockDevice, dst: &dyn BlockDevice, c: ByteRange, scratch: &mut Vec<u8>) -> plexus_volume::Result<()> {
    if let (Some(from), Some(to)) = (src.backing_file(false), dst.backing_file(true)) {
        if let Some(r) = from.copy_to(&to, c.offset, c.len) {
            return r;
        }
    }
    scratch.resize(c.len as usize, 0);
    src.read_at(c.offset, scratch)?;
    dst.write_at(c.offset, scratch)
}
