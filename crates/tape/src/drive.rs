//! A drive with a cartridge loaded: positions, block reads and writes, filemarks, early
//! warning and end of medium, with tape semantics (writing truncates what follows).

use crate::chain::BlockChain;
use crate::error::{Result, TapeError};
use crate::format::{Content, Header, Kind, Label, DEFAULT_BLOCK_SIZE, HEADER_LEN, LABEL_LEN};
use crate::medium::Medium;
use crate::scan::{FileInfo, HoleRun, Place, Recovery};
use std::io;
use std::path::{Path, PathBuf};

mod load;

/// A position on the medium: a file number and a block number within that file.
/// Block `n` of a file with `n` blocks is its filemark; file `files().len()`, block 0
/// is the end of data, where the next file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// File number, from 0.
    pub file: u32,
    /// Block number within the file, from 0.
    pub block: u64,
}

/// How to format a blank cartridge.
#[derive(Clone, Debug)]
pub struct FormatOptions {
    /// Barcode, 1-32 characters of `[A-Za-z0-9._-]`.
    pub barcode: String,
    /// Largest length of the cartridge file in bytes.
    pub capacity: u64,
    /// Payload bytes per full block (default 1 MiB).
    pub block_size: u32,
    /// Early-warning zone in bytes (default: 4 blocks or 1% of the capacity).
    pub early_warning: Option<u64>,
}

impl FormatOptions {
    /// Options with the default block size and early-warning zone.
    pub fn new(barcode: &str, capacity: u64) -> Self {
        FormatOptions { barcode: barcode.to_owned(), capacity, block_size: DEFAULT_BLOCK_SIZE, early_warning: None }
    }
}

/// What a block write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteStatus {
    /// Where the block was written.
    pub position: Position,
    /// The block ends inside the early-warning zone: time to close the segment.
    pub early_warning: bool,
}

/// How full the cartridge is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    /// Largest length of the cartridge file.
    pub capacity: u64,
    /// Bytes used up to the append point (label and headers included).
    pub used: u64,
    /// Offset where the early-warning zone starts.
    pub early_warning_at: u64,
    /// Whether the append point is inside the early-warning zone.
    pub in_early_warning: bool,
}

/// The file being written: data blocks without their filemark yet.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub file: u32,
    pub content: Content,
    pub start: u64,
    pub blocks: u64,
    pub bytes: u64,
    pub chain: BlockChain,
    pub last_len: u32,
    /// Offset of the next record.
    pub next: u64,
    /// Hole records written so far.
    pub holes: Vec<HoleRun>,
    /// Payload bytes on the medium (`bytes` less the holes).
    pub data_bytes: u64,
}

/// What [`Drive::read_record_into`] found at the position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// A data block, its payload CRC; the buffer holds header + payload.
    Data(u32),
    /// This many blocks of a hole from the position on (the drive moved past them).
    Hole(u64),
    /// The file's filemark (the drive moved to the next file).
    Filemark,
}

/// A loaded cartridge. One drive owns a cartridge file at a time: loading takes an
/// exclusive lock on it (a shared one when read-only), so a second load fails E_BUSY.
pub struct Drive {
    medium: Box<dyn Medium>,
    path: PathBuf,
    label: Label,
    files: Vec<FileInfo>,
    /// Offset just after the last filemark, where the EOD record sits.
    end: u64,
    medium_len: u64,
    pending: Option<Pending>,
    pos: Position,
    read_only: bool,
    poisoned: bool,
    recovery: Recovery,
    /// Offset up to which writeback was started (see `Medium::write_behind`).
    written_back: u64,
}

/// Bytes written between two write-behind kicks: small, so the disk starts soon after
/// a cartridge is loaded; a kick during a running background sync costs nothing.
pub(crate) const WRITE_BEHIND: u64 = 8 << 20;

impl Drive {
    /// The cartridge label.
    pub fn label(&self) -> &Label {
        &self.label
    }
    /// The cartridge barcode, used in every message.
    pub fn barcode(&self) -> &str {
        &self.label.barcode
    }
    /// Path of the cartridge file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// What loading found: discarded tail, damaged headers.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }
    /// The files closed by a filemark, in order.
    pub fn files(&self) -> &[FileInfo] {
        &self.files
    }
    /// Whether the drive refuses writes.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The current position.
    pub fn position(&self) -> Position {
        match &self.pending {
            Some(p) => Position { file: p.file, block: p.blocks },
            None => self.pos,
        }
    }

