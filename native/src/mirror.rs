//! Mirrored pairs as a JavaScript class; long operations as pollable jobs.

use crate::copy::{CopyProgress, CopyResult};
use crate::error::{coded, to_js, to_u64};
use crate::volume::NativeVolume;
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;
use plexus_copy::{CopyControl, CopyOptions, CopyReport};
use plexus_mirror::{split_group, write_primary_all, Absent, Direction, Mirror, MirrorFiles, Mode};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where a pair keeps its bitmaps.
#[napi(object)]
pub struct MirrorPaths {
    /// Regions changed on the primary (or still to copy).
    pub primary_dirty: String,
    /// Regions changed on the secondary since the split.
    pub secondary_dirty: String,
    /// Regions of an instant split already filled.
    pub filled: String,
}

fn files(p: &MirrorPaths) -> MirrorFiles {
    MirrorFiles {
        primary_dirty: PathBuf::from(&p.primary_dirty),
        secondary_dirty: PathBuf::from(&p.secondary_dirty),
        filled: PathBuf::from(&p.filled),
    }
}

fn parse_mode(m: &str) -> napi::Result<Mode> {
    match m {
        "duplex" => Ok(Mode::Duplex),
        "track" => Ok(Mode::Track),
        "instant" => Ok(Mode::Instant),
        other => Err(coded("E_INVALID", format!("unknown mirror mode {other}"))),
    }
}

fn mode_name(m: Mode) -> String {
    match m {
        Mode::Duplex => "duplex",
        Mode::Track => "track",
        Mode::Instant => "instant",
    }
    .into()
}

/// A mirrored pair of volumes.
#[napi]
pub struct NativeMirror {
    pub(crate) inner: Arc<Mirror>,
}

#[napi]
impl NativeMirror {
    /// Pairs two volumes: a normal pair starts duplexing with everything to copy; an
    /// instant pair starts split with nothing copied.
    /// `share` is another open pair of the same primary (a further plex): the pairs
    /// then share region locks so `writePrimaryAll` orders writes alike on every plex.
    #[napi(factory, catch_unwind)]
    pub fn create(
        primary: &NativeVolume,
        secondary: &NativeVolume,
        paths: MirrorPaths,
        granularity: f64,
        write_intent: bool,
        instant: bool,
        share: Option<&NativeMirror>,
    ) -> napi::Result<Self> {
        let m = Mirror::create_sharing(
            primary.inner.clone(),
            secondary.inner.clone(),
            &files(&paths),
            crate::args::bitmap_geometry(plexus_volume::BlockDevice::size(primary.inner.as_ref()) as f64, granularity)?.1,
            write_intent,
            instant,
            share.map(|s| s.inner.as_ref()),
        )
        .map_err(to_js)?;
        Ok(NativeMirror { inner: Arc::new(m) })
    }

    /// Reopens a pair in a mode ("duplex", "track" or "instant").
    #[napi(factory, catch_unwind)]
    pub fn open(
        primary: &NativeVolume,
        secondary: &NativeVolume,
        paths: MirrorPaths,
        mode: String,
        write_intent: bool,
        share: Option<&NativeMirror>,
    ) -> napi::Result<Self> {
        let m = Mirror::open_sharing(
            primary.inner.clone(),
            secondary.inner.clone(),
            &files(&paths),
            parse_mode(&mode)?,
            write_intent,
            share.map(|s| s.inner.as_ref()),
        )
        .map_err(to_js)?;
        Ok(NativeMirror { inner: Arc::new(m) })
    }

    /// Reopens a pair whose secondary cannot be opened, in "track" mode over a stand-in
    /// that refuses all I/O: the bitmaps keep recording the primary's writes, so the
    /// resync once the secondary is back is differential.
    #[napi(factory, catch_unwind)]
    pub fn open_absent(
        primary: &NativeVolume,
        secondary: String,
        why: String,
        paths: MirrorPaths,
        write_intent: bool,
        share: Option<&NativeMirror>,
    ) -> napi::Result<Self> {
        let absent = Arc::new(Absent::new(&secondary, plexus_volume::BlockDevice::size(primary.inner.as_ref()), &why));
        let m =
            Mirror::open_sharing(primary.inner.clone(), absent, &files(&paths), Mode::Track, write_intent, share.map(|s| s.inner.as_ref()))
                .map_err(to_js)?;
        Ok(NativeMirror { inner: Arc::new(m) })
    }

    /// Why a failed duplexed write suspended the pair (PSUE), or null.
    #[napi(getter, catch_unwind)]
    pub fn failure(&self) -> Option<String> {
        self.inner.failure()
    }

    /// The engine mode: "duplex", "track" or "instant".
    #[napi(getter, catch_unwind)]
    pub fn mode(&self) -> String {
        mode_name(self.inner.mode())
    }

