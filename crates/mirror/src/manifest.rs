//! The checkpoint manifest: which generations of a primary's dirty bitmap exist, which
//! one is current, and when each started and froze. Format in docs/mirrors.md
//! ("Checkpoints"); read defensively (any damage is E_CORRUPT, never a panic).

use crate::error::{MirrorError, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"PLXCKPT\0";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 32;
const ENTRY_LEN: usize = 32;
const CRC_LEN: usize = 4;
/// Bounds how much a damaged count can make a reader allocate; far more generations
/// than anyone keeps (each is a bitmap file).
pub(crate) const MAX_GENERATIONS: usize = 1 << 16;
const FROZEN: u64 = 1;

/// One generation as the manifest records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub number: u64,
    pub started_ns: u64,
    /// `None` for the current generation (the last one).
    pub frozen_ns: Option<u64>,
}

/// The whole manifest: the geometry every generation's bitmap has, and the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub size: u64,
    pub granularity: u64,
    pub entries: Vec<Entry>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

impl Manifest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN + ENTRY_LEN * self.entries.len() + CRC_LEN);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.size.to_le_bytes());
        b.extend_from_slice(&self.granularity.to_le_bytes());
        for e in &self.entries {
            b.extend_from_slice(&e.number.to_le_bytes());
            b.extend_from_slice(&(if e.frozen_ns.is_some() { FROZEN } else { 0 }).to_le_bytes());
            b.extend_from_slice(&e.started_ns.to_le_bytes());
            b.extend_from_slice(&e.frozen_ns.unwrap_or(0).to_le_bytes());
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Validates everything before trusting anything: length from the count (bounded),
    /// checksum, then the chain's own rules (numbers ascending, only the last current).
    pub(crate) fn decode(path: &Path, b: &[u8]) -> Result<Manifest> {
        let corrupt = |detail: String| MirrorError::Corrupt { path: path.to_owned(), detail };
        if b.len() < HEADER_LEN + CRC_LEN {
            return Err(corrupt(format!("{} bytes is too short for a manifest", b.len())));
        }
        if b.get(..8) != Some(MAGIC.as_slice()) {
            return Err(corrupt("bad magic (not a checkpoint manifest)".into()));
        }
        let count = u32_at(b, 12) as usize;
        if count == 0 || count > MAX_GENERATIONS {
            return Err(corrupt(format!("generation count {count} is out of range")));
        }
        let want = HEADER_LEN + ENTRY_LEN * count + CRC_LEN;
        if b.len() != want {
            return Err(corrupt(format!("{} bytes where {count} generations take {want}", b.len())));
        }
        let body = want - CRC_LEN;
        if u32_at(b, body) != crc32fast::hash(b.get(..body).unwrap_or_default()) {
            return Err(corrupt("checksum mismatch".into()));
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(corrupt(format!("unsupported version {version}")));
        }
        let (size, granularity) = (u64_at(b, 16), u64_at(b, 24));
        if size == 0 || !granularity.is_power_of_two() {
            return Err(corrupt(format!("bad geometry: size {size}, granularity {granularity}")));
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(count);
        for i in 0..count {
            let at = HEADER_LEN + ENTRY_LEN * i;
            let (number, flags, started_ns, frozen_ns) = (u64_at(b, at), u64_at(b, at + 8), u64_at(b, at + 16), u64_at(b, at + 24));
            if flags & !FROZEN != 0 {
                return Err(corrupt(format!("generation entry {i} has unknown flags {flags:#x}")));
            }
            if number == 0 || entries.last().is_some_and(|l| l.number >= number) {
                return Err(corrupt(format!("generation numbers are not ascending at entry {i} ({number})")));
            }
            let frozen = flags & FROZEN != 0;
            if frozen == (i + 1 == count) {
                return Err(corrupt(format!("generation {number}: every generation but the last is frozen, the last is current")));
            }
            if !frozen && frozen_ns != 0 {
                return Err(corrupt(format!("generation {number} is current but has a freeze time")));
            }
            entries.push(Entry { number, started_ns, frozen_ns: frozen.then_some(frozen_ns) });
        }
        Ok(Manifest { size, granularity, entries })
    }

    /// Reads the manifest at `path`; `Ok(None)` if there is none. Reads no more than a
    /// manifest of the largest count can take, whatever the file's length.
    pub(crate) fn load(path: &Path) -> Result<Option<Manifest>> {
        let f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(MirrorError::io(path, "open")(e)),
        };
        let limit = (HEADER_LEN + ENTRY_LEN * MAX_GENERATIONS + CRC_LEN) as u64;
        let mut b = Vec::new();
        f.take(limit + 1).read_to_end(&mut b).map_err(MirrorError::io(path, "read"))?;
        Manifest::decode(path, &b).map(Some)
    }

    /// Replaces the manifest at `path` atomically: `tmp` written and fsynced, renamed
    /// over `path`, the directory fsynced. `Err(Before)`: nothing changed on disk;
    /// `Err(After)`: the rename happened but may not be durable.
    pub(crate) fn store(&self, path: &Path, tmp: &Path) -> std::result::Result<(), Stored> {
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(tmp).map_err(MirrorError::io(tmp, "create"))?;
            f.write_all(&self.encode()).map_err(MirrorError::io(tmp, "write"))?;
            f.sync_all().map_err(MirrorError::io(tmp, "fsync"))?;
            fs::rename(tmp, path).map_err(MirrorError::io(path, "rename"))
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(tmp);
            return Err(Stored::Before(e));
        }
        sync_dir(path).map_err(Stored::After)
    }
}

