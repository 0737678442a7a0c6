//! Numbers of the NBD protocol (doc/proto.md of the NBD project), named as the spec names them.

/// `NBDMAGIC`, the first eight bytes the server sends.
pub const NBD_MAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`: the newstyle greeting's second magic and the prefix of every client option.
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
/// Prefix of every option reply.
pub const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// Prefix of every transmission request.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// Prefix of a simple reply.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
/// Prefix of a structured reply chunk.
pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

/// Handshake flag: the server speaks fixed newstyle.
pub const FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
/// Handshake flag: the server can leave out the 124 zero bytes after `NBD_OPT_EXPORT_NAME`.
pub const FLAG_NO_ZEROES: u16 = 1 << 1;
/// Client flag: the client speaks fixed newstyle.
pub const FLAG_C_FIXED_NEWSTYLE: u32 = 1 << 0;
/// Client flag: leave out the 124 zero bytes.
pub const FLAG_C_NO_ZEROES: u32 = 1 << 1;

/// Transmission flag that must always be set.
pub const FLAG_HAS_FLAGS: u16 = 1 << 0;
/// Transmission flag: writes will fail.
pub const FLAG_READ_ONLY: u16 = 1 << 1;
/// Transmission flag: `NBD_CMD_FLUSH` is understood.
pub const FLAG_SEND_FLUSH: u16 = 1 << 2;
/// Transmission flag: `NBD_CMD_FLAG_FUA` is understood.
pub const FLAG_SEND_FUA: u16 = 1 << 3;
/// Transmission flag: the export behaves like a spinning disk.
pub const FLAG_ROTATIONAL: u16 = 1 << 4;
/// Transmission flag: `NBD_CMD_TRIM` is understood.
pub const FLAG_SEND_TRIM: u16 = 1 << 5;
/// Transmission flag: `NBD_CMD_WRITE_ZEROES` and `NBD_CMD_FLAG_NO_HOLE` are understood.
pub const FLAG_SEND_WRITE_ZEROES: u16 = 1 << 6;
/// Transmission flag: `NBD_CMD_FLAG_DF` is understood (only with structured replies).
pub const FLAG_SEND_DF: u16 = 1 << 7;
/// Transmission flag: flush and FUA on one connection are visible on all of them.
pub const FLAG_CAN_MULTI_CONN: u16 = 1 << 8;
/// Transmission flag: `NBD_CMD_CACHE` is understood.
pub const FLAG_SEND_CACHE: u16 = 1 << 10;
/// Transmission flag: `NBD_CMD_FLAG_FAST_ZERO` is understood.
pub const FLAG_SEND_FAST_ZERO: u16 = 1 << 11;

/// Option: choose an export and enter transmission; cannot fail politely.
pub const OPT_EXPORT_NAME: u32 = 1;
/// Option: end the handshake.
pub const OPT_ABORT: u32 = 2;
/// Option: list the exports.
pub const OPT_LIST: u32 = 3;
/// Option: upgrade the connection to TLS.
pub const OPT_STARTTLS: u32 = 5;
/// Option: describe one export.
pub const OPT_INFO: u32 = 6;
/// Option: describe one export and enter transmission.
pub const OPT_GO: u32 = 7;
/// Option: use structured replies in transmission.
pub const OPT_STRUCTURED_REPLY: u32 = 8;
/// Option: list metadata contexts matching queries.
pub const OPT_LIST_META_CONTEXT: u32 = 9;
/// Option: select the metadata contexts `NBD_CMD_BLOCK_STATUS` reports.
pub const OPT_SET_META_CONTEXT: u32 = 10;
/// Option: 64-bit request and reply headers (not implemented here; answered with `NBD_REP_ERR_UNSUP`).
pub const OPT_EXTENDED_HEADERS: u32 = 11;

/// Option reply: success, or the end of a list.
pub const REP_ACK: u32 = 1;
/// Option reply: one export of `NBD_OPT_LIST`.
pub const REP_SERVER: u32 = 2;
/// Option reply: one piece of information about an export.
pub const REP_INFO: u32 = 3;
/// Option reply: one metadata context.
pub const REP_META_CONTEXT: u32 = 4;
/// Bit set in every error reply type.
pub const REP_FLAG_ERROR: u32 = 1 << 31;
/// Option reply error: the option is unknown.
pub const REP_ERR_UNSUP: u32 = REP_FLAG_ERROR | 1;
/// Option reply error: forbidden by policy.
pub const REP_ERR_POLICY: u32 = REP_FLAG_ERROR | 2;
/// Option reply error: malformed or out of place.
pub const REP_ERR_INVALID: u32 = REP_FLAG_ERROR | 3;
/// Option reply error: not available on this platform.
pub const REP_ERR_PLATFORM: u32 = REP_FLAG_ERROR | 4;
/// Option reply error: TLS must be started first.
pub const REP_ERR_TLS_REQD: u32 = REP_FLAG_ERROR | 5;
/// Option reply error: no such export.
pub const REP_ERR_UNKNOWN: u32 = REP_FLAG_ERROR | 6;
/// Option reply error: the server is shutting down.
pub const REP_ERR_SHUTDOWN: u32 = REP_FLAG_ERROR | 7;
/// Option reply error: the client must ask for block sizes.
pub const REP_ERR_BLOCK_SIZE_REQD: u32 = REP_FLAG_ERROR | 8;
/// Option reply error: the request or its answer is too large.
pub const REP_ERR_TOO_BIG: u32 = REP_FLAG_ERROR | 9;

/// Information type: size and transmission flags.
pub const INFO_EXPORT: u16 = 0;
/// Information type: canonical export name.
pub const INFO_NAME: u16 = 1;
/// Information type: human-readable description.
pub const INFO_DESCRIPTION: u16 = 2;
/// Information type: minimum, preferred and maximum block sizes.
pub const INFO_BLOCK_SIZE: u16 = 3;

/// Command: read.
pub const CMD_READ: u16 = 0;
/// Command: write; the payload follows the header.
pub const CMD_WRITE: u16 = 1;
/// Command: disconnect after finishing what is in flight; no reply.
pub const CMD_DISC: u16 = 2;
/// Command: make acknowledged writes durable.
pub const CMD_FLUSH: u16 = 3;
/// Command: the range is no longer needed.
pub const CMD_TRIM: u16 = 4;
/// Command: the client will soon access the range.
pub const CMD_CACHE: u16 = 5;
/// Command: make the range read as zeroes.
pub const CMD_WRITE_ZEROES: u16 = 6;
/// Command: report metadata (allocation, dirtiness) of the range.
pub const CMD_BLOCK_STATUS: u16 = 7;

/// Command flag: durable before the reply.
pub const CMD_FLAG_FUA: u16 = 1 << 0;
/// Command flag (write zeroes): do not punch a hole.
pub const CMD_FLAG_NO_HOLE: u16 = 1 << 1;
/// Command flag (read): at most one content chunk.
pub const CMD_FLAG_DF: u16 = 1 << 2;
/// Command flag (block status): one extent per context.
pub const CMD_FLAG_REQ_ONE: u16 = 1 << 3;
/// Command flag (write zeroes): fail with `NBD_ENOTSUP` unless zeroing is fast.
pub const CMD_FLAG_FAST_ZERO: u16 = 1 << 4;

/// Structured reply flag: the last chunk of a reply.
pub const REPLY_FLAG_DONE: u16 = 1 << 0;
/// Chunk type: no payload; ends a reply.
pub const REPLY_TYPE_NONE: u16 = 0;
/// Chunk type: data at an offset.
pub const REPLY_TYPE_OFFSET_DATA: u16 = 1;
/// Chunk type: a run of zeroes at an offset.
pub const REPLY_TYPE_OFFSET_HOLE: u16 = 2;
/// Chunk type: extents of one metadata context.
pub const REPLY_TYPE_BLOCK_STATUS: u16 = 5;
/// Chunk type: an error for the whole request.
pub const REPLY_TYPE_ERROR: u16 = (1 << 15) | 1;
/// Chunk type: an error at an offset.
pub const REPLY_TYPE_ERROR_OFFSET: u16 = (1 << 15) | 2;

/// Error value: operation not permitted.
pub const EPERM: u32 = 1;
/// Error value: input/output error.
pub const EIO: u32 = 5;
/// Error value: out of memory.
pub const ENOMEM: u32 = 12;
/// Error value: invalid argument.
pub const EINVAL: u32 = 22;
/// Error value: no space left.
pub const ENOSPC: u32 = 28;
/// Error value: value too large.
pub const EOVERFLOW: u32 = 75;
/// Error value: not supported.
pub const ENOTSUP: u32 = 95;
/// Error value: the server is shutting down.
pub const ESHUTDOWN: u32 = 108;

/// `base:allocation` flag: the extent is not allocated.
pub const STATE_HOLE: u32 = 1 << 0;
/// `base:allocation` flag: the extent reads as zeroes.
pub const STATE_ZERO: u32 = 1 << 1;
/// `qemu:dirty-bitmap:*` flag: the extent is dirty.
pub const STATE_DIRTY: u32 = 1 << 0;

/// The one metadata context the NBD spec defines.
pub const BASE_ALLOCATION: &str = "base:allocation";

/// Length of a transmission request header.
pub const REQUEST_HEADER_LEN: usize = 28;
/// Length of a simple reply header.
pub const SIMPLE_REPLY_LEN: usize = 16;
/// Length of a structured reply chunk header.
pub const CHUNK_HEADER_LEN: usize = 20;
/// Length of the server's opening greeting.
pub const GREETING_LEN: usize = 18;
/// Length of a client option header.
pub const OPTION_HEADER_LEN: usize = 16;
/// Longest string (export name, context name, message) the spec allows.
pub const MAX_STRING: usize = 4096;
