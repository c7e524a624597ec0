//! `parser`: see [`nest_fuzz::parser`] for what is generated and checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nest_fuzz::parser(data));
