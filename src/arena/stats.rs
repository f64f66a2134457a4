//! [`ArenaStats`] (one arena, from its guard) and [`Stats`] (a whole [`ArenaPool`]).

use super::ArenaPool;
use crate::sync::{AtomicU64, Ordering};

/// One arena's state, from [`ArenaGuard::stats`](super::ArenaGuard::stats).
///
/// Use it to see how a round used its arena (to size `chunk_bytes` and `limit_bytes` from real
/// traffic, or in tests); not per allocation.
///
/// # Examples
/// ```
/// let arenas = thrifty::arena::ArenaPool::new();
/// let arena = arenas.get();
/// arena.alloc_str("hello");
/// let stats = arena.stats();
/// assert_eq!(stats.allocated_bytes, 5);
/// assert_eq!(stats.chunks, 1);
/// assert!(stats.chunk_bytes <= stats.limit_bytes);
/// ```
///
/// # Allocation and cost
/// None: a plain `Copy` value; [`ArenaGuard::stats`](super::ArenaGuard::stats) reads the
/// arena's chunk list (one chunk once warm).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ArenaStats {
    /// Bytes in use this round (since the arena was handed out or reset), alignment padding
    /// included: those handed out, less any block bumpalo took back because it was the newest
    /// in its chunk when freed or shrunk (an `arena::collections::Vec` dropped).
    /// So it can be below what the round used at its peak.
    pub allocated_bytes: usize,
    /// Capacity of the chunks the arena holds (bumpalo's `allocated_bytes`): what
    /// `limit_bytes` bounds.
    pub chunk_bytes: usize,
    /// Chunks the arena holds (1 for a warm arena whose round fits its chunk).
    pub chunks: usize,
    /// The most bytes any round of this arena had in use at its end (when its guard dropped or
    /// was reset), and this round's `allocated_bytes` now: a block freed before then and taken
    /// back (see `allocated_bytes`) is not counted, so a round's peak can be higher.
    pub high_water_bytes: usize,
    /// The arena's limit: `chunk_bytes` never exceeds it, unless the limit was changed through
    /// `Deref` this round (see the module docs).
    pub limit_bytes: usize,
    /// Rounds this arena has begun: each time it was handed out, and each
    /// [`ArenaGuard::reset`](super::ArenaGuard::reset) (1 for a fresh one).
    pub rounds: u64,
}

/// A snapshot of an [`ArenaPool`]'s counters, from [`ArenaPool::stats`].
///
/// A snapshot in the way [`pool::Stats`](crate::pool::Stats) is: exact while no other thread
/// uses the pool.
///
/// Use it for metrics scrapes and tests (how often arenas are reused, rebuilt or dropped); not
/// on every request.
///
/// # Examples
/// ```
/// let arenas = thrifty::arena::ArenaPool::new();
/// drop(arenas.get());
/// drop(arenas.get());
/// let stats = arenas.stats();
/// assert_eq!((stats.created, stats.reused), (1, 1));
/// assert_eq!(stats.retained, 1);
/// ```
///
/// # Allocation and cost
/// No allocation. [`ArenaPool::stats`] reads a few shared counters and the inner pool's
/// statistics, which sum every per-thread cache: cheap for a scrape, too slow for every
/// request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Arenas built because the pool had none to hand out.
    pub created: u64,
    /// Gets served with a retained arena.
    pub reused: u64,
    /// Arenas handed out (or reset by [`ArenaGuard::reset`](super::ArenaGuard::reset)) rebuilt
    /// to one chunk for their last round, which spilled into several chunks: one that holds the
    /// round's peak, else the largest under `retain_bytes` (which holds what the round still had
    /// in use at its end, not always its peak). The chunks were freed on return; the get made
    /// the new one.
    pub rebuilt: u64,
    /// Arenas handed out (or reset) with one chunk of `chunk_bytes`, their last round having
    /// needed more than `retain_bytes`, or more than the largest chunk under it (freed on
    /// return, made by the get, as for `rebuilt`). Counting up on every round: rounds that no
    /// chunk under `retain_bytes` and `limit_bytes` holds (see
    /// [`Builder::limit_bytes`](super::Builder::limit_bytes)).
    pub shrunk: u64,
    /// Returned arenas dropped because the pool was full (capacity or byte budget).
    pub dropped: u64,
    /// Arenas retained now.
    pub retained: usize,
    /// Chunk bytes retained now (at most `capacity × retain_bytes`).
    pub retained_bytes: usize,
}

/// The counters an [`ArenaPool`] keeps beside its pool's.
#[derive(Debug, Default)]
pub(crate) struct Tallies {
    pub(crate) rebuilt: AtomicU64,
    pub(crate) shrunk: AtomicU64,
}

impl Tallies {
    /// Counts one event. Relaxed: a statistic; nothing is published through it.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl ArenaPool {
    /// A snapshot of the counters. Sums the pool's per-thread caches: not for hot paths.
    pub fn stats(&self) -> Stats {
        let pool = self.pool.stats();
        Stats {
            created: pool.misses,
            reused: pool.hits,
            // Relaxed: statistics, read without ordering against anything.
            rebuilt: self.tallies.rebuilt.load(Ordering::Relaxed),
            shrunk: self.tallies.shrunk.load(Ordering::Relaxed),
            dropped: pool.discarded,
            retained: pool.retained,
            retained_bytes: pool.retained_bytes,
        }
    }
}
