//! The copy device: commands append chunks to one segment file; an error or a timeout
//! stops it with the failed command first among the remaining ones; early warning
//! splits a command; a second device finishes the job and every chunk reads back.

use plexus_tape::{close_segment, read_segment, CopyControl, Drive, FormatOptions, ReadRequest, SourceFault, VecSink};
use plexus_volume::{fill, BlockDevice, Fill, MemDevice};
use plexus_xcopy::{execute, execute_detached, plan_chunks, Completed, DeviceOptions, SegmentCommand, Stop};
use std::time::{Duration, Instant};

const BS: u32 = 64 * 1024;
const CHUNK: u64 = 256 * 1024;

fn source(size: usize) -> MemDevice {
    let m = MemDevice::new("src", size);
    fill(&m, 0, size as u64, Fill::Random(11)).expect("fill");
    m
}

fn blank(dir: &std::path::Path, name: &str, capacity: u64) -> Drive {
    let mut o = FormatOptions::new(name, capacity);
    o.block_size = BS;
    o.early_warning = Some(4 * u64::from(BS));
    Drive::format(&dir.join(format!("{name}.tape")), &o).expect("format")
}

/// Reads every completed chunk back and compares it with the source.
fn check_chunks(drive: &mut Drive, src: &MemDevice, chunks: &[Completed]) {
    for c in chunks {
        let req = ReadRequest {
            file: c.file,
            first_block: Some(c.first_block),
            expected_len: Some(c.command.length),
            expected_digest: Some(c.digest),
            range: None,
        };
        let mut sink = VecSink::default();
        let r = read_segment(drive, &req, &mut sink, &CopyControl::new()).expect("read chunk");
        assert_eq!(r.digest, Some(c.digest));
        let mut want = vec![0u8; c.command.length as usize];
        src.read_at(c.command.source_offset, &mut want).expect("source");
        assert!(sink.0 == want, "chunk {} differs from the source", c.command.id);
    }
}

/// Runs `commands` to the end on a fresh cartridge (another stream's device), closes it
/// and checks every chunk against the source; returns the chunks.
fn finish_on(dir: &std::path::Path, barcode: &str, src: &MemDevice, commands: &[SegmentCommand]) -> Vec<Completed> {
    let mut drive = blank(dir, barcode, 64 << 20);
    let r = execute(&mut drive, src, commands, &DeviceOptions::default(), &CopyControl::new());
    assert!(r.stop.is_none(), "{:?}", r.stop);
    close_segment(&mut drive, None).expect("close");
    check_chunks(&mut drive, src, &r.completed);
    r.completed
}

#[test]
fn all_commands_complete_as_chunks_of_one_segment_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let size = 2 * 1024 * 1024 + 5000;
    let src = source(size);
    let mut drive = blank(dir.path(), "A00001L9", 64 << 20);
    let cmds = plan_chunks(0, size as u64, CHUNK).expect("plan");
    let ctl = CopyControl::new();
    let r = execute(&mut drive, &src, &cmds, &DeviceOptions::default(), &ctl);
    assert!(r.stop.is_none(), "{:?}", r.stop);
    assert!(r.remaining.is_empty());
    assert!(r.open);
    assert_eq!(r.completed.len(), cmds.len());
    assert_eq!(ctl.progress(), (size as u64, size as u64));
    // Chunks are consecutive runs of blocks of one file.
    let per = CHUNK / u64::from(BS);
    for (i, c) in r.completed.iter().enumerate() {
        assert_eq!((c.file, c.first_block, c.command), (0, i as u64 * per, cmds[i]));
    }
    close_segment(&mut drive, None).expect("close");
    assert_eq!(drive.files().len(), 1);
    assert_eq!(drive.files()[0].bytes, size as u64);
    check_chunks(&mut drive, &src, &r.completed);
    // A chunk's digest is of its own blocks: the wrong one is refused.
    let c = &r.completed[1];
    let wrong = ReadRequest {
        file: 0,
        first_block: Some(c.first_block),
        expected_len: Some(c.command.length),
        expected_digest: Some(r.completed[2].digest),
        range: None,
    };
    let err = read_segment(&mut drive, &wrong, &mut VecSink::default(), &CopyControl::new()).expect_err("wrong digest");
    assert_eq!(err.code(), "E_CORRUPT");
}

