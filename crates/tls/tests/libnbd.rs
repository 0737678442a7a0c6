//! The proof that matters: libnbd's own clients (`nbdinfo`, `nbdcopy`) upgrading a real NBD
//! fixed-newstyle negotiation with `NBD_OPT_STARTTLS` against `TlsServer`, with PSK (user in the
//! URI, `tls-psk-file=`) and x509 (`tls-certificates=`), over TCP and Unix sockets, on TLS 1.3 and,
//! with TLS 1.3 switched off in GnuTLS's system configuration, on TLS 1.2.
//!
//! The NBD server here is the least that libnbd accepts: greeting, STARTTLS, INFO/GO answered
//! with the export's size, every other option refused as unsupported, then READ and DISC.

mod common;

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{psk_file, run, server, tool, Pki, Ran, CLIENT_DEADLINE};
use plexus_tls::{TlsCredentials, TlsServer};

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;
const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_STARTTLS: u32 = 5;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;
const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const REP_ERR_UNSUP: u32 = 0x8000_0001;
const REP_ERR_INVALID: u32 = 0x8000_0003;
const REP_ERR_TLS_REQD: u32 = 0x8000_0005;
const INFO_EXPORT: u16 = 0;
const TRANSMIT_HAS_FLAGS: u16 = 1;
const TRANSMIT_READ_ONLY: u16 = 2;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
const CMD_READ: u16 = 0;
const CMD_DISC: u16 = 2;
const EPERM: u32 = 1;
const EINVAL: u32 = 22;

/// The export: 1 MiB whose byte at offset `o` is `o % 251`, so a misplaced block shows.
const EXPORT_SIZE: u64 = 1 << 20;

fn pattern(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| ((offset + i) % 251) as u8).collect()
}

/// What the server saw of one NBD connection.
#[derive(Debug, Default)]
struct Session {
    /// Options received before the upgrade, in order.
    plain_options: Vec<u32>,
    /// `negotiated()` and `peer_identity()` after STARTTLS, or the handshake's error.
    tls: Option<Result<(String, Option<String>), String>>,
    /// Options received inside TLS.
    tls_options: Vec<u32>,
    /// Bytes served by NBD_CMD_READ.
    read_bytes: u64,
    /// The client ended with NBD_CMD_DISC.
    disconnected: bool,
}

fn read_u16(s: &mut impl Read) -> io::Result<u16> {
    let mut b = [0u8; 2];
    s.read_exact(&mut b)?;
    Ok(u16::from_be_bytes(b))
}