    /// The file being written, if any: where its next block goes.
    pub fn open_file(&self) -> Option<Position> {
        self.pending.as_ref().map(|p| Position { file: p.file, block: p.blocks })
    }

    /// How full the cartridge is.
    pub fn space(&self) -> Space {
        let used = self.append_offset();
        let early_warning_at = self.label.capacity - self.label.early_warning;
        Space { capacity: self.label.capacity, used, early_warning_at, in_early_warning: used > early_warning_at }
    }

    fn append_offset(&self) -> u64 {
        self.pending.as_ref().map_or(self.end, |p| p.next)
    }

    /// Moves to the start of file 0. Closes a file being written with a filemark first,
    /// as a tape drive does when it is repositioned after writing.
    pub fn rewind(&mut self) -> Result<()> {
        self.locate(Position { file: 0, block: 0 })
    }

    /// Moves to `pos` (see [`Position`]); E_RANGE if it is not on the medium.
    pub fn locate(&mut self, pos: Position) -> Result<()> {
        self.close_pending()?;
        let ok = match self.files.get(pos.file as usize) {
            Some(f) => pos.block <= f.blocks,
            None => pos.file as usize == self.files.len() && pos.block == 0,
        };
        if !ok {
            return Err(TapeError::Range {
                cartridge: self.label.barcode.clone(),
                detail: format!("no position file {} block {} (the medium holds {} files)", pos.file, pos.block, self.files.len()),
            });
        }
        self.pos = pos;
        Ok(())
    }

    /// Moves to the end of data, where the next file is written; returns that position.
    pub fn space_to_eod(&mut self) -> Result<Position> {
        self.close_pending()?;
        self.pos = Position { file: self.files.len() as u32, block: 0 };
        Ok(self.pos)
    }

    fn close_pending(&mut self) -> Result<()> {
        if self.pending.is_some() {
            self.write_filemark()?;
        }
        Ok(())
    }

    /// Writes one data block at the current position (1 byte to the block size; only
    /// the last block of a file may be short). Writing anywhere but the end of data
    /// truncates everything after the position. Not synced: see `write_filemark`.
    pub fn write_block(&mut self, data: &[u8]) -> Result<WriteStatus> {
        if data.is_empty() || data.len() > self.label.block_size as usize {
            return Err(TapeError::Invalid { detail: format!("a block carries 1 to {} bytes, not {}", self.label.block_size, data.len()) });
        }
        self.begin_write(Content::Raw, true)?;
        self.append_block(data, crc32c::crc32c(data))
    }

    /// Writes a filemark, closing the file being written (or, with none, an empty
    /// file), then the EOD record. Durable on return: the file's data is synced before
    /// the filemark is written and the filemark after, so a filemark on the medium
    /// always covers data that reached it.
    pub fn write_filemark(&mut self) -> Result<Position> {
        if self.pending.is_none() {
            // At a filemark or inside a file this rewrites the file's end (tape
            // semantics): the file keeps the blocks before the position.
            self.begin_write(Content::Raw, true)?;
        }
        let p = self.mark(true)?;
        self.sync()?;
        Ok(self.closed(p))
    }

    /// Closes the file being written with a filemark and opens a new file of
    /// `content` right behind it, with no EOD between them and no sync after the
    /// filemark. The closed file's data is synced before its filemark is written, so
    /// the filemark still covers synced data; it becomes durable with the next sync,
    /// which the new file's `write_filemark` does before writing its own. Until then
    /// a crash may lose this filemark (the file is discarded on load) or keep it with
    /// the new file unterminated after it (that file is discarded).
    pub(crate) fn write_filemark_then_begin(&mut self, content: Content) -> Result<Position> {
        if self.pending.is_none() {
            return Err(self.busy("no file is open for writing"));
        }
        let p = self.mark(false)?;
        let pos = self.closed(p);
        self.begin_write(content, false)?;
        Ok(pos)
    }

