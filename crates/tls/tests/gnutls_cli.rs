//! GnuTLS interop through `gnutls-cli`, the same library libnbd uses, for both kinds of
//! credentials, and the refusals: wrong key, unknown identity, untrusted CA, missing or foreign
//! client certificate, a silent client, a client that does not speak TLS.

mod common;

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{echo_server, next, psk_file, run, server, tool, Outcome, Pki};
use plexus_tls::TlsCredentials;

/// libnbd's priority string for PSK (lib/crypto.c): the default plus the PSK key exchanges.
const LIBNBD_PSK_PRIORITY: &str = "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK";

fn gnutls_cli(port: u16) -> Command {
    let mut cmd = Command::new(tool("gnutls-cli", "gnutls-bin"));
    cmd.args(["-p", &port.to_string(), "127.0.0.1"]);
    cmd
}

fn psk_cli(port: u16, user: &str, key: &str, priority: &str) -> Command {
    let mut cmd = gnutls_cli(port);
    cmd.args(["--pskusername", user, "--pskkey", key, "--priority", priority]);
    cmd
}

fn x509_cli(port: u16, dir: &std::path::Path, with_cert: bool) -> Command {
    let mut cmd = gnutls_cli(port);
    cmd.arg("--x509cafile").arg(dir.join("ca-cert.pem"));
    if with_cert {
        cmd.arg("--x509certfile").arg(dir.join("client-cert.pem")).arg("--x509keyfile").arg(dir.join("client-key.pem"));
    }
    cmd
}

fn expect_done(outcome: Outcome, ran: &common::Ran) -> (String, Option<String>) {
    match outcome {
        Outcome::Done { negotiated, peer, line } => {
            assert_eq!(line, "hello plexus", "{}", ran.describe());
            assert!(ran.stdout.contains("echo: hello plexus"), "the echo did not come back: {}", ran.describe());
            (negotiated, peer)
        }
        Outcome::Failed { kind, message } => panic!("server refused ({kind:?}): {message}\n{}", ran.describe()),
    }
}

fn expect_failed(outcome: Outcome, ran: &common::Ran) -> (ErrorKind, String) {
    assert!(!ran.stdout.contains("echo:"), "the client got through: {}", ran.describe());
    match outcome {
        Outcome::Failed { kind, message } => (kind, message),
        Outcome::Done { negotiated, .. } => panic!("server accepted ({negotiated}): {}", ran.describe()),
    }
}

#[test]
fn psk_with_libnbd_priority_negotiates_tls13() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (file, keys) = psk_file(tmp.path(), "keys.psk", &["alice", "bob"]);
    let (port, rx) = echo_server(server(TlsCredentials::Psk { file }));

    let ran = run(psk_cli(port, "alice", &keys[0], LIBNBD_PSK_PRIORITY), b"hello plexus\n");
    let (negotiated, peer) = expect_done(next(&rx), &ran);
    assert!(negotiated.starts_with("TLSv1.3 "), "{negotiated}");
    assert_eq!(peer.as_deref(), Some("alice"));
    assert!(ran.stdout.contains("hello alice"), "{}", ran.describe());

    // The second user's key is looked up by identity, not taken from the first line.
    let ran = run(psk_cli(port, "bob", &keys[1], LIBNBD_PSK_PRIORITY), b"hello plexus\n");
    let (_, peer) = expect_done(next(&rx), &ran);
    assert_eq!(peer.as_deref(), Some("bob"));
}

#[test]
fn psk_without_ephemeral_exchange_is_refused() {
    // Plain PSK has no forward secrecy: a key that leaks later would decrypt every recorded
    // session, so neither TLS 1.3 psk_ke nor TLS 1.2 PSK-* suites are offered.
    let tmp = tempfile::tempdir().expect("tempdir");
    let (file, keys) = psk_file(tmp.path(), "keys.psk", &["alice"]);
    let (port, rx) = echo_server(server(TlsCredentials::Psk { file }));
    for priority in ["NORMAL:-VERS-TLS1.3:-KX-ALL:+PSK", "NORMAL:-KX-ALL:+PSK:-GROUP-ALL"] {
        let ran = run(psk_cli(port, "alice", &keys[0], priority), b"hello plexus\n");
        assert!(!ran.status.success(), "{priority}: {}", ran.describe());
        expect_failed(next(&rx), &ran);
    }
}

