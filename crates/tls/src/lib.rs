//! Server-side TLS for the NBD server's `NBD_OPT_STARTTLS`, interoperable with libnbd
//! (`nbdinfo`, `nbdcopy`, `nbdsh`), qemu and nbdkit clients, which all use GnuTLS.
//!
//! Two kinds of credentials, the same two that qemu-nbd and nbdkit offer:
//! - x509: a directory with `server-cert.pem`, `server-key.pem` and `ca-cert.pem` (plus an
//!   optional `ca-crl.pem`), optionally requiring client certificates signed by that CA;
//! - pre-shared keys: a `username:hexkey` file as written by GnuTLS's `psktool`, the key chosen
//!   by the identity the client presents (libnbd sends the URI's user name).
//!
//! OpenSSL does the work, because rustls has no external PSK. GnuTLS clients negotiate TLS 1.3
//! for both kinds (with PSK, the `psk_dhe_ke` mode: the key authenticates an ECDHE exchange);
//! TLS 1.2 is accepted for older clients. See `docs/nbd-tls.md`.

#![deny(unsafe_code)]
#![deny(clippy::unwrap_used)]

mod error;
mod psk;
mod x509;

use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use openssl::ex_data::Index;
use openssl::ssl::{
    ErrorCode, HandshakeError, Ssl, SslAcceptor, SslMethod, SslOptions, SslRef, SslSessionCacheMode, SslStream, SslVerifyMode, SslVersion,
};
use openssl::stack::Stack;
use openssl::x509::{X509NameRef, X509VerifyResult};

pub use error::{Result, TlsError};

/// Where the server's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsCredentials {
    /// A qemu-nbd/nbdkit style directory of PEM files; `verify_peer` requires client certificates
    /// signed by its `ca-cert.pem` (nbdkit's `--tls-verify-peer`).
    X509 {
        /// Directory holding `server-cert.pem`, `server-key.pem`, `ca-cert.pem` (and `ca-crl.pem`).
        dir: PathBuf,
        /// Refuse clients without a certificate from the CA.
        verify_peer: bool,
    },
    /// A `username:hexkey` file (`psktool` format, nbdkit's `--tls-psk`).
    Psk {
        /// The key file.
        file: PathBuf,
    },
}

/// TLS 1.2 suites for PSK: only those with an ephemeral exchange, so a leaked key does not
/// decrypt recorded sessions. libnbd offers ECDHE-PSK and DHE-PSK besides plain PSK.
const PSK_TLS12_CIPHERS: &str = "ECDHE-PSK-CHACHA20-POLY1305:ECDHE-PSK-AES256-CBC-SHA384:ECDHE-PSK-AES128-CBC-SHA256:\
                                 DHE-PSK-AES256-GCM-SHA384:DHE-PSK-AES128-GCM-SHA256:DHE-PSK-CHACHA20-POLY1305";

/// The PSK identity a client presented during a handshake, kept on the connection so that a
/// failed handshake can say which identity was refused and a finished one who the peer is.
#[derive(Debug, Clone)]
struct SeenIdentity {
    identity: String,
    known: bool,
}

/// One slot per process: OpenSSL's ex_data indexes are global and never freed.
fn identity_index() -> Result<Index<Ssl, SeenIdentity>> {
    static INDEX: OnceLock<std::result::Result<Index<Ssl, SeenIdentity>, String>> = OnceLock::new();
    INDEX
        .get_or_init(|| Ssl::new_ex_index().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| TlsError::Setup { detail: format!("ex_data index: {e}") })
}

/// A loaded set of credentials that upgrades connected streams to TLS as their server.
#[derive(Clone)]
pub struct TlsServer {
    acceptor: SslAcceptor,
    psk: bool,
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServer").field("mode", &if self.psk { "psk" } else { "x509" }).finish()
    }
}

