//! Tape drives and cartridges as a JavaScript class; segment transfers as pollable,
//! cancellable jobs.

use crate::copy::{CopyProgress, Extent};
use crate::error::{coded, to_js, to_u64, Coded};
use crate::job::{on_loaded_drive, take_plan};
use crate::nbd::NativePlex;
use crate::volume::NativeVolume;
use napi::bindgen_prelude::{AbortSignal, AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;
use plexus_export::{Plex, PlexError};
use plexus_tape::{
    Content, CopyControl, DeviceSink, Digest, Drive, FileSink, FormatOptions, NullSink, Position, ReadRequest, Sink, TapeError,
    DEFAULT_BLOCK_SIZE,
};
use plexus_volume::{Access, Volume};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

impl Coded for TapeError {
    fn stable_code(&self) -> &'static str {
        self.code()
    }
}

/// How to format a blank cartridge.
#[napi(object)]
pub struct CartridgeFormat {
    /// Barcode, 1-32 characters of A-Z a-z 0-9 . _ -
    pub barcode: String,
    /// Largest length of the cartridge file in bytes.
    pub capacity: f64,
    /// Payload bytes per block, a power of two from 4 KiB to 16 MiB (default 1 MiB).
    pub block_size: Option<f64>,
    /// Early-warning zone in bytes (default: 4 blocks or 1% of the capacity).
    pub early_warning: Option<f64>,
}

/// A cartridge's label and how it is loaded.
#[napi(object)]
pub struct CartridgeLabel {
    /// Barcode.
    pub barcode: String,
    /// Largest length of the cartridge file in bytes.
    pub capacity: f64,
    /// Early-warning zone in bytes.
    pub early_warning: f64,
    /// Payload bytes per full block.
    pub block_size: u32,
    /// Formatting time, milliseconds since the Unix epoch.
    pub created_ms: f64,
    /// Random identifier of this formatting, 32 hex digits.
    pub medium_id: String,
    /// Format version (2 records holes; 1, older, does not).
    pub format_version: u32,
    /// Path of the cartridge file.
    pub path: String,
    /// Whether this drive refuses writes.
    pub read_only: bool,
}

/// A position: file number and block number within the file.
#[napi(object)]
pub struct TapePosition {
    /// File number, from 0.
    pub file: u32,
    /// Block number, from 0 (the file's block count is its filemark).
    pub block: f64,
}

fn pos_to_js(p: Position) -> TapePosition {
    TapePosition { file: p.file, block: p.block as f64 }
}

/// How full a cartridge is.
#[napi(object)]
pub struct TapeSpace {
    /// Largest length of the cartridge file.
    pub capacity: f64,
    /// Bytes used up to the append point.
    pub used: f64,
    /// Offset where the early-warning zone starts.
    pub early_warning_at: f64,
    /// Whether the append point is inside the early-warning zone.
    pub in_early_warning: bool,
}

/// A file on a cartridge, closed by a filemark.
#[napi(object)]
pub struct TapeFile {
    /// File number.
    pub file: u32,
    /// What it holds: "raw", "segment" or "catalog".
    pub content: String,
    /// Blocks, those a hole record stands for included.
    pub blocks: f64,
    /// Payload bytes, holes (read as zeroes) included.
    pub bytes: f64,
    /// Of those, bytes of data blocks on the medium (holes take none).
    pub data_bytes: f64,
    /// The file CRC its filemark records (CRC-32C of its block list).
    pub crc: u32,
}

/// What loading found besides the files.
#[napi(object)]
pub struct TapeRecovery {
    /// Bytes after the last filemark that belonged to no closed file (a killed writer's
    /// unterminated file or torn record); the next write overwrites them.
    pub discarded_bytes: f64,
    /// Data blocks of that unterminated file.
    pub discarded_blocks: f64,
    /// Whether an end-of-data record closed the data.
    pub eod_found: bool,
    /// Blocks whose header was unreadable but stepped over (they read as E_CORRUPT).
    pub damaged_blocks: Vec<TapePosition>,
    /// An unreadable header with recorded data after it: appends fail E_CORRUPT.
    pub damage: Option<TapePosition>,
}

/// What a block write did.
#[napi(object)]
pub struct BlockWritten {
    /// Where the block went.
    pub position: TapePosition,
    /// The block ends inside the early-warning zone.
    pub early_warning: bool,
}

