//! One connection: drive the handshake state machine over the stream, then read requests
//! and hand them to a few worker threads that execute them and write the replies.

use super::budget::{Budget, BufPool};
use super::events::{Event, Events};
use super::stream::{Socket, Stream, TlsUpgrade};
use crate::export::{Errno, Export, Exports, IoFailure, Peer};
use crate::proto::consts::{CMD_WRITE, REQUEST_HEADER_LEN};
use crate::proto::handshake::{CloseReason, Handshake, HandshakeConfig, HandshakeEvent, Negotiated, Step};
use crate::proto::request::{decide, parse_header, Command, Decision, Request};
use crate::transmission::{error_reply, execute, reply_size};
use std::io::{self, BufReader, Read, Write};
use std::net::Shutdown;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What every connection shares with the server.
pub(crate) struct Shared {
    pub(crate) exports: Arc<Exports>,
    pub(crate) events: Arc<dyn Events>,
    pub(crate) handshake: HandshakeConfig,
    pub(crate) tls: Option<Arc<dyn TlsUpgrade>>,
    pub(crate) workers: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) stopping: AtomicBool,
    /// Exports some connection negotiated, flushed once at shutdown (even if since removed
    /// from the registry).
    pub(crate) used: Mutex<Vec<Arc<dyn Export>>>,
    /// The export each connection in transmission negotiated, by connection id, so
    /// the owner can end the connections of one export ([`crate::Server::disconnect_export`]).
    pub(crate) negotiated: Mutex<std::collections::HashMap<u64, String>>,
}

impl Shared {
    pub(crate) fn emit(&self, e: Event) {
        self.events.event(e);
    }

    fn note_used(&self, export: &Arc<dyn Export>) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if !used.iter().any(|u| same_export(u, export)) {
            used.push(Arc::clone(export));
        }
    }
}

/// Whether two handles are the same export object (vtables aside).
pub(crate) fn same_export(a: &Arc<dyn Export>, b: &Arc<dyn Export>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

/// Serves one connection to its end; returns the reason it ended.
pub(crate) fn serve(shared: &Shared, id: u64, peer: Peer, stream: Box<dyn Stream>, socket: &Socket) -> String {
    socket.set_read_timeout(shared.handshake_timeout);
    socket.set_write_timeout(shared.handshake_timeout);
    let (stream, n) = match handshake(shared, id, &peer, stream) {
        Ok(done) => done,
        Err(reason) => return reason,
    };
    socket.set_read_timeout(None);
    socket.set_write_timeout(None);
    shared.note_used(&n.export);
    shared.negotiated.lock().unwrap_or_else(|p| p.into_inner()).insert(id, n.name.clone());
    let contexts = n.contexts.iter().map(|c| c.name.clone()).collect();
    shared.emit(Event::Negotiated { id, export: n.name.clone(), structured: n.structured, contexts });
    let reason = transmit(shared, id, stream, socket, &n);
    shared.negotiated.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    reason
}

fn handshake(shared: &Shared, id: u64, peer: &Peer, mut stream: Box<dyn Stream>) -> Result<(Box<dyn Stream>, Negotiated), String> {
    let mut hs = Handshake::new(shared.handshake, Arc::clone(&shared.exports), peer.clone());
    let mut buf = Vec::new();
    loop {
        let out = hs.take_output();
        if !out.is_empty() {
            stream.write_all(&out).and_then(|()| stream.flush()).map_err(|e| format!("handshake write failed: {e}"))?;
        }
        for HandshakeEvent::Refused { export, reason } in hs.take_events() {
            shared.emit(Event::Refused { id, peer: peer.clone(), export, reason });
        }
        match hs.step() {
            Step::Read(n) => {
                buf.resize(n, 0);
                stream.read_exact(&mut buf).map_err(|e| read_failure(shared, "handshake", &e))?;
                hs.receive(&buf);
            }
            Step::StartTls => {
                let Some(tls) = &shared.tls else {
                    return Err("STARTTLS acknowledged without a TLS hook".to_owned());
                };
                stream = tls.accept(stream).map_err(|e| format!("TLS handshake failed: {e}"))?;
                hs.tls_started();
            }
            Step::Ready => return hs.into_negotiated().map(|n| (stream, n)).ok_or_else(|| "handshake lost its result".to_owned()),
            Step::Close => {
                return Err(match hs.close_reason() {
                    Some(CloseReason::Aborted) => "client aborted the handshake".to_owned(),
                    Some(CloseReason::Protocol(detail)) => {
                        shared.emit(Event::ProtocolError { id, detail: detail.clone() });
                        format!("protocol error: {detail}")
                    }
                    Some(CloseReason::Refused { export, reason }) => {
                        shared.emit(Event::Refused { id, peer: peer.clone(), export: export.clone(), reason: reason.clone() });
                        format!("refused: {reason}")
                    }
                    None => "handshake closed".to_owned(),
                })
            }
        }
    }
}

fn read_failure(shared: &Shared, phase: &str, e: &io::Error) -> String {
    if shared.stopping.load(Ordering::SeqCst) {
        return "server shutting down".to_owned();
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => format!("client closed the connection during the {phase}"),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!("client idle too long during the {phase}"),
        _ => format!("{phase} read failed: {e}"),
    }
}

/// A request on its way to a worker, with the budget it holds.
struct Job {
    req: Request,
    payload: Vec<u8>,
    cost: usize,
}

/// Per-connection state the reader and workers share.
struct Conn<'a> {
    shared: &'a Shared,
    id: u64,
    n: &'a Negotiated,
    socket: &'a Socket,
    writer: Mutex<Box<dyn Write + Send>>,
    budget: Budget,
    pool: BufPool,
    /// Set once a reply could not be written: the connection is over.
    dead: AtomicBool,
    /// Requests dispatched whose replies are not yet being sent. Dropped before the
    /// send, so when the client, having the reply, sends its next request, the reader
    /// sees none pending and can run it itself.
    pending: AtomicUsize,
}

