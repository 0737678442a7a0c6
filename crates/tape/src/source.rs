//! One copy of a backup job on cartridges, read as a block device: the source of a
//! second copy (`plexus backup copy`). The copy device writes the new copy exactly as
//! it backs up a volume (crates/xcopy: chunks, early warning, hole records), reading
//! this device instead of a volume.
//!
//! Reads are served from the cartridges in source order, record by record, with the
//! checks a restore makes (crates/tape `read_segment`): every block's header and CRC,
//! and for every segment the digest of its block list once its last record was read,
//! so a copy is never made of data that does not verify. A segment is always read from
//! its first block: the digest binds the order and number of its blocks.
//!
//! The copy device reads forward, but after early warning it restarts the rest of a
//! command from the block that entered the zone, a few blocks behind what its reader
//! already read ahead. The last records read are kept (`RETAIN_BLOCKS` reads' worth),
//! so such a step back is served from memory; a step back further than that restarts
//! the segment from its first block, which costs time, never correctness.
//!
//! The holes of the source stay holes: `allocation` answers from the hole records the
//! cartridges list (no data is read for it), and the copy device writes hole records
//! for them again.

use crate::chain::{BlockChain, Digest};
use crate::drive::{Drive, Position, Record};
use crate::error::TapeError;
use crate::format::HEADER_LEN;
use crate::scan::{FileInfo, Place};
use plexus_volume::{check_range, Access, BlockDevice, Result, VolumeError};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One segment of the copy: `length` bytes of the source from `source_offset`, stored
/// in tape file `file` of the cartridge at `path` from block `first_block`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSegment {
    /// The cartridge file.
    pub path: PathBuf,
    /// Tape file holding the segment.
    pub file: u32,
    /// The segment's first block in that file (0 unless chunks share the file).
    pub first_block: u64,
    /// First byte of the source it holds.
    pub source_offset: u64,
    /// Bytes it holds.
    pub length: u64,
    /// The digest the catalog records for it.
    pub digest: Digest,
}

/// Reads of the copy device's size kept for a step back (see the module notes): the
/// device reads ahead at most its pipeline's depth, a handful of blocks.
const RETAIN_BLOCKS: u64 = 16;
/// At least this many bytes are kept, whatever the read size.
const RETAIN_MIN: u64 = 8 << 20;
/// At most this many records are kept (hole records take no memory, but each is an entry).
const RETAIN_RECORDS: usize = 4096;

/// A job's copy on cartridges as a read-only [`BlockDevice`] of the job's size.
pub struct TapeSource {
    label: String,
    size: u64,
    segments: Vec<SourceSegment>,
    state: Mutex<State>,
}

/// A record read, kept for a step back: `len` bytes of the source from `start`, its
/// payload in `data` from `HEADER_LEN` on, or zeroes (a hole) when `data` is None.
struct Piece {
    start: u64,
    len: u64,
    data: Option<Vec<u8>>,
}

/// Where the reader is: segment `seg`, next record at source byte `at`.
struct Cursor {
    seg: usize,
    at: u64,
    chain: BlockChain,
}

#[derive(Default)]
struct State {
    /// Loaded cartridges, by path: loaded once, kept until the source is closed.
    drives: Vec<(PathBuf, Drive)>,
    cursor: Option<Cursor>,
    kept: VecDeque<Piece>,
    kept_bytes: u64,
    /// The largest read asked for (the copy device's block size).
    max_read: u64,
    closed: bool,
}

impl TapeSource {
    /// A source of `size` bytes made of `segments`, which must cover `[0, size)` in order,
    /// end to end. Cartridges are loaded (read-only) when first needed. E_INVALID otherwise.
    pub fn new(label: &str, size: u64, mut segments: Vec<SourceSegment>) -> std::result::Result<TapeSource, TapeError> {
        segments.sort_by_key(|s| s.source_offset);
        let mut at = 0u64;
        for s in &segments {
            if s.source_offset != at || s.length == 0 {
                return Err(TapeError::Invalid {
                    detail: format!("{label}: the segments do not cover the source end to end (a gap or overlap at byte {at})"),
                });
            }
            at = at.checked_add(s.length).ok_or_else(|| TapeError::Invalid { detail: format!("{label}: segment lengths overflow") })?;
        }
        if at != size {
            return Err(TapeError::Invalid { detail: format!("{label}: the segments hold {at} bytes of a {size}-byte source") });
        }
        Ok(TapeSource { label: label.to_owned(), size, segments, state: Mutex::new(State::default()) })
    }

