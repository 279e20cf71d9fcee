#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgcraft_fuzz::docker_manifest_json(data, imgcraft_fuzz::work_dir()));
