//! The write path of a pair, for data and for zeroes alike: one set of rules (region
//! lock, instant-split fill, dirty bits before the primary changes, duplexing with
//! suspension on failure), whatever the write carries.

use crate::error::{MirrorError, Result};
use crate::mirror::{read_lock, Mirror, Mode};
use plexus_volume::BlockDevice;
use std::sync::{Arc, RwLockReadGuard};

/// What a write carries. Zeroes are not a buffer of zero bytes: a device may make them
/// without moving any (`fallocate`), and with `punch` give the space back.
#[derive(Clone, Copy, Debug)]
enum Payload<'a> {
    Data(&'a [u8]),
    Zeroes { len: u64, punch: bool },
}

impl Payload<'_> {
    fn len(&self) -> u64 {
        match self {
            Payload::Data(d) => d.len() as u64,
            Payload::Zeroes { len, .. } => *len,
        }
    }

    fn apply(&self, dev: &dyn BlockDevice, offset: u64) -> plexus_volume::Result<()> {
        match *self {
            Payload::Data(d) => dev.write_at(offset, d),
            Payload::Zeroes { len, punch } => dev.write_zeroes(offset, len, punch),
        }
    }
}

impl Mirror {
    /// Writes to the primary as the mode requires.
    pub fn write_primary(&self, offset: u64, data: &[u8]) -> Result<()> {
        write_primary_all(&[self], offset, data)
    }

    /// Zeroes a range of the primary as the mode requires (see [`write_zeroes_primary_all`]).
    pub fn write_zeroes_primary(&self, offset: u64, len: u64, punch: bool) -> Result<()> {
        write_zeroes_primary_all(&[self], offset, len, punch)
    }

    /// Writes to the secondary; refused while the pair is duplexing (E_STATE).
    pub fn write_secondary(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.write_secondary_payload(offset, Payload::Data(data))
    }

    /// Zeroes a range of the secondary (`punch`: it may be deallocated), under the
    /// rules of [`write_secondary`](Self::write_secondary): refused while duplexing,
    /// marked in the secondary's dirty bitmap, and during an instant split the
    /// touched granules are filled first, so the rest of each keeps the split image.
    pub fn write_zeroes_secondary(&self, offset: u64, len: u64, punch: bool) -> Result<()> {
        self.write_secondary_payload(offset, Payload::Zeroes { len, punch })
    }

    fn write_secondary_payload(&self, offset: u64, payload: Payload<'_>) -> Result<()> {
        let len = payload.len();
        plexus_volume::check_range(self.secondary.label(), offset, len, self.size())?;
        if len == 0 {
            return Ok(());
        }
        let mode = read_lock(&self.mode);
        match *mode {
            Mode::Duplex => Err(MirrorError::State {
                detail: format!("secondary {} is being mirrored and cannot be written until the pair is split", self.secondary.label()),
            }),
            Mode::Track => {
                self.s_dirty.mark_range(offset, len)?;
                payload.apply(self.secondary.as_ref(), offset)?;
                Ok(())
            }
            Mode::Instant => {
                let _region = self.locks.lock(offset, len);
                // A partial write into an unfilled region needs the rest of it first.
                self.fill_locked(self.aligned(offset, len))?;
                self.s_dirty.mark_range(offset, len)?;
                payload.apply(self.secondary.as_ref(), offset)?;
                Ok(())
            }
        }
    }
}

/// Writes to a primary that has one or more plexes (a two- or three-way mirror): the
/// primary is written once, and each pair does what its mode requires, all under one
/// region lock so that concurrent writes land in the same order on every plex.
pub fn write_primary_all(mirrors: &[&Mirror], offset: u64, data: &[u8]) -> Result<()> {
    write_all(mirrors, offset, Payload::Data(data))
}

/// Zeroes `[offset, offset+len)` of a primary with one or more plexes, by exactly the
/// rules of [`write_primary_all`]: the same region lock, an instant split's old region
/// preserved first, the primary bitmap marked before the primary changes, the zeroes
/// duplexed to every mirrored plex and a plex that refuses them suspended. `punch`
/// lets each device deallocate the range (`fallocate` PUNCH_HOLE) instead of only
/// zeroing it.
pub fn write_zeroes_primary_all(mirrors: &[&Mirror], offset: u64, len: u64, punch: bool) -> Result<()> {
    write_all(mirrors, offset, Payload::Zeroes { len, punch })
}

fn write_all(mirrors: &[&Mirror], offset: u64, payload: Payload<'_>) -> Result<()> {
    let Some(first) = mirrors.first() else { return Ok(()) };
    if mirrors.iter().any(|m| !Arc::ptr_eq(&m.locks, &first.locks)) {
        return Err(MirrorError::State { detail: format!("plexes of {} do not share their region locks", first.primary.label()) });
    }
    let len = payload.len();
    plexus_volume::check_range(first.primary.label(), offset, len, first.size())?;
    if len == 0 {
        return Ok(());
    }
    let modes: Vec<RwLockReadGuard<'_, Mode>> = mirrors.iter().map(|m| read_lock(&m.mode)).collect();
    let _region = first.locks.lock(offset, len);
    for (m, mode) in mirrors.iter().zip(modes.iter()) {
        if **mode == Mode::Instant {
            m.fill_locked(m.aligned(offset, len))?;
        }
        // Duplex: write-intent against a crash between the writes; Track and Instant:
        // the record of what changed since the split. Marked under the region lock so a
        // resync cannot clear it while this write is still in flight.
        m.p_dirty.mark_range(offset, len)?;
    }
    payload.apply(first.primary.as_ref(), offset)?;
    // Every plex gets the write even when another refuses it (a three-way mirror
    // keeps its good plex); a plex that refuses is suspended, not the write failed:
    // the primary holds the data and the divergence is recorded durably.
    // A suspension whose bitmap flush fails is still a suspension (the failure is
    // recorded in memory first): the loop goes on to the other plexes and the mode still
    // leaves Duplex; the first such error is returned once every plex was handled.
    let mut failed: Vec<&Mirror> = Vec::new();
    let mut first_error: Option<MirrorError> = None;
    for (m, mode) in mirrors.iter().zip(modes.iter()) {
        if **mode == Mode::Duplex && m.failure().is_none() {
            if let Err(e) = payload.apply(m.secondary.as_ref(), offset) {
                if let Err(f) = m.suspend(offset, len, &e) {
                    first_error.get_or_insert(f);
                }
                failed.push(m);
            }
        }
    }
    drop(_region);
    drop(modes);
    for m in failed {
        // The failure is recorded first, so a split or clean close that gets the mode
        // before this refuses rather than clearing the bits.
        let mut q = m.quiesce();
        if q.mode() == Mode::Duplex {
            q.set_mode(Mode::Track);
        }
    }
    first_error.map_or(Ok(()), Err)
}
