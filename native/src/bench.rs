//! Micro-benchmark kernels, run natively so the N-API call cost does not hide them.

use crate::error::{to_js, to_u64};
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;

/// The machine's memcpy bandwidth in bytes per second (best of `rounds`).
#[napi(catch_unwind)]
pub fn memcpy_bandwidth(bytes: f64, rounds: f64) -> napi::Result<f64> {
    let bytes = crate::args::buffer_len("bytes", bytes)?;
    Ok(plexus_copy::memcpy_bandwidth(bytes, crate::args::to_u64_max("rounds", rounds, 1_000_000)? as u32))
}

/// Nanoseconds per dirty-bitmap `set_bit`, averaged over `ops` calls on `bits` bits.
#[napi(catch_unwind)]
pub fn bitmap_set_ns(bits: f64, ops: f64) -> napi::Result<f64> {
    let bits = crate::args::to_u64_max("bits", bits, crate::args::MAX_BENCH_BITS)?;
    plexus_bitmap::bench::set_bit_ns(bits, crate::args::to_u64_max("ops", ops, 1 << 26)?).map_err(to_js)
}

/// Milliseconds to iterate the dirty runs of a `bits`-bit bitmap with `fraction` set.
#[napi(catch_unwind)]
pub fn bitmap_runs_ms(bits: f64, fraction: f64) -> napi::Result<BitmapRunsTiming> {
    let bits = crate::args::to_u64_max("bits", bits, crate::args::MAX_BENCH_BITS)?;
    let (ms, runs) = plexus_bitmap::bench::runs_ms(bits, crate::args::fraction("fraction", fraction)?, 5).map_err(to_js)?;
    Ok(BitmapRunsTiming { ms, runs: runs as f64 })
}

/// Result of [`bitmap_runs_ms`].
#[napi(object)]
pub struct BitmapRunsTiming {
    /// Best time over five iterations, in milliseconds.
    pub ms: f64,
    /// Runs found.
    pub runs: f64,
}

/// Nanoseconds (mean and median) per 4 KiB random write on the write paths of a pair, measured
/// natively (`plexus_mirror::bench`) so the N-API call cost does not hide them.
/// Scratch volumes are made in `dir`, which must exist and is left for the caller to
/// remove. `writes` is the number of steady writes per case; `granularity` the pairs'
/// bytes per bitmap bit (default 64 KiB); `newRegionWrites` the writes per case that
/// each dirty a region not yet marked (default 256; each one syncs).
#[napi(ts_return_type = "Promise<MirrorWritePath>", catch_unwind)]
pub fn mirror_write_path_ns(
    dir: String,
    size: f64,
    writes: f64,
    seed: f64,
    granularity: Option<f64>,
    new_region_writes: Option<f64>,
) -> napi::Result<AsyncTask<WritePathTask>> {
    let opts = plexus_mirror::bench::WritePathOptions {
        size: crate::args::to_u64_max("size", crate::args::bitmap_geometry(size, granularity.unwrap_or(65536.0))?.0 as f64, 1 << 34)?,
        writes: crate::args::to_u64_max("writes", writes, 1 << 20)?,
        seed: to_u64("seed", seed)?,
        granularity: to_u64("granularity", granularity.unwrap_or(65536.0))?,
        new_region_writes: crate::args::to_u64_max("new region writes", new_region_writes.unwrap_or(256.0), 1 << 16)?,
    };
    Ok(AsyncTask::new(WritePathTask { dir: dir.into(), opts }))
}

/// Nanoseconds per 4 KiB write of one write path.
#[napi(object)]
pub struct WriteCost {
    /// Mean over all the case's writes.
    pub mean_ns: f64,
    /// Median over turns of the mean write per turn (robust to stalls caused by other
    /// processes on a shared machine).
    pub median_ns: f64,
}

impl From<plexus_mirror::bench::WriteCost> for WriteCost {
    fn from(c: plexus_mirror::bench::WriteCost) -> Self {
        WriteCost { mean_ns: c.mean_ns, median_ns: c.median_ns }
    }
}

