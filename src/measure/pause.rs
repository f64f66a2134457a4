//! `pause`: turns counting off on the calling thread while a harness times code there.
//!
//! The state is two of the thread's `sync::plain` cells (indices named in `alloc`): the depth
//! of live guards, which the allocator reads on every call, and the number of pauses the thread
//! has ever taken, which [`count`](super::count) compares before and after its closure. Both are
//! plain thread-local `Cell`s: only the owning thread reads or writes them, so no other thread's
//! pause can reach them, and `Paused` is `!Send` so that its drop lands on the thread it paused.

use super::alloc::{PAUSES, PAUSE_DEPTH};
use crate::sync::plain::with_thread_cells;
use std::marker::PhantomData;

/// Stops counting on the calling thread until the returned guard is dropped (guards nest).
///
/// While paused, the thread's allocator calls are counted nowhere: not in its
/// [`thread_stats`](super::thread_stats), and not in [`total_stats`](super::total_stats)
/// either, since skipping the totals' atomic adds is what makes pausing worth it. Other threads
/// keep counting, exactly, whatever this one does.
///
/// # When to use
/// In a harness that times code which allocates: the counting allocator's atomic adds would
/// otherwise slow the allocating candidates (about 3x a paused call for a small `Box` made and
/// dropped: [`CountingAlloc`](super::CountingAlloc)'s Cost), and contend when threads dealt the
/// same stripe of the totals allocate at once. Take a guard on **each thread that runs timed
/// code** (a pause does not reach the threads a paused thread spawns), and count in a separate
/// pass.
///
/// # When not to use
/// To leave some allocations out of a [`count`](super::count): `count` panics if its closure
/// pauses, or if it starts or ends paused, rather than report a count that misses calls.
/// Count a narrower closure instead.
///
/// # Examples
/// ```
/// use std::time::Instant;
/// use thrifty::measure::{self, CountingAlloc};
///
/// #[global_allocator]
/// static ALLOC: CountingAlloc = CountingAlloc::new();
///
/// let work = || (0..100).map(|i| vec![i; 8]).collect::<Vec<_>>();
/// let elapsed = {
///     let _paused = measure::pause(); // time without the counting cost
///     let start = Instant::now();
///     std::hint::black_box(work());
///     start.elapsed()
/// };
/// let (_, stats) = measure::count(work); // then count, unpaused
/// assert_eq!(stats.allocs, 101);
/// # let _ = elapsed;
/// ```
///
/// # Cost
/// Two thread-local adds; allocates nothing. A paused thread's allocator call costs two
/// thread-local loads more than the inner allocator (the `installed()` probe's cell, then the
/// pause depth).
///
/// # A leaked guard
/// A guard that is never dropped (`mem::forget`, a leaked `Box`) leaves **its own thread**
/// paused until that thread exits: its allocations are missing from the totals, its
/// `thread_stats` stop moving, [`is_paused`] says so and `count` on it panics. No other thread
/// is affected, and a thread that starts later starts unpaused.
#[must_use = "counting resumes when the guard is dropped"]
pub fn pause() -> Paused {
    with_thread_cells(|c| {
        c[PAUSE_DEPTH].set(c[PAUSE_DEPTH].get().wrapping_add(1));
        c[PAUSES].set(c[PAUSES].get().wrapping_add(1));
    });
    Paused {
        _not_send: PhantomData,
    }
}

/// Guard returned by [`pause`]; the calling thread counts again once its last guard is dropped.
///
/// Hold it around work whose allocations should not be counted (timing, setup); never
/// `mem::forget` it (see [`pause`]). It is neither `Send` nor `Sync`: dropping it on another
/// thread would resume the wrong one.
///
/// # Examples
/// ```
/// use thrifty::measure;
///
/// let guard = measure::pause();
/// assert!(measure::is_paused());
/// drop(guard);
/// assert!(!measure::is_paused());
/// ```
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// send(thrifty::measure::pause());
/// ```
///
/// # Allocation and cost
/// Zero-sized; dropping it is a thread-local load, a saturating decrement and a store. Allocates
/// nothing.
#[derive(Debug)]
pub struct Paused {
    _not_send: PhantomData<*const ()>,
}

impl Drop for Paused {
    fn drop(&mut self) {
        // The guard is `!Send`, so this is the thread whose depth `pause` raised: it is >= 1.
        with_thread_cells(|c| c[PAUSE_DEPTH].set(c[PAUSE_DEPTH].get().saturating_sub(1)));
    }
}

/// True while the calling thread holds a [`pause`] guard (or leaked one).
///
/// # When to use
/// In a harness that hands work to threads of its own: a worker can take its own guard when the
/// thread that set it going is paused (`let _p = paused.then(measure::pause);`).
///
/// # Examples
/// ```
/// use thrifty::measure;
/// let guard = measure::pause();
/// assert!(measure::is_paused());
/// std::thread::spawn(|| assert!(!measure::is_paused(), "per thread")).join().unwrap();
/// drop(guard);
/// assert!(!measure::is_paused());
/// ```
///
/// # Cost
/// One thread-local load; allocates nothing.
pub fn is_paused() -> bool {
    with_thread_cells(|c| c[PAUSE_DEPTH].get() != 0).unwrap_or(false)
}

/// How many pauses the calling thread has ever taken (wrapping); `count` compares two readings.
pub(super) fn pauses_taken() -> u64 {
    with_thread_cells(|c| c[PAUSES].get()).unwrap_or(0)
}
