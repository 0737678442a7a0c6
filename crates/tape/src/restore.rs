//! Bulk reads from a cartridge: a segment (or a byte range of one) into a sink, every
//! block's CRC verified, then the file's CRC and the segment digest.
//!
//! Two stages overlap: the calling thread reads and verifies blocks while a writer
//! thread writes the previous ones to the sink.

use crate::chain::{BlockChain, Digest};
use crate::drive::WRITE_BEHIND;
use crate::drive::{Drive, Position, Record};
use crate::error::{Result, TapeError};
use crate::format::HEADER_LEN;
use crate::medium::WriteBehind;
use crate::transfer::PIPELINE_DEPTH;
use plexus_copy::CopyControl;
use plexus_volume::{check_range, BlockDevice, VolumeError};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where restored bytes go. Offsets count from the first byte delivered.
pub trait Sink: Send {
    /// Called once before the first write with the number of bytes to come, so a
    /// sink that cannot take them fails before anything is read.
    fn prepare(&mut self, _len: u64) -> Result<()> {
        Ok(())
    }
    /// Writes `data` at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()>;
    /// Makes `len` bytes at `offset` read as zeroes (a hole recorded on the cartridge);
    /// a sink that can leaves them unallocated. The default writes zeroes, 1 MiB at a
    /// time.
    fn zero(&mut self, offset: u64, len: u64) -> Result<()> {
        in_zero_pieces(offset, len, |at, zeroes| self.write_at(at, zeroes))
    }
    /// Called once after the last write (a file or device sink syncs here).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Zeroes a sink's default `zero` writes at once.
const ZERO_PIECE: u64 = 1 << 20;

/// Calls `write` with zeroes covering `[offset, offset+len)`, a bounded piece at a time.
fn in_zero_pieces<E>(offset: u64, len: u64, mut write: impl FnMut(u64, &[u8]) -> std::result::Result<(), E>) -> std::result::Result<(), E> {
    let zeroes = vec![0u8; ZERO_PIECE.min(len) as usize];
    let mut at = 0u64;
    while at < len {
        let n = ZERO_PIECE.min(len - at) as usize;
        write(offset + at, zeroes.get(..n).unwrap_or_default())?;
        at += n as u64;
    }
    Ok(())
}

/// Restores into a block device (a volume) from `base` on.
pub struct DeviceSink<'a> {
    dev: &'a dyn BlockDevice,
    base: u64,
    sync: bool,
}

impl<'a> DeviceSink<'a> {
    /// Writes to `dev` from byte `base`; flushes the device at the end when `sync`.
    pub fn new(dev: &'a dyn BlockDevice, base: u64, sync: bool) -> Self {
        DeviceSink { dev, base, sync }
    }
}

impl Sink for DeviceSink<'_> {
    fn prepare(&mut self, len: u64) -> Result<()> {
        Ok(check_range(self.dev.label(), self.base, len, self.dev.size())?)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        Ok(self.dev.write_at(self.base + offset, data)?)
    }
    fn zero(&mut self, offset: u64, len: u64) -> Result<()> {
        // A volume punches the range, so a thin volume restores thin.
        Ok(self.dev.write_zeroes(self.base + offset, len, true)?)
    }
    fn finish(&mut self) -> Result<()> {
        if self.sync {
            self.dev.flush()?;
        }
        Ok(())
    }
}

/// Restores into a plain file, synced at the end; writeback starts in the background
/// as it goes, as on a cartridge (see `medium::WriteBehind`).
pub struct FileSink {
    file: Arc<File>,
    path: PathBuf,
    base: u64,
    behind: WriteBehind,
    unkicked: u64,
}

impl FileSink {
    /// Opens (creating if needed, never truncating) `path` and writes from byte `base`.
    pub fn open(path: &Path, base: u64) -> Result<Self> {
        let file = OpenOptions::new().write(true).create(true).truncate(false).open(path).map_err(|e| VolumeError::io(path, "open", e))?;
        let file = Arc::new(file);
        Ok(FileSink { behind: WriteBehind::new(file.clone()), file, path: path.to_owned(), base, unkicked: 0 })
    }
}

impl Sink for FileSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.file.write_all_at(data, self.base + offset).map_err(|e| VolumeError::io(&self.path, "write", e))?;
        self.unkicked += data.len() as u64;
        if self.unkicked >= WRITE_BEHIND {
            self.behind.kick();
            self.unkicked = 0;
        }
        Ok(())
    }
    fn zero(&mut self, offset: u64, len: u64) -> Result<()> {
        let (from, to) = (self.base + offset, self.base + offset + len);
        let size = self.file.metadata().map_err(|e| VolumeError::io(&self.path, "stat", e))?.len();
        // Below the end of the file the range is punched out; past it, growing the
        // file makes the zeroes without allocating them.
        if from < size {
            punch(&self.file, from, to.min(size) - from).map_err(|e| VolumeError::io(&self.path, "punch a hole in", e))?;
        }
        if to > size {
            self.file.set_len(to).map_err(|e| VolumeError::io(&self.path, "extend", e))?;
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        self.behind.sync().map_err(|e| VolumeError::io(&self.path, "fsync", e).into())
    }
}

