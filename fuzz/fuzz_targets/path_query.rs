//! `path_query`: see [`nest_fuzz::path_query`] for what is generated and checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nest_fuzz::path_query(data));
