//! The differential copy of a resync: dirty regions of a member read from the local
//! volume into the journal (data as Write records, whole holes as Punch records), their
//! bits cleared, bounded per step by bytes and by what the journal already holds.

mod common;

use common::{group, pattern, records, replay, GRAN};
use plexus_journal::RecordKind;
use plexus_replica::{Change, ReplicaError, ReplicaGroup, ReplicaMode};
use plexus_volume::{BlockDevice, MemDevice, Volume};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

const SIZE: u64 = 4 << 20;
const BIG: u64 = 256 << 20;
const MIB: u64 = 1 << 20;

fn sparse_volume(dir: &Path) -> Volume {
    Volume::create(&dir.join("src.img"), SIZE, 4096).expect("volume")
}

fn contents(dev: &dyn BlockDevice) -> Vec<u8> {
    let mut all = vec![0u8; dev.size() as usize];
    dev.read_at(0, &mut all).expect("read");
    all
}

#[test]
fn a_step_copies_data_as_writes_and_whole_holes_as_punches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vol = sparse_volume(dir.path());
    let a = pattern(1, GRAN as usize);
    let b = pattern(2, 2 * GRAN as usize);
    let c = pattern(3, 4096);
    vol.write_at(0, &a).expect("a");
    vol.write_at(8 * GRAN, &b).expect("b");
    vol.write_at(32 * GRAN + 4096, &c).expect("c");
    vol.flush().expect("flush");
    assert!(matches!(vol.allocation(4 * GRAN, GRAN).expect("allocation").as_slice(), [(_, true)]), "the file system reports holes");

    let g = group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Async);
    g.mark(1, 0, GRAN).expect("data");
    g.mark(1, 4 * GRAN, GRAN).expect("hole");
    g.mark(1, 8 * GRAN, 2 * GRAN).expect("data");
    g.mark(1, 16 * GRAN, 3 * GRAN).expect("long hole");
    g.mark(1, 32 * GRAN, 2 * GRAN).expect("hole with some data");
    let dirty = g.dirty_bytes(1).expect("dirty");
    assert_eq!(dirty, 9 * GRAN);

    let step = g.copy_step(1, &vol, 0, u64::MAX, u64::MAX).expect("step");
    assert!(step.done);
    assert_eq!(step.next, SIZE);
    assert_eq!(step.bytes, dirty);
    assert_eq!(step.data_bytes, 5 * GRAN);
    assert_eq!(step.records, 5);
    assert_eq!(g.dirty_bytes(1).expect("dirty"), 0);

    let recs = records(g.journal());
    let shape: Vec<_> = recs.iter().map(|r| (r.volume, r.kind, r.offset, r.len)).collect();
    assert_eq!(
        shape,
        vec![
            (1, RecordKind::Write, 0, GRAN),
            (1, RecordKind::Punch, 4 * GRAN, GRAN),
            (1, RecordKind::Write, 8 * GRAN, 2 * GRAN),
            (1, RecordKind::Punch, 16 * GRAN, 3 * GRAN),
            (1, RecordKind::Write, 32 * GRAN, 2 * GRAN),
        ]
    );
    assert_eq!(recs[0].data, a);
    assert_eq!(recs[2].data, b);
    assert_eq!(recs[4].data.get(4096..8192), Some(&c[..]));

    // The remote, starting from zeroes, ends with the source's bytes.
    let mut target = vec![0u8; SIZE as usize];
    replay(&recs, &mut target);
    assert!(target == contents(&vol), "the copy reproduces the source");
}

#[test]
fn a_dirty_run_longer_than_a_piece_is_copied_in_pieces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = MemDevice::new("src", SIZE as usize);
    src.write_at(0, &pattern(4, (3 * MIB) as usize)).expect("fill");
    let g = group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Async);
    g.mark(1, 0, 3 * MIB - GRAN).expect("mark");
    let step = g.copy_step(1, &src, 0, u64::MAX, u64::MAX).expect("step");
    assert!(step.done);
    assert_eq!(step.bytes, 3 * MIB - GRAN);
    let recs = records(g.journal());
    assert!(recs.iter().all(|r| r.kind == RecordKind::Write && r.len <= MIB), "{:?}", recs.iter().map(|r| r.len).collect::<Vec<_>>());
    assert_eq!(recs.iter().map(|r| r.len).sum::<u64>(), 3 * MIB - GRAN);
    let mut target = vec![0u8; SIZE as usize];
    replay(&recs, &mut target);
    assert!(target.get(..(3 * MIB - GRAN) as usize) == src.contents().get(..(3 * MIB - GRAN) as usize));
}

