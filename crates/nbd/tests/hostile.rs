//! Clients no real NBD client would be, through a raw socket: bad magic, oversize and
//! out-of-range requests, payloads cut off, floods, and hundreds of connections. Each may
//! end its own connection; none may hurt the server or other clients.

mod common;

use common::raw::Raw;
use common::{mem, Fixture};
use plexus_nbd::proto::consts::*;
use plexus_nbd::testing::MemExport;
use plexus_nbd::{Event, Export};
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn fixture() -> (Fixture, Arc<MemExport>) {
    let disk = mem(4 * MIB);
    let ro = mem(MIB);
    ro.set_read_only(true);
    (Fixture::tcp(vec![("d", disk.clone()), ("ro", ro)], |_| {}), disk)
}

/// A normal read still works: the server survived whatever came before.
fn still_serves(f: &Fixture) {
    let mut c = Raw::connect(f.server.tcp_addr().expect("addr"));
    c.go("d", false, &[]);
    c.request(0, CMD_READ, 1, 0, 512, &[]);
    assert_eq!(c.simple_reply(), (0, 1));
    c.read_n(512);
    c.request(0, CMD_DISC, 2, 0, 0, &[]);
}

#[test]
fn bad_request_magic_ends_only_that_connection() {
    let (f, _) = fixture();
    let mut c = Raw::connect(f.server.tcp_addr().expect("addr"));
    c.go("d", false, &[]);
    c.send(&[0xde, 0xad, 0xbe, 0xef]);
    c.send(&[0; 24]);
    assert!(c.closed(), "bad magic closes the connection");
    assert!(f.log.wait_for(Duration::from_secs(5), |e| matches!(e, Event::ProtocolError { detail, .. } if detail.contains("magic"))));
    still_serves(&f);
}

#[test]
fn oversize_write_disconnects_without_reading_it() {
    let (f, disk) = fixture();
    let mut c = Raw::connect(f.server.tcp_addr().expect("addr"));
    let (_, flags) = c.go("d", false, &[]);
    assert_ne!(flags & FLAG_SEND_FLUSH, 0);
    c.request(0, CMD_WRITE, 9, 0, (32 << 20) + 1, &[]);
    c.send(&[1; 4096]);
    assert!(c.closed());
    assert!(f
        .log
        .wait_for(Duration::from_secs(5), |e| matches!(e, Event::ProtocolError { detail, .. } if detail.contains("maximum block size"))));
    assert!(!disk.allocated(0, MIB), "nothing written");
    still_serves(&f);
}

#[test]
fn refused_requests_get_errnos_and_the_connection_goes_on() {
    let (f, disk) = fixture();
    let addr = f.server.tcp_addr().expect("addr");
    let mut c = Raw::connect(addr);
    c.go("d", false, &[]);
    // Out of range read: EINVAL. Write past the end: ENOSPC, payload skipped.
    c.request(0, CMD_READ, 1, 4 * MIB - 10, 20, &[]);
    assert_eq!(c.simple_reply(), (EINVAL, 1));
    c.request(0, CMD_WRITE, 2, 4 * MIB - 10, 20, &[7; 20]);
    assert_eq!(c.simple_reply(), (ENOSPC, 2));
    c.request(0, CMD_WRITE_ZEROES, 3, u64::MAX - 1, 4, &[]);
    assert_eq!(c.simple_reply(), (ENOSPC, 3));
    // Longer than the maximum block size: EINVAL for reads (no payload to drain).
    c.request(0, CMD_READ, 4, 0, (32 << 20) + 1, &[]);
    assert_eq!(c.simple_reply(), (EINVAL, 4));
    c.request(0, 42, 5, 0, 0, &[]);
    assert_eq!(c.simple_reply(), (EINVAL, 5), "unknown command");
    c.request(CMD_FLAG_REQ_ONE, CMD_WRITE, 6, 0, 3, b"abc");
    assert_eq!(c.simple_reply(), (EINVAL, 6), "flag not valid for the command");
    c.request(CMD_FLAG_DF, CMD_READ, 7, 0, 3, &[]);
    assert_eq!(c.simple_reply(), (EINVAL, 7), "DF without structured replies");
    c.request(0, CMD_BLOCK_STATUS, 8, 0, 512, &[]);
    assert_eq!(c.simple_reply(), (EINVAL, 8), "no metadata context negotiated");
    c.request(0, CMD_FLUSH, 9, 1, 0, &[]);
    assert_eq!(c.simple_reply(), (EINVAL, 9), "flush with an offset");
    // The stream stayed in step through all of that.
    c.request(0, CMD_WRITE, 10, 0, 4, b"good");
    assert_eq!(c.simple_reply(), (0, 10));
    let mut buf = [0; 4];
    disk.read(0, &mut buf).expect("read");
    assert_eq!(&buf, b"good");
    assert!(!disk.allocated(4 * MIB - 64 * 1024, 64 * 1024), "refused write changed nothing");

    let mut ro = Raw::connect(addr);
    let (_, flags) = ro.go("ro", false, &[]);
    assert_ne!(flags & FLAG_READ_ONLY, 0);
    for (h, kind) in [(1, CMD_WRITE), (2, CMD_TRIM), (3, CMD_WRITE_ZEROES)] {
        let payload: &[u8] = if kind == CMD_WRITE { b"data" } else { b"" };
        ro.request(0, kind, h, 0, 4, payload);
        assert_eq!(ro.simple_reply(), (EPERM, h));
    }
    ro.request(0, CMD_READ, 4, 0, 4, &[]);
    assert_eq!(ro.simple_reply(), (0, 4));
}

