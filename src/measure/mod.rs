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
//! - [`pause`] stops counting **on the calling thread** while a harness times code there, so
//!   the counting cost (atomic adds on the totals) never inflates the timings of candidates that
//!   allocate. Each timing thread pauses itself; other threads keep counting.
//!
//! Nothing here costs anything unless a binary installs `CountingAlloc` or calls into the module
//! (without it, each `installed()` check makes and frees one 1-byte allocation to find out), so the
//! module is always built; only the criterion glue sits behind a feature. Reading counts without it
//! panics rather than report zeros: [`count`], [`thread_stats`] and [`total_stats`] at the caller's
//! line, `Allocations` when criterion starts its first measurement.
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
//!
//! # How it works
//! Every allocator call bumps the calling thread's thread-local counts and the shared relaxed
//! totals that it changes (`alloc.rs`: two for an alloc or a dealloc, three for a realloc). Pausing
//! is per thread too (`pause.rs`): the allocator reads the calling thread's own pause depth and,
//! when it is nonzero, counts the call nowhere, not even in the totals (skipping the shared adds is
//! what pausing is for). A pause, or a leaked guard, therefore hides only its own thread's calls:
//! `count` on another thread, which reads only its own thread's counts, stays exact, and `count`
//! refuses a span during which its own thread was paused at any moment. `measure` depends on no
//! other part of the crate: its atomics and thread-local cells come from `sync::plain`, which loom
//! never replaces (the global allocator runs outside any model); the cells are `const`-initialised
//! with no destructor, so on targets with native thread-locals (Linux, macOS, Windows, the BSDs)
//! the allocator never allocates and works during thread teardown. (On a target without them, std
//! keeps a thread-local in a heap box made on first use, which would call the allocator from inside
//! itself; no such target is checked here.)

mod alloc;
#[cfg(feature = "criterion")]
mod criterion;
mod pause;
mod stats;

pub use alloc::CountingAlloc;
#[cfg(feature = "criterion")]
#[cfg_attr(docsrs, doc(cfg(feature = "criterion")))]
pub use criterion::Allocations;
pub use pause::{is_paused, pause, Paused};
pub use stats::AllocStats;

/// Runs `f` and returns its result with the allocator calls the calling thread made meanwhile.
///
/// Allocations made by other threads are not counted, even threads `f` spawns, and nothing
/// another thread does (pausing included) changes this count.
///
/// It counts the calls the *compiled* code makes: in an optimised build the compiler may remove
/// an allocation whose pointer never escapes. Whether it does depends on the crate: in the crate
/// that declares the `#[global_allocator]` (a test or bench file) the allocator's calls are
/// inlined and kept, so `drop(Box::new(7))` written there reads 1 with `--release` too; the same
/// line in a library function (the code under test, another crate) reads 1 in a debug build and
/// 0 with `--release` (Rust 1.95). When the allocation itself is what a test asserts, return
/// what `f` builds or pass it through [`std::hint::black_box`].
///
/// # When to use
/// To assert what an operation allocates, exactly, in a test: `cargo test` may run other tests
/// on other threads meanwhile and the count stays exact.
///
/// # When not to use
/// To count the allocations of threads `f` hands work to: take [`total_stats`] before and after
/// instead, with nothing else running. For a heap profile (call sites, lifetimes), use `dhat`.
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
///
/// # Cost
/// A relaxed load and two thread-local snapshots around `f`; `count` itself allocates nothing
/// in the span it counts, so a span with no allocator call reads zero. (The process's first
/// `measure` call, before any span, makes and frees one byte to see that `CountingAlloc` is
/// installed.)
///
/// # Panics
/// Rather than report a count that misses calls:
/// - if no [`CountingAlloc`] is the global allocator (a count would silently read zero);
/// - if the calling thread is [paused](pause) when `f` starts or ends, or `f` pauses it, even
///   briefly (what it allocated while paused would be missing).
///
/// The panic points at the caller's line.
#[track_caller]
pub fn count<R>(f: impl FnOnce() -> R) -> (R, AllocStats) {
    assert_counting("count");
    let pauses = pause::pauses_taken();
    let before = alloc::thread_snapshot();
    let out = f();
    let after = alloc::thread_snapshot();
    assert_not_paused_since("count", pauses);
    (out, after - before)
}

