//! A pair's secondary as an NBD export: reads as hosts see it (an instant split's
//! unfilled regions from the primary), writes by the pair's rules (refused while
//! mirrored, tracked while split), its access list enforced on connection.

use crate::access::host_allowed;
use crate::errno::from_mirror;
use crate::primary::{extents, DIRTY_BITMAP, HOLE_ZERO};
use plexus_mirror::{Mirror, Mode, Side};
use plexus_nbd::{Errno, Export, Extent, IoFailure, Peer};
use std::sync::Arc;

/// A secondary served over NBD.
pub struct SecondaryExport {
    mirror: Arc<Mirror>,
    read_only: bool,
    allow: Vec<String>,
    local_host: String,
}

impl SecondaryExport {
    /// Serves the secondary of `mirror`; `read_only` (a read-only split, or a pair still
    /// mirrored) refuses writes; `allow` is the pair's access list, `local_host` this
    /// machine's identity for local clients.
    pub fn new(mirror: Arc<Mirror>, read_only: bool, allow: Vec<String>, local_host: String) -> Self {
        SecondaryExport { mirror, read_only, allow, local_host }
    }
}

impl Export for SecondaryExport {
    fn size(&self) -> u64 {
        self.mirror.size()
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoFailure> {
        self.mirror.read_secondary(offset, buf).map_err(|e| from_mirror(&e))
    }
    fn write(&self, offset: u64, data: &[u8], fua: bool) -> Result<(), IoFailure> {
        self.mirror.write_secondary(offset, data).map_err(|e| from_mirror(&e))?;
        if fua {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&self) -> Result<(), IoFailure> {
        self.mirror.flush_data().map_err(|e| from_mirror(&e))
    }
    fn trim(&self, offset: u64, len: u64, fua: bool) -> Result<(), IoFailure> {
        self.write_zeroes(offset, len, true, fua)
    }
    fn write_zeroes(&self, offset: u64, len: u64, may_trim: bool, fua: bool) -> Result<(), IoFailure> {
        self.mirror.write_zeroes_secondary(offset, len, may_trim).map_err(|e| from_mirror(&e))?;
        if fua {
            self.flush()?;
        }
        Ok(())
    }
    fn fast_zero(&self, offset: u64, len: u64, may_trim: bool, fua: bool) -> Result<(), IoFailure> {
        self.write_zeroes(offset, len, may_trim, fua)
    }
    fn meta_contexts(&self) -> Vec<String> {
        vec![format!("{DIRTY_BITMAP}{}", self.mirror.secondary_label())]
    }
    fn block_status(&self, context: &str, offset: u64, len: u64) -> Result<Vec<Extent>, IoFailure> {
        if context == "base:allocation" {
            return self.mirror.secondary_allocation(offset, len).map(|r| extents(r, HOLE_ZERO)).map_err(|e| from_mirror(&e));
        }
        if context.strip_prefix(DIRTY_BITMAP) == Some(self.mirror.secondary_label()) {
            return self.mirror.dirty_extents(Side::Secondary, offset, len).map(|r| extents(r, 1)).map_err(|e| from_mirror(&e));
        }
        Err(IoFailure::new(Errno::Inval, format!("unknown meta context {context}")))
    }
    fn admit(&self, peer: &Peer) -> Result<(), String> {
        host_allowed(&self.allow, peer, &self.local_host)?;
        // A host on the list gets the secondary only while the pair is split (JP
        // 2002-041345, Fig. 6), as in the library (src/mirror/io.ts).
        if !self.allow.is_empty() && self.mirror.mode() == Mode::Duplex {
            return Err(format!("volume {} may be accessed only while its pair is split", self.mirror.secondary_label()));
        }
        Ok(())
    }
}
