//! Thin volumes on tape (format version 2): whole blocks the source reports as holes are
//! recorded as hole records, read back as zeroes and recreated as holes; a version-1
//! cartridge still loads, restores and is appended to in its own form.

use plexus_tape::{
    read_segment, write_file, write_segment, Content, CopyControl, DeviceSink, Digest, Drive, EndedBy, FileSink, FormatOptions, NullSink,
    Position, ReadRequest, VecSink,
};
use plexus_volume::{fill, Access, BlockDevice, Fill, MemDevice, Volume};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const BS: u32 = 64 << 10;
const MIB: u64 = 1 << 20;

fn format(path: &Path, barcode: &str, capacity: u64) -> Drive {
    let o = FormatOptions { barcode: barcode.into(), capacity, block_size: BS, early_warning: None };
    Drive::format(path, &o).expect("format")
}

fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").blocks() * 512
}

/// Size of [`thin_volume`] (small: the tests run unoptimised).
const THIN: u64 = 16 * MIB;
/// Its head and tail pieces.
const PIECE: u64 = 256 << 10;

/// A 16 MiB volume holding under 1 MiB: data at the start, a piece that starts and
/// ends inside blocks, data at the very end; the rest never written (holes).
fn thin_volume(dir: &Path) -> Volume {
    let v = Volume::create(&dir.join("thin.img"), THIN, 4096).expect("create");
    fill(&v, 0, PIECE, Fill::Random(1)).expect("head");
    fill(&v, 8 * MIB + 4096, PIECE + 8192, Fill::Random(2)).expect("middle");
    fill(&v, THIN - PIECE, PIECE, Fill::Random(3)).expect("tail");
    v
}

#[test]
fn a_thin_volume_takes_its_data_on_the_cartridge_and_restores_thin() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = thin_volume(d.path());
    let tape = d.path().join("THIN01.tape");
    let mut drive = format(&tape, "THIN01", 64 * MIB);
    let ctl = CopyControl::new();
    let len = THIN;
    let r = write_segment(&mut drive, &src, 0, len, &ctl).expect("write");
    assert_eq!((r.bytes, r.ended_by, r.blocks), (len, EndedBy::Complete, len / u64::from(BS)));
    assert_eq!(ctl.progress(), (len, len));
    // Data blocks only: the middle piece touches 5 blocks of 64 KiB (unaligned at
    // both ends), head and tail 4 each.
    let f = drive.files()[0].clone();
    assert_eq!(f.bytes, len);
    assert_eq!(f.data_bytes(), (4 + 5 + 4) * u64::from(BS));
    assert_eq!(f.hole_blocks(), len / u64::from(BS) - 13);
    assert!(drive.space().used < MIB, "cartridge holds {} bytes", drive.space().used);
    drop(drive);

    // Reloaded: the scan rebuilds the hole index; the digest binds holes and data.
    let mut drive = Drive::open(&tape, Access::ReadOnly).expect("load");
    assert_eq!(drive.files()[0], f);
    let req = ReadRequest { file: 0, expected_len: Some(len), expected_digest: Some(r.digest), range: None, first_block: None };
    let dst = Volume::create(&d.path().join("dst.img"), len, 4096).expect("dst");
    // The destination held data where the source has holes: restoring punches them.
    fill(&dst, 2 * MIB, 2 * MIB, Fill::Random(9)).expect("old contents");
    let back = read_segment(&mut drive, &req, &mut DeviceSink::new(&dst, 0, true), &CopyControl::new()).expect("restore");
    assert_eq!((back.bytes, back.digest), (len, Some(r.digest)));
    assert_eq!(src.checksum(0, len).expect("a"), dst.checksum(0, len).expect("b"));
    assert!(allocated(&d.path().join("dst.img")) < 2 * MIB, "restored volume allocates {}", allocated(&d.path().join("dst.img")));

    // Into a new plain file: the holes at its end still give it its full length.
    let out = d.path().join("out.raw");
    read_segment(&mut drive, &req, &mut FileSink::open(&out, 0).expect("sink"), &CopyControl::new()).expect("to file");
    assert_eq!(std::fs::metadata(&out).expect("stat").len(), len);
    assert!(allocated(&out) < 2 * MIB);
    let mut want = vec![0u8; len as usize];
    src.read_at(0, &mut want).expect("read");
    assert_eq!(std::fs::read(&out).expect("read out"), want);

    // A wrong digest is still caught; a range across data and holes restores exactly.
    let wrong = ReadRequest { expected_digest: Some(Digest(r.digest.0 ^ 1)), ..req.clone() };
    assert_eq!(read_segment(&mut drive, &wrong, &mut NullSink, &CopyControl::new()).expect_err("digest").code(), "E_CORRUPT");
    for (off, n) in [(PIECE - 100, 5000), (4 * MIB + 7, MIB), (8 * MIB, 512 << 10), (len - PIECE - 1, PIECE + 1)] {
        let mut sink = VecSink::default();
        let range = ReadRequest { range: Some((off, n)), expected_digest: None, ..req.clone() };
        read_segment(&mut drive, &range, &mut sink, &CopyControl::new()).expect("range");
        assert_eq!(sink.0, want[off as usize..(off + n) as usize], "range {off}+{n}");
    }

    // Block by block, a block inside a hole reads as zeroes and moves one block on.
    drive.locate(Position { file: 0, block: 20 }).expect("locate");
    assert_eq!(drive.read_block().expect("hole block"), Some(vec![0u8; BS as usize]));
    assert_eq!(drive.position(), Position { file: 0, block: 21 });
}

