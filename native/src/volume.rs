//! Volumes as a JavaScript class.

use crate::error::{to_js, to_u64};
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;
use plexus_volume::{Access, BlockDevice, Fill, Volume};
use std::path::Path;
use std::sync::Arc;

/// A volume's persisted identity and geometry.
#[napi(object)]
pub struct VolumeInfo {
    /// Unique identifier, 32 hex digits.
    pub id: String,
    /// Size in bytes.
    pub size: f64,
    /// Block size in bytes.
    pub block_size: u32,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: f64,
    /// Path of the data file.
    pub path: String,
    /// Whether this handle refuses writes.
    pub read_only: bool,
}

/// An open volume file.
#[napi]
pub struct NativeVolume {
    pub(crate) inner: Arc<Volume>,
}

#[napi]
impl NativeVolume {
    /// Creates a sparse volume of `size` bytes and opens it read-write.
    #[napi(factory, catch_unwind)]
    pub fn create(path: String, size: f64, block_size: f64) -> napi::Result<Self> {
        let v = Volume::create(Path::new(&path), to_u64("size", size)?, to_u64("block size", block_size)?).map_err(to_js)?;
        Ok(NativeVolume { inner: Arc::new(v) })
    }

    /// Opens an existing volume.
    #[napi(factory, catch_unwind)]
    pub fn open(path: String, read_only: Option<bool>) -> napi::Result<Self> {
        let access = if read_only.unwrap_or(false) { Access::ReadOnly } else { Access::ReadWrite };
        let v = Volume::open(Path::new(&path), access).map_err(to_js)?;
        Ok(NativeVolume { inner: Arc::new(v) })
    }

    /// Deletes a volume's data and identity files.
    #[napi(catch_unwind)]
    pub fn remove(path: String) -> napi::Result<()> {
        Volume::remove(Path::new(&path)).map_err(to_js)
    }

    /// Identity and geometry.
    #[napi(catch_unwind)]
    pub fn info(&self) -> VolumeInfo {
        let id = self.inner.identity();
        VolumeInfo {
            id: id.id.to_hex(),
            size: id.size as f64,
            block_size: id.block_size,
            created_ms: (id.created_ns / 1_000_000) as f64,
            path: self.inner.path().to_string_lossy().into_owned(),
            read_only: self.inner.is_read_only(),
        }
    }

    /// Reads `length` bytes at `offset`.
    #[napi(catch_unwind)]
    pub fn read(&self, offset: f64, length: f64) -> napi::Result<Buffer> {
        let len = crate::args::buffer_len("length", length)? as u64;
        let off = to_u64("offset", offset)?;
        plexus_volume::check_range(self.inner.name(), off, len, self.inner.size()).map_err(to_js)?;
        let mut buf = vec![0u8; len as usize];
        self.inner.read_at(off, &mut buf).map_err(to_js)?;
        Ok(buf.into())
    }

    /// Writes `data` at `offset`.
    #[napi(catch_unwind)]
    pub fn write(&self, offset: f64, data: Buffer) -> napi::Result<()> {
        self.inner.write_at(to_u64("offset", offset)?, &data).map_err(to_js)
    }

    /// Makes every acknowledged write durable (fsync).
    #[napi(catch_unwind)]
    pub fn flush(&self) -> napi::Result<()> {
        self.inner.flush().map_err(to_js)
    }

    /// SHA-256 of a byte range (default: the whole volume), computed off the JS thread.
    #[napi(ts_return_type = "Promise<string>", catch_unwind)]
    pub fn checksum(&self, offset: Option<f64>, length: Option<f64>) -> napi::Result<AsyncTask<ChecksumTask>> {
        let off = to_u64("offset", offset.unwrap_or(0.0))?;
        let len = match length {
            Some(l) => to_u64("length", l)?,
            None => self.inner.size().saturating_sub(off),
        };
        Ok(AsyncTask::new(ChecksumTask { volume: self.inner.clone(), offset: off, length: len }))
    }
}

/// Hashes a range of a volume on the libuv pool.
pub struct ChecksumTask {
    volume: Arc<Volume>,
    offset: u64,
    length: u64,
}

impl Task for ChecksumTask {
    type Output = String;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<String> {
        crate::error::guard(|| self.volume.checksum(self.offset, self.length).map_err(to_js))
    }

    fn resolve(&mut self, _env: Env, output: String) -> napi::Result<String> {
        Ok(output)
    }
}

/// What `fill` writes: one byte value, or pseudo-random bytes from a seed.
#[napi(object)]
pub struct FillOptions {
    /// A byte value 0-255.
    pub pattern: Option<f64>,
    /// A seed for reproducible pseudo-random data.
    pub seed: Option<f64>,
}

#[napi]
impl NativeVolume {
    /// Fills a range with a pattern or seeded random bytes, off the JS thread.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn fill(&self, offset: f64, length: f64, what: FillOptions) -> napi::Result<AsyncTask<FillTask>> {
        let fill = match (what.pattern, what.seed) {
            (Some(p), None) => Fill::Pattern(crate::args::to_u64_max("pattern", p, 255)? as u8),
            (None, Some(s)) => Fill::Random(to_u64("seed", s)?),
            _ => return Err(crate::error::coded("E_INVALID", "fill needs exactly one of pattern (0-255) or seed")),
        };
        Ok(AsyncTask::new(FillTask {
            volume: self.inner.clone(),
            offset: to_u64("offset", offset)?,
            length: to_u64("length", length)?,
            fill,
        }))
    }
}

/// A fill on the libuv pool.
pub struct FillTask {
    volume: Arc<Volume>,
    offset: u64,
    length: u64,
    fill: Fill,
}

impl Task for FillTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        crate::error::guard(|| plexus_volume::fill(self.volume.as_ref(), self.offset, self.length, self.fill).map_err(to_js))
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}

/// The seeded pseudo-random bytes `volume write --random` writes at `offset`.
#[napi(catch_unwind)]
pub fn random_bytes(seed: f64, offset: f64, length: f64) -> napi::Result<Buffer> {
    let mut b = vec![0u8; crate::args::buffer_len("length", length)?];
    plexus_volume::random_bytes(to_u64("seed", seed)?, to_u64("offset", offset)?, &mut b);
    Ok(b.into())
}

/// Swaps the data files of two equal-sized volumes atomically, without copying.
#[napi(catch_unwind)]
pub fn exchange_volume_data(a: String, b: String) -> napi::Result<()> {
    plexus_volume::exchange_data(Path::new(&a), Path::new(&b)).map_err(to_js)
}
