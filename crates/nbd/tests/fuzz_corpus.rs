//! Replays the committed fuzz corpus (crates/nbd/fuzz/corpus/<target>/) and the seed
//! inputs defined here through the fuzzing entry points, so every `cargo test` re-checks
//! what the fuzzer found. `NBD_WRITE_SEEDS=1 cargo test -p plexus-nbd --test fuzz_corpus`
//! writes the seeds into the corpus folders (as `seed-*`).

use plexus_nbd::fuzzing::{feed_handshake, feed_requests};
use plexus_nbd::proto::consts::*;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus").join(target)
}

fn opt(option: u32, data: &[u8]) -> Vec<u8> {
    [&IHAVEOPT.to_be_bytes()[..], &option.to_be_bytes(), &(data.len() as u32).to_be_bytes(), data].concat()
}

fn name_infos(name: &str, infos: &[u16]) -> Vec<u8> {
    let mut v = [&(name.len() as u32).to_be_bytes()[..], name.as_bytes(), &(infos.len() as u16).to_be_bytes()].concat();
    for i in infos {
        v.extend_from_slice(&i.to_be_bytes());
    }
    v
}

fn meta(name: &str, queries: &[&str]) -> Vec<u8> {
    let mut v = [&(name.len() as u32).to_be_bytes()[..], name.as_bytes(), &(queries.len() as u32).to_be_bytes()].concat();
    for q in queries {
        v.extend_from_slice(&(q.len() as u32).to_be_bytes());
        v.extend_from_slice(q.as_bytes());
    }
    v
}

fn req(flags: u16, kind: u16, offset: u64, length: u32) -> Vec<u8> {
    [
        &REQUEST_MAGIC.to_be_bytes()[..],
        &flags.to_be_bytes(),
        &kind.to_be_bytes(),
        &7u64.to_be_bytes(),
        &offset.to_be_bytes(),
        &length.to_be_bytes(),
    ]
    .concat()
}

fn write(offset: u64, data: &[u8]) -> Vec<u8> {
    [req(0, CMD_WRITE, offset, data.len() as u32), data.to_vec()].concat()
}

/// One request of every command, valid and invalid, as a transmission stream.
fn every_command() -> Vec<u8> {
    [
        write(0, &[0xab; 512]),
        req(0, CMD_READ, 0, 4096),
        req(CMD_FLAG_DF, CMD_READ, 4096, 65536),
        req(CMD_FLAG_FUA, CMD_WRITE, 1 << 19, 16),
        vec![0x5a; 16],
        req(0, CMD_FLUSH, 0, 0),
        req(0, CMD_TRIM, 0, 65536),
        req(0, CMD_CACHE, 0, 65536),
        req(CMD_FLAG_NO_HOLE, CMD_WRITE_ZEROES, 65536, 65536),
        req(CMD_FLAG_FAST_ZERO, CMD_WRITE_ZEROES, 0, 4096),
        req(0, CMD_BLOCK_STATUS, 0, 1 << 20),
        req(CMD_FLAG_REQ_ONE, CMD_BLOCK_STATUS, 100, 1000),
        req(0, CMD_READ, 1 << 20, 1),
        req(0, 99, 0, 0),
        req(0, CMD_READ, 0, 1 << 20),
        req(0, CMD_DISC, 0, 0),
    ]
    .concat()
}

