//! A primary (or plain) volume as an NBD export: every write goes through its [`Plex`],
//! and its pairs' dirty bitmaps and checkpoint generations are readable as
//! `qemu:dirty-bitmap:NAME` contexts.

use crate::errno::{from_mirror, from_volume};
use crate::plex::{Plex, PlexError};
use plexus_mirror::Side;
use plexus_nbd::{Errno, Export, Extent, IoFailure};
use std::sync::Arc;

/// The prefix of dirty-bitmap meta contexts (QEMU's docs/interop/nbd.rst).
pub const DIRTY_BITMAP: &str = "qemu:dirty-bitmap:";
/// The name of checkpoint generation N: `checkpoint-N`.
pub const CHECKPOINT: &str = "checkpoint-";

/// `base:allocation` flags: NBD_STATE_HOLE | NBD_STATE_ZERO (a hole of a sparse file reads as zeroes).
pub(crate) const HOLE_ZERO: u32 = 3;

fn failure(e: &PlexError) -> IoFailure {
    match e {
        PlexError::Volume(v) => from_volume(v),
        PlexError::Mirror(m) => from_mirror(m),
        other => IoFailure::new(crate::errno::errno_of(other.code()), format!("{}: {other}", other.code())),
    }
}

/// Runs into extents with the given flags for `true` runs.
pub(crate) fn extents(runs: Vec<(u64, bool)>, flag: u32) -> Vec<Extent> {
    runs.into_iter().map(|(len, set)| Extent { len, flags: if set { flag } else { 0 } }).collect()
}

/// A primary volume (with or without pairs) served over NBD.
pub struct PrimaryExport {
    plex: Arc<Plex>,
}

impl PrimaryExport {
    /// Serves `plex`.
    pub fn new(plex: Arc<Plex>) -> Self {
        PrimaryExport { plex }
    }

    /// Flushes when a request asked for FUA (forced unit access).
    fn fua(&self, fua: bool) -> Result<(), IoFailure> {
        if fua {
            self.plex.flush().map_err(|e| failure(&e))?;
        }
        Ok(())
    }
}

impl Export for PrimaryExport {
    fn size(&self) -> u64 {
        self.plex.size()
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoFailure> {
        self.plex.read(offset, buf).map_err(|e| failure(&e))
    }
    fn write(&self, offset: u64, data: &[u8], fua: bool) -> Result<(), IoFailure> {
        self.plex.write(offset, data).map_err(|e| failure(&e))?;
        self.fua(fua)
    }
    fn flush(&self) -> Result<(), IoFailure> {
        self.plex.flush().map_err(|e| failure(&e))
    }
    fn trim(&self, offset: u64, len: u64, fua: bool) -> Result<(), IoFailure> {
        // Punched through the mirrors, so a secondary reads the same (zeroes) as its
        // primary instead of whatever the trimmed range held before.
        self.plex.write_zeroes(offset, len, true).map_err(|e| failure(&e))?;
        self.fua(fua)
    }
    fn write_zeroes(&self, offset: u64, len: u64, may_trim: bool, fua: bool) -> Result<(), IoFailure> {
        self.plex.write_zeroes(offset, len, may_trim).map_err(|e| failure(&e))?;
        self.fua(fua)
    }
    fn fast_zero(&self, offset: u64, len: u64, may_trim: bool, fua: bool) -> Result<(), IoFailure> {
        // The volume zeroes by fallocate, as fast as it gets; a plex with a mirror
        // duplexes that to the secondary, also by fallocate.
        self.write_zeroes(offset, len, may_trim, fua)
    }
    fn cache(&self, offset: u64, len: u64) -> Result<(), IoFailure> {
        self.plex.volume().cache(offset, len).map_err(|e| from_volume(&e))
    }
    fn meta_contexts(&self) -> Vec<String> {
        let mut names: Vec<String> = self.plex.mirrors().iter().map(|m| format!("{DIRTY_BITMAP}{}", m.secondary_label())).collect();
        if let Some(c) = self.plex.checkpoints() {
            names.extend(c.generations().iter().map(|g| format!("{DIRTY_BITMAP}{CHECKPOINT}{}", g.number)));
        }
        names
    }
    fn block_status(&self, context: &str, offset: u64, len: u64) -> Result<Vec<Extent>, IoFailure> {
        if context == "base:allocation" {
            let runs = self.plex.volume().allocation(offset, len).map_err(|e| from_volume(&e))?;
            return Ok(extents(runs, HOLE_ZERO));
        }
        let Some(bitmap) = context.strip_prefix(DIRTY_BITMAP) else {
            return Err(IoFailure::new(Errno::Inval, format!("unknown meta context {context}")));
        };
        if let Some(n) = bitmap.strip_prefix(CHECKPOINT).and_then(|n| n.parse::<u64>().ok()) {
            if let Some(c) = self.plex.checkpoints() {
                return c.extents(n, offset, len).map(|r| extents(r, 1)).map_err(|e| from_mirror(&e));
            }
        }
        let mirrors = self.plex.mirrors();
        let m = mirrors.iter().find(|m| m.secondary_label() == bitmap).ok_or_else(|| {
            // Negotiated while the pair existed; deleted since: nothing to report truthfully.
            IoFailure::new(Errno::Inval, format!("dirty bitmap {bitmap} is gone (its pair was deleted or the generation released)"))
        })?;
        m.dirty_extents(Side::Primary, offset, len).map(|r| extents(r, 1)).map_err(|e| from_mirror(&e))
    }
}