#[test]
fn a_failing_command_is_cut_off_and_the_rest_moves_to_another_device() {
    let dir = tempfile::tempdir().expect("tmp");
    let size = 2 << 20;
    let src = source(size);
    let cmds = plan_chunks(0, size as u64, CHUNK).expect("plan");
    // Device 0 fails 100 KiB into its fourth command.
    let mut d0 = blank(dir.path(), "A00001L9", 64 << 20);
    let fault = SourceFault { fail_after: Some(3 * CHUNK + 100 * 1024), hang_after: None, ..Default::default() };
    let r0 = execute(&mut d0, &src, &cmds, &DeviceOptions { fault, timeout: None, fault_base: 0, grace: None }, &CopyControl::new());
    assert!(matches!(r0.stop, Some(Stop::Failed { command: 3, .. })), "{:?}", r0.stop);
    assert_eq!(r0.stop.as_ref().map(|s| s.code()), Some("E_IO"));
    // The message gives the stream's byte count, not the failing command's.
    assert!(
        r0.stop.as_ref().is_some_and(|s| s.to_string().contains(&format!("failed after {} bytes", 3 * CHUNK + 100 * 1024))),
        "{:?}",
        r0.stop
    );
    assert_eq!(r0.completed.len(), 3);
    assert_eq!(r0.remaining, cmds[3..].to_vec(), "the failed command comes first");
    assert!(r0.open);
    // The failed command's blocks are gone: the file holds exactly three chunks.
    close_segment(&mut d0, None).expect("close");
    assert_eq!(d0.files()[0].bytes, 3 * CHUNK);
    check_chunks(&mut d0, &src, &r0.completed);

    let rest = finish_on(dir.path(), "B00001L9", &src, &r0.remaining);
    let covered: u64 = r0.completed.iter().chain(&rest).map(|c| c.command.length).sum();
    assert_eq!(covered, size as u64);
}

#[test]
fn a_hanging_command_times_out_and_is_reported_as_such() {
    let dir = tempfile::tempdir().expect("tmp");
    let size = 2 << 20;
    let src = source(size);
    let cmds = plan_chunks(0, size as u64, CHUNK).expect("plan");
    let mut d0 = blank(dir.path(), "A00001L9", 64 << 20);
    // Command 1 writes one block, then hangs on its second.
    let fault = SourceFault { fail_after: None, hang_after: Some(CHUNK + 100 * 1024), ..Default::default() };
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let r =
        execute(&mut d0, &src, &cmds, &DeviceOptions { fault, timeout: Some(timeout), fault_base: 0, grace: None }, &CopyControl::new());
    let took = started.elapsed();
    assert!(matches!(r.stop, Some(Stop::Timeout { command: 1, .. })), "{:?}", r.stop);
    assert_eq!(r.stop.as_ref().map(|s| s.code()), Some("E_TIMEOUT"));
    assert!(took >= timeout && took < timeout * 10, "took {took:?}");
    assert_eq!(r.completed.len(), 1);
    assert_eq!(r.remaining[0], cmds[1]);
    close_segment(&mut d0, None).expect("close");
    // The block command 1 wrote before hanging was cut back off the file.
    assert_eq!(d0.files()[0].bytes, CHUNK);
    check_chunks(&mut d0, &src, &r.completed);
}

#[test]
fn early_warning_splits_a_command_and_the_rest_goes_on_the_next_cartridge() {
    let dir = tempfile::tempdir().expect("tmp");
    let size = 4 << 20;
    let src = source(size);
    let cmds = plan_chunks(0, size as u64, 1 << 20).expect("plan");
    // Room for a bit over 2.5 MiB before early warning.
    let mut d0 = blank(dir.path(), "A00001L9", (2 << 20) + (512 << 10) + 4 * u64::from(BS) + 64 * 1024);
    let r0 = execute(&mut d0, &src, &cmds, &DeviceOptions::default(), &CopyControl::new());
    assert!(matches!(r0.stop, Some(Stop::EarlyWarning)), "{:?}", r0.stop);
    let last = r0.completed.last().expect("some completed");
    let first_rest = r0.remaining[0];
    assert_eq!(first_rest.id, last.command.id, "a split command keeps its id");
    assert_eq!(first_rest.source_offset, last.command.source_offset + last.command.length);
    close_segment(&mut d0, None).expect("close in the early-warning zone");
    check_chunks(&mut d0, &src, &r0.completed);

    let rest = finish_on(dir.path(), "B00001L9", &src, &r0.remaining);
    let covered: u64 = r0.completed.iter().chain(&rest).map(|c| c.command.length).sum();
    assert_eq!(covered, size as u64);
}

#[test]
fn cancelling_stops_at_the_running_command() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = source(1 << 20);
    let cmds: Vec<SegmentCommand> = plan_chunks(0, 1 << 20, CHUNK).expect("plan");
    let mut d0 = blank(dir.path(), "A00001L9", 64 << 20);
    let ctl = CopyControl::new();
    // A hang with no timeout: only the cancel ends it.
    let fault = SourceFault { fail_after: None, hang_after: Some(CHUNK + 10), ..Default::default() };
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            ctl.cancel();
        });
        execute(&mut d0, &src, &cmds, &DeviceOptions { fault, timeout: None, fault_base: 0, grace: None }, &ctl)
    });
    assert!(matches!(r.stop, Some(Stop::Cancelled { command: 1 })), "{:?}", r.stop);
    assert_eq!(r.completed.len(), 1);
    assert_eq!(r.remaining.len(), cmds.len() - 1);
}

/// A source whose reads past `after` bytes block in `read(2)` on a pipe until the test
/// writes to it: a hang no cancellation reaches, that the test can end.
struct StuckSource {
    inner: MemDevice,
    after: u64,
    pipe: std::sync::Mutex<std::io::PipeReader>,
}

