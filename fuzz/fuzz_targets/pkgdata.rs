#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgcraft_fuzz::pkgdata(data, imgcraft_fuzz::work_dir()));
