//! The write path of one volume: the volume itself, the mirrors of its pairs (none for a
//! plain volume) and its dirty-bitmap checkpoints. The library's writes and the NBD
//! server's go through the same `Plex`, so a pair created or deleted while a client is
//! connected changes the path under that client, not beside it.

use plexus_mirror::{write_primary_all, write_zeroes_primary_all, Checkpoints, Mirror, MirrorError};
use plexus_replica::{Change, ReplicaError, ReplicaGroup};
use plexus_volume::{BlockDevice, VolumeError};
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// Why a plex operation failed: the volume's or the mirror engine's error, with its code.
#[derive(Debug)]
pub enum PlexError {
    /// From the volume (no pairs).
    Volume(VolumeError),
    /// From the mirrors or the checkpoints.
    Mirror(MirrorError),
    /// From the remote replication's write path.
    Replica(ReplicaError),
    /// The volume takes no writes from this site now (the secondary of a remote pair).
    Fenced { detail: String },
}

impl PlexError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            PlexError::Volume(e) => e.code(),
            PlexError::Mirror(e) => e.code(),
            PlexError::Replica(e) => e.code(),
            PlexError::Fenced { .. } => "E_STATE",
        }
    }
}

impl std::fmt::Display for PlexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlexError::Volume(e) => write!(f, "{e}"),
            PlexError::Mirror(e) => write!(f, "{e}"),
            PlexError::Replica(e) => write!(f, "{e}"),
            PlexError::Fenced { detail } => write!(f, "{detail}"),
        }
    }
}

impl std::error::Error for PlexError {}

impl From<VolumeError> for PlexError {
    fn from(e: VolumeError) -> Self {
        PlexError::Volume(e)
    }
}

impl From<ReplicaError> for PlexError {
    fn from(e: ReplicaError) -> Self {
        PlexError::Replica(e)
    }
}

impl From<MirrorError> for PlexError {
    fn from(e: MirrorError) -> Self {
        PlexError::Mirror(e)
    }
}

/// Shorthand for results of a plex.
pub type Result<T> = std::result::Result<T, PlexError>;

/// One volume's write path.
pub struct Plex {
    volume: Arc<dyn BlockDevice>,
    mirrors: RwLock<Vec<Arc<Mirror>>>,
    checkpoints: RwLock<Option<Arc<Checkpoints>>>,
    /// The remote consistency group the volume's changes are replicated by, and its id there.
    replica: RwLock<Option<(Arc<ReplicaGroup>, u32)>>,
    /// Why writes from this site are refused, while they are.
    fence: RwLock<Option<String>>,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // The guarded values are replaced whole, never left half-updated: a poisoned lock
    // still holds a consistent value.
    l.read().unwrap_or_else(|p| p.into_inner())
}

impl Plex {
    /// The write path of `volume`, without pairs or checkpoints yet.
    pub fn new(volume: Arc<dyn BlockDevice>) -> Self {
        Plex {
            volume,
            mirrors: RwLock::new(Vec::new()),
            checkpoints: RwLock::new(None),
            replica: RwLock::new(None),
            fence: RwLock::new(None),
        }
    }

    /// The volume's label.
    pub fn label(&self) -> &str {
        self.volume.label()
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.volume.size()
    }

    /// The volume.
    pub fn volume(&self) -> &Arc<dyn BlockDevice> {
        &self.volume
    }

    /// Replaces the mirrors writes go through (all of them plexes of this volume that
    /// share their region locks). Writes in flight finish on the old list.
    pub fn set_mirrors(&self, mirrors: Vec<Arc<Mirror>>) {
        *self.mirrors.write().unwrap_or_else(|p| p.into_inner()) = mirrors;
    }

    /// The mirrors writes go through now.
    pub fn mirrors(&self) -> Vec<Arc<Mirror>> {
        read(&self.mirrors).clone()
    }

    /// Starts or stops recording writes into dirty-bitmap checkpoints.
    pub fn set_checkpoints(&self, checkpoints: Option<Arc<Checkpoints>>) {
        *self.checkpoints.write().unwrap_or_else(|p| p.into_inner()) = checkpoints;
    }

    /// The checkpoints writes are recorded in, if any.
    pub fn checkpoints(&self) -> Option<Arc<Checkpoints>> {
        read(&self.checkpoints).clone()
    }