fn read_u32(s: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    s.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64(s: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    s.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

fn reply(s: &mut impl Write, option: u32, kind: u32, data: &[u8]) -> io::Result<()> {
    let mut msg = Vec::with_capacity(20 + data.len());
    msg.extend_from_slice(&REPLY_MAGIC.to_be_bytes());
    msg.extend_from_slice(&option.to_be_bytes());
    msg.extend_from_slice(&kind.to_be_bytes());
    msg.extend_from_slice(&(data.len() as u32).to_be_bytes());
    msg.extend_from_slice(data);
    s.write_all(&msg)?;
    s.flush()
}

enum Next {
    StartTls,
    Transmit,
    Close,
}

/// Runs the option phase until STARTTLS (plain) or GO (inside TLS).
fn options(s: &mut (impl Read + Write), in_tls: bool, seen: &mut Vec<u32>) -> io::Result<Next> {
    loop {
        if read_u64(s)? != IHAVEOPT {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad option magic"));
        }
        let option = read_u32(s)?;
        let len = read_u32(s)?;
        let mut data = vec![0u8; len as usize];
        s.read_exact(&mut data)?;
        seen.push(option);
        match option {
            OPT_ABORT => {
                reply(s, option, REP_ACK, &[])?;
                return Ok(Next::Close);
            }
            // No reply is possible to EXPORT_NAME but the export itself: a client using it is not
            // one this test expects.
            OPT_EXPORT_NAME => return Ok(Next::Close),
            OPT_STARTTLS if !in_tls => {
                reply(s, option, REP_ACK, &[])?;
                return Ok(Next::StartTls);
            }
            OPT_STARTTLS => reply(s, option, REP_ERR_INVALID, &[])?,
            _ if !in_tls => reply(s, option, REP_ERR_TLS_REQD, &[])?,
            OPT_INFO | OPT_GO => {
                let mut info = Vec::new();
                info.extend_from_slice(&INFO_EXPORT.to_be_bytes());
                info.extend_from_slice(&EXPORT_SIZE.to_be_bytes());
                info.extend_from_slice(&(TRANSMIT_HAS_FLAGS | TRANSMIT_READ_ONLY).to_be_bytes());
                reply(s, option, REP_INFO, &info)?;
                reply(s, option, REP_ACK, &[])?;
                if option == OPT_GO {
                    return Ok(Next::Transmit);
                }
            }
            _ => reply(s, option, REP_ERR_UNSUP, &[])?,
        }
    }
}

fn transmit(s: &mut (impl Read + Write), session: &mut Session) -> io::Result<()> {
    loop {
        if read_u32(s)? != REQUEST_MAGIC {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad request magic"));
        }
        let _flags = read_u16(s)?;
        let kind = read_u16(s)?;
        let handle = read_u64(s)?;
        let offset = read_u64(s)?;
        let len = read_u32(s)?;
        if kind == CMD_DISC {
            session.disconnected = true;
            return Ok(());
        }
        let in_range = offset.checked_add(u64::from(len)).is_some_and(|end| end <= EXPORT_SIZE);
        let error = match kind {
            CMD_READ if in_range => 0,
            CMD_READ => EINVAL,
            // The export is read-only; a write's payload would have to be drained first, and no
            // client here writes.
            _ => EPERM,
        };
        let mut msg = Vec::new();
        msg.extend_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
        msg.extend_from_slice(&error.to_be_bytes());
        msg.extend_from_slice(&handle.to_be_bytes());
        if error == 0 {
            msg.extend_from_slice(&pattern(offset, len as usize));
            session.read_bytes += u64::from(len);
        }
        s.write_all(&msg)?;
        s.flush()?;
    }
}

fn nbd_session<S: Read + Write>(mut plain: S, tls: &TlsServer) -> Session {
    let mut session = Session::default();
    let mut greeting = Vec::new();
    greeting.extend_from_slice(&NBDMAGIC.to_be_bytes());
    greeting.extend_from_slice(&IHAVEOPT.to_be_bytes());
    greeting.extend_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    if plain.write_all(&greeting).is_err() || read_u32(&mut plain).is_err() {
        return session;
    }
    match options(&mut plain, false, &mut session.plain_options) {
        Ok(Next::StartTls) => {}
        _ => return session,
    }
    let mut secure = match tls.accept(plain) {
        Ok(s) => s,
        Err(e) => {
            session.tls = Some(Err(format!("{:?}: {e}", e.kind())));
            return session;
        }
    };
    session.tls = Some(Ok((plexus_tls::negotiated(&secure), plexus_tls::peer_identity(&secure))));
    if let Ok(Next::Transmit) = options(&mut secure, true, &mut session.tls_options) {
        let _ = transmit(&mut secure, &mut session);
    }
    session
}

/// An NBD server on 127.0.0.1 (`Where::Tcp`) or on a Unix socket in `dir`, one thread per client.
struct NbdServer {
    uri_base: String,
    rx: mpsc::Receiver<Session>,
}

enum Where<'a> {
    Tcp,
    Unix(&'a Path),
}

impl NbdServer {
    fn start(tls: TlsServer, at: Where) -> NbdServer {
        let (tx, rx) = mpsc::channel();
        let timeout = Some(Duration::from_secs(10));
        let uri_base = match at {
            Where::Tcp => {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
                let port = listener.local_addr().expect("addr").port();
                thread::spawn(move || {
                    for conn in listener.incoming().flatten() {
                        conn.set_read_timeout(timeout).expect("timeout");
                        conn.set_write_timeout(timeout).expect("timeout");
                        let (tls, tx) = (tls.clone(), tx.clone());
                        thread::spawn(move || tx.send(nbd_session(conn, &tls)));
                    }
                });
                format!("127.0.0.1:{port}")
            }
            Where::Unix(dir) => {
                let path = dir.join("nbd.sock");
                let listener = UnixListener::bind(&path).expect("bind");
                thread::spawn(move || {
                    for conn in listener.incoming().flatten() {
                        conn.set_read_timeout(timeout).expect("timeout");
                        conn.set_write_timeout(timeout).expect("timeout");
                        let (tls, tx) = (tls.clone(), tx.clone());
                        thread::spawn(move || tx.send(nbd_session(conn, &tls)));
                    }
                });
                path.display().to_string()
            }
        };
        NbdServer { uri_base, rx }
    }

    fn next(&self) -> Session {
        self.rx.recv_timeout(CLIENT_DEADLINE).expect("the NBD server saw no connection")
    }
}

fn nbdinfo(uri: &str, env: &[(&str, &Path)]) -> Ran {
    let mut cmd = Command::new(tool("nbdinfo", "libnbd-bin"));
    // The debug log carries libnbd's own account of the session ("connection is using TLS: ...").
    cmd.arg(uri).env("LIBNBD_DEBUG", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, b"")
}

/// A session that went through STARTTLS, GO and DISC, returning what TLS settled on and the peer.
fn expect_served(session: Session, ran: &Ran) -> (String, Option<String>) {
    assert!(ran.status.success(), "{session:?}\n{}", ran.describe());
    assert!(ran.stdout.contains(&format!("export-size: {EXPORT_SIZE}")), "{}", ran.describe());
    assert!(ran.stdout.contains("TLS"), "nbdinfo does not report TLS: {}", ran.describe());
    // STARTTLS must come first: nothing about the exports is told in the clear.
    assert_eq!(session.plain_options, vec![OPT_STARTTLS], "{session:?}");
    assert!(session.tls_options.contains(&OPT_GO), "{session:?}");
    assert!(session.disconnected, "{session:?}");
    match session.tls {
        Some(Ok((negotiated, peer))) => {
            eprintln!("served over {negotiated}, peer {peer:?}");
            (negotiated, peer)
        }
        other => panic!("TLS: {other:?}\n{}", ran.describe()),
    }
}

fn expect_refused(session: Session, ran: &Ran) -> String {
    assert!(!ran.status.success(), "{session:?}\n{}", ran.describe());
    assert!(session.tls_options.is_empty(), "options got through: {session:?}");
    match session.tls {
        Some(Err(e)) => e,
        other => panic!("expected a failed handshake, got {other:?}\n{}", ran.describe()),
    }
}

/// A GnuTLS system configuration that disables TLS 1.3 for every priority string, libnbd's too.
fn no_tls13_config(dir: &Path) -> PathBuf {
    let file = dir.join("gnutls-no-tls13.conf");
    std::fs::write(&file, "[overrides]\ndisabled-version = tls1.3\n").expect("write");
    file
}

#[test]
fn nbdinfo_psk_over_tcp_and_unix() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (file, _) = psk_file(tmp.path(), "keys.psk", &["alice", "bob"]);
    let creds = TlsCredentials::Psk { file: file.clone() };
    let psk = file.display();

    let tcp = NbdServer::start(server(creds.clone()), Where::Tcp);
    let ran = nbdinfo(&format!("nbds://alice@{}/x?tls-psk-file={psk}", tcp.uri_base), &[]);
    let (negotiated, peer) = expect_served(tcp.next(), &ran);
    assert!(negotiated.starts_with("TLSv1.3 "), "{negotiated}");
    assert_eq!(peer.as_deref(), Some("alice"));
    // psk_dhe_ke: the key authenticates an ephemeral exchange, as with nbdkit's GnuTLS server.
    assert!(ran.stderr.contains("key exchange ECDHE-PSK"), "{}", ran.describe());

    let ran = nbdinfo(&format!("nbds://bob@{}/x?tls-psk-file={psk}", tcp.uri_base), &[]);
    let (_, peer) = expect_served(tcp.next(), &ran);
    assert_eq!(peer.as_deref(), Some("bob"));

    let unix = NbdServer::start(server(creds), Where::Unix(tmp.path()));
    let ran = nbdinfo(&format!("nbds+unix://alice@/x?socket={}&tls-psk-file={psk}", unix.uri_base), &[]);
    let (_, peer) = expect_served(unix.next(), &ran);
    assert_eq!(peer.as_deref(), Some("alice"));
}

#[test]
fn nbdinfo_psk_over_tls12() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (file, _) = psk_file(tmp.path(), "keys.psk", &["alice"]);
    let config = no_tls13_config(tmp.path());
    let tcp = NbdServer::start(server(TlsCredentials::Psk { file: file.clone() }), Where::Tcp);
    let ran =
        nbdinfo(&format!("nbds://alice@{}/x?tls-psk-file={}", tcp.uri_base, file.display()), &[("GNUTLS_SYSTEM_PRIORITY_FILE", &config)]);
    let (negotiated, peer) = expect_served(tcp.next(), &ran);
    assert!(negotiated.starts_with("TLSv1.2 ECDHE-PSK-"), "{negotiated}");
    assert_eq!(peer.as_deref(), Some("alice"));
}

