//! Cross-process ownership locks as a JavaScript class.

use crate::error::to_js;
use napi_derive::napi;
use plexus_volume::OwnerLock;
use std::path::Path;
use std::sync::Mutex;

/// An exclusive lock on a file, released on `release()` or when the process exits.
#[napi]
pub struct NativeOwnerLock {
    inner: Mutex<Option<OwnerLock>>,
}

#[napi]
impl NativeOwnerLock {
    /// Takes the lock at `path` or throws E_BUSY naming the holder; `what` names the
    /// resource in the message.
    #[napi(factory, catch_unwind)]
    pub fn acquire(path: String, what: String) -> napi::Result<Self> {
        let lock = OwnerLock::try_acquire(Path::new(&path), &what).map_err(to_js)?;
        Ok(NativeOwnerLock { inner: Mutex::new(Some(lock)) })
    }

    /// Whether a live process holds the lock at `path`.
    #[napi(catch_unwind)]
    pub fn is_held(path: String) -> bool {
        OwnerLock::is_held(Path::new(&path))
    }

    /// Releases the lock (idempotent).
    #[napi(catch_unwind)]
    pub fn release(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.take();
        }
    }
}
