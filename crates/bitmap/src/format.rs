//! On-disk encoding of the sidecar: the 64-byte snapshot header, the snapshot
//! words and the 32-byte log records (marks and clears). Pure encode/decode, no
//! I/O policy; see `docs/bitmap-sidecar.md` for the byte-level tables.

use std::path::Path;

use crate::error::{BitmapError, Result};

/// Snapshot magic, bytes 0..8.
pub(crate) const MAGIC: [u8; 8] = *b"PLXBMAP\0";
/// Snapshot version written. Version 2 says the log beside it may hold clear records:
/// a reader that knows only version 1 (and would take a clear record for a torn tail,
/// cutting every mark after it) refuses the sidecar instead of losing marks.
pub(crate) const VERSION: u32 = 2;
/// Oldest snapshot version read: its log holds mark records only.
pub(crate) const OLDEST_VERSION: u32 = 1;
/// Snapshot header length; words start here.
pub(crate) const HEADER_LEN: usize = 64;
/// Bytes covered by the header CRC (everything before the CRC field).
const HEADER_CRC_SPAN: usize = 52;
/// Intent-log record length.
pub(crate) const RECORD_LEN: usize = 32;
/// Trailer of a mark record ("PLOG" as a little-endian u32), the only kind of version 1.
pub(crate) const RECORD_MAGIC: u32 = 0x504C_4F47;
/// Trailer of a clear record ("PCLR" as a little-endian u32).
pub(crate) const CLEAR_MAGIC: u32 = 0x5043_4C52;

/// Decoded snapshot header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub version: u32,
    pub granularity: u64,
    pub size: u64,
    pub nbits: u64,
    pub generation: u64,
    pub words_crc: u32,
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = buf.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}

fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = buf.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

/// CRC-32 of the words' little-endian encoding.
pub(crate) fn words_crc(words: &[u64]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for w in words {
        h.update(&w.to_le_bytes());
    }
    h.finalize()
}

/// Encodes a full snapshot file (header + words) into one buffer so it can be
/// written with a single `write_all`.
pub(crate) fn encode_snapshot(granularity: u64, size: u64, nbits: u64, generation: u64, words: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + words.len() * 8);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&granularity.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&nbits.to_le_bytes());
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&words_crc(words).to_le_bytes());
    let hcrc = crc32fast::hash(&out);
    out.extend_from_slice(&hcrc.to_le_bytes());
    out.resize(HEADER_LEN, 0); // padding
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

/// Validates the header and returns it with the expected total file length.
/// Any inconsistency is `E_CORRUPT` naming `path`.
pub(crate) fn decode_header(path: &Path, buf: &[u8; HEADER_LEN]) -> Result<(Header, u64)> {
    if buf.get(..8) != Some(&MAGIC[..]) {
        return Err(BitmapError::corrupt(path, "bad magic at offset 0"));
    }
    let stored = get_u32(buf, HEADER_CRC_SPAN);
    let actual = buf.get(..HEADER_CRC_SPAN).map_or(0, crc32fast::hash);
    if stored != actual {
        return Err(BitmapError::corrupt(
            path,
            format!("header crc mismatch at offset 52: stored {stored:#010x}, computed {actual:#010x}"),
        ));
    }
    let version = get_u32(buf, 8);
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(BitmapError::corrupt(path, format!("unsupported version {version} at offset 8")));
    }
    let flags = get_u32(buf, 12);
    if flags != 0 {
        return Err(BitmapError::corrupt(path, format!("unknown flags {flags:#x} at offset 12")));
    }
    if buf.get(56..).is_some_and(|p| p.iter().any(|&b| b != 0)) {
        return Err(BitmapError::corrupt(path, "non-zero header padding at offsets 56..64"));
    }
    let h = Header {
        version,
        granularity: get_u64(buf, 16),
        size: get_u64(buf, 24),
        nbits: get_u64(buf, 32),
        generation: get_u64(buf, 40),
        words_crc: get_u32(buf, 48),
    };
    if !h.granularity.is_power_of_two() {
        return Err(BitmapError::corrupt(path, format!("granularity {} at offset 16 is not a power of two", h.granularity)));
    }
    if h.size == 0 || h.nbits != h.size.div_ceil(h.granularity) {
        return Err(BitmapError::corrupt(
            path,
            format!("nbits {} at offset 32 inconsistent with size {} / granularity {}", h.nbits, h.size, h.granularity),
        ));
    }
    // nbits <= 2^55 (size <= 2^64, granularity >= 2^9 is checked later), so
    // this cannot overflow for a valid geometry; checked anyway.
    let len = h
        .nbits
        .div_ceil(64)
        .checked_mul(8)
        .and_then(|n| n.checked_add(HEADER_LEN as u64))
        .ok_or_else(|| BitmapError::corrupt(path, "file length overflows u64"))?;
    Ok((h, len))
}

