//! The record and segment-header formats (`docs/journal-format.md`), shared by the
//! journal on disk and the replication wire: a batch is a run of records exactly as
//! they sit in a segment file, so the shipper sends what `pread` returned, unchanged.
//!
//! Everything here is pure (bytes in, values out) so the decoder can be fuzzed without
//! files or sockets, and every length is checked before it is used.

use std::path::Path;

use crate::error::{JournalError, Result};

/// Magic of every record header (`"PLJR"` on disk).
pub const RECORD_MAGIC: [u8; 4] = *b"PLJR";
/// Record format version.
pub const RECORD_VERSION: u8 = 1;
/// Bytes of a record header; a `Write` record's data follows it.
pub const RECORD_HEADER: usize = 48;
/// Magic at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"PLXJSEG1";
/// Segment format version.
pub const SEGMENT_VERSION: u32 = 1;
/// Bytes of a segment header.
pub const SEGMENT_HEADER: usize = 32;
/// Largest batch `decode_batch` accepts: bounds what one hostile message can make us hold.
pub const MAX_BATCH: usize = 64 << 20;
/// Largest data of one `Write` record.
pub const MAX_RECORD: u64 = 32 << 20;
/// Largest length of a `Zeroes` or `Punch` record (they carry no data, so may be large).
pub const MAX_ZERO_LEN: u64 = 1 << 40;

/// What a record does to its volume.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// Writes `data` (exactly `len` bytes) at `offset`.
    Write = 1,
    /// Writes `len` zero bytes at `offset`, keeping the space allocated. No data.
    Zeroes = 2,
    /// Deallocates `len` bytes at `offset` (they read back as zeroes). No data.
    Punch = 3,
}

impl RecordKind {
    /// The kind for an on-disk byte, `None` if it names no kind.
    pub fn from_u8(b: u8) -> Option<RecordKind> {
        match b {
            1 => Some(RecordKind::Write),
            2 => Some(RecordKind::Zeroes),
            3 => Some(RecordKind::Punch),
            _ => None,
        }
    }
}

/// One record, borrowed (from a decoded batch, or offered for an append).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Sequence number in its consistency group (ignored by `append`, which assigns it).
    pub seq: u64,
    /// Volume of the group the record applies to.
    pub volume: u32,
    /// What the record does.
    pub kind: RecordKind,
    /// Byte offset in the volume.
    pub offset: u64,
    /// Bytes affected; for `Write` it equals `data.len()`.
    pub len: u64,
    /// The bytes written (`Write` only; empty otherwise).
    pub data: &'a [u8],
}

impl RecordRef<'_> {
    /// Bytes this record takes encoded (header + data).
    pub fn encoded_len(&self) -> u64 {
        RECORD_HEADER as u64 + self.data.len() as u64
    }

    /// Checks the fields an append or an encode relies on: `Write` data matches `len`,
    /// lengths within the limits, `offset + len` does not overflow.
    pub fn validate(&self) -> Result<()> {
        let limit = match self.kind {
            RecordKind::Write => {
                if self.data.len() as u64 != self.len {
                    return Err(JournalError::range(format!("write of len {} carries {} data bytes", self.len, self.data.len())));
                }
                MAX_RECORD
            }
            RecordKind::Zeroes | RecordKind::Punch => {
                if !self.data.is_empty() {
                    return Err(JournalError::range(format!("{:?} record carries {} data bytes", self.kind, self.data.len())));
                }
                MAX_ZERO_LEN
            }
        };
        if self.len > limit {
            return Err(JournalError::range(format!("{:?} len {} over the limit {limit}", self.kind, self.len)));
        }
        if self.offset.checked_add(self.len).is_none() {
            return Err(JournalError::range(format!("offset {} + len {} overflows", self.offset, self.len)));
        }
        Ok(())
    }
}

/// Appends the wire (and disk) form of `rec` to `out`. The caller has validated it
/// (see [`RecordRef::validate`]); `append` does, and `decode_batch` re-checks everything.
pub fn encode_record(out: &mut Vec<u8>, rec: &RecordRef<'_>) {
    let mut h = [0u8; RECORD_HEADER];
    write_header(&mut h, rec);
    out.extend_from_slice(&h);
    out.extend_from_slice(rec.data);
}

/// Fills a record header for `rec` (data checksum included).
pub(crate) fn write_header(h: &mut [u8; RECORD_HEADER], rec: &RecordRef<'_>) {
    h[0..4].copy_from_slice(&RECORD_MAGIC);
    h[4] = RECORD_VERSION;
    h[5] = rec.kind as u8;
    h[6..8].copy_from_slice(&0u16.to_le_bytes());
    h[8..12].copy_from_slice(&rec.volume.to_le_bytes());
    h[12..16].copy_from_slice(&0u32.to_le_bytes());
    h[16..24].copy_from_slice(&rec.seq.to_le_bytes());
    h[24..32].copy_from_slice(&rec.offset.to_le_bytes());
    h[32..40].copy_from_slice(&rec.len.to_le_bytes());
    h[40..44].copy_from_slice(&crc32fast::hash(rec.data).to_le_bytes());
    let crc = crc32fast::hash(&h[0..44]);
    h[44..48].copy_from_slice(&crc.to_le_bytes());
}

