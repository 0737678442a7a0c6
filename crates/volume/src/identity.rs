//! The identity file persisted beside each volume: size, block size and a unique
//! identifier (like a SCSI INQUIRY device identifier), so a copy can be found by
//! identity rather than by path. Format: docs/volume-format.md.

use crate::error::{Result, VolumeError};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const MAGIC: &[u8; 8] = b"PLXVOL\0\0";
const VERSION: u32 = 1;
/// Length of the identity file in bytes.
pub const IDENTITY_LEN: usize = 64;

/// Smallest and largest block size a volume may have.
pub const MIN_BLOCK_SIZE: u32 = 512;
/// Largest block size a volume may have (1 MiB).
pub const MAX_BLOCK_SIZE: u32 = 1 << 20;

/// A volume's unique 128-bit identifier, printed as an NAA-6 style hex string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VolumeId(pub [u8; 16]);

impl VolumeId {
    /// A fresh random identifier with the NAA "6" (registered extended) nibble.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 16];
        File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).map_err(|e| VolumeError::io("/dev/urandom", "read", e))?;
        bytes[0] = 0x60 | (bytes[0] & 0x0f);
        Ok(VolumeId(bytes))
    }

    /// Lower-case hex, 32 digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What the identity file records about a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Unique identifier.
    pub id: VolumeId,
    /// Size in bytes; the data file has exactly this length.
    pub size: u64,
    /// Block size in bytes, a power of two from 512 B to 1 MiB.
    pub block_size: u32,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
}

/// Path of the identity file that belongs to data file `data`.
pub fn identity_path(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_owned();
    s.push(".meta");
    PathBuf::from(s)
}

/// Checks a block size: a power of two between 512 B and 1 MiB.
pub fn validate_block_size(block_size: u64) -> Result<u32> {
    let ok = block_size.is_power_of_two() && (u64::from(MIN_BLOCK_SIZE)..=u64::from(MAX_BLOCK_SIZE)).contains(&block_size);
    if !ok {
        return Err(VolumeError::Invalid { detail: format!("block size {block_size} must be a power of two from 512 to 1048576") });
    }
    Ok(block_size as u32)
}

impl Identity {
    /// A new identity for a volume of `size` bytes.
    pub fn new(size: u64, block_size: u32) -> Result<Self> {
        let created_ns = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        Ok(Identity { id: VolumeId::generate()?, size, block_size, created_ns })
    }

    /// The 64-byte on-disk encoding.
    pub fn encode(&self) -> [u8; IDENTITY_LEN] {
        let mut b = [0u8; IDENTITY_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.block_size.to_le_bytes());
        b[16..24].copy_from_slice(&self.size.to_le_bytes());
        b[24..40].copy_from_slice(&self.id.0);
        b[40..48].copy_from_slice(&self.created_ns.to_le_bytes());
        let crc = crc32fast::hash(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and validates the on-disk encoding; any defect is E_CORRUPT.
    pub fn decode(path: &Path, b: &[u8]) -> Result<Self> {
        let corrupt = |detail: &str| VolumeError::Corrupt { path: path.to_owned(), detail: detail.to_owned() };
        let b: &[u8; IDENTITY_LEN] = b.try_into().map_err(|_| corrupt("identity file has the wrong length"))?;
        if &b[0..8] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        if u32_at(60) != crc32fast::hash(&b[0..60]) {
            return Err(corrupt("checksum mismatch"));
        }
        if u32_at(8) != VERSION {
            return Err(corrupt(&format!("unsupported version {}", u32_at(8))));
        }
        let block_size = validate_block_size(u64::from(u32_at(12))).map_err(|_| corrupt("bad block size"))?;
        let size = u64_at(16);
        if size == 0 {
            return Err(corrupt("zero size"));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[24..40]);
        Ok(Identity { id: VolumeId(id), size, block_size, created_ns: u64_at(40) })
    }

    /// Reads the identity file of data file `data`.
    pub fn load(data: &Path) -> Result<Self> {
        let path = identity_path(data);
        let bytes = fs::read(&path).map_err(|e| VolumeError::io(&path, "read", e))?;
        Identity::decode(&path, &bytes)
    }

    /// Writes the identity file atomically (temporary file, fsync, rename, fsync dir).
    pub fn store(&self, data: &Path) -> Result<()> {
        let path = identity_path(data);
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f =
            OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(|e| VolumeError::io(&tmp, "create", e))?;
        f.write_all(&self.encode()).map_err(|e| VolumeError::io(&tmp, "write", e))?;
        f.sync_all().map_err(|e| VolumeError::io(&tmp, "fsync", e))?;
        fs::rename(&tmp, &path).map_err(|e| VolumeError::io(&path, "rename", e))?;
        sync_parent(&path)
    }
}

/// Makes a rename or a file creation in `path`'s directory durable.
pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| VolumeError::io(dir, "fsync directory", e))
}
