//! The NBD wire protocol as pure functions and state machines: bytes in, bytes and
//! decisions out, no I/O, every length checked before anything is allocated for it.

pub mod consts;
pub mod handshake;
pub mod meta;
pub mod reply;
pub mod request;
pub mod wire;
