//! The NBD server and a volume's write path (`Plex`) as JavaScript classes. The server's
//! request loop runs on native threads; JavaScript configures exports and polls events.

use crate::error::{coded, to_js, Coded};
use crate::mirror::NativeMirror;
use crate::volume::NativeVolume;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use plexus_export::plex::PlexError;
use plexus_export::{Plex, PrimaryExport, SecondaryExport};
use plexus_mirror::Checkpoints;
use plexus_nbd::{Event, Events, Exports, Server, ServerConfig};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

impl Coded for PlexError {
    fn stable_code(&self) -> &'static str {
        self.code()
    }
}

/// A volume's write path: the volume, its pairs' mirrors and its checkpoints.
#[napi]
pub struct NativePlex {
    pub(crate) inner: Arc<Plex>,
}

/// One dirty-bitmap generation of a primary.
#[napi(object)]
pub struct CheckpointGeneration {
    /// Its number (1, 2, ...).
    pub number: f64,
    /// Frozen by a later checkpoint (no longer records writes).
    pub frozen: bool,
    /// Bytes it marks dirty.
    pub dirty_bytes: f64,
}

#[napi]
impl NativePlex {
    /// The write path of `volume`, with no pairs yet.
    #[napi(factory, catch_unwind)]
    pub fn create(volume: &NativeVolume) -> Self {
        NativePlex { inner: Arc::new(Plex::new(volume.inner.clone())) }
    }

    /// Replaces the mirrors writes go through (every plex of the volume).
    #[napi(catch_unwind)]
    pub fn set_mirrors(&self, mirrors: Vec<&NativeMirror>) {
        self.inner.set_mirrors(mirrors.iter().map(|m| m.inner.clone()).collect());
    }

    /// Opens (or creates) the checkpoint chain in `dir`; writes are recorded in it from now on.
    #[napi(catch_unwind)]
    pub fn open_checkpoints(&self, dir: String, granularity: f64) -> napi::Result<()> {
        let g = crate::args::bitmap_geometry(self.inner.size() as f64, granularity)?.1;
        let c = Checkpoints::open(&PathBuf::from(dir), self.inner.size(), g).map_err(to_js)?;
        self.inner.set_checkpoints(Some(Arc::new(c)));
        Ok(())
    }

    /// Whether writes are recorded in checkpoints.
    #[napi(getter)]
    pub fn has_checkpoints(&self) -> bool {
        self.inner.checkpoints().is_some()
    }

    /// Stops recording checkpoints (their files stay).
    #[napi(catch_unwind)]
    pub fn close_checkpoints(&self) {
        self.inner.set_checkpoints(None);
    }

    /// Freezes the current generation and starts a new one; its number.
    #[napi(catch_unwind)]
    pub fn checkpoint(&self) -> napi::Result<f64> {
        let c = self.inner.checkpoints().ok_or_else(|| coded("E_STATE", format!("volume {} keeps no checkpoints", self.inner.label())))?;
        Ok(c.checkpoint().map_err(to_js)? as f64)
    }

    /// Releases a frozen generation.
    #[napi(catch_unwind)]
    pub fn release_checkpoint(&self, generation: f64) -> napi::Result<()> {
        let c = self.inner.checkpoints().ok_or_else(|| coded("E_STATE", format!("volume {} keeps no checkpoints", self.inner.label())))?;
        c.release(crate::args::to_u64("generation", generation)?).map_err(to_js)
    }

    /// The generations, oldest first.
    #[napi(catch_unwind)]
    pub fn generations(&self) -> Vec<CheckpointGeneration> {
        self.inner.checkpoints().map_or_else(Vec::new, |c| {
            c.generations()
                .iter()
                .map(|g| CheckpointGeneration { number: g.number as f64, frozen: g.frozen, dirty_bytes: g.dirty_bytes as f64 })
                .collect()
        })
    }

    /// Writes through the mirrors and checkpoints.
    #[napi(catch_unwind)]
    pub fn write(&self, offset: f64, data: Buffer) -> napi::Result<()> {
        self.inner.write(crate::args::to_u64("offset", offset)?, &data).map_err(to_js)
    }

