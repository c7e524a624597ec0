//! `tls_front`: see [`nest_fuzz::tls_front`] for what is generated and checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nest_fuzz::tls_front(data));
