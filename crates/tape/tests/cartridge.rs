//! Cartridges: format and load, files with filemarks and EOD, positions, early warning,
//! end of medium, corrupt blocks, torn tails left by a killed writer.

use plexus_tape::{read_file, write_file, Content, Drive, FormatOptions, Position, HEADER_LEN, LABEL_LEN};
use plexus_volume::Access;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

const BS: u32 = 4096;

fn opts(barcode: &str, capacity: u64) -> FormatOptions {
    FormatOptions { barcode: barcode.into(), capacity, block_size: BS, early_warning: None }
}

fn block(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn pos(file: u32, block: u64) -> Position {
    Position { file, block }
}

#[test]
fn files_round_trip_with_filemarks_and_end_of_data() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("T00001.tape");
    let mut drive = Drive::format(&path, &opts("T00001", 4 << 20)).expect("format");
    assert_eq!(drive.position(), pos(0, 0));
    for b in 0..3u8 {
        drive.write_block(&block(b, BS as usize)).expect("block");
    }
    drive.write_block(&block(9, 100)).expect("short last block");
    assert_eq!(drive.write_filemark().expect("fm"), pos(1, 0));
    drive.write_filemark().expect("an empty file");
    let catalog = write_file(&mut drive, b"catalog rows", Content::Catalog).expect("catalog");
    assert_eq!((catalog.file, catalog.blocks, catalog.bytes), (2, 1, 12));
    drop(drive);

    let mut drive = Drive::open(&path, Access::ReadOnly).expect("open");
    assert!(drive.recovery().eod_found);
    assert_eq!(drive.recovery().discarded_bytes, 0);
    let files: Vec<_> = drive.files().iter().map(|f| (f.file, f.content, f.blocks, f.bytes)).collect();
    assert_eq!(files, vec![(0, Content::Raw, 4, 3 * 4096 + 100), (1, Content::Raw, 0, 0), (2, Content::Catalog, 1, 12)]);
    for b in 0..3u8 {
        assert_eq!(drive.read_block().expect("read"), Some(block(b, BS as usize)));
    }
    assert_eq!(drive.read_block().expect("read"), Some(block(9, 100)));
    assert_eq!(drive.read_block().expect("filemark"), None);
    assert_eq!(drive.position(), pos(1, 0));
    assert_eq!(drive.read_block().expect("empty file's filemark"), None);
    assert_eq!(drive.read_block().expect("catalog"), Some(b"catalog rows".to_vec()));
    assert_eq!(drive.read_block().expect("filemark"), None);
    assert_eq!(drive.read_block().expect_err("end of data").code(), "E_EOD");
    assert_eq!(read_file(&mut drive, 2).expect("read file"), b"catalog rows");
    assert_eq!(drive.write_block(b"x").expect_err("read-only").code(), "E_READONLY");
}

#[test]
fn locate_reads_any_block_and_refuses_positions_off_the_medium() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut drive = Drive::format(&d.path().join("t.tape"), &opts("LOC001", 4 << 20)).expect("format");
    for f in 0..3u8 {
        for b in 0..5u8 {
            drive.write_block(&block(f * 10 + b, BS as usize)).expect("block");
        }
        drive.write_filemark().expect("fm");
    }
    drive.locate(pos(1, 3)).expect("locate");
    assert_eq!(drive.read_block().expect("read"), Some(block(13, BS as usize)));
    assert_eq!(drive.position(), pos(1, 4));
    drive.locate(pos(2, 5)).expect("at the filemark");
    assert_eq!(drive.read_block().expect("filemark"), None);
    drive.rewind().expect("rewind");
    assert_eq!(drive.read_block().expect("read"), Some(block(0, BS as usize)));
    assert_eq!(drive.space_to_eod().expect("eod"), pos(3, 0));
    assert_eq!(drive.locate(pos(1, 6)).expect_err("past the filemark").code(), "E_RANGE");
    assert_eq!(drive.locate(pos(4, 0)).expect_err("past EOD").code(), "E_RANGE");
    let msg = drive.locate(pos(9, 0)).expect_err("msg").to_string();
    assert!(msg.contains("LOC001"), "{msg}");
}