#[test]
fn structured_errors_carry_messages() {
    let (f, _) = fixture();
    let mut c = Raw::connect(f.server.tcp_addr().expect("addr"));
    c.go("d", true, &[BASE_ALLOCATION]);
    c.request(0, CMD_READ, 1, 4 * MIB, 1, &[]);
    let e = c.chunk();
    assert_eq!((e.kind, e.flags, e.handle), (REPLY_TYPE_ERROR, REPLY_FLAG_DONE, 1));
    assert_eq!(&e.payload[..4], &EINVAL.to_be_bytes());
    assert!(String::from_utf8_lossy(&e.payload[6..]).contains("end of the export"));
    // Block status works once negotiated; REQ_ONE gives one extent no longer than asked.
    c.request(CMD_FLAG_REQ_ONE, CMD_BLOCK_STATUS, 2, 0, 1000, &[]);
    let b = c.chunk();
    assert_eq!((b.kind, b.flags), (REPLY_TYPE_BLOCK_STATUS, REPLY_FLAG_DONE));
    assert_eq!(b.payload.len(), 12);
    assert_eq!(&b.payload[4..], &[0, 0, 0x03, 0xe8, 0, 0, 0, 3]);
}

#[test]
fn client_dropping_mid_payload_ends_only_its_connection() {
    let (f, disk) = fixture();
    let mut c = Raw::connect(f.server.tcp_addr().expect("addr"));
    c.go("d", false, &[]);
    c.request(0, CMD_WRITE, 1, 0, MIB as u32, &[]);
    c.send(&[9; 1000]);
    drop(c);
    assert!(f
        .log
        .wait_for(Duration::from_secs(5), |e| matches!(e, Event::Disconnected { reason, .. } if reason.contains("write payload"))));
    assert!(!disk.allocated(0, MIB), "a partial payload is never written");
    f.wait_idle();
    still_serves(&f);
}

#[test]
fn a_flood_of_reads_is_served_within_the_in_flight_budget() {
    let disk = mem(4 * MIB);
    disk.write(0, &common::pattern(4 * MIB as usize, 3), false).expect("fill");
    let f = Fixture::tcp(vec![("d", disk)], |c| c.max_in_flight_bytes = 512 * 1024);
    let mut c = Raw::connect(f.server.tcp_addr().expect("addr"));
    c.go("d", false, &[]);
    let mut sender = c.s.try_clone().expect("clone");
    let count = 200u64;
    let flood = std::thread::spawn(move || {
        let mut all = Vec::new();
        for h in 0..count {
            let offset = (h % 32) * 128 * 1024;
            all.extend_from_slice(&REQUEST_MAGIC.to_be_bytes());
            all.extend_from_slice(&[0, 0, 0, 0]);
            all.extend_from_slice(&h.to_be_bytes());
            all.extend_from_slice(&offset.to_be_bytes());
            all.extend_from_slice(&(128u32 * 1024).to_be_bytes());
        }
        sender.write_all(&all).expect("flood");
    });
    // Read slowly at first: the server must hold back instead of buffering 25 MiB.
    std::thread::sleep(Duration::from_millis(200));
    let mut seen = vec![false; count as usize];
    for _ in 0..count {
        let (err, h) = c.simple_reply();
        assert_eq!(err, 0);
        c.read_n(128 * 1024);
        seen[h as usize] = true;
    }
    assert!(seen.iter().all(|&s| s), "every handle answered once");
    flood.join().expect("flood thread");
}

