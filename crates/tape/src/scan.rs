//! Loading a cartridge: reading record headers from the first record to the end of
//! data, seeking past payloads, to index the files and find the append point.
//!
//! Only files closed by a filemark count. Records after the last filemark (a file a
//! killed writer never closed, a torn record) are discarded: the next write starts
//! right after that filemark and truncates them. A header that fails its checks in
//! the middle of the medium is told apart from a torn tail by what follows it: one
//! lost header inside a run of full blocks is stepped over (reading that block then
//! fails with E_CORRUPT), and if a valid filemark lies anywhere after an unreadable
//! header the cartridge is marked damaged, so no append can destroy that data.

use crate::chain::chain_crc;
use crate::format::{Content, Header, Kind, HEADER_LEN, LABEL_LEN, RECORD_MAGIC};
use crate::Label;
use std::io;

/// A file closed by a filemark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// File number, from 0.
    pub file: u32,
    /// What the file holds.
    pub content: Content,
    /// Data blocks in the file.
    pub blocks: u64,
    /// Payload bytes in the file.
    pub bytes: u64,
    /// The file CRC its filemark records: CRC-32C of the block list (see `chain`).
    pub crc: u32,
    /// Offset of the file's first record in the cartridge file.
    pub(crate) start: u64,
    /// The file's hole records, in order (segments on version-2 cartridges only).
    pub(crate) holes: Vec<HoleRun>,
    /// Payload bytes on the medium: `bytes` less the holes' blocks.
    pub(crate) data_bytes: u64,
}

/// One hole record: `count` blocks from `block` that read as zeroes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HoleRun {
    /// First block it stands for.
    pub block: u64,
    /// Blocks it stands for.
    pub count: u64,
    /// Blocks of the holes before it in the file.
    pub before: u64,
}

/// Where a block of a file lies on the medium.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// A data record at this offset.
    Data(u64),
    /// Inside hole record `index`, with this many of its blocks from the block on.
    Hole { index: usize, remaining: u64 },
}

impl FileInfo {
    /// Blocks standing for holes.
    pub fn hole_blocks(&self) -> u64 {
        self.holes.last().map_or(0, |h| h.before + h.count)
    }

    /// Payload bytes actually on the medium (holes take none).
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Where block `b` (below `blocks`) lies: data blocks are `HEADER_LEN + block_size`
    /// apart, hole records `HEADER_LEN`, so it is arithmetic once the holes before it
    /// are known.
    pub(crate) fn place(&self, b: u64, block_size: u32) -> Place {
        let i = self.holes.partition_point(|h| h.block + h.count <= b);
        if let Some(h) = self.holes.get(i).filter(|h| h.block <= b) {
            return Place::Hole { index: i, remaining: h.block + h.count - b };
        }
        Place::Data(self.offset_of(b, i, block_size))
    }

    /// Offset of the record for block `b`, with `i` hole records before it.
    fn offset_of(&self, b: u64, i: usize, block_size: u32) -> u64 {
        let hole_blocks = i.checked_sub(1).and_then(|j| self.holes.get(j)).map_or(0, |h| h.before + h.count);
        self.start + (b - hole_blocks) * (HEADER_LEN + u64::from(block_size)) + i as u64 * HEADER_LEN
    }

    /// Offset of the file's filemark record.
    pub(crate) fn filemark_offset(&self) -> u64 {
        let data_blocks = self.blocks - self.hole_blocks();
        self.start + data_blocks * HEADER_LEN + self.data_bytes + self.holes.len() as u64 * HEADER_LEN
    }
}

/// Where an unreadable record header with recorded data after it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset of the unreadable header.
    pub offset: u64,
    /// File number the record would belong to.
    pub file: u32,
    /// Block number the record would have.
    pub block: u64,
}

/// What loading found besides the files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes after the last filemark that were not part of a closed file (an
    /// unterminated file, a torn record); the next write overwrites them.
    pub discarded_bytes: u64,
    /// Data blocks of the discarded unterminated file.
    pub discarded_blocks: u64,
    /// Whether an end-of-data record closed the recorded data.
    pub eod_found: bool,
    /// Headers stepped over inside files (those blocks read as E_CORRUPT).
    pub damaged_blocks: Vec<(u32, u64)>,
    /// An unreadable header followed by more recorded data: appends are refused.
    pub damage: Option<Damage>,
}

/// The index a scan builds.
pub(crate) struct Scan {
    pub files: Vec<FileInfo>,
    /// Offset just after the last filemark: where EOD is, and where writing resumes.
    pub end: u64,
    pub medium_len: u64,
    pub recovery: Recovery,
}

/// The file being accumulated while scanning.
struct Acc {
    file: u32,
    start: u64,
    blocks: u64,
    bytes: u64,
    last_len: u32,
    content: Option<Content>,
    /// None once a header was stepped over: the file's CRC can no longer be checked.
    crc: Option<u32>,
    holes: Vec<HoleRun>,
    data_bytes: u64,
}

impl Acc {
    fn new(file: u32, start: u64) -> Self {
        Acc { file, start, blocks: 0, bytes: 0, last_len: 0, content: None, crc: Some(0), holes: Vec::new(), data_bytes: 0 }
    }

    /// Whether all blocks so far are full, so another data block may follow.
    fn open_for_data(&self, block_size: u32) -> bool {
        self.blocks == 0 || self.last_len == block_size
    }

    fn content_ok(&self, c: Content) -> bool {
        self.content.is_none_or(|k| k == c)
    }

