#![no_main]
//! Fuzz target: see `triage_core::fuzzing::image_container`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| triage_core::fuzzing::image_container(data));