/// Result of [`mirror_write_path_ns`]: what a 4 KiB random write costs on each path.
#[napi(object)]
pub struct MirrorWritePath {
    /// A volume with no pair.
    pub plain: WriteCost,
    /// A split primary without write intent (the bit is set in memory).
    pub split: WriteCost,
    /// A split primary with write intent, region already marked (the steady path).
    pub split_intent: WriteCost,
    /// A split primary with write intent, each write dirtying a new region (synced).
    pub split_intent_new: WriteCost,
    /// A mirrored primary (PAIR, two copies) with write intent, region already marked.
    pub pair: WriteCost,
    /// A mirrored primary with write intent, each write dirtying a new region.
    pub pair_new: WriteCost,
    /// Steady writes per case.
    pub writes: f64,
    /// New-region writes per case.
    pub new_region_writes: f64,
}

/// The write-path kernel on the libuv pool.
pub struct WritePathTask {
    dir: std::path::PathBuf,
    opts: plexus_mirror::bench::WritePathOptions,
}

impl Task for WritePathTask {
    type Output = plexus_mirror::bench::WritePathTiming;
    type JsValue = MirrorWritePath;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        crate::error::guard(|| plexus_mirror::bench::write_path_ns(&self.dir, &self.opts).map_err(to_js))
    }

    fn resolve(&mut self, _env: Env, t: Self::Output) -> napi::Result<MirrorWritePath> {
        Ok(MirrorWritePath {
            plain: t.plain.into(),
            split: t.split.into(),
            split_intent: t.split_intent.into(),
            split_intent_new: t.split_intent_new.into(),
            pair: t.pair.into(),
            pair_new: t.pair_new.into(),
            writes: t.writes as f64,
            new_region_writes: t.new_region_writes as f64,
        })
    }
}

/// What one sequenced-replay run measured (`plexus_journal::bench::replay_bench`).
#[napi(object)]
pub struct ReplayTiming {
    /// Records applied per second (decode, verify, reorder, apply).
    pub records_per_s: f64,
    /// Data bytes applied per second.
    pub bytes_per_s: f64,
    /// Bytes per second of an in-order memcpy of the same bytes (the limit).
    pub memcpy_bytes_per_s: f64,
}

/// Replays `records` records of `recordSize` bytes, shuffled within windows of `window`
/// records, through the applier into memory, against an in-order memcpy of the same bytes.
#[napi(ts_return_type = "Promise<ReplayTiming>", catch_unwind)]
pub fn journal_replay_bench(record_size: f64, records: f64, window: f64, seed: f64) -> napi::Result<AsyncTask<ReplayTask>> {
    Ok(AsyncTask::new(ReplayTask {
        record_size: crate::args::buffer_len("recordSize", record_size)?.min(32 << 20),
        records: to_u64("records", records)?,
        window: crate::args::buffer_len("window", window)?,
        seed: to_u64("seed", seed)?,
    }))
}

/// `journalReplayBench` on the libuv pool.
pub struct ReplayTask {
    record_size: usize,
    records: u64,
    window: usize,
    seed: u64,
}

impl Task for ReplayTask {
    type Output = plexus_journal::bench::ReplayFigures;
    type JsValue = ReplayTiming;
    fn compute(&mut self) -> napi::Result<Self::Output> {
        crate::error::guard(|| Ok(plexus_journal::bench::replay_bench(self.record_size, self.records, self.window, self.seed)))
    }
    fn resolve(&mut self, _env: Env, f: Self::Output) -> napi::Result<ReplayTiming> {
        Ok(ReplayTiming { records_per_s: f.records_per_s, bytes_per_s: f.bytes_per_s, memcpy_bytes_per_s: f.memcpy_bytes_per_s })
    }
}

/// What the initial copy of a sparse pair cost its sidecars (`plexus_mirror::bench::checkpoint_costs`).
#[napi(object)]
pub struct CheckpointCosts {
    /// Logical size of the volumes, bytes.
    pub size: f64,
    /// Bytes of data copied (the rest were holes, punched).
    pub data: f64,
    /// Granules the copy visited.
    pub granules: f64,
    /// Bytes the copy wrote to sidecar files (snapshots and logs).
    pub sidecar_bytes: f64,
    /// fsyncs and fdatasyncs of sidecar files and their directory during the copy.
    pub sidecar_syncs: f64,
    /// Snapshots written during the copy.
    pub snapshots: f64,
    /// Log records appended during the copy.
    pub records: f64,
    /// Wall time of the copy, seconds.
    pub seconds: f64,
    /// Bytes the pair's creation wrote to its sidecars before the copy.
    pub setup_bytes: f64,
    /// Syncs of the pair's creation.
    pub setup_syncs: f64,
}

