#![no_main]
//! Fuzz target: see `triage_core::fuzzing::video_probe`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| triage_core::fuzzing::video_probe(data));