/// Deallocates `[offset, offset+len)` of `file`, keeping its size; falls back to
/// writing zeroes where the file system cannot punch holes.
fn punch(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    match fallocate(file, FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, offset, len) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP => in_zero_pieces(offset, len, |at, zeroes| file.write_all_at(zeroes, at)),
        Err(e) => Err(e.into()),
    }
}

/// Collects the bytes in memory.
#[derive(Default)]
pub struct VecSink(pub Vec<u8>);

impl Sink for VecSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset as usize + data.len();
        if self.0.len() < end {
            self.0.resize(end, 0);
        }
        self.0[offset as usize..end].copy_from_slice(data);
        Ok(())
    }
    fn zero(&mut self, offset: u64, len: u64) -> Result<()> {
        let end = (offset + len) as usize;
        if self.0.len() < end {
            self.0.resize(end, 0);
        }
        self.0[offset as usize..end].fill(0);
        Ok(())
    }
}

/// Discards the bytes: reading into it verifies a segment without restoring it.
pub struct NullSink;

impl Sink for NullSink {
    fn write_at(&mut self, _offset: u64, _data: &[u8]) -> Result<()> {
        Ok(())
    }
    fn zero(&mut self, _offset: u64, _len: u64) -> Result<()> {
        Ok(())
    }
}

/// What the reader hands the sink's writer thread: a block's buffer with the range of
/// it to write at an offset, or a run of zeroes (a hole).
enum Piece {
    Data(Vec<u8>, u64, usize, usize),
    Zero(u64, u64),
}

/// What to read and what the catalog expects of it.
#[derive(Clone, Debug, Default)]
pub struct ReadRequest {
    /// Tape file holding the segment.
    pub file: u32,
    /// A chunk: the segment is the `expected_len` bytes from this block of the file
    /// (chunks of an EXTENDED COPY backup share a file). None: the whole file.
    pub first_block: Option<u64>,
    /// Length the catalog records; E_CORRUPT if the file holds another (or, for a
    /// chunk, if the file ends before it).
    pub expected_len: Option<u64>,
    /// Digest the catalog records, of the segment's blocks; E_CORRUPT if they hash to another.
    pub expected_digest: Option<Digest>,
    /// Only this byte range of the segment (offset within it, length); block CRCs are
    /// still verified, but the whole-segment digest cannot be.
    pub range: Option<(u64, u64)>,
}

/// What a segment read did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadReport {
    /// Tape file read.
    pub file: u32,
    /// Data blocks read.
    pub blocks: u64,
    /// Bytes delivered to the sink.
    pub bytes: u64,
    /// The segment digest (None for a partial range).
    pub digest: Option<Digest>,
    /// Wall time, including the sink's final sync.
    pub elapsed: Duration,
}

