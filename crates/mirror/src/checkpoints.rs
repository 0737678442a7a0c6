//! Checkpoints: generations of a primary's dirty bitmap, each tied to a moment, for
//! incremental backups (what QEMU calls persistent dirty bitmaps with checkpoints).
//!
//! The current generation records every write to the primary since it started; a
//! checkpoint freezes it and starts an empty one, and frozen generations stay readable
//! until released. Each generation is a durable bitmap sidecar `gen-N.bitmap` in the
//! chain's directory; `checkpoints.manifest` says which exist and which is current.
//! Design, format and crash cases: docs/mirrors.md, "Checkpoints".

use crate::error::{MirrorError, Result};
use crate::extents::bit_extents;
use crate::manifest::{sync_dir, Entry, Manifest, Stored};
use plexus_bitmap::DurableBitmap;
use plexus_volume::{OwnerLock, VolumeError};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

const MANIFEST: &str = "checkpoints.manifest";
const MANIFEST_TMP: &str = "checkpoints.manifest.tmp";
const LOCK: &str = "checkpoints.lock";
/// Files a generation's sidecar may have beside its snapshot.
const SIDECAR_SUFFIXES: [&str; 3] = ["", ".log", ".tmp"];

/// What [`Checkpoints::generations`] reports about one generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    /// Its number; the first generation of a chain is 1, numbers are never reused.
    pub number: u64,
    /// Frozen by a checkpoint (no longer marked); false for the current one.
    pub frozen: bool,
    /// Bytes marked dirty in it (whole granules, the last one clipped to the volume).
    pub dirty_bytes: u64,
    /// When it started (the chain was created, or the checkpoint that froze the one
    /// before), nanoseconds since the Unix epoch.
    pub started_ns: u64,
    /// When the checkpoint froze it, nanoseconds since the Unix epoch.
    pub frozen_ns: Option<u64>,
}

struct Gen {
    entry: Entry,
    bitmap: DurableBitmap,
}

/// The dirty-bitmap generations of one primary volume, stored in one directory.
///
/// Writers call [`guard`](Self::guard) and, holding it, [`CheckpointGuard::mark`] and
/// then write their data; [`checkpoint`](Self::checkpoint) waits for every guard to
/// drop and holds new ones off while it switches generations, so each write is recorded
/// entirely in the generation before a checkpoint or entirely in the one after.
pub struct Checkpoints {
    dir: PathBuf,
    size: u64,
    granularity: u64,
    /// Shared by writers across mark + data write, exclusive for the switch.
    boundary: RwLock<()>,
    /// Ascending by number; the last is the current generation.
    chain: RwLock<Vec<Gen>>,
    /// One manifest writer at a time (checkpoint, release).
    serial: Mutex<()>,
    /// A manifest rename whose durability is unknown: marks and changes are refused.
    poisoned: AtomicBool,
    _owner: OwnerLock,
}

/// Held by a writer from before its mark until its data write is done; no checkpoint
/// can fall between the two. Never call [`Checkpoints::checkpoint`] while holding one
/// (it would wait for itself).
pub struct CheckpointGuard<'a> {
    owner: &'a Checkpoints,
    _shared: RwLockReadGuard<'a, ()>,
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn gen_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("gen-{number}.bitmap"))
}

/// The generation a file of the directory belongs to (`gen-N.bitmap`, `.log`, `.tmp`).
fn gen_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("gen-")?;
    let (digits, suffix) = rest.split_once(".bitmap")?;
    if !SIDECAR_SUFFIXES.contains(&suffix) || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Removes every file of generation `number`; a file already gone is fine.
fn remove_gen_files(dir: &Path, number: u64) -> Result<()> {
    let base = gen_path(dir, number);
    for suffix in SIDECAR_SUFFIXES {
        let mut p = base.clone().into_os_string();
        p.push(suffix);
        let p = PathBuf::from(p);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(MirrorError::io(&p, "remove")(e)),
        }
    }
    Ok(())
}

