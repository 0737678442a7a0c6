//! The x509 credentials directory, laid out as qemu-nbd and nbdkit `--tls-certificates` expect:
//! `ca-cert.pem`, `server-cert.pem`, `server-key.pem`, and optionally `ca-crl.pem`.

use std::path::Path;

use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509StoreContext, X509};

use crate::error::{Result, TlsError};

/// What a credentials directory holds, parsed and checked.
pub(crate) struct X509Dir {
    /// The server certificate, then any intermediates that followed it in `server-cert.pem`.
    pub(crate) chain: Vec<X509>,
    /// The key of `chain[0]`.
    pub(crate) key: PKey<Private>,
    /// Certificates of `ca-cert.pem`; empty when the file is absent and peers are not verified.
    pub(crate) cas: Vec<X509>,
    /// The trust store for client certificates, with `ca-crl.pem` when present.
    pub(crate) client_store: Option<X509Store>,
}

impl X509Dir {
    /// Loads `dir`; `ca-cert.pem` is required only when client certificates are verified, but is
    /// checked against the server certificate whenever it is there.
    pub(crate) fn load(dir: &Path, verify_peer: bool) -> Result<X509Dir> {
        let meta = std::fs::metadata(dir).map_err(TlsError::io(dir, "open credentials directory"))?;
        if !meta.is_dir() {
            return Err(TlsError::invalid(dir, "not a directory (expected one holding ca-cert.pem, server-cert.pem, server-key.pem)"));
        }
        let cert_path = dir.join("server-cert.pem");
        let key_path = dir.join("server-key.pem");
        let ca_path = dir.join("ca-cert.pem");
        let crl_path = dir.join("ca-crl.pem");

        let chain = read_certs(&cert_path)?;
        let key_pem = read(&key_path)?;
        // An empty passphrase from the callback: without one OpenSSL would ask on the terminal.
        let key = PKey::private_key_from_pem_callback(&key_pem, |_| Ok(0)).map_err(|e| {
            if key_pem.windows(9).any(|w| w == b"ENCRYPTED") {
                TlsError::invalid(&key_path, "is encrypted; the server needs it unencrypted (kept readable only by its user)")
            } else {
                TlsError::invalid(&key_path, format!("not an unencrypted PEM private key ({e})"))
            }
        })?;
        let Some(leaf) = chain.first() else {
            return Err(TlsError::invalid(&cert_path, "no certificate"));
        };
        let leaf_key = leaf.public_key().map_err(|e| TlsError::invalid(&cert_path, format!("unreadable public key ({e})")))?;
        if !leaf_key.public_eq(&key) {
            return Err(TlsError::invalid(&key_path, format!("does not match the certificate in {}", cert_path.display())));
        }

        let cas = match read_certs(&ca_path) {
            Ok(cas) => cas,
            Err(TlsError::Io { source, .. }) if !verify_peer && source.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        if !cas.is_empty() {
            // A server certificate from another CA is the usual mix-up of two directories; the
            // client would only say "certificate verify failed", so it is caught here instead.
            verify_chain(&cas, &chain)
                .map_err(|why| TlsError::invalid(&cert_path, format!("does not verify against {}: {why}", ca_path.display())))?;
        }

        let client_store = if verify_peer { Some(client_store(&cas, &crl_path)?) } else { None };
        Ok(X509Dir { chain, key, cas, client_store })
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(TlsError::io(path, "read"))
}

fn read_certs(path: &Path) -> Result<Vec<X509>> {
    let pem = read(path)?;
    let certs = X509::stack_from_pem(&pem).map_err(|e| TlsError::invalid(path, format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(TlsError::invalid(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn store_of(cas: &[X509]) -> std::result::Result<X509StoreBuilder, String> {
    let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
    // GnuTLS, on the client side, trusts every certificate in ca-cert.pem as an anchor, an
    // intermediate CA too; OpenSSL insists on a self-signed root unless told otherwise.
    store.set_flags(X509VerifyFlags::PARTIAL_CHAIN).map_err(|e| e.to_string())?;
    for ca in cas {
        store.add_cert(ca.clone()).map_err(|e| e.to_string())?;
    }
    Ok(store)
}

/// Checks `chain[0]` against the CAs; the error is OpenSSL's reason ("certificate has expired").
fn verify_chain(cas: &[X509], chain: &[X509]) -> std::result::Result<(), String> {
    let store = store_of(cas)?.build();
    let Some((leaf, rest)) = chain.split_first() else {
        return Err("no certificate".into());
    };
    let mut untrusted = Stack::new().map_err(|e| e.to_string())?;
    for c in rest {
        untrusted.push(c.clone()).map_err(|e| e.to_string())?;
    }
    let mut ctx = X509StoreContext::new().map_err(|e| e.to_string())?;
    let (ok, why) =
        ctx.init(&store, leaf, &untrusted, |c| Ok((c.verify_cert()?, c.error().error_string().to_string()))).map_err(|e| e.to_string())?;
    if ok {
        Ok(())
    } else {
        Err(why)
    }
}

fn client_store(cas: &[X509], crl_path: &Path) -> Result<X509Store> {
    let ca_path = crl_path.with_file_name("ca-cert.pem");
    let mut store = store_of(cas).map_err(|e| TlsError::invalid(&ca_path, e))?;
    match std::fs::metadata(crl_path) {
        Ok(_) => {
            let lookup = store.add_lookup(X509Lookup::file()).map_err(TlsError::setup("CRL lookup"))?;
            lookup
                .load_crl_file(crl_path, openssl::ssl::SslFiletype::PEM)
                .map_err(|e| TlsError::invalid(crl_path, format!("not a PEM CRL file ({e})")))?;
            store.set_flags(X509VerifyFlags::PARTIAL_CHAIN | X509VerifyFlags::CRL_CHECK).map_err(TlsError::setup("CRL check flag"))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(TlsError::io(crl_path, "open")(e)),
    }
    Ok(store.build())
}
