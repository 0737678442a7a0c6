//! Loading credentials: each mistake an operator makes is an error naming the file, with a
//! stable code, before any client connects. And a revoked client certificate (`ca-crl.pem`) is
//! refused at the handshake.

mod common;

use std::path::Path;
use std::process::Command;

use common::{certtool, echo_server, next, run, tool, Outcome, Pki};
use plexus_tls::{TlsCredentials, TlsError, TlsServer};

fn load_err(creds: TlsCredentials) -> TlsError {
    match TlsServer::new(&creds) {
        Ok(_) => panic!("{creds:?} loaded"),
        Err(e) => e,
    }
}

fn x509(dir: &Path, verify_peer: bool) -> TlsCredentials {
    TlsCredentials::X509 { dir: dir.to_path_buf(), verify_peer }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readdir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn x509_directory_mistakes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::generate(tmp.path());
    let good = &pki.server_dir;
    assert!(TlsServer::new(&x509(good, true)).is_ok_and(|s| !s.is_psk()));

    let e = load_err(x509(&tmp.path().join("nowhere"), false));
    assert_eq!(e.code(), "E_NOENT", "{e}");
    assert!(e.to_string().contains("nowhere"), "{e}");

    let e = load_err(x509(&good.join("server-cert.pem"), false));
    assert_eq!(e.code(), "E_INVALID", "{e}");
    assert!(e.to_string().contains("not a directory"), "{e}");

    let case = |name: &str, edit: &dyn Fn(&Path)| {
        let dir = tmp.path().join(name);
        copy_dir(good, &dir);
        edit(&dir);
        dir
    };

    let dir = case("no-key", &|d| std::fs::remove_file(d.join("server-key.pem")).expect("rm"));
    let e = load_err(x509(&dir, false));
    assert_eq!(e.code(), "E_NOENT", "{e}");
    assert!(e.to_string().contains("server-key.pem"), "{e}");

    let dir = case("bad-pem", &|d| std::fs::write(d.join("server-cert.pem"), "hello\n").expect("write"));
    let e = load_err(x509(&dir, false));
    assert_eq!(e.code(), "E_INVALID", "{e}");
    assert!(e.to_string().contains("server-cert.pem"), "{e}");

    let dir = case("bad-key", &|d| {
        std::fs::write(d.join("server-key.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").expect("write")
    });
    let e = load_err(x509(&dir, false));
    assert_eq!(e.code(), "E_INVALID", "{e}");
    assert!(e.to_string().contains("server-key.pem: not an unencrypted PEM private key"), "{e}");

    let dir = case("encrypted-key", &|d| {
        certtool(&["--generate-privkey", "--pkcs8", "--password=secret", "--outfile", "server-key.pem"], d);
    });
    let e = load_err(x509(&dir, false));
    assert_eq!(e.code(), "E_INVALID", "{e}");
    assert!(e.to_string().contains("server-key.pem: is encrypted"), "{e}");

    let work = pki.work.clone();
    let dir = case("wrong-key", &|d| std::fs::copy(work.join("client-key.pem"), d.join("server-key.pem")).map(drop).expect("copy"));
    let e = load_err(x509(&dir, false));
    assert_eq!(e.code(), "E_INVALID", "{e}");
    assert!(e.to_string().contains("server-key.pem: does not match the certificate"), "{e}");

    let work = pki.work.clone();
    let dir = case("other-ca", &|d| std::fs::copy(work.join("other-ca-cert.pem"), d.join("ca-cert.pem")).map(drop).expect("copy"));
    let e = load_err(x509(&dir, false));
    assert_eq!(e.code(), "E_INVALID", "{e}");
    assert!(e.to_string().contains("server-cert.pem: does not verify against"), "{e}");

    // ca-cert.pem is only needed to check clients; without it the server still serves.
    let dir = case("no-ca", &|d| std::fs::remove_file(d.join("ca-cert.pem")).expect("rm"));
    assert!(TlsServer::new(&x509(&dir, false)).is_ok());
    let e = load_err(x509(&dir, true));
    assert_eq!(e.code(), "E_NOENT", "{e}");
    assert!(e.to_string().contains("ca-cert.pem"), "{e}");

    let dir = case("bad-crl", &|d| std::fs::write(d.join("ca-crl.pem"), "not a crl\n").expect("write"));
    let e = load_err(x509(&dir, true));
    assert_eq!(e.code(), "E_INVALID", "{e}");
    assert!(e.to_string().contains("ca-crl.pem"), "{e}");
}

#[test]
fn psk_file_mistakes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let psk = |text: &[u8]| {
        let file = tmp.path().join("keys.psk");
        std::fs::write(&file, text).expect("write");
        TlsCredentials::Psk { file }
    };
    assert!(TlsServer::new(&psk(b"alice:0011\n")).is_ok_and(|s| s.is_psk()));

    let e = load_err(TlsCredentials::Psk { file: tmp.path().join("missing.psk") });
    assert_eq!(e.code(), "E_NOENT", "{e}");
    assert!(e.to_string().contains("missing.psk"), "{e}");

    let e = load_err(psk(b"alice:0011\nbob 0011\n"));
    assert_eq!(e.code(), "E_INVALID", "{e}");
    assert!(e.to_string().ends_with("keys.psk:2: expected username:hexkey (no ':' on the line)"), "{e}");

    let e = load_err(psk(b"\xff\xfe"));
    assert_eq!(e.code(), "E_INVALID", "{e}");

    let e = load_err(psk(b""));
    assert_eq!(e.code(), "E_INVALID", "{e}");
    assert!(e.to_string().contains("no username:hexkey lines"), "{e}");
}

