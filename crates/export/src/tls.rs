//! TLS for the NBD server: `plexus-tls`'s OpenSSL sessions behind the server's STARTTLS hook.

use plexus_nbd::{Stream, TlsUpgrade};
use plexus_tls::TlsServer;
use std::io::{self, Read, Write};

/// The STARTTLS hook of a server with TLS credentials.
pub struct TlsHook(pub TlsServer);

/// A connection after STARTTLS. One TLS session cannot be read and written from two
/// threads, so it does not split: the server runs its requests one at a time.
struct TlsStream(openssl::ssl::SslStream<Box<dyn Stream>>);

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Stream for TlsStream {
    fn try_split(&mut self) -> Option<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        None
    }
}

impl TlsUpgrade for TlsHook {
    fn accept(&self, stream: Box<dyn Stream>) -> io::Result<Box<dyn Stream>> {
        Ok(Box::new(TlsStream(self.0.accept(stream)?)))
    }
}