/// What a small-file write did.
#[napi(object)]
pub struct TapeFileWritten {
    /// File number written.
    pub file: u32,
    /// Data blocks.
    pub blocks: f64,
    /// Bytes.
    pub bytes: f64,
    /// The file CRC recorded in its filemark.
    pub crc: u32,
    /// Whether the cartridge is now inside its early-warning zone.
    pub early_warning: bool,
}

/// A drive with a cartridge file loaded. Methods throw E_BUSY while a job runs on it.
#[napi]
pub struct NativeDrive {
    pub(crate) inner: Arc<Mutex<Option<Drive>>>,
}

impl NativeDrive {
    /// The drive slot, or E_BUSY if a job holds it. A job never waits on the JS thread,
    /// so the JS thread never waits on a job either.
    fn guard(&self) -> napi::Result<MutexGuard<'_, Option<Drive>>> {
        match self.inner.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::WouldBlock) => Err(coded("E_BUSY", "the drive is busy with a transfer")),
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        }
    }

    /// Runs `f` on the loaded drive.
    fn with<R>(&self, f: impl FnOnce(&mut Drive) -> plexus_tape::Result<R>) -> napi::Result<R> {
        let mut guard = self.guard()?;
        let drive = guard.as_mut().ok_or_else(|| coded("E_BUSY", "no cartridge is loaded in this drive"))?;
        f(drive).map_err(to_js)
    }
}

#[napi]
impl NativeDrive {
    /// Formats a new blank cartridge file and loads it (E_EXISTS if the file exists).
    #[napi(factory, catch_unwind)]
    pub fn format(path: String, options: CartridgeFormat) -> napi::Result<Self> {
        let opts = FormatOptions {
            barcode: options.barcode,
            capacity: to_u64("capacity", options.capacity)?,
            block_size: options.block_size.map(|b| crate::args::to_u32("block size", b)).transpose()?.unwrap_or(DEFAULT_BLOCK_SIZE),
            early_warning: options.early_warning.map(|e| to_u64("early warning", e)).transpose()?,
        };
        let d = Drive::format(Path::new(&path), &opts).map_err(to_js)?;
        Ok(NativeDrive { inner: Arc::new(Mutex::new(Some(d))) })
    }

    /// Loads an existing cartridge: checks the label, scans the headers, discards a torn
    /// tail. E_BUSY if another drive has it loaded.
    #[napi(factory, catch_unwind)]
    pub fn open(path: String, read_only: Option<bool>) -> napi::Result<Self> {
        let access = if read_only.unwrap_or(false) { Access::ReadOnly } else { Access::ReadWrite };
        let d = Drive::open(Path::new(&path), access).map_err(to_js)?;
        Ok(NativeDrive { inner: Arc::new(Mutex::new(Some(d))) })
    }

    /// The label and how the cartridge is loaded.
    #[napi(catch_unwind)]
    pub fn label(&self) -> napi::Result<CartridgeLabel> {
        self.with(|d| {
            let l = d.label();
            Ok(CartridgeLabel {
                barcode: l.barcode.clone(),
                capacity: l.capacity as f64,
                early_warning: l.early_warning as f64,
                block_size: l.block_size,
                created_ms: (l.created_ns / 1_000_000) as f64,
                medium_id: l.medium_id_hex(),
                format_version: l.version,
                path: d.path().to_string_lossy().into_owned(),
                read_only: d.is_read_only(),
            })
        })
    }

    /// The current position.
    #[napi(catch_unwind)]
    pub fn position(&self) -> napi::Result<TapePosition> {
        self.with(|d| Ok(pos_to_js(d.position())))
    }

    /// How full the cartridge is.
    #[napi(catch_unwind)]
    pub fn space(&self) -> napi::Result<TapeSpace> {
        self.with(|d| {
            let s = d.space();
            Ok(TapeSpace {
                capacity: s.capacity as f64,
                used: s.used as f64,
                early_warning_at: s.early_warning_at as f64,
                in_early_warning: s.in_early_warning,
            })
        })
    }

    /// The files closed by a filemark, in order.
    #[napi(catch_unwind)]
    pub fn files(&self) -> napi::Result<Vec<TapeFile>> {
        self.with(|d| {
            Ok(d.files()
                .iter()
                .map(|f| TapeFile {
                    file: f.file,
                    content: f.content.name().into(),
                    blocks: f.blocks as f64,
                    bytes: f.bytes as f64,
                    data_bytes: f.data_bytes() as f64,
                    crc: f.crc,
                })
                .collect())
        })
    }

