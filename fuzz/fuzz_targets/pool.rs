#![no_main]

#[path = "../ops/pool.rs"]
mod ops;
mod quiet;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The interpreter makes resets panic on purpose (a poisoned object) and catches them.
    quiet::quiet_expected_panics("expected by the fuzzer");
    ops::run(data);
});
