//! The bytes of a cartridge: the label at offset 0 and the 32-byte record header.
//! Byte-by-byte description in docs/tape-format.md; everything is little-endian and
//! every header carries its own CRC32C, so nothing is trusted before it is checked.

use crate::error::{Result, TapeError};

/// Magic at offset 0 of every cartridge.
pub const LABEL_MAGIC: &[u8; 8] = b"PLXTAPE1";
/// Format version written. Version 2 added hole records; version 1 cartridges (no
/// holes) are still read, and appended to in version 1's form.
pub const FORMAT_VERSION: u32 = 2;
/// Oldest format version read.
pub const OLDEST_VERSION: u32 = 1;
/// First format version with hole records.
pub const HOLES_VERSION: u32 = 2;
/// Bytes reserved for the label; the first record starts here.
pub const LABEL_LEN: u64 = 512;
/// Magic at the start of every record header.
pub const RECORD_MAGIC: &[u8; 4] = b"PXRC";
/// Length of a record header.
pub const HEADER_LEN: u64 = 32;
/// Longest barcode, in bytes.
pub const MAX_BARCODE: usize = 32;
/// Default block size: large enough that per-block costs (a header, a syscall, a CRC
/// call) vanish next to the copy, small enough that a corrupt block costs little.
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;
/// Smallest block size accepted.
pub const MIN_BLOCK_SIZE: u32 = 4096;
/// Largest block size accepted.
pub const MAX_BLOCK_SIZE: u32 = 16 << 20;

/// What a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A block of a file's data.
    Data = 1,
    /// Ends a file.
    Filemark = 2,
    /// Ends the recorded data.
    EndOfData = 3,
    /// Whole blocks of a segment that read as zeroes and take no room on the medium
    /// (format version 2): a header only, its `crc` field holding the block count.
    Hole = 4,
}

/// What a file on the cartridge holds, recorded in each of its records so a scan of
/// headers alone finds the catalog files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Content {
    /// Blocks written one by one (`write_block`).
    Raw = 0,
    /// A segment of a volume (`write_segment`).
    Segment = 1,
    /// Catalog rows of the segments on this cartridge (msgpack, written by the library).
    Catalog = 2,
}

impl Content {
    /// The name used in listings: "raw", "segment" or "catalog".
    pub fn name(self) -> &'static str {
        match self {
            Content::Raw => "raw",
            Content::Segment => "segment",
            Content::Catalog => "catalog",
        }
    }

    /// Parses a listing name back.
    pub fn from_name(s: &str) -> Option<Content> {
        match s {
            "raw" => Some(Content::Raw),
            "segment" => Some(Content::Segment),
            "catalog" => Some(Content::Catalog),
            _ => None,
        }
    }

    fn from_byte(b: u8) -> Option<Content> {
        match b {
            0 => Some(Content::Raw),
            1 => Some(Content::Segment),
            2 => Some(Content::Catalog),
            _ => None,
        }
    }
}

/// The cartridge label: identity and geometry, written once by `format`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Barcode, 1-32 characters of `[A-Za-z0-9._-]`.
    pub barcode: String,
    /// Largest length of the cartridge file in bytes, label and headers included.
    pub capacity: u64,
    /// Size of the early-warning zone before the end, in bytes.
    pub early_warning: u64,
    /// Payload bytes of a full data block.
    pub block_size: u32,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
    /// Random identifier of this formatting, so a re-formatted cartridge with the same
    /// barcode is never mistaken for the old one.
    pub medium_id: [u8; 16],
    /// Format version the cartridge was formatted with (and is appended in).
    pub version: u32,
}

impl Label {
    /// Whether segments on this cartridge may record holes.
    pub fn has_holes(&self) -> bool {
        self.version >= HOLES_VERSION
    }

