//! Segments: volume to cartridge and back, spanning cartridges at early warning,
//! partial restores, a full disk, a failed sync, a failing source, cancellation.

use plexus_tape::{
    read_segment, write_file, write_segment, Content, CopyControl, DeviceSink, Digest, Drive, EndedBy, FaultyMedium, FileMedium, FileSink,
    FormatOptions, MediumFault, NullSink, ReadRequest, VecSink,
};
use plexus_volume::{fill, Access, BlockDevice, Fault, FaultyDevice, Fill, MemDevice, Volume};
use std::fs::OpenOptions;
use std::path::Path;

const BS: u32 = 64 << 10;

fn format(path: &Path, barcode: &str, capacity: u64) -> Drive {
    let o = FormatOptions { barcode: barcode.into(), capacity, block_size: BS, early_warning: None };
    Drive::format(path, &o).expect("format")
}

#[test]
fn a_segment_from_a_volume_reads_back_byte_identical() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = Volume::create(&d.path().join("src.img"), 8 << 20, 4096).expect("src");
    fill(&src, 0, 8 << 20, Fill::Random(3)).expect("fill");
    let mut drive = format(&d.path().join("A00001.tape"), "A00001", 64 << 20);
    let ctl = CopyControl::new();
    // An odd offset and length: the last block is short.
    let (off, len) = (12_345u64, (5 << 20) + 777);
    let r = write_segment(&mut drive, &src, off, len, &ctl).expect("write");
    assert_eq!((r.file, r.bytes, r.ended_by, r.early_warning), (0, len, EndedBy::Complete, false));
    assert_eq!(r.blocks, len.div_ceil(u64::from(BS)));
    assert_eq!(ctl.progress(), (len, len));
    let mut want = vec![0u8; len as usize];
    src.read_at(off, &mut want).expect("read");
    assert_eq!(r.digest, Digest::of(&want, BS));
    assert_eq!(r.crc, drive.files()[0].crc);
    drop(drive);

    let mut drive = Drive::open(&d.path().join("A00001.tape"), Access::ReadOnly).expect("load");
    assert_eq!(drive.files()[0].content, Content::Segment);
    let dst = Volume::create(&d.path().join("dst.img"), 8 << 20, 4096).expect("dst");
    let req = ReadRequest { file: 0, expected_len: Some(len), expected_digest: Some(r.digest), range: None, first_block: None };
    let back = read_segment(&mut drive, &req, &mut DeviceSink::new(&dst, off, true), &CopyControl::new()).expect("read");
    assert_eq!((back.bytes, back.blocks, back.digest), (len, r.blocks, Some(r.digest)));
    assert_eq!(src.checksum(off, len).expect("a"), dst.checksum(off, len).expect("b"));

    // The catalog's expectations are checked.
    let wrong = ReadRequest { expected_digest: Some(Digest(r.digest.0 ^ 1)), ..req.clone() };
    let e = read_segment(&mut drive, &wrong, &mut NullSink, &CopyControl::new()).expect_err("digest");
    assert!(e.code() == "E_CORRUPT" && e.to_string().contains("digest"), "{e}");
    let short = ReadRequest { expected_len: Some(len - 1), ..req };
    assert_eq!(read_segment(&mut drive, &short, &mut NullSink, &CopyControl::new()).expect_err("len").code(), "E_CORRUPT");
}

#[test]
fn a_byte_range_of_a_segment_restores_alone_to_a_file() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = MemDevice::new("src", 1 << 20);
    fill(&src, 0, 1 << 20, Fill::Random(9)).expect("fill");
    let mut drive = format(&d.path().join("t.tape"), "RANGE1", 16 << 20);
    write_segment(&mut drive, &src, 0, 1 << 20, &CopyControl::new()).expect("write");
    let (start, len) = (100_000u64, 300_000u64);
    let out = d.path().join("out.bin");
    let req = ReadRequest { file: 0, range: Some((start, len)), ..ReadRequest::default() };
    let r = read_segment(&mut drive, &req, &mut FileSink::open(&out, 0).expect("sink"), &CopyControl::new()).expect("read");
    assert_eq!((r.bytes, r.digest), (len, None));
    assert_eq!(r.blocks, 6, "only the blocks holding the range are read");
    let got = std::fs::read(&out).expect("read out");
    assert_eq!(got, src.contents()[start as usize..(start + len) as usize]);
    let past = ReadRequest { file: 0, range: Some((1 << 20, 1)), ..ReadRequest::default() };
    assert_eq!(read_segment(&mut drive, &past, &mut NullSink, &CopyControl::new()).expect_err("past").code(), "E_RANGE");
}