impl TlsServer {
    /// Loads and checks the credentials; every problem with a file names the file (and line).
    pub fn new(creds: &TlsCredentials) -> Result<TlsServer> {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(TlsError::setup("TLS defaults"))?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2)).map_err(TlsError::setup("minimum TLS version"))?;
        // NBD clients open one connection per handle and never resume, so session state would
        // only be kept for nothing (and resumption under client verification needs more set-up).
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        b.set_num_tickets(0).map_err(TlsError::setup("session tickets"))?;
        // GnuTLS clients list AES-256-GCM, then ChaCha20, then AES-128-GCM; a PSK from the file
        // is bound to SHA-256, which rules out the first, and on the servers this runs on
        // (AES-NI) AES-GCM moves an image's blocks faster than ChaCha20 does.
        b.set_ciphersuites("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256")
            .map_err(TlsError::setup("TLS 1.3 cipher suites"))?;
        b.set_options(SslOptions::CIPHER_SERVER_PREFERENCE);
        let psk = match creds {
            TlsCredentials::X509 { dir, verify_peer } => {
                let loaded = x509::X509Dir::load(dir, *verify_peer)?;
                let Some((leaf, intermediates)) = loaded.chain.split_first() else {
                    return Err(TlsError::invalid(&dir.join("server-cert.pem"), "no certificate"));
                };
                let cert_path = dir.join("server-cert.pem");
                b.set_certificate(leaf).map_err(|e| TlsError::invalid(&cert_path, format!("unusable certificate ({e})")))?;
                for c in intermediates {
                    b.add_extra_chain_cert(c.clone()).map_err(|e| TlsError::invalid(&cert_path, format!("unusable chain ({e})")))?;
                }
                let key_path = dir.join("server-key.pem");
                b.set_private_key(&loaded.key).map_err(|e| TlsError::invalid(&key_path, format!("unusable key ({e})")))?;
                b.check_private_key().map_err(|e| TlsError::invalid(&key_path, format!("does not match server-cert.pem ({e})")))?;
                if let Some(store) = loaded.client_store {
                    let mut names = Stack::new().map_err(TlsError::setup("CA name list"))?;
                    for ca in &loaded.cas {
                        names
                            .push(ca.subject_name().to_owned().map_err(TlsError::setup("CA name"))?)
                            .map_err(TlsError::setup("CA name list"))?;
                    }
                    // Tells the client which CA to pick a certificate from.
                    b.set_client_ca_list(names);
                    b.set_verify_cert_store(store).map_err(TlsError::setup("client trust store"))?;
                    b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
                }
                false
            }
            TlsCredentials::Psk { file } => {
                let keys = Arc::new(psk::PskKeys::load(file)?);
                let index = identity_index()?;
                b.set_cipher_list(PSK_TLS12_CIPHERS).map_err(TlsError::setup("PSK cipher list"))?;
                b.set_psk_server_callback(move |ssl: &mut SslRef, identity: Option<&[u8]>, out: &mut [u8]| {
                    let Some(identity) = identity else { return Ok(0) };
                    let key = keys.get(identity);
                    ssl.set_ex_data(index, SeenIdentity { identity: String::from_utf8_lossy(identity).into_owned(), known: key.is_some() });
                    match key {
                        // Returning 0 makes OpenSSL treat the identity as unknown and fail the
                        // handshake (no certificate to fall back on).
                        Some(key) if key.len() <= out.len() => {
                            let (head, _) = out.split_at_mut(key.len());
                            head.copy_from_slice(key);
                            Ok(key.len())
                        }
                        _ => Ok(0),
                    }
                });
                true
            }
        };
        Ok(TlsServer { acceptor: b.build(), psk })
    }

    /// True for pre-shared-key credentials, false for x509.
    pub fn is_psk(&self) -> bool {
        self.psk
    }

    /// Performs the server handshake on a connected, blocking stream (for STARTTLS, the socket
    /// the plain negotiation ran on, right after `NBD_REP_ACK`).
    ///
    /// A read or write timeout set on the stream bounds each wait for the client: when one
    /// expires the handshake fails with `ErrorKind::TimedOut`. Refused credentials (unknown PSK
    /// identity, missing or untrusted client certificate) fail with `PermissionDenied`, other
    /// handshake failures (a wrong key among them, which TLS cannot tell from corruption) with
    /// `InvalidData`, a client hanging up with `UnexpectedEof`, and the stream's own I/O errors
    /// as they are.
    pub fn accept<S: Read + Write>(&self, stream: S) -> io::Result<SslStream<S>> {
        let ssl = Ssl::new(self.acceptor.context()).map_err(|e| io::Error::other(format!("TLS session set-up: {e}")))?;
        match ssl.accept(stream) {
            Ok(s) => Ok(s),
            Err(HandshakeError::SetupFailure(e)) => Err(io::Error::other(format!("TLS session set-up: {e}"))),
            // A blocking stream only says WouldBlock when its SO_RCVTIMEO/SO_SNDTIMEO expired.
            Err(HandshakeError::WouldBlock(_)) => Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
            Err(HandshakeError::Failure(mid)) => Err(handshake_error(mid.ssl(), mid.error())),
        }
    }
}

