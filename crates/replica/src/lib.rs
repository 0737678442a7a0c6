//! The replicated write path of a consistency group (remote replication, capability B):
//! every change to a member volume is either appended to the group's sequenced journal
//! (asynchronous mode; synchronous mode also waits until the remote applied it) or, while
//! the group is suspended (PSUS/PSUE), marked in the member's durable dirty bitmap. A
//! suspension folds the journal's unsent records into the bitmaps; a resync copies the
//! dirty regions back into the journal, ordered with the writes that go on meanwhile.
#![deny(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod channel;
pub mod error;
pub mod group;
pub mod resync;

pub use error::{ReplicaError, Result};
pub use group::{Change, ReplicaGroup, ReplicaMode};
pub use resync::CopyStep;
