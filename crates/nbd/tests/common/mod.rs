//! Shared by the integration tests: starting a server, finding and running real NBD
//! clients (a missing one fails the test, naming its Debian package), and a raw client
//! for the cases no well-behaved client produces.
#![allow(dead_code)]

pub mod raw;

use plexus_nbd::testing::{EventLog, MemExport};
use plexus_nbd::{Event, Export, Exports, Server, ServerConfig};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running server with its registry and event log.
pub struct Fixture {
    pub server: Server,
    pub exports: Arc<Exports>,
    pub log: Arc<EventLog>,
}

impl Fixture {
    /// A server on 127.0.0.1 (any port) serving `exports`, with `tweak` applied to the default config.
    pub fn tcp(exports: Vec<(&str, Arc<dyn Export>)>, tweak: impl FnOnce(&mut ServerConfig)) -> Fixture {
        let mut config = ServerConfig { tcp: "127.0.0.1:0".parse().ok(), ..ServerConfig::default() };
        tweak(&mut config);
        let registry = Arc::new(Exports::new());
        for (name, e) in exports {
            registry.add(name, &format!("test export {name}"), e);
        }
        let log = Arc::new(EventLog::new());
        let server = Server::start(config, Arc::clone(&registry), log.clone()).expect("server starts");
        Fixture { server, exports: registry, log }
    }

    /// `nbd://127.0.0.1:PORT/NAME`.
    pub fn uri(&self, name: &str) -> String {
        format!("nbd://{}/{name}", self.server.tcp_addr().expect("tcp address"))
    }

    /// Waits until every connection has ended.
    pub fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.server.connection_count() > 0 {
            assert!(Instant::now() < deadline, "connections still open: {}", self.server.connection_count());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Events of one kind, by a predicate.
    pub fn events(&self, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
        self.log.events().into_iter().filter(|e| pred(e)).collect()
    }
}

/// A fresh in-memory export.
pub fn mem(size: u64) -> Arc<MemExport> {
    Arc::new(MemExport::new(size))
}

/// The path of `program`, or a failure naming the Debian package that provides it. Never
/// a silent skip: the project's set-up installs these clients.
pub fn tool(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{program} not found on PATH: install the Debian package `{package}` (apt-get install {package}); the project's set-up installs it"
    );
}

/// `qemu-io`, `qemu-img` (qemu-utils).
pub fn qemu(program: &str) -> Command {
    Command::new(tool(program, "qemu-utils"))
}

/// `nbdinfo`, `nbdcopy` (libnbd-bin).
pub fn libnbd(program: &str) -> Command {
    Command::new(tool(program, "libnbd-bin"))
}

/// Runs `cmd` with a time limit; its output whatever the exit status.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn client");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("{cmd:?} took over {limit:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `cmd` and fails the test unless it exits 0; its stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd, Duration::from_secs(30));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed ({}): {text}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd`, expecting failure; its stdout and stderr together.
pub fn fails(cmd: &mut Command) -> String {
    let out = run(cmd, Duration::from_secs(30));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{cmd:?} should have failed: {text}");
    text
}

/// Deterministic pseudo-random bytes (xorshift), so copies can be checked byte for byte.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.extend_from_slice(&s.to_le_bytes());
    }
    v.truncate(len);
    v
}