    /// What loading found: a discarded tail, damaged headers.
    #[napi(catch_unwind)]
    pub fn recovery(&self) -> napi::Result<TapeRecovery> {
        self.with(|d| {
            let r = d.recovery();
            Ok(TapeRecovery {
                discarded_bytes: r.discarded_bytes as f64,
                discarded_blocks: r.discarded_blocks as f64,
                eod_found: r.eod_found,
                damaged_blocks: r.damaged_blocks.iter().map(|&(file, block)| pos_to_js(Position { file, block })).collect(),
                damage: r.damage.map(|x| pos_to_js(Position { file: x.file, block: x.block })),
            })
        })
    }

    /// Moves to the start of file 0 (a file being written is closed with a filemark).
    #[napi(catch_unwind)]
    pub fn rewind(&self) -> napi::Result<()> {
        self.with(|d| d.rewind())
    }

    /// Moves to block `block` of file `file` (E_RANGE if not on the medium).
    #[napi(catch_unwind)]
    pub fn locate(&self, file: f64, block: f64) -> napi::Result<()> {
        let (file, block) = (crate::args::to_u32("file", file)?, to_u64("block", block)?);
        self.with(|d| d.locate(Position { file, block }))
    }

    /// Moves to the end of data, where the next file goes; returns that position.
    #[napi(catch_unwind)]
    pub fn space_to_eod(&self) -> napi::Result<TapePosition> {
        self.with(|d| d.space_to_eod().map(pos_to_js))
    }

    /// Writes one block (1 byte to the block size) at the position, truncating what
    /// follows; E_EOM past the end of medium. Not synced until the next filemark.
    #[napi(catch_unwind)]
    pub fn write_block(&self, data: Buffer) -> napi::Result<BlockWritten> {
        self.with(|d| {
            let s = d.write_block(&data)?;
            Ok(BlockWritten { position: pos_to_js(s.position), early_warning: s.early_warning })
        })
    }

    /// Writes a filemark (closing the file being written) and EOD, synced; returns the
    /// new position.
    #[napi(catch_unwind)]
    pub fn write_filemark(&self) -> napi::Result<TapePosition> {
        self.with(|d| d.write_filemark().map(pos_to_js))
    }

    /// Drops the file being written, cutting the cartridge back to the last filemark.
    #[napi(catch_unwind)]
    pub fn abandon(&self) -> napi::Result<()> {
        self.with(|d| d.abandon())
    }

    /// Reads the block at the position, CRC-checked (E_CORRUPT naming barcode, file and
    /// block); null at a filemark (moving past it); E_EOD at the end of data.
    #[napi(catch_unwind)]
    pub fn read_block(&self) -> napi::Result<Option<Buffer>> {
        self.with(|d| Ok(d.read_block()?.map(Buffer::from)))
    }

    /// Writes `data` as a new file of `content` ("raw", "segment" or "catalog") at the
    /// position, then a synced filemark. Meant for small files (the catalog rows).
    #[napi(catch_unwind)]
    pub fn write_file(&self, data: Buffer, content: String) -> napi::Result<TapeFileWritten> {
        let content = Content::from_name(&content)
            .ok_or_else(|| coded("E_INVALID", format!("content must be raw, segment or catalog, not {content}")))?;
        self.with(|d| {
            let r = plexus_tape::write_file(d, &data, content)?;
            Ok(TapeFileWritten { file: r.file, blocks: r.blocks as f64, bytes: r.bytes as f64, crc: r.crc, early_warning: r.early_warning })
        })
    }

    /// Reads a whole file into memory, every block and the file CRC verified.
    #[napi(catch_unwind)]
    pub fn read_file(&self, file: f64) -> napi::Result<Buffer> {
        let file = crate::args::to_u32("file", file)?;
        self.with(|d| plexus_tape::read_file(d, file).map(Buffer::from))
    }

    /// Unloads the cartridge (closing a file being written with a filemark) and
    /// releases it; later calls fail E_BUSY.
    #[napi(catch_unwind)]
    pub fn unload(&self) -> napi::Result<()> {
        match self.guard()?.take() {
            Some(d) => d.unload().map_err(to_js),
            None => Ok(()),
        }
    }
}

