//! EXTENDED COPY for Plexus (JP 2001-095789, Fig. 11 and 12). A backup in chunked mode
//! cuts its volume into *segment commands* — source offset and length, written at the
//! target cartridge's position — and hands them to a *copy device*, which moves the
//! data without the backup server touching it. Each command completes or fails on its
//! own; a command that outlives its timeout stops the device. The commands left over,
//! starting with the one that failed, go to another stream's device: the backup
//! manager (TypeScript) decides where, this crate does the moving.
#![deny(unsafe_code)]

pub mod command;
pub mod device;

pub use command::{plan_chunks, SegmentCommand, DEFAULT_CHUNK};
pub use device::{execute, execute_detached, Completed, Detached, DeviceOptions, Stop, XcopyReport, DEFAULT_GRACE};