#[test]
fn early_warning_cuts_a_thin_segment_by_what_it_takes_on_the_medium() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = thin_volume(d.path());
    let len = THIN;
    // Under 640 KiB of room before early warning: the head and the middle fit, the
    // tail's first block enters the zone, the rest goes on a second cartridge.
    let mut a = format(&d.path().join("EW0001.tape"), "EW0001", 900 << 10);
    let first = write_segment(&mut a, &src, 0, len, &CopyControl::new()).expect("first");
    assert_eq!(first.ended_by, EndedBy::EarlyWarning);
    assert!(first.bytes > 8 * MIB + PIECE + 8192 && first.bytes < len, "first cartridge took {}", first.bytes);
    assert_eq!(first.bytes % u64::from(BS), 0);
    // It stopped at the record that entered the zone: the one before ended outside.
    let space = a.space();
    assert!(space.in_early_warning && space.used - (32 + u64::from(BS)) <= space.early_warning_at);
    let mut b = format(&d.path().join("EW0002.tape"), "EW0002", 64 * MIB);
    let second = write_segment(&mut b, &src, first.bytes, len - first.bytes, &CopyControl::new()).expect("second");
    assert_eq!((second.ended_by, first.bytes + second.bytes), (EndedBy::Complete, len));

    let dst = Volume::create(&d.path().join("dst.img"), len, 4096).expect("dst");
    for (drive, r, base) in [(&mut a, &first, 0), (&mut b, &second, first.bytes)] {
        let req = ReadRequest { file: 0, expected_len: Some(r.bytes), expected_digest: Some(r.digest), ..ReadRequest::default() };
        read_segment(drive, &req, &mut DeviceSink::new(&dst, base, true), &CopyControl::new()).expect("restore");
    }
    assert_eq!(src.checksum(0, len).expect("a"), dst.checksum(0, len).expect("b"));
}

#[test]
fn a_source_without_holes_and_a_short_last_block_are_written_as_data() {
    let d = tempfile::tempdir().expect("tempdir");
    // A memory device reports no allocation: all data, zeroes included.
    let src = MemDevice::new("mem", (4 * MIB) as usize + 100);
    fill(&src, 0, MIB, Fill::Random(4)).expect("fill");
    let mut drive = format(&d.path().join("DENSE1.tape"), "DENSE1", 64 * MIB);
    let r = write_segment(&mut drive, &src, 0, src.size(), &CopyControl::new()).expect("write");
    assert_eq!(drive.files()[0].data_bytes(), src.size());
    assert_eq!(r.digest, Digest::of(&src.contents(), BS));

    // A volume whose size is not a whole number of blocks and whose tail is a hole:
    // the short last block is data (zeroes), the whole blocks before it a hole.
    let v = Volume::create(&d.path().join("odd.img"), 2 * MIB + 4096, 4096).expect("odd");
    fill(&v, 0, 4096, Fill::Random(5)).expect("fill");
    let r = write_segment(&mut drive, &v, 0, v.size(), &CopyControl::new()).expect("write odd");
    let f = drive.files()[1].clone();
    assert_eq!((f.bytes, f.data_bytes(), f.hole_blocks()), (v.size(), u64::from(BS) + 4096, 31));
    let mut sink = VecSink::default();
    let req = ReadRequest { file: 1, expected_len: Some(v.size()), expected_digest: Some(r.digest), ..ReadRequest::default() };
    read_segment(&mut drive, &req, &mut sink, &CopyControl::new()).expect("read odd");
    let mut want = vec![0u8; v.size() as usize];
    v.read_at(0, &mut want).expect("read");
    assert_eq!(sink.0, want);
}

