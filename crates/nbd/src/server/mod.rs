//! The I/O loop around the codec: listeners, one thread per connection (plus a few
//! workers once it is in transmission), the connection limit, and an orderly shutdown.

mod budget;
mod connection;
mod events;
mod stream;
mod unix;

pub use events::{Event, Events, NoEvents};
pub use stream::{Stream, TlsUpgrade};

use crate::export::{Export, Exports, IoFailure, Peer};
use crate::proto::consts::{FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, IHAVEOPT, NBD_MAGIC, OPT_EXPORT_NAME, REPLY_MAGIC, REP_ERR_POLICY};
use crate::proto::handshake::{HandshakeConfig, TlsMode, MAX_OPTION_LEN};
use crate::proto::wire::{len32, Put};
use connection::{same_export, serve, Shared};
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a [`Server`] listens and what it allows.
#[derive(Clone)]
pub struct ServerConfig {
    /// TCP address to listen on (port 0: any free port, see [`Server::tcp_addr`]).
    pub tcp: Option<SocketAddr>,
    /// Unix socket path to listen on (created 0600, removed at shutdown).
    pub unix: Option<PathBuf>,
    /// Connections served at once; more are refused.
    pub max_connections: usize,
    /// Longest READ/WRITE (at least 4096), advertised as the maximum block size.
    pub max_request: u32,
    /// TLS upgrade hook; `None`: STARTTLS is refused.
    pub tls: Option<Arc<dyn TlsUpgrade>>,
    /// Refuse every option but STARTTLS and ABORT until TLS runs.
    pub tls_required: bool,
    /// Worker threads per connection in transmission.
    pub workers_per_connection: usize,
    /// Bytes of requests and replies one connection may have in flight.
    pub max_in_flight_bytes: usize,
    /// Longest a client may take over each handshake read; `None`: forever.
    pub handshake_timeout: Option<Duration>,
    /// Longest `shutdown` waits for connections to finish before cutting them off.
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tcp: None,
            unix: None,
            max_connections: 128,
            max_request: 32 << 20,
            tls: None,
            tls_required: false,
            workers_per_connection: 4,
            max_in_flight_bytes: 64 << 20,
            handshake_timeout: Some(Duration::from_secs(30)),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Clients turned away politely at once; more are simply closed.
const MAX_REFUSING: usize = 4;
/// Options a turned-away client gets answered before it is closed.
const REFUSAL_OPTIONS: usize = 16;

struct Inner {
    shared: Shared,
    /// The server's handle on every open connection's socket, by id.
    conns: Mutex<HashMap<u64, stream::Socket>>,
    active: Mutex<usize>,
    ended: Condvar,
    next_id: AtomicU64,
    refusing: AtomicUsize,
    max_connections: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps and counters are updated in single statements; a panic elsewhere
    // cannot leave them half-changed.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running NBD server. Dropping it shuts it down.
pub struct Server {
    inner: Arc<Inner>,
    acceptors: Mutex<Vec<JoinHandle<()>>>,
    tcp_addr: Option<SocketAddr>,
    unix: Option<unix::UnixSocketFile>,
    shutdown_timeout: Duration,
    stopped: AtomicBool,
}

impl Server {
    /// Binds the configured listeners and starts accepting clients.
    pub fn start(config: ServerConfig, exports: Arc<Exports>, events: Arc<dyn Events>) -> io::Result<Server> {
        let invalid = |msg: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned()));
        if config.tcp.is_none() && config.unix.is_none() {
            return invalid("configure a TCP address, a Unix socket path, or both");
        }
        if config.tls_required && config.tls.is_none() {
            return invalid("tls_required needs a TLS hook");
        }
        if config.max_connections == 0 || config.max_request < 4096 {
            return invalid("max_connections must be at least 1 and max_request at least 4096");
        }
        let tls = match (&config.tls, config.tls_required) {
            (None, _) => TlsMode::Off,
            (Some(_), false) => TlsMode::Optional,
            (Some(_), true) => TlsMode::Required,
        };
        let tcp = config.tcp.map(TcpListener::bind).transpose()?;
        let tcp_addr = tcp.as_ref().map(TcpListener::local_addr).transpose()?;
        let unix = config.unix.as_deref().map(unix::bind).transpose()?;
        let inner = Arc::new(Inner {
            shared: Shared {
                exports,
                events,
                handshake: HandshakeConfig { tls, max_request: config.max_request },
                tls: config.tls.clone(),
                workers: config.workers_per_connection,
                max_in_flight: config.max_in_flight_bytes,
                handshake_timeout: config.handshake_timeout,
                stopping: AtomicBool::new(false),
                used: Mutex::new(Vec::new()),
                negotiated: Mutex::new(HashMap::new()),
            },
            conns: Mutex::new(HashMap::new()),
            active: Mutex::new(0),
            ended: Condvar::new(),
            next_id: AtomicU64::new(1),
            refusing: AtomicUsize::new(0),
            max_connections: config.max_connections,
        });
        let server = Server {
            inner: Arc::clone(&inner),
            acceptors: Mutex::new(Vec::new()),
            tcp_addr,
            unix,
            shutdown_timeout: config.shutdown_timeout,
            stopped: AtomicBool::new(false),
        };
        if let Some(l) = tcp {
            let inner = Arc::clone(&inner);
            server.spawn_acceptor("nbd-accept-tcp", move || accept_tcp(&inner, &l))?;
        }
        if let Some(u) = &server.unix {
            let l = u.listener.try_clone()?;
            server.spawn_acceptor("nbd-accept-unix", move || accept_unix(&inner, &l))?;
        }
        Ok(server)
    }