    /// Unloads every cartridge; later reads fail E_BUSY. A copy device left behind
    /// (stuck) may still hold the source: its reads then fail instead of loading again.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.cursor = None;
        st.kept.clear();
        st.drives.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The segment holding byte `at` (the last one for the end of the source).
    fn segment_at(&self, at: u64) -> usize {
        self.segments.partition_point(|s| s.source_offset + s.length <= at).min(self.segments.len().saturating_sub(1))
    }

    fn segment(&self, i: usize) -> Result<&SourceSegment> {
        self.segments.get(i).ok_or_else(|| VolumeError::Invalid { detail: format!("{}: no segment {i}", self.label) })
    }

    /// Fills `buf` from the kept records and the cartridges, reading forward.
    fn read(&self, st: &mut State, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            if let Some(p) = st.kept.iter().find(|p| p.start <= at && at < p.start + p.len) {
                let from = (at - p.start) as usize;
                let n = ((p.len as usize) - from).min(buf.len() - done);
                let out = buf.get_mut(done..done + n).unwrap_or_default();
                match &p.data {
                    Some(d) => out.copy_from_slice(d.get(HEADER_LEN as usize + from..HEADER_LEN as usize + from + n).unwrap_or_default()),
                    None => out.fill(0),
                }
                done += n;
                continue;
            }
            // Not kept: read on from the cursor, or start over at the segment holding
            // `at` when the cursor is past it (a step back beyond what is kept).
            if st.cursor.as_ref().is_none_or(|c| c.at > at) {
                let seg = self.segment_at(at);
                self.start(st, seg)?;
            }
            let piece = self.next_record(st)?;
            st.kept_bytes += piece.data.as_ref().map_or(0, |_| piece.len);
            st.kept.push_back(piece);
            let keep = (RETAIN_BLOCKS * st.max_read).max(RETAIN_MIN);
            while st.kept.len() > 1 && (st.kept_bytes > keep || st.kept.len() > RETAIN_RECORDS) {
                if let Some(old) = st.kept.pop_front() {
                    st.kept_bytes -= old.data.as_ref().map_or(0, |_| old.len);
                }
            }
        }
        Ok(())
    }

    /// Positions the reader at the first block of segment `seg`.
    fn start(&self, st: &mut State, seg: usize) -> Result<()> {
        let s = self.segment(seg)?;
        let drive = drive_for(st, &s.path)?;
        drive.locate(Position { file: s.file, block: s.first_block }).map_err(|e| to_volume(e, &s.path))?;
        st.cursor = Some(Cursor { seg, at: s.source_offset, chain: BlockChain::new() });
        st.kept.clear();
        st.kept_bytes = 0;
        Ok(())
    }

    /// Reads the record at the cursor (moving to the next segment first when the
    /// current one is done), checking it; verifies a segment's digest at its last record.
    fn next_record(&self, st: &mut State) -> Result<Piece> {
        let (mut seg, at) =
            st.cursor.as_ref().map(|c| (c.seg, c.at)).ok_or_else(|| VolumeError::Invalid { detail: "no read position".into() })?;
        let mut s = self.segment(seg)?;
        if at >= s.source_offset + s.length {
            seg += 1;
            self.start(st, seg)?;
            s = self.segment(seg)?;
        }
        let end = s.source_offset + s.length;
        let drive = drive_for(st, &s.path)?;
        let bs = u64::from(drive.label().block_size);
        let barcode = drive.barcode().to_owned();
        let block = drive.position().block;
        let mut buf = Vec::new();
        let record = drive.read_record_into(&mut buf).map_err(|e| to_volume(e, &s.path))?;
        let corrupt = |detail: String| VolumeError::Corrupt {
            path: s.path.clone(),
            detail: format!("cartridge {barcode} file {} block {block}: {detail}", s.file),
        };
        let cursor = st.cursor.as_mut().ok_or_else(|| VolumeError::Invalid { detail: "no read position".into() })?;
        let (len, data) = match record {
            Record::Data(crc) => {
                let n = buf.len() as u64 - HEADER_LEN;
                cursor.chain.add(n as u32, crc);
                (n, Some(buf))
            }
            Record::Hole(n) => {
                cursor.chain.add_hole(u32::try_from(n).unwrap_or(u32::MAX));
                (n * bs, None)
            }
            Record::Filemark => {
                return Err(corrupt(format!("the file ends {} bytes before the segment the catalog records", end - cursor.at)))
            }
        };
        if len > end - cursor.at {
            return Err(corrupt(format!("a record of {len} bytes passes the end of the segment the catalog records")));
        }
        let piece = Piece { start: cursor.at, len, data };
        cursor.at += len;
        if cursor.at == end && cursor.chain.digest() != s.digest {
            return Err(corrupt(format!(
                "segment digest {} does not match the expected {}",
                cursor.chain.digest().to_hex(),
                s.digest.to_hex()
            )));
        }
        Ok(piece)
    }

    /// Runs `(len, hole)` of `[offset, offset + len)` from the segments' hole records.
    fn holes(&self, st: &mut State, offset: u64, len: u64) -> Result<Vec<(u64, bool)>> {
        let mut out: Vec<(u64, bool)> = Vec::new();
        let mut push = |n: u64, hole: bool| match out.last_mut() {
            Some(last) if last.1 == hole => last.0 += n,
            _ => out.push((n, hole)),
        };
        let end = offset + len;
        let mut at = offset;
        while at < end {
            let s = self.segment(self.segment_at(at))?;
            let drive = drive_for(st, &s.path)?;
            let bs = u64::from(drive.label().block_size);
            let info: &FileInfo = drive.files().get(s.file as usize).ok_or_else(|| VolumeError::Corrupt {
                path: s.path.clone(),
                detail: format!("cartridge {} holds no file {}", drive.barcode(), s.file),
            })?;
            let stop = end.min(s.source_offset + s.length);
            while at < stop {
                let block = s.first_block + (at - s.source_offset) / bs;
                // Source offset of the start of block `b` of this segment.
                let offset_of = |b: u64| s.source_offset + (b - s.first_block) * bs;
                let (to, hole) = match info.place(block, drive.label().block_size) {
                    Place::Hole { remaining, .. } => (offset_of(block + remaining), true),
                    Place::Data(_) => {
                        let next = info.holes.iter().find(|h| h.block > block).map_or(u64::MAX, |h| offset_of(h.block));
                        (next, false)
                    }
                };
                let to = to.clamp(at + 1, stop);
                push(to - at, hole);
                at = to;
            }
        }
        Ok(out)
    }
}

