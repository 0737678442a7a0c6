//! QEMU's NBD client (qemu-io, qemu-img) against the server: every data command, both
//! transports, read-only exports, and image comparison through a file-backed export.

mod common;

use common::{fails, mem, ok, qemu, Fixture};
use plexus_nbd::testing::EventLog;
use plexus_nbd::{Event, Export, Exports, FileExport, Server, ServerConfig};
use std::sync::Arc;
use std::time::Duration;

const MIB: u64 = 1 << 20;

fn io(uri: &str, cmds: &[&str]) -> String {
    let mut c = qemu("qemu-io");
    c.args(["-f", "raw", uri]);
    for cmd in cmds {
        c.args(["-c", cmd]);
    }
    let out = ok(&mut c);
    assert!(!out.contains("failed"), "qemu-io reported a failure: {out}");
    out
}

#[test]
fn qemu_io_runs_every_data_command() {
    let disk = mem(16 * MIB);
    let f = Fixture::tcp(vec![("d", disk.clone())], |_| {});
    let out = io(
        &f.uri("d"),
        &[
            "write -P 0xab 0 64k",
            "read -P 0xab 0 64k",
            "write -P 0xcd 1M 64k",
            "discard 1M 64k",
            "write -P 0x11 2M 64k",
            "write -z -u 2M 64k",
            "read -P 0 2M 64k",
            "write -P 0x33 6M 64k",
            "write -z 6M 64k",
            "read -P 0 6M 64k",
            "flush",
            "aio_write -P 0xef 3M 64k",
            "aio_write -P 0xee 4M 1M",
            "aio_flush",
            "read -P 0xef 3M 64k",
            "read -P 0xee 4M 1M",
            "write -f -P 0x22 5M 4k",
            "read -P 0x22 5M 4k",
        ],
    );
    assert!(out.contains("wrote 65536/65536 bytes at offset 0"), "{out}");
    assert!(out.contains("discard 65536/65536 bytes at offset 1048576"), "{out}");
    let mut buf = vec![0; 64 * 1024];
    disk.read(0, &mut buf).expect("read back");
    assert!(buf.iter().all(|&b| b == 0xab));
    assert!(!disk.allocated(MIB, 64 * 1024), "discard punched a hole");
    assert!(!disk.allocated(2 * MIB, 64 * 1024), "write -z -u (may unmap) punched a hole");
    assert!(disk.allocated(6 * MIB, 64 * 1024), "write -z (NBD_CMD_FLAG_NO_HOLE) kept the allocation");
    assert!(disk.flush_count() >= 2, "flush and aio_flush reached the export");
    f.wait_idle();
    let negotiated = f.events(|e| matches!(e, Event::Negotiated { structured: true, .. }));
    assert_eq!(negotiated.len(), 1, "QEMU negotiates structured replies");
}

#[test]
fn qemu_io_over_a_unix_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nbd.sock");
    let exports = Arc::new(Exports::new());
    let disk = mem(4 * MIB);
    exports.add("d", "", disk.clone());
    let config = ServerConfig { unix: Some(path.clone()), ..ServerConfig::default() };
    let server = Server::start(config, exports, Arc::new(EventLog::new())).expect("start");
    let uri = format!("nbd+unix:///d?socket={}", path.display());
    io(&uri, &["write -P 0x5a 1M 128k", "read -P 0x5a 1M 128k", "flush"]);
    assert!(disk.allocated(MIB, 1));
    server.shutdown();
    assert!(!path.exists(), "socket file removed at shutdown");
}

#[test]
fn read_only_export_refuses_writes() {
    let ro = mem(4 * MIB);
    ro.set_read_only(true);
    let f = Fixture::tcp(vec![("ro", ro.clone())], |_| {});
    // Advertised read-only: QEMU will not even open it for writing.
    let mut c = qemu("qemu-io");
    let out = fails(c.args(["-f", "raw", &f.uri("ro"), "-c", "write 0 4k"]));
    assert!(out.contains("read-only") || out.contains("Permission denied"), "{out}");
    let mut c = qemu("qemu-io");
    ok(c.args(["-r", "-f", "raw", &f.uri("ro"), "-c", "read -P 0 0 64k"]));
}

#[test]
fn export_frozen_while_connected_gives_eperm() {
    let disk = mem(4 * MIB);
    let f = Fixture::tcp(vec![("d", disk.clone())], |_| {});
    let mut c = qemu("qemu-io");
    c.args(["-f", "raw", &f.uri("d"), "-c", "write -P 1 0 4k", "-c", "sleep 1500", "-c", "write -P 2 64k 4k"]);
    let child = std::thread::spawn(move || common::run(&mut c, Duration::from_secs(30)));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !disk.allocated(0, 4096) {
        assert!(std::time::Instant::now() < deadline, "first write never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    disk.set_read_only(true);
    let out = child.join().expect("qemu-io thread");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Operation not permitted"), "{text}");
    assert!(!disk.allocated(64 * 1024, 4096), "the refused write changed nothing");
}

#[test]
fn qemu_img_compare_and_map_through_a_file_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("disk.img");
    let reference = dir.path().join("ref.img");
    let data = common::pattern(MIB as usize, 7);
    let file = std::fs::File::create(&image).expect("create");
    file.set_len(8 * MIB).expect("size");
    let export = Arc::new(FileExport::open(&image, false).expect("open"));
    export.write(2 * MIB, &data, false).expect("write");
    std::fs::copy(&image, &reference).expect("copy");
    let f = Fixture::tcp(vec![("img", export.clone())], |_| {});
    let mut c = qemu("qemu-img");
    let out = ok(c.args(["compare", "-f", "raw", "-F", "raw", reference.to_str().expect("path"), &f.uri("img")]));
    assert!(out.contains("Images are identical"), "{out}");
    // base:allocation through QEMU's block-status path: holes around the written MiB.
    let mut c = qemu("qemu-img");
    let map = ok(c.args(["map", "--output=json", "-f", "raw", &f.uri("img")]));
    assert!(map.contains("\"start\": 2097152, \"length\": 1048576") && map.contains("\"data\": true"), "{map}");
    assert!(map.contains("\"zero\": true"), "{map}");
    export.write(5 * MIB, b"changed", false).expect("write");
    let mut c = qemu("qemu-img");
    let out = fails(c.args(["compare", "-f", "raw", "-F", "raw", reference.to_str().expect("path"), &f.uri("img")]));
    assert!(out.contains("Content mismatch at offset 5242880"), "{out}");
}
