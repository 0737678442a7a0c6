//! The data channel of a remote group: journal batches from the primary's journal to the
//! remote's applier over a TCP connection of their own, moved by core threads (the bytes
//! never pass through JavaScript). The agents negotiate it over their authenticated link:
//! the remote hands out a single-use 32-byte token bound to one group's applier, the
//! primary connects and presents it. Wire form (docs/replication.md, "Data channel"):
//!
//! ```text
//! primary → remote: b"PLXD" | version u8 (1) | token [32]
//! remote → primary: status u8 (0: accepted; otherwise refused, then closed)
//! primary → remote: (u32 length | batch)*          batch = journal records in wire form
//! remote → primary: (applied u64 | durable u64)*   one per batch, after it was applied
//! ```
//! (big-endian). Every length is checked before a byte is buffered; a batch is decoded and
//! checked by the applier like any other (hostile bytes give an error, never a panic).

use crate::group::ReplicaGroup;
use plexus_journal::{Applier, MAX_BATCH};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const MAGIC: &[u8; 4] = b"PLXD";
const VERSION: u8 = 1;
/// A presented token must arrive this soon after the connection.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// A token not presented this soon after it was handed out expires.
const TOKEN_LIFE: Duration = Duration::from_secs(30);
/// Largest batch on the channel: the shipper's batches, or one record bigger than them.
pub const MAX_CHANNEL_BATCH: usize = MAX_BATCH;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Guarded values are replaced whole: a poisoned lock still holds a consistent one.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Expected {
    channel: u64,
    applier: Arc<Applier>,
    until: Instant,
}

struct ListenerState {
    expected: HashMap<[u8; 32], Expected>,
    /// Open connections by channel id, to cut them (a takeover, a new epoch, a stop).
    open: HashMap<u64, TcpStream>,
    events: Vec<String>,
}

/// The remote's listener for data channels.
pub struct DataListener {
    addr: SocketAddr,
    state: Arc<Mutex<ListenerState>>,
    stopping: Arc<AtomicBool>,
    next: AtomicU64,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl DataListener {
    /// Listens on `addr` (port 0: any free port) and serves channels on core threads.
    pub fn start(addr: &str) -> io::Result<DataListener> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let state = Arc::new(Mutex::new(ListenerState { expected: HashMap::new(), open: HashMap::new(), events: Vec::new() }));
        let stopping = Arc::new(AtomicBool::new(false));
        let (st, stop) = (Arc::clone(&state), Arc::clone(&stopping));
        let accept = std::thread::Builder::new().name("plexus-data-accept".into()).spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = Arc::clone(&st);
                // One thread per channel: a group has one at a time.
                let _ = std::thread::Builder::new().name("plexus-data-recv".into()).spawn(move || serve(conn, &st));
            }
        })?;
        Ok(DataListener { addr: local, state, stopping, next: AtomicU64::new(1), accept: Mutex::new(Some(accept)) })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Hands out a token for one channel into `applier`; returns (channel id, token).
    pub fn expect(&self, applier: Arc<Applier>, token: [u8; 32]) -> u64 {
        let channel = self.next.fetch_add(1, Ordering::Relaxed);
        let mut st = lock(&self.state);
        let now = Instant::now();
        st.expected.retain(|_, e| e.until > now);
        st.expected.insert(token, Expected { channel, applier, until: now + TOKEN_LIFE });
        channel
    }

    /// Ends channel `channel` (and forgets its token if it was not used yet).
    pub fn cut(&self, channel: u64) {
        let mut st = lock(&self.state);
        st.expected.retain(|_, e| e.channel != channel);
        if let Some(s) = st.open.remove(&channel) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// What happened on the channels (refusals, failures), oldest first.
    pub fn take_events(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.state).events)
    }

    /// Stops listening and ends every channel.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        // Wakes the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        let mut st = lock(&self.state);
        st.expected.clear();
        for (_, s) in st.open.drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
        drop(st);
        if let Some(h) = lock(&self.accept).take() {
            let _ = h.join();
        }
    }
}

