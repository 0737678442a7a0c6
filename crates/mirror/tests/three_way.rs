//! A three-way mirror: one primary, two plexes, one detached for backup while the
//! other stays mirrored, then rejoined differentially.

mod common;
use common::*;
use plexus_copy::{CopyControl, CopyOptions};
use plexus_mirror::{write_primary_all, Direction, Mirror, MirrorFiles, Mode};
use plexus_volume::{fill, Fill, Volume};
use std::sync::Arc;

#[test]
fn one_plex_detaches_while_two_stay_mirrored_and_concurrent_writes_agree() {
    let d = tempfile::tempdir().expect("tmp");
    let size = 16 << 20;
    let g = 64 << 10;
    let (p, b) = volumes(d.path(), size);
    let c = Arc::new(Volume::create(&d.path().join("c.img"), size, 4096).expect("c"));
    fill(p.as_ref(), 0, size, Fill::Random(8)).expect("fill");
    let fb = files(d.path());
    let fc = MirrorFiles {
        primary_dirty: d.path().join("pc.bitmap"),
        secondary_dirty: d.path().join("sc.bitmap"),
        filled: d.path().join("fc.bitmap"),
    };
    let mb = Mirror::create(p.clone(), b.clone(), &fb, g, true, false).expect("b");
    let mc = Mirror::create_sharing(p.clone(), c.clone(), &fc, g, true, false, Some(&mb)).expect("c");
    let opts = CopyOptions::default();
    mb.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("copy b");
    mc.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("copy c");
    // Two writers hammer the same few regions: every plex must end with the same bytes.
    std::thread::scope(|sc| {
        for t in 0..2u8 {
            let (mb, mc) = (&mb, &mc);
            sc.spawn(move || {
                for i in 0..300u64 {
                    let off = (i * 7919 + u64::from(t) * 13) % 8 * 4096;
                    write_primary_all(&[mb, mc], off, &[t.wrapping_add(i as u8); 6000]).expect("w");
                }
            });
        }
    });
    assert_eq!(sum(&p), sum(&b));
    assert_eq!(sum(&p), sum(&c));
    mc.quiesce().split().expect("detach c");
    let backup = sum(&c);
    write_primary_all(&[&mb, &mc], 5 * g, b"after detach").expect("w");
    assert_eq!(sum(&p), sum(&b), "b still mirrored");
    assert_eq!(sum(&c), backup, "c frozen");
    assert_eq!(mc.mode(), Mode::Track);
    let r = mc.resync(Direction::Forward, false, &opts, &CopyControl::new()).expect("rejoin");
    assert_eq!(r.bytes_copied, g, "rejoin copies only the changed granule");
    assert_eq!(sum(&p), sum(&c));
}