    /// Writes through the mirrors, checkpoints and replication off the JS thread (a
    /// synchronous remote pair waits there for the remote, never on the JS thread that
    /// ships the journal).
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn write_async(&self, offset: f64, data: Buffer) -> napi::Result<napi::bindgen_prelude::AsyncTask<PlexWriteTask>> {
        Ok(napi::bindgen_prelude::AsyncTask::new(PlexWriteTask {
            plex: self.inner.clone(),
            offset: crate::args::to_u64("offset", offset)?,
            data,
        }))
    }

    /// Refuses writes from this site with `why` (E_STATE), or takes them again (no argument).
    #[napi(catch_unwind)]
    pub fn set_fence(&self, why: Option<String>) {
        self.inner.set_fence(why);
    }

    /// Why writes from this site are refused, if they are.
    #[napi(getter)]
    pub fn fence(&self) -> Option<String> {
        self.inner.fence()
    }

    /// Whether the volume's changes are replicated by a remote group.
    #[napi(getter)]
    pub fn replicated(&self) -> bool {
        self.inner.replica().is_some()
    }

    /// Writes bypassing the remote replication and the fence (a reverse resync's data).
    #[napi(catch_unwind)]
    pub fn write_local(&self, offset: f64, data: Buffer) -> napi::Result<()> {
        self.inner.write_local(crate::args::to_u64("offset", offset)?, &data).map_err(to_js)
    }

    /// Makes every completed write durable.
    #[napi(catch_unwind)]
    pub fn flush(&self) -> napi::Result<()> {
        self.inner.flush().map_err(to_js)
    }
}

/// `writeAsync` on the libuv pool.
pub struct PlexWriteTask {
    plex: Arc<Plex>,
    offset: u64,
    data: Buffer,
}

impl napi::Task for PlexWriteTask {
    type Output = ();
    type JsValue = ();
    fn compute(&mut self) -> napi::Result<()> {
        crate::error::guard(|| self.plex.write(self.offset, &self.data).map_err(to_js))
    }
    fn resolve(&mut self, _env: napi::Env, _: ()) -> napi::Result<()> {
        Ok(())
    }
}

/// Where the NBD server listens and how much it takes.
#[napi(object)]
pub struct NbdServerOptions {
    /// `HOST:PORT` for TCP (port 0: any free port).
    pub tcp: Option<String>,
    /// A Unix socket path.
    pub unix: Option<String>,
    /// Clients connected at once (default 128).
    pub max_connections: Option<u32>,
    /// A directory with server-cert.pem, server-key.pem and ca-cert.pem: x509 TLS.
    pub tls_certificates: Option<String>,
    /// With `tls_certificates`: clients must present a certificate the CA signed.
    pub tls_verify_peer: Option<bool>,
    /// A psktool key file (`username:hexkey` lines): pre-shared-key TLS.
    pub tls_psk: Option<String>,
    /// Refuse clients that do not start TLS (default true when credentials are given).
    pub tls_required: Option<bool>,
}

impl Coded for plexus_tls::TlsError {
    fn stable_code(&self) -> &'static str {
        self.code()
    }
}

fn tls_hook(opts: &NbdServerOptions) -> napi::Result<Option<Arc<dyn plexus_nbd::TlsUpgrade>>> {
    use plexus_tls::{TlsCredentials, TlsServer};
    let creds = match (&opts.tls_certificates, &opts.tls_psk) {
        (Some(_), Some(_)) => return Err(coded("E_INVALID", "give TLS certificates or a PSK file, not both")),
        (Some(dir), None) => TlsCredentials::X509 { dir: PathBuf::from(dir), verify_peer: opts.tls_verify_peer.unwrap_or(false) },
        (None, Some(file)) => TlsCredentials::Psk { file: PathBuf::from(file) },
        (None, None) => return Ok(None),
    };
    Ok(Some(Arc::new(plexus_export::TlsHook(TlsServer::new(&creds).map_err(to_js)?))))
}

/// Events the server reports, kept until JavaScript drains them (bounded: the oldest
/// are dropped and counted when nobody drains).
#[derive(Default)]
struct EventQueue {
    lines: Mutex<(VecDeque<String>, u64)>,
}

const MAX_QUEUED_EVENTS: usize = 10_000;

impl Events for EventQueue {
    fn event(&self, e: Event) {
        let mut q = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if q.0.len() >= MAX_QUEUED_EVENTS {
            q.0.pop_front();
            q.1 += 1;
        }
        q.0.push_back(e.to_json());
    }
}

