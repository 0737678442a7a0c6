//! The write-path kernel of `plexus bench resync`: what a host write costs on a plain
//! volume, on the primary of a split pair (which marks the dirty bitmap) and on the
//! primary of a mirrored pair (which writes both plexes).
//!
//! It runs natively because a 4 KiB write to the page cache takes about a microsecond,
//! and the N-API crossing of a JavaScript call would be a large part of that. Every
//! case goes through the real code: `Volume::write_at` for the plain write and
//! `Mirror::write_primary` (that is, `write_primary_all`) for the pairs, on real
//! volume files with real durable bitmaps beside them.

use crate::error::Result;
use crate::mirror::{Mirror, MirrorFiles};
use plexus_volume::{fill, random_bytes, BlockDevice, Fill, Volume};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Bytes per write: one page, the usual database and file-system block.
pub const WRITE_SIZE: u64 = 4096;

/// How to run [`write_path_ns`].
#[derive(Clone, Copy, Debug)]
pub struct WritePathOptions {
    /// Size of each scratch volume (a multiple of the granularity).
    pub size: u64,
    /// Writes per case, at random 4 KiB-aligned offsets (see [`interleave`]).
    pub writes: u64,
    /// Seed of the offset sequence.
    pub seed: u64,
    /// Bytes per bitmap bit of the pairs.
    pub granularity: u64,
    /// Writes per new-region case (each to a region not yet marked, so each one logs
    /// and syncs a write-intent record); both cases together get at most one write
    /// per region.
    pub new_region_writes: u64,
}

/// Nanoseconds per 4 KiB write of one case.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WriteCost {
    /// Mean over all the case's writes.
    pub mean_ns: f64,
    /// Median over the case's turns of the mean write of each turn: robust to stalls
    /// the case did not cause, such as a journal commit forced by another process on
    /// a shared machine, which land on a few turns and inflate the mean at random.
    pub median_ns: f64,
}

/// What each write path costs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WritePathTiming {
    /// `Volume::write_at` on a volume with no pair.
    pub plain: WriteCost,
    /// Split primary (PSUS) without write intent: the bit is set in memory only.
    pub split: WriteCost,
    /// Split primary with write intent, regions already marked: the steady path, a
    /// lock-free test of the bit before the write.
    pub split_intent: WriteCost,
    /// Split primary with write intent, every write to a region not yet marked: the
    /// intent record is appended and synced before the data is written.
    pub split_intent_new: WriteCost,
    /// Mirrored primary (PAIR, two copies) with write intent, regions already marked.
    pub pair: WriteCost,
    /// Mirrored primary with write intent, every write to a region not yet marked.
    pub pair_new: WriteCost,
    /// Writes per steady case.
    pub writes: u64,
    /// Writes per new-region case.
    pub new_region_writes: u64,
}

