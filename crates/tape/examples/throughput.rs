//! Backup and restore throughput against `dd bs=4M conv=fsync` on the same bytes, and a
//! job spread over 8 cartridges against one. Warm page cache on both sides.
//!
//! `cargo run --release -p plexus-tape --example throughput -- [SIZE_MIB] [ROUNDS]`

use plexus_tape::{
    read_segment, write_file, write_segment, Content, CopyControl, DeviceSink, Drive, EndedBy, FileSink, FormatOptions, ReadRequest,
};
use plexus_volume::{fill, Fill, Volume};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Runs dd; returns (wall seconds, CPU seconds as /usr/bin/time reports them).
fn dd(from: &Path, to: &Path) -> Res<(f64, f64)> {
    let t = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%U %S", "dd"])
        .arg(format!("if={}", from.display()))
        .arg(format!("of={}", to.display()))
        .args(["bs=4M", "conv=fsync,notrunc", "status=none"])
        .output()?;
    if !out.status.success() {
        return Err("dd failed".into());
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = String::from_utf8_lossy(&out.stderr).split_whitespace().filter_map(|w| w.parse::<f64>().ok()).sum();
    Ok((wall, cpu))
}

/// CPU seconds this process has used, all threads (utime + stime from /proc).
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<f64> = after.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    // Fields 14 and 15 of stat; 12 and 13 counting from after the command name.
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / 100.0
}

/// Formats `n` blank cartridges of `capacity` bytes (library set-up, not timed).
fn blanks(dir: &Path, tag: &str, n: usize, capacity: u64) -> Res<()> {
    for i in 0..n {
        let path = dir.join(format!("{tag}{i:02}.tape"));
        let _ = std::fs::remove_file(&path);
        Drive::format(&path, &FormatOptions::new(&format!("{tag}{i:02}"), capacity))?.unload()?;
    }
    Ok(())
}

/// The job: writes `size` bytes of `src` over the blank cartridges `tag*`, loading
/// each, writing a segment and a catalog file, unloading; returns (seconds, cartridges).
fn backup(dir: &Path, src: &Volume, size: u64, tag: &str) -> Res<(f64, usize)> {
    let t = Instant::now();
    let mut at = 0;
    let mut n = 0;
    while at < size {
        let mut drive = Drive::open(&dir.join(format!("{tag}{n:02}.tape")), plexus_volume::Access::ReadWrite)?;
        let r = write_segment(&mut drive, src, at, size - at, &CopyControl::new())?;
        write_file(&mut drive, format!("{at} {} {}", r.bytes, r.digest.to_hex()).as_bytes(), Content::Catalog)?;
        drive.unload()?;
        at += r.bytes;
        n += 1;
        if r.ended_by == EndedBy::Complete {
            break;
        }
    }
    Ok((t.elapsed().as_secs_f64(), n))
}

/// Best wall time of several rounds, with the CPU time of that round.
#[derive(Clone, Copy)]
struct Best(f64, f64);

impl Best {
    fn keep(&mut self, wall: f64, cpu: f64) {
        if wall < self.0 {
            *self = Best(wall, cpu);
        }
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let size = mib << 20;
    let dir = tempfile::tempdir_in(std::env::var("TAPE_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))?;
    let d = dir.path();
    let src = Volume::create(&d.join("src.img"), size, 4096)?;
    fill(&src, 0, size, Fill::Random(42))?;
    let dst = Volume::create(&d.join("dst.img"), size, 4096)?;
    let gib = size as f64 / (1u64 << 30) as f64;
    let none = Best(f64::MAX, 0.0);
    let (mut dd_w, mut dd_r, mut bk, mut rs, mut bk8) = (none, none, none, none, none);
    let (mut rf, mut dd_f) = (none, none);
    let mut cartridges8 = 0;
    for round in 0..rounds {
        let _ = std::fs::remove_file(d.join("dd.out"));
        let (w, c) = dd(&d.join("src.img"), &d.join("dd.out"))?;
        dd_w.keep(w, c);
        blanks(d, "ONE", 1, size + (64 << 20))?;
        let c0 = cpu();
        let (t, _) = backup(d, &src, size, "ONE")?;
        bk.keep(t, cpu() - c0);
        // Restore: read the cartridge back into a volume, every checksum verified.
        let mut drive = Drive::open(&d.join("ONE00.tape"), plexus_volume::Access::ReadOnly)?;
        let (c0, t) = (cpu(), Instant::now());
        read_segment(&mut drive, &ReadRequest::default(), &mut DeviceSink::new(&dst, 0, true), &CopyControl::new())?;
        rs.keep(t.elapsed().as_secs_f64(), cpu() - c0);
        drop(drive);
        let (w, c) = dd(&d.join("ONE00.tape"), &d.join("dst.img"))?;
        dd_r.keep(w, c);
        // The same into a plain file (what `plexus restore --to FILE` does).
        let mut drive = Drive::open(&d.join("ONE00.tape"), plexus_volume::Access::ReadOnly)?;
        let (c0, t) = (cpu(), Instant::now());
        let mut sink = FileSink::open(&d.join("out.img"), 0)?;
        read_segment(&mut drive, &ReadRequest::default(), &mut sink, &CopyControl::new())?;
        rf.keep(t.elapsed().as_secs_f64(), cpu() - c0);
        drop(drive);
        let (w, c) = dd(&d.join("ONE00.tape"), &d.join("out.img"))?;
        dd_f.keep(w, c);
        // Eight cartridges: capacity chosen so the segment spans exactly eight.
        let per = size / 8;
        let cap = per + per / 100 * 2 + (16 << 20);
        blanks(d, "EIGHT", 8, cap)?;
        let c0 = cpu();
        let (t, n) = backup(d, &src, size, "EIGHT")?;
        bk8.keep(t, cpu() - c0);
        cartridges8 = n;
        eprintln!(
            "round {round}: dd {:.3}s backup {:.3}s restore {:.3}s dd-restore {:.3}s 8-cart {:.3}s",
            dd_w.0, bk.0, rs.0, dd_r.0, bk8.0
        );
    }
    let line = |what: &str, b: Best| println!("{what:<40} {:>6.3} s {:>6.2} GiB/s  cpu {:>5.2} s", b.0, gib / b.0, b.1);
    println!("size {mib} MiB, best of {rounds} (wall), dd and Plexus fsync at the end");
    line("dd bs=4M conv=fsync (volume -> file)", dd_w);
    line("backup, 1 cartridge", bk);
    line("dd bs=4M conv=fsync (cartridge -> vol)", dd_r);
    line("restore to a volume, CRC + digest checked", rs);
    line("dd bs=4M conv=fsync (cartridge -> file)", dd_f);
    line("restore to a file, CRC + digest checked", rf);
    line(&format!("backup, {cartridges8} cartridges"), bk8);
    println!(
        "backup/dd {:.2}  restore to volume/dd {:.2}  restore to file/dd {:.2}  8 cartridges/1 {:.2}",
        dd_w.0 / bk.0,
        dd_r.0 / rs.0,
        dd_f.0 / rf.0,
        bk8.0 / bk.0
    );
    Ok(())
}
