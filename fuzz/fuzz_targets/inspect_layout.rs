#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgcraft_fuzz::inspect_layout(data, imgcraft_fuzz::work_dir()));