/// The NBD server of the agent.
#[napi]
pub struct NativeNbdServer {
    server: Mutex<Option<Server>>,
    exports: Arc<Exports>,
    events: Arc<EventQueue>,
    tcp: Option<String>,
}

#[napi]
impl NativeNbdServer {
    /// Starts listening. E_INVALID for a malformed address, E_BUSY when it is taken.
    #[napi(factory, catch_unwind)]
    pub fn start(opts: NbdServerOptions) -> napi::Result<Self> {
        let tcp = match &opts.tcp {
            Some(a) => Some(
                a.parse::<SocketAddr>()
                    .map_err(|e| coded("E_INVALID", format!("NBD address {a}: {e} (want HOST:PORT, e.g. 127.0.0.1:10809)")))?,
            ),
            None => None,
        };
        let exports = Arc::new(Exports::new());
        let events = Arc::new(EventQueue::default());
        let tls = tls_hook(&opts)?;
        let tls_required = tls.is_some() && opts.tls_required.unwrap_or(true);
        let mut config = ServerConfig { tcp, unix: opts.unix.clone().map(PathBuf::from), tls, tls_required, ..ServerConfig::default() };
        if let Some(m) = opts.max_connections {
            config.max_connections = m as usize;
        }
        let server = Server::start(config, exports.clone(), events.clone()).map_err(|e| {
            let code = if e.kind() == std::io::ErrorKind::AddrInUse { "E_BUSY" } else { plexus_volume::error::io_code(&e) };
            coded(code, format!("cannot listen for NBD: {e}"))
        })?;
        let tcp = server.tcp_addr().map(|a| a.to_string());
        Ok(NativeNbdServer { server: Mutex::new(Some(server)), exports, events, tcp })
    }

    /// The TCP address it listens on (with the port chosen when 0 was asked).
    #[napi(getter)]
    pub fn tcp_address(&self) -> Option<String> {
        self.tcp.clone()
    }

    /// Serves a primary (or plain volume) through its write path.
    #[napi(catch_unwind)]
    pub fn add_primary(&self, name: String, plex: &NativePlex, description: String) {
        self.exports.add(&name, &description, Arc::new(PrimaryExport::new(plex.inner.clone())));
    }

    /// Serves a pair's secondary; `readOnly` refuses writes, `allow` is its access list.
    #[napi(catch_unwind)]
    pub fn add_secondary(
        &self,
        name: String,
        mirror: &NativeMirror,
        read_only: bool,
        allow: Vec<String>,
        local_host: String,
        description: String,
    ) {
        self.exports.add(&name, &description, Arc::new(SecondaryExport::new(mirror.inner.clone(), read_only, allow, local_host)));
    }

    /// Stops offering an export (connected clients keep it until `disconnect`).
    #[napi(catch_unwind)]
    pub fn remove(&self, name: String) -> bool {
        self.exports.remove(&name)
    }

    /// Ends every connection to the export `name`; how many there were.
    #[napi(catch_unwind)]
    pub fn disconnect(&self, name: String) -> u32 {
        let guard = self.server.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map_or(0, |s| s.disconnect_export(&name) as u32)
    }

    /// Clients connected now to export `name`.
    #[napi(catch_unwind)]
    pub fn export_connections(&self, name: String) -> u32 {
        let guard = self.server.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map_or(0, |s| s.export_connections(&name) as u32)
    }

    /// Clients connected now.
    #[napi(catch_unwind)]
    pub fn connections(&self) -> u32 {
        let guard = self.server.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map_or(0, |s| s.connection_count() as u32)
    }

    /// The events since the last call, as JSON lines, and how many were dropped.
    #[napi(catch_unwind)]
    pub fn drain_events(&self) -> Vec<String> {
        let mut q = self.events.lines.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<String> = q.0.drain(..).collect();
        if q.1 > 0 {
            out.push(format!("{{\"event\":\"events-dropped\",\"count\":{}}}", q.1));
            q.1 = 0;
        }
        out
    }

    /// Stops: no new clients, in-flight requests finish, exports flushed, connections closed.
    #[napi(catch_unwind)]
    pub fn shutdown(&self) {
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(s) = server {
            s.shutdown();
        }
    }
}