    /// Replicates the volume's changes through `group` as its member `id` (None: no longer).
    pub fn set_replica(&self, replica: Option<(Arc<ReplicaGroup>, u32)>) {
        *self.replica.write().unwrap_or_else(|p| p.into_inner()) = replica;
    }

    /// The group the volume is replicated by, if any.
    pub fn replica(&self) -> Option<(Arc<ReplicaGroup>, u32)> {
        read(&self.replica).clone()
    }

    /// Refuses writes from this site with `why` (E_STATE), or takes them again (None).
    /// Changes applied for a remote primary ([`Plex::write_local`]) are not refused.
    pub fn set_fence(&self, why: Option<String>) {
        *self.fence.write().unwrap_or_else(|p| p.into_inner()) = why;
    }

    /// Why writes are refused, if they are.
    pub fn fence(&self) -> Option<String> {
        read(&self.fence).clone()
    }

    fn check_fence(&self) -> Result<()> {
        match read(&self.fence).as_ref() {
            Some(why) => Err(PlexError::Fenced { detail: why.clone() }),
            None => Ok(()),
        }
    }

    /// Reads from the volume.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        Ok(self.volume.read_at(offset, buf)?)
    }

    /// Writes through the mirrors (duplexed, tracked or copy-on-write by each pair's
    /// mode), recorded first in the current checkpoint generation.
    /// Replicated last: the record of a change follows its checks, so a refused change is
    /// never shipped.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_fence()?;
        self.replicated(offset, data.len() as u64, Change::Write(data), || self.write_local(offset, data))
    }

    /// Zeroes a range through the mirrors as a write would (`punch`: may deallocate).
    pub fn write_zeroes(&self, offset: u64, len: u64, punch: bool) -> Result<()> {
        self.check_fence()?;
        self.replicated(offset, len, Change::Zeroes { punch }, || self.write_zeroes_local(offset, len, punch))
    }

    /// Writes through the mirrors and checkpoints but not the remote replication: a
    /// change that came from the remote primary (applied here), or one a reverse resync
    /// brings back. Not fenced.
    pub fn write_local(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.change(offset, data.len() as u64, |mirrors| match mirrors.is_empty() {
            true => Ok(self.volume.write_at(offset, data)?),
            false => Ok(write_primary_all(mirrors, offset, data)?),
        })
    }

    /// [`Plex::write_zeroes`] without the remote replication, as [`Plex::write_local`].
    pub fn write_zeroes_local(&self, offset: u64, len: u64, punch: bool) -> Result<()> {
        self.change(offset, len, |mirrors| match mirrors.is_empty() {
            true => Ok(self.volume.write_zeroes(offset, len, punch)?),
            false => Ok(write_zeroes_primary_all(mirrors, offset, len, punch)?),
        })
    }

    fn replicated(&self, offset: u64, len: u64, change: Change<'_>, local: impl FnOnce() -> Result<()>) -> Result<()> {
        plexus_volume::check_range(self.volume.label(), offset, len, self.volume.size())?;
        match self.replica() {
            Some((group, id)) => group.change(id, offset, len, change, local),
            None => local(),
        }
    }

    fn change(&self, offset: u64, len: u64, apply: impl FnOnce(&[&Mirror]) -> Result<()>) -> Result<()> {
        plexus_volume::check_range(self.volume.label(), offset, len, self.volume.size())?;
        let checkpoints = self.checkpoints();
        // Held across mark and write: a checkpoint cannot fall between the two, so the
        // write is in exactly one generation.
        let boundary = checkpoints.as_ref().map(|c| c.guard());
        if let Some(g) = &boundary {
            g.mark(offset, len)?;
        }
        let mirrors = read(&self.mirrors);
        let refs: Vec<&Mirror> = mirrors.iter().map(|m| m.as_ref()).collect();
        apply(&refs)
    }

    /// Makes every completed write durable: the volume and each secondary (the bitmaps'
    /// marks were durable before their writes were acknowledged). Across connections too:
    /// they all write these same files.
    pub fn flush(&self) -> Result<()> {
        // The journal too: a flushed write's record survives a power loss with it.
        if let Some((group, _)) = self.replica() {
            group.journal().sync().map_err(ReplicaError::from)?;
        }
        let mirrors = self.mirrors();
        if mirrors.is_empty() {
            self.volume.flush()?;
        }
        for m in &mirrors {
            m.flush_data()?;
        }
        Ok(())
    }
}