/// Pairs two sparse volumes of `size` bytes made in `dir` (which must exist; files are left
/// for the caller to remove), the primary holding `data` bytes in 1 MiB pieces spread over
/// it, and measures the initial copy: what its checkpoints cost the sidecars and its wall
/// time. `granularity` defaults to 64 KiB, `threads` to one per core.
#[napi(ts_return_type = "Promise<CheckpointCosts>", catch_unwind)]
pub fn mirror_checkpoint_costs(
    dir: String,
    size: f64,
    data: f64,
    granularity: Option<f64>,
    threads: Option<f64>,
) -> napi::Result<AsyncTask<CheckpointCostTask>> {
    let (size, granularity) = crate::args::bitmap_geometry(size, granularity.unwrap_or(65536.0))?;
    let opts = plexus_mirror::bench::CheckpointCostOptions {
        size: crate::args::to_u64_max("size", size as f64, 1 << 46)?,
        data: crate::args::to_u64_max("data", data, size)?,
        granularity,
        threads: crate::args::threads(threads)?,
    };
    Ok(AsyncTask::new(CheckpointCostTask { dir: dir.into(), opts }))
}

/// `mirrorCheckpointCosts` on the libuv pool.
pub struct CheckpointCostTask {
    dir: std::path::PathBuf,
    opts: plexus_mirror::bench::CheckpointCostOptions,
}

impl Task for CheckpointCostTask {
    type Output = plexus_mirror::bench::CheckpointCosts;
    type JsValue = CheckpointCosts;
    fn compute(&mut self) -> napi::Result<Self::Output> {
        crate::error::guard(|| plexus_mirror::bench::checkpoint_costs(&self.dir, &self.opts).map_err(to_js))
    }
    fn resolve(&mut self, _env: Env, c: Self::Output) -> napi::Result<CheckpointCosts> {
        Ok(CheckpointCosts {
            size: c.size as f64,
            data: c.data as f64,
            granules: c.granules as f64,
            sidecar_bytes: c.sidecar_bytes as f64,
            sidecar_syncs: c.sidecar_syncs as f64,
            snapshots: c.snapshots as f64,
            records: c.records as f64,
            seconds: c.seconds,
            setup_bytes: c.setup_bytes as f64,
            setup_syncs: c.setup_syncs as f64,
        })
    }
}

/// Durable marks per second and the log fdatasyncs they took (`plexus_bitmap::bench::durable_marks_per_s`).
#[napi(object)]
pub struct DurableMarkRate {
    /// Marks per second, all writers together.
    pub marks_per_s: f64,
    /// Log fdatasyncs issued (concurrent marks share them).
    pub syncs: f64,
    /// Marks made.
    pub marks: f64,
}

/// `threads` writers each making `marksPerThread` durable marks of granules no record covers
/// yet, on a fresh sidecar in `dir` (which must exist; left for the caller to remove).
#[napi(ts_return_type = "Promise<DurableMarkRate>", catch_unwind)]
pub fn bitmap_durable_marks(dir: String, threads: f64, marks_per_thread: f64) -> napi::Result<AsyncTask<DurableMarkTask>> {
    Ok(AsyncTask::new(DurableMarkTask {
        dir: dir.into(),
        threads: crate::args::to_u64_max("threads", threads, u64::from(crate::args::MAX_THREADS))?.max(1),
        marks: crate::args::to_u64_max("marksPerThread", marks_per_thread, 1 << 20)?.max(1),
    }))
}

/// `bitmapDurableMarks` on the libuv pool.
pub struct DurableMarkTask {
    dir: std::path::PathBuf,
    threads: u64,
    marks: u64,
}

impl Task for DurableMarkTask {
    type Output = (f64, u64);
    type JsValue = DurableMarkRate;
    fn compute(&mut self) -> napi::Result<Self::Output> {
        crate::error::guard(|| plexus_bitmap::bench::durable_marks_per_s(&self.dir, self.threads, self.marks).map_err(to_js))
    }
    fn resolve(&mut self, _env: Env, (rate, syncs): Self::Output) -> napi::Result<DurableMarkRate> {
        Ok(DurableMarkRate { marks_per_s: rate, syncs: syncs as f64, marks: (self.threads * self.marks) as f64 })
    }
}