impl Checkpoints {
    /// Opens the chain in `dir` (created if missing) for a primary of `size` bytes, or
    /// starts one at generation 1. E_BUSY if another handle has it open, E_SIZE if the
    /// chain was made for another geometry, E_CORRUPT for a damaged manifest or a
    /// generation it names whose bitmap is missing or damaged. Leftovers of a crash are
    /// settled (see docs/mirrors.md): never a generation lost, at worst marks kept twice.
    pub fn open(dir: &Path, size: u64, granularity: u64) -> Result<Self> {
        fs::create_dir_all(dir).map_err(MirrorError::io(dir, "create directory"))?;
        let owner = OwnerLock::try_acquire(&dir.join(LOCK), &format!("checkpoints in {}", dir.display()))?;
        // A torn store never reaches the manifest's name; what is left of it is nothing.
        let _ = fs::remove_file(dir.join(MANIFEST_TMP));
        let manifest_path = dir.join(MANIFEST);
        let manifest = match Manifest::load(&manifest_path)? {
            Some(m) => m,
            None => Self::start(dir, size, granularity)?,
        };
        if manifest.size != size || manifest.granularity != granularity {
            return Err(MirrorError::Volume(VolumeError::Size {
                detail: format!(
                    "checkpoints in {} are for {} bytes at granularity {}, not {size} at {granularity}",
                    dir.display(),
                    manifest.size,
                    manifest.granularity
                ),
            }));
        }
        let mut chain = Vec::with_capacity(manifest.entries.len());
        for entry in manifest.entries {
            let path = gen_path(dir, entry.number);
            let bitmap = DurableBitmap::open(&path, true).map_err(|e| match e.code() {
                "E_NOENT" => MirrorError::Corrupt {
                    path: manifest_path.clone(),
                    detail: format!("it names generation {} but {} is missing", entry.number, path.display()),
                },
                _ => e.into(),
            })?;
            let view = bitmap.bitmap();
            if view.size() != size || view.granularity() != granularity {
                return Err(MirrorError::Corrupt {
                    path: path.clone(),
                    detail: format!("its geometry (size {}, granularity {}) is not the chain's", view.size(), view.granularity()),
                });
            }
            chain.push(Gen { entry, bitmap });
        }
        let ckpts = Checkpoints {
            dir: dir.to_owned(),
            size,
            granularity,
            boundary: RwLock::new(()),
            chain: RwLock::new(chain),
            serial: Mutex::new(()),
            poisoned: AtomicBool::new(false),
            _owner: owner,
        };
        ckpts.settle_orphans()?;
        Ok(ckpts)
    }

    /// A new chain: generation 1, current. A crash before its manifest leaves at most
    /// `gen-1.bitmap`, which is taken over (marks in it are kept); any other generation
    /// file without a manifest means the manifest was lost, and guessing would be wrong.
    fn start(dir: &Path, size: u64, granularity: u64) -> Result<Manifest> {
        let entries = fs::read_dir(dir).map_err(MirrorError::io(dir, "read directory"))?;
        for e in entries {
            let e = e.map_err(MirrorError::io(dir, "read directory"))?;
            if let Some(n) = e.file_name().to_str().and_then(gen_of).filter(|&n| n != 1) {
                return Err(MirrorError::Corrupt {
                    path: dir.join(MANIFEST),
                    detail: format!("it is missing while generation {n} exists"),
                });
            }
        }
        drop(DurableBitmap::open_or_create(gen_path(dir, 1), size, granularity, true)?);
        let m = Manifest { size, granularity, entries: vec![Entry { number: 1, started_ns: now_ns(), frozen_ns: None }] };
        m.store(&dir.join(MANIFEST), &dir.join(MANIFEST_TMP)).map_err(|(Stored::Before(e) | Stored::After(e))| e)?;
        Ok(m)
    }

