//! What the server serves: the [`Export`] contract, and the [`Exports`] registry that
//! can change while clients are connected.

use crate::proto::consts;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

/// What a client can be told about an errno-class failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    /// Not permitted (a write to a read-only export).
    Perm,
    /// Input/output error.
    Io,
    /// Out of memory.
    NoMem,
    /// Invalid argument.
    Inval,
    /// No space left.
    NoSpc,
    /// Value too large.
    Overflow,
    /// Not supported (a fast zero that would be slow).
    NotSup,
    /// The server is shutting down.
    Shutdown,
}

impl Errno {
    /// The value sent in the reply's error field.
    pub fn code(self) -> u32 {
        match self {
            Errno::Perm => consts::EPERM,
            Errno::Io => consts::EIO,
            Errno::NoMem => consts::ENOMEM,
            Errno::Inval => consts::EINVAL,
            Errno::NoSpc => consts::ENOSPC,
            Errno::Overflow => consts::EOVERFLOW,
            Errno::NotSup => consts::ENOTSUP,
            Errno::Shutdown => consts::ESHUTDOWN,
        }
    }
}

/// A failed export operation: the errno the client sees and a message for it and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoFailure {
    /// What the client is told.
    pub errno: Errno,
    /// Human-readable detail (sent in structured error chunks, logged in events).
    pub message: String,
}

impl IoFailure {
    /// A failure with the given errno and message.
    pub fn new(errno: Errno, message: impl Into<String>) -> Self {
        IoFailure { errno, message: message.into() }
    }
}

impl fmt::Display for IoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.errno, self.message)
    }
}

impl From<io::Error> for IoFailure {
    fn from(e: io::Error) -> Self {
        // The spec asks for EDQUOT and EFBIG to be reported as ENOSPC.
        let errno = match e.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => Errno::Perm,
            io::ErrorKind::OutOfMemory => Errno::NoMem,
            io::ErrorKind::InvalidInput => Errno::Inval,
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge => Errno::NoSpc,
            io::ErrorKind::Unsupported => Errno::NotSup,
            _ => Errno::Io,
        };
        IoFailure { errno, message: e.to_string() }
    }
}

/// Who is connecting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A TCP client and its address.
    Tcp(SocketAddr),
    /// A client on the Unix socket.
    Unix,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(a) => write!(f, "tcp:{a}"),
            Peer::Unix => f.write_str("unix"),
        }
    }
}

/// One block-status extent: length in bytes and the context's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Bytes covered.
    pub len: u64,
    /// Flags as the context defines them (`base:allocation`: hole 1, zero 2; dirty bitmap: dirty 1).
    pub flags: u32,
}

/// A byte range the server serves. Called from several threads at once (one connection's
/// workers and other connections); writes to disjoint ranges must not interfere. The
/// server validates every range against [`Export::size`] (sampled when a client connects)
/// before calling, so implementations see only in-range requests.
pub trait Export: Send + Sync {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Whether writes are refused; the server then answers them with EPERM itself.
    fn read_only(&self) -> bool;
    /// Fills all of `buf` from `offset`.
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoFailure>;
    /// Writes `data` at `offset`; with `fua`, durably before returning.
    fn write(&self, offset: u64, data: &[u8], fua: bool) -> Result<(), IoFailure>;
    /// Makes every completed write durable, whichever connection made it (the server
    /// advertises NBD_FLAG_CAN_MULTI_CONN, so this must cover state shared by all).
    fn flush(&self) -> Result<(), IoFailure>;
    /// The range is no longer needed; may do nothing.
    fn trim(&self, offset: u64, len: u64, fua: bool) -> Result<(), IoFailure>;
    /// Makes the range read as zeroes; `may_trim`: a hole may be punched.
    fn write_zeroes(&self, offset: u64, len: u64, may_trim: bool, fua: bool) -> Result<(), IoFailure>;
    /// Like `write_zeroes`, but fails at once with [`Errno::NotSup`] (changing nothing)
    /// unless zeroing is faster than writing zeroes; backs NBD_CMD_FLAG_FAST_ZERO.
    fn fast_zero(&self, _offset: u64, _len: u64, _may_trim: bool, _fua: bool) -> Result<(), IoFailure> {
        Err(IoFailure::new(Errno::NotSup, "fast zeroing is not supported"))
    }
    /// A hint that the range will be read soon.
    fn cache(&self, _offset: u64, _len: u64) -> Result<(), IoFailure> {
        Ok(())
    }
    /// Meta contexts besides base:allocation, e.g. "qemu:dirty-bitmap:NAME".
    fn meta_contexts(&self) -> Vec<String> {
        Vec::new()
    }
    /// Extents covering at least a prefix of [offset, offset+len) for one context ("base:allocation" or one of meta_contexts()).
    /// An empty list is reported to the client as EIO: flags 0 would claim "clean" for a
    /// dirty bitmap and lose data in an incremental backup.
    fn block_status(&self, context: &str, offset: u64, len: u64) -> Result<Vec<Extent>, IoFailure>;
    /// Refuses a client (NBD_REP_ERR_POLICY with the reason) before it gets the export.
    fn admit(&self, _peer: &Peer) -> Result<(), String> {
        Ok(())
    }
}