/// Decodes the word area (after the header) and checks its CRC.
pub(crate) fn decode_words(path: &Path, h: &Header, body: &[u8]) -> Result<Vec<u64>> {
    let words: Vec<u64> = body.chunks_exact(8).map(|c| get_u64(c, 0)).collect();
    let crc = words_crc(&words);
    if crc != h.words_crc {
        return Err(BitmapError::corrupt(
            path,
            format!("words crc mismatch (offsets 64..{}): stored {:#010x}, computed {crc:#010x}", 64 + body.len(), h.words_crc),
        ));
    }
    Ok(words)
}

/// What a log record says about its bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// The bits are dirty (a write intends to change them).
    Mark,
    /// The bits were clean in memory and no mark of them was in flight (a resync copied
    /// them): replay clears them, so only a later record can set them again.
    Clear,
}

/// One log record: bits `first_bit .. first_bit + nbits` were marked (or cleared)
/// under snapshot generation `generation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub kind: RecordKind,
    pub generation: u64,
    pub first_bit: u64,
    pub nbits: u64,
}

/// CRC of a record: bytes 0..24; a clear record's also covers its trailer, so a damaged
/// trailer can never turn one kind into the other.
fn record_crc(b: &[u8], kind: RecordKind) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(b.get(..24).unwrap_or_default());
    if kind == RecordKind::Clear {
        h.update(&CLEAR_MAGIC.to_le_bytes());
    }
    h.finalize()
}

impl Record {
    /// A mark record.
    pub(crate) fn mark(generation: u64, first_bit: u64, nbits: u64) -> Record {
        Record { kind: RecordKind::Mark, generation, first_bit, nbits }
    }

    /// A clear record.
    pub(crate) fn clear(generation: u64, first_bit: u64, nbits: u64) -> Record {
        Record { kind: RecordKind::Clear, generation, first_bit, nbits }
    }

    pub(crate) fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        // zip stops after the three u64 fields (bytes 0..24).
        for (dst, v) in b.chunks_exact_mut(8).zip([self.generation, self.first_bit, self.nbits]) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        let crc = record_crc(&b, self.kind);
        let magic = match self.kind {
            RecordKind::Mark => RECORD_MAGIC,
            RecordKind::Clear => CLEAR_MAGIC,
        };
        if let Some(t) = b.get_mut(24..RECORD_LEN) {
            let (c, m) = t.split_at_mut(4);
            c.copy_from_slice(&crc.to_le_bytes());
            m.copy_from_slice(&magic.to_le_bytes());
        }
        b
    }

    /// Decodes a record; `None` if it is short or its CRC/magic is wrong
    /// (a torn or never-completed append).
    pub(crate) fn decode(b: &[u8]) -> Option<Record> {
        if b.len() != RECORD_LEN {
            return None;
        }
        let kind = match get_u32(b, 28) {
            RECORD_MAGIC => RecordKind::Mark,
            CLEAR_MAGIC => RecordKind::Clear,
            _ => return None,
        };
        if record_crc(b, kind) != get_u32(b, 24) {
            return None;
        }
        Some(Record { kind, generation: get_u64(b, 0), first_bit: get_u64(b, 8), nbits: get_u64(b, 16) })
    }
}