#[test]
fn nbdinfo_psk_refusals() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server_file, _) = psk_file(tmp.path(), "server.psk", &["alice"]);
    // The same user name with another key, and a user the server has never heard of.
    let (client_file, _) = psk_file(tmp.path(), "client.psk", &["alice", "mallory"]);
    let tcp = NbdServer::start(server(TlsCredentials::Psk { file: server_file }), Where::Tcp);

    let ran = nbdinfo(&format!("nbds://alice@{}/x?tls-psk-file={}", tcp.uri_base, client_file.display()), &[]);
    let err = expect_refused(tcp.next(), &ran);
    assert!(err.starts_with("InvalidData:"), "{err}");

    let ran = nbdinfo(&format!("nbds://mallory@{}/x?tls-psk-file={}", tcp.uri_base, client_file.display()), &[]);
    let err = expect_refused(tcp.next(), &ran);
    assert!(err.contains("unknown PSK identity \"mallory\""), "{err}");
}

#[test]
fn nbdinfo_x509_over_tcp_and_unix() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::generate(tmp.path());
    let creds = TlsCredentials::X509 { dir: pki.server_dir.clone(), verify_peer: false };
    let certs = pki.client_anon_dir.display();

    let tcp = NbdServer::start(server(creds.clone()), Where::Tcp);
    let ran = nbdinfo(&format!("nbds://{}/x?tls-certificates={certs}", tcp.uri_base), &[]);
    let (negotiated, peer) = expect_served(tcp.next(), &ran);
    assert!(negotiated.starts_with("TLSv1.3 "), "{negotiated}");
    assert_eq!(peer, None);

    let config = no_tls13_config(tmp.path());
    let ran = nbdinfo(&format!("nbds://{}/x?tls-certificates={certs}", tcp.uri_base), &[("GNUTLS_SYSTEM_PRIORITY_FILE", &config)]);
    let (negotiated, _) = expect_served(tcp.next(), &ran);
    assert!(negotiated.starts_with("TLSv1.2 ECDHE-RSA-"), "{negotiated}");

    let unix = NbdServer::start(server(creds), Where::Unix(tmp.path()));
    let ran = nbdinfo(&format!("nbds+unix:///x?socket={}&tls-certificates={certs}", unix.uri_base), &[]);
    expect_served(unix.next(), &ran);
}

