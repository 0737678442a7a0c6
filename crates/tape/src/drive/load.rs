//! Formatting a blank cartridge and loading one into a drive.

use super::{io_err, Drive, FormatOptions, Position};
use crate::error::{Result, TapeError};
use crate::format::{check_geometry, default_early_warning, valid_barcode, Content, Header, Kind, Label, FORMAT_VERSION, LABEL_LEN};
use crate::medium::{FileMedium, Medium};
use crate::scan::scan;
use plexus_volume::Access;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

impl Drive {
    /// Formats a new blank cartridge file at `path` (label, then EOD) and loads it.
    /// E_EXISTS if the file exists, E_INVALID for a bad barcode or geometry.
    pub fn format(path: &Path, opts: &FormatOptions) -> Result<Drive> {
        if !valid_barcode(&opts.barcode) {
            return Err(TapeError::Invalid { detail: format!("barcode {:?} must be 1-32 characters of A-Z a-z 0-9 . _ -", opts.barcode) });
        }
        let ew = opts.early_warning.unwrap_or_else(|| default_early_warning(opts.capacity, opts.block_size));
        check_geometry(opts.capacity, opts.block_size, ew)?;
        let label = Label {
            barcode: opts.barcode.clone(),
            capacity: opts.capacity,
            early_warning: ew,
            block_size: opts.block_size,
            created_ns: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0),
            medium_id: random_id().map_err(|e| io_err(&opts.barcode, "read /dev/urandom", e))?,
            version: FORMAT_VERSION,
        };
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => TapeError::Exists { path: path.to_owned() },
            _ => io_err(&opts.barcode, "create", e),
        })?;
        let eod = Header { kind: Kind::EndOfData, content: Content::Raw, file: 0, len: 0, block: 0, crc: 0 }.encode();
        let m = FileMedium::new(file);
        let written = m.write_at(0, &[&label.encode(), &eod]).and_then(|()| m.sync()).and_then(|()| sync_parent(path));
        if let Err(e) = written {
            // A half-formatted file is worth nothing; leave no trace of it.
            let _ = std::fs::remove_file(path);
            return Err(io_err(&opts.barcode, "format", e));
        }
        drop(m);
        Drive::open(path, Access::ReadWrite)
    }

    /// Loads an existing cartridge: validates the label and scans the record headers.
    pub fn open(path: &Path, access: Access) -> Result<Drive> {
        let name = path.display().to_string();
        let file = OpenOptions::new().read(true).write(access == Access::ReadWrite).open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => TapeError::NotFound { path: path.to_owned() },
            _ => io_err(&name, "open", e),
        })?;
        lock(&file, access, &name)?;
        Drive::with_medium(Box::new(FileMedium::new(file)), path, access)
    }

    /// Loads a cartridge from any medium (tests put fault-injecting ones here).
    pub fn with_medium(medium: Box<dyn Medium>, path: &Path, access: Access) -> Result<Drive> {
        let name = path.display().to_string();
        let mut buf = vec![0u8; LABEL_LEN as usize];
        let len = medium.size().map_err(|e| io_err(&name, "stat", e))?;
        if len < LABEL_LEN {
            return Err(TapeError::Corrupt {
                cartridge: name,
                file: None,
                block: None,
                detail: format!("file is {len} bytes, shorter than a label"),
            });
        }
        medium.read_at(0, &mut buf).map_err(|e| io_err(&name, "read label", e))?;
        let label = Label::decode(&buf, &name)?;
        let s = scan(medium.as_ref(), &label).map_err(|e| io_err(&label.barcode, "scan", e))?;
        Ok(Drive {
            medium,
            path: path.to_owned(),
            label,
            files: s.files,
            end: s.end,
            medium_len: s.medium_len,
            pending: None,
            pos: Position { file: 0, block: 0 },
            read_only: access == Access::ReadOnly,
            poisoned: false,
            recovery: s.recovery,
            written_back: s.end,
        })
    }
}

/// Locks the cartridge file so that two drives never load it at once; the lock goes
/// with the descriptor, so a killed process never leaves it held.
fn lock(file: &File, access: Access, name: &str) -> Result<()> {
    let r = match access {
        Access::ReadWrite => file.try_lock(),
        Access::ReadOnly => file.try_lock_shared(),
    };
    match r {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(TapeError::Busy { cartridge: name.to_owned(), detail: "loaded in another drive".into() }),
        Err(TryLockError::Error(e)) => Err(io_err(name, "lock", e)),
    }
}

fn random_id() -> io::Result<[u8; 16]> {
    let mut b = [0u8; 16];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}