    fn fits(&self, h: &Header, label: &Label) -> bool {
        let block_size = label.block_size;
        if h.file != self.file {
            return false;
        }
        match h.kind {
            Kind::Data => h.block == self.blocks && h.len <= block_size && self.open_for_data(block_size) && self.content_ok(h.content),
            // Holes exist from version 2 on; a hole in an older cartridge is damage.
            Kind::Hole => {
                label.has_holes()
                    && h.block == self.blocks
                    && self.open_for_data(block_size)
                    && self.content_ok(h.content)
                    && self.bytes.checked_add(u64::from(h.crc) * u64::from(block_size)).is_some()
            }
            Kind::Filemark => h.block == self.blocks && self.content_ok(h.content) && self.crc.is_none_or(|c| c == h.crc),
            Kind::EndOfData => self.blocks == 0,
        }
    }
}

fn read_header(m: &dyn crate::Medium, off: u64, len: u64) -> io::Result<Option<Header>> {
    if off + HEADER_LEN > len {
        return Ok(None);
    }
    let mut b = [0u8; HEADER_LEN as usize];
    m.read_at(off, &mut b)?;
    Ok(Header::decode(&b))
}

/// Indexes the records of a cartridge whose label is `label`.
pub(crate) fn scan(m: &dyn crate::Medium, label: &Label) -> io::Result<Scan> {
    let len = m.size()?;
    let bs = label.block_size;
    let mut files = Vec::new();
    let mut end = LABEL_LEN;
    let mut off = LABEL_LEN;
    let mut cur = Acc::new(0, off);
    let mut rec = Recovery::default();
    loop {
        let h = read_header(m, off, len)?.filter(|h| cur.fits(h, label) && off + HEADER_LEN + u64::from(h.len) <= len);
        let Some(h) = h else {
            if off + HEADER_LEN > len {
                break; // clean end, or a header torn short
            }
            if let Some(next) = step_over(m, off, len, &cur, bs)? {
                rec.damaged_blocks.push((cur.file, cur.blocks));
                cur.blocks += 1;
                cur.bytes += u64::from(bs);
                cur.data_bytes += u64::from(bs);
                cur.last_len = bs;
                cur.crc = None;
                off = next;
                continue;
            }
            if filemark_after(m, off + 1, len, cur.file)? {
                rec.damage = Some(Damage { offset: off, file: cur.file, block: cur.blocks });
            }
            break;
        };
        match h.kind {
            Kind::Data => {
                cur.blocks += 1;
                cur.bytes += u64::from(h.len);
                cur.data_bytes += u64::from(h.len);
                cur.last_len = h.len;
                cur.content = Some(h.content);
                cur.crc = cur.crc.map(|c| chain_crc(c, h.len, h.crc));
                off += HEADER_LEN + u64::from(h.len);
            }
            Kind::Hole => {
                let count = u64::from(h.crc);
                let before = cur.holes.last().map_or(0, |r| r.before + r.count);
                cur.holes.push(HoleRun { block: cur.blocks, count, before });
                cur.blocks += count;
                cur.bytes += count * u64::from(bs);
                cur.last_len = bs;
                cur.content = Some(h.content);
                cur.crc = cur.crc.map(|c| chain_crc(c, 0, h.crc));
                off += HEADER_LEN;
            }
            Kind::Filemark => {
                files.push(FileInfo {
                    file: cur.file,
                    content: h.content,
                    blocks: cur.blocks,
                    bytes: cur.bytes,
                    crc: h.crc,
                    start: cur.start,
                    holes: std::mem::take(&mut cur.holes),
                    data_bytes: cur.data_bytes,
                });
                off += HEADER_LEN;
                end = off;
                cur = Acc::new(cur.file.saturating_add(1), off);
            }
            Kind::EndOfData => {
                rec.eod_found = true;
                break;
            }
        }
    }
    rec.discarded_blocks = cur.blocks;
    rec.discarded_bytes = len.saturating_sub(end + if rec.eod_found { HEADER_LEN } else { 0 });
    Ok(Scan { files, end, medium_len: len, recovery: rec })
}

/// If the unreadable header at `off` sits inside a run of full blocks and the header
/// one full block further on continues the file, returns that header's offset.
fn step_over(m: &dyn crate::Medium, off: u64, len: u64, cur: &Acc, bs: u32) -> io::Result<Option<u64>> {
    if !cur.open_for_data(bs) {
        return Ok(None);
    }
    let next = off + HEADER_LEN + u64::from(bs);
    let Some(h) = read_header(m, next, len)? else { return Ok(None) };
    let continues = h.file == cur.file
        && h.block == cur.blocks + 1
        && cur.content_ok(h.content)
        && matches!(h.kind, Kind::Data | Kind::Filemark | Kind::Hole);
    Ok(continues.then_some(next))
}

/// Whether a valid filemark of file `file` or later lies anywhere in `[from, len)`:
/// recorded data after an unreadable header. Reads in large pieces; only runs when a
/// cartridge has a bad header, which is rare.
fn filemark_after(m: &dyn crate::Medium, from: u64, len: u64, file: u32) -> io::Result<bool> {
    const PIECE: u64 = 4 << 20;
    let mut buf = Vec::new();
    let mut at = from;
    while at + HEADER_LEN <= len {
        // Pieces overlap by a header length so a header across a boundary is seen.
        let n = PIECE.min(len - at);
        buf.resize(n as usize, 0);
        m.read_at(at, &mut buf)?;
        let mut i = 0usize;
        while let Some(p) = find(&buf[i..], RECORD_MAGIC) {
            let h = Header::decode(&buf[i + p..]);
            if h.is_some_and(|h| h.kind == Kind::Filemark && h.file >= file) {
                return Ok(true);
            }
            i += p + 1;
        }
        if at + n >= len {
            break;
        }
        at += n - (HEADER_LEN - 1);
    }
    Ok(false)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