/// Where a restore puts the bytes and what the catalog expects of them.
#[napi(object)]
pub struct RestoreOptions {
    /// Byte of the target where the segment (or range) lands (default 0).
    pub target_offset: Option<f64>,
    /// A chunk (EXTENDED COPY backups): the segment is `expectedLength` bytes from this
    /// block of the file, not the whole file.
    pub first_block: Option<f64>,
    /// Length the catalog records; E_CORRUPT if the file holds another.
    pub expected_length: Option<f64>,
    /// Digest the catalog records (32 hex digits); E_CORRUPT if the bytes hash to another.
    pub expected_digest: Option<String>,
    /// Only this byte range of the segment: block CRCs are verified, the digest cannot be.
    pub range: Option<Extent>,
    /// fsync the target at the end (default true).
    pub sync: Option<bool>,
}

/// What a finished backup or restore did.
#[napi(object)]
pub struct TapeJobResult {
    /// Tape file written or read.
    pub file: u32,
    /// Data blocks.
    pub blocks: f64,
    /// Bytes moved.
    pub bytes: f64,
    /// The file CRC recorded in the segment's filemark (segment closes).
    pub crc: Option<u32>,
    /// The segment digest for the catalog, 32 hex digits (XXH3-128 of the block list,
    /// see docs/tape-format.md); absent for a partial range.
    pub digest: Option<String>,
    /// Segment closes: whether the cartridge is now inside its early-warning zone.
    pub early_warning: bool,
    /// Wall time in milliseconds, syncs included.
    pub elapsed_ms: f64,
    /// Segment closes: the catalog file written after the segment, if any.
    pub catalog_file: Option<u32>,
}

enum Target {
    Volume(Arc<Volume>, bool),
    /// Through a volume's write path: its pairs duplex (or track) what is restored.
    Plex(Arc<Plex>),
    File(PathBuf),
    Verify,
}

enum JobPlan {
    Close { catalog: Option<Vec<u8>> },
    Restore { req: ReadRequest, target: Target, target_offset: u64 },
}

/// One segment transfer between a volume (or a file) and a loaded cartridge.
#[napi]
pub struct TapeJob {
    drive: Arc<Mutex<Option<Drive>>>,
    ctl: Arc<CopyControl>,
    plan: Mutex<Option<JobPlan>>,
}

impl TapeJob {
    fn new(drive: &NativeDrive, plan: JobPlan) -> Self {
        TapeJob { drive: drive.inner.clone(), ctl: Arc::new(CopyControl::new()), plan: Mutex::new(Some(plan)) }
    }

    fn restore_plan(file: f64, options: Option<RestoreOptions>, target: impl FnOnce(bool) -> Target) -> napi::Result<JobPlan> {
        let file = crate::args::to_u32("file", file)?;
        let o = options.unwrap_or(RestoreOptions {
            target_offset: None,
            first_block: None,
            expected_length: None,
            expected_digest: None,
            range: None,
            sync: None,
        });
        let expected_digest = match o.expected_digest {
            None => None,
            Some(h) => Some(Digest::from_hex(&h).ok_or_else(|| coded("E_INVALID", format!("digest must be 32 hex digits, not {h}")))?),
        };
        let range = match o.range {
            None => None,
            Some(e) => Some((to_u64("range offset", e.offset)?, to_u64("range length", e.length)?)),
        };
        let req = ReadRequest {
            file,
            first_block: o.first_block.map(|b| to_u64("first block", b)).transpose()?,
            expected_len: o.expected_length.map(|l| to_u64("expected length", l)).transpose()?,
            expected_digest,
            range,
        };
        Ok(JobPlan::Restore {
            req,
            target: target(o.sync.unwrap_or(true)),
            target_offset: to_u64("target offset", o.target_offset.unwrap_or(0.0))?,
        })
    }
}

#[napi]
impl TapeJob {
    /// Prepares the close of the segment a copy device run (`XcopyJob`) left open: sync its data,
    /// write its filemark and `catalog` (if given) as a catalog file behind it, then the
    /// catalog's filemark and EOD, synced (docs/tape-format.md, Durability). Meant to run
    /// in the background while another drive writes the next cartridge; the result's
    /// `earlyWarning` is as of the end; `cancel` does not stop it. E_INVALID if no
    /// segment is open.
    #[napi(factory, catch_unwind)]
    pub fn close_segment(drive: &NativeDrive, catalog: Option<Buffer>) -> napi::Result<Self> {
        Ok(TapeJob::new(drive, JobPlan::Close { catalog: catalog.map(|b| b.to_vec()) }))
    }

