//! Virtual tape for Plexus: cartridges are files written sequentially in a documented
//! format (docs/tape-format.md): a label, then checksummed data blocks, filemarks and
//! an end-of-data record. A [`Drive`] loads one cartridge and offers tape operations
//! (rewind, locate, write/read block, filemarks, early warning, end of medium);
//! [`write_segment`] and [`read_segment`] move volume data at disk speed.
#![deny(unsafe_code)]

pub mod chain;
pub mod drive;
pub mod error;
pub mod fault;
pub mod format;
mod holes;
pub mod medium;
pub mod restore;
pub mod scan;
pub mod source;
pub mod transfer;

pub use chain::{BlockChain, Digest};
pub use drive::{Drive, FormatOptions, Position, Space, WriteStatus};
pub use error::{Result, TapeError};
pub use fault::{FaultySource, SourceFault};
pub use format::{Content, Label, DEFAULT_BLOCK_SIZE, HEADER_LEN, LABEL_LEN, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE};
pub use medium::{FaultyMedium, FileMedium, Medium, MediumFault};
/// Progress counters and the cancel flag of a transfer (the copy engine's, shared).
pub use plexus_copy::CopyControl;
pub use restore::{read_file, read_segment, DeviceSink, FileSink, NullSink, ReadReport, ReadRequest, Sink, VecSink};
pub use scan::{Damage, FileInfo, Recovery};
pub use source::{SourceSegment, TapeSource};
pub use transfer::{
    append_segment_data, close_segment, write_file, write_segment, write_segment_data, ClosedSegment, EndedBy, FileReport, SegmentReport,
};
