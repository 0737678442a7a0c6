//! An NBD (Network Block Device) server library for Plexus.
//!
//! Layers, each usable alone:
//! - [`proto`]: the wire protocol without I/O — the fixed-newstyle handshake as a state
//!   machine ([`proto::handshake::Handshake`]), request parsing and validation
//!   ([`proto::request`]), reply encoding ([`proto::reply`]) and metadata-context queries
//!   ([`proto::meta`]);
//! - [`transmission`]: what a validated request does to an [`Export`] and the reply it
//!   produces, still without sockets;
//! - [`server`]: the threaded I/O loop ([`Server`]) over TCP and/or a Unix socket;
//! - [`file::FileExport`] serves a file; [`testing::MemExport`] is a sparse in-memory
//!   export with fault injection; [`fuzzing`] holds the fuzz entry points.
//!
//! What the server supports: fixed newstyle with `NBD_OPT_GO`/`INFO`/`EXPORT_NAME`/
//! `LIST`/`ABORT`/`STRUCTURED_REPLY`/`SET_META_CONTEXT`/`LIST_META_CONTEXT`/`STARTTLS`
//! (through the [`TlsUpgrade`] hook); `base:allocation` plus any contexts an export offers
//! (QEMU's `qemu:dirty-bitmap:NAME`), several at once; every command but `RESIZE`;
//! `NBD_FLAG_CAN_MULTI_CONN`. Not supported: extended headers (`NBD_OPT_EXTENDED_HEADERS`
//! is answered `NBD_REP_ERR_UNSUP`, and clients fall back), oldstyle negotiation.
//!
//! Choices the spec leaves open:
//! - a WRITE longer than `max_request` (the advertised maximum block size) closes the
//!   connection, since its payload could only be drained; a READ that long gets EINVAL;
//!   TRIM, WRITE_ZEROES and BLOCK_STATUS lengths are not limited;
//! - out-of-range requests get EINVAL, or ENOSPC for WRITE and WRITE_ZEROES; writes to a
//!   read-only export get EPERM (read-only is advertised at negotiation and checked again
//!   on every write, so an export can be frozen while clients are connected); unknown
//!   commands and flags get EINVAL;
//! - option payloads over 64 KiB are skipped unread and answered `NBD_REP_ERR_TOO_BIG`;
//! - zero-length requests succeed without reaching the export (BLOCK_STATUS: EINVAL);
//! - a structured READ whose data is all zeroes is sent as one `OFFSET_HOLE` chunk.
//!
//! Changes to the planned [`Export`] contract: `fast_zero` (default: ENOTSUP) backs
//! `NBD_CMD_FLAG_FAST_ZERO`, since `write_zeroes` alone cannot say whether zeroing is
//! fast; an empty `block_status` answer is an EIO for the client, never "all clear".
//! [`Exports::get`] returns an [`export::Entry`] (export and description) and
//! [`Exports::entries`] lists them; [`ServerConfig`] adds workers per connection, the
//! in-flight byte cap, a handshake timeout and a shutdown timeout; [`Server::unix_path`].
//!
//! Threads: one per connection, which runs the handshake and then reads requests; four
//! workers per connection in transmission execute them and write replies (out of order,
//! one `write_all` per reply under a lock). A request that is alone (nothing in flight,
//! nothing more received) runs on the reader thread, sparing two handoffs when a client
//! waits for each reply. Each connection may hold `max_in_flight_bytes` of payloads and
//! replies; beyond that its reader waits, so a flood fills the client's socket, not the
//! server's memory. A TLS stream that cannot be split runs requests one at a time.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod export;
pub mod file;
pub mod fuzzing;
pub mod proto;
pub mod server;
pub mod testing;
pub mod transmission;

pub use export::{Errno, Export, Exports, Extent, IoFailure, Peer};
pub use file::FileExport;
pub use server::{Event, Events, NoEvents, Server, ServerConfig, Stream, TlsUpgrade};
