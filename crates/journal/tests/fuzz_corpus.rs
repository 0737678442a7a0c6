//! Replays the committed fuzz corpus (crates/journal/fuzz/corpus/decode_batch/) and the
//! seeds defined here through the fuzzing entry point, so every `cargo test` re-checks
//! what the fuzzer found. `JOURNAL_WRITE_SEEDS=1 cargo test -p plexus-journal --test
//! fuzz_corpus` writes the seeds into the corpus folder (as `seed-*`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};

use common::enc;
use plexus_journal::fuzzing::feed_batch;
use plexus_journal::RecordKind;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus").join(target)
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut in_order = Vec::new();
    for s in 1..=6u64 {
        enc(&mut in_order, s, (s % 2) as u32, RecordKind::Write, s * 512, &vec![s as u8; 64 * s as usize], 64 * s);
    }
    let mut shuffled = Vec::new();
    for s in [3u64, 1, 5, 2, 4, 4, 0x7fff_ffff] {
        enc(&mut shuffled, s, 0, RecordKind::Write, 0, &[s as u8; 16], 16);
    }
    let mut kinds = Vec::new();
    enc(&mut kinds, 1, 0, RecordKind::Zeroes, 0, &[], 1 << 40);
    enc(&mut kinds, 2, 1, RecordKind::Punch, 4096, &[], 65536);
    enc(&mut kinds, 3, 7, RecordKind::Write, 0, b"unknown volume", 14);
    let mut truncated = in_order.clone();
    truncated.truncate(in_order.len() - 7);
    let mut bad_crc = in_order.clone();
    bad_crc[60] ^= 0xff;
    vec![
        ("in-order", in_order),
        ("shuffled-dup", shuffled),
        ("kinds", kinds),
        ("truncated", truncated),
        ("bad-crc", bad_crc),
        ("empty", Vec::new()),
    ]
}

#[test]
fn decode_batch_corpus_replays() {
    let dir = corpus("decode_batch");
    let write_seeds = std::env::var_os("JOURNAL_WRITE_SEEDS").is_some();
    for (name, bytes) in seeds() {
        feed_batch(&bytes);
        if write_seeds {
            std::fs::create_dir_all(&dir).expect("corpus dir");
            std::fs::write(dir.join(format!("seed-{name}")), &bytes).expect("write seed");
        }
    }
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus folder {}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let bytes = std::fs::read(&path).expect("corpus file");
        // A panic here names the file: rerun it with `cargo fuzz run decode_batch <file>`.
        eprintln!("replaying {}", path.display());
        feed_batch(&bytes);
        files += 1;
    }
    assert!(files >= 5, "the decode_batch corpus is committed ({files} files)");
}
