//! The cost of cutting a transfer into segment commands: one volume executed as commands
//! of several sizes onto a cartridge in a directory (tmpfs shows CPU costs alone).
//!
//! `cargo run --release -p plexus-xcopy --example chunking -- [DIR] [SIZE_MIB] [ROUNDS]`

use plexus_tape::{close_segment, CopyControl, Drive, FormatOptions};
use plexus_volume::{fill, Fill, Volume};
use plexus_xcopy::{execute, plan_chunks, DeviceOptions};
use std::path::PathBuf;
use std::time::Instant;

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).map_or("/dev/shm", |s| s.as_str()));
    let mib: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    let size = mib << 20;
    let scratch = tempfile::tempdir()?;
    let vol = Volume::create(&scratch.path().join("src.vol"), size, 4096)?;
    fill(&vol, 0, size, Fill::Random(5))?;
    for round in 0..rounds {
        for chunk in [size, 100 << 20, 10 << 20, 1 << 20] {
            let path = dir.join(format!("plexus-chunking-{}.tape", std::process::id()));
            let mut o = FormatOptions::new("BENCH1L9", size + size / 8 + (64 << 20));
            o.block_size = 256 * 1024;
            let mut drive = Drive::format(&path, &o)?;
            let cmds = plan_chunks(0, size, chunk)?;
            let t = Instant::now();
            let r = execute(&mut drive, &vol, &cmds, &DeviceOptions::default(), &CopyControl::new());
            let run = t.elapsed();
            close_segment(&mut drive, None)?;
            let all = t.elapsed();
            assert!(r.stop.is_none());
            println!(
                "round {round} chunk {:>5} MiB: {:>3} commands, execute {:.3} s, with close {:.3} s",
                chunk >> 20,
                cmds.len(),
                run.as_secs_f64(),
                all.as_secs_f64()
            );
            drive.unload()?;
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}