    /// The medium identifier in lower-case hex.
    pub fn medium_id_hex(&self) -> String {
        self.medium_id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Encodes the 512-byte label.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; LABEL_LEN as usize];
        b[0..8].copy_from_slice(LABEL_MAGIC);
        put_u32(&mut b, 8, self.version);
        put_u32(&mut b, 12, LABEL_LEN as u32);
        put_u32(&mut b, 16, self.block_size);
        put_u32(&mut b, 20, HEADER_LEN as u32);
        put_u64(&mut b, 24, self.capacity);
        put_u64(&mut b, 32, self.early_warning);
        put_u64(&mut b, 40, self.created_ns);
        let code = self.barcode.as_bytes();
        b[48] = code.len() as u8;
        b[56..56 + code.len()].copy_from_slice(code);
        b[88..104].copy_from_slice(&self.medium_id);
        let crc = crc32c::crc32c(&b[0..508]);
        put_u32(&mut b, 508, crc);
        b
    }

    /// Decodes and validates a label; `path` names the file in errors.
    pub fn decode(b: &[u8], path: &str) -> Result<Label> {
        let bad = |detail: String| TapeError::Corrupt { cartridge: path.to_owned(), file: None, block: None, detail };
        if b.len() < LABEL_LEN as usize {
            return Err(bad(format!("file is {} bytes, shorter than a label", b.len())));
        }
        if &b[0..8] != LABEL_MAGIC {
            return Err(bad("not a Plexus cartridge (bad label magic)".into()));
        }
        if crc32c::crc32c(&b[0..508]) != get_u32(b, 508) {
            return Err(bad("label checksum mismatch".into()));
        }
        let version = get_u32(b, 8);
        if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(bad(format!("unsupported format version {version}")));
        }
        if get_u32(b, 12) != LABEL_LEN as u32 || get_u32(b, 20) != HEADER_LEN as u32 {
            return Err(bad("unexpected label or header length".into()));
        }
        let n = b[48] as usize;
        let barcode = b
            .get(56..56 + n)
            .filter(|_| n > 0 && n <= MAX_BARCODE)
            .and_then(|s| std::str::from_utf8(s).ok())
            .filter(|s| valid_barcode(s))
            .ok_or_else(|| bad("malformed barcode".into()))?
            .to_owned();
        let mut medium_id = [0u8; 16];
        medium_id.copy_from_slice(&b[88..104]);
        let label = Label {
            barcode,
            capacity: get_u64(b, 24),
            early_warning: get_u64(b, 32),
            block_size: get_u32(b, 16),
            created_ns: get_u64(b, 40),
            medium_id,
            version,
        };
        check_geometry(label.capacity, label.block_size, label.early_warning).map_err(|e| bad(e.to_string()))?;
        Ok(label)
    }
}

/// Whether `s` is an acceptable barcode: 1-32 of `[A-Za-z0-9._-]`.
pub fn valid_barcode(s: &str) -> bool {
    (1..=MAX_BARCODE).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

/// Smallest early-warning zone for a block size: room for the block that enters the
/// zone, then a filemark, a catalog file of one full block, its filemark and EOD.
pub fn min_early_warning(block_size: u32) -> u64 {
    2 * (u64::from(block_size) + HEADER_LEN) + 4 * HEADER_LEN
}

/// The default early-warning zone: four full blocks or 1% of the capacity, whichever
/// is larger, so a big cartridge keeps proportionally more room for its catalog.
pub fn default_early_warning(capacity: u64, block_size: u32) -> u64 {
    (4 * (u64::from(block_size) + HEADER_LEN)).max(capacity / 100).max(min_early_warning(block_size))
}

/// Checks block size, capacity and early warning against each other (E_INVALID).
pub fn check_geometry(capacity: u64, block_size: u32, early_warning: u64) -> Result<()> {
    let invalid = |detail: String| Err(TapeError::Invalid { detail });
    if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        return invalid(format!("block size {block_size} must be a power of two from {MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE}"));
    }
    let min_ew = min_early_warning(block_size);
    if early_warning < min_ew {
        return invalid(format!(
            "early-warning zone of {early_warning} bytes is too small for block size {block_size} (at least {min_ew})"
        ));
    }
    // At least one full block must fit before the zone, or the cartridge is useless.
    let min_cap = LABEL_LEN + u64::from(block_size) + HEADER_LEN + early_warning;
    if capacity < min_cap {
        return invalid(format!(
            "capacity {capacity} is too small for block size {block_size} and an early-warning zone of {early_warning} bytes (at least {min_cap})"
        ));
    }
    Ok(())
}