/// SplitMix64, so the offset sequence is the same for every case and every run.
fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` random 4 KiB-aligned offsets within `size`.
fn random_offsets(size: u64, n: u64, seed: u64) -> Vec<u64> {
    let blocks = (size / WRITE_SIZE).max(1);
    (0..n).map(|i| mix(seed, i) % blocks * WRITE_SIZE).collect()
}

/// One 4 KiB offset in each of `n` distinct regions spread over the volume, so each
/// write of a pass dirties a region no earlier write of the pass touched.
fn new_region_offsets(size: u64, granularity: u64, n: u64, seed: u64) -> Vec<u64> {
    let regions = size / granularity;
    let n = n.min(regions);
    let stride = regions / n.max(1);
    let per_region = (granularity / WRITE_SIZE).max(1);
    (0..n).map(|i| i * stride * granularity + mix(seed ^ 0x5eed, i) % per_region * WRITE_SIZE).collect()
}

/// One way of writing 4 KiB at an offset.
type Case<'a> = Box<dyn FnMut(u64) -> Result<()> + 'a>;

/// Writes per turn of a steady case in [`interleave`]: long enough that reading the
/// clock costs nothing, short enough that a slow spell spans many turns of every case.
const TURN: usize = 250;

/// The cost of each case's writes. The offsets are dealt out in turns of `turn`
/// writes, the cases taking turns in an order that rotates every cycle, so every
/// case writes as many offsets drawn from the same random sequence, none writes a
/// page another case has just written (and finds it in the CPU caches), and a slow
/// spell of the machine or of the file system's journal hits all cases alike.
fn interleave(cases: &mut [Case<'_>], offsets: &[u64], turn: usize) -> Result<Vec<WriteCost>> {
    let n = cases.len().max(1);
    // Per case: the mean nanoseconds per write of each of its turns, and its writes.
    let mut turns: Vec<Vec<(f64, usize)>> = vec![Vec::new(); n];
    for (j, chunk) in offsets.chunks(turn.max(1)).enumerate() {
        let k = (j / n + j % n) % n;
        let (Some(case), Some(log)) = (cases.get_mut(k), turns.get_mut(k)) else { continue };
        let t = Instant::now();
        for &off in chunk {
            case(off)?;
        }
        log.push((t.elapsed().as_nanos() as f64 / chunk.len() as f64, chunk.len()));
    }
    Ok(turns.into_iter().map(|t| cost(&t)).collect())
}

/// Mean and median of a case's turns (each a mean per write and a write count).
fn cost(turns: &[(f64, usize)]) -> WriteCost {
    let writes: usize = turns.iter().map(|t| t.1).sum();
    let mean_ns = turns.iter().map(|&(ns, w)| ns * w as f64).sum::<f64>() / writes.max(1) as f64;
    let mut per: Vec<f64> = turns.iter().map(|t| t.0).collect();
    per.sort_by(f64::total_cmp);
    let median_ns = match per.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => per.get(len / 2).copied().unwrap_or(f64::NAN),
        len => (per.get(len / 2 - 1).copied().unwrap_or(f64::NAN) + per.get(len / 2).copied().unwrap_or(f64::NAN)) / 2.0,
    };
    WriteCost { mean_ns, median_ns }
}

fn files(dir: &Path, tag: &str) -> MirrorFiles {
    MirrorFiles {
        primary_dirty: dir.join(format!("wp-{tag}.pdirty.bitmap")),
        secondary_dirty: dir.join(format!("wp-{tag}.sdirty.bitmap")),
        filled: dir.join(format!("wp-{tag}.filled.bitmap")),
    }
}

/// Measures the write path in `dir` (which must not hold `wp-*` files yet; they are
/// left behind for the caller to remove with the directory).
///
/// Both volumes are written in full and synced first, so no write allocates a block
/// or competes with writeback of the set-up. The pairs are made the way the library
/// makes them (create, then split, or create and clear the intent bits of a clean
/// PAIR) and then written through `Mirror::write_primary`.
pub fn write_path_ns(dir: &Path, opts: &WritePathOptions) -> Result<WritePathTiming> {
    let g = opts.granularity;
    let size = opts.size / g * g;
    let primary = Arc::new(Volume::create(&dir.join("wp-primary.img"), size, WRITE_SIZE)?);
    let secondary = Arc::new(Volume::create(&dir.join("wp-secondary.img"), size, WRITE_SIZE)?);
    for v in [&primary, &secondary] {
        fill(v.as_ref(), 0, size, Fill::Pattern(0x5a))?;
        v.flush()?;
    }
    let p: Arc<dyn BlockDevice> = primary.clone();
    let s: Arc<dyn BlockDevice> = secondary.clone();

    // A split pair without and with write intent, and a clean PAIR with write intent.
    let split = Mirror::create(p.clone(), s.clone(), &files(dir, "split"), g, false, false)?;
    split.quiesce().split()?;
    let split_intent = Mirror::create(p.clone(), s.clone(), &files(dir, "split-intent"), g, true, false)?;
    split_intent.quiesce().split()?;
    let pair = Mirror::create(p.clone(), s.clone(), &files(dir, "pair"), g, true, false)?;
    pair.clear_intent()?;

    let mut data = vec![0u8; WRITE_SIZE as usize];
    random_bytes(opts.seed, 0, &mut data);
    let data = &data;

    // New regions first, while the intent bitmaps are still clear.
    let fresh = new_region_offsets(size, g, opts.new_region_writes.saturating_mul(2), opts.seed);
    let mut cases: Vec<Case<'_>> = vec![Box::new(|o| split_intent.write_primary(o, data)), Box::new(|o| pair.write_primary(o, data))];
    // Each of these writes syncs, so turns of one write cost nothing to time.
    let new_ns = interleave(&mut cases, &fresh, 1)?;
    drop(cases);

    // The steady state: every region of the volume durably marked (one intent record),
    // as after the first write to each, so the timed writes take the lock-free path.
    split_intent.p_dirty.mark_range(0, size)?;
    pair.p_dirty.mark_range(0, size)?;
    for v in [&primary, &secondary] {
        v.flush()?;
    }

    let mut cases: Vec<Case<'_>> = vec![
        Box::new(|o| Ok(primary.write_at(o, data)?)),
        Box::new(|o| split.write_primary(o, data)),
        Box::new(|o| split_intent.write_primary(o, data)),
        Box::new(|o| pair.write_primary(o, data)),
    ];
    let offsets = random_offsets(size, opts.writes.saturating_mul(cases.len() as u64), opts.seed);
    let steady = interleave(&mut cases, &offsets, TURN)?;
    let at = |v: &[WriteCost], i: usize| v.get(i).copied().unwrap_or_default();
    Ok(WritePathTiming {
        plain: at(&steady, 0),
        split: at(&steady, 1),
        split_intent: at(&steady, 2),
        split_intent_new: at(&new_ns, 0),
        pair: at(&steady, 3),
        pair_new: at(&new_ns, 1),
        writes: opts.writes,
        new_region_writes: fresh.len() as u64 / 2,
    })
}

/// How to run [`checkpoint_costs`].
#[derive(Clone, Copy, Debug)]
pub struct CheckpointCostOptions {
    /// Logical size of each (sparse) volume.
    pub size: u64,
    /// Bytes of data written to the primary, in [`DATA_EXTENT`] pieces spread evenly
    /// over it; the rest stays holes.
    pub data: u64,
    /// Bytes per bitmap bit of the pair.
    pub granularity: u64,
    /// Copy threads (0: one per core).
    pub threads: usize,
}

/// The piece the data of [`checkpoint_costs`] is written in.
pub const DATA_EXTENT: u64 = 1 << 20;

/// What the initial copy of a sparse pair cost the pair's three sidecars.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CheckpointCosts {
    /// Logical size of the volumes.
    pub size: u64,
    /// Bytes of data on the primary (and copied; the rest are holes punched).
    pub data: u64,
    /// Granules visited by the copy (every one: the whole bitmap was dirty).
    pub granules: u64,
    /// Bytes written to sidecar files (snapshots and logs) by the copy.
    pub sidecar_bytes: u64,
    /// fsyncs and fdatasyncs of sidecar files and their directory by the copy.
    pub sidecar_syncs: u64,
    /// Snapshots the copy wrote.
    pub snapshots: u64,
    /// Log records the copy appended.
    pub records: u64,
    /// Wall time of the copy, seconds.
    pub seconds: f64,
    /// What creating the pair cost its sidecars before the copy (bytes, syncs).
    pub setup_bytes: u64,
    /// Syncs of the pair's creation.
    pub setup_syncs: u64,
}

fn sidecar_totals(m: &Mirror) -> plexus_bitmap::SidecarStats {
    let mut t = plexus_bitmap::SidecarStats::default();
    for b in [&m.p_dirty, &m.s_dirty, &m.filled] {
        let s = b.stats();
        t.bytes_written += s.bytes_written;
        t.syncs += s.syncs;
        t.snapshots += s.snapshots;
        t.records += s.records;
    }
    t
}

/// The initial copy of a new pair (every granule dirty) between sparse volumes in `dir`
/// holding `opts.data` bytes of data, the rest holes: the copy visits every granule,
/// copies the data, punches the holes, and checkpoints as it goes. Returns what that
/// cost the sidecars (bytes written, syncs) and its wall time. The data pieces of the
/// secondary are compared with the primary's afterwards (E_STATE if one differs).
/// Files `ck-*` are left in `dir` for the caller to remove with it.
pub fn checkpoint_costs(dir: &Path, opts: &CheckpointCostOptions) -> Result<CheckpointCosts> {
    let g = opts.granularity;
    let size = opts.size / DATA_EXTENT.max(g) * DATA_EXTENT.max(g);
    let primary = Arc::new(Volume::create(&dir.join("ck-primary.img"), size, WRITE_SIZE)?);
    let secondary = Arc::new(Volume::create(&dir.join("ck-secondary.img"), size, WRITE_SIZE)?);
    let pieces = (opts.data / DATA_EXTENT).clamp(1, size / DATA_EXTENT);
    let stride = size / pieces / DATA_EXTENT * DATA_EXTENT;
    for i in 0..pieces {
        fill(primary.as_ref(), i * stride, DATA_EXTENT, Fill::Random(i + 1))?;
    }
    primary.flush()?;
    let files = MirrorFiles {
        primary_dirty: dir.join("ck.pdirty.bitmap"),
        secondary_dirty: dir.join("ck.sdirty.bitmap"),
        filled: dir.join("ck.filled.bitmap"),
    };
    let m = Mirror::create(primary.clone(), secondary.clone(), &files, g, true, false)?;
    let setup = sidecar_totals(&m);
    let copy = plexus_copy::CopyOptions { threads: opts.threads, ..plexus_copy::CopyOptions::default() };
    let t = Instant::now();
    m.resync(crate::Direction::Forward, false, &copy, &plexus_copy::CopyControl::new())?;
    let seconds = t.elapsed().as_secs_f64();
    let after = sidecar_totals(&m);
    let (mut a, mut b) = (vec![0u8; DATA_EXTENT as usize], vec![0u8; DATA_EXTENT as usize]);
    for i in 0..pieces {
        primary.read_at(i * stride, &mut a)?;
        secondary.read_at(i * stride, &mut b)?;
        if a != b {
            return Err(crate::MirrorError::State { detail: format!("the copy of the data at offset {} differs", i * stride) });
        }
    }
    Ok(CheckpointCosts {
        size,
        data: pieces * DATA_EXTENT,
        granules: size.div_ceil(g),
        sidecar_bytes: after.bytes_written - setup.bytes_written,
        sidecar_syncs: after.syncs - setup.syncs,
        snapshots: after.snapshots - setup.snapshots,
        records: after.records - setup.records,
        seconds,
        setup_bytes: setup.bytes_written,
        setup_syncs: setup.syncs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_every_case_on_a_small_volume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = WritePathOptions { size: 4 << 20, writes: 2000, seed: 7, granularity: 64 << 10, new_region_writes: 16 };
        let t = write_path_ns(dir.path(), &opts).expect("kernel");
        for c in [t.plain, t.split, t.split_intent, t.split_intent_new, t.pair, t.pair_new] {
            assert!(c.mean_ns.is_finite() && c.mean_ns > 0.0 && c.median_ns.is_finite() && c.median_ns > 0.0, "{t:?}");
        }
        assert_eq!(t.writes, 2000);
        assert_eq!(t.new_region_writes, 16);
        // Each new-region write syncs an intent record; a steady write syncs nothing.
        assert!(t.split_intent_new.mean_ns > t.split_intent.mean_ns, "{t:?}");
    }

    #[test]
    fn checkpoint_costs_copies_the_data_of_a_sparse_pair_and_counts_the_sidecars() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = CheckpointCostOptions { size: 256 << 20, data: 8 << 20, granularity: 64 << 10, threads: 2 };
        let c = checkpoint_costs(dir.path(), &opts).expect("kernel");
        assert_eq!((c.size, c.data, c.granules), (256 << 20, 8 << 20, 4096));
        // At least the final checkpoint, and the pair's creation wrote its three snapshots.
        assert!(c.sidecar_syncs >= 1 && c.sidecar_bytes >= 32, "{c:?}");
        assert!(c.setup_bytes >= 3 * (64 + 512), "{c:?}");
        assert!(c.seconds > 0.0);
    }

    #[test]
    fn cost_weighs_turns_by_writes_and_takes_the_middle_turn() {
        let c = cost(&[(10.0, 2), (1000.0, 1), (20.0, 2)]);
        assert!((c.mean_ns - 1060.0 / 5.0).abs() < 1e-9);
        assert_eq!(c.median_ns, 20.0);
        assert_eq!(cost(&[(10.0, 1), (20.0, 1)]).median_ns, 15.0);
        assert!(cost(&[]).median_ns.is_nan());
    }

    #[test]
    fn new_region_offsets_touch_distinct_regions() {
        let g = 64 << 10;
        let offs = new_region_offsets(1 << 30, g, 256, 3);
        assert_eq!(offs.len(), 256);
        let mut regions: Vec<u64> = offs.iter().map(|o| o / g).collect();
        regions.dedup();
        assert_eq!(regions.len(), 256);
        assert!(offs.iter().all(|o| o % WRITE_SIZE == 0 && *o < 1 << 30));
        // Capped at the number of regions.
        assert_eq!(new_region_offsets(1 << 20, g, 100, 3).len(), 16);
    }
}
