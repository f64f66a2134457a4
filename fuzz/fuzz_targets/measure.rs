#![no_main]

#[path = "../ops/measure.rs"]
mod ops;
mod quiet;

/// Installed, so the interpreter checks exact counts (`tests/fuzz_corpus.rs` installs it too).
#[global_allocator]
static ALLOC: thrifty::measure::CountingAlloc = thrifty::measure::CountingAlloc::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The interpreter's `count` on a paused thread panics on purpose and it catches that.
    quiet::quiet_expected_panics("called while counting is paused");
    ops::run(data);
});
