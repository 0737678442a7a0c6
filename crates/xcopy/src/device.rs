//! The copy device: executes segment commands one after another on a loaded cartridge.
//!
//! Every command appends its chunk to one open segment file on the cartridge (a chunk
//! is a run of blocks; its first block is its position), so a cartridge's worth of
//! commands costs what one segment does: no per-command sync or filemark. The caller
//! closes that file ([`plexus_tape::close_segment`]) when the device stops, which makes
//! every completed chunk durable at once; a command that fails is cut back off the
//! file, so what stays open is exactly the completed commands.
//!
//! A watchdog times each command: one that has not completed when its timeout passes
//! (a hung mover, switch or drive) is cancelled and reported as a timeout, which is
//! the only way a hang is noticed.
//!
//! A cancelled command normally returns within moments (the transfer polls its
//! control). One that does not — blocked in a system call on a hung device, which no
//! flag can interrupt — must not hold the job: [`execute_detached`] runs the commands
//! on a worker thread that owns the drive and the source, and when a cancelled command
//! has not returned within a grace period it settles the run from the watchdog as
//! stuck and leaves the worker behind (detached, never joined). The worker still holds
//! the cartridge file's descriptor (and with it the cartridge's `flock`: no other drive
//! can load it meanwhile) and the source volume; when its system call finally returns
//! it sees it was abandoned, writes nothing more, and drops both: the segment file it
//! left open is unterminated, so the next load discards it. Its results are discarded.

use crate::command::SegmentCommand;
use plexus_copy::CopyControl;
use plexus_tape::{append_segment_data, Digest, Drive, EndedBy, FaultySource, SourceFault, TapeError};
use plexus_volume::BlockDevice;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the device runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeviceOptions {
    /// A command must complete within this time; None waits for ever.
    pub timeout: Option<Duration>,
    /// A fault of this stream (its mover, switch or drive), acted out on the source.
    pub fault: SourceFault,
    /// Bytes the stream moved before this run: the fault's byte counts are the stream's.
    pub fault_base: u64,
    /// How long a cancelled command may take to return before [`execute_detached`]
    /// gives its worker up as stuck; None: [`DEFAULT_GRACE`].
    pub grace: Option<Duration>,
}

/// How long a cancelled command gets to return by default before it counts as stuck.
/// Independent of the command timeout: a short timeout says how long a command may
/// run, not how long a healthy but slow system call (an fdatasync behind writeback on
/// a loaded machine) may take to notice the cancel. Giving a device up takes it, its
/// drive and cartridge out of service, so the grace errs on the long side.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

impl DeviceOptions {
    fn grace(&self) -> Duration {
        self.grace.unwrap_or(DEFAULT_GRACE)
    }
}

/// A command (or the part of it that fit on the cartridge) that completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The command as executed: a split command's first part has the shorter length.
    pub command: SegmentCommand,
    /// Tape file holding the chunk.
    pub file: u32,
    /// The chunk's first block in that file.
    pub first_block: u64,
    /// Blocks of the chunk.
    pub blocks: u64,
    /// Bytes of the chunk's data blocks (less than its length when it holds holes).
    pub data_bytes: u64,
    /// Digest of the chunk's blocks, for the catalog.
    pub digest: Digest,
}

/// Why the device stopped before the last command.
#[derive(Debug)]
pub enum Stop {
    /// The cartridge reached its early-warning zone: the rest needs another cartridge.
    EarlyWarning,
    /// Command `command` did not complete within the timeout and was cancelled.
    Timeout { command: u32, after: Duration },
    /// Command `command` failed.
    Failed { command: u32, error: TapeError },
    /// The run was cancelled.
    Cancelled { command: u32 },
}

