//! The EXTENDED COPY copy device as a pollable, cancellable job: a list of segment
//! commands executed on a loaded cartridge (crates/xcopy).

use crate::copy::CopyProgress;
use crate::error::{coded, to_js, to_u64};
use crate::job::take_plan;
use crate::tape::{NativeDrive, NativeTapeSource};
use crate::volume::NativeVolume;
use napi::bindgen_prelude::{AbortSignal, AsyncTask};
use napi::{Env, Task};
use napi_derive::napi;
use plexus_tape::{CopyControl, Drive, SourceFault};
use plexus_volume::BlockDevice;
use plexus_xcopy::{DeviceOptions, SegmentCommand, Stop};
use std::sync::{Arc, Mutex};

/// One segment command: copy `length` bytes of the source from `sourceOffset` to the
/// cartridge at its current position.
#[napi(object)]
#[derive(Clone, Copy)]
pub struct XcopyCommand {
    /// Number of the command within its job.
    pub id: f64,
    /// First byte of the source volume.
    pub source_offset: f64,
    /// Bytes to copy.
    pub length: f64,
}

/// A completed command: where its chunk lies.
#[napi(object)]
pub struct XcopyChunk {
    /// The command's number.
    pub id: u32,
    /// First byte of the source.
    pub source_offset: f64,
    /// Bytes copied (less than asked if early warning split the command).
    pub length: f64,
    /// Tape file holding the chunk.
    pub file: u32,
    /// The chunk's first block in the file.
    pub first_block: f64,
    /// Blocks of the chunk.
    pub blocks: f64,
    /// Bytes of the chunk's data blocks on the cartridge (its holes take none).
    pub data_bytes: f64,
    /// Digest of the chunk's blocks, 32 hex digits.
    pub digest: String,
}

/// Why the device stopped early.
#[napi(object)]
pub struct XcopyStop {
    /// "early-warning", "timeout", "error" or "cancelled".
    pub reason: String,
    /// The command that stopped it (absent for early warning between commands).
    pub command: Option<u32>,
    /// A stable code: E_EOM, E_TIMEOUT, the error's own, E_CANCELLED.
    pub code: String,
    /// What happened, for the log.
    pub message: String,
}

/// What a run of the copy device did.
#[napi(object)]
pub struct XcopyResult {
    /// Commands completed, in order.
    pub completed: Vec<XcopyChunk>,
    /// Why it stopped early; absent when every command completed.
    pub stop: Option<XcopyStop>,
    /// Commands left, the one that stopped the device first.
    pub remaining: Vec<XcopyCommand>,
    /// Whether a segment file is left open for `TapeJob.closeSegment`.
    pub open: bool,
    /// The stopping command never returned from its cancellation: the device's worker
    /// was left behind holding the cartridge (which is no longer loaded in this drive),
    /// nothing of this run is durable, and the device should be taken out of service.
    pub stuck: bool,
    /// Wall time in milliseconds.
    pub elapsed_ms: f64,
}

/// A fault acted out on a backup's source (the stream's mover, switch or drive failing).
#[napi(object)]
pub struct StreamFault {
    /// Reads fail once this many bytes of the job were read.
    pub fail_after: Option<f64>,
    /// Reads block once this many bytes were read, until the job is cancelled.
    pub hang_after: Option<f64>,
    /// Reads block in a system call once this many bytes were read, for good: no
    /// cancellation reaches them (the run settles as `stuck`).
    pub stuck_after: Option<f64>,
}

/// The core's form of a stream fault (none when absent).
pub(crate) fn source_fault(fault: Option<StreamFault>) -> napi::Result<SourceFault> {
    Ok(match fault {
        None => SourceFault::default(),
        Some(f) => SourceFault {
            fail_after: f.fail_after.map(|b| to_u64("failAfter", b)).transpose()?,
            hang_after: f.hang_after.map(|b| to_u64("hangAfter", b)).transpose()?,
            stuck_after: f.stuck_after.map(|b| to_u64("stuckAfter", b)).transpose()?,
        },
    })
}

/// How the copy device runs.
#[napi(object)]
pub struct XcopyOptions {
    /// A command must complete within this many milliseconds (default: no limit).
    pub timeout_ms: Option<f64>,
    /// A fault of the stream acted out on the source.
    pub fault: Option<StreamFault>,
    /// Bytes the stream moved before this run (the fault's byte counts are the stream's).
    pub fault_base: Option<f64>,
}

/// A copy device run on a loaded cartridge.
#[napi]
pub struct XcopyJob {
    drive: Arc<Mutex<Option<Drive>>>,
    ctl: Arc<CopyControl>,
    plan: Mutex<Option<Plan>>,
}

struct Plan {
    src: Arc<dyn BlockDevice>,
    commands: Vec<SegmentCommand>,
    opts: DeviceOptions,
}

#[napi]
impl XcopyJob {
    /// Prepares the execution of `commands`, in order, reading `source` and appending
    /// chunks to the segment file open on the cartridge (or a new one).
    #[napi(factory, catch_unwind)]
    pub fn execute(
        drive: &NativeDrive,
        source: &NativeVolume,
        commands: Vec<XcopyCommand>,
        options: Option<XcopyOptions>,
    ) -> napi::Result<Self> {
        XcopyJob::prepare(drive, source.inner.clone(), commands, options)
    }

    /// As `execute`, reading another copy of a job from its cartridges (`backup copy`).
    #[napi(factory, catch_unwind)]
    pub fn execute_from_tape(
        drive: &NativeDrive,
        source: &NativeTapeSource,
        commands: Vec<XcopyCommand>,
        options: Option<XcopyOptions>,
    ) -> napi::Result<Self> {
        XcopyJob::prepare(drive, source.inner.clone(), commands, options)
    }

