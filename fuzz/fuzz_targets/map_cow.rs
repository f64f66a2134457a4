#![no_main]
//! `cargo +nightly fuzz run map_cow -- -detect_leaks=0`: the burst op's threads make
//! LeakSanitizer report, now and then, glibc's thread-exit destructor list
//! (`__cxa_thread_atexit_impl`) as leaked, an input that does not reproduce alone. The
//! interpreter itself checks that no version outlives its holders, and `tests/alloc_map_cow.rs`
//! that the map frees every block.

#[path = "../ops/map_cow.rs"]
mod ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ops::run(data));
