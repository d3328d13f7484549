#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_fuzz::targets::access_headers::check(data));
