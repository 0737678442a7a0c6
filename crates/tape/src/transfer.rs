//! Bulk writes to a cartridge: a segment of a volume, or a small file (the catalog).
//!
//! A segment is one tape file. Two stages overlap: a producer thread reads each block
//! into a buffer of its own and computes its CRC-32C over that buffer, while the
//! calling thread writes the block with one `pwritev` of its header and that same
//! buffer; checksumming and reading run on the second core. The buffer is the block's
//! only copy between the two: another program writing the source meanwhile changes
//! neither the bytes stored nor their checksum, so a block's CRC and the segment
//! digest always cover exactly the bytes on the cartridge. (Blocks used to be lent
//! from a shared map of the source: a concurrent writer then changed the pages
//! between the CRC and the write, and the backup could not be restored.)

use crate::chain::{BlockChain, Digest};
use crate::drive::{Drive, Pending, Position};
use crate::error::{Result, TapeError};
use crate::format::{Content, HEADER_LEN};
use crate::holes::Holes;
use plexus_copy::CopyControl;
use plexus_volume::{check_range, BlockDevice};
use std::sync::mpsc::{channel, sync_channel};
use std::time::{Duration, Instant};

/// Blocks in flight between the two stages: enough to ride out a slow write, few
/// enough that cancelling is prompt and memory stays small.
pub(crate) const PIPELINE_DEPTH: usize = 4;

/// Why a segment write stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndedBy {
    /// Every byte asked for was written.
    Complete,
    /// The cartridge reached its early-warning zone first; the rest goes on another.
    EarlyWarning,
}

/// What a segment write did: the segment is file `file` from block `position.block`
/// (0 but for a chunk appended to an open segment file, see [`append_segment_data`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentReport {
    /// Tape file holding the segment.
    pub file: u32,
    /// Position of its first block: (file, 0).
    pub position: Position,
    /// Data blocks written.
    pub blocks: u64,
    /// Bytes of the source written (from the requested offset on).
    pub bytes: u64,
    /// Of those, the bytes of data blocks (holes take none on the medium).
    pub data_bytes: u64,
    /// The file CRC recorded in the segment's filemark.
    pub crc: u32,
    /// The segment digest, for the catalog (see `chain`).
    pub digest: Digest,
    /// Whether all bytes were written or early warning cut the segment short.
    pub ended_by: EndedBy,
    /// Whether the cartridge is now inside its early-warning zone.
    pub early_warning: bool,
    /// Wall time, including the syncs.
    pub elapsed: Duration,
}

/// What a small-file write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// Tape file written.
    pub file: u32,
    /// Data blocks.
    pub blocks: u64,
    /// Bytes.
    pub bytes: u64,
    /// The file CRC recorded in its filemark.
    pub crc: u32,
    /// Whether the cartridge is now inside its early-warning zone.
    pub early_warning: bool,
}

/// Writes `len` bytes of `src` from `offset` as a new tape file of content "segment"
/// at the current position (the end of data, or a file boundary: what follows is
/// truncated), then a synced filemark. Stops early, still closing the file, when a
/// block enters the early-warning zone. On any error or cancel the partial file is
/// abandoned: appending at the end of data, the cartridge is left as it was.
pub fn write_segment(drive: &mut Drive, src: &dyn BlockDevice, offset: u64, len: u64, ctl: &CopyControl) -> Result<SegmentReport> {
    let started = Instant::now();
    let mut r = write_segment_data(drive, src, offset, len, ctl)?;
    if let Err(e) = drive.write_filemark() {
        return Err(abandon(drive, e));
    }
    r.early_warning = drive.space().in_early_warning;
    r.elapsed = started.elapsed();
    Ok(r)
}

/// The first half of [`write_segment`]: writes the segment's blocks and leaves the
/// file open, neither synced nor closed, for [`close_segment`] (possibly on another
/// thread, while the next cartridge is written). The segment does not count until
/// then: a crash, or unloading by dropping the drive, leaves it unterminated and the
/// next load discards it. On error or cancel the partial file is abandoned as in
/// `write_segment`. The report's `early_warning` and `elapsed` are as of the data.
pub fn write_segment_data(drive: &mut Drive, src: &dyn BlockDevice, offset: u64, len: u64, ctl: &CopyControl) -> Result<SegmentReport> {
    check_range(src.label(), offset, len, src.size())?;
    begin_new_file(drive, Content::Segment)?;
    append_blocks(drive, src, offset, len, ctl, None)
}

