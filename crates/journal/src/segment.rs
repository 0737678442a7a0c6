//! Segment files: naming, creation, and the recovery scan that verifies every record
//! of a segment and decides what a crash left (a torn tail to cut, or real damage).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{JournalError, Result};
use crate::format::{self, parse_record, Bad, RECORD_MAGIC, SEGMENT_HEADER};

/// One segment file held in memory: its records' offsets index it by sequence number.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Sequence number of its first record (also in its name and header).
    pub first: u64,
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Bytes of valid content (header + records); the next record goes here.
    pub len: u64,
    /// File offset of record `first + i`.
    pub offsets: Vec<u64>,
    /// Written since the last fdatasync of this file.
    pub dirty: bool,
}

impl Segment {
    /// Records in the segment.
    pub fn count(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// Sequence number of the last record (`first - 1` when empty).
    pub fn last(&self) -> u64 {
        self.first + self.count() - 1
    }

    /// File offset where record `first + i` starts (`len` past the last one).
    pub fn start_of(&self, i: u64) -> u64 {
        self.offsets.get(i as usize).copied().unwrap_or(self.len)
    }

    /// Encoded bytes of the records `first + a .. first + b`.
    pub fn bytes_between(&self, a: u64, b: u64) -> u64 {
        self.start_of(b) - self.start_of(a)
    }
}

/// `seg-<first seq, 20 digits>.log`: sorts by name in sequence order.
pub(crate) fn segment_name(first: u64) -> String {
    format!("seg-{first:020}.log")
}

/// The first sequence number a segment file name carries.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Sequence numbers start at 1, and far below u64::MAX, so `first + count` never
    // overflows; a name outside that is not one of ours.
    digits.parse().ok().filter(|f: &u64| (1..1 << 62).contains(f))
}

/// Segment files in `dir`, sorted by first sequence number.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(JournalError::io(dir, "readdir"))? {
        let entry = entry.map_err(JournalError::io(dir, "readdir"))?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_name) {
            out.push((first, entry.path()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new().read(true).write(true).open(path).map_err(JournalError::io(path, "open"))
}

/// Creates (truncating any stale file of that name) a segment starting at `first`, with
/// its header written. Not synced: the caller syncs the file and the directory.
pub(crate) fn create(dir: &Path, first: u64) -> Result<Segment> {
    let path = dir.join(segment_name(first));
    let file =
        OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).map_err(JournalError::io(&path, "create"))?;
    file.write_all_at(&format::segment_header(first), 0).map_err(JournalError::io(&path, "pwrite"))?;
    Ok(Segment { first, path, file: Arc::new(file), len: SEGMENT_HEADER as u64, offsets: Vec::new(), dirty: true })
}

/// What the recovery scan found in one segment file.
#[derive(Debug)]
pub(crate) enum Scanned {
    /// A valid segment (its torn tail, if any, already cut off).
    Valid(Segment),
    /// The last segment's header itself was torn (created just before a crash, no
    /// record in it): the file was deleted.
    Discarded,
}

/// Verifies every record of the segment at `path` (named for `first`). Only the last
/// segment (`last == true`) may end in a torn record: it is cut off, unless a valid
/// record follows the damage, which no crash of our sequential writer produces.
/// Earlier segments were fdatasynced before the next one was created, so any damage in
/// them is real: `E_CORRUPT`.
pub(crate) fn scan(path: &Path, first: u64, last: bool) -> Result<Scanned> {
    let bytes = fs::read(path).map_err(JournalError::io(path, "read"))?;
    match format::parse_segment_header(&bytes) {
        Ok(f) if f == first => {}
        Ok(f) => return Err(JournalError::corrupt(path, format!("header names first seq {f}, the file name {first}"))),
        Err(bad) => {
            let torn = matches!(bad, Bad::Truncated(_)) || bytes.iter().all(|&b| b == 0);
            if last && torn {
                fs::remove_file(path).map_err(JournalError::io(path, "unlink"))?;
                return Ok(Scanned::Discarded);
            }
            return Err(JournalError::corrupt(path, bad.detail()));
        }
    }
    let mut offsets = Vec::new();
    let mut at = SEGMENT_HEADER;
    let mut expect = first;
    while at < bytes.len() {
        match parse_record(&bytes, at) {
            Ok((rec, n)) if rec.seq == expect => {
                offsets.push(at as u64);
                at += n;
                expect += 1;
            }
            Ok((rec, _)) => {
                return Err(JournalError::corrupt(path, format!("record at byte {at} has seq {}, expected {expect}", rec.seq)));
            }
            Err(bad) => {
                if !last {
                    return Err(JournalError::corrupt(path, bad.detail()));
                }
                if let Some(valid) = valid_record_after(&bytes, at + 1) {
                    return Err(JournalError::corrupt(
                        path,
                        format!("{} (a valid record follows at byte {valid}: damage, not a torn tail)", bad.detail()),
                    ));
                }
                break;
            }
        }
    }
    let file = open_rw(path)?;
    if at < bytes.len() {
        // The torn tail: never acknowledged as durable (a sync covers whole records), so
        // cutting it loses nothing a caller was promised.
        file.set_len(at as u64).map_err(JournalError::io(path, "truncate"))?;
        file.sync_data().map_err(JournalError::io(path, "fdatasync"))?;
    }
    Ok(Scanned::Valid(Segment { first, path: path.to_path_buf(), file: Arc::new(file), len: at as u64, offsets, dirty: false }))
}

/// Offset of the first complete, checksum-valid record at or after `from`, if any.
fn valid_record_after(bytes: &[u8], from: usize) -> Option<usize> {
    let tail = bytes.get(from..)?;
    tail.windows(RECORD_MAGIC.len())
        .enumerate()
        .filter(|(_, w)| *w == RECORD_MAGIC)
        .map(|(i, _)| from + i)
        .find(|&at| parse_record(bytes, at).is_ok())
}