    /// Sets the mode directly (after a restart, or on a failure to PSUE).
    #[napi(catch_unwind)]
    pub fn set_mode(&self, mode: String) -> napi::Result<()> {
        self.inner.quiesce().set_mode(parse_mode(&mode)?);
        Ok(())
    }

    /// Splits the pair at a write boundary.
    #[napi(catch_unwind)]
    pub fn split(&self) -> napi::Result<()> {
        self.inner.quiesce().split().map_err(to_js)
    }

    /// Splits several pairs together at one write boundary (a consistency group).
    #[napi(catch_unwind)]
    pub fn split_group(mirrors: Vec<&NativeMirror>) -> napi::Result<()> {
        let refs: Vec<&Mirror> = mirrors.iter().map(|m| m.inner.as_ref()).collect();
        split_group(&refs).map_err(to_js)
    }

    /// Writes to the primary (duplexed, tracked or copy-on-write, by mode).
    #[napi(catch_unwind)]
    pub fn write_primary(&self, offset: f64, data: Buffer) -> napi::Result<()> {
        self.inner.write_primary(to_u64("offset", offset)?, &data).map_err(to_js)
    }

    /// Writes to a primary through all of its pairs at once (every plex of a mirror).
    #[napi(catch_unwind)]
    pub fn write_primary_all(mirrors: Vec<&NativeMirror>, offset: f64, data: Buffer) -> napi::Result<()> {
        let refs: Vec<&Mirror> = mirrors.iter().map(|m| m.inner.as_ref()).collect();
        write_primary_all(&refs, to_u64("offset", offset)?, &data).map_err(to_js)
    }

    /// Writes to the secondary (only while split).
    #[napi(catch_unwind)]
    pub fn write_secondary(&self, offset: f64, data: Buffer) -> napi::Result<()> {
        self.inner.write_secondary(to_u64("offset", offset)?, &data).map_err(to_js)
    }

    /// Reads the primary.
    #[napi(catch_unwind)]
    pub fn read_primary(&self, offset: f64, length: f64) -> napi::Result<Buffer> {
        let (offset, len) = (to_u64("offset", offset)?, crate::args::buffer_len("length", length)?);
        // The range is checked before the buffer is allocated (up to 1 GiB otherwise).
        plexus_volume::check_range("primary", offset, len as u64, self.inner.size()).map_err(to_js)?;
        let mut b = vec![0u8; len];
        self.inner.read_primary(offset, &mut b).map_err(to_js)?;
        Ok(b.into())
    }

    /// Reads the secondary as hosts see it.
    #[napi(catch_unwind)]
    pub fn read_secondary(&self, offset: f64, length: f64) -> napi::Result<Buffer> {
        let (offset, len) = (to_u64("offset", offset)?, crate::args::buffer_len("length", length)?);
        // The range is checked before the buffer is allocated (up to 1 GiB otherwise).
        plexus_volume::check_range("secondary", offset, len as u64, self.inner.size()).map_err(to_js)?;
        let mut b = vec![0u8; len];
        self.inner.read_secondary(offset, &mut b).map_err(to_js)?;
        Ok(b.into())
    }

    /// SHA-256 of the secondary as hosts see it, off the JS thread.
    #[napi(ts_return_type = "Promise<string>", catch_unwind)]
    pub fn checksum_secondary(&self, offset: f64, length: f64) -> napi::Result<AsyncTask<SecondaryChecksum>> {
        Ok(AsyncTask::new(SecondaryChecksum {
            mirror: self.inner.clone(),
            offset: to_u64("offset", offset)?,
            length: to_u64("length", length)?,
        }))
    }

    /// Bytes dirty on either side.
    #[napi(catch_unwind)]
    pub fn dirty_bytes(&self) -> f64 {
        self.inner.dirty_bytes() as f64
    }

    /// Bytes of an instant split not yet filled.
    #[napi(catch_unwind)]
    pub fn unfilled_bytes(&self) -> f64 {
        self.inner.unfilled_bytes() as f64
    }

    /// Regions where primary and secondary may differ (union of both sides' bits).
    #[napi(catch_unwind)]
    pub fn dirty_runs(&self) -> Vec<crate::copy::Extent> {
        self.inner.dirty_runs().iter().map(|r| crate::copy::Extent { offset: r.offset as f64, length: r.len as f64 }).collect()
    }

    /// Durably marks a region of the primary as differing from the secondary.
    #[napi(catch_unwind)]
    pub fn mark_dirty(&self, offset: f64, length: f64) -> napi::Result<()> {
        self.inner.mark_dirty(to_u64("offset", offset)?, to_u64("length", length)?).map_err(to_js)
    }