    /// Files of generations the manifest does not name. Newer than the current one: a
    /// checkpoint that never reached its manifest; its bits (normally none) are merged
    /// into the current generation, which over-approximates and loses nothing. Older: a
    /// release that did not get to remove its files.
    fn settle_orphans(&self) -> Result<()> {
        let chain = self.chain.read().unwrap_or_else(|p| p.into_inner());
        let Some(current) = chain.last() else { return Ok(()) };
        let mut orphans: Vec<u64> = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(MirrorError::io(&self.dir, "read directory"))? {
            let e = e.map_err(MirrorError::io(&self.dir, "read directory"))?;
            if let Some(n) = e.file_name().to_str().and_then(gen_of) {
                if !chain.iter().any(|g| g.entry.number == n) && !orphans.contains(&n) {
                    orphans.push(n);
                }
            }
        }
        for &n in &orphans {
            if n > current.entry.number {
                // Unreadable means torn in its own creation: it never held a mark.
                if let Ok(bits) = DurableBitmap::read_only(gen_path(&self.dir, n)) {
                    if bits.size() == self.size && bits.granularity() == self.granularity {
                        current.bitmap.merge_words(&bits.snapshot_words())?;
                    }
                }
            }
            remove_gen_files(&self.dir, n)?;
        }
        if !orphans.is_empty() {
            sync_dir(&self.dir.join(MANIFEST))?;
        }
        Ok(())
    }

    /// The directory holding the chain.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes per bit of every generation's bitmap.
    pub fn granularity(&self) -> u64 {
        self.granularity
    }

    /// Size of the primary the chain tracks.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of the current generation.
    pub fn current(&self) -> u64 {
        self.chain.read().unwrap_or_else(|p| p.into_inner()).last().map_or(0, |g| g.entry.number)
    }