/// The fixture's contents: 40,000 bytes of `Fill::Random(42)` with 16 KiB zeroed at
/// 8 KiB, written in 4 KiB blocks by the version-1 code (commit "tape: a version-1
/// cartridge written by the current code").
fn fixture_contents() -> Vec<u8> {
    let m = MemDevice::new("src", 40_000);
    fill(&m, 0, 40_000, Fill::Random(42)).expect("fill");
    m.write_zeroes(8192, 16384, false).expect("zero");
    m.contents()
}

fn fixture_copy(dir: &Path) -> std::path::PathBuf {
    let to = dir.join("OLDV01.tape");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-segment.tape"), &to).expect("copy fixture");
    to
}

#[test]
fn a_version_1_cartridge_restores_and_is_appended_to_without_holes() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = fixture_copy(d.path());
    let mut drive = Drive::open(&path, Access::ReadWrite).expect("load v1");
    assert_eq!((drive.label().version, drive.label().block_size, drive.files().len()), (1, 4096, 2));
    let digest = Digest::from_hex("466ae20d64545c1a7e6e984797a501ba").expect("hex");
    let req = ReadRequest { file: 0, expected_len: Some(40_000), expected_digest: Some(digest), ..ReadRequest::default() };
    let mut sink = VecSink::default();
    read_segment(&mut drive, &req, &mut sink, &CopyControl::new()).expect("restore v1");
    assert_eq!(sink.0, fixture_contents());

    // Appending a thin volume to it: version 1 has no hole records, so the holes go
    // as zeroes and the cartridge stays readable by version-1 code.
    let n = 256 << 10;
    let v = Volume::create(&d.path().join("v.img"), n, 4096).expect("v");
    fill(&v, 4096, 4096, Fill::Random(6)).expect("fill");
    drive.space_to_eod().expect("eod");
    let r = write_segment(&mut drive, &v, 0, n, &CopyControl::new()).expect("append");
    assert_eq!(r.ended_by, EndedBy::Complete);
    write_file(&mut drive, b"rows", Content::Catalog).expect("catalog");
    drop(drive);
    let mut drive = Drive::open(&path, Access::ReadOnly).expect("reload");
    assert_eq!(drive.label().version, 1);
    let f = drive.files()[2].clone();
    assert_eq!((f.bytes, f.data_bytes(), f.hole_blocks()), (n, n, 0));
    let dst = Volume::create(&d.path().join("dst.img"), n, 4096).expect("dst");
    let req = ReadRequest { file: 2, expected_len: Some(n), expected_digest: Some(r.digest), ..ReadRequest::default() };
    read_segment(&mut drive, &req, &mut DeviceSink::new(&dst, 0, true), &CopyControl::new()).expect("restore");
    assert_eq!(v.checksum(0, n).expect("a"), dst.checksum(0, n).expect("b"));
}

/// Rewrites the label's version field (and the label's CRC).
fn set_version(path: &Path, version: u32) {
    let mut b = std::fs::read(path).expect("read");
    b[8..12].copy_from_slice(&version.to_le_bytes());
    let crc = crc32c::crc32c(&b[0..508]);
    b[508..512].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, b).expect("write");
}