/// Reads tape file `req.file` into `sink`, verifying every block's CRC (E_CORRUPT
/// naming barcode, file and block), then the file CRC from its filemark and the digest.
/// Leaves the drive after the file's filemark (or after the last block of a range).
pub fn read_segment(drive: &mut Drive, req: &ReadRequest, sink: &mut dyn Sink, ctl: &CopyControl) -> Result<ReadReport> {
    let started = Instant::now();
    drive.locate(Position { file: req.file, block: 0 })?;
    let info = drive
        .files()
        .get(req.file as usize)
        .cloned()
        .ok_or_else(|| TapeError::Range { cartridge: drive.barcode().to_owned(), detail: format!("no file {}", req.file) })?;
    let bs = u64::from(drive.label().block_size);
    // The segment's place in the file: all of it, or a chunk from a block boundary.
    let seg_start = req.first_block.map_or(0, |b| b.saturating_mul(bs));
    let seg_len = match (req.first_block, req.expected_len) {
        (None, Some(want)) if want != info.bytes => {
            return Err(TapeError::corrupt_at(
                drive.barcode(),
                req.file,
                None,
                format!("it holds {} bytes where {want} were expected", info.bytes),
            ));
        }
        (Some(b), Some(want)) if seg_start.checked_add(want).is_none_or(|end| end > info.bytes) => {
            return Err(TapeError::corrupt_at(
                drive.barcode(),
                req.file,
                None,
                format!("it holds {} bytes, too few for a chunk of {want} bytes from block {b}", info.bytes),
            ));
        }
        (_, Some(want)) => want,
        (_, None) => info.bytes.saturating_sub(seg_start),
    };
    let (rel, len) = req.range.unwrap_or((0, seg_len));
    if rel.checked_add(len).is_none_or(|end| end > seg_len) {
        return Err(TapeError::Range {
            cartridge: drive.barcode().to_owned(),
            detail: format!("file {} holds {seg_len} bytes there; range offset {rel} length {len} passes its end", req.file),
        });
    }
    let start = seg_start + rel;
    // The digest covers exactly the blocks read when the whole segment is read.
    let whole_segment = rel == 0 && len == seg_len;
    let whole = whole_segment && seg_start == 0 && seg_len == info.bytes;
    sink.prepare(len)?;
    let first = start / bs;
    drive.locate(Position { file: req.file, block: first })?;
    ctl.start(len);

    let (blocks, digest) = std::thread::scope(|s| -> Result<(u64, Digest)> {
        let (tx, rx) = sync_channel::<Piece>(PIPELINE_DEPTH);
        let (recycle, recycled) = channel::<Vec<u8>>();
        let writer = s.spawn(move || -> Result<()> {
            for piece in rx.iter() {
                match piece {
                    Piece::Data(buf, at, from, to) => {
                        let bytes = buf.get(from..to).unwrap_or_default();
                        sink.write_at(at, bytes)?;
                        ctl.add(bytes.len() as u64);
                        let _ = recycle.send(buf);
                    }
                    Piece::Zero(at, n) => {
                        sink.zero(at, n)?;
                        ctl.add(n);
                    }
                }
            }
            sink.finish()
        });
        let read = (|| -> Result<(u64, Digest)> {
            let mut chain = BlockChain::new();
            let mut blocks = 0u64;
            let mut delivered = 0u64;
            let mut block_start = first * bs;
            while delivered < len {
                if ctl.is_cancelled() {
                    return Err(TapeError::Cancelled { bytes: delivered });
                }
                let mut buf = recycled.try_recv().unwrap_or_default();
                let (piece, span) = match drive.read_record_into(&mut buf)? {
                    Record::Filemark => break,
                    Record::Data(c) => {
                        let payload_len = buf.len() as u64 - HEADER_LEN;
                        chain.add(payload_len as u32, c);
                        // The part of this block inside the range.
                        let from = start.saturating_sub(block_start);
                        let to = (start + len - block_start).min(payload_len);
                        blocks += 1;
                        (Piece::Data(buf, delivered, (HEADER_LEN + from) as usize, (HEADER_LEN + to) as usize), (payload_len, to - from))
                    }
                    Record::Hole(n) => {
                        // Whole hole records count in the chain (a read from the file's
                        // start meets them whole; a range's chain is not checked).
                        chain.add_hole(u32::try_from(n).unwrap_or(u32::MAX));
                        let hole = n * bs;
                        let from = start.saturating_sub(block_start);
                        let to = (start + len - block_start).min(hole);
                        blocks += n;
                        (Piece::Zero(delivered, to - from), (hole, to - from))
                    }
                };
                delivered += span.1;
                block_start += span.0;
                if tx.send(piece).is_err() {
                    return Ok((blocks, chain.digest())); // the writer failed; its error is reported
                }
            }
            if whole {
                // Move past the filemark, and check the file CRC it records.
                if drive.read_record_into(&mut Vec::new())? != Record::Filemark || chain.crc() != info.crc {
                    return Err(TapeError::corrupt_at(drive.barcode(), req.file, None, "the file's checksum does not match its filemark"));
                }
            }
            Ok((blocks, chain.digest()))
        })();
        drop(tx);
        let written = writer.join().map_err(|_| TapeError::Invalid { detail: "restore writer thread panicked".into() })?;
        let read = read?;
        written?;
        Ok(read)
    })?;

    if whole_segment {
        if let Some(want) = req.expected_digest {
            if want != digest {
                return Err(TapeError::corrupt_at(
                    drive.barcode(),
                    req.file,
                    None,
                    format!("segment digest {} does not match the expected {}", digest.to_hex(), want.to_hex()),
                ));
            }
        }
    }
    Ok(ReadReport { file: req.file, blocks, bytes: len, digest: whole_segment.then_some(digest), elapsed: started.elapsed() })
}

/// Reads a whole tape file into memory (a catalog blob), verifying every block and the
/// The most [`read_file`] reads into memory: 256 MiB.
pub const MAX_READ_FILE: u64 = 256 << 20;

/// file CRC.
pub fn read_file(drive: &mut Drive, file: u32) -> Result<Vec<u8>> {
    // Into memory: only small files (catalog files are a few blocks), refused before
    // anything is allocated.
    if let Some(f) = drive.files().iter().find(|f| f.file == file).filter(|f| f.bytes > MAX_READ_FILE) {
        let (cartridge, bytes) = (drive.label().barcode.clone(), f.bytes);
        return Err(TapeError::Range {
            cartridge,
            detail: format!("file {file} holds {bytes} bytes; at most {MAX_READ_FILE} are read into memory"),
        });
    }
    let mut sink = VecSink::default();
    read_segment(drive, &ReadRequest { file, ..ReadRequest::default() }, &mut sink, &CopyControl::new())?;
    Ok(sink.0)
}