    /// Holds checkpoints off until dropped: take it before [`CheckpointGuard::mark`] and
    /// keep it until the data write is done.
    pub fn guard(&self) -> CheckpointGuard<'_> {
        CheckpointGuard { owner: self, _shared: self.boundary.read().unwrap_or_else(|p| p.into_inner()) }
    }

    fn check_poisoned(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(MirrorError::Poisoned {
                detail: format!("checkpoints in {}: an earlier manifest update may not be durable; reopen the chain", self.dir.display()),
            });
        }
        Ok(())
    }

    /// Freezes the current generation and starts a new, empty one; returns the new
    /// current generation's number. Waits for writers holding a guard to finish, and
    /// holds new ones off only for the manifest's update (two fsyncs and a rename): the
    /// new generation's bitmap is created before. E_IO if the manifest cannot be
    /// written (nothing changed); if its rename may not be durable, the chain is
    /// poisoned (E_IO from then on, reopen to continue).
    pub fn checkpoint(&self) -> Result<u64> {
        let _serial = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        self.check_poisoned()?;
        let mut entries: Vec<Entry> = self.chain.read().unwrap_or_else(|p| p.into_inner()).iter().map(|g| g.entry).collect();
        let current = entries.last().map_or(0, |e| e.number);
        let next = current + 1;
        // Until the manifest names it, this file is an orphan that a reopen removes.
        let bitmap = DurableBitmap::create(gen_path(&self.dir, next), self.size, self.granularity, true)?;
        let _exclusive = self.boundary.write().unwrap_or_else(|p| p.into_inner());
        let now = now_ns();
        if let Some(last) = entries.last_mut() {
            last.frozen_ns = Some(now);
        }
        let entry = Entry { number: next, started_ns: now, frozen_ns: None };
        entries.push(entry);
        match self.store(entries) {
            Ok(()) => {}
            Err(Stored::Before(e)) => {
                drop(bitmap);
                let _ = remove_gen_files(&self.dir, next);
                return Err(e);
            }
            // The manifest may name the new generation: its file stays for the reopen.
            Err(Stored::After(e)) => return Err(e),
        }
        let mut chain = self.chain.write().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = chain.last_mut() {
            last.entry.frozen_ns = Some(now);
        }
        chain.push(Gen { entry, bitmap });
        Ok(next)
    }

    /// Stores the manifest for `entries`; a failure after its rename poisons the chain,
    /// since what a reopen will find is then unknown.
    fn store(&self, entries: Vec<Entry>) -> std::result::Result<(), Stored> {
        let m = Manifest { size: self.size, granularity: self.granularity, entries };
        let r = m.store(&self.dir.join(MANIFEST), &self.dir.join(MANIFEST_TMP));
        if matches!(r, Err(Stored::After(_))) {
            self.poisoned.store(true, Ordering::Release);
        }
        r
    }

    /// Drops a frozen generation and removes its files. E_STATE for the current one,
    /// E_NOENT for a number the chain does not have (never had, or already released).
    /// The manifest is rewritten first, so a crash before the files are gone leaves
    /// orphans that the next open removes.
    pub fn release(&self, generation: u64) -> Result<()> {
        let _serial = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        self.check_poisoned()?;
        let entries: Vec<Entry> = {
            let chain = self.chain.read().unwrap_or_else(|p| p.into_inner());
            match chain.iter().position(|g| g.entry.number == generation) {
                None => return Err(self.unknown(generation)),
                Some(i) if i + 1 == chain.len() => {
                    return Err(MirrorError::State {
                        detail: format!(
                            "generation {generation} in {} is the current one; only frozen generations can be released",
                            self.dir.display()
                        ),
                    })
                }
                Some(_) => chain.iter().map(|g| g.entry).filter(|e| e.number != generation).collect(),
            }
        };
        self.store(entries).map_err(|(Stored::Before(e) | Stored::After(e))| e)?;
        let gone = {
            let mut chain = self.chain.write().unwrap_or_else(|p| p.into_inner());
            let i = chain.iter().position(|g| g.entry.number == generation);
            i.map(|i| chain.remove(i))
        };
        // Closed before its files go.
        drop(gone);
        remove_gen_files(&self.dir, generation)?;
        sync_dir(&self.dir.join(MANIFEST))
    }

    fn unknown(&self, generation: u64) -> MirrorError {
        MirrorError::NotFound { detail: format!("no checkpoint generation {generation} in {}", self.dir.display()) }
    }

    /// Every generation, oldest first; the last is the current one.
    pub fn generations(&self) -> Vec<Generation> {
        let chain = self.chain.read().unwrap_or_else(|p| p.into_inner());
        chain
            .iter()
            .map(|g| Generation {
                number: g.entry.number,
                frozen: g.entry.frozen_ns.is_some(),
                dirty_bytes: g.bitmap.bitmap().dirty_bytes(),
                started_ns: g.entry.started_ns,
                frozen_ns: g.entry.frozen_ns,
            })
            .collect()
    }

    /// `(len, dirty)` runs of one generation covering exactly `[offset, offset+len)`,
    /// split at granule boundaries and clipped to the range. E_NOENT for an unknown
    /// generation, E_RANGE past the end. For the current generation this is a moment's
    /// view; a frozen one no longer changes.
    pub fn extents(&self, generation: u64, offset: u64, len: u64) -> Result<Vec<(u64, bool)>> {
        let chain = self.chain.read().unwrap_or_else(|p| p.into_inner());
        let g = chain.iter().find(|g| g.entry.number == generation).ok_or_else(|| self.unknown(generation))?;
        plexus_volume::check_range(&format!("checkpoint generation {generation}"), offset, len, self.size)?;
        Ok(bit_extents(g.bitmap.bitmap(), offset, len))
    }
}

impl CheckpointGuard<'_> {
    /// Records a write of `[offset, offset+len)` in the current generation, durably
    /// (the bitmap's intent log is fsynced) before returning. Call it before writing
    /// the data, with this guard held until the write is done: a crash then leaves a
    /// mark without its write (an over-approximation), never a write without its mark.
    /// E_RANGE past the end; E_IO if the bitmap or the chain is poisoned.
    pub fn mark(&self, offset: u64, len: u64) -> Result<()> {
        let c = self.owner;
        c.check_poisoned()?;
        plexus_volume::check_range(&format!("checkpoints in {}", c.dir.display()), offset, len, c.size)?;
        let chain = c.chain.read().unwrap_or_else(|p| p.into_inner());
        let current =
            chain.last().ok_or_else(|| MirrorError::State { detail: format!("checkpoints in {} have no generation", c.dir.display()) })?;
        current.bitmap.mark_range(offset, len)?;
        Ok(())
    }

    /// The generation this guard's marks go to (no checkpoint can change it while held).
    pub fn generation(&self) -> u64 {
        self.owner.current()
    }
}
