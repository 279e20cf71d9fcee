#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgcraft_fuzz::tar_normalize(data));
