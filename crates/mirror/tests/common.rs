//! Shared set-up for the mirror tests.
#![allow(dead_code)]

use plexus_mirror::{Mirror, MirrorFiles};
use plexus_volume::{BlockDevice, Volume};
use std::path::Path;
use std::sync::Arc;

pub fn files(dir: &Path) -> MirrorFiles {
    MirrorFiles { primary_dirty: dir.join("p.bitmap"), secondary_dirty: dir.join("s.bitmap"), filled: dir.join("filled.bitmap") }
}

pub fn volumes(dir: &Path, size: u64) -> (Arc<Volume>, Arc<Volume>) {
    let p = Arc::new(Volume::create(&dir.join("p.img"), size, 4096).expect("p"));
    let s = Arc::new(Volume::create(&dir.join("s.img"), size, 4096).expect("s"));
    (p, s)
}

pub fn mirror(dir: &Path, p: &Arc<Volume>, s: &Arc<Volume>, gran: u64, instant: bool) -> Mirror {
    Mirror::create(p.clone(), s.clone(), &files(dir), gran, true, instant).expect("mirror")
}

pub fn sum(v: &Volume) -> String {
    v.checksum(0, v.size()).expect("checksum")
}

pub fn read(m: &Mirror, secondary: bool, offset: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    if secondary {
        m.read_secondary(offset, &mut b).expect("read s");
    } else {
        m.read_primary(offset, &mut b).expect("read p");
    }
    b
}