#[test]
fn hole_records_are_refused_where_they_cannot_be_and_damage_is_contained() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = thin_volume(d.path());
    let tape = d.path().join("HOLE01.tape");
    let mut drive = format(&tape, "HOLE01", 64 * MIB);
    let r = write_segment(&mut drive, &src, 0, THIN, &CopyControl::new()).expect("seg");
    write_file(&mut drive, b"catalog", Content::Catalog).expect("catalog");
    drop(drive);

    // The same records under a version-1 label: a hole is not a version-1 record, so
    // the segment is damage, with a filemark after it, and appends are refused.
    let old = d.path().join("HOLE02.tape");
    std::fs::copy(&tape, &old).expect("copy");
    set_version(&old, 1);
    let mut drive = Drive::open(&old, Access::ReadWrite).expect("load");
    assert!(drive.files().is_empty());
    assert!(drive.recovery().damage.is_some());
    let e = write_file(&mut drive, b"x", Content::Raw).expect_err("append over damage");
    assert_eq!(e.code(), "E_CORRUPT");
    drop(drive);

    // Flipping any byte of the first hole record's header (right after the 4 head
    // blocks): the load keeps what is before it and refuses to append over the rest.
    let hole_at = 512 + 4 * (32 + u64::from(BS));
    for i in 0..32u64 {
        let p = d.path().join(format!("flip{i}.tape"));
        std::fs::copy(&tape, &p).expect("copy");
        let mut b = std::fs::read(&p).expect("read");
        b[(hole_at + i) as usize] ^= 0x40;
        std::fs::write(&p, &b).expect("write");
        let mut drive = Drive::open(&p, Access::ReadWrite).expect("load flipped");
        assert!(drive.files().is_empty(), "byte {i}");
        assert!(drive.recovery().damage.is_some(), "byte {i}");
        let req = ReadRequest { file: 0, expected_digest: Some(r.digest), ..ReadRequest::default() };
        assert!(read_segment(&mut drive, &req, &mut NullSink, &CopyControl::new()).is_err());
    }
}

#[test]
fn seeded_mutations_of_a_thin_cartridge_never_panic_and_never_restore_wrong_bytes() {
    let d = tempfile::tempdir().expect("tempdir");
    let v = Volume::create(&d.path().join("v.img"), 8 * MIB, 4096).expect("v");
    fill(&v, 0, 128 << 10, Fill::Random(7)).expect("a");
    fill(&v, 3 * MIB + 100, 70_000, Fill::Random(8)).expect("b");
    let tape = d.path().join("MUT001.tape");
    let mut drive = format(&tape, "MUT001", 16 * MIB);
    let r = write_segment(&mut drive, &v, 0, 8 * MIB, &CopyControl::new()).expect("seg");
    write_file(&mut drive, b"catalog", Content::Catalog).expect("catalog");
    drop(drive);
    let mut want = vec![0u8; (8 * MIB) as usize];
    v.read_at(0, &mut want).expect("read");
    let clean = std::fs::read(&tape).expect("read tape");
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        let mut b = clean.clone();
        for _ in 0..1 + next() % 4 {
            let at = 512 + (next() % (b.len() as u64 - 512)) as usize;
            b[at] ^= 1 << (next() % 8);
        }
        let p = d.path().join("m.tape");
        std::fs::write(&p, &b).expect("write");
        let Ok(mut drive) = Drive::open(&p, Access::ReadOnly) else { continue };
        if drive.files().is_empty() {
            continue;
        }
        let req = ReadRequest { file: 0, expected_len: Some(8 * MIB), expected_digest: Some(r.digest), ..ReadRequest::default() };
        let mut sink = VecSink::default();
        match read_segment(&mut drive, &req, &mut sink, &CopyControl::new()) {
            Ok(_) => assert!(sink.0 == want, "round {round}: a mutated cartridge restored other bytes"),
            Err(e) => assert_eq!(e.code(), "E_CORRUPT", "round {round}: {e}"),
        }
    }
}

#[test]
fn holes_past_the_end_of_a_data_file_cut_short_fail_the_segment() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = thin_volume(d.path());
    // Another program cuts the data file inside the first hole: what lies past the cut
    // is not a hole of the volume, and must not be recorded as one.
    std::fs::OpenOptions::new().write(true).open(d.path().join("thin.img")).expect("open").set_len(MIB).expect("truncate");
    let mut drive = format(&d.path().join("CUT001.tape"), "CUT001", 64 * MIB);
    let e = write_segment(&mut drive, &src, 0, THIN, &CopyControl::new()).expect_err("truncated source");
    assert_eq!(e.code(), "E_CORRUPT", "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
    assert!(drive.files().is_empty(), "the partial segment is abandoned");
}
