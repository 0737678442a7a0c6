//! What a validated request does to an export, and the reply bytes it produces. No
//! sockets: the server's workers and the fuzzing entry points both call [`execute`].

use crate::export::{Errno, Extent, IoFailure};
use crate::proto::consts::{CHUNK_HEADER_LEN, SIMPLE_REPLY_LEN};
use crate::proto::handshake::Negotiated;
use crate::proto::reply;
use crate::proto::request::{Command, Request};

/// Most descriptors in one block-status chunk. The spec lets a server answer a prefix;
/// this bounds the reply (512 KiB) whatever the export returns.
pub const MAX_EXTENTS: usize = 1 << 16;
/// Longest descriptor: the 32-bit length field, rounded down to 4 KiB so split extents stay aligned.
const MAX_EXTENT_LEN: u64 = 0xffff_f000;

/// Runs `req` against the negotiated export and leaves the complete reply in `out`
/// (whatever `out` held before is discarded; its capacity is reused). `payload` is a
/// WRITE's data. Returns the export's failure, if any, for logging.
pub fn execute(n: &Negotiated, req: &Request, payload: &[u8], out: &mut Vec<u8>) -> Option<IoFailure> {
    let result = match req.command {
        Command::Read { df } => return read(n, req, df, out),
        Command::BlockStatus { req_one } => return block_status(n, req, req_one, out),
        _ if req.length == 0 && req.command != Command::Flush => Ok(()),
        Command::Write { fua } => n.export.write(req.offset, payload.get(..req.length as usize).unwrap_or(payload), fua),
        Command::Flush => n.export.flush(),
        Command::Trim { fua } => n.export.trim(req.offset, u64::from(req.length), fua),
        Command::Cache => n.export.cache(req.offset, u64::from(req.length)),
        Command::WriteZeroes { may_trim, fua, fast: true } => n.export.fast_zero(req.offset, u64::from(req.length), may_trim, fua),
        Command::WriteZeroes { may_trim, fua, fast: false } => n.export.write_zeroes(req.offset, u64::from(req.length), may_trim, fua),
    };
    out.clear();
    match result {
        Ok(()) => out.extend_from_slice(&reply::simple(req.handle, 0)),
        Err(ref f) => error_reply(n, req.handle, f, out),
    }
    result.err()
}

/// Appends the reply for a request refused before execution (or failed during it).
pub fn error_reply(n: &Negotiated, handle: u64, f: &IoFailure, out: &mut Vec<u8>) {
    if n.structured {
        reply::error(out, handle, f.errno.code(), &f.message);
    } else {
        out.extend_from_slice(&reply::simple(handle, f.errno.code()));
    }
}

/// Sizes `out` to `len` without zeroing what it already holds: every byte up to `len`
/// is overwritten before it is sent, so stale contents never reach a client.
fn size_to(out: &mut Vec<u8>, len: usize) {
    if out.len() >= len {
        out.truncate(len);
    } else {
        out.resize(len, 0);
    }
}

fn read(n: &Negotiated, req: &Request, df: bool, out: &mut Vec<u8>) -> Option<IoFailure> {
    let len = req.length as usize;
    if n.structured && len == 0 {
        out.clear();
        out.extend_from_slice(&reply::none(req.handle));
        return None;
    }
    // Header room first, so header and data leave in one write without a copy.
    let head = if n.structured { reply::OFFSET_DATA_HEADER_LEN } else { SIMPLE_REPLY_LEN };
    size_to(out, head + len);
    let result = match out.get_mut(head..) {
        Some(data) if len > 0 => n.export.read(req.offset, data),
        _ => Ok(()),
    };
    if let Err(f) = result {
        out.clear();
        error_reply(n, req.handle, &f, out);
        return Some(f);
    }
    if !n.structured {
        if let Some(h) = out.get_mut(..SIMPLE_REPLY_LEN) {
            h.copy_from_slice(&reply::simple(req.handle, 0));
        }
    } else if !df && out.get(head..).is_some_and(all_zero) {
        // A zero run costs 32 bytes on the wire instead of `len`; with DF the spec wants data.
        out.clear();
        out.extend_from_slice(&reply::offset_hole(req.handle, req.offset, req.length, true));
    } else if let Some(h) = out.get_mut(..head) {
        h.copy_from_slice(&reply::offset_data_header(req.handle, req.offset, req.length, true));
    }
    None
}

fn all_zero(data: &[u8]) -> bool {
    let (chunks, tail) = data.as_chunks::<16>();
    chunks.iter().all(|c| u128::from_ne_bytes(*c) == 0) && tail.iter().all(|&b| b == 0)
}

fn block_status(n: &Negotiated, req: &Request, req_one: bool, out: &mut Vec<u8>) -> Option<IoFailure> {
    out.clear();
    let last = n.contexts.len().saturating_sub(1);
    for (i, ctx) in n.contexts.iter().enumerate() {
        let listed = n.export.block_status(&ctx.name, req.offset, u64::from(req.length));
        let clamped = listed.and_then(|e| {
            clamp_extents(&e, req.offset, req.length, n.size, req_one)
                .ok_or_else(|| IoFailure::new(Errno::Io, format!("no extents for {}", ctx.name)))
        });
        match clamped {
            Ok(extents) => reply::block_status(out, req.handle, ctx.id, &extents, i == last),
            Err(f) => {
                // One error chunk for the whole reply: partial per-context success is not
                // something clients act on.
                out.clear();
                reply::error(out, req.handle, f.errno.code(), &f.message);
                return Some(f);
            }
        }
    }
    None
}

/// Turns an export's extents into wire descriptors for a request of `len` bytes at
/// `offset`: zero-length extents dropped, nothing past the export's end, lengths split to
/// fit 32 bits, stopped once the request is covered (the spec: only the last may reach
/// past it), and with `req_one` a single descriptor no longer than the request. `None`
/// when nothing usable remains.
pub fn clamp_extents(extents: &[Extent], offset: u64, len: u32, size: u64, req_one: bool) -> Option<Vec<(u32, u32)>> {
    let want = u64::from(len);
    let room = size.saturating_sub(offset);
    let mut out = Vec::new();
    let mut pos = 0u64;
    'outer: for e in extents {
        let mut left = e.len.min(room.saturating_sub(pos));
        while left > 0 {
            let mut piece = left.min(MAX_EXTENT_LEN);
            if req_one {
                piece = piece.min(want);
            }
            out.push((u32::try_from(piece).unwrap_or(u32::MAX), e.flags));
            pos += piece;
            left -= piece;
            if req_one || pos >= want || out.len() >= MAX_EXTENTS {
                break 'outer;
            }
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// Bytes a reply to `req` occupies at most, for accounting in-flight memory before it exists.
pub fn reply_size(n: &Negotiated, req: &Request) -> usize {
    match req.command {
        Command::Read { .. } => reply::OFFSET_DATA_HEADER_LEN + req.length as usize,
        Command::BlockStatus { .. } => n.contexts.len() * (CHUNK_HEADER_LEN + 4 + 8 * 64),
        _ => CHUNK_HEADER_LEN + 64,
    }
}

#[cfg(test)]
#[path = "transmission_tests.rs"]
mod tests;
