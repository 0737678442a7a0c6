//! A volume's life: create, write, read back, reopen, bounds, read-only, identity.

use plexus_volume::{identity_path, random_bytes, Access, BlockDevice, Fill, Volume};
use std::fs;

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn create_is_sparse_and_zeroed() {
    let d = dir();
    let p = d.path().join("a.img");
    let v = Volume::create(&p, 64 << 20, 4096).expect("create");
    assert_eq!(v.size(), 64 << 20);
    let meta = fs::metadata(&p).expect("stat");
    assert_eq!(meta.len(), 64 << 20);
    // A sparse file allocates (almost) nothing until written.
    use std::os::unix::fs::MetadataExt;
    assert!(meta.blocks() * 512 < 1 << 20, "allocated {} blocks", meta.blocks());
    let mut buf = vec![1u8; 4096];
    v.read_at((64 << 20) - 4096, &mut buf).expect("read");
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn write_then_read_at_unaligned_offsets_and_after_reopen() {
    let d = dir();
    let p = d.path().join("a.img");
    let v = Volume::create(&p, 1 << 20, 512).expect("create");
    v.write_at(12345, b"hello volume").expect("write");
    v.flush().expect("flush");
    let id = v.identity().id;
    drop(v);
    let v = Volume::open(&p, Access::ReadOnly).expect("open");
    assert_eq!(v.identity().id, id, "identity survives reopen");
    let mut buf = [0u8; 12];
    v.read_at(12345, &mut buf).expect("read");
    assert_eq!(&buf, b"hello volume");
}

#[test]
fn bounds_are_checked_with_the_volume_named() {
    let d = dir();
    let v = Volume::create(&d.path().join("edge.img"), 8192, 4096).expect("create");
    let mut buf = [0u8; 2];
    let e = v.read_at(8191, &mut buf).expect_err("past end");
    assert_eq!(e.code(), "E_RANGE");
    assert!(e.to_string().contains("edge"), "{e}");
    assert_eq!(v.write_at(u64::MAX, b"x").expect_err("overflow").code(), "E_RANGE");
    v.write_at(8191, b"z").expect("last byte is writable");
    v.read_at(8192, &mut []).expect("empty read at the end is fine");
}

#[test]
fn read_only_handles_refuse_writes() {
    let d = dir();
    let p = d.path().join("ro.img");
    Volume::create(&p, 4096, 4096).expect("create");
    let v = Volume::open(&p, Access::ReadOnly).expect("open");
    let e = v.write_at(0, b"x").expect_err("read-only");
    assert_eq!(e.code(), "E_READONLY");
}

#[test]
fn bad_geometry_is_refused() {
    let d = dir();
    let p = d.path().join("g.img");
    assert_eq!(Volume::create(&p, 4096, 3000).err().map(|e| e.code()), Some("E_INVALID"));
    assert_eq!(Volume::create(&p, 4096, 256).err().map(|e| e.code()), Some("E_INVALID"));
    assert_eq!(Volume::create(&p, 4096, 2 << 20).err().map(|e| e.code()), Some("E_INVALID"));
    assert_eq!(Volume::create(&p, 0, 512).err().map(|e| e.code()), Some("E_INVALID"));
    assert_eq!(Volume::create(&p, 5000, 4096).err().map(|e| e.code()), Some("E_SIZE"));
    assert!(!p.exists(), "a refused create leaves nothing behind");
    Volume::create(&p, 4096, 4096).expect("create");
    assert_eq!(Volume::create(&p, 4096, 4096).err().map(|e| e.code()), Some("E_EXISTS"));
}

#[test]
fn missing_and_corrupt_volumes_are_reported() {
    let d = dir();
    let p = d.path().join("c.img");
    assert_eq!(Volume::open(&p, Access::ReadWrite).err().map(|e| e.code()), Some("E_NOENT"));
    Volume::create(&p, 4096, 4096).expect("create");
    let meta = identity_path(&p);
    let mut bytes = fs::read(&meta).expect("read meta");
    bytes[20] ^= 0xff;
    fs::write(&meta, &bytes).expect("write meta");
    assert_eq!(Volume::open(&p, Access::ReadWrite).err().map(|e| e.code()), Some("E_CORRUPT"));
    fs::write(&meta, b"short").expect("write meta");
    assert_eq!(Volume::open(&p, Access::ReadWrite).err().map(|e| e.code()), Some("E_CORRUPT"));
}

#[test]
fn a_data_file_of_the_wrong_length_is_corrupt() {
    let d = dir();
    let p = d.path().join("len.img");
    Volume::create(&p, 8192, 4096).expect("create");
    fs::OpenOptions::new().write(true).open(&p).and_then(|f| f.set_len(4096)).expect("truncate");
    assert_eq!(Volume::open(&p, Access::ReadOnly).err().map(|e| e.code()), Some("E_CORRUPT"));
}

#[test]
fn identities_are_unique_and_naa6() {
    let d = dir();
    let a = Volume::create(&d.path().join("a.img"), 4096, 4096).expect("a");
    let b = Volume::create(&d.path().join("b.img"), 4096, 4096).expect("b");
    assert_ne!(a.identity().id, b.identity().id);
    assert!(a.identity().id.to_hex().starts_with('6'));
    assert_eq!(a.identity().id.to_hex().len(), 32);
}

#[test]
fn remove_deletes_both_files() {
    let d = dir();
    let p = d.path().join("r.img");
    Volume::create(&p, 4096, 4096).expect("create");
    Volume::remove(&p).expect("remove");
    assert!(!p.exists() && !identity_path(&p).exists());
    assert_eq!(Volume::remove(&p).err().map(|e| e.code()), Some("E_NOENT"));
}

#[test]
fn random_fill_depends_only_on_seed_and_offset() {
    let d = dir();
    let v = Volume::create(&d.path().join("f.img"), 1 << 20, 4096).expect("create");
    plexus_volume::fill(&v, 0, 1 << 20, Fill::Random(7)).expect("fill");
    let mut whole = vec![0u8; 1000];
    v.read_at(1001, &mut whole).expect("read");
    let mut expect = vec![0u8; 1000];
    random_bytes(7, 1001, &mut expect);
    assert_eq!(whole, expect);
    let w = Volume::create(&d.path().join("g.img"), 1 << 20, 4096).expect("create");
    plexus_volume::fill(&w, 0, 3, Fill::Random(7)).expect("fill head");
    plexus_volume::fill(&w, 3, (1 << 20) - 3, Fill::Random(7)).expect("fill rest");
    assert_eq!(v.checksum(0, 1 << 20).expect("sum"), w.checksum(0, 1 << 20).expect("sum"));
    plexus_volume::fill(&w, 10, 5, Fill::Pattern(0xab)).expect("pattern");
    let mut five = [0u8; 7];
    w.read_at(9, &mut five).expect("read");
    assert_eq!(&five[1..6], &[0xab; 5]);
    assert_ne!(five[0], 0xab);
}

#[test]
fn checksum_is_sha256_of_the_bytes() {
    let d = dir();
    let v = Volume::create(&d.path().join("s.img"), 4096, 4096).expect("create");
    // sha256 of 4096 zero bytes
    assert_eq!(v.checksum(0, 4096).expect("sum"), "ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7");
    assert_eq!(v.checksum(4000, 100).err().map(|e| e.code()), Some("E_RANGE"));
}