/// One registered export.
#[derive(Clone)]
pub struct Entry {
    /// The export itself.
    pub export: Arc<dyn Export>,
    /// Text shown by `NBD_OPT_LIST` and `NBD_INFO_DESCRIPTION`.
    pub description: String,
}

/// The exports clients may choose from, by name. Changes apply to later negotiations;
/// a client already in transmission keeps the export it negotiated.
#[derive(Default)]
pub struct Exports {
    by_name: RwLock<BTreeMap<String, Entry>>,
}

impl Exports {
    /// An empty registry.
    pub fn new() -> Self {
        Exports::default()
    }

    /// Adds an export, replacing any with the same name. The empty name is the default
    /// export that clients get when they name none.
    pub fn add(&self, name: &str, description: &str, export: Arc<dyn Export>) {
        let entry = Entry { export, description: description.to_owned() };
        // A poisoned lock only means another thread panicked mid-insert on a BTreeMap,
        // which leaves the map itself consistent; keep serving.
        let mut map = self.by_name.write().unwrap_or_else(|p| p.into_inner());
        map.insert(name.to_owned(), entry);
    }

    /// Removes the export named `name`; whether there was one.
    pub fn remove(&self, name: &str) -> bool {
        self.by_name.write().unwrap_or_else(|p| p.into_inner()).remove(name).is_some()
    }

    /// Names in order.
    pub fn names(&self) -> Vec<String> {
        self.by_name.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// The export named `name`.
    pub fn get(&self, name: &str) -> Option<Entry> {
        self.by_name.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// Every (name, entry) pair in name order.
    pub fn entries(&self) -> Vec<(String, Entry)> {
        self.by_name.read().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemExport;

    #[test]
    fn add_replaces_and_remove_reports() {
        let exports = Exports::new();
        exports.add("b", "first", Arc::new(MemExport::new(512)));
        exports.add("a", "", Arc::new(MemExport::new(512)));
        exports.add("b", "second", Arc::new(MemExport::new(1024)));
        assert_eq!(exports.names(), vec!["a", "b"]);
        let b = exports.get("b").map(|e| (e.description, e.export.size()));
        assert_eq!(b, Some(("second".to_owned(), 1024)));
        assert!(exports.remove("a"));
        assert!(!exports.remove("a"));
        assert!(exports.get("a").is_none());
    }

    #[test]
    fn io_errors_map_to_spec_errnos() {
        let f = |k| IoFailure::from(io::Error::from(k)).errno;
        assert_eq!(f(io::ErrorKind::StorageFull), Errno::NoSpc);
        assert_eq!(f(io::ErrorKind::FileTooLarge), Errno::NoSpc);
        assert_eq!(f(io::ErrorKind::PermissionDenied), Errno::Perm);
        assert_eq!(f(io::ErrorKind::Other), Errno::Io);
        assert_eq!(Errno::Shutdown.code(), 108);
    }
}