    /// Prepares a restore of tape file `file` into a volume.
    #[napi(factory, catch_unwind)]
    pub fn restore(drive: &NativeDrive, file: f64, target: &NativeVolume, options: Option<RestoreOptions>) -> napi::Result<Self> {
        let vol = target.inner.clone();
        Ok(TapeJob::new(drive, TapeJob::restore_plan(file, options, |sync| Target::Volume(vol, sync))?))
    }

    /// Prepares a restore of tape file `file` through a volume's write path: the volume's
    /// pairs duplex (or track) every restored byte, its checkpoints record them.
    #[napi(factory, catch_unwind)]
    pub fn restore_to_plex(drive: &NativeDrive, file: f64, target: &NativePlex, options: Option<RestoreOptions>) -> napi::Result<Self> {
        let plex = target.inner.clone();
        Ok(TapeJob::new(drive, TapeJob::restore_plan(file, options, |_| Target::Plex(plex))?))
    }

    /// Prepares a restore of tape file `file` into a plain file (created if missing).
    #[napi(factory, catch_unwind)]
    pub fn restore_to_file(drive: &NativeDrive, file: f64, path: String, options: Option<RestoreOptions>) -> napi::Result<Self> {
        Ok(TapeJob::new(drive, TapeJob::restore_plan(file, options, |_| Target::File(PathBuf::from(path)))?))
    }

    /// Prepares a verification of tape file `file`: read and check, write nothing.
    #[napi(factory, catch_unwind)]
    pub fn verify(drive: &NativeDrive, file: f64, options: Option<RestoreOptions>) -> napi::Result<Self> {
        Ok(TapeJob::new(drive, TapeJob::restore_plan(file, options, |_| Target::Verify)?))
    }

    /// Runs the transfer off the JS thread; resolves with the report. A job runs once.
    #[napi(ts_return_type = "Promise<TapeJobResult>", catch_unwind)]
    pub fn run(&self, signal: Option<AbortSignal>) -> napi::Result<AsyncTask<TapeTask>> {
        let plan = take_plan(&self.plan, "tape job")?;
        let task = TapeTask { drive: self.drive.clone(), plan: Some(plan), ctl: self.ctl.clone() };
        Ok(AsyncTask::with_optional_signal(task, signal))
    }

    /// Bytes done so far; safe to poll while the job runs.
    #[napi(catch_unwind)]
    pub fn progress(&self) -> CopyProgress {
        CopyProgress::from(self.ctl.as_ref())
    }

    /// Stops the job after the blocks in flight; `run` then rejects with E_CANCELLED
    /// (a backup's partial segment is removed from the cartridge).
    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.ctl.cancel();
    }
}

/// A tape transfer on the libuv pool; it holds the drive for its whole run.
pub struct TapeTask {
    drive: Arc<Mutex<Option<Drive>>>,
    plan: Option<JobPlan>,
    ctl: Arc<CopyControl>,
}

impl Task for TapeTask {
    type Output = TapeJobResult;
    type JsValue = TapeJobResult;

    fn compute(&mut self) -> napi::Result<TapeJobResult> {
        crate::error::guard(|| {
            let plan = self.plan.take().ok_or_else(|| coded("E_BUSY", "tape job already ran"))?;
            on_loaded_drive(&self.drive, |drive| match plan {
                JobPlan::Close { catalog } => {
                    let r = plexus_tape::close_segment(drive, catalog.as_deref()).map_err(to_js)?;
                    let s = r.segment;
                    Ok(TapeJobResult {
                        file: s.file,
                        blocks: s.blocks as f64,
                        bytes: s.bytes as f64,
                        crc: Some(s.crc),
                        digest: None,
                        early_warning: r.catalog.as_ref().map_or(s.early_warning, |c| c.early_warning),
                        elapsed_ms: r.elapsed.as_secs_f64() * 1000.0,
                        catalog_file: r.catalog.map(|c| c.file),
                    })
                }
                JobPlan::Restore { req, target, target_offset } => {
                    let r = match target {
                        Target::Volume(v, sync) => {
                            plexus_tape::read_segment(drive, &req, &mut DeviceSink::new(v.as_ref(), target_offset, sync), &self.ctl)
                        }
                        Target::Plex(plex) => {
                            plexus_tape::read_segment(drive, &req, &mut PlexSink { plex, base: target_offset }, &self.ctl)
                        }
                        Target::File(p) => FileSink::open(&p, target_offset)
                            .and_then(|mut sink| plexus_tape::read_segment(drive, &req, &mut sink, &self.ctl)),
                        Target::Verify => plexus_tape::read_segment(drive, &req, &mut NullSink, &self.ctl),
                    }
                    .map_err(to_js)?;
                    Ok(TapeJobResult {
                        file: r.file,
                        blocks: r.blocks as f64,
                        bytes: r.bytes as f64,
                        crc: None,
                        digest: r.digest.map(|d| d.to_hex()),
                        early_warning: false,
                        elapsed_ms: r.elapsed.as_secs_f64() * 1000.0,
                        catalog_file: None,
                    })
                }
            })
        })
    }

