//! How the core's stable error codes reach an NBD client as errno values.

use plexus_mirror::MirrorError;
use plexus_nbd::{Errno, IoFailure};
use plexus_volume::VolumeError;

/// The errno a client is told for a core error code.
pub fn errno_of(code: &str) -> Errno {
    match code {
        // A write the pair's state or the export's attributes refuse.
        "E_READONLY" | "E_STATE" | "E_ACCESS" => Errno::Perm,
        "E_RANGE" | "E_INVALID" => Errno::Inval,
        "E_NOSPC" => Errno::NoSpc,
        _ => Errno::Io,
    }
}

/// A mirror error as the client sees it.
pub fn from_mirror(e: &MirrorError) -> IoFailure {
    IoFailure::new(errno_of(e.code()), format!("{}: {e}", e.code()))
}

/// A volume error as the client sees it.
pub fn from_volume(e: &VolumeError) -> IoFailure {
    IoFailure::new(errno_of(e.code()), format!("{}: {e}", e.code()))
}
