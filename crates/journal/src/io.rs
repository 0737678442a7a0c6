//! The durability calls behind one small trait (STYLE habit 5), so a test can count
//! fdatasyncs, fail the Nth one, or model a crash, on the real code path.

use std::fs::File;
use std::io;
use std::path::Path;

/// How the journal makes a file's data, or a directory's entries, durable.
pub trait SyncIo: Send + Sync {
    /// `fdatasync(2)` of a segment or state file.
    fn sync_file(&self, file: &File) -> io::Result<()>;
    /// `fsync(2)` of a directory, making creates, renames and unlinks in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real thing: `fdatasync` and a directory `fsync`.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsSync;

impl SyncIo for OsSync {
    fn sync_file(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}