/// Appends `len` bytes of `src` from `offset` to the segment file left open by
/// [`write_segment_data`] or an earlier call (one EXTENDED COPY segment command: a
/// chunk of a volume at a block position of the target), or opens a new segment file
/// when none is open. The report's `position` is the chunk's first block and its
/// `digest` covers the chunk's blocks only. Stops early at early warning as a segment
/// does. On error or cancel the file is cut back to where the chunk began, so chunks
/// already appended stay; a file this call opened is abandoned. The chunk must start
/// at a full block: E_INVALID after a short last block.
pub fn append_segment_data(drive: &mut Drive, src: &dyn BlockDevice, offset: u64, len: u64, ctl: &CopyControl) -> Result<SegmentReport> {
    check_range(src.label(), offset, len, src.size())?;
    // A chunk after a short block is refused by `append_block` (only a file's last
    // block may be short) and cut back like any failed chunk.
    let resume = match drive.pending() {
        Some(p) if p.content == Content::Segment => Some(p.clone()),
        Some(_) => {
            return Err(TapeError::Busy {
                cartridge: drive.barcode().to_owned(),
                detail: "a file that is not a segment is being written".into(),
            });
        }
        None => {
            drive.begin_write(Content::Segment, false)?;
            None
        }
    };
    append_blocks(drive, src, offset, len, ctl, resume)
}

/// Writes the blocks of a segment or chunk into the open file; on failure undoes them:
/// back to `resume` (the open file as it was), or the whole file when there is none.
fn append_blocks(
    drive: &mut Drive,
    src: &dyn BlockDevice,
    offset: u64,
    len: u64,
    ctl: &CopyControl,
    resume: Option<Pending>,
) -> Result<SegmentReport> {
    let started = Instant::now();
    // A chunk that cannot be cut back off the file takes the whole file with it: the
    // open file must hold exactly the completed chunks, or nothing.
    let undo = |drive: &mut Drive, e: TapeError| match &resume {
        Some(p) if drive.cut_back(p).is_ok() => e,
        _ => abandon(drive, e),
    };
    let first_block = resume.as_ref().map_or(0, |p| p.blocks);
    let planned = match plan(drive, len) {
        Ok(n) => n,
        Err(e) => return Err(undo(drive, e)),
    };
    // With holes the bytes that fit are known only as the records are written (a hole
    // takes a header, whatever it stands for): the pump stops after the record that
    // enters the early-warning zone. Without, that is exactly `planned`.
    let limit = if drive.label().has_holes() { len } else { planned };
    ctl.start(limit);
    let chain = match pump(drive, src, offset, limit, ctl) {
        Ok(c) => c,
        Err(e) => return Err(undo(drive, e)),
    };
    let Some(p) = drive.pending().cloned() else {
        return Err(TapeError::Invalid { detail: "segment file vanished".into() });
    };
    let bytes = p.bytes - resume.as_ref().map_or(0, |r| r.bytes);
    let data_bytes = p.data_bytes - resume.as_ref().map_or(0, |r| r.data_bytes);
    if ctl.is_cancelled() && bytes < limit {
        return Err(undo(drive, TapeError::Cancelled { bytes }));
    }
    Ok(SegmentReport {
        file: p.file,
        position: Position { file: p.file, block: first_block },
        blocks: p.blocks - first_block,
        bytes,
        data_bytes,
        crc: p.chain.crc(),
        digest: chain.digest(),
        ended_by: if bytes < len { EndedBy::EarlyWarning } else { EndedBy::Complete },
        early_warning: drive.space().in_early_warning,
        elapsed: started.elapsed(),
    })
}