impl BlockDevice for StuckSource {
    fn label(&self) -> &str {
        self.inner.label()
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> plexus_volume::Result<()> {
        if offset + buf.len() as u64 > self.after {
            use std::io::Read;
            let _ = self.pipe.lock().map(|mut p| p.read(&mut [0u8; 1]));
        }
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> plexus_volume::Result<()> {
        self.inner.write_at(offset, data)
    }
    fn flush(&self) -> plexus_volume::Result<()> {
        Ok(())
    }
}

#[test]
fn a_command_stuck_in_a_system_call_settles_at_its_timeout_and_its_worker_is_left_behind() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tmp");
    let size = 2 << 20;
    let cmds = plan_chunks(0, size as u64, CHUNK).expect("plan");
    let (reader, mut writer) = std::io::pipe().expect("pipe");
    // Command 2 blocks in the middle: commands 0 and 1 went into the open segment file.
    let src = std::sync::Arc::new(StuckSource { inner: source(size), after: 2 * CHUNK + 100 * 1024, pipe: std::sync::Mutex::new(reader) });
    let path = dir.path().join("A00001L9.tape");
    let d0 = blank(dir.path(), "A00001L9", 64 << 20);
    let timeout = Duration::from_millis(200);
    let grace = Duration::from_millis(100);
    let opts = DeviceOptions { timeout: Some(timeout), grace: Some(grace), ..Default::default() };
    let ctl = std::sync::Arc::new(CopyControl::new());
    let started = Instant::now();
    let run = execute_detached(d0, src.clone(), cmds.clone(), opts, ctl);
    let took = started.elapsed();
    // The run settles although the read never returned.
    assert!(took >= timeout + grace && took < timeout + grace + Duration::from_secs(2), "took {took:?}");
    assert!(run.report.stuck);
    assert!(matches!(run.report.stop, Some(Stop::Timeout { command: 2, .. })), "{:?}", run.report.stop);
    assert!(run.drive.is_none(), "the stuck worker keeps the drive");
    // Nothing of the run is durable: every command is left for another device.
    assert!(run.report.completed.is_empty());
    assert_eq!(run.report.remaining, cmds);
    // The worker still holds the cartridge: no other drive can load it.
    assert_eq!(Drive::open(&path, plexus_volume::Access::ReadWrite).err().map(|e| e.code()), Some("E_BUSY"));
    // Its system call returns at last: it writes nothing more and lets the cartridge go,
    // whose unterminated segment file the next load discards.
    writer.write_all(b"x").expect("unblock");
    let deadline = Instant::now() + Duration::from_secs(10);
    let d = loop {
        match Drive::open(&path, plexus_volume::Access::ReadWrite) {
            Ok(d) => break d,
            Err(e) if e.code() == "E_BUSY" && Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the cartridge was not released: {e}"),
        }
    };
    assert!(d.files().is_empty(), "the abandoned run left no closed file");
    assert_eq!(d.recovery().discarded_blocks, 2 * CHUNK / u64::from(BS), "commands 0 and 1, unterminated");
}

/// A source whose reads past `after` bytes take `delay` (once) and ignore cancellation:
/// a healthy but slow system call.
struct SlowSource {
    inner: MemDevice,
    after: u64,
    delay: Duration,
    slowed: std::sync::atomic::AtomicBool,
}

impl BlockDevice for SlowSource {
    fn label(&self) -> &str {
        self.inner.label()
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> plexus_volume::Result<()> {
        if offset + buf.len() as u64 > self.after && !self.slowed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(self.delay);
        }
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> plexus_volume::Result<()> {
        self.inner.write_at(offset, data)
    }
    fn flush(&self) -> plexus_volume::Result<()> {
        Ok(())
    }
}

#[test]
fn a_slow_command_that_returns_after_its_timeout_is_not_stuck_however_short_the_timeout() {
    let dir = tempfile::tempdir().expect("tmp");
    let size = 1 << 20;
    let cmds = plan_chunks(0, size as u64, CHUNK).expect("plan");
    // Command 1 takes 1.5 s in a read that ignores the cancel; the timeout is 200 ms.
    let src = std::sync::Arc::new(SlowSource {
        inner: source(size),
        after: CHUNK + 1,
        delay: Duration::from_millis(1500),
        slowed: std::sync::atomic::AtomicBool::new(false),
    });
    let d0 = blank(dir.path(), "A00001L9", 64 << 20);
    let opts = DeviceOptions { timeout: Some(Duration::from_millis(200)), ..Default::default() };
    let run = execute_detached(d0, src, cmds.clone(), opts, std::sync::Arc::new(CopyControl::new()));
    // It timed out, but its worker came back within the grace: the device keeps its drive.
    assert!(!run.report.stuck, "a slow command was given up as stuck");
    assert!(matches!(run.report.stop, Some(Stop::Timeout { command: 1, .. })), "{:?}", run.report.stop);
    assert!(run.drive.is_some());
    assert!(plexus_xcopy::DEFAULT_GRACE >= Duration::from_secs(2));
}
