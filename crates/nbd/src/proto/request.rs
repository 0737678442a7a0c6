//! Transmission requests: the 28-byte header, and the decision what to do with it, made
//! from the header alone so that nothing is allocated or read for a request that will be
//! refused (a WRITE's payload is read only after its length has been checked).

use super::consts::*;
use super::handshake::Negotiated;
use super::wire::Cursor;
use crate::export::Errno;

/// A request header as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Command flags.
    pub flags: u16,
    /// Command type.
    pub kind: u16,
    /// Opaque value echoed in the reply.
    pub handle: u64,
    /// Byte offset.
    pub offset: u64,
    /// Byte count (for a WRITE, the payload that follows).
    pub length: u32,
}

/// Parses a header; the error is the bad magic, after which the stream cannot be trusted.
pub fn parse_header(bytes: &[u8; REQUEST_HEADER_LEN]) -> Result<Header, u32> {
    let mut c = Cursor::new(bytes);
    let magic = c.u32().unwrap_or(0);
    if magic != REQUEST_MAGIC {
        return Err(magic);
    }
    Ok(Header {
        flags: c.u16().unwrap_or(0),
        kind: c.u16().unwrap_or(0),
        handle: c.u64().unwrap_or(0),
        offset: c.u64().unwrap_or(0),
        length: c.u32().unwrap_or(0),
    })
}

/// A validated command with its flags decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Read; `df`: send at most one content chunk.
    Read {
        /// NBD_CMD_FLAG_DF.
        df: bool,
    },
    /// Write the payload that follows.
    Write {
        /// Durable before the reply.
        fua: bool,
    },
    /// Make completed writes durable.
    Flush,
    /// Discard the range.
    Trim {
        /// Durable before the reply.
        fua: bool,
    },
    /// Prefetch the range.
    Cache,
    /// Zero the range.
    WriteZeroes {
        /// No NBD_CMD_FLAG_NO_HOLE: a hole may be punched.
        may_trim: bool,
        /// Durable before the reply.
        fua: bool,
        /// NBD_CMD_FLAG_FAST_ZERO: fail with ENOTSUP rather than be slow.
        fast: bool,
    },
    /// Report extents of every selected context.
    BlockStatus {
        /// NBD_CMD_FLAG_REQ_ONE: one extent per context, within the requested length.
        req_one: bool,
    },
}

/// A request that passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Echoed in the reply.
    pub handle: u64,
    /// Byte offset, with `offset + length` within the export.
    pub offset: u64,
    /// Byte count.
    pub length: u32,
    /// What to do.
    pub command: Command,
}

/// What the server does with a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Execute it; a `Write` first reads `length` payload bytes.
    Execute(Request),
    /// Answer with an error; first skip `discard` payload bytes (a refused WRITE's data).
    Reject {
        /// Echoed in the reply.
        handle: u64,
        /// The error.
        errno: Errno,
        /// Why, for the structured error message.
        message: &'static str,
        /// Payload bytes to read and drop before the next header.
        discard: u32,
    },
    /// NBD_CMD_DISC: finish what is in flight, then close.
    Disconnect,
    /// Close at once: the client broke a MUST and the stream cannot continue safely.
    Fatal(String),
}