#[test]
fn writing_after_locate_truncates_everything_after_it() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("t.tape");
    let mut drive = Drive::format(&path, &opts("TRUNC1", 4 << 20)).expect("format");
    for f in 0..3u8 {
        write_file(&mut drive, &block(f, 3 * BS as usize), Content::Raw).expect("file");
    }
    drive.locate(pos(1, 2)).expect("locate");
    drive.write_block(&block(77, 10)).expect("overwrite block 2 of file 1");
    drive.write_filemark().expect("fm");
    let files: Vec<_> = drive.files().iter().map(|f| (f.blocks, f.bytes)).collect();
    assert_eq!(files, vec![(3, 3 * 4096), (3, 2 * 4096 + 10)]);
    drop(drive);
    let mut drive = Drive::open(&path, Access::ReadWrite).expect("reopen");
    assert_eq!(drive.files().len(), 2);
    let f1 = read_file(&mut drive, 1).expect("file 1");
    assert_eq!(&f1[..2 * BS as usize], &block(1, 3 * BS as usize)[..2 * BS as usize]);
    assert_eq!(&f1[2 * BS as usize..], &block(77, 10)[..]);
    // A second filemark at the start of file 1 cuts it and everything after.
    drive.locate(pos(1, 0)).expect("locate");
    drive.write_filemark().expect("empty file 1");
    assert_eq!(drive.files().len(), 2);
    assert_eq!(drive.files()[1].blocks, 0);
}

#[test]
fn early_warning_fires_before_the_end_and_leaves_room_for_a_catalog() {
    let d = tempfile::tempdir().expect("tempdir");
    let capacity = 1 << 20;
    let mut drive = Drive::format(&d.path().join("t.tape"), &opts("EW0001", capacity)).expect("format");
    let ew_at = drive.space().early_warning_at;
    assert!(drive.label().early_warning >= 4 * (u64::from(BS) + HEADER_LEN));
    let mut warned_at = None;
    for i in 0.. {
        let s = drive.write_block(&block(i as u8, BS as usize)).expect("block before the end");
        if s.early_warning {
            warned_at = Some(drive.space().used);
            break;
        }
    }
    let used = warned_at.expect("early warning fired");
    assert!(used > ew_at && used < capacity);
    // The zone still holds the segment's filemark, a catalog file of a full block,
    // its filemark and EOD.
    drive.write_filemark().expect("close the segment");
    let r = write_file(&mut drive, &block(1, BS as usize), Content::Catalog).expect("catalog in the zone");
    assert!(r.early_warning);
    assert!(drive.space().used + HEADER_LEN <= capacity);
}

#[test]
fn writing_past_the_capacity_fails_end_of_medium_and_keeps_the_cartridge() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("t.tape");
    let capacity = 1 << 20;
    let mut drive = Drive::format(&path, &opts("EOM001", capacity)).expect("format");
    let mut n = 0u64;
    let err = loop {
        match drive.write_block(&block(n as u8, BS as usize)) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), "E_EOM", "{err}");
    assert!(err.to_string().contains("EOM001"));
    drive.write_filemark().expect("a filemark always fits");
    drop(drive);
    assert!(std::fs::metadata(&path).expect("stat").len() <= capacity);
    let mut drive = Drive::open(&path, Access::ReadOnly).expect("reopen");
    assert_eq!(drive.files()[0].blocks, n);
    assert_eq!(read_file(&mut drive, 0).expect("read").len() as u64, n * u64::from(BS));
    drop(drive);
    let big = vec![1u8; 3 * BS as usize];
    let mut drive = Drive::open(&path, Access::ReadWrite).expect("rw");
    drive.space_to_eod().expect("eod");
    assert_eq!(write_file(&mut drive, &big, Content::Catalog).expect_err("no room").code(), "E_EOM");
    assert_eq!(drive.files().len(), 1, "the failed file was abandoned");
}

fn flip(path: &Path, offset: u64) {
    let f = OpenOptions::new().read(true).write(true).open(path).expect("open");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).expect("read");
    b[0] ^= 0x20;
    f.write_all_at(&b, offset).expect("write");
}

#[test]
fn a_flipped_payload_byte_fails_corrupt_naming_barcode_file_and_block() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("t.tape");
    let mut drive = Drive::format(&path, &opts("BAD042", 4 << 20)).expect("format");
    write_file(&mut drive, &block(0, 2 * BS as usize), Content::Raw).expect("file 0");
    write_file(&mut drive, &block(1, 3 * BS as usize), Content::Raw).expect("file 1");
    drop(drive);
    let file1 = LABEL_LEN + 2 * (HEADER_LEN + u64::from(BS)) + HEADER_LEN;
    flip(&path, file1 + 2 * (HEADER_LEN + u64::from(BS)) + HEADER_LEN + 100); // file 1, block 2
    let mut drive = Drive::open(&path, Access::ReadOnly).expect("headers are intact");
    let e = read_file(&mut drive, 1).expect_err("corrupt");
    assert_eq!(e.code(), "E_CORRUPT");
    let msg = e.to_string();
    assert!(msg.contains("BAD042") && msg.contains("file 1") && msg.contains("block 2"), "{msg}");
    assert_eq!(read_file(&mut drive, 0).expect("file 0 is fine").len(), 2 * BS as usize);
}