impl Stop {
    /// A stable code: E_EOM, E_TIMEOUT, the failure's own, E_CANCELLED.
    pub fn code(&self) -> &'static str {
        match self {
            Stop::EarlyWarning => "E_EOM",
            Stop::Timeout { .. } => "E_TIMEOUT",
            Stop::Failed { error, .. } => error.code(),
            Stop::Cancelled { .. } => "E_CANCELLED",
        }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::EarlyWarning => write!(f, "the cartridge reached early warning"),
            Stop::Timeout { command, after } => write!(f, "segment command {command} did not complete within {} ms", after.as_millis()),
            Stop::Failed { command, error } => write!(f, "segment command {command} failed: {error}"),
            Stop::Cancelled { command } => write!(f, "cancelled at segment command {command}"),
        }
    }
}

/// What a run of the device did.
#[derive(Debug)]
pub struct XcopyReport {
    /// Commands completed, in order.
    pub completed: Vec<Completed>,
    /// Why it stopped early; None when every command completed.
    pub stop: Option<Stop>,
    /// Commands not done, starting with the one that stopped the device (its rest, if
    /// early warning split it).
    pub remaining: Vec<SegmentCommand>,
    /// Whether a segment file is left open on the cartridge for the caller to close.
    pub open: bool,
    /// The stopping command did not return after it was cancelled: its worker was left
    /// behind with the drive ([`execute_detached`]). Nothing of the run is durable then:
    /// `completed` is empty and `remaining` holds every command of the run.
    pub stuck: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// Executes `commands` in order on the cartridge in `drive`, reading `src`. Progress
/// and cancellation go through `ctl` (its total is the commands' bytes). Never fails as
/// a whole: a command's error or timeout ends the run and is reported in `stop`.
pub fn execute(
    drive: &mut Drive,
    src: &dyn BlockDevice,
    commands: &[SegmentCommand],
    opts: &DeviceOptions,
    ctl: &CopyControl,
) -> XcopyReport {
    let started = Instant::now();
    ctl.start(commands.iter().map(|c| c.length).sum());
    let watch = Watch { state: Mutex::new(WatchState::default()), cv: Condvar::new() };
    // One watchdog for the whole run: a thread per command would cost more than the
    // command's bookkeeping does.
    std::thread::scope(|s| {
        s.spawn(|| watch.run(ctl, opts.timeout, None));
        // Ends the watchdog however the run ends (a panic included), or the scope would
        // wait for it for ever.
        let _stop = StopWatch(&watch);
        run_commands(drive, src, commands, opts, ctl, &watch, started)
    })
}

/// What [`execute_detached`] gives back.
pub struct Detached {
    /// The run's report (`stuck` when the worker was left behind).
    pub report: XcopyReport,
    /// The drive, back from the worker; None when the worker is stuck with it.
    pub drive: Option<Drive>,
}

/// Like [`execute`], but the commands run on a worker thread that owns `drive` and
/// `src`, and the calling thread keeps the watchdog. A command that does not return
/// within `opts.grace` of being cancelled (for its timeout, or because `ctl` was)
/// settles the run as stuck: the report says `stuck`, the drive stays with the worker,
/// which is detached. A panic of the worker is resumed on the calling thread.
pub fn execute_detached(
    drive: Drive,
    src: Arc<dyn BlockDevice>,
    commands: Vec<SegmentCommand>,
    opts: DeviceOptions,
    ctl: Arc<CopyControl>,
) -> Detached {
    let started = Instant::now();
    ctl.start(commands.iter().map(|c| c.length).sum());
    let watch = Arc::new(Watch { state: Mutex::new(WatchState::default()), cv: Condvar::new() });
    let all = commands.clone();
    let drive_label = drive.label().barcode.clone();
    let spawned = {
        let (watch, ctl) = (watch.clone(), ctl.clone());
        std::thread::Builder::new().name("plexus-xcopy".into()).spawn(move || {
            let mut drive = drive;
            let _stop = StopWatch(&watch);
            let report = run_commands(&mut drive, src.as_ref(), &commands, &opts, &ctl, &watch, started);
            (report, drive)
        })
    };
    let worker: JoinHandle<(XcopyReport, Drive)> = match spawned {
        Ok(w) => w,
        Err(e) => {
            let error = TapeError::Io { cartridge: drive_label.clone(), op: "spawn the copy device's worker thread", source: e };
            let stop = Some(Stop::Failed { command: all.first().map_or(0, |c| c.id), error });
            return Detached {
                report: XcopyReport { completed: Vec::new(), stop, remaining: all, open: false, stuck: false, elapsed: started.elapsed() },
                drive: None,
            };
        }
    };
    match watch.run(&ctl, opts.timeout, Some(opts.grace())) {
        None => match worker.join() {
            Ok((report, drive)) => Detached { report, drive: Some(drive) },
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Some(stuck) => {
            // Detached: dropping the handle never joins the thread.
            drop(worker);
            ctl.set_done(0);
            let stop = if stuck.timed_out {
                Stop::Timeout { command: stuck.command, after: stuck.after }
            } else {
                Stop::Cancelled { command: stuck.command }
            };
            Detached {
                report: XcopyReport {
                    completed: Vec::new(),
                    stop: Some(stop),
                    remaining: all,
                    open: false,
                    stuck: true,
                    elapsed: started.elapsed(),
                },
                drive: None,
            }
        }
    }
}

fn run_commands(
    drive: &mut Drive,
    src: &dyn BlockDevice,
    commands: &[SegmentCommand],
    opts: &DeviceOptions,
    ctl: &CopyControl,
    watch: &Watch,
    started: Instant,
) -> XcopyReport {
    let mut completed = Vec::new();
    let mut delivered = 0u64;
    let mut stop = None;
    let mut next = 0;
    while next < commands.len() {
        let cmd = commands[next];
        if watch.update(|st| st.abandoned) {
            // Left behind by the watchdog: whatever it did is discarded; write no more.
            stop = Some(Stop::Cancelled { command: cmd.id });
            break;
        }
        if drive.space().in_early_warning {
            stop = Some(Stop::EarlyWarning);
            break;
        }
        // Each command gets a fresh control of its own, which the watchdog cancels.
        let cmd_ctl = Arc::new(CopyControl::new());
        watch.update(|st| {
            *st = WatchState {
                current: Some((Instant::now(), cmd.id, cmd_ctl.clone())),
                base: delivered,
                abandoned: st.abandoned,
                ..WatchState::default()
            }
        });
        let fault_at = opts.fault_base + delivered;
        let result = if opts.fault.is_set() {
            let faulty = FaultySource::starting_at(src, opts.fault, &cmd_ctl, fault_at);
            append_segment_data(drive, &faulty, cmd.source_offset, cmd.length, &cmd_ctl)
        } else {
            append_segment_data(drive, src, cmd.source_offset, cmd.length, &cmd_ctl)
        };
        let timed_out = watch.update(|st| {
            st.current = None;
            st.timed_out
        });
        let r = match result {
            Ok(r) => r,
            Err(error) => {
                ctl.set_done(delivered);
                stop = Some(if let Some(after) = timed_out {
                    Stop::Timeout { command: cmd.id, after }
                } else if ctl.is_cancelled() {
                    Stop::Cancelled { command: cmd.id }
                } else {
                    Stop::Failed { command: cmd.id, error }
                });
                break;
            }
        };
        delivered += r.bytes;
        ctl.set_done(delivered);
        completed.push(Completed {
            command: SegmentCommand { length: r.bytes, ..cmd },
            file: r.file,
            first_block: r.position.block,
            blocks: r.blocks,
            data_bytes: r.data_bytes,
            digest: r.digest,
        });
        if r.ended_by == EndedBy::EarlyWarning {
            // The rest of this command goes on the next cartridge, as its own command.
            let mut remaining = vec![cmd.rest(r.bytes)];
            remaining.extend_from_slice(&commands[next + 1..]);
            return finish(drive, completed, Some(Stop::EarlyWarning), remaining, started);
        }
        next += 1;
    }
    let remaining = commands[next..].to_vec();
    finish(drive, completed, stop, remaining, started)
}

fn finish(drive: &Drive, completed: Vec<Completed>, stop: Option<Stop>, remaining: Vec<SegmentCommand>, started: Instant) -> XcopyReport {
    XcopyReport {
        completed,
        stop,
        remaining,
        open: drive.open_file().is_some_and(|p| p.block > 0),
        stuck: false,
        elapsed: started.elapsed(),
    }
}

/// Tells the watchdog the run is over when dropped.
struct StopWatch<'a>(&'a Watch);

impl Drop for StopWatch<'_> {
    fn drop(&mut self) {
        self.0.update(|st| st.finished = true);
    }
}