    fn resolve(&mut self, _env: Env, r: TapeJobResult) -> napi::Result<TapeJobResult> {
        Ok(r)
    }
}

/// A restore into a volume's write path, from byte `base`; synced at the end.
struct PlexSink {
    plex: Arc<Plex>,
    base: u64,
}

/// The write path's error as the tape crate reports a destination's.
fn plex_error(e: PlexError) -> TapeError {
    match e {
        PlexError::Volume(v) => TapeError::Device(v),
        other => TapeError::Sink { code: other.code(), detail: other.to_string() },
    }
}

impl Sink for PlexSink {
    fn prepare(&mut self, len: u64) -> plexus_tape::Result<()> {
        plexus_volume::check_range(self.plex.label(), self.base, len, self.plex.size()).map_err(TapeError::Device)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> plexus_tape::Result<()> {
        self.plex.write(self.base + offset, data).map_err(plex_error)
    }
    fn zero(&mut self, offset: u64, len: u64) -> plexus_tape::Result<()> {
        // Punched on every plex, so a thin volume restores thin on each.
        self.plex.write_zeroes(self.base + offset, len, true).map_err(plex_error)
    }
    fn finish(&mut self) -> plexus_tape::Result<()> {
        self.plex.flush().map_err(plex_error)
    }
}

/// One segment of a job's copy, as the catalog records it.
#[napi(object)]
pub struct TapeSourceSegment {
    /// The cartridge file.
    pub path: String,
    /// Tape file holding the segment.
    pub file: u32,
    /// Its first block in that file.
    pub first_block: f64,
    /// First byte of the source it holds.
    pub source_offset: f64,
    /// Bytes it holds.
    pub length: f64,
    /// The catalog's digest of its blocks, 32 hex digits.
    pub digest: String,
}

/// A job's copy on cartridges read as a source device: what `XcopyJob.executeFromTape`
/// copies onto another cartridge (`plexus backup copy`). Every block and segment digest
/// is verified as it is read; holes stay holes.
#[napi]
pub struct NativeTapeSource {
    pub(crate) inner: Arc<plexus_tape::TapeSource>,
}

#[napi]
impl NativeTapeSource {
    /// A source of `size` bytes made of `segments`, which must cover it end to end
    /// (E_INVALID otherwise). Cartridges are loaded read-only when first read.
    #[napi(factory, catch_unwind)]
    pub fn open(label: String, size: f64, segments: Vec<TapeSourceSegment>) -> napi::Result<Self> {
        let segments = segments
            .into_iter()
            .map(|s| {
                Ok(plexus_tape::SourceSegment {
                    path: PathBuf::from(&s.path),
                    file: s.file,
                    first_block: to_u64("firstBlock", s.first_block)?,
                    source_offset: to_u64("sourceOffset", s.source_offset)?,
                    length: to_u64("length", s.length)?,
                    digest: Digest::from_hex(&s.digest)
                        .ok_or_else(|| coded("E_INVALID", format!("digest must be 32 hex digits, not {}", s.digest)))?,
                })
            })
            .collect::<napi::Result<Vec<_>>>()?;
        let inner = plexus_tape::TapeSource::new(&label, to_u64("size", size)?, segments).map_err(to_js)?;
        Ok(NativeTapeSource { inner: Arc::new(inner) })
    }

    /// Unloads the source's cartridges; later reads fail E_BUSY.
    #[napi(catch_unwind)]
    pub fn close(&self) {
        self.inner.close();
    }
}
