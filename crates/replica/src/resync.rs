//! The differential copy of a resync: the dirty regions of a member, read from the local
//! volume and appended to the journal as records, each ordered with the writes going on
//! meanwhile by the region's lock. Writes go to the journal during a resync (the group
//! is in Async), never back into the bitmap, so every dirty region is copied once and
//! the resync's progress only moves forward, however busy the volume is.

use crate::error::Result;
use crate::group::ReplicaGroup;
use plexus_journal::{RecordKind, RecordRef};
use plexus_volume::BlockDevice;

/// Largest record a resync appends: a journal batch carries several.
const PIECE: u64 = 1 << 20;

/// What one step copied.
#[derive(Debug, Default, Clone, Copy)]
pub struct CopyStep {
    /// Where the next step starts (the volume's size when nothing dirty is left).
    pub next: u64,
    /// Bytes of dirty regions this step put in the journal.
    pub bytes: u64,
    /// Of them, bytes sent as data (the rest were holes, sent as punch records).
    pub data_bytes: u64,
    /// Records appended.
    pub records: u64,
    /// Whether the member has no dirty region left at or after `next` (the copy of this member is done).
    pub done: bool,
}

impl ReplicaGroup {
    /// Copies the dirty regions of member `volume` from `from` on, read from `source`,
    /// into the journal: at most `max_bytes`, and none once the journal holds `budget`
    /// bytes (the shipper must catch up first). The records are made durable, then their
    /// bits cleared: a crash between the two copies a region twice, never zero times.
    pub fn copy_step(&self, volume: u32, source: &dyn BlockDevice, from: u64, max_bytes: u64, budget: u64) -> Result<CopyStep> {
        let member = self.member(volume)?;
        let (bitmap, locks) = (&member.bitmap, &member.locks);
        let _gate = self.copy_gate.lock().unwrap_or_else(|p| p.into_inner());
        if self.mode() == crate::ReplicaMode::Track {
            // Suspended meanwhile: nothing may leave the bitmap now.
            return Ok(CopyStep { next: from, ..CopyStep::default() });
        }
        let view = bitmap.bitmap();
        let g = view.granularity();
        let size = source.size().min(view.size());
        let mut step = CopyStep { next: from.min(size), ..CopyStep::default() };
        let mut copied: Vec<(u64, u64)> = Vec::new();
        let mut buf = Vec::new();
        let mut bit = step.next / g;
        let bits = view.len_bits();
        while bit < bits && step.bytes < max_bytes {
            // Clean granules are skipped a word at a time.
            match view.next_set(bit) {
                Some(b) => bit = b,
                None => {
                    bit = bits;
                    break;
                }
            }
            // A run of dirty granules, at most PIECE long.
            let mut end_bit = bit + 1;
            while end_bit < bits && view.test_bit(end_bit) && (end_bit - bit) * g < PIECE {
                end_bit += 1;
            }
            let offset = bit * g;
            let len = (end_bit * g).min(size).saturating_sub(offset);
            if len > 0 {
                if self.journal().held_bytes() + len > budget {
                    // Full enough: this run is copied by a later step, once the shipper
                    // has released what the remote made durable.
                    break;
                }
                let _region = locks.lock(offset, len);
                let hole = matches!(source.allocation(offset, len)?.as_slice(), [(_, true)]);
                let appended = if hole {
                    self.journal().append(&RecordRef { seq: 0, volume, kind: RecordKind::Punch, offset, len, data: &[] })
                } else {
                    buf.resize(len as usize, 0);
                    source.read_at(offset, &mut buf)?;
                    self.journal().append(&RecordRef { seq: 0, volume, kind: RecordKind::Write, offset, len, data: &buf })
                };
                match appended {
                    Ok(_) => {}
                    // The application's writes filled the journal meanwhile: stop here;
                    // they suspend the group or the shipper catches up.
                    Err(e) if e.code() == "E_FULL" => break,
                    Err(e) => return Err(e.into()),
                }
                if !hole {
                    step.data_bytes += len;
                }
                step.records += 1;
                step.bytes += len;
                copied.push((offset, len));
            }
            bit = end_bit;
        }
        step.next = (bit * g).min(size);
        if !copied.is_empty() {
            self.journal().sync()?;
            // Cleared in memory, then one checkpoint for the whole step: clear records for
            // what it cleared, not a snapshot of the whole bitmap.
            for (offset, len) in copied {
                bitmap.clear_range_in_memory(offset, len)?;
            }
            bitmap.checkpoint()?;
        }
        step.done = view.next_set(bit).is_none();
        Ok(step)
    }
}
