//! A hand-written NBD client over a raw socket: it sends exactly what a test says, hostile
//! or not, and parses what comes back.

use plexus_nbd::proto::consts::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One option reply.
#[derive(Debug)]
pub struct OptReply {
    pub kind: u32,
    pub data: Vec<u8>,
}

/// One structured chunk.
#[derive(Debug)]
pub struct Chunk {
    pub flags: u16,
    pub kind: u16,
    pub handle: u64,
    pub payload: Vec<u8>,
}

/// A raw client past the greeting.
pub struct Raw {
    pub s: TcpStream,
}

impl Raw {
    /// Connects, checks the greeting and sends fixed-newstyle + no-zeroes client flags.
    pub fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut r = Raw { s };
        let mut greeting = [0u8; 18];
        r.s.read_exact(&mut greeting).expect("greeting");
        assert_eq!(&greeting[..16], b"NBDMAGICIHAVEOPT");
        r.send(&(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES).to_be_bytes());
        r
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("send");
    }

    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.s.read_exact(&mut v).expect("read");
        v
    }

    /// Whether the server has closed the connection (reads EOF or a reset).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.s.read(&mut b), Ok(0) | Err(_))
    }

    pub fn option(&mut self, option: u32, data: &[u8]) {
        let mut v = IHAVEOPT.to_be_bytes().to_vec();
        v.extend_from_slice(&option.to_be_bytes());
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        self.send(&v);
    }

    pub fn opt_reply(&mut self) -> OptReply {
        let h = self.read_n(20);
        assert_eq!(&h[..8], &REPLY_MAGIC.to_be_bytes());
        let kind = u32::from_be_bytes(h[12..16].try_into().expect("4"));
        let len = u32::from_be_bytes(h[16..20].try_into().expect("4")) as usize;
        OptReply { kind, data: self.read_n(len) }
    }

    /// Replies up to and including the final one (ACK or an error).
    pub fn opt_replies(&mut self) -> Vec<OptReply> {
        let mut v = Vec::new();
        loop {
            let r = self.opt_reply();
            let last = r.kind == REP_ACK || r.kind & REP_FLAG_ERROR != 0;
            v.push(r);
            if last {
                return v;
            }
        }
    }

    /// Negotiates structured replies and contexts if asked, then GO; returns (size, flags).
    pub fn go(&mut self, name: &str, structured: bool, contexts: &[&str]) -> (u64, u16) {
        if structured {
            self.option(OPT_STRUCTURED_REPLY, &[]);
            assert_eq!(self.opt_reply().kind, REP_ACK);
        }
        if !contexts.is_empty() {
            let mut d = (name.len() as u32).to_be_bytes().to_vec();
            d.extend_from_slice(name.as_bytes());
            d.extend_from_slice(&(contexts.len() as u32).to_be_bytes());
            for c in contexts {
                d.extend_from_slice(&(c.len() as u32).to_be_bytes());
                d.extend_from_slice(c.as_bytes());
            }
            self.option(OPT_SET_META_CONTEXT, &d);
            let r = self.opt_replies();
            assert_eq!(r.len(), contexts.len() + 1, "every context selected");
        }
        let mut d = (name.len() as u32).to_be_bytes().to_vec();
        d.extend_from_slice(name.as_bytes());
        d.extend_from_slice(&0u16.to_be_bytes());
        self.option(OPT_GO, &d);
        let mut size_flags = None;
        for r in self.opt_replies() {
            assert!(r.kind == REP_INFO || r.kind == REP_ACK, "GO failed: {r:?} {}", String::from_utf8_lossy(&r.data));
            if r.kind == REP_INFO && r.data[..2] == INFO_EXPORT.to_be_bytes() {
                let size = u64::from_be_bytes(r.data[2..10].try_into().expect("8"));
                let flags = u16::from_be_bytes(r.data[10..12].try_into().expect("2"));
                size_flags = Some((size, flags));
            }
        }
        size_flags.expect("NBD_INFO_EXPORT")
    }

    pub fn request(&mut self, flags: u16, kind: u16, handle: u64, offset: u64, length: u32, payload: &[u8]) {
        let mut v = Vec::with_capacity(28 + payload.len());
        v.extend_from_slice(&REQUEST_MAGIC.to_be_bytes());
        v.extend_from_slice(&flags.to_be_bytes());
        v.extend_from_slice(&kind.to_be_bytes());
        v.extend_from_slice(&handle.to_be_bytes());
        v.extend_from_slice(&offset.to_be_bytes());
        v.extend_from_slice(&length.to_be_bytes());
        v.extend_from_slice(payload);
        self.send(&v);
    }

    /// A simple reply: (error, handle).
    pub fn simple_reply(&mut self) -> (u32, u64) {
        let h = self.read_n(16);
        assert_eq!(&h[..4], &SIMPLE_REPLY_MAGIC.to_be_bytes(), "simple reply magic");
        (u32::from_be_bytes(h[4..8].try_into().expect("4")), u64::from_be_bytes(h[8..16].try_into().expect("8")))
    }

    pub fn chunk(&mut self) -> Chunk {
        let h = self.read_n(20);
        assert_eq!(&h[..4], &STRUCTURED_REPLY_MAGIC.to_be_bytes(), "structured reply magic");
        let len = u32::from_be_bytes(h[16..20].try_into().expect("4")) as usize;
        Chunk {
            flags: u16::from_be_bytes([h[4], h[5]]),
            kind: u16::from_be_bytes([h[6], h[7]]),
            handle: u64::from_be_bytes(h[8..16].try_into().expect("8")),
            payload: self.read_n(len),
        }
    }
}
