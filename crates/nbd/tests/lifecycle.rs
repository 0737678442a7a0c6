//! The server's life: shutdown with requests in flight, the Unix socket file, the TLS
//! hook (with a stand-in "TLS" that scrambles bytes), and exports changing while served.

mod common;

use common::raw::Raw;
use common::{mem, Fixture};
use plexus_nbd::proto::consts::*;
use plexus_nbd::testing::EventLog;
use plexus_nbd::{Event, Export, Exports, Server, ServerConfig, Stream, TlsUpgrade};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

#[test]
fn shutdown_lets_in_flight_requests_finish_and_flushes_once() {
    let disk = mem(4 * MIB);
    disk.write(0, &[0x77; 4096], false).expect("fill");
    let f = Fixture::tcp(vec![("d", disk.clone())], |_| {});
    let mut c = Raw::connect(f.server.tcp_addr().expect("addr"));
    c.go("d", false, &[]);
    disk.set_delay(Duration::from_millis(400));
    c.request(0, CMD_READ, 5, 0, 4096, &[]);
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let Fixture { server, log, .. } = f;
    let stopper = std::thread::spawn(move || {
        server.shutdown();
        server
    });
    // The reply to the request in flight still arrives, whole.
    assert_eq!(c.simple_reply(), (0, 5));
    assert!(c.read_n(4096).iter().all(|&b| b == 0x77));
    assert!(c.closed(), "then the connection is closed");
    let server = stopper.join().expect("shutdown thread");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.connection_count(), 0);
    assert_eq!(disk.flush_count(), 1, "every export flushed once");
    assert!(log.events().iter().any(|e| matches!(e, Event::Disconnected { reason, .. } if reason.contains("shutting down"))));
    assert!(TcpStream::connect(server.tcp_addr().expect("addr")).is_err(), "no longer listening");
}

#[test]
fn shutdown_is_bounded_when_a_client_stops_reading() {
    let disk = mem(8 * MIB);
    let f = Fixture::tcp(vec![("d", disk)], |c| c.shutdown_timeout = Duration::from_millis(300));
    let mut c = Raw::connect(f.server.tcp_addr().expect("addr"));
    c.go("d", false, &[]);
    // Requests for far more than the socket buffers hold, and never read a reply.
    for h in 0..200 {
        c.request(0, CMD_READ, h, 0, 1 << 20, &[]);
    }
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    f.server.shutdown();
    assert!(started.elapsed() < Duration::from_secs(4), "shutdown took {:?}", started.elapsed());
}

#[test]
fn unix_socket_is_private_replaces_stale_and_spares_live_or_foreign_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nbd.sock");
    // A stale socket: bound once, its listener gone.
    drop(UnixListener::bind(&path).expect("stale bind"));
    assert!(path.exists());
    let start = || {
        let config = ServerConfig { unix: Some(path.clone()), ..ServerConfig::default() };
        let exports = Arc::new(Exports::new());
        exports.add("d", "", mem(MIB));
        Server::start(config, exports, Arc::new(EventLog::new()))
    };
    let server = start().expect("stale socket replaced");
    let meta = std::fs::symlink_metadata(&path).expect("socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let live = start().err().map(|e| e.kind());
    assert_eq!(live, Some(io::ErrorKind::AddrInUse), "a live socket is never replaced");
    let out = common::ok(common::libnbd("nbdinfo").arg(format!("nbd+unix:///d?socket={}", path.display())));
    assert!(out.contains("export-size: 1048576"), "{out}");
    server.shutdown();
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0, "no staging leftovers");
    std::fs::write(&path, b"not a socket").expect("file");
    assert_eq!(start().err().map(|e| e.kind()), Some(io::ErrorKind::AlreadyExists));
    assert_eq!(std::fs::read(&path).expect("file"), b"not a socket");
}

/// What the stand-in TLS does to every byte, both ways.
fn xor(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| b ^ 0x5a).collect()
}

