#![no_main]

#[path = "../ops/map_sharded.rs"]
mod ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ops::run_with(data, false));