    /// Syncs the open file's data, then writes its filemark (and an EOD record after
    /// it when `eod`); the drive's state is left to `closed`, once the caller has
    /// made the filemark as durable as it needs.
    fn mark(&mut self, eod: bool) -> Result<Pending> {
        let p = self.pending.clone().ok_or_else(|| self.busy("no file is open for writing"))?;
        // Room for the filemark and an EOD record, whether written now or after the
        // next file (`check_room` keeps the same room behind every data record).
        let available = self.label.capacity.saturating_sub(p.next);
        if 2 * HEADER_LEN > available {
            return Err(TapeError::EndOfMedium { cartridge: self.label.barcode.clone(), needed: 2 * HEADER_LEN, available });
        }
        self.sync()?;
        let fm = Header { kind: Kind::Filemark, content: p.content, file: p.file, len: 0, block: p.blocks, crc: p.chain.crc() }.encode();
        let eod_rec = Header { kind: Kind::EndOfData, content: Content::Raw, file: p.file + 1, len: 0, block: 0, crc: 0 }.encode();
        let records: &[&[u8]] = if eod { &[&fm, &eod_rec] } else { &[&fm] };
        self.medium.write_at(p.next, records).map_err(|e| self.io(e, "write filemark"))?;
        let n = if eod { 2 * HEADER_LEN } else { HEADER_LEN };
        self.medium_len = self.medium_len.max(p.next + n);
        Ok(p)
    }

    /// Records the file `p` as closed by the filemark `mark` wrote; returns the
    /// position after it, where the next file starts.
    fn closed(&mut self, p: Pending) -> Position {
        self.files.push(FileInfo {
            file: p.file,
            content: p.content,
            blocks: p.blocks,
            bytes: p.bytes,
            crc: p.chain.crc(),
            start: p.start,
            holes: p.holes,
            data_bytes: p.data_bytes,
        });
        self.end = p.next + HEADER_LEN;
        self.pending = None;
        self.pos = Position { file: p.file + 1, block: 0 };
        self.pos
    }

    /// Gives up the file being written: it is dropped and the medium cut back to the
    /// last filemark, as if the writes never happened.
    pub fn abandon(&mut self) -> Result<()> {
        let Some(p) = self.pending.take() else { return Ok(()) };
        self.pos = Position { file: p.file, block: 0 };
        if self.poisoned {
            return Ok(());
        }
        // Cutting first frees the space, so rewriting EOD works even on a full disk.
        let eod = Header { kind: Kind::EndOfData, content: Content::Raw, file: p.file, len: 0, block: 0, crc: 0 };
        self.medium.set_len(self.end).map_err(|e| self.io(e, "truncate"))?;
        self.medium_len = self.end;
        self.medium.write_at(self.end, &[&eod.encode()]).map_err(|e| self.io(e, "write end of data"))?;
        self.medium_len = self.end + HEADER_LEN;
        Ok(())
    }

    /// Cuts the open file back to an earlier state of it, `to` (a chunk boundary): the
    /// blocks written since are dropped, those before stay open for more.
    pub(crate) fn cut_back(&mut self, to: &Pending) -> Result<()> {
        match &self.pending {
            Some(p) if p.file == to.file && p.start == to.start && p.next >= to.next => {}
            _ => return Err(self.busy("the open file is not the one to cut back")),
        }
        if self.poisoned {
            return Err(self.busy("the cartridge failed a sync; it takes no more writes"));
        }
        self.medium.set_len(to.next).map_err(|e| self.io(e, "truncate"))?;
        self.medium_len = to.next;
        self.written_back = self.written_back.min(to.next);
        self.pending = Some(to.clone());
        Ok(())
    }