/// The second half of [`write_segment`]: closes the segment [`write_segment_data`]
/// left open and, given `catalog`, writes it as a catalog file right behind it. With
/// a catalog that is three syncs, not the four of `write_filemark` + [`write_file`]:
///
/// 1. sync: the segment's blocks are stable;
/// 2. write the segment's filemark and the catalog's blocks behind it (no EOD), sync:
///    the filemark and the catalog's blocks are stable;
/// 3. write the catalog's filemark and EOD, sync.
///
/// So every filemark still covers synced data, and a crash at any point leaves the
/// segment either closed or discarded on load, and the catalog file likewise (a
/// closed catalog file always follows its closed segment). On error the
/// file being written is abandoned; if the segment's filemark was already written,
/// the segment stays and only the catalog file is dropped. Allowed inside the
/// early-warning zone, which keeps room for the catalog; E_EOM if it does not fit.
pub fn close_segment(drive: &mut Drive, catalog: Option<&[u8]>) -> Result<ClosedSegment> {
    let started = Instant::now();
    let p = match drive.pending() {
        Some(p) if p.content == Content::Segment => p.clone(),
        _ => {
            return Err(TapeError::Invalid { detail: format!("cartridge {}: no segment is open to close", drive.barcode()) });
        }
    };
    let segment = FileReport { file: p.file, blocks: p.blocks, bytes: p.bytes, crc: p.chain.crc(), early_warning: false };
    let Some(data) = catalog else {
        if let Err(e) = drive.write_filemark() {
            return Err(abandon(drive, e));
        }
        let early_warning = drive.space().in_early_warning;
        return Ok(ClosedSegment { segment: FileReport { early_warning, ..segment }, catalog: None, elapsed: started.elapsed() });
    };
    if let Err(e) = drive.write_filemark_then_begin(Content::Catalog) {
        return Err(abandon(drive, e));
    }
    let segment = FileReport { early_warning: drive.space().in_early_warning, ..segment };
    let file = append_file(drive, data)?;
    Ok(ClosedSegment { segment, catalog: Some(file), elapsed: started.elapsed() })
}

/// What [`close_segment`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedSegment {
    /// The segment, now closed by a synced filemark; `early_warning` as of its filemark.
    pub segment: FileReport,
    /// The catalog file written behind it, if one was given.
    pub catalog: Option<FileReport>,
    /// Wall time, syncs included.
    pub elapsed: Duration,
}

/// Writes `data` as a new tape file of `content` (the catalog blob after each segment),
/// then a synced filemark. Allowed inside the early-warning zone, which keeps room for
/// it; E_EOM if it does not fit, leaving the cartridge as it was.
pub fn write_file(drive: &mut Drive, data: &[u8], content: Content) -> Result<FileReport> {
    begin_new_file(drive, content)?;
    append_file(drive, data)
}

/// Writes `data` into the file just begun and closes it with a synced filemark;
/// abandons the file on error.
fn append_file(drive: &mut Drive, data: &[u8]) -> Result<FileReport> {
    let bs = drive.label().block_size as usize;
    let mut early_warning = false;
    for chunk in data.chunks(bs) {
        match drive.append_block(chunk, crc32c::crc32c(chunk)) {
            Ok(s) => early_warning |= s.early_warning,
            Err(e) => return Err(abandon(drive, e)),
        }
    }
    let p = drive.pending().cloned().ok_or_else(|| TapeError::Invalid { detail: "file vanished".into() })?;
    if let Err(e) = drive.write_filemark() {
        return Err(abandon(drive, e));
    }
    Ok(FileReport {
        file: p.file,
        blocks: p.blocks,
        bytes: p.bytes,
        crc: p.chain.crc(),
        early_warning: early_warning || drive.space().in_early_warning,
    })
}

/// Starts a new file at the current position; E_BUSY if one is being written.
fn begin_new_file(drive: &mut Drive, content: Content) -> Result<()> {
    if let Some(p) = drive.pending() {
        return Err(TapeError::Busy {
            cartridge: drive.barcode().to_owned(),
            detail: format!("file {} is still being written; write a filemark first", p.file),
        });
    }
    drive.begin_write(content, false)
}

