//! The journal's small durable state file (`state`): the released point, the floor a
//! `reset` set for the next sequence number, and the group's epoch. Replaced whole by
//! write-tmp / fdatasync / rename / fsync-dir, so it is always the old or the new value.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{JournalError, Result};
use crate::io::SyncIo;

const STATE_MAGIC: [u8; 8] = *b"PLXJSTA1";
const STATE_VERSION: u32 = 1;
const STATE_LEN: usize = 48;

/// What the state file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JournalState {
    /// Every record <= this is released (not needed any more).
    pub released: u64,
    /// The next append gets at least this sequence number (raised by `reset`).
    pub floor: u64,
    /// Opaque epoch of the group (changes on a resync).
    pub epoch: u64,
}

impl Default for JournalState {
    fn default() -> Self {
        JournalState { released: 0, floor: 1, epoch: 0 }
    }
}

fn encode(s: &JournalState) -> [u8; STATE_LEN] {
    let mut b = [0u8; STATE_LEN];
    b[0..8].copy_from_slice(&STATE_MAGIC);
    b[8..12].copy_from_slice(&STATE_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&s.released.to_le_bytes());
    b[24..32].copy_from_slice(&s.floor.to_le_bytes());
    b[32..40].copy_from_slice(&s.epoch.to_le_bytes());
    let crc = crc32fast::hash(&b[0..44]);
    b[44..48].copy_from_slice(&crc.to_le_bytes());
    b
}

fn u64_at(b: &[u8; STATE_LEN], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// Reads `dir/state`; absent means a new journal (the default state).
pub(crate) fn load(dir: &Path) -> Result<JournalState> {
    let path = dir.join("state");
    // A leftover tmp is a state write that never got renamed; the real file still holds
    // the previous value, which is what recovery must use.
    let _ = fs::remove_file(dir.join("state.tmp"));
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JournalState::default()),
        Err(e) => return Err(JournalError::io(&path, "read")(e)),
    };
    let Ok(b) = <[u8; STATE_LEN]>::try_from(bytes.as_slice()) else {
        return Err(JournalError::corrupt(&path, format!("{} bytes, expected {STATE_LEN}", bytes.len())));
    };
    if b[0..8] != STATE_MAGIC {
        return Err(JournalError::corrupt(&path, "bad magic"));
    }
    if b[44..48] != crc32fast::hash(&b[0..44]).to_le_bytes() {
        return Err(JournalError::corrupt(&path, "checksum mismatch"));
    }
    if b[8..12] != STATE_VERSION.to_le_bytes() {
        return Err(JournalError::corrupt(&path, "unknown version"));
    }
    let s = JournalState { released: u64_at(&b, 16), floor: u64_at(&b, 24), epoch: u64_at(&b, 32) };
    if s.floor == 0 || s.released == u64::MAX {
        return Err(JournalError::corrupt(&path, format!("impossible values {s:?}")));
    }
    Ok(s)
}

/// Durably replaces `dir/state` with `s`.
pub(crate) fn store(dir: &Path, io: &dyn SyncIo, s: &JournalState) -> Result<()> {
    let tmp = dir.join("state.tmp");
    let path = dir.join("state");
    let res = File::create(&tmp).map_err(JournalError::io(&tmp, "create")).and_then(|mut f| {
        f.write_all(&encode(s)).map_err(JournalError::io(&tmp, "write"))?;
        io.sync_file(&f).map_err(JournalError::io(&tmp, "fdatasync"))
    });
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
        return res;
    }
    fs::rename(&tmp, &path).map_err(JournalError::io(&path, "rename"))?;
    io.sync_dir(dir).map_err(JournalError::io(dir, "fsync dir"))
}
