//! The sequenced journal and the sequenced applier of asynchronous remote replication.
//!
//! Every write to a volume of a consistency group, once committed locally, is appended
//! to the group's [`Journal`] under the group's next sequence number. A shipper reads
//! [`Batch`]es in order ([`Journal::read_batch`]), sends them, and releases the journal
//! up to what the remote reports durably applied ([`Journal::release`]). The remote
//! feeds each batch to an [`Applier`], which applies records strictly in sequence order
//! and persists its applied sequence number with the data it covers.
//!
//! Formats (segment files, records, state files): `docs/journal-format.md`.

#![deny(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod apply;
pub mod bench;
mod error;
mod format;
pub mod fuzzing;
mod io;
mod journal;
mod segment;
mod state;

pub use apply::{Applier, ApplyTarget, FileStateStore, StateStore};
pub use error::{JournalError, Result};
pub use format::{
    decode_batch, encode_record, RecordKind, RecordRef, MAX_BATCH, MAX_RECORD, MAX_ZERO_LEN, RECORD_HEADER, RECORD_MAGIC, SEGMENT_HEADER,
    SEGMENT_MAGIC,
};
pub use io::{OsSync, SyncIo};
pub use journal::{Batch, BatchInto, Extent, Journal, JournalOptions, DEFAULT_SEGMENT_BYTES, MIN_SEGMENT_BYTES};