/// Checks a header against what was negotiated. Oversize WRITEs are fatal: their payload
/// would have to be read (the stream has no other way to resync), the client agreed to
/// the advertised maximum block size, and the spec allows a hard disconnect for payloads
/// deemed a denial of service. Every other refusal is an error reply and the connection
/// goes on.
pub fn decide(h: &Header, n: &Negotiated) -> Decision {
    let reject = |errno, message, discard| Decision::Reject { handle: h.handle, errno, message, discard };
    let fua = h.flags & CMD_FLAG_FUA != 0;
    let (command, allowed) = match h.kind {
        CMD_DISC => return Decision::Disconnect,
        CMD_READ => (Command::Read { df: h.flags & CMD_FLAG_DF != 0 }, if n.structured { CMD_FLAG_DF } else { 0 }),
        CMD_WRITE => (Command::Write { fua }, 0),
        CMD_FLUSH => (Command::Flush, 0),
        CMD_TRIM => (Command::Trim { fua }, 0),
        CMD_CACHE => (Command::Cache, 0),
        CMD_WRITE_ZEROES => {
            let may_trim = h.flags & CMD_FLAG_NO_HOLE == 0;
            let fast = h.flags & CMD_FLAG_FAST_ZERO != 0;
            (Command::WriteZeroes { may_trim, fua, fast }, CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO)
        }
        CMD_BLOCK_STATUS => (Command::BlockStatus { req_one: h.flags & CMD_FLAG_REQ_ONE != 0 }, CMD_FLAG_REQ_ONE),
        _ => return reject(Errno::Inval, "unknown command", 0),
    };
    let payload = if h.kind == CMD_WRITE { h.length } else { 0 };
    if payload > n.max_request {
        return Decision::Fatal(format!("write of {} bytes exceeds the maximum block size of {}", h.length, n.max_request));
    }
    // FUA is valid on every command once advertised (the spec: clients set it on reads too).
    if h.flags & !(allowed | CMD_FLAG_FUA) != 0 {
        return reject(Errno::Inval, "command flag not valid for this command", payload);
    }
    let writes = matches!(command, Command::Write { .. } | Command::Trim { .. } | Command::WriteZeroes { .. });
    // Asked again per request, not only at negotiation: an export made read-only while
    // served (a frozen split) refuses writes from clients that connected before.
    if writes && (n.read_only() || n.export.read_only()) {
        return reject(Errno::Perm, "export is read-only", payload);
    }
    match command {
        Command::Flush if h.offset != 0 || h.length != 0 => return reject(Errno::Inval, "flush with nonzero offset or length", 0),
        Command::Flush => {}
        Command::Read { .. } if h.length > n.max_request => return reject(Errno::Inval, "read longer than the maximum block size", 0),
        Command::Read { df: true } if u64::from(h.length) + 8 > u64::from(u32::MAX) => {
            return reject(Errno::Overflow, "read too long for one chunk", 0)
        }
        Command::BlockStatus { .. } if n.contexts.is_empty() => return reject(Errno::Inval, "no metadata context negotiated", 0),
        Command::BlockStatus { .. } if h.length == 0 => return reject(Errno::Inval, "block status of zero bytes", 0),
        _ => {}
    }
    let in_range = h.offset.checked_add(u64::from(h.length)).is_some_and(|end| end <= n.size);
    if !in_range && command != Command::Flush {
        let errno = if matches!(command, Command::Write { .. } | Command::WriteZeroes { .. }) { Errno::NoSpc } else { Errno::Inval };
        return reject(errno, "range passes the end of the export", payload);
    }
    Decision::Execute(Request { handle: h.handle, offset: h.offset, length: h.length, command })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::handshake::MetaContext;
    use crate::testing::MemExport;
    use std::sync::Arc;

    fn negotiated(read_only: bool, structured: bool, contexts: bool) -> Negotiated {
        let export = Arc::new(MemExport::new(1 << 20));
        export.set_read_only(read_only);
        let contexts = if contexts { vec![MetaContext { id: 1, name: BASE_ALLOCATION.into() }] } else { vec![] };
        let flags = FLAG_HAS_FLAGS | if read_only { FLAG_READ_ONLY } else { 0 };
        Negotiated { name: "d".into(), export, size: 1 << 20, flags, structured, contexts, max_request: 65536 }
    }

    fn header(kind: u16, flags: u16, offset: u64, length: u32) -> Header {
        Header { flags, kind, handle: 7, offset, length }
    }

    fn errno(d: Decision) -> Option<(Errno, u32)> {
        match d {
            Decision::Reject { errno, discard, handle: 7, .. } => Some((errno, discard)),
            _ => None,
        }
    }

    #[test]
    fn header_round_trip_and_bad_magic() {
        let mut b = [0u8; REQUEST_HEADER_LEN];
        b[..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
        b[4..6].copy_from_slice(&CMD_FLAG_FUA.to_be_bytes());
        b[6..8].copy_from_slice(&CMD_WRITE.to_be_bytes());
        b[8..16].copy_from_slice(&9u64.to_be_bytes());
        b[16..24].copy_from_slice(&4096u64.to_be_bytes());
        b[24..28].copy_from_slice(&512u32.to_be_bytes());
        assert_eq!(parse_header(&b), Ok(Header { flags: 1, kind: 1, handle: 9, offset: 4096, length: 512 }));
        b[0] = 0;
        assert_eq!(parse_header(&b), Err(0x0060_9513));
    }

    #[test]
    fn valid_requests_execute() {
        let n = negotiated(false, true, true);
        let d = decide(&header(CMD_READ, CMD_FLAG_DF, 0, 4096), &n);
        assert_eq!(d, Decision::Execute(Request { handle: 7, offset: 0, length: 4096, command: Command::Read { df: true } }));
        let d = decide(&header(CMD_WRITE_ZEROES, CMD_FLAG_NO_HOLE | CMD_FLAG_FUA, 0, 1 << 20), &n);
        let zero = Command::WriteZeroes { may_trim: false, fua: true, fast: false };
        assert!(matches!(d, Decision::Execute(Request { command, .. }) if command == zero));
        // Trim and zero lengths are not payloads: no maximum block size applies.
        assert!(matches!(decide(&header(CMD_TRIM, 0, 0, 1 << 20), &n), Decision::Execute(_)));
        assert!(matches!(decide(&header(CMD_BLOCK_STATUS, CMD_FLAG_REQ_ONE, 0, 1 << 20), &n), Decision::Execute(_)));
        assert!(matches!(decide(&header(CMD_FLUSH, CMD_FLAG_FUA, 0, 0), &n), Decision::Execute(_)));
        assert_eq!(decide(&header(CMD_DISC, 0xffff, 5, 5), &n), Decision::Disconnect);
    }

    #[test]
    fn ranges_and_sizes() {
        let n = negotiated(false, false, false);
        assert_eq!(errno(decide(&header(CMD_READ, 0, 1 << 20, 1), &n)), Some((Errno::Inval, 0)));
        assert_eq!(errno(decide(&header(CMD_WRITE, 0, (1 << 20) - 1, 2), &n)), Some((Errno::NoSpc, 2)));
        assert_eq!(errno(decide(&header(CMD_WRITE_ZEROES, 0, 1 << 20, 1), &n)), Some((Errno::NoSpc, 0)));
        assert_eq!(errno(decide(&header(CMD_TRIM, 0, u64::MAX, 2), &n)), Some((Errno::Inval, 0)));
        assert_eq!(errno(decide(&header(CMD_CACHE, 0, u64::MAX, 1), &n)), Some((Errno::Inval, 0)));
        assert_eq!(errno(decide(&header(CMD_READ, 0, 0, 65537), &n)), Some((Errno::Inval, 0)));
        assert!(matches!(decide(&header(CMD_READ, 0, 0, 65536), &n), Decision::Execute(_)));
        assert!(matches!(decide(&header(CMD_WRITE, 0, 0, 65537), &n), Decision::Fatal(_)));
        // Oversize is fatal even when the offset is also bad: the payload length decides.
        assert!(matches!(decide(&header(CMD_WRITE, 0, u64::MAX, u32::MAX), &n), Decision::Fatal(_)));
        assert_eq!(errno(decide(&header(CMD_FLUSH, 0, 1, 0), &n)), Some((Errno::Inval, 0)));
        // Zero-length requests at the very end are in range.
        assert!(matches!(decide(&header(CMD_READ, 0, 1 << 20, 0), &n), Decision::Execute(_)));
    }

    #[test]
    fn flags_and_negotiation() {
        let plain = negotiated(false, false, false);
        assert_eq!(errno(decide(&header(CMD_READ, CMD_FLAG_DF, 0, 1), &plain)), Some((Errno::Inval, 0)));
        assert_eq!(errno(decide(&header(CMD_WRITE, CMD_FLAG_REQ_ONE, 0, 8), &plain)), Some((Errno::Inval, 8)));
        assert_eq!(errno(decide(&header(CMD_READ, 1 << 9, 0, 1), &plain)), Some((Errno::Inval, 0)));
        assert_eq!(errno(decide(&header(CMD_BLOCK_STATUS, 0, 0, 1), &plain)), Some((Errno::Inval, 0)));
        assert_eq!(errno(decide(&header(99, 0, 0, 1), &plain)), Some((Errno::Inval, 0)));
        let with_ctx = negotiated(false, true, true);
        assert_eq!(errno(decide(&header(CMD_BLOCK_STATUS, 0, 0, 0), &with_ctx)), Some((Errno::Inval, 0)));
        assert_eq!(errno(decide(&header(CMD_BLOCK_STATUS, CMD_FLAG_DF, 0, 1), &with_ctx)), Some((Errno::Inval, 0)));
        let ro = negotiated(true, false, false);
        assert_eq!(errno(decide(&header(CMD_WRITE, 0, 0, 16), &ro)), Some((Errno::Perm, 16)));
        assert_eq!(errno(decide(&header(CMD_TRIM, 0, 0, 16), &ro)), Some((Errno::Perm, 0)));
        assert_eq!(errno(decide(&header(CMD_WRITE_ZEROES, 0, 0, 16), &ro)), Some((Errno::Perm, 0)));
        assert!(matches!(decide(&header(CMD_READ, 0, 0, 16), &ro), Decision::Execute(_)));
    }
}
