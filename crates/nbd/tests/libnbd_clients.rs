//! libnbd's tools (nbdinfo, nbdcopy) against the server: listing, capabilities, extent
//! maps for base:allocation and a dirty bitmap, admission refusals, and multi-connection
//! copies in both directions checked byte for byte.

mod common;

use common::{fails, libnbd, mem, ok, pattern, Fixture};
use plexus_nbd::{Event, Export, FileExport};
use std::sync::Arc;

const MIB: u64 = 1 << 20;

#[test]
fn nbdinfo_lists_exports_with_descriptions() {
    let f = Fixture::tcp(vec![("alpha", mem(MIB)), ("beta", mem(2 * MIB))], |_| {});
    let out = ok(libnbd("nbdinfo").args(["--list", &f.uri("")]));
    assert!(out.contains("export=\"alpha\"") && out.contains("export=\"beta\""), "{out}");
    assert!(out.contains("description: test export beta"), "{out}");
    assert!(out.contains("export-size: 2097152"), "{out}");
}

#[test]
fn nbdinfo_json_shows_capabilities() {
    let ro = mem(MIB);
    ro.set_read_only(true);
    let f = Fixture::tcp(vec![("rw", mem(4 * MIB)), ("ro", ro)], |_| {});
    let json = ok(libnbd("nbdinfo").args(["--json", &f.uri("rw")]));
    for want in [
        "\"can_multi_conn\": true",
        "\"can_flush\": true",
        "\"can_fua\": true",
        "\"can_trim\": true",
        "\"can_zero\": true",
        "\"can_fast_zero\": true",
        "\"can_cache\": true",
        "\"can_df\": true",
        "\"is_read_only\": false",
        "\"structured\": true",
        "\"export-size\": 4194304",
        "\"block_size_maximum\": 33554432",
    ] {
        assert!(json.contains(want), "missing {want} in {json}");
    }
    let json = ok(libnbd("nbdinfo").args(["--json", &f.uri("ro")]));
    assert!(json.contains("\"is_read_only\": true") && json.contains("\"can_trim\": false"), "{json}");
}

#[test]
fn nbdinfo_maps_allocation_and_dirty_bitmap() {
    let disk = mem(8 * MIB);
    disk.write(MIB, &[1; 4096], false).expect("write");
    disk.add_dirty_bitmap("since-backup");
    disk.write(3 * MIB, &[2; 128 * 1024], false).expect("write");
    let f = Fixture::tcp(vec![("d", disk)], |_| {});
    let map = ok(libnbd("nbdinfo").args(["--map", &f.uri("d")]));
    let lines: Vec<&str> = map.lines().map(str::trim).collect();
    assert!(lines.iter().any(|l| l.starts_with("0") && l.contains("1048576") && l.contains("hole,zero")), "{map}");
    assert!(lines.iter().any(|l| l.starts_with("1048576") && l.contains("65536") && l.contains("data")), "{map}");
    let dirty = ok(libnbd("nbdinfo").args(["--map=qemu:dirty-bitmap:since-backup", &f.uri("d")]));
    let dirty_lines: Vec<Vec<&str>> = dirty.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(dirty_lines.iter().any(|l| l.first() == Some(&"3145728") && l.get(1) == Some(&"131072") && l.get(2) == Some(&"1")), "{dirty}");
    assert!(dirty_lines.iter().all(|l| l.get(2) != Some(&"1") || l.first() == Some(&"3145728")), "only the later write is dirty: {dirty}");
    let out = fails(libnbd("nbdinfo").args(["--map=qemu:dirty-bitmap:nope", &f.uri("d")]));
    assert!(out.contains("does not support metadata context"), "{out}");
    // Both contexts through one connection: nbdinfo --totals would use one; list them all.
    let contexts = ok(libnbd("nbdinfo").args(["--json", &f.uri("d")]));
    assert!(contexts.contains("\"base:allocation\"") && contexts.contains("\"qemu:dirty-bitmap:since-backup\""), "{contexts}");
}

#[test]
fn refused_admission_reaches_the_client() {
    let guarded = mem(MIB);
    guarded.set_refusal(Some("backup window closed"));
    let f = Fixture::tcp(vec![("g", guarded)], |_| {});
    // nbdinfo 1.14 names only the errno unless debugging; QEMU prints the server's text.
    let out = fails(libnbd("nbdinfo").arg(f.uri("g")));
    assert!(out.contains("opt_go"), "{out}");
    let out = fails(common::qemu("qemu-io").args(["-r", "-f", "raw", &f.uri("g"), "-c", "read 0 512"]));
    assert!(out.contains("backup window closed"), "{out}");
    let out = fails(libnbd("nbdinfo").env("LIBNBD_DEBUG", "1").arg(f.uri("g")));
    assert!(out.contains("backup window closed"), "the reason reaches the client: {out}");
    f.wait_idle();
    let refused = f.events(|e| matches!(e, Event::Refused { reason, .. } if reason == "backup window closed"));
    assert!(!refused.is_empty());
    let out = fails(libnbd("nbdinfo").arg(f.uri("missing")));
    assert!(out.contains("missing"), "{out}");
}

#[test]
fn nbdcopy_four_connections_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = 24 * MIB as usize;
    let source = dir.path().join("source.img");
    let mut data = pattern(size, 42);
    // A zero run in the middle exercises zero detection and hole replies.
    data[8 * MIB as usize..12 * MIB as usize].fill(0);
    std::fs::write(&source, &data).expect("write source");
    let target = dir.path().join("target.img");
    std::fs::File::create(&target).and_then(|f| f.set_len(size as u64)).expect("create target");
    let export = Arc::new(FileExport::open(&target, false).expect("open"));
    let f = Fixture::tcp(vec![("t", export)], |_| {});
    // nbdcopy caps connections at its thread count (the number of CPUs by default).
    ok(libnbd("nbdcopy").args(["--connections=4", "--threads=4", "--flush", source.to_str().expect("path"), &f.uri("t")]));
    assert!(std::fs::read(&target).expect("read target") == data, "file → export copy differs");
    let back = dir.path().join("back.img");
    ok(libnbd("nbdcopy").args(["--connections=4", "--threads=4", &f.uri("t"), back.to_str().expect("path")]));
    assert!(std::fs::read(&back).expect("read back") == data, "export → file copy differs");
    f.wait_idle();
    let multi = f.events(|e| matches!(e, Event::Negotiated { .. })).len();
    assert!(multi >= 8, "nbdcopy used several connections each way ({multi} in all)");
    assert!(f.events(|e| matches!(e, Event::IoError { .. } | Event::ProtocolError { .. })).is_empty());
}

#[test]
fn listing_survives_an_export_that_refuses_this_client() {
    let guarded = mem(MIB);
    guarded.set_refusal(Some("not for you"));
    let f = Fixture::tcp(vec![("guarded", guarded), ("open", mem(MIB))], |_| {});
    let out = common::run(libnbd("nbdinfo").args(["--list", &f.uri("")]), std::time::Duration::from_secs(30));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The refused export is reported as such; the others are still described.
    assert!(text.contains("export=\"open\"") && text.contains("export: guarded"), "{text}");
}
