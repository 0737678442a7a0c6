//! Plexus volumes served to real programs: the write path of a primary (its volume, the
//! mirrors of its pairs and its dirty-bitmap checkpoints) shared by the library and the
//! NBD server, and the [`plexus_nbd::Export`]s built on it: a primary (or plain volume)
//! and a split secondary with its access list.
#![deny(unsafe_code)]

pub mod access;
pub mod errno;
pub mod plex;
pub mod primary;
pub mod secondary;
pub mod tls;

pub use access::host_allowed;
pub use plex::{Plex, PlexError};
pub use primary::PrimaryExport;
pub use secondary::SecondaryExport;
pub use tls::TlsHook;