#[test]
fn steps_respect_max_bytes_and_report_where_to_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = MemDevice::new("src", SIZE as usize);
    src.write_at(0, &pattern(5, SIZE as usize)).expect("fill");
    let g = group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Async);
    // Eight separate one-granule runs: 0, 2, 4, ... 14.
    for i in 0..8 {
        g.mark(1, 2 * i * GRAN, GRAN).expect("mark");
    }
    let first = g.copy_step(1, &src, 0, 3 * GRAN, u64::MAX).expect("step 1");
    assert_eq!((first.bytes, first.records, first.done), (3 * GRAN, 3, false));
    assert_eq!(first.next, 5 * GRAN, "the next step starts after the third run");
    assert_eq!(g.dirty_bytes(1).expect("dirty"), 5 * GRAN);
    assert_eq!(g.runs(1, 1).expect("runs"), vec![(6 * GRAN, GRAN)]);

    let second = g.copy_step(1, &src, first.next, 3 * GRAN, u64::MAX).expect("step 2");
    assert_eq!((second.bytes, second.records, second.done), (3 * GRAN, 3, false));
    let third = g.copy_step(1, &src, second.next, 3 * GRAN, u64::MAX).expect("step 3");
    assert_eq!((third.bytes, third.records, third.done, third.next), (2 * GRAN, 2, true, SIZE));
    assert_eq!(g.dirty_bytes(1).expect("dirty"), 0);

    let recs = records(g.journal());
    assert_eq!(recs.iter().map(|r| r.offset).collect::<Vec<_>>(), (0..8).map(|i| 2 * i * GRAN).collect::<Vec<_>>());
    let mut target = vec![0u8; SIZE as usize];
    replay(&recs, &mut target);
    let want = src.contents();
    for i in 0..8usize {
        let r = 2 * i * GRAN as usize..(2 * i + 1) * GRAN as usize;
        assert!(target.get(r.clone()) == want.get(r), "run {i}");
    }
    // Nothing dirty: a step from the start is done at once.
    let idle = g.copy_step(1, &src, 0, u64::MAX, u64::MAX).expect("idle");
    assert_eq!((idle.bytes, idle.records, idle.done, idle.next), (0, 0, true, SIZE));
}

#[test]
fn a_step_appends_nothing_while_the_journal_holds_its_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = MemDevice::new("src", SIZE as usize);
    src.write_at(0, &pattern(6, SIZE as usize)).expect("fill");
    let g = group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Async);
    // The application's own write, not yet shipped.
    let w = pattern(7, GRAN as usize);
    g.change::<ReplicaError>(1, 40 * GRAN, GRAN, Change::Write(&w), || Ok(())).expect("write");
    let held = g.journal().held_bytes();
    for i in 0..6 {
        g.mark(1, (1 + 2 * i) * GRAN, GRAN).expect("mark");
    }
    let blocked = g.copy_step(1, &src, 0, u64::MAX, held).expect("blocked step");
    assert_eq!((blocked.bytes, blocked.records, blocked.done), (0, 0, false));
    assert!(blocked.next <= GRAN, "no dirty region skipped: next {}", blocked.next);
    assert_eq!(g.journal().held_records(), 1);
    assert_eq!(g.dirty_bytes(1).expect("dirty"), 6 * GRAN);

    // The shipper released the write: room for about two records.
    g.journal().release(1).expect("release");
    let budget = 2 * (GRAN + 48);
    let some = g.copy_step(1, &src, blocked.next, u64::MAX, budget).expect("step");
    assert!(some.records >= 1 && some.records < 6, "{some:?}");
    assert!(g.journal().held_bytes() <= budget + GRAN + 48, "held {}", g.journal().held_bytes());
    assert_eq!(g.dirty_bytes(1).expect("dirty"), (6 - some.records) * GRAN);
    assert!(!some.done);

    // Released again and again, the copy finishes and nothing was skipped.
    let mut from = some.next;
    for _ in 0..20 {
        g.journal().release(g.journal().last_seq()).expect("release");
        let s = g.copy_step(1, &src, from, u64::MAX, budget).expect("step");
        from = s.next;
        if s.done {
            break;
        }
    }
    assert_eq!(g.dirty_bytes(1).expect("dirty"), 0);
    assert_eq!(g.journal().last_seq(), 1 + 6);
}