/// How a manifest store failed: whether the old manifest is certainly still in place.
#[derive(Debug)]
pub(crate) enum Stored {
    /// Before the rename: the old manifest stands.
    Before(MirrorError),
    /// After the rename: old or new, unknown until a reopen.
    After(MirrorError),
}

/// fsyncs the directory holding `path`, so a rename or removal in it is durable.
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(MirrorError::io(dir, "fsync directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest with any fields at all and a correct checksum, so the checks behind
    /// the checksum are what is tested.
    fn raw(version: u32, count: u32, size: u64, granularity: u64, entries: &[[u64; 4]]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&version.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&granularity.to_le_bytes());
        for e in entries {
            for f in e {
                b.extend_from_slice(&f.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    fn code(b: &[u8]) -> Option<&'static str> {
        Manifest::decode(Path::new("m"), b).err().map(|e| e.code())
    }

    #[test]
    fn a_manifest_round_trips() {
        let m = Manifest {
            size: 1 << 30,
            granularity: 65536,
            entries: vec![
                Entry { number: 2, started_ns: 5, frozen_ns: Some(9) },
                Entry { number: 7, started_ns: 9, frozen_ns: Some(12) },
                Entry { number: 8, started_ns: 12, frozen_ns: None },
            ],
        };
        assert_eq!(Manifest::decode(Path::new("m"), &m.encode()).expect("decode"), m);
    }

    #[test]
    fn what_lies_behind_a_good_checksum_is_checked_too() {
        let (s, g) = (1 << 20, 65536);
        let cur = [3, 0, 1, 0];
        let frozen = [2, 1, 1, 1];
        assert!(code(&raw(1, 2, s, g, &[frozen, cur])).is_none(), "the baseline is valid");
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("version", raw(2, 1, s, g, &[cur])),
            ("no generation", raw(1, 0, s, g, &[])),
            ("count past the bound", raw(1, (MAX_GENERATIONS + 1) as u32, s, g, &[cur])),
            ("count larger than the file", raw(1, 3, s, g, &[frozen, cur])),
            ("zero size", raw(1, 1, 0, g, &[cur])),
            ("granularity", raw(1, 1, s, 3000, &[cur])),
            ("generation 0", raw(1, 1, s, g, &[[0, 0, 1, 0]])),
            ("not ascending", raw(1, 2, s, g, &[[3, 1, 1, 1], cur])),
            ("unknown flags", raw(1, 1, s, g, &[[3, 2, 1, 0]])),
            ("last frozen", raw(1, 1, s, g, &[[3, 1, 1, 1]])),
            ("current in the middle", raw(1, 2, s, g, &[[2, 0, 1, 0], cur])),
            ("freeze time on the current", raw(1, 1, s, g, &[[3, 0, 1, 7]])),
        ];
        for (what, b) in bad {
            assert_eq!(code(&b), Some("E_CORRUPT"), "{what}");
        }
    }
}
