#![no_main]
//! Fuzz target: see `triage_core::fuzzing::md5_lanes`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| triage_core::fuzzing::md5_lanes(data));
