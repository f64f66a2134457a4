#![no_main]
//! `ASAN_OPTIONS=detect_leaks=0 cargo +nightly fuzz run map_cow`: the burst op's threads make
//! LeakSanitizer report, now and then, glibc's thread-exit destructor list
//! (`__cxa_thread_atexit_impl`) as leaked, an input that does not reproduce alone, or, in its
//! check at exit, the handle (`std::thread::Thread`) of a scoped thread that was joined but had
//! not yet finished exiting (blamed on the empty input). libFuzzer's own `-detect_leaks=0` turns
//! off the first report only. The interpreter itself checks that no version outlives its
//! holders, and `tests/alloc_map_cow.rs` that the map frees every block.

#[path = "../ops/map_cow.rs"]
mod ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ops::run(data));
