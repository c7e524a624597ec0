//! `cors_headers`: see [`nest_fuzz::cors_headers`] for what is generated and checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nest_fuzz::cors_headers(data));
