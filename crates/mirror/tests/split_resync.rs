//! Split gives a frozen image; resync copies exactly the union of both sides' changes.

mod common;
use common::*;
use plexus_copy::{CopyControl, CopyOptions};
use plexus_mirror::{split_group, Direction, Mode};
use plexus_volume::{fill, BlockDevice, Fill};

const G: u64 = 64 << 10;

fn paired(
    d: &std::path::Path,
    size: u64,
) -> (std::sync::Arc<plexus_volume::Volume>, std::sync::Arc<plexus_volume::Volume>, plexus_mirror::Mirror) {
    let (p, s) = volumes(d, size);
    fill(p.as_ref(), 0, size, Fill::Random(3)).expect("fill");
    let m = mirror(d, &p, &s, G, false);
    m.resync(Direction::Forward, false, &CopyOptions::default(), &CopyControl::new()).expect("initial");
    (p, s, m)
}

#[test]
fn split_freezes_the_secondary_and_resync_copies_exactly_the_union() {
    let d = tempfile::tempdir().expect("tmp");
    let size = 16 << 20;
    let (p, s, m) = paired(d.path(), size);
    m.write_primary(100, b"written while paired").expect("pair write");
    assert_eq!(sum(&p), sum(&s));
    m.quiesce().split().expect("split");
    assert_eq!(m.mode(), Mode::Track);
    let frozen = sum(&s);
    // Primary: granule 0 and granules 10..12; secondary: granule 5 and granule 10 (overlap).
    m.write_primary(10, b"p0").expect("w");
    m.write_primary(10 * G + 5, &vec![1u8; (2 * G) as usize]).expect("w"); // touches 10, 11, 12
    m.write_secondary(5 * G, b"s5").expect("w");
    m.write_secondary(10 * G, b"s10").expect("w");
    assert_ne!(sum(&s), frozen);
    assert_eq!(m.dirty_bytes(), 5 * G); // {0, 5, 10, 11, 12}
    let r = m.resync(Direction::Forward, false, &CopyOptions::default(), &CopyControl::new()).expect("resync");
    assert_eq!(r.bytes_copied, 5 * G, "exactly the union of dirty granules");
    assert_eq!(sum(&p), sum(&s));
    assert_eq!(m.dirty_bytes(), 0);
}

#[test]
fn the_split_image_does_not_change_when_the_primary_does() {
    let d = tempfile::tempdir().expect("tmp");
    let (p, s, m) = paired(d.path(), 4 << 20);
    m.quiesce().split().expect("split");
    let before = sum(&s);
    for i in 0..50 {
        m.write_primary(i * 80_000, b"later").expect("w");
    }
    assert_eq!(sum(&s), before);
    assert_ne!(sum(&p), before);
    assert!(m.quiesce().split().is_err(), "already split");
}

#[test]
fn full_and_reverse_resync() {
    let d = tempfile::tempdir().expect("tmp");
    let size = 8 << 20;
    let (p, s, m) = paired(d.path(), size);
    m.quiesce().split().expect("split");
    m.write_primary(0, b"primary change").expect("w");
    let r = m.resync(Direction::Forward, true, &CopyOptions::default(), &CopyControl::new()).expect("full");
    assert_eq!(r.bytes_copied, size);
    assert_eq!(sum(&p), sum(&s));
    // Reverse: the secondary's image is restored onto the primary.
    m.quiesce().split().expect("split");
    let backup = sum(&s);
    m.write_primary(3 * G, b"damage").expect("w");
    m.write_primary(7 * G, b"more damage").expect("w");
    let r = m.resync(Direction::Reverse, false, &CopyOptions::default(), &CopyControl::new()).expect("reverse");
    assert_eq!(r.bytes_copied, 2 * G);
    assert_eq!(sum(&p), backup);
}

#[test]
fn a_group_splits_at_one_write_boundary() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let d1 = tempfile::tempdir().expect("tmp");
    let d2 = tempfile::tempdir().expect("tmp");
    let (_pa, sa, a) = paired(d1.path(), 1 << 20);
    let (_pb, sb, b) = paired(d2.path(), 1 << 20);
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            // A dependent-write sequence: B gets counter i only after A has it.
            let mut i: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let bytes = i.to_le_bytes();
                if a.write_primary(0, &bytes).is_err() || b.write_primary(0, &bytes).is_err() {
                    break;
                }
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(30));
        split_group(&[&a, &b]).expect("group split");
        stop.store(true, Ordering::Relaxed);
    });
    let mut ca = [0u8; 8];
    let mut cb = [0u8; 8];
    sa.read_at(0, &mut ca).expect("a");
    sb.read_at(0, &mut cb).expect("b");
    let (ca, cb) = (u64::from_le_bytes(ca), u64::from_le_bytes(cb));
    assert!(ca > 0, "writes happened before the split");
    // B's write i depends on A's write i, so B can never be ahead of A in the images.
    assert!(cb <= ca && ca - cb <= 1, "A={ca} B={cb}");
}
