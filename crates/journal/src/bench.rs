//! Replay benchmark of the applier: encoded records shuffled within a window, fed in
//! multi-MiB batches through an [`Applier`] into in-memory volumes, against the limit —
//! a plain memcpy of the same bytes into the same kind of buffer. Callable from the
//! native crate; `tests/replay_bench.rs` runs it (`cargo test --release -- --ignored`).

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::apply::{Applier, ApplyTarget, StateStore};
use crate::format::{encode_record, RecordKind, RecordRef, RECORD_HEADER};

/// What [`replay_bench`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayFigures {
    /// Records applied per second (decode + verify + reorder + apply).
    pub records_per_s: f64,
    /// Data bytes applied per second.
    pub bytes_per_s: f64,
    /// Data bytes per second of the in-order memcpy of the same bytes (the limit).
    pub memcpy_bytes_per_s: f64,
}

/// An in-memory volume: an apply target for benches and tests.
#[derive(Debug)]
pub struct MemTarget {
    buf: Mutex<Vec<u8>>,
}

impl MemTarget {
    /// A zeroed volume of `size` bytes.
    pub fn new(size: usize) -> MemTarget {
        MemTarget { buf: Mutex::new(vec![0u8; size]) }
    }

    /// A copy of the volume's bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        self.buf.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

fn range(len: usize, offset: u64, n: u64) -> io::Result<std::ops::Range<usize>> {
    let end = offset.checked_add(n).filter(|&e| e <= len as u64).ok_or_else(|| io::Error::other(format!("{offset}+{n} past {len}")))?;
    Ok(offset as usize..end as usize)
}

impl ApplyTarget for MemTarget {
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut b = self.buf.lock().map_err(|_| io::Error::other("poisoned"))?;
        let r = range(b.len(), offset, data.len() as u64)?;
        b.get_mut(r).ok_or_else(|| io::Error::other("range"))?.copy_from_slice(data);
        Ok(())
    }
    fn write_zeroes(&self, offset: u64, len: u64, _punch: bool) -> io::Result<()> {
        let mut b = self.buf.lock().map_err(|_| io::Error::other("poisoned"))?;
        let r = range(b.len(), offset, len)?;
        b.get_mut(r).ok_or_else(|| io::Error::other("range"))?.fill(0);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A state store that keeps nothing (the bench measures applying, not fsync).
struct NoStore;

impl StateStore for NoStore {
    fn read(&self) -> io::Result<Vec<u8>> {
        Ok(Vec::new())
    }
    fn write_at(&self, _offset: u64, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Tiny xorshift64* generator: deterministic, no dependency.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced: xorshift must not start at 0).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }
    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Target size of one batch, like the shipper's.
const BATCH_BYTES: usize = 6 << 20;
/// Size of the in-memory volume records land in (offsets wrap around it).
const VOLUME_BYTES: u64 = 64 << 20;

/// Builds `records` records of `record_size` bytes (sequence 1..=records) shuffled within
/// consecutive groups of `window` records, feeds them in ~6 MiB batches through an
/// [`Applier`] whose targets are in-memory volumes, and measures against a memcpy of
/// the same data bytes (read from the same encoded stream) into the same kind of buffer.
/// Panics if the applier fails or lands wrong bytes: it is a bench, not a library call
/// path (`records` is capped so the encoded stream stays under 2 GiB).
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub fn replay_bench(record_size: usize, records: u64, window: usize, seed: u64) -> ReplayFigures {
    let record_size = record_size.max(1);
    let stride = (RECORD_HEADER + record_size) as u64;
    let records = records.min((2u64 << 30) / stride).max(1);
    let window = window.max(1) as u64;
    let mut rng = XorShift::new(seed);
    // Sequence numbers in stream order: shuffled within each window-sized group.
    let mut order: Vec<u64> = (1..=records).collect();
    for chunk in order.chunks_mut(window as usize) {
        for i in (1..chunk.len()).rev() {
            chunk.swap(i, rng.below(i as u64 + 1) as usize);
        }
    }
    let slots = (VOLUME_BYTES / record_size as u64).max(1);
    let vol_bytes = (slots * record_size as u64) as usize;
    let offset_of = |seq: u64| ((seq - 1) % slots) * record_size as u64;
    let payloads: Vec<Vec<u8>> = (0..16).map(|_| (0..record_size).map(|_| rng.next_u64() as u8).collect()).collect();
    let mut batches: Vec<Vec<u8>> = Vec::new();
    let mut cur = Vec::with_capacity(BATCH_BYTES + stride as usize);
    for &seq in &order {
        let data = &payloads[(seq % 16) as usize];
        let rec = RecordRef { seq, volume: 1, kind: RecordKind::Write, offset: offset_of(seq), len: record_size as u64, data };
        encode_record(&mut cur, &rec);
        if cur.len() >= BATCH_BYTES {
            batches.push(std::mem::replace(&mut cur, Vec::with_capacity(BATCH_BYTES + stride as usize)));
        }
    }
    if !cur.is_empty() {
        batches.push(cur);
    }

    let target = Arc::new(MemTarget::new(vol_bytes));
    let dyn_target: Arc<dyn ApplyTarget> = Arc::clone(&target) as Arc<dyn ApplyTarget>;
    let window_bytes = (2 * window * stride + 2 * BATCH_BYTES as u64) * 2;
    let applier = Applier::open_with_store(Arc::new(NoStore), Path::new("bench"), vec![(1, dyn_target)], window_bytes).unwrap();
    // Fault the volume's pages in before timing either side.
    target.write_zeroes(0, vol_bytes as u64, false).unwrap();
    let t0 = Instant::now();
    for b in &batches {
        applier.receive(b).unwrap();
    }
    let apply_s = t0.elapsed().as_secs_f64();
    assert_eq!(applier.applied(), records, "every record applied");
    assert_eq!(applier.buffered().0, 0);

    let mut dst = vec![0u8; vol_bytes];
    dst.fill(0); // faults the pages in, as the target's were
    let t1 = Instant::now();
    let mut i = 0usize;
    for b in &batches {
        let mut at = 0usize;
        while at < b.len() {
            let seq = order[i];
            let off = offset_of(seq) as usize;
            dst[off..off + record_size].copy_from_slice(&b[at + RECORD_HEADER..at + stride as usize]);
            at += stride as usize;
            i += 1;
        }
    }
    let copy_s = t1.elapsed().as_secs_f64();
    // The applier must have landed the newest record of every slot, like the memcpy.
    if records <= slots || window == 1 {
        assert!(target.snapshot() == dst, "applied bytes differ from the in-order copy");
    }
    let bytes = (records * record_size as u64) as f64;
    ReplayFigures { records_per_s: records as f64 / apply_s, bytes_per_s: bytes / apply_s, memcpy_bytes_per_s: bytes / copy_s }
}

/// Appends `records` records of `record_size` bytes from `threads` threads into a fresh
/// journal in `dir` (page cache only, no sync) with segments of `segment_bytes`, and
/// returns records per second. A segment roll fdatasyncs the full segment, so small
/// segments measure the disk's write-back too; a huge one, the append path alone.
#[allow(clippy::unwrap_used)]
pub fn append_bench(dir: &Path, record_size: usize, records: u64, threads: usize, segment_bytes: u64) -> f64 {
    let opts = crate::JournalOptions { segment_bytes, ..crate::JournalOptions::new(u64::MAX / 4) };
    let j = Arc::new(crate::Journal::open_with(dir, opts).unwrap());
    let data = vec![0x5au8; record_size];
    let per = records / threads.max(1) as u64;
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads.max(1) {
            let (j, data) = (Arc::clone(&j), &data);
            s.spawn(move || {
                for i in 0..per {
                    let rec = RecordRef {
                        seq: 0,
                        volume: t as u32,
                        kind: RecordKind::Write,
                        offset: i * data.len() as u64,
                        len: data.len() as u64,
                        data,
                    };
                    j.append(&rec).unwrap();
                }
            });
        }
    });
    (per * threads.max(1) as u64) as f64 / t0.elapsed().as_secs_f64()
}
