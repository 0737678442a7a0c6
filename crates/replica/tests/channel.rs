//! The data channel over real TCP on loopback: a token handed out once, batches shipped
//! by the core and applied in order, acknowledgements releasing the journal; wrong
//! tokens, garbage and cuts end a channel and nothing else.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use plexus_journal::{Applier, ApplyTarget, RecordKind, RecordRef};
use plexus_replica::channel::{DataListener, Shipper, ShipperOptions};
use plexus_replica::{ReplicaGroup, ReplicaMode};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::MemTarget;

const SIZE: usize = 8 << 20;

fn setup(dir: &std::path::Path) -> (Arc<ReplicaGroup>, Arc<Applier>, Arc<MemTarget>) {
    let g = Arc::new(common::group(dir, &[1], SIZE as u64, 1 << 30, ReplicaMode::Async));
    let mem = MemTarget::new(SIZE, 0);
    let a = Arc::new(Applier::open(&dir.join("applied"), vec![(1, mem.clone() as Arc<dyn ApplyTarget>)], 64 << 20).unwrap());
    (g, a, mem)
}

fn opts() -> ShipperOptions {
    ShipperOptions { batch_bytes: 1 << 20, window_bytes: 4 << 20, ack_timeout: Duration::from_secs(5) }
}

fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn ships_the_journal_in_order_and_releases_what_the_remote_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (g, a, mem) = setup(dir.path());
    let listener = DataListener::start("127.0.0.1:0").unwrap();
    let token = [7u8; 32];
    listener.expect(a.clone(), token);
    // Written before and while shipping: overlapping offsets, so order matters.
    let mut expect = vec![0u8; SIZE];
    let mut write = |i: usize| {
        let off = (i * 12_288) % (SIZE - 65_536);
        let data = vec![(i % 251) as u8 + 1; 65_536];
        expect[off..off + data.len()].copy_from_slice(&data);
        g.journal()
            .append(&RecordRef { seq: 0, volume: 1, kind: RecordKind::Write, offset: off as u64, len: data.len() as u64, data: &data })
            .unwrap();
    };
    for i in 0..200 {
        write(i);
    }
    let addr = listener.local_addr().to_string();
    let shipper = Shipper::start(g.clone(), &addr, token, 1, opts()).unwrap();
    for i in 200..400 {
        write(i);
    }
    until("every record applied", || a.applied() == 400 && g.acknowledged().0 == 400);
    assert!(mem.bytes() == expect, "the remote holds the primary's bytes");
    a.commit().unwrap();
    // A later acknowledgement carries the durable point: the journal is released to it.
    g.journal().append(&RecordRef { seq: 0, volume: 1, kind: RecordKind::Punch, offset: 0, len: 4096, data: &[] }).unwrap();
    until("released", || g.journal().first_seq() > 1);
    assert!(shipper.status().running);
    shipper.stop();
    assert!(!shipper.status().running);
    assert_eq!(shipper.status().error, None, "a stop is not a failure");
}

#[test]
fn a_token_works_once_and_a_wrong_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (g, a, _) = setup(dir.path());
    let listener = DataListener::start("127.0.0.1:0").unwrap();
    listener.expect(a, [1u8; 32]);
    let addr = listener.local_addr().to_string();
    let err = Shipper::start(g.clone(), &addr, [2u8; 32], 1, opts()).err().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    let first = Shipper::start(g.clone(), &addr, [1u8; 32], 1, opts()).unwrap();
    assert!(Shipper::start(g, &addr, [1u8; 32], 1, opts()).is_err(), "a token is single-use");
    first.stop();
    until("refusals noted", || !listener.take_events().is_empty());
}

#[test]
fn garbage_and_oversized_batches_end_that_channel_only() {
    let dir = tempfile::tempdir().unwrap();
    let (_g, a, _) = setup(dir.path());
    let listener = DataListener::start("127.0.0.1:0").unwrap();
    let addr = listener.local_addr();
    for (i, tail) in [vec![0xffu8, 0xff, 0xff, 0xff], vec![0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8], vec![0, 0, 0, 0]].into_iter().enumerate() {
        let token = [10 + i as u8; 32];
        listener.expect(a.clone(), token);
        let mut s = TcpStream::connect(addr).unwrap();
        let mut hello = b"PLXD\x01".to_vec();
        hello.extend_from_slice(&token);
        s.write_all(&hello).unwrap();
        let mut ok = [9u8; 1];
        s.read_exact(&mut ok).unwrap();
        assert_eq!(ok, [0]);
        s.write_all(&tail).unwrap();
        let mut rest = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "no acknowledgement for a bad batch");
    }
    // Not even a hello.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    drop(s);
    until("every end noted", || !listener.take_events().is_empty());
    assert_eq!(a.applied(), 0);
}

#[test]
fn a_cut_channel_fails_the_shipper_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (g, a, _) = setup(dir.path());
    let listener = DataListener::start("127.0.0.1:0").unwrap();
    let channel = listener.expect(a, [3u8; 32]);
    let shipper = Shipper::start(g, &listener.local_addr().to_string(), [3u8; 32], 1, opts()).unwrap();
    listener.cut(channel);
    until("the shipper notices", || !shipper.status().running);
    assert!(shipper.status().error.is_some());
}