#[test]
fn nbdinfo_x509_client_certificates() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::generate(tmp.path());
    let tcp = NbdServer::start(server(TlsCredentials::X509 { dir: pki.server_dir.clone(), verify_peer: true }), Where::Tcp);

    let ran = nbdinfo(&format!("nbds://{}/x?tls-certificates={}", tcp.uri_base, pki.client_dir.display()), &[]);
    let (_, peer) = expect_served(tcp.next(), &ran);
    assert_eq!(peer.as_deref(), Some("O=Plexus,CN=alice"));

    let ran = nbdinfo(&format!("nbds://{}/x?tls-certificates={}", tcp.uri_base, pki.client_anon_dir.display()), &[]);
    let err = expect_refused(tcp.next(), &ran);
    assert!(err.starts_with("PermissionDenied:") && err.contains("no certificate"), "{err}");

    // GnuTLS only sends a certificate from one of the CAs the server names, so a foreign one
    // arrives as no certificate at all (gnutls-cli, which sends it anyway, is tested apart).
    let ran = nbdinfo(&format!("nbds://{}/x?tls-certificates={}", tcp.uri_base, pki.stranger_client_dir.display()), &[]);
    let err = expect_refused(tcp.next(), &ran);
    assert!(err.starts_with("PermissionDenied:"), "{err}");
}