/// A decoded record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Record kind.
    pub kind: Kind,
    /// Content tag of the file the record belongs to (EOD: Raw).
    pub content: Content,
    /// File number.
    pub file: u32,
    /// Payload length (0 for filemarks and EOD).
    pub len: u32,
    /// Data, hole: (first) block number in the file; filemark: blocks in the file
    /// (holes' blocks included); EOD: 0.
    pub block: u64,
    /// Data: CRC32C of the payload; filemark: CRC32C of the whole file's block list;
    /// hole: the number of blocks it stands for (at least 1); EOD: 0.
    pub crc: u32,
}

impl Header {
    /// Encodes the 32-byte header with its own CRC.
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[0..4].copy_from_slice(RECORD_MAGIC);
        b[4] = self.kind as u8;
        b[5] = self.content as u8;
        put_u32(&mut b, 8, self.file);
        put_u32(&mut b, 12, self.len);
        put_u64(&mut b, 16, self.block);
        put_u32(&mut b, 24, self.crc);
        let crc = crc32c::crc32c(&b[0..28]);
        put_u32(&mut b, 28, crc);
        b
    }

    /// Decodes a header; None if its magic, CRC or fields are not valid, which a scan
    /// treats as the end of what was written (a torn record) or as damage.
    pub fn decode(b: &[u8]) -> Option<Header> {
        let b = b.get(0..HEADER_LEN as usize)?;
        if &b[0..4] != RECORD_MAGIC || crc32c::crc32c(&b[0..28]) != get_u32(b, 28) || b[6] != 0 || b[7] != 0 {
            return None;
        }
        let kind = match b[4] {
            1 => Kind::Data,
            2 => Kind::Filemark,
            3 => Kind::EndOfData,
            4 => Kind::Hole,
            _ => return None,
        };
        let h = Header {
            kind,
            content: Content::from_byte(b[5])?,
            file: get_u32(b, 8),
            len: get_u32(b, 12),
            block: get_u64(b, 16),
            crc: get_u32(b, 24),
        };
        // Only data records have a payload; a length elsewhere means damage.
        if (kind == Kind::Data) != (h.len > 0) {
            return None;
        }
        // A hole stands for whole blocks of a segment, at least one.
        if kind == Kind::Hole && (h.crc == 0 || h.content != Content::Segment) {
            return None;
        }
        Some(h)
    }
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_any_flipped_bit() {
        let h = Header { kind: Kind::Data, content: Content::Segment, file: 7, len: 4096, block: 99, crc: 0xdead_beef };
        let b = h.encode();
        assert_eq!(Header::decode(&b), Some(h));
        for i in 0..b.len() * 8 {
            let mut c = b;
            c[i / 8] ^= 1 << (i % 8);
            assert_eq!(Header::decode(&c), None, "bit {i}");
        }
    }

    #[test]
    fn label_round_trips_and_checks_geometry() {
        let l = Label {
            barcode: "ABC123L8".into(),
            capacity: 64 << 20,
            early_warning: default_early_warning(64 << 20, 1 << 20),
            block_size: 1 << 20,
            created_ns: 1,
            medium_id: [7; 16],
            version: FORMAT_VERSION,
        };
        assert_eq!(Label::decode(&l.encode(), "x").expect("decode"), l);
        assert!(check_geometry(1 << 20, 1 << 20, min_early_warning(1 << 20)).is_err());
        assert!(check_geometry(64 << 20, 3000, 1 << 20).is_err());
        assert!(!valid_barcode("") && !valid_barcode("a b") && valid_barcode("A-1.b_2"));
        let old = Label { version: 1, ..l.clone() };
        assert_eq!(Label::decode(&old.encode(), "x").expect("v1").version, 1);
        for v in [0, 3] {
            let e = Label::decode(&Label { version: v, ..l.clone() }.encode(), "x").expect_err("version");
            assert!(e.to_string().contains("unsupported format version"), "{e}");
        }
    }

    #[test]
    fn a_hole_header_needs_a_block_count_and_a_segment() {
        let h = Header { kind: Kind::Hole, content: Content::Segment, file: 3, len: 0, block: 10, crc: 5 };
        assert_eq!(Header::decode(&h.encode()), Some(h));
        assert_eq!(Header::decode(&Header { crc: 0, ..h }.encode()), None);
        assert_eq!(Header::decode(&Header { len: 1, ..h }.encode()), None);
        assert_eq!(Header::decode(&Header { content: Content::Catalog, ..h }.encode()), None);
    }
}
