//! A remote group's data channel (crates/replica/src/channel.rs) as JavaScript classes:
//! the remote's listener hands out tokens over the authenticated link, the primary's
//! shipper connects with one; both move the bytes on core threads.

use crate::error::{coded, guard};
use crate::replica::{NativeApplier, NativeReplicaGroup};
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;
use plexus_replica::channel::{DataListener, Shipper, ShipperOptions};
use std::sync::{Arc, Mutex};

fn token_of(b: &Buffer) -> napi::Result<[u8; 32]> {
    <[u8; 32]>::try_from(&b[..]).map_err(|_| coded("E_INVALID", "a data-channel token is 32 bytes"))
}

/// The remote's listener for data channels.
#[napi]
pub struct NativeDataListener {
    inner: Arc<DataListener>,
}

#[napi]
impl NativeDataListener {
    /// Listens on `addr` (`HOST:0` for any free port).
    #[napi(factory, catch_unwind)]
    pub fn start(addr: String) -> napi::Result<Self> {
        let l = DataListener::start(&addr).map_err(|e| coded("E_LINK", format!("cannot listen for data channels on {addr}: {e}")))?;
        Ok(NativeDataListener { inner: Arc::new(l) })
    }

    /// The port it listens on.
    #[napi(getter)]
    pub fn port(&self) -> u32 {
        u32::from(self.inner.local_addr().port())
    }

    /// Expects one channel into `applier`, presenting `token` (32 bytes); its channel id.
    #[napi(catch_unwind)]
    pub fn expect(&self, applier: &NativeApplier, token: Buffer) -> napi::Result<f64> {
        Ok(self.inner.expect(applier.inner.clone(), token_of(&token)?) as f64)
    }

    /// Ends a channel.
    #[napi(catch_unwind)]
    pub fn cut(&self, channel: f64) -> napi::Result<()> {
        self.inner.cut(crate::args::to_u64("channel", channel)?);
        Ok(())
    }

    /// What happened on the channels, oldest first.
    #[napi(catch_unwind)]
    pub fn take_events(&self) -> Vec<String> {
        self.inner.take_events()
    }

    /// Stops listening and ends every channel.
    #[napi(catch_unwind)]
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

/// What a shipper is doing.
#[napi(object)]
pub struct ShipperState {
    /// Still shipping.
    pub running: bool,
    /// Why it stopped, if it failed.
    pub error: Option<String>,
    /// Newest sequence number sent.
    pub sent: f64,
    /// Bytes sent, not yet acknowledged.
    pub in_flight: f64,
}

/// How a shipper connects and ships.
#[napi(object)]
pub struct ShipperConfig {
    /// `IP:PORT` of the remote's data listener.
    pub address: String,
    /// The token the remote handed out.
    pub token: Buffer,
    /// First sequence number to send.
    pub from: f64,
    /// Bytes per batch.
    pub batch_bytes: f64,
    /// Most bytes unacknowledged.
    pub window_bytes: f64,
    /// A batch unacknowledged this long fails the channel.
    pub ack_timeout_ms: f64,
}

/// The primary's end of a data channel.
#[napi]
pub struct NativeShipper {
    inner: Arc<Mutex<Option<Shipper>>>,
}

#[napi]
impl NativeShipper {
    /// A shipper not connected yet.
    #[napi(factory, catch_unwind)]
    pub fn create() -> Self {
        NativeShipper { inner: Arc::new(Mutex::new(None)) }
    }

    /// Connects and starts the sender and acknowledgement threads.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn connect(&self, group: &NativeReplicaGroup, config: ShipperConfig) -> napi::Result<AsyncTask<ConnectTask>> {
        let opts = ShipperOptions {
            batch_bytes: crate::args::buffer_len("batchBytes", config.batch_bytes)?,
            window_bytes: crate::args::to_u64("windowBytes", config.window_bytes)?,
            ack_timeout: crate::args::millis("ackTimeoutMs", config.ack_timeout_ms)?,
        };
        Ok(AsyncTask::new(ConnectTask {
            slot: self.inner.clone(),
            group: group.inner.clone(),
            address: config.address,
            token: token_of(&config.token)?,
            from: crate::args::to_u64("from", config.from)?,
            opts,
        }))
    }

    /// What it is doing (not running before `connect` resolved).
    #[napi(catch_unwind)]
    pub fn status(&self) -> ShipperState {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_ref() {
            Some(s) => {
                let st = s.status();
                ShipperState { running: st.running, error: st.error, sent: st.sent as f64, in_flight: st.in_flight as f64 }
            }
            None => ShipperState { running: false, error: None, sent: 0.0, in_flight: 0.0 },
        }
    }

    /// Stops shipping and closes the channel.
    #[napi(catch_unwind)]
    pub fn stop(&self) {
        let s = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(s) = s {
            s.stop();
        }
    }
}

/// `connect` on the libuv pool.
pub struct ConnectTask {
    slot: Arc<Mutex<Option<Shipper>>>,
    group: Arc<plexus_replica::ReplicaGroup>,
    address: String,
    token: [u8; 32],
    from: u64,
    opts: ShipperOptions,
}

impl Task for ConnectTask {
    type Output = ();
    type JsValue = ();
    fn compute(&mut self) -> napi::Result<()> {
        guard(|| {
            let s = Shipper::start(self.group.clone(), &self.address, self.token, self.from, self.opts)
                .map_err(|e| coded("E_LINK", format!("data channel to {}: {e}", self.address)))?;
            *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
            Ok(())
        })
    }
    fn resolve(&mut self, _env: Env, _: ()) -> napi::Result<()> {
        Ok(())
    }
}
