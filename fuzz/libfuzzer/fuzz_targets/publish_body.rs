#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_fuzz::targets::publish_body::check(data));