#[test]
fn a_job_spans_cartridges_at_early_warning_with_a_catalog_on_each() {
    let d = tempfile::tempdir().expect("tempdir");
    let total = 6u64 << 20;
    let src = MemDevice::new("vol", total as usize);
    fill(&src, 0, total, Fill::Random(5)).expect("fill");
    let mut at = 0u64;
    let mut pieces = Vec::new();
    for n in 0.. {
        assert!(n < 10, "too many cartridges");
        let barcode = format!("SPAN{n:02}");
        let mut drive = format(&d.path().join(format!("{barcode}.tape")), &barcode, 2 << 20);
        let r = write_segment(&mut drive, &src, at, total - at, &CopyControl::new()).expect("segment");
        assert!(r.bytes > 0);
        let rows = format!("{barcode} {at} {} {}", r.bytes, r.digest.to_hex());
        write_file(&mut drive, rows.as_bytes(), Content::Catalog).expect("catalog fits in the zone");
        pieces.push((barcode, r.file, at, r.bytes, r.digest));
        at += r.bytes;
        if r.ended_by == EndedBy::Complete {
            break;
        }
        assert!(r.early_warning);
    }
    assert!(pieces.len() >= 3, "{} cartridges", pieces.len());
    let dst = MemDevice::new("restored", total as usize);
    for (barcode, file, offset, bytes, digest) in &pieces {
        let mut drive = Drive::open(&d.path().join(format!("{barcode}.tape")), Access::ReadOnly).expect("load");
        assert_eq!(drive.files()[1].content, Content::Catalog);
        let req = ReadRequest { file: *file, expected_len: Some(*bytes), expected_digest: Some(*digest), range: None, first_block: None };
        read_segment(&mut drive, &req, &mut DeviceSink::new(&dst, *offset, false), &CopyControl::new()).expect("read");
    }
    assert!(dst.contents() == src.contents());
}

#[test]
fn a_full_disk_fails_e_nospc_and_leaves_the_cartridge_as_it_was() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("t.tape");
    let src = MemDevice::new("src", 4 << 20);
    fill(&src, 0, 4 << 20, Fill::Random(1)).expect("fill");
    let mut drive = format(&path, "FULL01", 64 << 20);
    let first = write_segment(&mut drive, &src, 0, 1 << 20, &CopyControl::new()).expect("first");
    drop(drive);

    let file = OpenOptions::new().read(true).write(true).open(&path).expect("open");
    let medium = FaultyMedium::new(FileMedium::new(file), MediumFault::WriteErrorAfter { after: 2 << 20, errno: libc::ENOSPC });
    let mut drive = Drive::with_medium(Box::new(medium), &path, Access::ReadWrite).expect("load");
    drive.space_to_eod().expect("eod");
    let e = write_segment(&mut drive, &src, 0, 4 << 20, &CopyControl::new()).expect_err("disk full");
    assert_eq!(e.code(), "E_NOSPC", "{e}");
    assert!(e.to_string().contains("FULL01"));
    assert_eq!(drive.files().len(), 1);
    drop(drive);

    let mut drive = Drive::open(&path, Access::ReadWrite).expect("reload");
    assert_eq!(drive.files().len(), 1);
    // The medium was cut back to the last filemark (the injected fault also refused
    // the EOD rewrite, which loading tolerates).
    assert_eq!(drive.recovery().discarded_bytes, 0, "{:?}", drive.recovery());
    let req = ReadRequest { file: 0, expected_digest: Some(first.digest), ..ReadRequest::default() };
    read_segment(&mut drive, &req, &mut NullSink, &CopyControl::new()).expect("first segment intact");
    drive.space_to_eod().expect("eod");
    write_segment(&mut drive, &src, 0, 4 << 20, &CopyControl::new()).expect("reusable");
}

#[test]
fn a_failed_sync_poisons_the_drive() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("t.tape");
    drop(format(&path, "SYNC01", 16 << 20));
    let file = OpenOptions::new().read(true).write(true).open(&path).expect("open");
    let medium = FaultyMedium::new(FileMedium::new(file), MediumFault::SyncError);
    let mut drive = Drive::with_medium(Box::new(medium), &path, Access::ReadWrite).expect("load");
    let src = MemDevice::new("src", 1 << 20);
    assert_eq!(write_segment(&mut drive, &src, 0, 1 << 20, &CopyControl::new()).expect_err("sync").code(), "E_IO");
    let e = write_file(&mut drive, b"x", Content::Raw).expect_err("poisoned");
    assert!(e.to_string().contains("reload"), "{e}");
}

#[test]
fn a_failing_source_or_a_cancel_abandons_the_segment() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("t.tape");
    let mut drive = format(&path, "SRC001", 64 << 20);
    let src = FaultyDevice::new(MemDevice::new("flaky", 4 << 20), Fault::FailReadsAfter(1 << 20));
    let e = write_segment(&mut drive, &src, 0, 4 << 20, &CopyControl::new()).expect_err("source");
    assert!(e.to_string().contains("flaky"), "{e}");
    assert_eq!(drive.files().len(), 0);
    assert_eq!(drive.space().used, plexus_tape::LABEL_LEN);

    let good = MemDevice::new("good", 4 << 20);
    let ctl = CopyControl::new();
    ctl.cancel();
    assert_eq!(write_segment(&mut drive, &good, 0, 4 << 20, &ctl).expect_err("cancelled").code(), "E_CANCELLED");
    assert_eq!(drive.files().len(), 0);
    let r = write_segment(&mut drive, &good, 0, 4 << 20, &CopyControl::new()).expect("then it works");
    assert_eq!(r.file, 0);
    let mut sink = VecSink::default();
    let ctl = CopyControl::new();
    ctl.cancel();
    let e = read_segment(&mut drive, &ReadRequest::default(), &mut sink, &ctl).expect_err("cancelled read");
    assert_eq!(e.code(), "E_CANCELLED");
}
