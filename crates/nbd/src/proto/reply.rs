//! Transmission replies: the simple reply and structured reply chunks. Headers come as
//! fixed arrays so a READ reply can put its header in front of the data in one buffer and
//! go out in one write.

use super::consts::*;
use super::wire::{clip, len32, Put};

/// Length of an `NBD_REPLY_TYPE_OFFSET_DATA` chunk header including its offset field.
pub const OFFSET_DATA_HEADER_LEN: usize = CHUNK_HEADER_LEN + 8;

/// A simple reply header; for a successful READ the data follows.
pub fn simple(handle: u64, error: u32) -> [u8; SIMPLE_REPLY_LEN] {
    let mut b = [0u8; SIMPLE_REPLY_LEN];
    b[..4].copy_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
    b[4..8].copy_from_slice(&error.to_be_bytes());
    b[8..16].copy_from_slice(&handle.to_be_bytes());
    b
}

/// A structured chunk header announcing `len` payload bytes.
pub fn chunk(handle: u64, kind: u16, done: bool, len: u32) -> [u8; CHUNK_HEADER_LEN] {
    let mut b = [0u8; CHUNK_HEADER_LEN];
    b[..4].copy_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
    b[4..6].copy_from_slice(&(if done { REPLY_FLAG_DONE } else { 0 }).to_be_bytes());
    b[6..8].copy_from_slice(&kind.to_be_bytes());
    b[8..16].copy_from_slice(&handle.to_be_bytes());
    b[16..20].copy_from_slice(&len.to_be_bytes());
    b
}

/// `NBD_REPLY_TYPE_NONE` with the done flag: a successful reply with no content.
pub fn none(handle: u64) -> [u8; CHUNK_HEADER_LEN] {
    chunk(handle, REPLY_TYPE_NONE, true, 0)
}

/// The header of an `NBD_REPLY_TYPE_OFFSET_DATA` chunk carrying `data_len` bytes read at
/// `offset`; the caller bounds `data_len` to `u32::MAX - 8`.
pub fn offset_data_header(handle: u64, offset: u64, data_len: u32, done: bool) -> [u8; OFFSET_DATA_HEADER_LEN] {
    let mut b = [0u8; OFFSET_DATA_HEADER_LEN];
    b[..CHUNK_HEADER_LEN].copy_from_slice(&chunk(handle, REPLY_TYPE_OFFSET_DATA, done, data_len.saturating_add(8)));
    b[CHUNK_HEADER_LEN..].copy_from_slice(&offset.to_be_bytes());
    b
}

/// An `NBD_REPLY_TYPE_OFFSET_HOLE` chunk: `len` zero bytes at `offset`.
pub fn offset_hole(handle: u64, offset: u64, len: u32, done: bool) -> [u8; CHUNK_HEADER_LEN + 12] {
    let mut b = [0u8; CHUNK_HEADER_LEN + 12];
    b[..CHUNK_HEADER_LEN].copy_from_slice(&chunk(handle, REPLY_TYPE_OFFSET_HOLE, done, 12));
    b[CHUNK_HEADER_LEN..CHUNK_HEADER_LEN + 8].copy_from_slice(&offset.to_be_bytes());
    b[CHUNK_HEADER_LEN + 8..].copy_from_slice(&len.to_be_bytes());
    b
}

/// Appends an `NBD_REPLY_TYPE_ERROR` chunk (final) with a message for the user.
pub fn error(out: &mut Vec<u8>, handle: u64, errno: u32, message: &str) {
    let msg = clip(message, MAX_STRING).as_bytes();
    out.extend_from_slice(&chunk(handle, REPLY_TYPE_ERROR, true, len32(6 + msg.len())));
    out.put_u32(errno);
    out.put_u16(msg.len() as u16);
    out.extend_from_slice(msg);
}

/// Appends an `NBD_REPLY_TYPE_ERROR_OFFSET` chunk naming where the request failed.
pub fn error_offset(out: &mut Vec<u8>, handle: u64, errno: u32, message: &str, offset: u64, done: bool) {
    let msg = clip(message, MAX_STRING).as_bytes();
    out.extend_from_slice(&chunk(handle, REPLY_TYPE_ERROR_OFFSET, done, len32(14 + msg.len())));
    out.put_u32(errno);
    out.put_u16(msg.len() as u16);
    out.extend_from_slice(msg);
    out.put_u64(offset);
}

/// Appends an `NBD_REPLY_TYPE_BLOCK_STATUS` chunk: the extents (length, flags) of one
/// context; the caller gives at least one extent, each of nonzero length.
pub fn block_status(out: &mut Vec<u8>, handle: u64, context_id: u32, extents: &[(u32, u32)], done: bool) {
    out.extend_from_slice(&chunk(handle, REPLY_TYPE_BLOCK_STATUS, done, len32(4 + 8 * extents.len())));
    out.put_u32(context_id);
    for &(len, flags) in extents {
        out.put_u32(len);
        out.put_u32(flags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(simple(0x0102, 22), [0x67, 0x44, 0x66, 0x98, 0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 1, 2]);
        let n = none(5);
        assert_eq!(&n[..8], &[0x66, 0x8e, 0x33, 0xef, 0, 1, 0, 0]);
        assert_eq!(&n[16..], &[0, 0, 0, 0]);
        let d = offset_data_header(1, 4096, 512, true);
        assert_eq!(&d[16..20], &520u32.to_be_bytes());
        assert_eq!(&d[20..], &4096u64.to_be_bytes());
        let h = offset_hole(1, 8, 1024, false);
        assert_eq!(&h[4..8], &[0, 0, 0, 2]);
        assert_eq!(&h[28..], &1024u32.to_be_bytes());
    }

    #[test]
    fn error_chunks_carry_clipped_messages() {
        let mut out = Vec::new();
        error(&mut out, 3, EIO, "disk on fire");
        assert_eq!(&out[6..8], &REPLY_TYPE_ERROR.to_be_bytes());
        assert_eq!(&out[16..20], &(6 + 12u32).to_be_bytes());
        assert_eq!(&out[20..24], &EIO.to_be_bytes());
        assert_eq!(&out[26..], b"disk on fire");
        let mut long = Vec::new();
        error_offset(&mut long, 3, EIO, &"x".repeat(10_000), 77, true);
        assert_eq!(long.len(), CHUNK_HEADER_LEN + 14 + MAX_STRING);
        assert_eq!(&long[long.len() - 8..], &77u64.to_be_bytes());
    }

    #[test]
    fn block_status_chunk() {
        let mut out = Vec::new();
        block_status(&mut out, 9, 2, &[(512, 3), (1024, 0)], true);
        assert_eq!(out.len(), CHUNK_HEADER_LEN + 4 + 16);
        assert_eq!(&out[16..20], &20u32.to_be_bytes());
        assert_eq!(&out[20..24], &2u32.to_be_bytes());
        assert_eq!(&out[24..32], &[0, 0, 2, 0, 0, 0, 0, 3]);
    }
}
