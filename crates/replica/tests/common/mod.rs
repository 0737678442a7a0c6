//! Shared set-up for the replica tests: a group over a journal and durable bitmaps in a
//! temporary directory, and a reader that turns the journal back into owned records.
#![allow(dead_code)]

use plexus_bitmap::DurableBitmap;
use plexus_journal::{decode_batch, Journal, RecordKind};
use plexus_replica::{ReplicaGroup, ReplicaMode};
use std::path::Path;
use std::sync::Arc;

/// Granularity of every test bitmap.
pub const GRAN: u64 = 64 << 10;

/// One record read back from the journal, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub seq: u64,
    pub volume: u32,
    pub kind: RecordKind,
    pub offset: u64,
    pub len: u64,
    pub data: Vec<u8>,
}

pub fn bitmap(dir: &Path, name: &str, size: u64) -> Arc<DurableBitmap> {
    Arc::new(DurableBitmap::create(dir.join(format!("{name}.bitmap")), size, GRAN, true).expect("bitmap"))
}

/// A group with members `ids`, each of `size` bytes, over a journal of `capacity` bytes.
pub fn group(dir: &Path, ids: &[u32], size: u64, capacity: u64, mode: ReplicaMode) -> ReplicaGroup {
    let journal = Arc::new(Journal::open(&dir.join("journal"), capacity).expect("journal"));
    let members = ids.iter().map(|&id| (id, bitmap(dir, &format!("v{id}"), size))).collect();
    ReplicaGroup::new(journal, members, mode)
}

/// Every record the journal holds, in sequence order, through the wire decoder.
pub fn records(journal: &Journal) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut from = journal.first_seq();
    loop {
        let batch = journal.read_batch(from, 4 << 20).expect("read_batch");
        if batch.count == 0 {
            return out;
        }
        for r in decode_batch(&batch.bytes).expect("decode_batch") {
            out.push(Rec { seq: r.seq, volume: r.volume, kind: r.kind, offset: r.offset, len: r.len, data: r.data.to_vec() });
        }
        from = batch.last + 1;
    }
}

/// Applies `recs` in sequence order to `target`, as the remote applier would.
pub fn replay(recs: &[Rec], target: &mut [u8]) {
    let mut sorted: Vec<&Rec> = recs.iter().collect();
    sorted.sort_by_key(|r| r.seq);
    for r in sorted {
        let range = r.offset as usize..(r.offset + r.len) as usize;
        let dst = target.get_mut(range).expect("record inside the target");
        match r.kind {
            RecordKind::Write => dst.copy_from_slice(&r.data),
            RecordKind::Zeroes | RecordKind::Punch => dst.fill(0),
        }
    }
}

/// A deterministic byte pattern.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A volume in memory, as an applier's or a redo's target.
pub struct MemTarget(pub std::sync::Mutex<Vec<u8>>);

impl MemTarget {
    /// `size` bytes of `fill`.
    pub fn new(size: usize, fill: u8) -> Arc<Self> {
        Arc::new(MemTarget(std::sync::Mutex::new(vec![fill; size])))
    }

    /// A copy of its bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().expect("target").clone()
    }
}

impl plexus_journal::ApplyTarget for MemTarget {
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut v = self.0.lock().expect("target");
        v.get_mut(offset as usize..offset as usize + data.len()).expect("in range").copy_from_slice(data);
        Ok(())
    }
    fn write_zeroes(&self, offset: u64, len: u64, _punch: bool) -> std::io::Result<()> {
        let mut v = self.0.lock().expect("target");
        v.get_mut(offset as usize..(offset + len) as usize).expect("in range").fill(0);
        Ok(())
    }
    fn sync(&self) -> std::io::Result<()> {
        Ok(())
    }
}