#[test]
fn starttls_through_the_hook_and_serial_transmission() {
    let disk = mem(4 * MIB);
    let f = Fixture::tcp(vec![("d", disk.clone())], |c| {
        c.tls = Some(Arc::new(WrapTls));
        c.tls_required = true;
    });
    let addr = f.server.tcp_addr().expect("addr");
    let mut c = Raw::connect(addr);
    c.option(OPT_GO, &[0, 0, 0, 1, b'd', 0, 0]);
    assert_eq!(c.opt_reply().kind, REP_ERR_TLS_REQD);
    c.option(OPT_STARTTLS, &[]);
    assert_eq!(c.opt_reply().kind, REP_ACK);
    // From here on every byte is "encrypted".
    let mut w = c.s.try_clone().expect("clone");
    let mut send = |bytes: &[u8]| w.write_all(&xor(bytes)).expect("send");
    send(b"HELLO");
    let mut tls = Raw { s: c.s };
    let mut opt = IHAVEOPT.to_be_bytes().to_vec();
    opt.extend_from_slice(&OPT_GO.to_be_bytes());
    opt.extend_from_slice(&7u32.to_be_bytes());
    opt.extend_from_slice(&[0, 0, 0, 1, b'd', 0, 0]);
    send(&opt);
    let mut read = |n: usize| -> Vec<u8> { xor(&tls.read_n(n)) };
    loop {
        let h = read(20);
        let kind = u32::from_be_bytes(h[12..16].try_into().expect("4"));
        let len = u32::from_be_bytes(h[16..20].try_into().expect("4")) as usize;
        read(len);
        assert!(kind == REP_INFO || kind == REP_ACK, "GO over TLS failed: {kind:#x}");
        if kind == REP_ACK {
            break;
        }
    }
    // Several requests at once: the unsplittable stream serves them one by one.
    let mut reqs = Vec::new();
    for (h, kind, len, payload) in [(1u64, CMD_WRITE, 5u32, &b"hello"[..]), (2, CMD_READ, 5, b""), (3, CMD_FLUSH, 0, b"")] {
        reqs.extend_from_slice(&REQUEST_MAGIC.to_be_bytes());
        reqs.extend_from_slice(&0u16.to_be_bytes());
        reqs.extend_from_slice(&kind.to_be_bytes());
        reqs.extend_from_slice(&h.to_be_bytes());
        reqs.extend_from_slice(&0u64.to_be_bytes());
        reqs.extend_from_slice(&len.to_be_bytes());
        reqs.extend_from_slice(payload);
    }
    send(&reqs);
    assert_eq!(&read(16)[4..], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(&read(16)[12..], &[0, 0, 0, 2]);
    assert_eq!(read(5), b"hello");
    assert_eq!(&read(16)[12..], &[0, 0, 0, 3]);
    assert_eq!(disk.flush_count(), 1);
    // A plain client is refused by a TLS-only server.
    let out = common::fails(common::libnbd("nbdinfo").arg(f.uri("d")));
    assert!(out.contains("TLS") || out.contains("tls"), "{out}");
}

/// Stand-in TLS with the real shape of a hook: wrap the boxed stream, read a "client
/// hello", and return a stream that cannot be split, like a TLS session.
struct WrapTls;

struct Boxed(Box<dyn Stream>);

impl Read for Boxed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        buf[..n].iter_mut().for_each(|b| *b ^= 0x5a);
        Ok(n)
    }
}

impl Write for Boxed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&xor(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Stream for Boxed {
    fn try_split(&mut self) -> Option<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        None
    }
}

impl TlsUpgrade for WrapTls {
    fn accept(&self, stream: Box<dyn Stream>) -> io::Result<Box<dyn Stream>> {
        let mut s = Boxed(stream);
        let mut hello = [0u8; 5];
        s.read_exact(&mut hello)?;
        if &hello != b"HELLO" {
            return Err(io::Error::other("bad TLS hello"));
        }
        Ok(Box::new(s))
    }
}

#[test]
fn exports_change_while_serving() {
    let f = Fixture::tcp(vec![("a", mem(MIB))], |_| {});
    let addr = f.server.tcp_addr().expect("addr");
    let mut c = Raw::connect(addr);
    c.go("a", false, &[]);
    assert!(f.exports.remove("a"));
    f.exports.add("b", "new", mem(2 * MIB));
    // The connected client keeps its export.
    c.request(0, CMD_READ, 1, 0, 16, &[]);
    assert_eq!(c.simple_reply(), (0, 1));
    c.read_n(16);
    let mut late = Raw::connect(addr);
    late.option(OPT_GO, &[0, 0, 0, 1, b'a', 0, 0]);
    assert_eq!(late.opt_reply().kind, REP_ERR_UNKNOWN);
    let (size, _) = late.go("b", false, &[]);
    assert_eq!(size, 2 * MIB);
}

#[test]
fn dropping_the_server_shuts_it_down() {
    let f = Fixture::tcp(vec![("a", mem(MIB))], |_| {});
    let addr = f.server.tcp_addr().expect("addr");
    let mut c = Raw::connect(addr);
    c.go("a", false, &[]);
    drop(f);
    assert!(c.closed());
    assert!(TcpStream::connect(addr).is_err());
}
