//! Copies: whole volumes, lists of ranges, failures on the way, cancellation.

use plexus_bitmap::ByteRange;
use plexus_copy::{copy_all, copy_ranges, CopyControl, CopyOptions};
use plexus_volume::{fill, BlockDevice, Fault, FaultyDevice, Fill, MemDevice, Volume};

fn opts(threads: usize, chunk: u64) -> CopyOptions {
    CopyOptions { threads, chunk_size: chunk, sync: true, max_rate: 0, uncache_source: false }
}

#[test]
fn whole_volume_copy_is_byte_identical_on_several_threads() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = Volume::create(&d.path().join("src.img"), 8 << 20, 4096).expect("src");
    let dst = Volume::create(&d.path().join("dst.img"), 8 << 20, 4096).expect("dst");
    fill(&src, 0, 8 << 20, Fill::Random(1)).expect("fill");
    let ctl = CopyControl::new();
    let r = copy_all(&src, &dst, &opts(3, 1 << 20), &ctl).expect("copy");
    assert_eq!(r.bytes_copied, 8 << 20);
    assert_eq!(r.chunks, 8);
    assert_eq!(r.threads, 3);
    assert_eq!(ctl.progress(), (8 << 20, 8 << 20));
    assert_eq!(src.checksum(0, 8 << 20).expect("a"), dst.checksum(0, 8 << 20).expect("b"));
}

#[test]
fn only_the_listed_ranges_are_copied() {
    let src = MemDevice::new("src", 100_000);
    let dst = MemDevice::new("dst", 100_000);
    fill(&src, 0, 100_000, Fill::Pattern(7)).expect("fill");
    let ranges = [
        ByteRange { offset: 10, len: 5 },
        ByteRange { offset: 12, len: 10 }, // overlaps the first: copied once
        ByteRange { offset: 99_990, len: 10 },
        ByteRange { offset: 50_000, len: 0 },
    ];
    let r = copy_ranges(&src, &dst, &ranges, &opts(2, 4096), &CopyControl::new()).expect("copy");
    assert_eq!(r.bytes_copied, 12 + 10);
    let out = dst.contents();
    for (i, b) in out.iter().enumerate() {
        let inside = (10..22).contains(&i) || i >= 99_990;
        assert_eq!(*b, if inside { 7 } else { 0 }, "byte {i}");
    }
}

#[test]
fn ranges_past_either_end_are_refused_before_copying() {
    let src = MemDevice::new("src", 1000);
    let dst = MemDevice::new("dst", 500);
    fill(&src, 0, 1000, Fill::Pattern(1)).expect("fill");
    let e = copy_ranges(
        &src,
        &dst,
        &[ByteRange { offset: 0, len: 10 }, ByteRange { offset: 400, len: 200 }],
        &opts(1, 64),
        &CopyControl::new(),
    )
    .expect_err("past end of dst");
    assert_eq!(e.code(), "E_RANGE");
    assert!(e.to_string().contains("dst"));
    assert!(dst.contents().iter().all(|&b| b == 0), "nothing was written");
    assert_eq!(copy_all(&src, &dst, &opts(1, 64), &CopyControl::new()).expect_err("sizes").code(), "E_SIZE");
}

#[test]
fn a_failing_destination_stops_the_copy_with_its_error() {
    let src = MemDevice::new("src", 1 << 20);
    fill(&src, 0, 1 << 20, Fill::Random(3)).expect("fill");
    let dst = FaultyDevice::new(MemDevice::new("dst", 1 << 20), Fault::FailWritesAfter(300_000));
    let ctl = CopyControl::new();
    let e = copy_all(&src, &dst, &opts(2, 65536), &ctl).expect_err("fault");
    assert_eq!(e.code(), "E_IO");
    assert!(e.to_string().contains("injected"), "{e}");
    let (done, total) = ctl.progress();
    assert!(done < total && done <= 300_000, "stopped early: {done}/{total}");
}

#[test]
fn a_failing_source_is_read_through_a_buffer_and_reported() {
    let src = FaultyDevice::new(MemDevice::new("src", 1 << 20), Fault::FailReadsAfter(1 << 19));
    let dst = MemDevice::new("dst", 1 << 20);
    assert_eq!(copy_all(&src, &dst, &opts(1, 65536), &CopyControl::new()).expect_err("fault").code(), "E_IO");
}

#[test]
fn cancellation_stops_promptly_and_says_how_far_it_got() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = Volume::create(&d.path().join("s.img"), 64 << 20, 4096).expect("src");
    let dst = Volume::create(&d.path().join("d.img"), 64 << 20, 4096).expect("dst");
    let ctl = CopyControl::new();
    ctl.cancel();
    match copy_all(&src, &dst, &opts(2, 1 << 20), &ctl) {
        Err(e) => assert_eq!(e.code(), "E_CANCELLED"),
        Ok(r) => panic!("copied {} bytes after cancel", r.bytes_copied),
    }
    assert!(ctl.progress().0 < 64 << 20);
}

