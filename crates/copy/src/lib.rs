//! Block copy for Plexus: whole volumes or lists of byte ranges, cut into chunks and
//! copied by several threads, with pollable progress and cancellation.
#![deny(unsafe_code)]

pub mod bandwidth;
pub mod engine;
pub mod error;
pub mod plan;

pub use bandwidth::memcpy_bandwidth;
pub use engine::{
    copy_all, copy_ranges, copy_ranges_with, copy_stream_with, ChunkHook, CopyControl, CopyOptions, CopyReport, NoHook, DEFAULT_CHUNK,
};
pub use error::CopyError;
pub use plan::{chunk_ranges, chunks, normalize, Chunker, Chunks};