impl Drop for DataListener {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(mut conn: TcpStream, st: &Mutex<ListenerState>) {
    let peer = conn.peer_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
    let note = |m: String| lock(st).events.push(m);
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(HELLO_TIMEOUT));
    let mut hello = [0u8; 4 + 1 + 32];
    if conn.read_exact(&mut hello).is_err() {
        note(format!("data channel from {peer}: no hello"));
        return;
    }
    let (magic, rest) = hello.split_at(4);
    let (version, token) = rest.split_at(1);
    let mut key = [0u8; 32];
    key.copy_from_slice(token);
    let found = {
        let mut s = lock(st);
        let now = Instant::now();
        let e = s.expected.remove(&key).filter(|e| e.until > now);
        if let Some(e) = &e {
            if let Ok(c) = conn.try_clone() {
                s.open.insert(e.channel, c);
            }
        }
        e
    };
    let Some(Expected { channel, applier, .. }) = found.filter(|_| magic == MAGIC && version == [VERSION]) else {
        let _ = conn.write_all(&[1]);
        note(format!("data channel from {peer} refused: not a valid, expected token"));
        return;
    };
    let _ = conn.set_read_timeout(None);
    if conn.write_all(&[0]).is_err() {
        lock(st).open.remove(&channel);
        return;
    }
    let mut buf: Vec<u8> = Vec::new();
    let why = loop {
        let mut len = [0u8; 4];
        if let Err(e) = conn.read_exact(&mut len) {
            break format!("closed ({e})");
        }
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 || n > MAX_CHANNEL_BATCH {
            break format!("batch of {n} bytes refused (1..={MAX_CHANNEL_BATCH})");
        }
        buf.resize(n, 0);
        if let Err(e) = conn.read_exact(&mut buf) {
            break format!("closed mid-batch ({e})");
        }
        let applied = match applier.receive(&buf) {
            Ok(a) => a,
            Err(e) => break format!("batch refused: {e}"),
        };
        let mut ack = [0u8; 16];
        ack[..8].copy_from_slice(&applied.to_be_bytes());
        ack[8..].copy_from_slice(&applier.durable().to_be_bytes());
        if let Err(e) = conn.write_all(&ack) {
            break format!("closed ({e})");
        }
    };
    let _ = conn.shutdown(Shutdown::Both);
    let mut s = lock(st);
    s.open.remove(&channel);
    s.events.push(format!("data channel {channel} from {peer} ended: {why}"));
}

/// What a shipper is doing.
#[derive(Debug, Clone, Default)]
pub struct ShipperStatus {
    /// Still shipping.
    pub running: bool,
    /// Why it stopped, if it failed.
    pub error: Option<String>,
    /// Newest sequence number sent.
    pub sent: u64,
    /// Bytes sent and not yet acknowledged.
    pub in_flight: u64,
}

struct ShipState {
    status: ShipperStatus,
    /// Batches sent, oldest first: (last seq, bytes).
    unacked: VecDeque<(u64, u64)>,
    last_ack: Instant,
}

/// The primary's end of a data channel: a sender thread reading the journal and a
/// receiver thread taking acknowledgements into the group (which releases its journal).
pub struct Shipper {
    state: Arc<(Mutex<ShipState>, Condvar)>,
    stop: Arc<AtomicBool>,
    sock: TcpStream,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// How a shipper ships.
#[derive(Debug, Clone, Copy)]
pub struct ShipperOptions {
    /// Bytes per batch.
    pub batch_bytes: usize,
    /// Most bytes sent and not yet acknowledged.
    pub window_bytes: u64,
    /// A batch unacknowledged this long fails the channel.
    pub ack_timeout: Duration,
}

impl Shipper {
    /// Connects to `addr`, presents `token`, and ships `group`'s journal from `from` on.
    pub fn start(group: Arc<ReplicaGroup>, addr: &str, token: [u8; 32], from: u64, opts: ShipperOptions) -> io::Result<Shipper> {
        let target: SocketAddr =
            addr.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("data channel address {addr}: {e}")))?;
        let mut sock = TcpStream::connect_timeout(&target, Duration::from_secs(5))?;
        sock.set_nodelay(true)?;
        let mut hello = Vec::with_capacity(37);
        hello.extend_from_slice(MAGIC);
        hello.push(VERSION);
        hello.extend_from_slice(&token);
        sock.write_all(&hello)?;
        sock.set_read_timeout(Some(HELLO_TIMEOUT))?;
        let mut status = [0u8; 1];
        sock.read_exact(&mut status)?;
        if status != [0] {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "the remote refused the data channel (token not expected)"));
        }
        let state = Arc::new((
            Mutex::new(ShipState {
                status: ShipperStatus { running: true, sent: from.saturating_sub(1), ..ShipperStatus::default() },
                unacked: VecDeque::new(),
                last_ack: Instant::now(),
            }),
            Condvar::new(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        {
            let (state, stop, group, mut out) = (Arc::clone(&state), Arc::clone(&stop), Arc::clone(&group), sock.try_clone()?);
            threads.push(std::thread::Builder::new().name("plexus-ship-send".into()).spawn(move || {
                let r = send_loop(&group, &mut out, from, opts, &state, &stop);
                finish(&state, &stop, r.err().map(|e| format!("sending: {e}")), &out);
            })?);
        }
        {
            let (state, stop, mut inp) = (Arc::clone(&state), Arc::clone(&stop), sock.try_clone()?);
            inp.set_read_timeout(Some(Duration::from_millis(100)))?;
            threads.push(std::thread::Builder::new().name("plexus-ship-ack".into()).spawn(move || {
                let r = ack_loop(&group, &mut inp, opts, &state, &stop);
                finish(&state, &stop, r.err().map(|e| format!("acknowledgements: {e}")), &inp);
            })?);
        }
        Ok(Shipper { state, stop, sock, threads: Mutex::new(threads) })
    }

    /// What it is doing.
    pub fn status(&self) -> ShipperStatus {
        lock(&self.state.0).status.clone()
    }

    /// Stops shipping and closes the channel (the journal keeps what was not acknowledged).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.sock.shutdown(Shutdown::Both);
        self.state.1.notify_all();
        for h in lock(&self.threads).drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        self.stop();
    }
}

