#![no_main]
//! `ASAN_OPTIONS=detect_leaks=0 cargo +nightly fuzz run counter`: the ops that add from several
//! threads spawn scoped threads, and LeakSanitizer now and then reports what a joined thread
//! frees only as it finishes exiting (glibc's thread-exit destructor list,
//! `__cxa_thread_atexit_impl`, and the thread's `std::thread::Thread` handle) as leaked by
//! whichever input ran then (as the `map_cow` target's doc says). The interpreter checks the
//! counter's sums and `tests/alloc_counter.rs` that striped counters free their cells.

#[path = "../ops/counter.rs"]
mod ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ops::run(data));