impl Conn<'_> {
    fn send(&self, bytes: &[u8]) {
        if self.dead.load(Ordering::SeqCst) {
            return;
        }
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if w.write_all(bytes).and_then(|()| w.flush()).is_err() {
            self.dead.store(true, Ordering::SeqCst);
            // Wakes the reader too, so the whole connection ends.
            self.socket.shutdown(Shutdown::Both);
        }
    }

    /// Executes a job and sends its reply. `small` is the caller's own buffer for replies
    /// without data, so they do not take large buffers from the pool.
    fn run(&self, job: Job, small: &mut Vec<u8>) {
        let reads = matches!(job.req.command, Command::Read { .. });
        let mut out = if reads { self.pool.get() } else { std::mem::take(small) };
        // A panicking export must not take the connection's budget with it (the reader
        // would wait forever): the client gets EIO and the connection goes on.
        let ran = panic::catch_unwind(AssertUnwindSafe(|| execute(self.n, &job.req, &job.payload, &mut out)));
        let failure = ran.unwrap_or_else(|_| {
            let f = IoFailure::new(Errno::Io, "export panicked");
            out.clear();
            error_reply(self.n, job.req.handle, &f, &mut out);
            Some(f)
        });
        if let Some(f) = failure {
            self.io_error(&job.req, &f);
        }
        self.pool.put(job.payload);
        self.pending.fetch_sub(1, Ordering::SeqCst);
        self.send(&out);
        if reads {
            self.pool.put(out);
        } else {
            *small = out;
        }
        self.budget.release(job.cost);
    }

    fn io_error(&self, req: &Request, f: &IoFailure) {
        let detail = format!("{:?} at {}+{}: {f}", req.command, req.offset, req.length);
        self.shared.emit(Event::IoError { id: self.id, export: self.n.name.clone(), detail });
    }
}

fn transmit(shared: &Shared, id: u64, mut stream: Box<dyn Stream>, socket: &Socket, n: &Negotiated) -> String {
    let (reader, writer, workers): (Box<dyn Read + Send>, Box<dyn Write + Send>, usize) = match stream.try_split() {
        Some((r, w)) => (r, w, shared.workers),
        None => {
            // One stream object for both directions: requests run one at a time on this
            // thread, so its reads and writes never overlap.
            let s = Arc::new(Mutex::new(stream));
            (Box::new(Locked(Arc::clone(&s))), Box::new(Locked(s)), 0)
        }
    };
    let conn = Conn {
        shared,
        id,
        n,
        socket,
        writer: Mutex::new(writer),
        budget: Budget::new(shared.max_in_flight),
        pool: BufPool::new(),
        dead: AtomicBool::new(false),
        pending: AtomicUsize::new(0),
    };
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Mutex::new(rx);
    std::thread::scope(|scope| {
        let mut spawned = 0;
        for w in 0..workers {
            let spawn = std::thread::Builder::new().name(format!("nbd-{id}-w{w}")).spawn_scoped(scope, || work(&conn, &rx));
            if spawn.is_ok() {
                spawned += 1;
            }
        }
        let mut small = Vec::new();
        let reason = read_requests(&conn, BufReader::with_capacity(16 * 1024, reader), |job, alone| {
            // A request with nothing else in flight and nothing more sent yet is run here:
            // a client waiting on one request at a time is not worth two thread handoffs.
            if spawned == 0 || alone {
                conn.run(job, &mut small);
            } else if let Err(mpsc::SendError(job)) = tx.send(job) {
                conn.run(job, &mut small);
            }
        });
        // Workers finish what was queued, send its replies, and exit when the queue closes;
        // the scope joins them before the connection is closed.
        drop(tx);
        reason
    })
}