    /// Reads the data block at the current position and moves past it, checking its
    /// header and payload CRC (E_CORRUPT naming barcode, file and block). At a filemark
    /// returns None and moves to the next file; at the end of data fails E_EOD.
    pub fn read_block(&mut self) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.read_block_into(&mut buf)?.map(|_| buf.split_off(HEADER_LEN as usize)))
    }

    /// Like `read_block`, into `buf` (header first, then the payload); returns the
    /// payload's CRC, or None at a filemark. Reuses `buf`'s allocation, for bulk reads.
    /// A block inside a hole reads as a block of zeroes.
    pub(crate) fn read_block_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<u32>> {
        let at = self.pos;
        match self.read_record_into(buf)? {
            Record::Data(crc) => Ok(Some(crc)),
            Record::Filemark => Ok(None),
            Record::Hole(_) => {
                // One block of it: hole blocks are always full.
                self.pos = Position { file: at.file, block: at.block + 1 };
                buf.clear();
                buf.resize((HEADER_LEN + u64::from(self.label.block_size)) as usize, 0);
                Ok(Some(crc32c::crc32c(&buf[HEADER_LEN as usize..])))
            }
        }
    }

    /// Reads the record at the current position and moves past it: a data block into
    /// `buf` (header and payload checked as in `read_block`), the rest of a hole (the
    /// buffer untouched), or the filemark. E_EOD at the end of data.
    pub(crate) fn read_record_into(&mut self, buf: &mut Vec<u8>) -> Result<Record> {
        if self.pending.is_some() {
            return Err(self.end_of_data());
        }
        let Some(f) = self.files.get(self.pos.file as usize) else { return Err(self.end_of_data()) };
        if self.pos.block == f.blocks {
            self.pos = Position { file: self.pos.file + 1, block: 0 };
            return Ok(Record::Filemark);
        }
        let (file, block) = (self.pos.file, self.pos.block);
        let off = match f.place(block, self.label.block_size) {
            Place::Hole { remaining, .. } => {
                self.pos.block += remaining;
                return Ok(Record::Hole(remaining));
            }
            Place::Data(off) => off,
        };
        let len = self.block_len(f, block);
        buf.resize((HEADER_LEN + len) as usize, 0);
        self.medium.read_at(off, buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => self.corrupt(file, block, "the cartridge file ends inside this block"),
            _ => self.io(e, "read"),
        })?;
        let (head, payload) = buf.split_at(HEADER_LEN as usize);
        let h = Header::decode(head).ok_or_else(|| self.corrupt(file, block, "record header fails its checksum"))?;
        if h.kind != Kind::Data || h.file != file || h.block != block || u64::from(h.len) != len {
            return Err(self.corrupt(file, block, format!("record header describes file {} block {} of {} bytes", h.file, h.block, h.len)));
        }
        if crc32c::crc32c(payload) != h.crc {
            return Err(self.corrupt(file, block, "payload checksum mismatch"));
        }
        self.pos.block += 1;
        Ok(Record::Data(h.crc))
    }

    /// Payload length of block `b` of file `f`: full, except possibly the last.
    fn block_len(&self, f: &FileInfo, b: u64) -> u64 {
        let bs = u64::from(self.label.block_size);
        if b + 1 < f.blocks {
            bs
        } else {
            f.bytes - (f.blocks - 1) * bs
        }
    }

    /// Makes the drive ready to append to a file of `content` at the current position.
    /// `mid_file` allows continuing a file from inside it (block writes); bulk writes
    /// start new files only. Truncates whatever lies after the write point.
    pub(crate) fn begin_write(&mut self, content: Content, mid_file: bool) -> Result<()> {
        self.check_writable()?;
        if let Some(p) = &self.pending {
            if p.content != content {
                return Err(self.busy(&format!("file {} is still being written; write a filemark first", p.file)));
            }
            return Ok(());
        }
        let pos = self.pos;
        let bs = u64::from(self.label.block_size);
        let mut p = match self.files.get(pos.file as usize) {
            None => Pending {
                file: pos.file,
                content,
                start: self.end,
                blocks: 0,
                bytes: 0,
                chain: BlockChain::new(),
                last_len: 0,
                next: self.end,
                holes: Vec::new(),
                data_bytes: 0,
            },
            Some(f) if pos.block == 0 => Pending {
                file: pos.file,
                content,
                start: f.start,
                blocks: 0,
                bytes: 0,
                chain: BlockChain::new(),
                last_len: 0,
                next: f.start,
                holes: Vec::new(),
                data_bytes: 0,
            },
            Some(f) => {
                if !mid_file {
                    return Err(TapeError::Range {
                        cartridge: self.label.barcode.clone(),
                        detail: format!("a new file starts at a file boundary, not at file {} block {}", pos.file, pos.block),
                    });
                }
                if !f.holes.is_empty() {
                    // Block positions past a hole are not arithmetic; such a file (a
                    // segment) is only ever rewritten from its start.
                    return Err(TapeError::Range {
                        cartridge: self.label.barcode.clone(),
                        detail: format!("file {} records holes; it is rewritten from its start only", pos.file),
                    });
                }
                let chain = self.chain_upto(f, pos.block)?;
                let bytes = (pos.block * bs).min(f.bytes);
                let last_len = (bytes - (pos.block - 1) * bs) as u32;
                let next = f.start + pos.block * HEADER_LEN + bytes;
                let (holes, data_bytes) = (Vec::new(), bytes);
                Pending {
                    file: pos.file,
                    content: f.content,
                    start: f.start,
                    blocks: pos.block,
                    bytes,
                    chain,
                    last_len,
                    next,
                    holes,
                    data_bytes,
                }
            }
        };
        if p.blocks == 0 {
            p.content = content;
        }
        // Tape semantics: a write ends the recorded data. Cutting the file here also
        // removes a torn tail or an unterminated file left by a killed writer.
        if self.medium_len > p.next {
            self.medium.set_len(p.next).map_err(|e| self.io(e, "truncate"))?;
            self.medium_len = p.next;
        }
        self.written_back = p.next;
        self.files.truncate(pos.file as usize);
        self.end = self.files.last().map_or(LABEL_LEN, |f| f.filemark_offset() + HEADER_LEN);
        self.pending = Some(p);
        Ok(())
    }

    /// The block chain of blocks `0..upto` of `f`, from their headers.
    fn chain_upto(&self, f: &FileInfo, upto: u64) -> Result<BlockChain> {
        let mut chain = BlockChain::new();
        let mut b = [0u8; HEADER_LEN as usize];
        for blk in 0..upto {
            let off = f.start + blk * (HEADER_LEN + u64::from(self.label.block_size));
            self.medium.read_at(off, &mut b).map_err(|e| self.io(e, "read header"))?;
            let h = Header::decode(&b).ok_or_else(|| self.corrupt(f.file, blk, "record header fails its checksum"))?;
            chain.add(h.len, h.crc);
        }
        Ok(chain)
    }

    /// Room check for a data record of `len` payload bytes at the append point: Ok(true)
    /// if it ends inside the early-warning zone. A data record must leave room for a
    /// filemark and EOD, so a file can always be closed.
    pub(crate) fn check_room(&self, len: u64) -> Result<bool> {
        let at = self.append_offset();
        let end = at + HEADER_LEN + len;
        let limit = self.label.capacity - 2 * HEADER_LEN;
        if end > limit {
            return Err(TapeError::EndOfMedium {
                cartridge: self.label.barcode.clone(),
                needed: HEADER_LEN + len,
                available: limit.saturating_sub(at),
            });
        }
        Ok(end > self.label.capacity - self.label.early_warning)
    }

    /// Appends one data block (CRC already computed) to the open file.
    pub(crate) fn append_block(&mut self, data: &[u8], crc: u32) -> Result<WriteStatus> {
        let early_warning = self.check_room(data.len() as u64)?;
        let bs = self.label.block_size;
        let p = self.pending.as_ref().ok_or_else(|| self.busy("no file is open for writing"))?;
        if p.blocks > 0 && p.last_len != bs {
            return Err(TapeError::Invalid {
                detail: format!("file {}: only the last block of a file may be shorter than {bs} bytes", p.file),
            });
        }
        let h = Header { kind: Kind::Data, content: p.content, file: p.file, len: data.len() as u32, block: p.blocks, crc };
        let at = p.next;
        let position = Position { file: p.file, block: p.blocks };
        self.medium.write_at(at, &[&h.encode(), data]).map_err(|e| self.io(e, "write"))?;
        let end = at + HEADER_LEN + data.len() as u64;
        self.medium_len = self.medium_len.max(end);
        if end - self.written_back >= WRITE_BEHIND {
            self.medium.write_behind();
            self.written_back = end;
        }
        if let Some(p) = self.pending.as_mut() {
            p.blocks += 1;
            p.bytes += data.len() as u64;
            p.chain.add(data.len() as u32, crc);
            p.last_len = data.len() as u32;
            p.next = end;
            p.data_bytes += data.len() as u64;
        }
        Ok(WriteStatus { position, early_warning })
    }

    /// Appends a hole record standing for `count` whole blocks of zeroes to the open
    /// segment file: one header, no payload. E_INVALID on a cartridge of format
    /// version 1, after a short block, or for a file that is not a segment.
    pub(crate) fn append_hole(&mut self, count: u32) -> Result<WriteStatus> {
        let bs = self.label.block_size;
        if !self.label.has_holes() || count == 0 {
            return Err(TapeError::Invalid {
                detail: format!("cartridge {}: format version {} records no holes", self.label.barcode, self.label.version),
            });
        }
        let early_warning = self.check_room(0)?;
        let p = self.pending.as_ref().ok_or_else(|| self.busy("no file is open for writing"))?;
        if p.content != Content::Segment || (p.blocks > 0 && p.last_len != bs) {
            return Err(TapeError::Invalid { detail: format!("file {}: a hole follows full blocks of a segment only", p.file) });
        }
        let h = Header { kind: Kind::Hole, content: p.content, file: p.file, len: 0, block: p.blocks, crc: count };
        let at = p.next;
        let position = Position { file: p.file, block: p.blocks };
        self.medium.write_at(at, &[&h.encode()]).map_err(|e| self.io(e, "write"))?;
        let end = at + HEADER_LEN;
        self.medium_len = self.medium_len.max(end);
        if let Some(p) = self.pending.as_mut() {
            let before = p.holes.last().map_or(0, |r| r.before + r.count);
            p.holes.push(HoleRun { block: p.blocks, count: u64::from(count), before });
            p.blocks += u64::from(count);
            p.bytes += u64::from(count) * u64::from(bs);
            p.chain.add_hole(count);
            p.last_len = bs;
            p.next = end;
        }
        Ok(WriteStatus { position, early_warning })
    }

    /// The file being written, if any.
    pub(crate) fn pending(&self) -> Option<&Pending> {
        self.pending.as_ref()
    }

    fn sync(&mut self) -> Result<()> {
        if let Err(e) = self.medium.sync() {
            // After a failed fsync the kernel may have dropped dirty pages: what the
            // cartridge holds is unknown, so refuse further writes (as fjall does).
            self.poisoned = true;
            return Err(self.io(e, "fsync"));
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(TapeError::ReadOnly { cartridge: self.label.barcode.clone() });
        }
        if self.poisoned {
            return Err(TapeError::Poisoned { cartridge: self.label.barcode.clone() });
        }
        if let Some(d) = self.recovery.damage {
            return Err(self.corrupt(
                d.file,
                d.block,
                format!("unreadable record header at offset {} with recorded data after it; appending would destroy that data", d.offset),
            ));
        }
        Ok(())
    }

    pub(crate) fn io(&self, e: io::Error, op: &'static str) -> TapeError {
        io_err(&self.label.barcode, op, e)
    }

    pub(crate) fn corrupt(&self, file: u32, block: u64, detail: impl Into<String>) -> TapeError {
        TapeError::corrupt_at(&self.label.barcode, file, Some(block), detail)
    }

    fn busy(&self, detail: &str) -> TapeError {
        TapeError::Busy { cartridge: self.label.barcode.clone(), detail: detail.to_owned() }
    }

    fn end_of_data(&self) -> TapeError {
        TapeError::EndOfData { cartridge: self.label.barcode.clone(), file: self.position().file }
    }

    /// Unloads the cartridge: closes a file being written with a filemark (as a tape
    /// drive does on unload) and releases the lock. Dropping a drive without unloading
    /// leaves such a file unterminated, and the next load discards it.
    pub fn unload(mut self) -> Result<()> {
        self.close_pending()
    }
}

pub(crate) fn io_err(cartridge: &str, op: &'static str, e: io::Error) -> TapeError {
    TapeError::Io { cartridge: cartridge.to_owned(), op, source: e }
}