/// What the watchdog sees of the run.
#[derive(Default)]
struct WatchState {
    /// The running command: when it started, its number, and its control.
    current: Option<(Instant, u32, Arc<CopyControl>)>,
    /// Bytes of the run's completed commands.
    base: u64,
    /// Set when the watchdog cancelled the running command for its timeout.
    timed_out: Option<Duration>,
    /// When the running command was cancelled (for its timeout or the run's).
    cancelled_at: Option<Instant>,
    finished: bool,
    /// Set when the watchdog gave the worker up as stuck.
    abandoned: bool,
}

/// The command a worker is stuck in.
struct Stuck {
    command: u32,
    /// Cancelled for its timeout (else because the run was cancelled).
    timed_out: bool,
    after: Duration,
}

/// The run's watchdog: cancels the running command when the run is cancelled or the
/// command's timeout passes, and shows its progress in the run's control.
struct Watch {
    state: Mutex<WatchState>,
    cv: Condvar,
}

impl Watch {
    /// Changes the state under its lock and wakes the watchdog.
    fn update<R>(&self, f: impl FnOnce(&mut WatchState) -> R) -> R {
        let r = f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
        self.cv.notify_all();
        r
    }

    /// Watches until the run finishes (None), or, with a `grace`, until a cancelled
    /// command has not returned within it: then the worker is marked abandoned and the
    /// command it is stuck in returned.
    fn run(&self, outer: &CopyControl, timeout: Option<Duration>, grace: Option<Duration>) -> Option<Stuck> {
        // Cancellation and progress are polled: a short wait keeps them prompt.
        const TICK: Duration = Duration::from_millis(10);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while !st.finished {
            let mut wait = TICK;
            let base = st.base;
            let mut expired = None;
            let mut cancelled = false;
            let mut stuck = None;
            if let Some((since, id, cmd)) = &st.current {
                outer.set_done(base + cmd.progress().0);
                if outer.is_cancelled() && !cmd.is_cancelled() {
                    cmd.cancel();
                    cancelled = true;
                }
                if let Some(t) = timeout {
                    if since.elapsed() >= t {
                        if !cmd.is_cancelled() {
                            cmd.cancel();
                            expired = Some(t);
                            cancelled = true;
                        }
                    } else {
                        wait = t.saturating_sub(since.elapsed()).clamp(Duration::from_millis(1), TICK);
                    }
                }
                if let (Some(g), Some(at)) = (grace, st.cancelled_at) {
                    if at.elapsed() >= g {
                        stuck = Some(Stuck {
                            command: *id,
                            timed_out: st.timed_out.is_some(),
                            after: st.timed_out.unwrap_or_else(|| since.elapsed()),
                        });
                    }
                }
            }
            if expired.is_some() {
                st.timed_out = expired;
            }
            if cancelled {
                st.cancelled_at = Some(Instant::now());
            }
            if stuck.is_some() {
                st.abandoned = true;
                return stuck;
            }
            st = self.cv.wait_timeout(st, wait).unwrap_or_else(|p| p.into_inner()).0;
        }
        None
    }
}
