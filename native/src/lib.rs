//! The napi-rs binding of the Plexus core. It converts types and errors only; every
//! decision lives in the crates under `crates/`.
#![deny(clippy::all)]

mod args;
mod bench;
mod bitmap;
mod channel;
mod copy;
mod error;
mod job;
mod lock;
mod mirror;
mod nbd;
mod replica;
mod tape;
mod volume;
mod xcopy;

pub use bench::{bitmap_durable_marks, mirror_checkpoint_costs, CheckpointCostTask, CheckpointCosts, DurableMarkRate, DurableMarkTask};
pub use bench::{bitmap_runs_ms, bitmap_set_ns, memcpy_bandwidth, BitmapRunsTiming};
pub use bench::{journal_replay_bench, mirror_write_path_ns, MirrorWritePath, ReplayTask, ReplayTiming, WriteCost, WritePathTask};
pub use bitmap::NativeBitmap;
pub use channel::{NativeDataListener, NativeShipper};
pub use copy::{CopyJob, CopyJobOptions, CopyProgress, CopyResult, Extent};
pub use lock::NativeOwnerLock;
pub use mirror::{MirrorJob, MirrorPaths, NativeMirror};
pub use nbd::{CheckpointGeneration, NativeNbdServer, NativePlex, NbdServerOptions};
pub use replica::{NativeApplier, NativeReplicaGroup};
pub use tape::{
    BlockWritten, CartridgeFormat, CartridgeLabel, NativeDrive, RestoreOptions, TapeFile, TapeFileWritten, TapeJob, TapeJobResult,
    TapePosition, TapeRecovery, TapeSpace,
};
pub use volume::{exchange_volume_data, random_bytes, NativeVolume, VolumeInfo};
pub use xcopy::{plan_segment_commands, XcopyChunk, XcopyCommand, XcopyJob, XcopyOptions, XcopyResult, XcopyStop};

/// Panics on purpose, on the calling thread or (`inTask`) in an async task's compute:
/// proves the boundary turns a panic into E_INTERNAL instead of aborting Node.
#[napi_derive::napi(catch_unwind, ts_return_type = "Promise<void> | void")]
pub fn panic_probe(in_task: bool) -> napi::Result<Option<napi::bindgen_prelude::AsyncTask<PanicTask>>> {
    if !in_task {
        panic!("panic probe");
    }
    Ok(Some(napi::bindgen_prelude::AsyncTask::new(PanicTask)))
}

/// The async half of [`panic_probe`].
pub struct PanicTask;

impl napi::Task for PanicTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        error::guard(|| panic!("panic probe in a task"))
    }

    fn resolve(&mut self, _env: napi::Env, _: ()) -> napi::Result<()> {
        Ok(())
    }
}
