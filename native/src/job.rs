//! What the pollable native jobs share: a plan that runs once, and (tape jobs) the
//! drive they run on, held for the whole run on a libuv thread.

use crate::error::coded;
use plexus_tape::Drive;
use std::sync::Mutex;

/// Takes a job's plan; E_BUSY naming `what` if the job was started before.
pub(crate) fn take_plan<T>(slot: &Mutex<Option<T>>, what: &str) -> napi::Result<T> {
    slot.lock().ok().and_then(|mut p| p.take()).ok_or_else(|| coded("E_BUSY", format!("this {what} has already been started")))
}

/// Runs `f` on the cartridge loaded in `drive`, waiting for the drive (off the JS
/// thread only); E_BUSY if none is loaded.
pub(crate) fn on_loaded_drive<R>(drive: &Mutex<Option<Drive>>, f: impl FnOnce(&mut Drive) -> napi::Result<R>) -> napi::Result<R> {
    let mut guard = drive.lock().unwrap_or_else(|p| p.into_inner());
    let drive = guard.as_mut().ok_or_else(|| coded("E_BUSY", "no cartridge is loaded in this drive"))?;
    f(drive)
}
