//! Serves one file over NBD until stdin closes or a line is read, printing events as JSON.
//!
//! cargo run --release -p plexus-nbd --example serve_file -- FILE [--tcp ADDR] [--unix PATH] [--name NAME] [--read-only] [--workers N]
//!
//! Default: TCP on 127.0.0.1:10809, export name "" (so `nbd://127.0.0.1` works).

use plexus_nbd::{Event, Events, Exports, FileExport, Server, ServerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

struct PrintEvents;

impl Events for PrintEvents {
    fn event(&self, e: Event) {
        eprintln!("{}", e.to_json());
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut config = ServerConfig::default();
    let mut name = String::new();
    let mut read_only = false;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tcp" => config.tcp = Some(args.next().and_then(|v| v.parse::<SocketAddr>().ok()).ok_or_else(|| bad("--tcp ADDR:PORT"))?),
            "--unix" => config.unix = Some(PathBuf::from(args.next().ok_or_else(|| bad("--unix PATH"))?)),
            "--name" => name = args.next().ok_or_else(|| bad("--name NAME"))?,
            "--read-only" => read_only = true,
            "--workers" => config.workers_per_connection = args.next().and_then(|v| v.parse().ok()).ok_or_else(|| bad("--workers N"))?,
            _ => file = Some(PathBuf::from(a)),
        }
    }
    let file = file.ok_or_else(|| bad("usage: serve_file FILE [--tcp ADDR] [--unix PATH] [--name NAME] [--read-only] [--workers N]"))?;
    if config.tcp.is_none() && config.unix.is_none() {
        config.tcp = "127.0.0.1:10809".parse().ok();
    }
    let exports = Arc::new(Exports::new());
    exports.add(&name, &file.display().to_string(), Arc::new(FileExport::open(&file, read_only)?));
    let server = Server::start(config, exports, Arc::new(PrintEvents))?;
    if let Some(addr) = server.tcp_addr() {
        println!("listening on nbd://{addr}/{name}");
    }
    if let Some(path) = server.unix_path() {
        println!("listening on nbd+unix:///{name}?socket={}", path.display());
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    server.shutdown();
    Ok(())
}
