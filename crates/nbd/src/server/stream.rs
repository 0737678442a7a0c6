//! The byte streams connections run over, the TLS hook, and the handle the server keeps
//! on each socket to end it from outside.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A connection's byte stream: a plain socket, or whatever a [`TlsUpgrade`] made of one.
pub trait Stream: Read + Write + Send {
    /// Independent read and write halves, so requests can be read while replies are
    /// written from worker threads. `None` (a TLS session is one state machine) makes the
    /// connection run its requests one at a time.
    fn try_split(&mut self) -> Option<(Box<dyn Read + Send>, Box<dyn Write + Send>)>;
}

impl Stream for TcpStream {
    fn try_split(&mut self) -> Option<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        Some((Box::new(self.try_clone().ok()?), Box::new(self.try_clone().ok()?)))
    }
}

impl Stream for UnixStream {
    fn try_split(&mut self) -> Option<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        Some((Box::new(self.try_clone().ok()?), Box::new(self.try_clone().ok()?)))
    }
}

/// Turns a plain stream into a TLS one after `NBD_OPT_STARTTLS` was acknowledged.
pub trait TlsUpgrade: Send + Sync {
    /// Runs the server side of the TLS handshake on `stream`; an error closes the connection.
    fn accept(&self, stream: Box<dyn Stream>) -> io::Result<Box<dyn Stream>>;
}

/// The server's own handle on a connection's socket, kept outside whatever wraps the
/// stream (TLS), so shutdown can end reads (the client's requests stop, replies still go
/// out) and then, if that is not enough, everything.
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    pub(crate) fn shutdown(&self, how: Shutdown) {
        // Already-closed sockets report ENOTCONN; nothing more to end then.
        let _ = match self {
            Socket::Tcp(s) => s.shutdown(how),
            Socket::Unix(s) => s.shutdown(how),
        };
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) {
        let _ = match self {
            Socket::Tcp(s) => s.set_read_timeout(t),
            Socket::Unix(s) => s.set_read_timeout(t),
        };
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) {
        let _ = match self {
            Socket::Tcp(s) => s.set_write_timeout(t),
            Socket::Unix(s) => s.set_write_timeout(t),
        };
    }
}
