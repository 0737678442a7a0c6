//! Instant split (Fig. 5b): usable at once, reads of unfilled regions come from the
//! primary, primary writes preserve the old region first, the fill completes it.

mod common;
use common::*;
use plexus_copy::{CopyControl, CopyOptions};
use plexus_mirror::{Direction, Mode};
use plexus_volume::{fill, BlockDevice, Fill};

const G: u64 = 64 << 10;

#[test]
fn the_secondary_shows_the_primary_as_of_the_split_before_and_after_the_fill() {
    let d = tempfile::tempdir().expect("tmp");
    let size = 8 << 20;
    let (p, s) = volumes(d.path(), size);
    fill(p.as_ref(), 0, size, Fill::Random(5)).expect("fill");
    let at_split = sum(&p);
    let m = mirror(d.path(), &p, &s, G, true);
    assert_eq!(m.mode(), Mode::Instant);
    assert_eq!(m.unfilled_bytes(), size);
    // Usable at once: the secondary reads as the primary even though nothing was copied.
    assert_eq!(read(&m, true, 12345, 1000), read(&m, false, 12345, 1000));
    let old = read(&m, false, 3 * G, G as usize);
    m.write_primary(3 * G + 10, b"after the split").expect("w");
    assert_eq!(read(&m, true, 3 * G, G as usize), old, "old region preserved on the secondary");
    assert_eq!(m.unfilled_bytes(), size - G, "exactly the written granule was preserved");
    let mut raw = vec![0u8; G as usize];
    s.read_at(3 * G, &mut raw).expect("raw");
    assert_eq!(raw, old, "really on the secondary, not served from elsewhere");
    // A secondary write into an unfilled region keeps the rest of that region intact.
    let around = read(&m, true, 6 * G, G as usize);
    m.write_secondary(6 * G + 100, b"S").expect("ws");
    let after = read(&m, true, 6 * G, G as usize);
    assert_eq!(after[..100], around[..100]);
    assert_eq!(after[100], b'S');
    assert_eq!(after[101..], around[101..]);
    let r = m.fill(&CopyOptions::default(), &CopyControl::new()).expect("fill");
    assert!(r.bytes_copied > 0);
    assert_eq!(m.mode(), Mode::Track);
    assert_eq!(m.unfilled_bytes(), 0);
    // Undo the one secondary write and the raw secondary equals the primary at split time.
    m.write_secondary(6 * G, &around).expect("restore");
    assert_eq!(sum(&s), at_split);
}

#[test]
fn primary_writes_racing_the_fill_never_leak_into_the_image() {
    let d = tempfile::tempdir().expect("tmp");
    let size = 32 << 20;
    let (p, s) = volumes(d.path(), size);
    fill(p.as_ref(), 0, size, Fill::Random(6)).expect("fill");
    let at_split = sum(&p);
    let m = mirror(d.path(), &p, &s, G, true);
    std::thread::scope(|sc| {
        let m = &m;
        let writer = sc.spawn(move || {
            let mut x = 99u64;
            for _ in 0..400 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let off = (x >> 20) % (size - 10_000);
                m.write_primary(off, &[0xee; 10_000]).expect("w");
            }
        });
        let opts = CopyOptions { threads: 2, chunk_size: 256 << 10, sync: false, max_rate: 0, uncache_source: false };
        m.fill(&opts, &CopyControl::new()).expect("fill");
        writer.join().expect("writer");
    });
    if m.mode() == Mode::Instant {
        m.fill(&CopyOptions::default(), &CopyControl::new()).expect("finish");
    }
    assert_eq!(sum(&s), at_split);
    // A resync from here brings the secondary up to the primary, copying only the changes.
    let dirty = m.dirty_bytes();
    let r = m.resync(Direction::Forward, false, &CopyOptions::default(), &CopyControl::new()).expect("resync");
    assert_eq!(r.bytes_copied, dirty);
    assert_eq!(sum(&s), sum(&p));
}
