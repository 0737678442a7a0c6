//! Block copy as a pollable, cancellable job.

use crate::error::{coded, to_js, to_u64};
use crate::job::take_plan;
use crate::volume::NativeVolume;
use napi::bindgen_prelude::{AbortSignal, AsyncTask};
use napi::{Env, Task};
use napi_derive::napi;
use plexus_bitmap::ByteRange;
use plexus_copy::{CopyControl, CopyOptions, CopyReport};
use plexus_volume::Volume;
use std::sync::{Arc, Mutex};

/// A byte range of a volume.
#[napi(object)]
#[derive(Clone, Copy)]
pub struct Extent {
    /// First byte.
    pub offset: f64,
    /// Length in bytes.
    pub length: f64,
}

/// How to run a copy.
#[napi(object)]
pub struct CopyJobOptions {
    /// Worker threads (default: one per core).
    pub threads: Option<f64>,
    /// Chunk size in bytes (default 4 MiB).
    pub chunk_size: Option<f64>,
    /// Only these ranges (default: the whole volume; sizes must then match).
    pub ranges: Option<Vec<Extent>>,
    /// fsync the destination at the end (default true).
    pub sync: Option<bool>,
    /// Copy pace in bytes per second (default: unlimited).
    pub max_rate: Option<f64>,
}

/// What a finished copy did.
#[napi(object)]
pub struct CopyResult {
    /// Bytes copied.
    pub bytes_copied: f64,
    /// Chunks copied.
    pub chunks: f64,
    /// Wall time in milliseconds.
    pub elapsed_ms: f64,
    /// Threads used.
    pub threads: u32,
}

/// Bytes done and bytes in all, for a progress bar.
#[napi(object)]
pub struct CopyProgress {
    /// Bytes copied so far.
    pub done: f64,
    /// Bytes to copy in all (0 until the copy has planned its chunks).
    pub total: f64,
}

impl From<&CopyControl> for CopyProgress {
    fn from(ctl: &CopyControl) -> Self {
        let (done, total) = ctl.progress();
        CopyProgress { done: done as f64, total: total as f64 }
    }
}

struct Plan {
    src: Arc<Volume>,
    dst: Arc<Volume>,
    ranges: Option<Vec<ByteRange>>,
    opts: CopyOptions,
}

/// One copy from a source volume to a destination volume.
#[napi]
pub struct CopyJob {
    ctl: Arc<CopyControl>,
    plan: Mutex<Option<Plan>>,
}

#[napi]
impl CopyJob {
    /// Prepares a copy; nothing moves until `run`.
    #[napi(constructor, catch_unwind)]
    pub fn new(src: &NativeVolume, dst: &NativeVolume, options: Option<CopyJobOptions>) -> napi::Result<Self> {
        let o = options.unwrap_or(CopyJobOptions { threads: None, chunk_size: None, ranges: None, sync: None, max_rate: None });
        if src.inner.identity().id == dst.inner.identity().id {
            return Err(coded("E_BUSY", format!("cannot copy volume {} onto itself", src.inner.name())));
        }
        let mut opts = CopyOptions { threads: crate::args::threads(o.threads)?, ..CopyOptions::default() };
        if let Some(c) = o.chunk_size {
            opts.chunk_size = crate::args::to_u64_max("chunk size", c, crate::args::MAX_BUFFER)?.max(4096);
        }
        opts.sync = o.sync.unwrap_or(true);
        opts.max_rate = to_u64("max rate", o.max_rate.unwrap_or(0.0))?;
        let ranges = match o.ranges {
            None => None,
            Some(v) => Some(
                v.iter()
                    .map(|e| Ok(ByteRange { offset: to_u64("offset", e.offset)?, len: to_u64("length", e.length)? }))
                    .collect::<napi::Result<Vec<_>>>()?,
            ),
        };
        let plan = Plan { src: src.inner.clone(), dst: dst.inner.clone(), ranges, opts };
        Ok(CopyJob { ctl: Arc::new(CopyControl::new()), plan: Mutex::new(Some(plan)) })
    }

    /// Runs the copy off the JS thread; resolves with the report. A job runs once.
    #[napi(ts_return_type = "Promise<CopyResult>", catch_unwind)]
    pub fn run(&self, signal: Option<AbortSignal>) -> napi::Result<AsyncTask<CopyTask>> {
        let plan = take_plan(&self.plan, "copy job")?;
        Ok(AsyncTask::with_optional_signal(CopyTask { plan: Some(plan), ctl: self.ctl.clone() }, signal))
    }

    /// Bytes done so far; safe to poll while the copy runs.
    #[napi(catch_unwind)]
    pub fn progress(&self) -> CopyProgress {
        CopyProgress::from(self.ctl.as_ref())
    }

    /// Stops the copy after the chunks in flight; `run` then rejects with E_CANCELLED.
    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.ctl.cancel();
    }
}

/// The copy on the libuv pool.
pub struct CopyTask {
    plan: Option<Plan>,
    ctl: Arc<CopyControl>,
}

impl Task for CopyTask {
    type Output = CopyReport;
    type JsValue = CopyResult;

    fn compute(&mut self) -> napi::Result<CopyReport> {
        crate::error::guard(|| {
            let p = self.plan.take().ok_or_else(|| coded("E_BUSY", "copy already ran"))?;
            let r = match &p.ranges {
                None => plexus_copy::copy_all(p.src.as_ref(), p.dst.as_ref(), &p.opts, &self.ctl),
                Some(ranges) => plexus_copy::copy_ranges(p.src.as_ref(), p.dst.as_ref(), ranges, &p.opts, &self.ctl),
            };
            r.map_err(to_js)
        })
    }

    fn resolve(&mut self, _env: Env, r: CopyReport) -> napi::Result<CopyResult> {
        Ok(report_to_js(&r))
    }
}

/// Converts a copy report for JavaScript.
pub fn report_to_js(r: &CopyReport) -> CopyResult {
    CopyResult {
        bytes_copied: r.bytes_copied as f64,
        chunks: r.chunks as f64,
        elapsed_ms: r.elapsed.as_secs_f64() * 1000.0,
        threads: r.threads as u32,
    }
}