/// The calling thread's allocator calls since it started: a running snapshot.
///
/// # When to use
/// For a span that does not fit in one closure (a harness that reads the counts around a
/// callback, per thread): subtract two snapshots, `after - before`.
///
/// # When not to use
/// When [`count`] fits: it also refuses a span the thread spent [paused](pause), which a
/// difference of snapshots cannot notice (calls made while paused are in no snapshot).
///
/// # Examples
/// ```
/// # use thrifty::measure::{self, CountingAlloc};
/// # #[global_allocator]
/// # static ALLOC: CountingAlloc = CountingAlloc::new();
/// let before = measure::thread_stats();
/// let b = Box::new(1u32);
/// assert_eq!((measure::thread_stats() - before).allocs, 1);
/// # drop(b);
/// ```
///
/// # Cost
/// A relaxed load and five thread-local reads; allocates nothing (but for the process's first
/// `measure` call, which makes and frees one byte, before its snapshot, to see that
/// `CountingAlloc` is installed).
///
/// # Panics
/// If no [`CountingAlloc`] is the global allocator (every snapshot would read zero). The panic
/// points at the caller's line.
#[track_caller]
pub fn thread_stats() -> AllocStats {
    assert_installed("thread_stats");
    alloc::thread_snapshot()
}

/// Every thread's allocator calls since the process started, except those a thread made while
/// it was [paused](pause): a running snapshot.
///
/// # When to use
/// To count work that crosses threads (a value built here and dropped on a consumer thread):
/// subtract two snapshots taken with nothing else allocating and no thread of the span paused.
/// Join each thread of the span (`JoinHandle::join`, also in a `thread::scope`) before the
/// second snapshot: a join waits for the thread to exit, its thread-local destructors and the
/// frees of its own exit included, where the end of a `thread::scope` waits only for the
/// threads' closures, so their exit lands in whatever span comes next.
///
/// # When not to use
/// Beside other tests or threads that allocate: their calls land in the span. Use [`count`]
/// for the calling thread's calls alone.
///
/// # Examples
/// ```
/// # use thrifty::measure::{self, CountingAlloc};
/// # #[global_allocator]
/// # static ALLOC: CountingAlloc = CountingAlloc::new();
/// let before = measure::total_stats();
/// std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 64]))).join().unwrap();
/// let span = measure::total_stats() - before;
/// assert!(span.allocs >= 1 && span.bytes_allocated >= 64, "{span}");
/// ```
///
/// # Cost
/// A relaxed load of each of five counters in each of the 16 stripes the totals are split into
/// (see [`CountingAlloc`]'s Cost); allocates nothing (but for the process's first `measure`
/// call, as [`thread_stats`]).
///
/// # Panics
/// If no [`CountingAlloc`] is the global allocator (every snapshot would read zero). The panic
/// points at the caller's line.
#[track_caller]
pub fn total_stats() -> AllocStats {
    assert_installed("total_stats");
    alloc::total_snapshot()
}

/// True if a [`CountingAlloc`] is the global allocator (a `CountingAlloc` only called
/// directly does not count).
///
/// # When to use
/// In code shared by binaries that may or may not install `CountingAlloc` (a helper in a
/// test's common module), to skip counting where [`count`] would panic.
///
/// # Examples
/// ```
/// // This doctest installs no CountingAlloc.
/// assert!(!thrifty::measure::installed());
/// ```
///
/// # Cost
/// One relaxed load once it has answered true. Until then (and for good where no
/// `CountingAlloc` is installed), each call makes and frees one 1-byte allocation to find out.
pub fn installed() -> bool {
    alloc::probe()
}

/// Panics (at the caller's line) unless a `CountingAlloc` is the global allocator.
#[inline]
#[track_caller]
fn assert_installed(what: &str) {
    if !installed() {
        not_installed_slow(what);
    }
}

/// [`assert_installed`], and the calling thread is not paused: a count could start now.
#[inline]
#[track_caller]
fn assert_counting(what: &str) {
    assert_installed(what);
    if is_paused() {
        paused_inside_slow(what, true, false);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn not_installed_slow(what: &str) -> ! {
    panic!(
        "thrifty::measure::{what} needs CountingAlloc as the global allocator: add \
         `#[global_allocator] static ALLOC: thrifty::measure::CountingAlloc = \
         thrifty::measure::CountingAlloc::new();` to the binary"
    )
}

/// Panics if the calling thread is paused now, or paused since `pauses` was read from
/// `pause::pauses_taken`: a count over that span would miss calls.
#[inline]
#[track_caller]
fn assert_not_paused_since(what: &str, pauses: u64) {
    let paused_since = pause::pauses_taken() != pauses;
    if is_paused() || paused_since {
        paused_inside_slow(what, is_paused(), paused_since);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn paused_inside_slow(what: &str, still_paused: bool, paused_since: bool) -> ! {
    if still_paused && paused_since {
        panic!(
            "thrifty::measure::{what}: the closure paused counting on this thread and left it \
             paused (a `measure::pause` guard leaked or returned), so the count would miss what \
             it allocated while paused"
        )
    }
    if still_paused {
        panic!(
            "thrifty::measure::{what} called while counting is paused on this thread (a \
             `measure::pause` guard is alive, or was leaked): the count would miss calls"
        )
    }
    panic!(
        "thrifty::measure::{what}: the closure paused counting on this thread \
         (`measure::pause`), so the count would miss what it allocated while paused"
    )
}