    /// Runs the device off the JS thread; resolves with its report (a command's failure
    /// is reported in `stop`, not thrown). A job runs once.
    #[napi(ts_return_type = "Promise<XcopyResult>", catch_unwind)]
    pub fn run(&self, signal: Option<AbortSignal>) -> napi::Result<AsyncTask<XcopyTask>> {
        let plan = take_plan(&self.plan, "copy device job")?;
        Ok(AsyncTask::with_optional_signal(XcopyTask { drive: self.drive.clone(), plan: Some(plan), ctl: self.ctl.clone() }, signal))
    }

    /// Bytes of completed commands so far; safe to poll while the job runs.
    #[napi(catch_unwind)]
    pub fn progress(&self) -> CopyProgress {
        CopyProgress::from(self.ctl.as_ref())
    }

    /// Stops the device at the running command, which is cut back off the cartridge.
    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.ctl.cancel();
    }
}

impl XcopyJob {
    /// The job of either factory: `src` is the source device.
    fn prepare(
        drive: &NativeDrive,
        src: Arc<dyn BlockDevice>,
        commands: Vec<XcopyCommand>,
        options: Option<XcopyOptions>,
    ) -> napi::Result<Self> {
        let commands = commands
            .iter()
            .map(|c| {
                Ok(SegmentCommand {
                    id: crate::args::to_u32("id", c.id)?,
                    source_offset: to_u64("sourceOffset", c.source_offset)?,
                    length: to_u64("length", c.length)?,
                })
            })
            .collect::<napi::Result<Vec<_>>>()?;
        let (timeout, fault, base) = match options {
            None => (None, None, None),
            Some(o) => (o.timeout_ms, o.fault, o.fault_base),
        };
        let timeout = timeout.map(|ms| crate::args::millis("timeout", ms)).transpose()?;
        let opts =
            DeviceOptions { timeout, fault: source_fault(fault)?, fault_base: to_u64("faultBase", base.unwrap_or(0.0))?, grace: None };
        Ok(XcopyJob { drive: drive.inner.clone(), ctl: Arc::new(CopyControl::new()), plan: Mutex::new(Some(Plan { src, commands, opts })) })
    }
}

/// Cuts `length` bytes of a source from `offset` into segment commands of `chunk`
/// bytes, numbered from 0 (the last may be shorter). E_INVALID for a zero chunk.
#[napi(catch_unwind)]
pub fn plan_segment_commands(offset: f64, length: f64, chunk: f64) -> napi::Result<Vec<XcopyCommand>> {
    let cmds = plexus_xcopy::plan_chunks(to_u64("offset", offset)?, to_u64("length", length)?, to_u64("chunk", chunk)?).map_err(to_js)?;
    Ok(cmds.into_iter().map(command_to_js).collect())
}

fn command_to_js(c: SegmentCommand) -> XcopyCommand {
    XcopyCommand { id: f64::from(c.id), source_offset: c.source_offset as f64, length: c.length as f64 }
}

/// A copy device run on the libuv pool; it holds the drive for its whole run.
pub struct XcopyTask {
    drive: Arc<Mutex<Option<Drive>>>,
    plan: Option<Plan>,
    ctl: Arc<CopyControl>,
}

impl Task for XcopyTask {
    type Output = XcopyResult;
    type JsValue = XcopyResult;

    fn compute(&mut self) -> napi::Result<XcopyResult> {
        crate::error::guard(|| {
            let plan = self.plan.take().ok_or_else(|| coded("E_BUSY", "copy device job already ran"))?;
            // The drive leaves its slot for the device's worker and comes back with it; the
            // slot stays locked meanwhile (the drive is busy). A worker stuck in a system
            // call keeps the drive, and the slot stays empty: nothing is loaded any more.
            let mut slot = self.drive.lock().unwrap_or_else(|p| p.into_inner());
            let drive = slot.take().ok_or_else(|| coded("E_BUSY", "no cartridge is loaded in this drive"))?;
            let run = plexus_xcopy::execute_detached(drive, plan.src, plan.commands, plan.opts, self.ctl.clone());
            *slot = run.drive;
            drop(slot);
            let r = run.report;
            let stop = r.stop.map(|s| {
                let (reason, command) = match &s {
                    Stop::EarlyWarning => ("early-warning", None),
                    Stop::Timeout { command, .. } => ("timeout", Some(*command)),
                    Stop::Failed { command, .. } => ("error", Some(*command)),
                    Stop::Cancelled { command } => ("cancelled", Some(*command)),
                };
                XcopyStop { reason: reason.into(), command, code: s.code().into(), message: s.to_string() }
            });
            Ok(XcopyResult {
                completed: r
                    .completed
                    .iter()
                    .map(|c| XcopyChunk {
                        id: c.command.id,
                        source_offset: c.command.source_offset as f64,
                        length: c.command.length as f64,
                        file: c.file,
                        first_block: c.first_block as f64,
                        blocks: c.blocks as f64,
                        data_bytes: c.data_bytes as f64,
                        digest: c.digest.to_hex(),
                    })
                    .collect(),
                stop,
                remaining: r.remaining.into_iter().map(command_to_js).collect(),
                open: r.open,
                stuck: r.stuck,
                elapsed_ms: r.elapsed.as_secs_f64() * 1000.0,
            })
        })
    }

    fn resolve(&mut self, _env: Env, r: XcopyResult) -> napi::Result<XcopyResult> {
        Ok(r)
    }
}
