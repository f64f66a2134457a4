//! Allocation counting per operation: what `go test -benchmem` is to Go.
//!
//! Install [`CountingAlloc`] as the `#[global_allocator]` of a test, bench or example binary,
//! then:
//! - [`count`] runs a closure and returns the allocations **the calling thread** made meanwhile.
//!   Because it reads thread-local counts, an exact assertion holds even while `cargo test` runs
//!   other tests on other threads, which a process-wide counter (or dhat's one global profiler)
//!   cannot promise.
//! - [`thread_stats`] and [`total_stats`] are running snapshots, per thread and process-wide;
//!   subtract two to get a span.
//! - `Allocations` (feature `criterion`) is a criterion `Measurement`, so any criterion bench
//!   can report allocations per iteration beside its timings.
//! - [`pause`] stops counting while a harness times code, so the counting cost (shared atomic
//!   adds) never inflates the timings of candidates that allocate.
//!
//! Nothing here costs anything unless a binary installs `CountingAlloc`, so the module is always
//! built; only the criterion glue sits behind a feature. `measure` depends on no other part of
//! the crate (it takes its std atomics from `sync::plain`, which loom never replaces: the global
//! allocator runs outside any model).
//!
//! # Examples
//! ```
//! use thrifty::measure::{self, CountingAlloc};
//!
//! #[global_allocator]
//! static ALLOC: CountingAlloc = CountingAlloc::new();
//!
//! let mut s = String::new();
//! let ((), stats) = measure::count(|| {
//!     for _ in 0..100 {
//!         s.push('x'); // grows by doubling: a few reallocations, not a hundred
//!     }
//! });
//! assert_eq!(stats.allocs, 1);
//! assert!(stats.reallocs >= 3 && stats.reallocs <= 5, "{stats}");
//! ```

mod alloc;
#[cfg(feature = "criterion")]
mod criterion;
mod stats;

pub use alloc::CountingAlloc;
#[cfg(feature = "criterion")]
pub use criterion::Allocations;
pub use stats::AllocStats;

/// Runs `f` and returns its result with the allocator calls the calling thread made meanwhile.
///
/// Allocations made by other threads are not counted, even threads `f` spawns; to count those,
/// take [`total_stats`] before and after instead, with nothing else running.
///
/// # Panics
/// If no [`CountingAlloc`] is the global allocator (a count would silently read zero), or if
/// counting is [paused](pause) when `f` starts or ends.
///
/// # Examples
/// ```
/// # use thrifty::measure::{self, CountingAlloc};
/// # #[global_allocator]
/// # static ALLOC: CountingAlloc = CountingAlloc::new();
/// let mut buf = Vec::<u8>::with_capacity(4096);
/// let ((), stats) = measure::count(|| {
///     buf.clear();
///     buf.extend_from_slice(b"reused, not reallocated");
/// });
/// assert!(stats.is_zero());
/// ```
pub fn count<R>(f: impl FnOnce() -> R) -> (R, AllocStats) {
    assert_counting("count");
    let before = thread_stats();
    let out = f();
    let after = thread_stats();
    assert_counting("count");
    (out, after - before)
}

/// The calling thread's allocator calls since it started. Zero if [`CountingAlloc`] is not
/// installed.
pub fn thread_stats() -> AllocStats {
    alloc::thread_snapshot()
}

/// Every thread's allocator calls since the process started. Zero if [`CountingAlloc`] is not
/// installed.
pub fn total_stats() -> AllocStats {
    alloc::total_snapshot()
}

/// True once a [`CountingAlloc`] has served an allocation, i.e. it is the global allocator.
///
/// Makes one tiny allocation if nothing has been allocated yet, to find out.
pub fn installed() -> bool {
    if alloc::INSTALLED.get() != 0 {
        return true;
    }
    drop(std::hint::black_box(Box::new(0u8)));
    alloc::INSTALLED.get() != 0
}

/// Stops all counting, on every thread, until the returned guard is dropped (guards nest).
///
/// For harnesses that time code: with counting paused an allocator call costs one relaxed load
/// more than the inner allocator, so candidates that allocate are not slowed by the counting.
/// Count in a separate pass. [`count`] panics while paused rather than report zeros.
#[must_use = "counting resumes when the guard is dropped"]
pub fn pause() -> Paused {
    // A hint read by the allocator: a call racing with the pause may be counted or not.
    alloc::PAUSED.increment();
    Paused { _private: () }
}

/// Guard returned by [`pause`]; counting resumes when the last one is dropped.
#[derive(Debug)]
pub struct Paused {
    _private: (),
}

impl Drop for Paused {
    fn drop(&mut self) {
        alloc::PAUSED.decrement();
    }
}

/// True while a [`pause`] guard lives.
pub fn is_paused() -> bool {
    alloc::PAUSED.get() != 0
}

#[track_caller]
fn assert_counting(what: &str) {
    assert!(
        installed(),
        "thrifty::measure::{what} needs CountingAlloc as the global allocator: add \
         `#[global_allocator] static ALLOC: thrifty::measure::CountingAlloc = \
         thrifty::measure::CountingAlloc::new();` to the binary"
    );
    assert!(
        !is_paused(),
        "thrifty::measure::{what} called while counting is paused"
    );
}
