//! `roundtrip`: see [`nest_fuzz::roundtrip`] for what is generated and checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nest_fuzz::roundtrip(data));