    fn spawn_acceptor(&self, name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let handle = std::thread::Builder::new().name(name.to_owned()).spawn(f)?;
        lock(&self.acceptors).push(handle);
        Ok(())
    }

    /// The bound TCP address (with the real port when port 0 was asked for).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The Unix socket path.
    pub fn unix_path(&self) -> Option<&Path> {
        self.unix.as_ref().map(|u| u.path.as_path())
    }

    /// Ends every connection in transmission on the export `name` (its volume is about
    /// to change role: become a secondary, be removed): their sockets are shut down, so
    /// the clients see the server go away, as when a LUN is unmapped. Returns how many.
    /// Connections still negotiating get the registry as it is when they choose.
    pub fn disconnect_export(&self, name: &str) -> usize {
        let ids: Vec<u64> = lock(&self.inner.shared.negotiated).iter().filter(|(_, n)| n.as_str() == name).map(|(id, _)| *id).collect();
        let conns = lock(&self.inner.conns);
        ids.iter().filter_map(|id| conns.get(id)).map(|s| s.shutdown(Shutdown::Both)).count()
    }

    /// Connections that negotiated export `name` and are still open.
    pub fn export_connections(&self, name: &str) -> usize {
        lock(&self.inner.shared.negotiated).values().filter(|n| n.as_str() == name).count()
    }

    /// Connections open now, in handshake or transmission.
    pub fn connection_count(&self) -> usize {
        *lock(&self.inner.active)
    }

    /// Stops accepting, ends every connection's reading so in-flight requests finish and
    /// their replies go out, waits (at most `shutdown_timeout`, then cuts connections
    /// off), flushes every export once, and removes the socket file. Idempotent.
    pub fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        self.inner.shared.stopping.store(true, Ordering::SeqCst);
        self.stop_acceptors();
        if let Some(u) = &self.unix {
            u.remove();
        }
        for s in lock(&self.inner.conns).values() {
            s.shutdown(Shutdown::Read);
        }
        if !self.wait_idle(self.shutdown_timeout) {
            for s in lock(&self.inner.conns).values() {
                s.shutdown(Shutdown::Both);
            }
            self.wait_idle(Duration::from_secs(1));
        }
        self.flush_exports();
    }

    fn stop_acceptors(&self) {
        // Each acceptor is blocked in accept(); a connection of our own wakes it to see
        // `stopping`. If that connect fails the thread is left to exit on its next accept.
        if let Some(addr) = self.tcp_addr {
            let ip = match addr.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            let _ = TcpStream::connect_timeout(&SocketAddr::new(ip, addr.port()), Duration::from_secs(1));
        }
        if let Some(u) = &self.unix {
            let _ = UnixStream::connect(&u.path);
        }
        let handles = std::mem::take(&mut *lock(&self.acceptors));
        let deadline = Instant::now() + Duration::from_secs(2);
        for h in handles {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }

    fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut active = lock(&self.inner.active);
        while *active > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            active = self.inner.ended.wait_timeout(active, left).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
        }
        true
    }

    fn flush_exports(&self) {
        let shared = &self.inner.shared;
        let mut all: Vec<(String, Arc<dyn Export>)> = shared.exports.entries().into_iter().map(|(n, e)| (n, e.export)).collect();
        for u in lock(&shared.used).iter() {
            if !all.iter().any(|(_, e)| same_export(e, u)) {
                all.push(("(removed)".to_owned(), Arc::clone(u)));
            }
        }
        let mut flushed: Vec<Arc<dyn Export>> = Vec::new();
        for (name, export) in all {
            if flushed.iter().any(|f| same_export(f, &export)) || export.read_only() {
                continue;
            }
            if let Err(IoFailure { message, .. }) = export.flush() {
                shared.emit(Event::IoError { id: 0, export: name, detail: format!("shutdown flush failed: {message}") });
            }
            flushed.push(export);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_tcp(inner: &Arc<Inner>, listener: &TcpListener) {
    loop {
        let accepted = listener.accept();
        if inner.shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((s, addr)) => {
                // Small replies (write acknowledgements) must not wait for Nagle.
                let _ = s.set_nodelay(true);
                if let Ok(handle) = s.try_clone() {
                    admit(inner, Box::new(s), stream::Socket::Tcp(handle), Peer::Tcp(addr));
                }
            }
            Err(_) => backoff(),
        }
    }
}

fn accept_unix(inner: &Arc<Inner>, listener: &UnixListener) {
    loop {
        let accepted = listener.accept();
        if inner.shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((s, _)) => {
                if let Ok(handle) = s.try_clone() {
                    admit(inner, Box::new(s), stream::Socket::Unix(handle), Peer::Unix);
                }
            }
            Err(_) => backoff(),
        }
    }
}

