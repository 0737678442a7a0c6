//! A segment written in two halves: the data (`write_segment_data`, left open) and
//! the close (`close_segment`: syncs, filemark, catalog file, EOD), as a backup does
//! when it closes one cartridge in the background while writing the next. A crash is
//! modelled at every sync, with the writes since it reaching the disk in any order.

use plexus_tape::{
    close_segment, read_file, read_segment, write_file, write_segment, write_segment_data, Content, CopyControl, Drive, EndedBy,
    FaultyMedium, FileMedium, FormatOptions, Medium, MediumFault, NullSink, ReadRequest, SegmentReport,
};
use plexus_volume::{fill, Access, Fill, MemDevice};
use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

const BS: u32 = 4096;

/// One change to the medium since the last sync.
#[derive(Clone, Debug)]
enum Op {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

fn apply(img: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write(at, b) => {
            let end = *at as usize + b.len();
            if img.len() < end {
                img.resize(end, 0);
            }
            if let Some(dst) = img.get_mut(*at as usize..end) {
                dst.copy_from_slice(b);
            }
        }
        Op::SetLen(n) => img.resize(*n as usize, 0),
    }
}

#[derive(Default)]
struct State {
    /// What a crash right now would certainly keep.
    durable: Vec<u8>,
    /// What reads see.
    current: Vec<u8>,
    /// Changes since the last sync, each of which may or may not survive a crash.
    unsynced: Vec<Op>,
    syncs: usize,
    /// At each sync: the durable image before it and the changes it made durable.
    intervals: Vec<(Vec<u8>, Vec<Op>)>,
}

/// An in-memory cartridge that knows what a crash would leave of it.
#[derive(Clone, Default)]
struct CrashMedium(Arc<Mutex<State>>);

impl CrashMedium {
    fn with_bytes(bytes: Vec<u8>) -> Self {
        let m = CrashMedium::default();
        m.state().durable = bytes.clone();
        m.state().current = bytes;
        m
    }
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn record(&self, op: Op) {
        let mut s = self.state();
        apply(&mut s.current, &op);
        s.unsynced.push(op);
    }
    /// Images a crash could leave after the last sync: every prefix of the changes
    /// since (in order), each change alone, and all but each one (any reordering that
    /// loses or keeps one record, e.g. a filemark without the data before it).
    fn crash_images(durable: &[u8], ops: &[Op]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let with = |keep: &dyn Fn(usize) -> bool| {
            let mut img = durable.to_vec();
            for (i, op) in ops.iter().enumerate() {
                if keep(i) {
                    apply(&mut img, op);
                }
            }
            img
        };
        for n in 0..=ops.len() {
            out.push(with(&|i| i < n));
        }
        for k in 0..ops.len() {
            out.push(with(&|i| i == k));
            out.push(with(&|i| i != k));
        }
        out
    }
}

