//! A file (or block device) served as an export: positional reads and writes, holes
//! punched for trim and zeroing, and `base:allocation` from SEEK_DATA/SEEK_HOLE.

use crate::export::{Errno, Export, Extent, IoFailure};
use crate::proto::consts::{BASE_ALLOCATION, STATE_HOLE, STATE_ZERO};
use rustix::fs::{fadvise, fallocate, seek, Advice, FallocateFlags, SeekFrom};
use std::fs::{File, OpenOptions};
use std::io;
use std::num::NonZeroU64;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Most extents one block-status call looks up; the client asks again from where the
/// answer ends, and a heavily fragmented file cannot make one request expensive.
const MAX_LOOKUPS: usize = 1024;
/// Zeroes written per call where the filesystem cannot zero by itself.
const ZERO_CHUNK: usize = 1 << 20;

/// A file served as an export. All connections share the one descriptor, so a flush on
/// any of them covers writes made through all (NBD_FLAG_CAN_MULTI_CONN holds).
pub struct FileExport {
    file: File,
    size: u64,
    read_only: bool,
}

fn failure(e: rustix::io::Errno) -> IoFailure {
    IoFailure::from(io::Error::from(e))
}

impl FileExport {
    /// Opens `path` (read-write unless `read_only`); the size is the file's size now.
    pub fn open(path: &Path, read_only: bool) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(!read_only).open(path)?;
        Self::from_file(file, read_only)
    }

    /// Serves an already open file.
    pub fn from_file(file: File, read_only: bool) -> io::Result<Self> {
        // SEEK_END works for block devices too, whose metadata length is 0.
        let size = seek(&file, SeekFrom::End(0))?;
        Ok(FileExport { file, size, read_only })
    }

    /// The server checks ranges first; this keeps direct callers from overflowing too.
    fn check(&self, offset: u64, len: u64) -> Result<(), IoFailure> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(IoFailure::new(Errno::Inval, "range passes the end of the export")),
        }
    }

    fn sync(&self, fua: bool) -> Result<(), IoFailure> {
        if fua {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Zeroes by the filesystem alone: a hole when allowed, else an allocated zero range.
    fn zero_in_place(&self, offset: u64, len: u64, may_trim: bool) -> rustix::io::Result<()> {
        let keep = FallocateFlags::KEEP_SIZE;
        if may_trim && fallocate(&self.file, FallocateFlags::PUNCH_HOLE | keep, offset, len).is_ok() {
            return Ok(());
        }
        fallocate(&self.file, FallocateFlags::ZERO_RANGE | keep, offset, len)
    }

    fn write_zero_bytes(&self, offset: u64, len: u64) -> Result<(), IoFailure> {
        let zeros = vec![0u8; ZERO_CHUNK.min(usize::try_from(len).unwrap_or(ZERO_CHUNK))];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(zeros.len() as u64) as usize;
            self.file.write_all_at(zeros.get(..n).unwrap_or_default(), offset + done)?;
            done += n as u64;
        }
        Ok(())
    }
}

impl Export for FileExport {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoFailure> {
        self.check(offset, buf.len() as u64)?;
        self.file.read_exact_at(buf, offset).map_err(|e| {
            // A file truncated under the export reads short: say so rather than "EOF".
            if e.kind() == io::ErrorKind::UnexpectedEof {
                IoFailure::new(Errno::Io, "file is shorter than the export (truncated while served?)")
            } else {
                e.into()
            }
        })
    }
    fn write(&self, offset: u64, data: &[u8], fua: bool) -> Result<(), IoFailure> {
        self.check(offset, data.len() as u64)?;
        self.file.write_all_at(data, offset)?;
        self.sync(fua)
    }
    fn flush(&self) -> Result<(), IoFailure> {
        Ok(self.file.sync_data()?)
    }
    fn trim(&self, offset: u64, len: u64, fua: bool) -> Result<(), IoFailure> {
        // Trim is advisory: a filesystem without hole punching simply keeps the data.
        let _ = fallocate(&self.file, FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, offset, len);
        self.sync(fua)
    }
    fn write_zeroes(&self, offset: u64, len: u64, may_trim: bool, fua: bool) -> Result<(), IoFailure> {
        self.check(offset, len)?;
        if self.zero_in_place(offset, len, may_trim).is_err() {
            self.write_zero_bytes(offset, len)?;
        }
        self.sync(fua)
    }
    fn fast_zero(&self, offset: u64, len: u64, may_trim: bool, fua: bool) -> Result<(), IoFailure> {
        self.check(offset, len)?;
        self.zero_in_place(offset, len, may_trim).map_err(|_| IoFailure::new(Errno::NotSup, "filesystem cannot zero in place"))?;
        self.sync(fua)
    }
    fn cache(&self, offset: u64, len: u64) -> Result<(), IoFailure> {
        fadvise(&self.file, offset, NonZeroU64::new(len), Advice::WillNeed).map_err(failure)
    }
    fn block_status(&self, context: &str, offset: u64, len: u64) -> Result<Vec<Extent>, IoFailure> {
        if context != BASE_ALLOCATION {
            return Err(IoFailure::new(Errno::Inval, format!("unknown context {context}")));
        }
        let end = offset.saturating_add(len).min(self.size);
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < end && out.len() < MAX_LOOKUPS {
            let data = match seek(&self.file, SeekFrom::Data(pos)) {
                Ok(d) => d,
                // No data after `pos`: the rest of the file is one hole.
                Err(rustix::io::Errno::NXIO) => self.size,
                // No SEEK_DATA here: claim data, which is always safe for base:allocation.
                Err(_) if out.is_empty() => return Ok(vec![Extent { len: end - pos, flags: 0 }]),
                Err(e) => return Err(failure(e)),
            };
            if data > pos {
                let hole_end = data.min(self.size);
                out.push(Extent { len: hole_end - pos, flags: STATE_HOLE | STATE_ZERO });
                pos = hole_end;
                continue;
            }
            let hole = seek(&self.file, SeekFrom::Hole(pos)).map_err(failure)?.min(self.size);
            if hole <= pos {
                // The file changed under us; report the rest as data rather than loop.
                out.push(Extent { len: end - pos, flags: 0 });
                break;
            }
            out.push(Extent { len: hole - pos, flags: 0 });
            pos = hole;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_zeroes_and_maps_holes() {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        f.as_file().set_len(4 << 20).expect("size");
        let e = FileExport::open(f.path(), false).expect("open");
        assert_eq!(e.size(), 4 << 20);
        e.write(1 << 20, &[0xab; 65536], true).expect("write");
        let mut buf = vec![0; 65536];
        e.read(1 << 20, &mut buf).expect("read");
        assert!(buf.iter().all(|&b| b == 0xab));
        let map = e.block_status(BASE_ALLOCATION, 0, 4 << 20).expect("map");
        assert_eq!(map.iter().map(|x| x.len).sum::<u64>(), 4 << 20);
        assert_eq!(map.first().map(|x| x.flags), Some(STATE_HOLE | STATE_ZERO));
        assert!(map.iter().any(|x| x.flags == 0));
        e.write_zeroes(1 << 20, 65536, true, false).expect("zero");
        e.read(1 << 20, &mut buf).expect("read");
        assert!(buf.iter().all(|&b| b == 0));
        e.trim(0, 4096, false).expect("trim");
        e.cache(0, 4096).expect("cache");
        e.flush().expect("flush");
        assert!(e.read(4 << 20, &mut buf).is_err());
        let ro = FileExport::open(f.path(), true).expect("open read-only");
        assert!(ro.read_only());
        assert!(ro.write(0, &[1], false).is_err());
    }
}