fn finish(state: &(Mutex<ShipState>, Condvar), stop: &AtomicBool, error: Option<String>, sock: &TcpStream) {
    let stopped_on_purpose = stop.swap(true, Ordering::AcqRel);
    let mut s = lock(&state.0);
    s.status.running = false;
    if s.status.error.is_none() && !stopped_on_purpose {
        s.status.error = error.or_else(|| Some("the data channel closed".into()));
    }
    drop(s);
    let _ = sock.shutdown(Shutdown::Both);
    state.1.notify_all();
}

fn send_loop(
    group: &ReplicaGroup,
    out: &mut TcpStream,
    mut from: u64,
    opts: ShipperOptions,
    state: &(Mutex<ShipState>, Condvar),
    stop: &AtomicBool,
) -> io::Result<()> {
    let journal = group.journal();
    let mut buf = vec![0u8; opts.batch_bytes.max(1 << 16)];
    while !stop.load(Ordering::Acquire) {
        {
            // The window: wait for acknowledgements rather than queue without bound.
            let mut s = lock(&state.0);
            while s.status.in_flight >= opts.window_bytes && !stop.load(Ordering::Acquire) {
                s = state.1.wait_timeout(s, Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner()).0;
            }
        }
        if stop.load(Ordering::Acquire) {
            break;
        }
        if from > journal.last_seq() {
            journal.wait_appended(from.saturating_sub(1), Duration::from_millis(50));
            continue;
        }
        let io_err = |e: plexus_journal::JournalError| io::Error::other(e.to_string());
        let mut own: Option<Vec<u8>> = None;
        let (len, last) = match journal.read_batch_into(from, &mut buf).map_err(io_err)? {
            Some(b) if b.count == 0 => continue,
            Some(b) => (b.len, b.last),
            None => {
                // One record larger than the buffer: a buffer of its own.
                let b = journal.read_batch(from, 0).map_err(io_err)?;
                if b.count == 0 {
                    continue;
                }
                let l = (b.bytes.len(), b.last);
                own = Some(b.bytes);
                l
            }
        };
        if len > MAX_CHANNEL_BATCH {
            return Err(io::Error::other(format!("a batch of {len} bytes is larger than the channel takes")));
        }
        {
            let mut s = lock(&state.0);
            if s.unacked.is_empty() {
                s.last_ack = Instant::now();
            }
            s.unacked.push_back((last, len as u64));
            s.status.in_flight += len as u64;
            s.status.sent = last;
        }
        let bytes = match &own {
            Some(v) => v.as_slice(),
            None => buf.get(..len).unwrap_or_default(),
        };
        out.write_all(&(len as u32).to_be_bytes())?;
        out.write_all(bytes)?;
        from = last + 1;
    }
    Ok(())
}

fn ack_loop(
    group: &ReplicaGroup,
    inp: &mut TcpStream,
    opts: ShipperOptions,
    state: &(Mutex<ShipState>, Condvar),
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut ack = [0u8; 16];
    let mut have = 0usize;
    while !stop.load(Ordering::Acquire) {
        match inp.read(ack.get_mut(have..).unwrap_or_default()) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the remote closed the data channel")),
            Ok(n) => have += n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                let s = lock(&state.0);
                if !s.unacked.is_empty() && s.last_ack.elapsed() > opts.ack_timeout {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no acknowledgement within {} ms", opts.ack_timeout.as_millis()),
                    ));
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if have < 16 {
            continue;
        }
        have = 0;
        let (a, d) = ack.split_at(8);
        let applied = u64::from_be_bytes(a.try_into().unwrap_or_default());
        let durable = u64::from_be_bytes(d.try_into().unwrap_or_default());
        {
            let mut s = lock(&state.0);
            // Batches the remote has applied are acknowledged, whatever their count.
            while let Some(&(last, bytes)) = s.unacked.front() {
                if last > applied {
                    break;
                }
                s.unacked.pop_front();
                s.status.in_flight = s.status.in_flight.saturating_sub(bytes);
            }
            s.last_ack = Instant::now();
        }
        state.1.notify_all();
        group.acknowledge(applied, durable);
        group.release_durable(durable).map_err(|e| io::Error::other(e.to_string()))?;
    }
    Ok(())
}