#[test]
fn hundreds_of_connections_then_a_normal_client() {
    let (f, _) = fixture();
    let addr = f.server.tcp_addr().expect("addr");
    let mut held = Vec::new();
    for i in 0..300 {
        let Ok(mut s) = TcpStream::connect(addr) else { continue };
        // A mix: silent, garbage, half a handshake.
        match i % 3 {
            0 => {}
            1 => {
                let _ = s.write_all(&[0xff; 64]);
            }
            _ => {
                let _ = s.write_all(&1u32.to_be_bytes());
            }
        }
        held.push(s);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.events(|e| matches!(e, Event::TooManyConnections { .. })).is_empty() {
        assert!(Instant::now() < deadline, "over the limit some were refused");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(f.server.connection_count() <= 128);
    drop(held);
    f.wait_idle();
    still_serves(&f);
    f.wait_idle();
    assert_eq!(f.server.connection_count(), 0);
}

#[test]
fn over_the_limit_clients_are_told_why() {
    let f = Fixture::tcp(vec![("d", mem(MIB))], |c| c.max_connections = 2);
    let addr = f.server.tcp_addr().expect("addr");
    let mut a = Raw::connect(addr);
    a.go("d", false, &[]);
    let mut b = Raw::connect(addr);
    b.go("d", false, &[]);
    let mut c = Raw::connect(addr);
    c.option(OPT_GO, &[0, 0, 0, 1, b'd', 0, 0]);
    let r = c.opt_reply();
    assert_eq!(r.kind, REP_ERR_POLICY);
    assert!(String::from_utf8_lossy(&r.data).contains("too many connections"));
    assert!(f.log.wait_for(Duration::from_secs(5), |e| matches!(e, Event::TooManyConnections { .. })));
    drop(a);
    f.log.wait_for(Duration::from_secs(5), |e| matches!(e, Event::Disconnected { .. }));
    let deadline = Instant::now() + Duration::from_secs(5);
    while f.server.connection_count() > 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut d = Raw::connect(addr);
    d.go("d", false, &[]);
}

#[test]
fn idle_handshake_times_out() {
    let f = Fixture::tcp(vec![("d", mem(MIB))], |c| c.handshake_timeout = Some(Duration::from_millis(200)));
    let mut c = Raw::connect(f.server.tcp_addr().expect("addr"));
    let started = Instant::now();
    assert!(c.closed());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(f.log.wait_for(Duration::from_secs(5), |e| matches!(e, Event::Disconnected { reason, .. } if reason.contains("idle"))));
}

/// An export with a bug: reads panic.
struct Panicky;

impl Export for Panicky {
    fn size(&self) -> u64 {
        MIB
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read(&self, _: u64, _: &mut [u8]) -> Result<(), plexus_nbd::IoFailure> {
        panic!("export bug")
    }
    fn write(&self, _: u64, _: &[u8], _: bool) -> Result<(), plexus_nbd::IoFailure> {
        Ok(())
    }
    fn flush(&self) -> Result<(), plexus_nbd::IoFailure> {
        Ok(())
    }
    fn trim(&self, _: u64, _: u64, _: bool) -> Result<(), plexus_nbd::IoFailure> {
        Ok(())
    }
    fn write_zeroes(&self, _: u64, _: u64, _: bool, _: bool) -> Result<(), plexus_nbd::IoFailure> {
        Ok(())
    }
    fn block_status(&self, _: &str, _: u64, _: u64) -> Result<Vec<plexus_nbd::Extent>, plexus_nbd::IoFailure> {
        Ok(vec![])
    }
}

#[test]
fn a_panicking_export_costs_the_client_an_eio_not_the_connection() {
    let f = Fixture::tcp(vec![("p", Arc::new(Panicky))], |_| {});
    let mut c = Raw::connect(f.server.tcp_addr().expect("addr"));
    c.go("p", false, &[]);
    for h in 0..3 {
        c.request(0, CMD_READ, h, 0, 512, &[]);
        assert_eq!(c.simple_reply(), (EIO, h));
    }
    c.request(0, CMD_WRITE, 9, 0, 3, b"abc");
    assert_eq!(c.simple_reply(), (0, 9));
    assert!(f.log.wait_for(Duration::from_secs(5), |e| matches!(e, Event::IoError { detail, .. } if detail.contains("panicked"))));
}
