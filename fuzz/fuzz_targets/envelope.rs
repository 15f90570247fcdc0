#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cobuild_fuzz::envelope(data));