/// Why bytes at some offset are not a valid record.
#[derive(Debug)]
pub(crate) enum Bad {
    /// Fewer bytes than the header, or than the header says the data takes: a torn
    /// write if it is the end of the file.
    Truncated(String),
    /// Wrong magic, version, kind, flags or limits.
    Invalid(String),
    /// A header or data checksum does not match.
    Checksum(String),
}

impl Bad {
    pub(crate) fn detail(self) -> String {
        match self {
            Bad::Truncated(s) | Bad::Invalid(s) | Bad::Checksum(s) => s,
        }
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// Parses and fully verifies the record starting at `buf[at..]`: header checksum first
/// (so no field of a damaged header is trusted), then every field, then the data
/// checksum. Returns the record and its encoded length.
pub(crate) fn parse_record(buf: &[u8], at: usize) -> std::result::Result<(RecordRef<'_>, usize), Bad> {
    let Some(h) = buf.get(at..).and_then(|b| b.get(..RECORD_HEADER)) else {
        return Err(Bad::Truncated(format!("record header at byte {at} cut short")));
    };
    if h.get(0..4) != Some(&RECORD_MAGIC[..]) {
        return Err(Bad::Invalid(format!("bad record magic at byte {at}")));
    }
    if le_u32(h, 44) != crc32fast::hash(h.get(0..44).unwrap_or_default()) {
        return Err(Bad::Checksum(format!("record header checksum mismatch at byte {at}")));
    }
    let version = h.get(4).copied().unwrap_or(0);
    if version != RECORD_VERSION {
        return Err(Bad::Invalid(format!("record version {version} at byte {at}")));
    }
    let kind_byte = h.get(5).copied().unwrap_or(0);
    let Some(kind) = RecordKind::from_u8(kind_byte) else {
        return Err(Bad::Invalid(format!("record kind {kind_byte} at byte {at}")));
    };
    let flags = le_u32(h, 4) >> 16;
    if flags != 0 || le_u32(h, 12) != 0 {
        return Err(Bad::Invalid(format!("reserved bits set in the record at byte {at}")));
    }
    let seq = le_u64(h, 16);
    let offset = le_u64(h, 24);
    let len = le_u64(h, 32);
    if seq == 0 {
        return Err(Bad::Invalid(format!("record seq 0 at byte {at}")));
    }
    let (limit, data_len) = match kind {
        RecordKind::Write => (MAX_RECORD, len),
        RecordKind::Zeroes | RecordKind::Punch => (MAX_ZERO_LEN, 0),
    };
    if len > limit || offset.checked_add(len).is_none() {
        return Err(Bad::Invalid(format!("seq {seq}: {kind:?} offset {offset} len {len} out of bounds")));
    }
    // data_len <= MAX_RECORD (32 MiB), so the casts and the addition cannot overflow.
    let start = at + RECORD_HEADER;
    let Some(data) = buf.get(start..).and_then(|b| b.get(..data_len as usize)) else {
        return Err(Bad::Truncated(format!("seq {seq}: data of {data_len} bytes at byte {start} cut short")));
    };
    if le_u32(h, 40) != crc32fast::hash(data) {
        return Err(Bad::Checksum(format!("seq {seq}: data checksum mismatch")));
    }
    let volume = le_u32(h, 8);
    Ok((RecordRef { seq, volume, kind, offset, len, data }, RECORD_HEADER + data_len as usize))
}

/// Decodes a batch received from the network. The bytes are hostile: every length is
/// checked before use and every checksum verified; anything wrong is `E_PROTOCOL`
/// (structure) or `E_CORRUPT` (a checksum), never a panic. Records may come in any
/// order (the applier reorders them); an empty batch decodes to no records.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<RecordRef<'_>>> {
    if bytes.len() > MAX_BATCH {
        return Err(JournalError::protocol(format!("batch of {} bytes over the limit {MAX_BATCH}", bytes.len())));
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match parse_record(bytes, at) {
            Ok((rec, n)) => {
                out.push(rec);
                at += n;
            }
            Err(Bad::Checksum(d)) => return Err(JournalError::corrupt(Path::new("batch"), d)),
            Err(bad) => return Err(JournalError::protocol(bad.detail())),
        }
    }
    Ok(out)
}

/// The header of a segment file that starts at sequence number `first`.
pub(crate) fn segment_header(first: u64) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first.to_le_bytes());
    let crc = crc32fast::hash(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The first sequence number a segment header names, or why it is not a valid header.
pub(crate) fn parse_segment_header(b: &[u8]) -> std::result::Result<u64, Bad> {
    let Some(h) = b.get(..SEGMENT_HEADER) else {
        return Err(Bad::Truncated(format!("segment header cut short ({} bytes)", b.len())));
    };
    if h.get(0..8) != Some(&SEGMENT_MAGIC[..]) {
        return Err(Bad::Invalid("bad segment magic".into()));
    }
    if le_u32(h, 28) != crc32fast::hash(h.get(0..28).unwrap_or_default()) {
        return Err(Bad::Checksum("segment header checksum mismatch".into()));
    }
    let version = le_u32(h, 8);
    if version != SEGMENT_VERSION {
        return Err(Bad::Invalid(format!("segment version {version}")));
    }
    Ok(le_u64(h, 16))
}
