//! [`scratch`]: an arena for the length of a closure, from one process-wide [`ArenaPool`].

use super::{ArenaGuard, ArenaPool};
use crate::sync::OnceLock;

/// The process-wide pool behind [`scratch`], built on first use.
static SCRATCH: OnceLock<ArenaPool> = OnceLock::new();

/// Runs `f` with a scratch arena, and ends the arena's round when `f` returns (or unwinds).
///
/// The arena comes from [`scratch_pool`], a process-wide [`ArenaPool`] with the default settings,
/// so a thread that calls `scratch` in a loop gets the same warm arena back from its own cache each
/// time and allocates nothing once warm, while the arenas kept by live threads that have
/// called `scratch` (one per thread, plus one per level of nesting) number at most 64 (the pool's
/// capacity): each thread keeps its arena in its own cache between calls, even when the threads
/// never overlap. With more, each thread keeps its arenas in its cache and those past the 64th are built
/// on most calls (80 threads taking strict turns: one call in five), as [`ArenaPool`]'s
/// "Allocation" section says; give such a program an `ArenaPool` of its own, sized to the arenas it
/// holds at once. A nested call gets an arena of its own: the outer one is on loan meanwhile, so
/// the inner closure can neither see nor reset the outer closure's allocations. Nothing allocated
/// can escape `f`: it all borrows the guard.
///
/// # When to use
/// A function that needs temporary memory (a sort key buffer, a parsed intermediate) and has no
/// arena passed in. Code that handles requests should rather take an arena per request from its
/// own [`ArenaPool`] and pass it down.
///
/// # When not to use
/// Data that must outlive the call, or values with `Drop` (see [`ArenaGuard::alloc`]).
///
/// # Examples
/// ```
/// use thrifty::arena::scratch;
///
/// let total = scratch(|arena| {
///     let words = arena.alloc_slice_copy(&["b", "a", "c"]);
///     words.sort_unstable();
///     // A nested call has its own arena.
///     let inner = scratch(|inner| inner.alloc_str("inner").len());
///     assert_eq!(words.concat(), "abc");
///     words.len() + inner
/// });
/// assert_eq!(total, 8);
/// ```
///
/// # Allocation
/// None once the calling thread's arena is warm. Memory: the scratch pool's bounds
/// ([`DEFAULT_CAPACITY`](super::DEFAULT_CAPACITY) arenas of at most
/// [`DEFAULT_RETAIN_BYTES`](super::DEFAULT_RETAIN_BYTES) each retained, at most
/// [`DEFAULT_LIMIT_BYTES`](super::DEFAULT_LIMIT_BYTES) per arena in use); a thread that idles
/// or exits leaves its arena where [`scratch_pool`]`().trim(n)` and `.clear()` reach it.
///
/// # Cost
/// One `OnceLock` load, then an [`ArenaPool::get`] and a guard drop (the pool's per-thread fast
/// path).
///
/// # Panics
/// If `f` panics (the arena still goes back, settled), or if an infallible allocation inside
/// meets the limit.
pub fn scratch<R>(f: impl FnOnce(&ArenaGuard<'_>) -> R) -> R {
    let arena = scratch_pool().get();
    f(&arena)
}

/// The process-wide pool [`scratch`] takes its arenas from: for its statistics, and to give
/// memory back with [`ArenaPool::trim`] or [`ArenaPool::clear`].
///
/// Use it to read the scratch arenas' statistics or give their memory back; to allocate, call
/// [`scratch`].
///
/// # Examples
/// ```
/// use thrifty::arena::{scratch, scratch_pool};
///
/// scratch(|arena| arena.alloc(1u8).to_owned());
/// assert!(scratch_pool().stats().retained >= 1);
/// scratch_pool().clear();
/// ```
///
/// # Allocation and cost
/// The first call builds the pool (a few allocations, once per process); later calls are one
/// `OnceLock` load.
pub fn scratch_pool() -> &'static ArenaPool {
    SCRATCH.get_or_init(ArenaPool::new)
}