    /// Clears stale write-intent bits of a PAIR at a clean close.
    #[napi(catch_unwind)]
    pub fn clear_intent(&self) -> napi::Result<()> {
        self.inner.clear_intent().map_err(to_js)
    }

    /// Persists bitmaps and flushes both volumes.
    #[napi(catch_unwind)]
    pub fn flush(&self) -> napi::Result<()> {
        self.inner.flush().map_err(to_js)
    }

    /// Prepares a resync ("forward" or "reverse"); run it with `run()`.
    #[napi(catch_unwind)]
    pub fn resync_job(&self, direction: String, full: bool, threads: Option<f64>, max_rate: Option<f64>) -> napi::Result<MirrorJob> {
        let dir = match direction.as_str() {
            "forward" => Direction::Forward,
            "reverse" => Direction::Reverse,
            other => return Err(coded("E_INVALID", format!("unknown direction {other}"))),
        };
        Ok(MirrorJob::new(
            self.inner.clone(),
            JobKind::Resync(dir, full),
            crate::args::threads(threads)?,
            to_u64("max rate", max_rate.unwrap_or(0.0))?,
        ))
    }

    /// Prepares the background fill of an instant split.
    #[napi(catch_unwind)]
    pub fn fill_job(&self, threads: Option<f64>, max_rate: Option<f64>) -> napi::Result<MirrorJob> {
        Ok(MirrorJob::new(self.inner.clone(), JobKind::Fill, crate::args::threads(threads)?, to_u64("max rate", max_rate.unwrap_or(0.0))?))
    }
}

#[derive(Clone, Copy)]
enum JobKind {
    Resync(Direction, bool),
    Fill,
}

/// A resync or fill that can be polled and cancelled while it runs.
#[napi]
pub struct MirrorJob {
    mirror: Arc<Mirror>,
    kind: JobKind,
    threads: usize,
    max_rate: u64,
    ctl: Arc<CopyControl>,
    started: Mutex<bool>,
}

impl MirrorJob {
    fn new(mirror: Arc<Mirror>, kind: JobKind, threads: usize, max_rate: u64) -> Self {
        MirrorJob { mirror, kind, threads, max_rate, ctl: Arc::new(CopyControl::new()), started: Mutex::new(false) }
    }
}

#[napi]
impl MirrorJob {
    /// Runs the job off the JS thread. A job runs once.
    #[napi(ts_return_type = "Promise<CopyResult>", catch_unwind)]
    pub fn run(&self) -> napi::Result<AsyncTask<MirrorTask>> {
        let mut started = self.started.lock().map_err(|_| coded("E_BUSY", "job lock poisoned"))?;
        if *started {
            return Err(coded("E_BUSY", "this job has already been started"));
        }
        *started = true;
        Ok(AsyncTask::new(MirrorTask {
            mirror: self.mirror.clone(),
            kind: self.kind,
            threads: self.threads,
            max_rate: self.max_rate,
            ctl: self.ctl.clone(),
        }))
    }

    /// Bytes done and bytes in all.
    #[napi(catch_unwind)]
    pub fn progress(&self) -> CopyProgress {
        CopyProgress::from(self.ctl.as_ref())
    }

    /// Stops after the chunks in flight; progress so far is kept durably.
    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.ctl.cancel();
    }
}

/// A mirror job on the libuv pool.
pub struct MirrorTask {
    mirror: Arc<Mirror>,
    kind: JobKind,
    threads: usize,
    max_rate: u64,
    ctl: Arc<CopyControl>,
}

impl Task for MirrorTask {
    type Output = CopyReport;
    type JsValue = CopyResult;

    fn compute(&mut self) -> napi::Result<CopyReport> {
        crate::error::guard(|| {
            let opts = CopyOptions { threads: self.threads, max_rate: self.max_rate, ..CopyOptions::default() };
            match self.kind {
                JobKind::Resync(dir, full) => self.mirror.resync(dir, full, &opts, &self.ctl),
                JobKind::Fill => self.mirror.fill(&opts, &self.ctl),
            }
            .map_err(to_js)
        })
    }

    fn resolve(&mut self, _env: Env, r: CopyReport) -> napi::Result<CopyResult> {
        Ok(crate::copy::report_to_js(&r))
    }
}

/// Hashes the secondary's host view on the libuv pool.
pub struct SecondaryChecksum {
    mirror: Arc<Mirror>,
    offset: u64,
    length: u64,
}

impl Task for SecondaryChecksum {
    type Output = String;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<String> {
        crate::error::guard(|| self.mirror.checksum_secondary(self.offset, self.length).map_err(to_js))
    }

    fn resolve(&mut self, _env: Env, s: String) -> napi::Result<String> {
        Ok(s)
    }
}
