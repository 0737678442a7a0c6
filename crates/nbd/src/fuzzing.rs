//! Fuzzing entry points: arbitrary bytes through the handshake state machine and the
//! request path (parse, validate, execute against a [`MemExport`]), no sockets. They
//! check the invariants the server relies on and panic only when one breaks, so a panic
//! found by the fuzzer, or by the corpus replay in `tests/fuzz_corpus.rs`, is a bug.

use crate::export::{Exports, Peer};
use crate::proto::consts::*;
use crate::proto::handshake::{Handshake, HandshakeConfig, MetaContext, Negotiated, Step, TlsMode};
use crate::proto::request::{decide, parse_header, Command, Decision};
use crate::testing::MemExport;
use crate::transmission::{error_reply, execute};
use crate::IoFailure;
use std::sync::Arc;

/// Size of the fuzzing export: small, so writes cannot make the fuzzer slow.
const SIZE: u64 = 1 << 20;
/// Maximum request: large enough for multi-chunk reads, small enough to stay fast.
const MAX_REQUEST: u32 = 64 * 1024;

fn fixture() -> (Arc<Exports>, Arc<MemExport>) {
    let exports = Arc::new(Exports::new());
    let disk = Arc::new(MemExport::new(SIZE));
    disk.add_dirty_bitmap("b");
    exports.add("", "default", Arc::new(MemExport::new(4096)));
    exports.add("disk", "a disk", disk.clone());
    let ro = Arc::new(MemExport::new(SIZE));
    ro.set_read_only(true);
    exports.add("ro", "", ro);
    let refusing = Arc::new(MemExport::new(SIZE));
    refusing.set_refusal(Some("go away"));
    exports.add("no", "", refusing);
    (exports, disk)
}

/// Drives a handshake with `bytes`: the first byte picks the TLS mode and how many bytes
/// each `receive` gets; the rest is the client's stream. A completed negotiation
/// continues into the request path with the remaining bytes.
pub fn feed_handshake(bytes: &[u8]) {
    let Some((&mode, mut input)) = bytes.split_first() else { return };
    let tls = match mode % 3 {
        0 => TlsMode::Off,
        1 => TlsMode::Optional,
        _ => TlsMode::Required,
    };
    let piece = usize::from(mode >> 2) + 1;
    let (exports, _) = fixture();
    let mut hs = Handshake::new(HandshakeConfig { tls, max_request: MAX_REQUEST }, exports, Peer::Unix);
    let greeting = hs.take_output();
    assert_eq!(greeting.len(), GREETING_LEN);
    loop {
        let _ = hs.take_output();
        let _ = hs.take_events();
        match hs.step() {
            Step::Read(n) => {
                assert!(n > 0, "a read of nothing would stall the server");
                let take = n.min(piece).min(input.len());
                let Some(chunk) = input.get(..take).filter(|c| !c.is_empty()) else { return };
                let used = hs.receive(chunk);
                assert_eq!(used, take, "bytes asked for must all be used");
                input = input.get(used..).unwrap_or_default();
            }
            Step::StartTls => {
                assert_ne!(tls, TlsMode::Off, "STARTTLS acknowledged with TLS off");
                hs.tls_started();
            }
            Step::Ready => {
                let Some(n) = hs.into_negotiated() else { panic!("ready without a negotiation") };
                assert!(n.contexts.is_empty() || n.structured, "contexts without structured replies");
                return run_requests(&n, input);
            }
            Step::Close => {
                assert!(hs.close_reason().is_some());
                return;
            }
        }
    }
}

/// Drives the request path with `bytes`: the first byte picks structured replies, the
/// selected contexts and read-only; the rest is a stream of requests and payloads.
pub fn feed_requests(bytes: &[u8]) {
    let Some((&mode, input)) = bytes.split_first() else { return };
    let (_, disk) = fixture();
    disk.set_read_only(mode & 4 != 0);
    let structured = mode & 1 != 0;
    let mut contexts = Vec::new();
    if structured && mode & 2 != 0 {
        contexts.push(MetaContext { id: 1, name: BASE_ALLOCATION.to_owned() });
        if mode & 8 != 0 {
            contexts.push(MetaContext { id: 7, name: "qemu:dirty-bitmap:b".to_owned() });
        }
    }
    let mut flags = FLAG_HAS_FLAGS;
    if mode & 4 != 0 {
        flags |= FLAG_READ_ONLY;
    }
    let n = Negotiated { name: "disk".into(), export: disk, size: SIZE, flags, structured, contexts, max_request: MAX_REQUEST };
    run_requests(&n, input);
}

fn run_requests(n: &Negotiated, mut input: &[u8]) {
    let mut out = Vec::new();
    while let Some(hdr) = input.get(..REQUEST_HEADER_LEN).and_then(|h| <&[u8; REQUEST_HEADER_LEN]>::try_from(h).ok()) {
        input = input.get(REQUEST_HEADER_LEN..).unwrap_or_default();
        let Ok(h) = parse_header(hdr) else { return };
        match decide(&h, n) {
            Decision::Disconnect | Decision::Fatal(_) => return,
            Decision::Reject { handle, errno, message, discard } => {
                let Some(rest) = input.get(discard as usize..) else { return };
                input = rest;
                out.clear();
                error_reply(n, handle, &IoFailure::new(errno, message), &mut out);
                check_reply(n, handle, &out);
            }
            Decision::Execute(req) => {
                let mut payload: &[u8] = &[];
                if let Command::Write { .. } = req.command {
                    let Some(p) = input.get(..req.length as usize) else { return };
                    payload = p;
                    input = input.get(req.length as usize..).unwrap_or_default();
                }
                let _ = execute(n, &req, payload, &mut out);
                check_reply(n, req.handle, &out);
                if let (Command::Read { .. }, false) = (req.command, n.structured) {
                    assert!(out.len() == SIMPLE_REPLY_LEN || out.len() == SIMPLE_REPLY_LEN + req.length as usize);
                }
            }
        }
    }
}

/// Every reply starts with a known magic and echoes the handle.
fn check_reply(n: &Negotiated, handle: u64, out: &[u8]) {
    let magic = out.get(..4).map(|m| u32::from_be_bytes(m.try_into().unwrap_or_default()));
    let echoed = |at: usize| out.get(at..at + 8).map(|h| u64::from_be_bytes(h.try_into().unwrap_or_default()));
    match magic {
        Some(SIMPLE_REPLY_MAGIC) => assert_eq!(echoed(8), Some(handle)),
        Some(STRUCTURED_REPLY_MAGIC) => {
            assert!(n.structured, "structured reply not negotiated");
            assert_eq!(echoed(8), Some(handle));
        }
        other => panic!("reply starts with {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_survive_junk() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            feed_handshake(&bytes);
            feed_requests(&bytes);
        }
    }
}
