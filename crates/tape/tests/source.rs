//! A job's copy on cartridges read as a block device (the source of `backup copy`):
//! copied segment by segment onto another cartridge it reads back byte for byte, holes
//! kept as holes, every block and segment digest verified, steps back served.

use plexus_tape::{
    append_segment_data, close_segment, read_segment, write_segment, CopyControl, Digest, Drive, FormatOptions, ReadRequest, SourceSegment,
    TapeSource, VecSink,
};
use plexus_volume::{fill, Access, BlockDevice, Fill, Volume};
use std::path::Path;

const MIB: u64 = 1 << 20;

fn format(path: &Path, barcode: &str, capacity: u64, block_size: u32) -> Drive {
    let o = FormatOptions { barcode: barcode.into(), capacity, block_size, early_warning: None };
    Drive::format(path, &o).expect("format")
}

/// A 12 MiB volume: data, a 4 MiB hole, data with an unaligned end; backed up as two
/// segments on two cartridges of 64 KiB blocks, split at 6 MiB (inside the hole).
struct Backup {
    src: Volume,
    segments: Vec<SourceSegment>,
}

fn backup(dir: &Path) -> Backup {
    let size = 12 * MIB;
    let src = Volume::create(&dir.join("src.img"), size, 4096).expect("create");
    fill(&src, 0, 4 * MIB, Fill::Random(1)).expect("head");
    fill(&src, 8 * MIB, 4 * MIB - 4096 + 100, Fill::Random(2)).expect("tail");
    let mut segments = Vec::new();
    for (i, (from, len)) in [(0, 6 * MIB), (6 * MIB, 6 * MIB)].into_iter().enumerate() {
        let path = dir.join(format!("SRC00{i}.tape"));
        let mut d = format(&path, &format!("SRC00{i}"), 64 * MIB, 64 << 10);
        let r = write_segment(&mut d, &src, from, len, &CopyControl::new()).expect("write");
        segments.push(SourceSegment { path, file: r.file, first_block: 0, source_offset: from, length: len, digest: r.digest });
    }
    Backup { src, segments }
}

#[test]
fn a_copy_read_from_cartridges_is_written_again_byte_for_byte_with_its_holes() {
    let d = tempfile::tempdir().expect("tempdir");
    let b = backup(d.path());
    let size = b.src.size();
    let source = TapeSource::new("job 1 copy 0", size, b.segments.clone()).expect("source");
    // The holes come from the hole records: the 4 MiB gap, in both segments.
    let runs = source.allocation(0, size).expect("allocation");
    assert_eq!(runs, vec![(4 * MIB, false), (4 * MIB, true), (4 * MIB, false)]);

    // The copy on a cartridge of another block size, in two chunks (two commands).
    let path = d.path().join("DST001.tape");
    let mut dst = format(&path, "DST001", 64 * MIB, 256 << 10);
    let first = append_segment_data(&mut dst, &source, 0, 6 * MIB, &CopyControl::new()).expect("chunk 1");
    let second = append_segment_data(&mut dst, &source, 6 * MIB, 6 * MIB, &CopyControl::new()).expect("chunk 2");
    close_segment(&mut dst, None).expect("close");
    assert_eq!(dst.files()[0].bytes, size);
    assert!(dst.files()[0].hole_blocks() * (256 << 10) >= 3 * MIB, "the hole stays a hole");
    drop(dst);

    let mut dst = Drive::open(&path, Access::ReadOnly).expect("load");
    let mut got = VecSink::default();
    let req = ReadRequest { file: 0, expected_len: Some(size), ..ReadRequest::default() };
    read_segment(&mut dst, &req, &mut got, &CopyControl::new()).expect("read back");
    let mut want = vec![0u8; size as usize];
    b.src.read_at(0, &mut want).expect("source");
    assert!(got.0 == want, "the copy differs from the source");
    assert_eq!(first.bytes + second.bytes, size);
}

#[test]
fn a_step_back_is_served_and_a_wrong_digest_is_corrupt() {
    let d = tempfile::tempdir().expect("tempdir");
    let b = backup(d.path());
    let size = b.src.size();
    let source = TapeSource::new("job 1 copy 0", size, b.segments.clone()).expect("source");
    let mut want = vec![0u8; MIB as usize];
    b.src.read_at(3 * MIB, &mut want).expect("source");
    let mut got = vec![0u8; MIB as usize];
    source.read_at(3 * MIB, &mut got).expect("forward");
    assert!(got == want);
    // Back a little (kept), then back to the start of the segment (read again).
    let mut small = vec![0u8; 4096];
    source.read_at(3 * MIB + 8192, &mut small).expect("kept");
    assert!(small[..] == want[8192..8192 + 4096]);
    source.read_at(0, &mut got).expect("restart");
    b.src.read_at(0, &mut want).expect("source");
    assert!(got == want);
    // Across the two cartridges, inside the hole: zeroes.
    source.read_at(6 * MIB - 512, &mut small).expect("across");
    assert!(small.iter().all(|&x| x == 0));

    let mut bad = b.segments.clone();
    bad[0].digest = Digest(bad[0].digest.0 ^ 1);
    let source = TapeSource::new("job 1 copy 0", size, bad).expect("source");
    let mut all = vec![0u8; 6 * MIB as usize];
    let e = source.read_at(0, &mut all).expect_err("digest");
    assert!(e.code() == "E_CORRUPT" && e.to_string().contains("digest"), "{e}");

    // Segments that do not cover the source are refused.
    let gap = vec![b.segments[1].clone()];
    assert_eq!(TapeSource::new("x", size, gap).err().map(|e| e.code()), Some("E_INVALID"));
    // A missing cartridge is E_NOENT at the first read.
    let mut gone = b.segments.clone();
    gone[1].path = d.path().join("GONE.tape");
    let source = TapeSource::new("x", size, gone).expect("source");
    assert_eq!(source.read_at(7 * MIB, &mut small).expect_err("missing").code(), "E_NOENT");
}
