//! `resumable_id`: see [`nest_fuzz::resumable_id`] for what is generated and checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nest_fuzz::resumable_id(data));