impl Medium for CrashMedium {
    fn size(&self) -> io::Result<u64> {
        Ok(self.state().current.len() as u64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let s = self.state();
        let src = s.current.get(offset as usize..offset as usize + buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_at(&self, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
        // Each buffer is its own change: a header may land without its payload.
        let mut at = offset;
        for b in bufs {
            self.record(Op::Write(at, b.to_vec()));
            at += b.len() as u64;
        }
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.record(Op::SetLen(len));
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        let mut s = self.state();
        let ops = std::mem::take(&mut s.unsynced);
        let before = s.durable.clone();
        s.durable = s.current.clone();
        s.syncs += 1;
        s.intervals.push((before, ops));
        Ok(())
    }
}

fn format(path: &Path, barcode: &str, capacity: u64) -> Drive {
    let o = FormatOptions { barcode: barcode.into(), capacity, block_size: BS, early_warning: None };
    Drive::format(path, &o).expect("format")
}

fn source(len: u64, seed: u64) -> MemDevice {
    let src = MemDevice::new("vol", len as usize);
    fill(&src, 0, len, Fill::Random(seed)).expect("fill");
    src
}

#[test]
fn a_segment_written_then_closed_with_its_catalog_reads_back_like_write_segment() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = source(1 << 20, 1);
    let mut drive = format(&d.path().join("A.tape"), "SPLIT1", 16 << 20);
    let len = (200 << 10) + 123;
    let r = write_segment_data(&mut drive, &src, 4096, len, &CopyControl::new()).expect("data");
    assert_eq!((r.file, r.bytes, r.ended_by), (0, len, EndedBy::Complete));
    assert!(drive.files().is_empty(), "not closed yet");
    // Another file cannot start while the segment is open; the close can.
    assert_eq!(write_file(&mut drive, b"x", Content::Raw).expect_err("busy").code(), "E_BUSY");
    let c = close_segment(&mut drive, Some(b"catalog rows")).expect("close");
    assert_eq!((c.segment.file, c.segment.blocks, c.segment.bytes, c.segment.crc), (0, r.blocks, len, r.crc));
    let cat = c.catalog.expect("catalog file");
    assert_eq!((cat.file, cat.bytes), (1, 12));
    // Nothing is left open to close.
    assert_eq!(close_segment(&mut drive, None).expect_err("nothing open").code(), "E_INVALID");
    drop(drive);

    let mut drive = Drive::open(&d.path().join("A.tape"), Access::ReadWrite).expect("reload");
    assert!(drive.recovery().eod_found && drive.recovery().discarded_bytes == 0, "{:?}", drive.recovery());
    let kinds: Vec<_> = drive.files().iter().map(|f| f.content).collect();
    assert_eq!(kinds, [Content::Segment, Content::Catalog]);
    let req = ReadRequest { file: 0, expected_len: Some(len), expected_digest: Some(r.digest), range: None, first_block: None };
    read_segment(&mut drive, &req, &mut NullSink, &CopyControl::new()).expect("segment");
    assert_eq!(read_file(&mut drive, 1).expect("catalog"), b"catalog rows");
    // Without a catalog the close is a plain filemark.
    drive.space_to_eod().expect("eod");
    write_segment_data(&mut drive, &src, 0, 5000, &CopyControl::new()).expect("data");
    let c = close_segment(&mut drive, None).expect("close");
    assert_eq!((c.segment.file, c.catalog), (2, None));
    assert_eq!(drive.files().len(), 3);
}

#[test]
fn a_crash_before_the_close_leaves_the_cartridge_appendable_with_the_segment_discarded() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("B.tape");
    let src = source(1 << 20, 2);
    let mut drive = format(&path, "SPLIT2", 16 << 20);
    let first = write_segment(&mut drive, &src, 0, 64 << 10, &CopyControl::new()).expect("first");
    write_file(&mut drive, b"first", Content::Catalog).expect("catalog");
    let open = write_segment_data(&mut drive, &src, 64 << 10, 300 << 10, &CopyControl::new()).expect("data");
    // The process dies: the drive goes without an unload (which would close the file).
    drop(drive);

    let mut drive = Drive::open(&path, Access::ReadWrite).expect("reload");
    assert_eq!(drive.files().len(), 2, "only the closed files count");
    assert_eq!(drive.recovery().discarded_blocks, open.blocks);
    assert!(drive.recovery().damage.is_none());
    drive.space_to_eod().expect("eod");
    let again = write_segment_data(&mut drive, &src, 64 << 10, 300 << 10, &CopyControl::new()).expect("rewrite");
    assert_eq!(again.file, open.file, "the discarded segment's place is reused");
    close_segment(&mut drive, Some(b"second")).expect("close");
    drop(drive);

    let mut drive = Drive::open(&path, Access::ReadOnly).expect("reload");
    assert_eq!(drive.files().len(), 4);
    assert_eq!(drive.recovery().discarded_bytes, 0);
    for (file, digest) in [(0, first.digest), (2, again.digest)] {
        let req = ReadRequest { file, expected_digest: Some(digest), ..ReadRequest::default() };
        read_segment(&mut drive, &req, &mut NullSink, &CopyControl::new()).expect("segment");
    }
    assert_eq!(read_file(&mut drive, 3).expect("catalog"), b"second");
}

/// Loads a crash image and checks the protocol's promise: the first segment and its
/// catalog always survive; the second segment counts only whole and verified, its
/// catalog only after it; the cartridge takes appends. Returns the files loaded.
fn check_image(img: Vec<u8>, path: &Path, first: &SegmentReport, second: &SegmentReport, catalog: &[u8], src: &MemDevice) -> usize {
    let m = CrashMedium::with_bytes(img);
    let mut drive = Drive::with_medium(Box::new(m), path, Access::ReadWrite).expect("a crash image loads");
    assert!(drive.recovery().damage.is_none(), "{:?}", drive.recovery());
    let files = drive.files().to_vec();
    assert!((2..=4).contains(&files.len()), "{files:?}");
    for (i, seg) in [(0usize, first), (2, second)] {
        if files.len() > i {
            let req = ReadRequest {
                file: i as u32,
                expected_len: Some(seg.bytes),
                expected_digest: Some(seg.digest),
                range: None,
                first_block: None,
            };
            read_segment(&mut drive, &req, &mut NullSink, &CopyControl::new()).expect("a closed segment reads back whole");
        }
    }
    assert_eq!(read_file(&mut drive, 1).expect("first catalog"), b"first");
    if files.len() == 4 {
        assert_eq!(read_file(&mut drive, 3).expect("second catalog"), catalog);
    }
    drive.space_to_eod().expect("eod");
    let r = write_segment(&mut drive, src, 0, 10_000, &CopyControl::new()).expect("appendable after the crash");
    assert_eq!(r.file as usize, files.len());
    files.len()
}

#[test]
fn a_crash_at_any_point_of_the_split_write_keeps_every_filemark_over_synced_data() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("C.tape");
    let src = source(1 << 20, 3);
    let mut drive = format(&path, "SPLIT3", 16 << 20);
    let first = write_segment(&mut drive, &src, 0, 20_000, &CopyControl::new()).expect("first");
    write_file(&mut drive, b"first", Content::Catalog).expect("catalog");
    drop(drive);