/// Bytes of a `len`-byte segment that go on this cartridge: all of them, or up to and
/// including the block that enters the early-warning zone. E_EOM if not even one fits.
fn plan(drive: &Drive, len: u64) -> Result<u64> {
    let bs = u64::from(drive.label().block_size);
    let ew_at = drive.space().early_warning_at;
    let at = drive.space().used;
    if len == 0 {
        return Ok(0);
    }
    drive.check_room(bs.min(len))?;
    // Full blocks before the zone, then the one that enters it.
    let room = ew_at.saturating_sub(at);
    let full_before = room / (HEADER_LEN + bs);
    let n = (full_before + 1) * bs;
    Ok(n.min(len))
}

/// Undoes the file being written and returns `e` (the first error is the one to report).
fn abandon(drive: &mut Drive, e: TapeError) -> TapeError {
    let _ = drive.abandon();
    e
}

/// What the producer hands the writer: a block read into its own buffer with its CRC,
/// or a run of whole blocks that are holes in the source.
enum Piece {
    Data(Vec<u8>, u32),
    Hole(u32),
}

/// Moves `len` bytes of `src` from `offset` into the open file, block by block, with
/// reading and checksumming on a producer thread; returns the chain of the blocks it
/// appended. Each block is read once into an owned buffer, checksummed, and written
/// from that buffer (see the module notes). On a cartridge that records holes, whole
/// blocks the source reports as holes become hole records; the writer stops after
/// the record that enters the early-warning zone.
fn pump(drive: &mut Drive, src: &dyn BlockDevice, offset: u64, len: u64, ctl: &CopyControl) -> Result<BlockChain> {
    let bs = u64::from(drive.label().block_size);
    let holes_ok = drive.label().has_holes();
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<Result<Piece>>(PIPELINE_DEPTH);
        let (recycle, recycled) = channel::<Vec<u8>>();
        let producer = s.spawn(move || {
            let mut holes = Holes::new(src, offset, offset + len);
            let mut at = 0u64;
            while at < len && !ctl.is_cancelled() {
                let n = bs.min(len - at);
                if holes_ok && n == bs {
                    // Whole blocks only: a block holding any data (or the short last
                    // block) is written as data.
                    let whole = match holes.hole_from(offset + at, len - at) {
                        Ok(h) => (h.min(len - at) / bs).min(u64::from(u32::MAX)),
                        Err(e) => {
                            let _ = tx.send(Err(e.into()));
                            break;
                        }
                    };
                    if whole > 0 {
                        // A hole past the end of a data file that another program cut
                        // short is no hole: the last byte of the run must still read, or
                        // the source's error (E_CORRUPT, truncated) fails the segment.
                        let mut probe = [0u8; 1];
                        if let Err(e) = src.read_at(offset + at + whole * bs - 1, &mut probe) {
                            let _ = tx.send(Err(e.into()));
                            break;
                        }
                        if tx.send(Ok(Piece::Hole(whole as u32))).is_err() {
                            break;
                        }
                        at += whole * bs;
                        continue;
                    }
                }
                let mut payload = recycled.try_recv().unwrap_or_default();
                payload.resize(n as usize, 0);
                if let Err(e) = src.read_at(offset + at, &mut payload) {
                    let _ = tx.send(Err(e.into()));
                    break;
                }
                let crc = crc32c::crc32c(&payload);
                if tx.send(Ok(Piece::Data(payload, crc))).is_err() {
                    break; // the writer stopped on an error or at early warning
                }
                at += n;
            }
        });
        let mut result = Ok(());
        let mut chain = BlockChain::new();
        for item in rx.iter() {
            let written = item.and_then(|piece| match piece {
                Piece::Data(payload, crc) => {
                    let st = drive.append_block(&payload, crc)?;
                    chain.add(payload.len() as u32, crc);
                    ctl.add(payload.len() as u64);
                    let _ = recycle.send(payload);
                    Ok(st.early_warning)
                }
                Piece::Hole(count) => {
                    let st = drive.append_hole(count)?;
                    chain.add_hole(count);
                    ctl.add(u64::from(count) * bs);
                    Ok(st.early_warning)
                }
            });
            match written {
                Ok(false) => {}
                Ok(true) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        drop(rx);
        producer.join().map_err(|_| TapeError::Invalid { detail: "segment producer thread panicked".into() })?;
        result.map(|()| chain)
    })
}