fn work(conn: &Conn<'_>, rx: &Mutex<Receiver<Job>>) {
    let mut small = Vec::new();
    loop {
        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match job {
            Ok(job) => conn.run(job, &mut small),
            Err(_) => return,
        }
    }
}

/// Reads requests until the client disconnects or errs; returns why it stopped.
/// `dispatch` gets each job and whether it is alone: nothing else in flight, and no
/// further bytes from the client buffered.
fn read_requests<R: Read>(conn: &Conn<'_>, mut r: BufReader<R>, mut dispatch: impl FnMut(Job, bool)) -> String {
    let shared = conn.shared;
    loop {
        if conn.dead.load(Ordering::SeqCst) {
            return "reply could not be written".to_owned();
        }
        let mut hdr = [0u8; REQUEST_HEADER_LEN];
        match read_header(&mut r, &mut hdr) {
            Ok(true) => {}
            Ok(false) if shared.stopping.load(Ordering::SeqCst) => return "server shutting down".to_owned(),
            Ok(false) => return "client closed the connection".to_owned(),
            Err(_) if conn.dead.load(Ordering::SeqCst) => return "reply could not be written".to_owned(),
            Err(e) => return read_failure(shared, "request header", &e),
        }
        let h = match parse_header(&hdr) {
            Ok(h) => h,
            Err(magic) => {
                let detail = format!("bad request magic {magic:#010x}");
                shared.emit(Event::ProtocolError { id: conn.id, detail: detail.clone() });
                return detail;
            }
        };
        match decide(&h, conn.n) {
            Decision::Disconnect => return "client disconnected (NBD_CMD_DISC)".to_owned(),
            Decision::Fatal(detail) => {
                shared.emit(Event::ProtocolError { id: conn.id, detail: detail.clone() });
                return detail;
            }
            Decision::Reject { handle, errno, message, discard } => {
                if discard > 0 {
                    match io::copy(&mut (&mut r).take(u64::from(discard)), &mut io::sink()) {
                        Ok(got) if got == u64::from(discard) => {}
                        Ok(_) => return "client closed the connection in a write payload".to_owned(),
                        Err(e) => return read_failure(shared, "write payload", &e),
                    }
                }
                let mut out = Vec::new();
                error_reply(conn.n, handle, &IoFailure::new(errno, message), &mut out);
                conn.send(&out);
            }
            Decision::Execute(req) => {
                let payload_len = if h.kind == CMD_WRITE { req.length as usize } else { 0 };
                let cost = conn.budget.acquire(payload_len + reply_size(conn.n, &req));
                let mut payload = Vec::new();
                if let Command::Write { .. } = req.command {
                    payload = conn.pool.get();
                    payload.resize(payload_len, 0);
                    if let Err(e) = r.read_exact(&mut payload) {
                        conn.budget.release(cost);
                        return read_failure(shared, "write payload", &e);
                    }
                }
                let alone = conn.pending.fetch_add(1, Ordering::SeqCst) == 0 && r.buffer().is_empty();
                dispatch(Job { req, payload, cost }, alone);
            }
        }
    }
}

/// Fills `hdr`; `Ok(false)` on a clean end of stream before its first byte.
fn read_header(r: &mut impl Read, hdr: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < hdr.len() {
        match r.read(hdr.get_mut(got..).unwrap_or_default()) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Both halves of an unsplittable stream, taken in turn.
struct Locked(Arc<Mutex<Box<dyn Stream>>>);

impl Read for Locked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).read(buf)
    }
}

impl Write for Locked {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}
