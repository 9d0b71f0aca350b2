#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rebootguard_fuzzing::cluster_info_dump(data));