/// A source that, on its `nth` read, has another thread suspend the group, and gives
/// that suspension a moment to run before the read goes on.
struct SuspendingSource {
    inner: MemDevice,
    reads: AtomicU32,
    nth: u32,
    group: OnceLock<Arc<ReplicaGroup>>,
    suspender: Mutex<Option<thread::JoinHandle<u64>>>,
}

impl BlockDevice for SuspendingSource {
    fn label(&self) -> &str {
        "suspending"
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> plexus_volume::Result<()> {
        if self.reads.fetch_add(1, Ordering::SeqCst) + 1 == self.nth {
            let g = Arc::clone(self.group.get().expect("group"));
            let (tx, rx) = mpsc::channel();
            let h = thread::spawn(move || {
                let folded = g.suspend("link lost during the resync").expect("suspend");
                let _ = tx.send(());
                folded
            });
            // Either the suspension runs now, between two appends of the step, or it
            // waits for the step: both must keep every region this step cannot finish.
            let _ = rx.recv_timeout(Duration::from_millis(500));
            *self.suspender.lock().expect("suspender") = Some(h);
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
fn a_suspension_during_a_step_leaves_every_uncopied_region_dirty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = SuspendingSource {
        inner: MemDevice::new("src", SIZE as usize),
        reads: AtomicU32::new(0),
        nth: 3,
        group: OnceLock::new(),
        suspender: Mutex::new(None),
    };
    src.inner.write_at(0, &pattern(8, SIZE as usize)).expect("fill");
    let g = Arc::new(group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Async));
    assert!(src.group.set(Arc::clone(&g)).is_ok());
    let runs: Vec<(u64, u64)> = (0..4).map(|i| (4 * i * GRAN, GRAN)).collect();
    for &(off, len) in &runs {
        g.mark(1, off, len).expect("mark");
    }
    // The remote has made nothing durable: whatever the journal drops must stay dirty.
    let _step = g.copy_step(1, &src, 0, u64::MAX, u64::MAX).expect("step");
    let suspender = src.suspender.lock().expect("suspender").take().expect("the suspension ran");
    suspender.join().expect("suspender thread");
    assert_eq!(g.mode(), ReplicaMode::Track);
    assert_eq!(g.journal().held_records(), 0, "a suspension empties the journal");
    // The journal is empty, so the bitmap is all that names what the remote lacks.
    for &(off, len) in &runs {
        let dirty = g.runs(1, 100).expect("runs").iter().any(|&(o, l)| o <= off && off + len <= o + l);
        assert!(dirty, "region {off}+{len} was neither shipped nor left dirty: {:?}", g.runs(1, 100));
    }
}

#[test]
fn hostile_step_arguments_never_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = MemDevice::new("src", SIZE as usize);
    let g = group(dir.path(), &[1], SIZE, BIG, ReplicaMode::Async);
    g.mark(1, 0, GRAN).expect("mark");
    let err = g.copy_step(9, &src, 0, u64::MAX, u64::MAX).expect_err("unknown member");
    assert_eq!(err.code(), "E_STATE");
    assert!(err.to_string().contains("volume 9"), "{err}");
    for from in [SIZE, SIZE + 1, u64::MAX] {
        let s = g.copy_step(1, &src, from, u64::MAX, u64::MAX).expect("past the end");
        assert_eq!((s.bytes, s.records, s.next, s.done), (0, 0, SIZE, true), "from {from}");
    }
    let none = g.copy_step(1, &src, 0, 0, u64::MAX).expect("max 0");
    assert_eq!((none.bytes, none.records), (0, 0));
    // A source smaller than the bitmap: only what it has is copied.
    let small = MemDevice::new("small", (GRAN / 2) as usize);
    let s = g.copy_step(1, &small, 0, u64::MAX, u64::MAX).expect("small source");
    assert_eq!(s.bytes, GRAN / 2);
    assert_eq!(s.next, GRAN / 2);
}