#[test]
fn nbdinfo_refuses_a_server_from_an_untrusted_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::generate(tmp.path());
    let tcp = NbdServer::start(server(TlsCredentials::X509 { dir: pki.server_dir.clone(), verify_peer: false }), Where::Tcp);
    let ran = nbdinfo(&format!("nbds://{}/x?tls-certificates={}", tcp.uri_base, pki.stranger_dir.display()), &[]);
    expect_refused(tcp.next(), &ran);
}

#[test]
fn nbdcopy_reads_the_export_through_tls() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (file, _) = psk_file(tmp.path(), "keys.psk", &["alice"]);
    let pki = Pki::generate(tmp.path());
    let want = pattern(0, EXPORT_SIZE as usize);

    let psk = NbdServer::start(server(TlsCredentials::Psk { file: file.clone() }), Where::Tcp);
    let x509 = NbdServer::start(server(TlsCredentials::X509 { dir: pki.server_dir.clone(), verify_peer: true }), Where::Tcp);
    // localhost, not 127.0.0.1: libnbd checks the certificate's DNS name this time.
    let x509_port = x509.uri_base.rsplit(':').next().expect("port").to_string();
    for (srv, uri, name) in [
        (&psk, format!("nbds://alice@{}/x?tls-psk-file={}", psk.uri_base, file.display()), "psk.img"),
        (&x509, format!("nbds://localhost:{x509_port}/x?tls-certificates={}", pki.client_dir.display()), "x509.img"),
    ] {
        let out = tmp.path().join(name);
        let mut cmd = Command::new(tool("nbdcopy", "libnbd-bin"));
        cmd.arg(&uri).arg(&out);
        let ran = run(cmd, b"");
        assert!(ran.status.success(), "{uri}: {}", ran.describe());
        let session = srv.next();
        assert_eq!(session.read_bytes, EXPORT_SIZE, "{session:?}");
        assert!(matches!(session.tls, Some(Ok(_))), "{session:?}");
        let got = std::fs::read(&out).expect("read the copy");
        assert!(got == want, "{uri}: the copy differs from the export ({} bytes)", got.len());
    }
}

/// qemu's NBD client is GnuTLS too, but with its own credential objects: `tls-creds-psk` wants a
/// directory holding `keys.psk`, `tls-creds-x509` the same layout as libnbd's.
#[test]
fn qemu_img_reads_through_tls() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let psk_dir = tmp.path().join("qemu-psk");
    std::fs::create_dir(&psk_dir).expect("mkdir");
    let (file, _) = psk_file(&psk_dir, "keys.psk", &["alice"]);
    let pki = Pki::generate(tmp.path());
    let want = pattern(0, EXPORT_SIZE as usize);

    let psk = NbdServer::start(server(TlsCredentials::Psk { file }), Where::Tcp);
    let x509 = NbdServer::start(server(TlsCredentials::X509 { dir: pki.server_dir.clone(), verify_peer: true }), Where::Tcp);
    for (srv, object, name) in [
        (&psk, format!("tls-creds-psk,id=tls0,endpoint=client,username=alice,dir={}", psk_dir.display()), "psk.raw"),
        (&x509, format!("tls-creds-x509,id=tls0,endpoint=client,dir={}", pki.client_dir.display()), "x509.raw"),
    ] {
        let (host, port) = srv.uri_base.rsplit_once(':').expect("host:port");
        let source = format!("driver=nbd,server.type=inet,server.host={host},server.port={port},export=x,tls-creds=tls0");
        let out = tmp.path().join(name);
        let mut cmd = Command::new(tool("qemu-img", "qemu-utils"));
        cmd.args(["convert", "--object", &object, "--image-opts", &source, "-O", "raw"]).arg(&out);
        let ran = run(cmd, b"");
        assert!(ran.status.success(), "{object}: {}", ran.describe());
        let session = srv.next();
        assert_eq!(session.plain_options, vec![OPT_STARTTLS], "{session:?}");
        assert!(matches!(session.tls, Some(Ok(_))), "{session:?}");
        eprintln!("qemu-img served over {:?}", session.tls);
        let got = std::fs::read(&out).expect("read the copy");
        assert!(got == want, "{object}: the copy differs from the export ({} bytes)", got.len());
    }
}