#[test]
fn a_read_only_destination_is_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().join("ro.img");
    let src = Volume::create(&d.path().join("s.img"), 4096, 4096).expect("src");
    Volume::create(&p, 4096, 4096).expect("dst");
    let dst = Volume::open(&p, plexus_volume::Access::ReadOnly).expect("open");
    assert_eq!(copy_all(&src, &dst, &opts(1, 4096), &CopyControl::new()).expect_err("ro").code(), "E_READONLY");
    assert_eq!(dst.size(), 4096);
}

#[test]
fn a_paced_copy_keeps_to_its_rate() {
    let src = MemDevice::new("src", 4 << 20);
    let dst = MemDevice::new("dst", 4 << 20);
    let o = CopyOptions { threads: 2, chunk_size: 256 << 10, sync: false, max_rate: 16 << 20, uncache_source: false };
    let r = copy_all(&src, &dst, &o, &CopyControl::new()).expect("copy");
    // 4 MiB at 16 MiB/s cannot finish in much under a quarter of a second.
    assert!(r.elapsed.as_secs_f64() >= 0.2, "took {:?}", r.elapsed);
}

#[test]
fn a_volume_copy_writes_the_sources_holes_as_zeros_over_old_destination_data() {
    let d = tempfile::tempdir().expect("tempdir");
    let size = 16u64 << 20;
    let src = Volume::create(&d.path().join("src.img"), size, 4096).expect("src");
    let dst = Volume::create(&d.path().join("dst.img"), size, 4096).expect("dst");
    // The source: data, a hole, data (unaligned to the chunks); the destination: data everywhere.
    fill(&src, 0, 3 << 20, Fill::Random(1)).expect("fill head");
    fill(&src, (9 << 20) + 123, 1 << 20, Fill::Random(2)).expect("fill tail");
    fill(&dst, 0, size, Fill::Pattern(0xEE)).expect("fill dst");
    copy_all(&src, &dst, &CopyOptions::default(), &CopyControl::new()).expect("copy");
    assert_eq!(src.checksum(0, size).expect("src sum"), dst.checksum(0, size).expect("dst sum"));
    let mut hole = vec![1u8; 1 << 20];
    dst.read_at(5 << 20, &mut hole).expect("read the copied hole");
    assert!(hole.iter().all(|&b| b == 0), "a hole of the source reads as zeros in the copy");
}

#[test]
fn a_paced_copy_does_not_sleep_after_its_last_chunk() {
    // One 1 MiB chunk at 256 KiB/s: the data is all there at once, nothing is left to pace.
    let src = MemDevice::new("src", 1 << 20);
    let dst = MemDevice::new("dst", 1 << 20);
    let o = CopyOptions { threads: 1, chunk_size: 1 << 20, sync: false, max_rate: 256 << 10, uncache_source: false };
    let r = copy_all(&src, &dst, &o, &CopyControl::new()).expect("copy");
    assert!(r.elapsed.as_secs_f64() < 1.0, "took {:?}", r.elapsed);
    // Four 64 KiB chunks at 256 KiB/s: each starts when the bytes before it are due,
    // so the last starts at 0.75 s (not 1 s: no wait after it).
    let src = MemDevice::new("src", 256 << 10);
    let dst = MemDevice::new("dst", 256 << 10);
    let o = CopyOptions { threads: 1, chunk_size: 64 << 10, sync: false, max_rate: 256 << 10, uncache_source: false };
    let r = copy_all(&src, &dst, &o, &CopyControl::new()).expect("copy");
    let t = r.elapsed.as_secs_f64();
    assert!((0.7..0.95).contains(&t), "took {t}");
}

#[test]
fn a_paced_copy_can_be_cancelled_while_it_waits() {
    let src = MemDevice::new("src", 128 << 10);
    let dst = MemDevice::new("dst", 128 << 10);
    // Two 64 KiB chunks at 16 KiB/s: the second is due 4 s after the start.
    let o = CopyOptions { threads: 1, chunk_size: 64 << 10, sync: false, max_rate: 16 << 10, uncache_source: false };
    let ctl = CopyControl::new();
    let started = std::time::Instant::now();
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            ctl.cancel();
        });
        copy_all(&src, &dst, &o, &ctl)
    });
    assert_eq!(r.expect_err("cancelled").code(), "E_CANCELLED");
    assert!(started.elapsed().as_secs_f64() < 1.5, "took {:?}", started.elapsed());
}