#[test]
fn psk_wrong_key_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (file, _) = psk_file(tmp.path(), "keys.psk", &["alice"]);
    let (port, rx) = echo_server(server(TlsCredentials::Psk { file }));
    let wrong = "00".repeat(32);
    let ran = run(psk_cli(port, "alice", &wrong, LIBNBD_PSK_PRIORITY), b"hello plexus\n");
    assert!(!ran.status.success(), "{}", ran.describe());
    let (kind, message) = expect_failed(next(&rx), &ran);
    assert_eq!(kind, ErrorKind::InvalidData, "{message}");
    assert!(message.contains("\"alice\""), "{message}");
}

#[test]
fn psk_unknown_identity_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (file, keys) = psk_file(tmp.path(), "keys.psk", &["alice"]);
    let (port, rx) = echo_server(server(TlsCredentials::Psk { file }));
    let ran = run(psk_cli(port, "mallory", &keys[0], LIBNBD_PSK_PRIORITY), b"hello plexus\n");
    assert!(!ran.status.success(), "{}", ran.describe());
    let (kind, message) = expect_failed(next(&rx), &ran);
    assert_eq!(kind, ErrorKind::PermissionDenied, "{message}");
    assert!(message.contains("unknown PSK identity \"mallory\""), "{message}");
}

#[test]
fn x509_client_trusting_the_ca_connects() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::generate(tmp.path());
    let (port, rx) = echo_server(server(TlsCredentials::X509 { dir: pki.server_dir.clone(), verify_peer: false }));
    let ran = run(x509_cli(port, &pki.client_anon_dir, false), b"hello plexus\n");
    let (negotiated, peer) = expect_done(next(&rx), &ran);
    assert!(negotiated.starts_with("TLSv1.3 "), "{negotiated}");
    assert_eq!(peer, None);

    let mut tls12 = x509_cli(port, &pki.client_anon_dir, false);
    tls12.args(["--priority", "NORMAL:-VERS-TLS1.3"]);
    let ran = run(tls12, b"hello plexus\n");
    let (negotiated, _) = expect_done(next(&rx), &ran);
    assert!(negotiated.starts_with("TLSv1.2 ECDHE-RSA-"), "{negotiated}");
}

#[test]
fn x509_client_with_another_ca_refuses_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::generate(tmp.path());
    let (port, rx) = echo_server(server(TlsCredentials::X509 { dir: pki.server_dir.clone(), verify_peer: false }));
    let ran = run(x509_cli(port, &pki.stranger_dir, false), b"hello plexus\n");
    assert!(!ran.status.success(), "{}", ran.describe());
    assert!(ran.stdout.contains("NOT trusted"), "{}", ran.describe());
    expect_failed(next(&rx), &ran);
}

#[test]
fn x509_verify_peer_wants_a_client_certificate_from_the_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::generate(tmp.path());
    let (port, rx) = echo_server(server(TlsCredentials::X509 { dir: pki.server_dir.clone(), verify_peer: true }));

    let ran = run(x509_cli(port, &pki.client_dir, true), b"hello plexus\n");
    let (_, peer) = expect_done(next(&rx), &ran);
    assert_eq!(peer.as_deref(), Some("O=Plexus,CN=alice"));

    let ran = run(x509_cli(port, &pki.client_anon_dir, false), b"hello plexus\n");
    let (kind, message) = expect_failed(next(&rx), &ran);
    assert_eq!(kind, ErrorKind::PermissionDenied, "{message}");

    let ran = run(x509_cli(port, &pki.stranger_client_dir, true), b"hello plexus\n");
    let (kind, message) = expect_failed(next(&rx), &ran);
    assert_eq!(kind, ErrorKind::PermissionDenied, "{message}");
    assert!(message.contains("client certificate"), "{message}");
}

#[test]
fn a_silent_client_times_out() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (file, _) = psk_file(tmp.path(), "keys.psk", &["alice"]);
    let tls = server(TlsCredentials::Psk { file });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (conn, _) = listener.accept().expect("accept");
    conn.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let start = Instant::now();
    let err = tls.accept(conn).expect_err("a silent client got a session");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    drop(client);
}

#[test]
fn plain_text_and_hang_ups_are_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (file, _) = psk_file(tmp.path(), "keys.psk", &["alice"]);
    let tls = server(TlsCredentials::Psk { file });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");

    let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    client.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
    let (conn, _) = listener.accept().expect("accept");
    conn.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let err = tls.accept(conn).expect_err("HTTP got a TLS session");
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");

    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    drop(client);
    let (conn, _) = listener.accept().expect("accept");
    conn.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let err = tls.accept(conn).expect_err("a closed socket got a TLS session");
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
    assert!(err.to_string().contains("closed the connection"), "{err}");
}
