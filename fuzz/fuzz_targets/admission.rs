#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rebootguard_fuzzing::admission(data));
