//! Shared by the interop tests: the GnuTLS tools (which fail the test, naming the Debian package,
//! when missing), a throw-away PKI made with `certtool`, PSK files made with `psktool`, and a
//! loopback server that hands each handshake's outcome back to the test.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use plexus_tls::{TlsCredentials, TlsServer};

/// How long any client command may run before the test calls it hung.
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(30);

/// Finds `name` on PATH or fails the test with the Debian package that provides it: an interop
/// test that skipped itself would report a proof that was never made.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} is not installed: it comes with the Debian package {package} (apt-get install {package})");
}

/// What a finished client command printed.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn describe(&self) -> String {
        format!("exit {}\n--- stdout\n{}\n--- stderr\n{}", self.status, self.stdout, self.stderr)
    }
}

/// Runs `cmd`, writes `input` to its stdin and keeps stdin open until the command exits on its
/// own (gnutls-cli quits at end of input, before the server's answer could arrive).
pub fn run(mut cmd: Command, input: &[u8]) -> Ran {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let what = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write to the client's stdin");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > CLIENT_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {CLIENT_DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    Ran { status, stdout: out_t.join().expect("stdout reader"), stderr: err_t.join().expect("stderr reader") }
}

pub fn certtool(args: &[&str], dir: &Path) {
    let out = Command::new(tool("certtool", "gnutls-bin")).args(args).current_dir(dir).output().expect("run certtool");
    assert!(out.status.success(), "certtool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA with a server certificate (for `localhost` and 127.0.0.1) and a client certificate
/// (`CN=alice`), laid out as the server and libnbd expect, plus a second, unrelated CA.
pub struct Pki {
    /// Everything certtool made: keys, certificates, templates of both CAs.
    pub work: PathBuf,
    /// `ca-cert.pem`, `server-cert.pem`, `server-key.pem`.
    pub server_dir: PathBuf,
    /// `ca-cert.pem` only: a client that trusts the CA but has no certificate of its own.
    pub client_anon_dir: PathBuf,
    /// `ca-cert.pem`, `client-cert.pem`, `client-key.pem`.
    pub client_dir: PathBuf,
    /// The other CA's `ca-cert.pem`: trusts nothing this PKI issued.
    pub stranger_dir: PathBuf,
    /// `client-cert.pem`, `client-key.pem` issued by the other CA (plus this PKI's `ca-cert.pem`).
    pub stranger_client_dir: PathBuf,
}

impl Pki {
    pub fn generate(root: &Path) -> Pki {
        let work = root.join("work");
        std::fs::create_dir_all(&work).expect("mkdir");
        std::fs::write(work.join("ca.info"), "cn = Plexus test CA\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 30\n")
            .expect("write");
        std::fs::write(work.join("other-ca.info"), "cn = Someone else's CA\nca\ncert_signing_key\nexpiration_days = 30\n").expect("write");
        std::fs::write(
            work.join("server.info"),
            "organization = Plexus\ncn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\n\
             encryption_key\nsigning_key\nexpiration_days = 30\n",
        )
        .expect("write");
        std::fs::write(
            work.join("client.info"),
            "organization = Plexus\ncn = alice\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 30\n",
        )
        .expect("write");
        // certtool's default RSA keys: qemu refuses an ECDSA client certificate because its key
        // usage cannot include key encipherment.
        for key in ["ca-key.pem", "other-ca-key.pem", "server-key.pem", "client-key.pem", "other-client-key.pem"] {
            certtool(&["--generate-privkey", "--outfile", key], &work);
        }
        certtool(&["--generate-self-signed", "--load-privkey", "ca-key.pem", "--template", "ca.info", "--outfile", "ca-cert.pem"], &work);
        certtool(
            &[
                "--generate-self-signed",
                "--load-privkey",
                "other-ca-key.pem",
                "--template",
                "other-ca.info",
                "--outfile",
                "other-ca-cert.pem",
            ],
            &work,
        );
        for (key, ca, info, out) in [
            ("server-key.pem", "ca", "server.info", "server-cert.pem"),
            ("client-key.pem", "ca", "client.info", "client-cert.pem"),
            ("other-client-key.pem", "other-ca", "client.info", "other-client-cert.pem"),
        ] {
            let ca_cert = format!("{ca}-cert.pem");
            let ca_key = format!("{ca}-key.pem");
            certtool(
                &[
                    "--generate-certificate",
                    "--load-ca-certificate",
                    &ca_cert,
                    "--load-ca-privkey",
                    &ca_key,
                    "--load-privkey",
                    key,
                    "--template",
                    info,
                    "--outfile",
                    out,
                ],
                &work,
            );
        }
        let lay = |name: &str, files: &[(&str, &str)]| {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).expect("mkdir");
            for (from, to) in files {
                std::fs::copy(work.join(from), dir.join(to)).expect("copy");
            }
            dir
        };
        Pki {
            work: work.clone(),
            server_dir: lay(
                "server",
                &[("ca-cert.pem", "ca-cert.pem"), ("server-cert.pem", "server-cert.pem"), ("server-key.pem", "server-key.pem")],
            ),
            client_anon_dir: lay("client-anon", &[("ca-cert.pem", "ca-cert.pem")]),
            client_dir: lay(
                "client",
                &[("ca-cert.pem", "ca-cert.pem"), ("client-cert.pem", "client-cert.pem"), ("client-key.pem", "client-key.pem")],
            ),
            stranger_dir: lay("stranger", &[("other-ca-cert.pem", "ca-cert.pem")]),
            stranger_client_dir: lay(
                "stranger-client",
                &[("ca-cert.pem", "ca-cert.pem"), ("other-client-cert.pem", "client-cert.pem"), ("other-client-key.pem", "client-key.pem")],
            ),
        }
    }
}

/// Makes a PSK file with a fresh random key for each user (`psktool -u USER -p FILE`), returning
/// the file and each user's hex key as written.
pub fn psk_file(dir: &Path, name: &str, users: &[&str]) -> (PathBuf, Vec<String>) {
    let file = dir.join(name);
    for user in users {
        let out = Command::new(tool("psktool", "gnutls-bin")).args(["-u", user, "-p"]).arg(&file).output().expect("run psktool");
        assert!(out.status.success(), "psktool -u {user}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = std::fs::read_to_string(&file).expect("read the PSK file");
    let keys = users
        .iter()
        .map(|user| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{user}:")))
                .unwrap_or_else(|| panic!("psktool wrote no line for {user}: {text}"))
                .to_string()
        })
        .collect();
    (file, keys)
}

pub fn server(creds: TlsCredentials) -> TlsServer {
    TlsServer::new(&creds).unwrap_or_else(|e| panic!("TlsServer::new({creds:?}): {e} ({})", e.code()))
}

/// What the server saw of one connection.
#[derive(Debug)]
pub enum Outcome {
    /// Handshake done: `negotiated()`, `peer_identity()` and the line the client sent.
    Done { negotiated: String, peer: Option<String>, line: String },
    /// Handshake refused.
    Failed { kind: std::io::ErrorKind, message: String },
}

/// Accepts connections on 127.0.0.1; for each, runs the TLS handshake, sends `hello IDENTITY`,
/// echoes one line back as `echo: LINE`, then closes. Each outcome goes to the receiver.
pub fn echo_server(tls: TlsServer) -> (u16, mpsc::Receiver<Outcome>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let tls = tls.clone();
            let tx = tx.clone();
            thread::spawn(move || {
                let _ = tx.send(echo_one(&tls, conn));
            });
        }
    });
    (port, rx)
}

fn echo_one(tls: &TlsServer, conn: TcpStream) -> Outcome {
    conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    conn.set_write_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut s = match tls.accept(conn) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed { kind: e.kind(), message: e.to_string() },
    };
    let negotiated = plexus_tls::negotiated(&s);
    let peer = plexus_tls::peer_identity(&s);
    let _ = writeln!(s, "hello {}", peer.as_deref().unwrap_or("anonymous"));
    let _ = s.flush();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(1) = s.read(&mut byte) {
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    let _ = writeln!(s, "echo: {line}");
    let _ = s.flush();
    let _ = s.shutdown();
    Outcome::Done { negotiated, peer, line }
}

/// The outcome of the next connection, failing the test if none comes.
pub fn next(rx: &mpsc::Receiver<Outcome>) -> Outcome {
    rx.recv_timeout(CLIENT_DEADLINE).expect("the server saw no connection")
}