    let m = CrashMedium::with_bytes(std::fs::read(&path).expect("read cartridge"));
    let mut drive = Drive::with_medium(Box::new(m.clone()), &path, Access::ReadWrite).expect("load");
    drive.space_to_eod().expect("eod");
    let second = write_segment_data(&mut drive, &src, 20_000, 10 * u64::from(BS) + 77, &CopyControl::new()).expect("data");
    assert_eq!(m.state().syncs, 0, "the data half does not sync");
    // A crash before the close: whatever part of the data reached the disk, the
    // segment is discarded.
    let (durable, ops) = {
        let s = m.state();
        (s.durable.clone(), s.unsynced.clone())
    };
    for img in CrashMedium::crash_images(&durable, &ops) {
        assert_eq!(check_image(img, &path, &first, &second, b"", &src), 2);
    }

    let catalog = vec![0xc5u8; BS as usize + 100]; // two blocks
    close_segment(&mut drive, Some(&catalog)).expect("close");
    let (intervals, last) = {
        let s = m.state();
        (s.intervals.clone(), s.current.clone())
    };
    assert_eq!(intervals.len(), 3, "sync, filemark + catalog data, sync, filemark + EOD, sync");
    let mut seen = Vec::new();
    for (durable, ops) in &intervals {
        for img in CrashMedium::crash_images(durable, ops) {
            seen.push(check_image(img, &path, &first, &second, &catalog, &src));
        }
    }
    // Crashes during the close can land before, between or after its filemarks.
    for n in [2, 3, 4] {
        assert!(seen.contains(&n), "no crash image with {n} files: {seen:?}");
    }
    assert_eq!(check_image(last, &path, &first, &second, &catalog, &src), 4, "closed means closed");
}

#[test]
fn a_failed_sync_during_the_close_fails_it_and_poisons_the_drive() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("D.tape");
    drop(format(&path, "SPLIT4", 16 << 20));
    let file = OpenOptions::new().read(true).write(true).open(&path).expect("open");
    let medium = FaultyMedium::new(FileMedium::new(file), MediumFault::SyncError);
    let mut drive = Drive::with_medium(Box::new(medium), &path, Access::ReadWrite).expect("load");
    let src = source(1 << 20, 4);
    write_segment_data(&mut drive, &src, 0, 1 << 20, &CopyControl::new()).expect("data is not synced");
    let e = close_segment(&mut drive, Some(b"rows")).expect_err("sync");
    assert_eq!(e.code(), "E_IO", "{e}");
    assert!(drive.files().is_empty());
    assert!(write_file(&mut drive, b"x", Content::Raw).expect_err("poisoned").to_string().contains("reload"));
    drop(drive);
    let drive = Drive::open(&path, Access::ReadOnly).expect("reload");
    assert!(drive.files().is_empty(), "the segment never got its filemark");
}