#[test]
fn a_torn_tail_is_discarded_on_load_and_the_cartridge_appended_to() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("t.tape");
    let mut drive = Drive::format(&path, &opts("TORN01", 4 << 20)).expect("format");
    write_file(&mut drive, &block(0, 2 * BS as usize), Content::Segment).expect("file 0");
    // A writer killed mid-file: blocks without a filemark, the last one torn.
    for b in 0..3u8 {
        drive.write_block(&block(b, BS as usize)).expect("block");
    }
    drop(drive); // no filemark
    let len = std::fs::metadata(&path).expect("stat").len();
    OpenOptions::new().write(true).open(&path).expect("open").set_len(len - 1000).expect("tear");

    let mut drive = Drive::open(&path, Access::ReadWrite).expect("load");
    assert_eq!(drive.files().len(), 1);
    assert!(!drive.recovery().eod_found);
    assert_eq!(drive.recovery().discarded_blocks, 2, "two whole blocks before the torn one");
    assert!(drive.recovery().discarded_bytes > 0);
    assert_eq!(drive.space_to_eod().expect("eod"), pos(1, 0));
    write_file(&mut drive, b"after the crash", Content::Catalog).expect("append");
    drop(drive);
    let mut drive = Drive::open(&path, Access::ReadOnly).expect("reload");
    assert!(drive.recovery().eod_found);
    assert_eq!(drive.recovery().discarded_bytes, 0, "the torn tail was overwritten");
    assert_eq!(read_file(&mut drive, 1).expect("read"), b"after the crash");
    assert_eq!(read_file(&mut drive, 0).expect("read").len(), 2 * BS as usize);
}

#[test]
fn a_damaged_header_mid_medium_is_stepped_over_or_blocks_appends() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("t.tape");
    let mut drive = Drive::format(&path, &opts("HDR001", 4 << 20)).expect("format");
    write_file(&mut drive, &block(0, 4 * BS as usize), Content::Raw).expect("file 0");
    write_file(&mut drive, &block(1, 100), Content::Raw).expect("file 1");
    write_file(&mut drive, &block(2, 100), Content::Raw).expect("file 2");
    drop(drive);
    // Header of file 0 block 1 (a full block): stepped over, the block reads corrupt.
    flip(&path, LABEL_LEN + HEADER_LEN + u64::from(BS) + 9);
    let mut drive = Drive::open(&path, Access::ReadWrite).expect("load");
    assert_eq!(drive.files().len(), 3);
    assert_eq!(drive.recovery().damaged_blocks, vec![(0, 1)]);
    let e = read_file(&mut drive, 0).expect_err("corrupt");
    assert!(e.to_string().contains("block 1"), "{e}");
    assert_eq!(read_file(&mut drive, 2).expect("later files still read"), block(2, 100));
    drop(drive);
    // Header of file 1's only (short) block: cannot be stepped over, but the filemarks
    // after it show recorded data, so the cartridge loads with appends refused.
    let file1 = LABEL_LEN + 4 * (HEADER_LEN + u64::from(BS)) + HEADER_LEN;
    flip(&path, file1 + 9);
    let mut drive = Drive::open(&path, Access::ReadWrite).expect("load");
    assert_eq!(drive.files().len(), 1);
    assert!(drive.recovery().damage.is_some());
    drive.space_to_eod().expect("eod");
    let e = write_file(&mut drive, b"x", Content::Raw).expect_err("append refused");
    assert_eq!(e.code(), "E_CORRUPT");
    assert!(e.to_string().contains("HDR001"));
}

#[test]
fn labels_are_checked_and_cartridges_load_in_one_drive_at_a_time() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("t.tape");
    assert_eq!(Drive::format(&path, &opts("bad code", 4 << 20)).err().map(|e| e.code()), Some("E_INVALID"));
    assert_eq!(Drive::format(&path, &opts("SMALL1", 8192)).err().map(|e| e.code()), Some("E_INVALID"));
    let drive = Drive::format(&path, &opts("LOCK01", 4 << 20)).expect("format");
    assert_eq!(Drive::format(&path, &opts("LOCK01", 4 << 20)).err().map(|e| e.code()), Some("E_EXISTS"));
    assert_eq!(Drive::open(&path, Access::ReadWrite).err().map(|e| e.code()), Some("E_BUSY"));
    drive.unload().expect("unload");
    let again = Drive::open(&path, Access::ReadOnly).expect("free again");
    assert_eq!(again.label().barcode, "LOCK01");
    assert_eq!(again.label().medium_id_hex().len(), 32);
    drop(again);
    flip(&path, 30);
    assert_eq!(Drive::open(&path, Access::ReadOnly).err().map(|e| e.code()), Some("E_CORRUPT"));
    std::fs::write(&path, b"short").expect("write");
    assert_eq!(Drive::open(&path, Access::ReadOnly).err().map(|e| e.code()), Some("E_CORRUPT"));
    assert_eq!(Drive::open(&d.path().join("none"), Access::ReadOnly).err().map(|e| e.code()), Some("E_NOENT"));
}
