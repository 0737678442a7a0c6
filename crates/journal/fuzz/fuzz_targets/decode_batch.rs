//! Arbitrary received bytes through the batch decoder and the applier.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plexus_journal::fuzzing::feed_batch(data));
