//! Arbitrary request streams through parsing, validation and execution.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plexus_nbd::fuzzing::feed_requests(data));
