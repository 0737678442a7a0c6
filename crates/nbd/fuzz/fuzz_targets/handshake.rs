//! Arbitrary client bytes through the handshake state machine (and on into transmission).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plexus_nbd::fuzzing::feed_handshake(data));