fn handshake_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let flags = (FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES).to_be_bytes().to_vec();
    let structured = opt(OPT_STRUCTURED_REPLY, &[]);
    let go = opt(OPT_GO, &name_infos("disk", &[INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE]));
    let set = opt(OPT_SET_META_CONTEXT, &meta("disk", &["base:allocation", "qemu:dirty-bitmap:b"]));
    let oversize = [&IHAVEOPT.to_be_bytes()[..], &OPT_LIST.to_be_bytes(), &(70_000u32).to_be_bytes()].concat();
    let with = |mode: u8, parts: &[&[u8]]| [&[mode][..], &flags, &parts.concat()].concat();
    vec![
        ("export-name", with(0xfc, &[&opt(OPT_EXPORT_NAME, b"disk"), &every_command()])),
        ("export-name-unknown", with(0, &[&opt(OPT_EXPORT_NAME, b"nope")])),
        ("abort", with(0, &[&opt(OPT_ABORT, &[])])),
        ("list", with(0x40, &[&opt(OPT_LIST, &[]), &opt(OPT_LIST, b"x")])),
        ("starttls-off", with(0, &[&opt(OPT_STARTTLS, &[]), &go])),
        ("starttls-optional", with(1, &[&structured, &opt(OPT_STARTTLS, &[]), &opt(OPT_STARTTLS, &[]), &go])),
        ("tls-required", with(2, &[&go, &opt(OPT_EXPORT_NAME, b"disk")])),
        ("tls-required-upgrade", with(0x82, &[&opt(OPT_STARTTLS, &[]), &structured, &set, &go, &every_command()])),
        (
            "info-then-go",
            with(0x20, &[&opt(OPT_INFO, &name_infos("ro", &[INFO_NAME])), &opt(OPT_GO, &name_infos("ro", &[])), &every_command()]),
        ),
        ("go-refused", with(0, &[&opt(OPT_GO, &name_infos("no", &[])), &opt(OPT_GO, &name_infos("", &[]))])),
        ("go-malformed", with(0, &[&opt(OPT_GO, &[0, 0, 0, 9, b'd']), &opt(OPT_INFO, &[0xff; 3])])),
        ("structured-go", with(0xfc, &[&structured, &set, &go, &every_command()])),
        (
            "list-meta",
            with(
                0x10,
                &[
                    &opt(OPT_LIST_META_CONTEXT, &meta("disk", &[])),
                    &opt(OPT_LIST_META_CONTEXT, &meta("disk", &["base:", "qemu:dirty-bitmap:", "x:"])),
                ],
            ),
        ),
        ("set-meta-unstructured", with(0, &[&set, &opt(OPT_SET_META_CONTEXT, &meta("nope", &["base:allocation"]))])),
        ("unknown-option", with(0, &[&opt(OPT_EXTENDED_HEADERS, &[]), &opt(0xdead_beef, b"data")])),
        ("oversize-option", [with(0xfc, &[&oversize]), vec![0; 70_000], go.clone()].concat()),
        ("bad-client-flags", vec![0, 0, 0, 0, 0xff]),
        ("bad-option-magic", with(0, &[&[0u8; 16]])),
    ]
}

fn request_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let oversize = req(0, CMD_WRITE, 0, 1 << 30);
    let mut bad_magic = req(0, CMD_READ, 0, 512);
    bad_magic[0] = 0;
    vec![
        ("simple", [&[0u8][..], &every_command()].concat()),
        ("structured", [&[1u8][..], &every_command()].concat()),
        ("structured-contexts", [&[0x0bu8][..], &every_command()].concat()),
        ("read-only", [&[0x05u8][..], &every_command()].concat()),
        ("oversize-write", [&[1u8][..], &oversize].concat()),
        ("bad-magic", [&[1u8][..], &bad_magic].concat()),
        ("truncated-payload", [&[0u8][..], &req(0, CMD_WRITE, 0, 4096), &[1, 2, 3]].concat()),
        ("out-of-range", [&[3u8][..], &req(0, CMD_WRITE_ZEROES, u64::MAX, 2), &req(0, CMD_BLOCK_STATUS, 1 << 20, 1)].concat()),
    ]
}

fn replay(target: &str, feed: fn(&[u8]), seeds: Vec<(&'static str, Vec<u8>)>) -> usize {
    let dir = corpus(target);
    let write_seeds = std::env::var_os("NBD_WRITE_SEEDS").is_some();
    for (name, bytes) in &seeds {
        feed(bytes);
        if write_seeds {
            std::fs::create_dir_all(&dir).expect("corpus dir");
            std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
        }
    }
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus folder {}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let bytes = std::fs::read(&path).expect("corpus file");
        // A panic here names the file: rerun it with `cargo fuzz run <target> <file>`.
        eprintln!("replaying {}", path.display());
        feed(&bytes);
        files += 1;
    }
    files
}

#[test]
fn handshake_corpus_replays() {
    let files = replay("handshake", feed_handshake, handshake_seeds());
    assert!(files >= 10, "the handshake corpus is committed ({files} files)");
}

#[test]
fn requests_corpus_replays() {
    let files = replay("requests", feed_requests, request_seeds());
    assert!(files >= 5, "the requests corpus is committed ({files} files)");
}
