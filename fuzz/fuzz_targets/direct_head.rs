//! `direct_head`: see [`nest_fuzz::direct_head`] for what is generated and checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nest_fuzz::direct_head(data));
