//! [`Stats`] and the calls that read a pool's state: [`Pool::len`], [`Pool::stats`].

use super::{Hooks, Local, Pool};

/// A snapshot of a pool's counters, from [`Pool::stats`].
///
/// Counters are summed over the per-thread caches without stopping them, so a snapshot taken
/// while other threads work may be slightly behind them; once those threads are done (joined,
/// or synchronised with the caller), it is exact. Use it for metrics scrapes and tests (a hit
/// rate, what a pool retains); not on every request.
///
/// # Examples
/// ```
/// let pool = thrifty::pool::Pool::new(String::new);
/// drop(pool.get()); // a miss: the factory made it
/// drop(pool.get()); // a hit
/// let stats = pool.stats();
/// assert_eq!((stats.hits, stats.misses, stats.returned), (1, 1, 2));
/// assert_eq!(stats.retained, 1);
/// ```
///
/// # Allocation and cost
/// No allocation. [`Pool::stats`](super::Pool::stats) reads a few words from every cache the
/// pool has made (8 for each range of 8 thread slots that used it) and takes no lock: cheap enough
/// for a metrics scrape, too slow for every request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Gets that took an object from the pool, including one whose `reset` then panicked (that
    /// object is dropped and counted in `discarded` too).
    pub hits: u64,
    /// Gets that called the factory.
    pub misses: u64,
    /// Objects given back and retained.
    pub returned: u64,
    /// Objects given back (or made by `prefill`) and dropped: the pool was full (capacity or
    /// byte budget), the object was too heavy, `keep_if` refused it, or `keep_if`, `weigh` or
    /// a `reset` (on a get or on a return) panicked on it. An object a handle's drop leaks (its
    /// first `weigh` panicked: the module docs' Behaviour under panics) is counted in neither
    /// `returned` nor `discarded`.
    pub discarded: u64,
    /// Objects retained now. Exact while no other thread uses the pool; while others do, the
    /// sum is taken cache by cache, so an object moving between a cache and the shared store
    /// may be counted twice or missed. The pool itself never retains more than its capacity:
    /// that bound is kept by an atomic budget, not by this statistic.
    pub retained: usize,
    /// Bytes retained now: the weights of the retained objects, as the pool weighed them when
    /// they came back (for a [`BufferPool`](super::BufferPool), their capacities), so never
    /// more than the byte budget once no object is moving. 0 for a pool that weighs nothing.
    /// A snapshot in the same way as `retained`.
    pub retained_bytes: usize,
    /// Reclaims run: `clear`, `trim`, and the get and put paths' last resorts (a get that
    /// found the pool dry while other threads' caches held objects, a put that found the
    /// budget full). Each shuts every cache for a moment and costs a process-wide fence (on
    /// Linux a `membarrier` system call, which interrupts every CPU running a thread of the
    /// process), so a count that grows with the gets in steady state is a sign of a shape the
    /// pool suits badly: a capacity below the objects held at once, for example. (A burst from
    /// an empty pool in which threads each hold several objects runs some as well: see
    /// [`Pool`](super::Pool)'s Cost.)
    pub reclaims: u64,
}

impl<T, H: Hooks<T>> Pool<T, H> {
    /// Objects retained now, in every cache and the shared store (a snapshot while other
    /// threads use the pool). Sums the caches: cheap, but not for a hot path.
    pub fn len(&self) -> usize {
        self.shared.len() + self.caches.iter().map(Local::retained).sum::<usize>()
    }

    /// Whether the pool retains no object now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes retained now. Objects in the shared store hold exactly their units of the budget,
    /// so the budget's bytes, less what caches reserve beyond the objects they hold and what
    /// tickets keep for lent-out objects, are the retained bytes: no count to keep on the
    /// store's push and pop.
    fn retained_bytes(&self) -> usize {
        let unused: usize = self.caches.iter().map(Local::unused_bytes).sum();
        self.budget
            .used()
            .1
            .saturating_sub(unused)
            .saturating_sub(self.ticket_bytes())
    }

    /// A snapshot of the counters. Sums every cache, so it is not for hot paths.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            retained: self.len(),
            retained_bytes: self.retained_bytes(),
            ..Stats::default()
        };
        let caches = self.caches.iter().map(|l| &l.tallies);
        for t in caches.chain([&self.shared.tallies]) {
            stats.hits += t.hits.get();
            stats.misses += t.misses.get();
            stats.returned += t.returned.get();
            stats.discarded += t.discarded.get();
            stats.reclaims += t.reclaims.get();
        }
        stats
    }
}
