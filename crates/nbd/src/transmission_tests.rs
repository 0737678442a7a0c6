use super::*;
use crate::export::Export;
use crate::proto::consts::*;
use crate::proto::handshake::MetaContext;
use crate::testing::{MemExport, CHUNK};
use std::sync::Arc;

fn negotiated(structured: bool, contexts: &[&str]) -> (Negotiated, Arc<MemExport>) {
    let disk = Arc::new(MemExport::new(8 * CHUNK));
    disk.add_dirty_bitmap("b");
    let contexts = contexts.iter().enumerate().map(|(i, c)| MetaContext { id: 10 + i as u32, name: (*c).to_owned() }).collect();
    let n = Negotiated {
        name: "d".into(),
        export: disk.clone(),
        size: 8 * CHUNK,
        flags: FLAG_HAS_FLAGS,
        structured,
        contexts,
        max_request: 1 << 20,
    };
    (n, disk)
}

fn req(command: Command, offset: u64, length: u32) -> Request {
    Request { handle: 0xfeed, offset, length, command }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

#[test]
fn simple_read_is_header_then_data() {
    let (n, disk) = negotiated(false, &[]);
    disk.write(100, b"hello", false).expect("write");
    // A reused buffer with stale contents must not leak into the reply.
    let mut out = vec![0xee; 4096];
    assert!(execute(&n, &req(Command::Read { df: false }, 100, 5), &[], &mut out).is_none());
    assert_eq!(&out[..], &[&reply::simple(0xfeed, 0)[..], b"hello"].concat()[..]);
}

#[test]
fn structured_read_data_and_hole_chunks() {
    let (n, disk) = negotiated(true, &[]);
    disk.write(0, &[1; 512], false).expect("write");
    let mut out = Vec::new();
    execute(&n, &req(Command::Read { df: false }, 0, 1024), &[], &mut out);
    assert_eq!(be32(&out, 0), STRUCTURED_REPLY_MAGIC);
    assert_eq!(&out[4..8], &[0, 1, 0, REPLY_TYPE_OFFSET_DATA as u8]);
    assert_eq!(be32(&out, 16), 1024 + 8);
    assert_eq!(out.len(), reply::OFFSET_DATA_HEADER_LEN + 1024);
    // All zeroes: one hole chunk instead of the data.
    execute(&n, &req(Command::Read { df: false }, CHUNK, 4096), &[], &mut out);
    assert_eq!(out, reply::offset_hole(0xfeed, CHUNK, 4096, true));
    // DF asks for data, zeroes included.
    execute(&n, &req(Command::Read { df: true }, CHUNK, 4096), &[], &mut out);
    assert_eq!(out.len(), reply::OFFSET_DATA_HEADER_LEN + 4096);
    execute(&n, &req(Command::Read { df: false }, 0, 0), &[], &mut out);
    assert_eq!(out, reply::none(0xfeed));
}

#[test]
fn failures_become_error_replies() {
    let (n, disk) = negotiated(true, &[]);
    disk.set_fault(Some(Errno::Io));
    let mut out = Vec::new();
    let f = execute(&n, &req(Command::Read { df: false }, 0, 512), &[], &mut out);
    assert_eq!(f.map(|f| f.errno), Some(Errno::Io));
    assert_eq!(&out[6..8], &REPLY_TYPE_ERROR.to_be_bytes());
    assert_eq!(be32(&out, 20), EIO);
    let (plain, disk) = negotiated(false, &[]);
    disk.set_fault(Some(Errno::NoSpc));
    execute(&plain, &req(Command::Write { fua: false }, 0, 3), b"abc", &mut out);
    assert_eq!(out, reply::simple(0xfeed, ENOSPC));
    execute(&plain, &req(Command::Read { df: false }, 0, 3), b"", &mut out);
    assert_eq!(out, reply::simple(0xfeed, ENOSPC), "no data after a simple error reply");
}

#[test]
fn writes_zeroes_trims_and_flushes_reach_the_export() {
    let (n, disk) = negotiated(false, &[]);
    let mut out = Vec::new();
    execute(&n, &req(Command::Write { fua: true }, CHUNK, 3), b"xyz", &mut out);
    assert_eq!(out, reply::simple(0xfeed, 0));
    assert!(disk.allocated(CHUNK, 1));
    execute(&n, &req(Command::WriteZeroes { may_trim: true, fua: false, fast: false }, CHUNK, CHUNK as u32), &[], &mut out);
    assert!(!disk.allocated(CHUNK, 1));
    execute(&n, &req(Command::Write { fua: false }, 0, 3), b"xyz", &mut out);
    execute(&n, &req(Command::Trim { fua: false }, 0, CHUNK as u32), &[], &mut out);
    assert!(!disk.allocated(0, 1));
    execute(&n, &req(Command::Flush, 0, 0), &[], &mut out);
    assert_eq!(disk.flush_count(), 1);
    execute(&n, &req(Command::Cache, 0, 10), &[], &mut out);
    assert_eq!(out, reply::simple(0xfeed, 0));
}

#[test]
fn fast_zero_refused_by_default() {
    struct Slow(MemExport);
    impl Export for Slow {
        fn size(&self) -> u64 {
            self.0.size()
        }
        fn read_only(&self) -> bool {
            false
        }
        fn read(&self, o: u64, b: &mut [u8]) -> Result<(), IoFailure> {
            self.0.read(o, b)
        }
        fn write(&self, o: u64, d: &[u8], f: bool) -> Result<(), IoFailure> {
            self.0.write(o, d, f)
        }
        fn flush(&self) -> Result<(), IoFailure> {
            Ok(())
        }
        fn trim(&self, _: u64, _: u64, _: bool) -> Result<(), IoFailure> {
            Ok(())
        }
        fn write_zeroes(&self, o: u64, l: u64, t: bool, f: bool) -> Result<(), IoFailure> {
            self.0.write_zeroes(o, l, t, f)
        }
        fn block_status(&self, _: &str, _: u64, _: u64) -> Result<Vec<Extent>, IoFailure> {
            Ok(vec![])
        }
    }
    let (mut n, _) = negotiated(false, &[]);
    n.export = Arc::new(Slow(MemExport::new(8 * CHUNK)));
    let mut out = Vec::new();
    let f = execute(&n, &req(Command::WriteZeroes { may_trim: true, fua: false, fast: true }, 0, 512), &[], &mut out);
    assert_eq!(f.map(|f| f.errno), Some(Errno::NotSup));
    assert_eq!(out, reply::simple(0xfeed, ENOTSUP));
}

/// A parsed block-status chunk: flags, context id, (length, flags) descriptors.
type Chunk = (u16, u32, Vec<(u32, u32)>);

fn chunks(out: &[u8]) -> Vec<Chunk> {
    let mut v = Vec::new();
    let mut at = 0;
    while at < out.len() {
        let flags = u16::from_be_bytes([out[at + 4], out[at + 5]]);
        let len = be32(out, at + 16) as usize;
        let id = be32(out, at + 20);
        let extents = (0..(len - 4) / 8).map(|i| (be32(out, at + 24 + 8 * i), be32(out, at + 28 + 8 * i))).collect();
        v.push((flags, id, extents));
        at += CHUNK_HEADER_LEN + len;
    }
    v
}

#[test]
fn block_status_one_chunk_per_context() {
    let (n, disk) = negotiated(true, &[BASE_ALLOCATION, "qemu:dirty-bitmap:b"]);
    disk.write(2 * CHUNK, &[1; 10], false).expect("write");
    let mut out = Vec::new();
    assert!(execute(&n, &req(Command::BlockStatus { req_one: false }, 0, 4 * CHUNK as u32), &[], &mut out).is_none());
    let c = chunks(&out);
    let (hole, zero) = (STATE_HOLE | STATE_ZERO, 0);
    let k = CHUNK as u32;
    assert_eq!(c[0], (0, 10, vec![(2 * k, hole), (k, zero), (k, hole)]));
    assert_eq!(c[1], (REPLY_FLAG_DONE, 11, vec![(2 * k, 0), (k, STATE_DIRTY), (k, 0)]));
}

#[test]
fn block_status_req_one() {
    let (n, _) = negotiated(true, &[BASE_ALLOCATION, "qemu:dirty-bitmap:b"]);
    let mut out = Vec::new();
    execute(&n, &req(Command::BlockStatus { req_one: true }, 100, 1000), &[], &mut out);
    let c = chunks(&out);
    assert_eq!(c.len(), 2);
    assert!(c.iter().all(|(_, _, e)| e.len() == 1 && e[0].0 == 1000));
}

#[test]
fn clamping_extents() {
    let e = |len, flags| Extent { len, flags };
    // Zero-length dropped, stopped once covered, nothing past the end of the export.
    let got = clamp_extents(&[e(0, 1), e(100, 1), e(1000, 2), e(50, 3)], 0, 500, 10_000, false);
    assert_eq!(got, Some(vec![(100, 1), (1000, 2)]));
    let got = clamp_extents(&[e(u64::MAX, 0)], 9_000, 500, 10_000, false);
    assert_eq!(got, Some(vec![(1000, 0)]));
    // Huge extents are split into aligned 32-bit pieces.
    let got = clamp_extents(&[e(10 << 32, 0)], 0, u32::MAX, u64::MAX, false);
    assert_eq!(got, Some(vec![(0xffff_f000, 0), (0xffff_f000, 0)]));
    assert_eq!(clamp_extents(&[e(10 << 32, 0)], 0, 77, u64::MAX, true), Some(vec![(77, 0)]));
    assert_eq!(clamp_extents(&[], 0, 1, 10, false), None);
    assert_eq!(clamp_extents(&[e(0, 0)], 0, 1, 10, false), None);
    let many = vec![e(1, 0); MAX_EXTENTS + 10];
    assert_eq!(clamp_extents(&many, 0, u32::MAX, u64::MAX, false).map(|v| v.len()), Some(MAX_EXTENTS));
}

#[test]
fn block_status_errors() {
    let (n, disk) = negotiated(true, &[BASE_ALLOCATION]);
    disk.set_fault(Some(Errno::Io));
    let mut out = Vec::new();
    assert!(execute(&n, &req(Command::BlockStatus { req_one: false }, 0, 512), &[], &mut out).is_some());
    assert_eq!(&out[6..8], &REPLY_TYPE_ERROR.to_be_bytes());
    assert_eq!(&out[4..6], &REPLY_FLAG_DONE.to_be_bytes());
}