/// The drive holding the cartridge at `path`, loaded read-only on first use.
fn drive_for<'a>(st: &'a mut State, path: &Path) -> Result<&'a mut Drive> {
    if st.closed {
        return Err(VolumeError::Busy { volume: path.display().to_string(), detail: "the copy's source was closed".into() });
    }
    let i = match st.drives.iter().position(|(p, _)| p == path) {
        Some(i) => i,
        None => {
            let d = Drive::open(path, Access::ReadOnly).map_err(|e| to_volume(e, path))?;
            st.drives.push((path.to_owned(), d));
            st.drives.len() - 1
        }
    };
    st.drives.get_mut(i).map(|(_, d)| d).ok_or_else(|| VolumeError::Invalid { detail: "cartridge table".into() })
}

/// A tape error as the block-device error the copy device reports, keeping its code.
fn to_volume(e: TapeError, path: &Path) -> VolumeError {
    match e {
        TapeError::Io { op, source, .. } => VolumeError::Io { path: path.to_owned(), op, source },
        TapeError::Device(v) => v,
        TapeError::NotFound { path } => VolumeError::NotFound { path },
        TapeError::Busy { cartridge, detail } => VolumeError::Busy { volume: cartridge, detail },
        TapeError::Invalid { detail } => VolumeError::Invalid { detail },
        // A position the catalog names that is not on the cartridge, a torn or bad
        // record: the cartridge does not hold what the catalog says.
        other => VolumeError::Corrupt { path: path.to_owned(), detail: other.to_string() },
    }
}

impl BlockDevice for TapeSource {
    fn label(&self) -> &str {
        &self.label
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(&self.label, offset, buf.len() as u64, self.size)?;
        let mut st = self.lock();
        st.max_read = st.max_read.max(buf.len() as u64);
        self.read(&mut st, offset, buf)
    }
    fn write_at(&self, _offset: u64, _data: &[u8]) -> Result<()> {
        Err(VolumeError::ReadOnly { volume: self.label.clone() })
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    fn write_zeroes(&self, _offset: u64, _len: u64, _punch: bool) -> Result<()> {
        Err(VolumeError::ReadOnly { volume: self.label.clone() })
    }
    fn allocation(&self, offset: u64, len: u64) -> Result<Vec<(u64, bool)>> {
        check_range(&self.label, offset, len, self.size)?;
        let mut st = self.lock();
        self.holes(&mut st, offset, len)
    }
}
