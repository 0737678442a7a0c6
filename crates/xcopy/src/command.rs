//! Segment commands: what one EXTENDED COPY segment descriptor asks of a copy device.

use plexus_tape::TapeError;

/// The default chunk: 10 MiB, small enough that a switch-over loses little work,
/// large enough that per-command costs vanish beside the data.
pub const DEFAULT_CHUNK: u64 = 10 << 20;

/// Copy `length` bytes of the source volume from `source_offset` to the target
/// cartridge, appended at its current position. `id` numbers the commands of a job in
/// source order; a command split by early warning keeps its id for both parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentCommand {
    /// Number of the command within its job.
    pub id: u32,
    /// First byte of the source volume.
    pub source_offset: u64,
    /// Bytes to copy.
    pub length: u64,
}

impl SegmentCommand {
    /// The part of this command after its first `done` bytes.
    pub fn rest(&self, done: u64) -> SegmentCommand {
        SegmentCommand { id: self.id, source_offset: self.source_offset + done, length: self.length - done.min(self.length) }
    }
}

/// The most commands one plan holds (their list is allocated at once): 2^24.
pub const MAX_COMMANDS: u64 = 1 << 24;

/// Cuts `length` bytes from `offset` into commands of `chunk` bytes (the last may be
/// shorter), numbered from 0. E_INVALID for a zero chunk or more than [`MAX_COMMANDS`] commands.
pub fn plan_chunks(offset: u64, length: u64, chunk: u64) -> Result<Vec<SegmentCommand>, TapeError> {
    if chunk == 0 {
        return Err(TapeError::Invalid { detail: "the chunk size must be at least one byte".into() });
    }
    let count = length.div_ceil(chunk);
    if count > MAX_COMMANDS {
        return Err(TapeError::Invalid { detail: format!("{length} bytes in chunks of {chunk} make {count} commands; use larger chunks") });
    }
    Ok((0..count)
        .map(|i| {
            let at = i * chunk;
            SegmentCommand { id: i as u32, source_offset: offset + at, length: chunk.min(length - at) }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_range_in_order_and_the_last_is_short() {
        let c = plan_chunks(100, 25, 10).expect("plan");
        assert_eq!(c.iter().map(|c| (c.id, c.source_offset, c.length)).collect::<Vec<_>>(), vec![(0, 100, 10), (1, 110, 10), (2, 120, 5)]);
        assert!(plan_chunks(0, 0, 10).expect("empty").is_empty());
        assert_eq!(plan_chunks(0, 1, 0).map_err(|e| e.code()).err(), Some("E_INVALID"));
        assert_eq!(c[1].rest(4), SegmentCommand { id: 1, source_offset: 114, length: 6 });
    }
}