fn handshake_error(ssl: &SslRef, error: &openssl::ssl::Error) -> io::Error {
    if let Some(io_err) = error.io_error() {
        let kind = match io_err.kind() {
            io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut,
            k => k,
        };
        return io::Error::new(kind, format!("TLS handshake failed: {io_err}"));
    }
    if ssl_reason(error, SSL_R_UNEXPECTED_EOF_WHILE_READING) || (error.code() == ErrorCode::SYSCALL && error.io_error().is_none()) {
        return io::Error::new(io::ErrorKind::UnexpectedEof, "TLS handshake failed: the client closed the connection");
    }
    let seen = identity_index().ok().and_then(|i| ssl.ex_data(i)).cloned();
    if let Some(SeenIdentity { identity, known: false }) = seen {
        return io::Error::new(io::ErrorKind::PermissionDenied, format!("TLS handshake refused: unknown PSK identity {identity:?}"));
    }
    if ssl_reason(error, SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        return io::Error::new(
            io::ErrorKind::PermissionDenied,
            "TLS handshake refused: the client sent no certificate (one signed by ca-cert.pem is required)",
        );
    }
    let verify = ssl.verify_result();
    if verify != X509VerifyResult::OK {
        return io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("TLS handshake refused: client certificate: {} ({error})", verify.error_string()),
        );
    }
    let detail = match seen {
        Some(SeenIdentity { identity, .. }) => {
            format!("{error} (PSK identity {identity:?}: a wrong key shows as a bad binder or decrypt error)")
        }
        None => error.to_string(),
    };
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS handshake failed: {detail}"))
}

/// OpenSSL's `ERR_LIB_SSL`, the library of the reasons below.
const ERR_LIB_SSL: i32 = 20;
/// Verification asked for a client certificate and got none: the verify result stays OK then,
/// since there was nothing to verify.
const SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: i32 = 199;
/// OpenSSL 3's report of a peer closing mid-handshake (1.1.1 says SYSCALL without an errno).
const SSL_R_UNEXPECTED_EOF_WHILE_READING: i32 = 294;

/// Whether OpenSSL's error queue for this failure holds the SSL library's `reason`; matched by
/// code because the reason strings are for people and change between releases.
fn ssl_reason(error: &openssl::ssl::Error, reason: i32) -> bool {
    error.ssl_error().is_some_and(|stack| stack.errors().iter().any(|e| e.library_code() == ERR_LIB_SSL && e.reason_code() == reason))
}

/// Who the peer authenticated as: the PSK identity, or the subject of the verified client
/// certificate (`CN=...,O=...`); `None` for an anonymous x509 client.
pub fn peer_identity<S>(stream: &SslStream<S>) -> Option<String> {
    let ssl = stream.ssl();
    if let Some(seen) = identity_index().ok().and_then(|i| ssl.ex_data(i)) {
        return Some(seen.identity.clone());
    }
    ssl.peer_certificate().map(|c| name_string(c.subject_name()))
}

/// The TLS version and cipher a finished handshake settled on, e.g. `TLSv1.3 TLS_AES_256_GCM_SHA384`.
pub fn negotiated<S>(stream: &SslStream<S>) -> String {
    let ssl = stream.ssl();
    let cipher = ssl.current_cipher().map(|c| c.name()).unwrap_or("(none)");
    format!("{} {cipher}", ssl.version_str())
}

fn name_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(",")
}
