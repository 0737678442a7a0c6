//! decode_batch on hostile bytes: every malformation is an error, never a panic.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::enc;
use plexus_journal::bench::XorShift;
use plexus_journal::{decode_batch, fuzzing, RecordKind, MAX_BATCH, MAX_RECORD, RECORD_HEADER};

fn valid() -> Vec<u8> {
    let mut b = Vec::new();
    enc(&mut b, 3, 1, RecordKind::Write, 4096, &[7u8; 300], 300);
    enc(&mut b, 1, 2, RecordKind::Zeroes, 0, &[], 1 << 40);
    enc(&mut b, 2, 1, RecordKind::Punch, 512, &[], 4096);
    enc(&mut b, 4, 1, RecordKind::Write, 0, &[], 0);
    b
}

/// Rewrites the header checksum after a field was changed, so the field check is reached.
fn reseal(b: &mut [u8], at: usize) {
    let crc = crc32fast::hash(&b[at..at + 44]);
    b[at + 44..at + 48].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn a_valid_batch_decodes_in_any_order() {
    let b = valid();
    let recs = decode_batch(&b).unwrap();
    assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3, 1, 2, 4]);
    assert_eq!(recs[0].data, &[7u8; 300][..]);
    assert_eq!((recs[1].kind, recs[1].len), (RecordKind::Zeroes, 1 << 40));
    assert!(decode_batch(&[]).unwrap().is_empty());
}

#[test]
fn every_truncation_is_refused() {
    let b = valid();
    let ends: Vec<usize> = {
        let mut at = 0;
        decode_batch(&b)
            .unwrap()
            .iter()
            .map(|r| {
                at += RECORD_HEADER + r.data.len();
                at
            })
            .collect()
    };
    for cut in 1..b.len() {
        let res = decode_batch(&b[..cut]);
        if ends.contains(&cut) {
            assert!(res.is_ok(), "cut at a record boundary {cut}");
        } else {
            assert_eq!(res.unwrap_err().code(), "E_PROTOCOL", "cut at {cut}");
        }
    }
}

#[test]
fn bad_magic_crc_kind_and_lengths_are_refused() {
    let base = valid();
    let mut b = base.clone();
    b[0] = b'X';
    assert_eq!(decode_batch(&b).unwrap_err().code(), "E_PROTOCOL", "magic");
    let mut b = base.clone();
    b[20] ^= 1;
    assert_eq!(decode_batch(&b).unwrap_err().code(), "E_CORRUPT", "header crc");
    let mut b = base.clone();
    b[RECORD_HEADER + 10] ^= 1;
    assert_eq!(decode_batch(&b).unwrap_err().code(), "E_CORRUPT", "data crc");
    let mut b = base.clone();
    b[5] = 9;
    reseal(&mut b, 0);
    assert_eq!(decode_batch(&b).unwrap_err().code(), "E_PROTOCOL", "kind");
    let mut b = base.clone();
    b[4] = 2;
    reseal(&mut b, 0);
    assert_eq!(decode_batch(&b).unwrap_err().code(), "E_PROTOCOL", "version");
    let mut b = base.clone();
    b[6] = 1;
    reseal(&mut b, 0);
    assert_eq!(decode_batch(&b).unwrap_err().code(), "E_PROTOCOL", "flags");
    for len in [MAX_RECORD + 1, u64::MAX, 1 << 62] {
        let mut b = base.clone();
        b[32..40].copy_from_slice(&len.to_le_bytes());
        reseal(&mut b, 0);
        assert_eq!(decode_batch(&b).unwrap_err().code(), "E_PROTOCOL", "write len {len}");
    }
    let mut b = base.clone();
    let z = RECORD_HEADER + 300;
    b[z + 32..z + 40].copy_from_slice(&((1u64 << 40) + 1).to_le_bytes());
    reseal(&mut b, z);
    assert_eq!(decode_batch(&b).unwrap_err().code(), "E_PROTOCOL", "zeroes len");
    let mut b = base.clone();
    b[z + 24..z + 32].copy_from_slice(&u64::MAX.to_le_bytes());
    reseal(&mut b, z);
    assert_eq!(decode_batch(&b).unwrap_err().code(), "E_PROTOCOL", "offset overflow");
    let mut b = base.clone();
    b[16..24].copy_from_slice(&0u64.to_le_bytes());
    reseal(&mut b, 0);
    assert_eq!(decode_batch(&b).unwrap_err().code(), "E_PROTOCOL", "seq 0");
    let mut b = base;
    b.extend_from_slice(&[0u8; 5]);
    assert_eq!(decode_batch(&b).unwrap_err().code(), "E_PROTOCOL", "trailing garbage");
}

#[test]
fn an_oversize_batch_is_refused_before_reading_it() {
    let b = vec![0u8; MAX_BATCH + 1];
    assert_eq!(decode_batch(&b).unwrap_err().code(), "E_PROTOCOL");
}

#[test]
fn random_mutations_of_a_valid_batch_never_panic() {
    let base = valid();
    let mut rng = XorShift::new(0x5eed);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut b = base.clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(4) {
                0 => {
                    let i = rng.below(b.len() as u64) as usize;
                    b[i] ^= 1 << rng.below(8);
                }
                1 => {
                    let i = rng.below(b.len() as u64) as usize;
                    b[i] = rng.next_u64() as u8;
                }
                2 => b.truncate(rng.below(b.len() as u64 + 1) as usize),
                _ => {
                    // A length field set to something wild, header resealed.
                    if b.len() >= RECORD_HEADER {
                        b[32..40].copy_from_slice(&rng.next_u64().to_le_bytes());
                        reseal(&mut b, 0);
                    }
                }
            }
            if b.is_empty() {
                break;
            }
        }
        if decode_batch(&b).is_ok() {
            accepted += 1;
        }
        fuzzing::feed_batch(&b);
    }
    assert!(accepted < 20_000, "mutations are mostly refused ({accepted} accepted)");
}
