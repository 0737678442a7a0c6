//! Loading a sidecar from disk: snapshot validation and intent-log replay.
//!
//! Both functions treat the files as untrusted input: every field is checked
//! and nothing is allocated beyond the real file size, so arbitrary bytes give
//! `E_CORRUPT`, never a panic.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;

use crate::bitmap::DirtyBitmap;
use crate::error::{BitmapError, Result};
use crate::format::{self, Record, RecordKind, HEADER_LEN, RECORD_LEN};

/// Reads and fully validates a snapshot. Never panics on any byte pattern.
pub(crate) fn read_snapshot(path: &Path) -> Result<(format::Header, Vec<u64>)> {
    let mut f = File::open(path).map_err(BitmapError::io(path, "open"))?;
    let file_len = f.metadata().map_err(BitmapError::io(path, "stat"))?.len();
    if file_len < HEADER_LEN as u64 {
        return Err(BitmapError::corrupt(path, format!("short file: {file_len} bytes < 64-byte header")));
    }
    let mut hdr = [0u8; HEADER_LEN];
    f.read_exact(&mut hdr).map_err(BitmapError::io(path, "read"))?;
    let (h, want_len) = format::decode_header(path, &hdr)?;
    if file_len != want_len {
        return Err(BitmapError::corrupt(path, format!("file is {file_len} bytes, header (nbits {}) implies {want_len}", h.nbits)));
    }
    // Bounded by the real file length checked above, so no huge allocation
    // can come from a corrupt header.
    let body_len =
        usize::try_from(want_len - HEADER_LEN as u64).map_err(|_| BitmapError::corrupt(path, "word area too large for this platform"))?;
    let mut body = vec![0u8; body_len];
    f.read_exact(&mut body).map_err(BitmapError::io(path, "read"))?;
    let words = format::decode_words(path, &h, &body)?;
    Ok((h, words))
}

/// Opens (creating if missing) the log, applies every valid record of the current
/// or a newer generation to `bitmap` in order, and truncates a torn tail. Returns
/// the file and the valid length.
pub(crate) fn replay_log(log_path: &Path, bitmap: &DirtyBitmap, generation: u64) -> Result<(File, u64)> {
    let mut file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(log_path).map_err(BitmapError::io(log_path, "open"))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).map_err(BitmapError::io(log_path, "read"))?;
    let valid = apply_records(log_path, &buf, bitmap, generation)?;
    if valid != buf.len() as u64 {
        file.set_len(valid).and_then(|()| file.sync_all()).map_err(BitmapError::io(log_path, "truncate torn tail"))?;
    }
    Ok((file, valid))
}

/// Applies the valid records of `log_path` to `bitmap` like [`replay_log`], but
/// writes nothing: a missing log is empty and a torn tail is only skipped.
pub(crate) fn peek_log(log_path: &Path, bitmap: &DirtyBitmap, generation: u64) -> Result<()> {
    let mut buf = Vec::new();
    match File::open(log_path) {
        Ok(mut f) => {
            f.read_to_end(&mut buf).map_err(BitmapError::io(log_path, "read"))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BitmapError::io(log_path, "open")(e)),
    }
    apply_records(log_path, &buf, bitmap, generation)?;
    Ok(())
}

/// Applies the records of the current (or a newer) generation in `buf` to `bitmap` in
/// log order — a mark sets its bits, a clear clears them, so a mark logged after a clear
/// survives it — up to the first torn one; returns the length of the valid prefix.
fn apply_records(log_path: &Path, buf: &[u8], bitmap: &DirtyBitmap, generation: u64) -> Result<u64> {
    let mut valid = 0u64;
    for chunk in buf.chunks(RECORD_LEN) {
        // Short or bad record = torn append; everything after it is ignored.
        let Some(rec) = Record::decode(chunk) else {
            break;
        };
        // Older generation: already folded into (or cleared by) the snapshot.
        if rec.generation >= generation {
            let end = rec.first_bit.checked_add(rec.nbits).filter(|&e| rec.nbits > 0 && e <= bitmap.len_bits());
            let Some(end) = end else {
                return Err(BitmapError::corrupt(
                    log_path,
                    format!("record at offset {valid} covers bits {}+{} outside 0..{}", rec.first_bit, rec.nbits, bitmap.len_bits()),
                ));
            };
            match rec.kind {
                RecordKind::Mark => {
                    bitmap.set_bits(rec.first_bit, end - 1, Ordering::Relaxed);
                }
                RecordKind::Clear => bitmap.clear_bits(rec.first_bit, end - 1),
            }
        }
        valid += RECORD_LEN as u64;
    }
    Ok(valid)
}