/// Out of descriptors or memory: accept fails at once until something closes, so pause
/// rather than spin.
fn backoff() {
    std::thread::sleep(Duration::from_millis(20));
}

/// Ends a connection's bookkeeping however its thread ends, panics included.
struct Ending {
    inner: Arc<Inner>,
    id: u64,
    reason: Option<String>,
}

impl Ending {
    fn finish(mut self, reason: String) {
        self.reason = Some(reason);
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        if let Some(s) = lock(&self.inner.conns).remove(&self.id) {
            s.shutdown(Shutdown::Both);
        }
        lock(&self.inner.shared.negotiated).remove(&self.id);
        let reason = self.reason.take().unwrap_or_else(|| "connection thread panicked".to_owned());
        self.inner.shared.emit(Event::Disconnected { id: self.id, reason });
        let mut active = lock(&self.inner.active);
        *active = active.saturating_sub(1);
        drop(active);
        self.inner.ended.notify_all();
    }
}

fn admit(inner: &Arc<Inner>, stream: Box<dyn Stream>, handle: stream::Socket, peer: Peer) {
    {
        let mut active = lock(&inner.active);
        if *active >= inner.max_connections {
            drop(active);
            inner.shared.emit(Event::TooManyConnections { peer });
            return refuse(inner, stream, handle);
        }
        *active += 1;
    }
    let id = inner.next_id.fetch_add(1, Ordering::SeqCst);
    let own = match &handle {
        stream::Socket::Tcp(s) => s.try_clone().map(stream::Socket::Tcp),
        stream::Socket::Unix(s) => s.try_clone().map(stream::Socket::Unix),
    };
    lock(&inner.conns).insert(id, handle);
    inner.shared.emit(Event::Connected { id, peer: peer.clone() });
    let mut ending = Ending { inner: Arc::clone(inner), id, reason: Some("could not start the connection thread".to_owned()) };
    let Ok(own) = own else { return };
    let run = move || {
        ending.reason = None;
        let reason = serve(&ending.inner.shared, id, peer, stream, &own);
        ending.finish(reason);
    };
    // On a spawn failure the closure, and with it `ending`, is dropped: bookkeeping undone.
    let _ = std::thread::Builder::new().name(format!("nbd-{id}")).spawn(run);
}

/// Answers a client over the connection limit: greeting, then each option refused with
/// the reason, so `nbdinfo` and QEMU print it instead of "connection reset". Bounded in
/// threads, options and time.
fn refuse(inner: &Arc<Inner>, mut stream: Box<dyn Stream>, handle: stream::Socket) {
    if inner.refusing.fetch_add(1, Ordering::SeqCst) >= MAX_REFUSING {
        inner.refusing.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let message = format!("server has too many connections ({})", inner.max_connections);
    let inner2 = Arc::clone(inner);
    let run = move || {
        handle.set_read_timeout(Some(Duration::from_secs(1)));
        handle.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = refusal(&mut *stream, &message);
        handle.shutdown(Shutdown::Both);
        inner2.refusing.fetch_sub(1, Ordering::SeqCst);
    };
    if std::thread::Builder::new().name("nbd-refuse".to_owned()).spawn(run).is_err() {
        inner.refusing.fetch_sub(1, Ordering::SeqCst);
    }
}

fn refusal(s: &mut dyn Stream, message: &str) -> io::Result<()> {
    let mut greeting = Vec::new();
    greeting.put_u64(NBD_MAGIC);
    greeting.put_u64(IHAVEOPT);
    greeting.put_u16(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    s.write_all(&greeting)?;
    let mut flags = [0u8; 4];
    s.read_exact(&mut flags)?;
    for _ in 0..REFUSAL_OPTIONS {
        let mut h = [0u8; 16];
        s.read_exact(&mut h)?;
        let (magic, rest) = h.split_at(8);
        let (option, len) = rest.split_at(4);
        let option = u32::from_be_bytes(option.try_into().unwrap_or_default());
        let len = u32::from_be_bytes(len.try_into().unwrap_or_default());
        if magic != IHAVEOPT.to_be_bytes() || option == OPT_EXPORT_NAME || len > MAX_OPTION_LEN {
            return Ok(());
        }
        io::copy(&mut (&mut *s).take(u64::from(len)), &mut io::sink())?;
        let mut reply = Vec::new();
        reply.put_u64(REPLY_MAGIC);
        reply.put_u32(option);
        reply.put_u32(REP_ERR_POLICY);
        reply.put_u32(len32(message.len()));
        reply.extend_from_slice(message.as_bytes());
        s.write_all(&reply)?;
    }
    Ok(())
}