#[test]
fn revoked_client_certificate_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::generate(tmp.path());
    std::fs::write(pki.work.join("crl.info"), "crl_next_update = 30\ncrl_number = 1\n").expect("write");
    certtool(
        &[
            "--generate-crl",
            "--load-ca-privkey",
            "ca-key.pem",
            "--load-ca-certificate",
            "ca-cert.pem",
            "--load-certificate",
            "client-cert.pem",
            "--template",
            "crl.info",
            "--outfile",
            "ca-crl.pem",
        ],
        &pki.work,
    );
    let dir = tmp.path().join("server-crl");
    copy_dir(&pki.server_dir, &dir);
    std::fs::copy(pki.work.join("ca-crl.pem"), dir.join("ca-crl.pem")).expect("copy");

    let (port, rx) = echo_server(TlsServer::new(&x509(&dir, true)).expect("load with a CRL"));
    let mut cmd = Command::new(tool("gnutls-cli", "gnutls-bin"));
    cmd.args(["-p", &port.to_string(), "127.0.0.1"]);
    cmd.arg("--x509cafile").arg(pki.client_dir.join("ca-cert.pem"));
    cmd.arg("--x509certfile").arg(pki.client_dir.join("client-cert.pem"));
    cmd.arg("--x509keyfile").arg(pki.client_dir.join("client-key.pem"));
    let ran = run(cmd, b"hello plexus\n");
    match next(&rx) {
        Outcome::Failed { kind, message } => {
            assert_eq!(kind, std::io::ErrorKind::PermissionDenied, "{message}");
            assert!(message.contains("revoked"), "{message}");
        }
        Outcome::Done { .. } => panic!("a revoked certificate got through: {}", ran.describe()),
    }
}

#[test]
fn a_chain_through_an_intermediate_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::generate(tmp.path());
    let w = &pki.work;
    std::fs::write(w.join("mid.info"), "cn = Plexus intermediate CA\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 30\n")
        .expect("write");
    certtool(&["--generate-privkey", "--outfile", "mid-key.pem"], w);
    certtool(&["--generate-privkey", "--outfile", "leaf-key.pem"], w);
    certtool(
        &[
            "--generate-certificate",
            "--load-ca-certificate",
            "ca-cert.pem",
            "--load-ca-privkey",
            "ca-key.pem",
            "--load-privkey",
            "mid-key.pem",
            "--template",
            "mid.info",
            "--outfile",
            "mid-cert.pem",
        ],
        w,
    );
    certtool(
        &[
            "--generate-certificate",
            "--load-ca-certificate",
            "mid-cert.pem",
            "--load-ca-privkey",
            "mid-key.pem",
            "--load-privkey",
            "leaf-key.pem",
            "--template",
            "server.info",
            "--outfile",
            "leaf-cert.pem",
        ],
        w,
    );
    let dir = tmp.path().join("chained");
    std::fs::create_dir(&dir).expect("mkdir");
    let chain = [std::fs::read(w.join("leaf-cert.pem")).expect("read"), std::fs::read(w.join("mid-cert.pem")).expect("read")].concat();
    std::fs::write(dir.join("server-cert.pem"), chain).expect("write");
    std::fs::copy(w.join("leaf-key.pem"), dir.join("server-key.pem")).expect("copy");
    std::fs::copy(w.join("ca-cert.pem"), dir.join("ca-cert.pem")).expect("copy");

    // The client knows only the root: the intermediate must come from the server.
    let (port, rx) = echo_server(TlsServer::new(&x509(&dir, false)).expect("load a chain"));
    let mut cmd = Command::new(tool("gnutls-cli", "gnutls-bin"));
    cmd.args(["-p", &port.to_string(), "127.0.0.1"]).arg("--x509cafile").arg(w.join("ca-cert.pem"));
    let ran = run(cmd, b"hello plexus\n");
    assert!(matches!(next(&rx), Outcome::Done { .. }), "{}", ran.describe());
    assert!(ran.stdout.contains("echo: hello plexus"), "{}", ran.describe());

    // An intermediate alone in ca-cert.pem is an anchor, as GnuTLS clients treat it.
    std::fs::copy(w.join("mid-cert.pem"), dir.join("ca-cert.pem")).expect("copy");
    assert!(TlsServer::new(&x509(&dir, true)).is_ok());
}
