//! [`Gauge`]: an `i64` that goes up, down, and can be set.

use super::cells::Cells;
use super::monotonic::cell_count;
use super::LocalGauge;

/// A signed `i64` level (requests in flight, bytes buffered, open connections) that many threads
/// move up and down and something occasionally sets.
///
/// Same engine as [`Counter`](super::Counter): compact (16 bytes, one `fetch_add`) until
/// contention lasts, then striped over cache-padded cells, from 2 doubling while threads share.
/// Adds and subtracts wrap at the `i64` bounds.
///
/// # When to use
/// A level updated on a hot path by several threads (`add(1)` on entry, `sub(1)` on exit) and
/// read by a scraper.
///
/// # When not to use
/// A level that is mostly `set` (a queue length sampled by one thread, a configuration value):
/// a plain [`AtomicI64`](std::sync::atomic::AtomicI64) `store` is cheaper than `set`, which
/// reads every cell. A level read as often as it moves: an `AtomicI64` reads in one load. Not
/// inside a signal handler, as for [`Counter`](super::Counter).
///
/// # Examples
/// ```
/// use thrifty::counter::Gauge;
///
/// let in_flight = Gauge::new();
/// in_flight.add(3);
/// in_flight.sub(5);
/// assert_eq!(in_flight.value(), -2);
/// in_flight.set(10);
/// in_flight.sub(1);
/// assert_eq!(in_flight.value(), 9);
/// ```
///
/// # Allocation
/// As [`Counter`](super::Counter): none while compact (16 bytes); allocates only when it
/// stripes and at each doubling (`tests/alloc_counter.rs`).
///
/// # Cost
/// As [`Counter`](super::Counter): compact `add` about one `fetch_add`, striped `add` about a
/// thread-local add; `value` reads one line per cell of every block (`2c - 2` at `c` cells); `set`
/// reads every cell and does one compare-exchange.
///
/// # `set` and concurrent adds
/// `set(v)` acts at one instant. Every `add`/`sub` that happens-before `set` is overwritten; every
/// one that starts after `set` returns lands on top of `v`; one running at the same time is wholly
/// overwritten or wholly kept, never split. Two racing `set`s leave one of the two values (plus the
/// adds ordered after it). `set` is lock-free: one compare-exchange, retried only if another thread
/// changed the gauge's shared word meanwhile.
pub struct Gauge {
    cells: Cells,
}

impl Gauge {
    /// A gauge at zero that stripes over the default number of cells if contended. Usable in a
    /// `static`.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            cells: Cells::new(0),
        }
    }

    /// A gauge at zero that stripes over the default number of cells if contended.
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            cells: Cells::new(0),
        }
    }

    /// A gauge at zero that stripes over at most `cells` cells (rounded up to a power of two)
    /// if contention lasts; see [`Counter::with_cells`](super::Counter::with_cells).
    ///
    /// # Panics
    /// If `cells` is 0 or more than 65 536.
    #[track_caller]
    pub fn with_cells(cells: usize) -> Self {
        Self {
            cells: Cells::new(cell_count(cells, "Gauge")),
        }
    }

    /// Adds `n` (which may be negative), wrapping at the `i64` bounds.
    #[inline]
    pub fn add(&self, n: i64) {
        self.cells.add(n as u64);
    }

    /// Subtracts `n`, wrapping at the `i64` bounds.
    #[inline]
    pub fn sub(&self, n: i64) {
        self.cells.add(n.wrapping_neg() as u64);
    }

    /// Adds 1: a request, connection or job comes in.
    ///
    /// # Examples
    /// ```
    /// let open = thrifty::counter::Gauge::new();
    /// open.incr();
    /// open.incr();
    /// open.decr();
    /// assert_eq!(open.value(), 1);
    /// ```
    #[inline]
    pub fn incr(&self) {
        self.cells.add(1);
    }

    /// Subtracts 1: a request, connection or job goes out.
    #[inline]
    pub fn decr(&self) {
        self.cells.add(u64::MAX);
    }

    /// A handle for the calling thread that remembers its cell, for a hot loop; see
    /// [`LocalGauge`].
    pub fn local(&self) -> LocalGauge<'_> {
        LocalGauge::new(&self.cells)
    }

    /// Makes the level `v`; see [`set` and concurrent adds](Gauge#set-and-concurrent-adds).
    ///
    /// # Examples
    /// ```
    /// let g = thrifty::counter::Gauge::new();
    /// g.add(7);
    /// g.set(-1);
    /// assert_eq!(g.value(), -1);
    /// ```
    pub fn set(&self, v: i64) {
        self.cells.replace(v as u64);
    }

    /// The level: exact once writers are quiescent; while they run, it includes every add that
    /// happens-before the call and may include some of those running meanwhile (see
    /// [`Counter::sum`](super::Counter::sum) for why not more).
    ///
    /// So while writers run, a reading need not be a level the gauge ever held: a striped gauge
    /// is read cell by cell, and where the `add` and the matching `sub` are made on different
    /// threads (a request counted in on one and out on another), a read can see the subs that
    /// landed in a cell read late without the adds in a cell read early. An in-flight gauge that
    /// only ever holds 0 or 1 can read negative, off by as many adds as land during one read
    /// (thousands, if the reader is preempted mid-read). Clamp the reading, or use one
    /// `AtomicI64`, where a reading must be a level the gauge held.
    pub fn value(&self) -> i64 {
        self.cells.sum() as i64
    }

    /// The number of cells the gauge stripes over now: 0 while compact, then 2, 4, … as
    /// contention lasts; see [`Counter::cells`](super::Counter::cells).
    pub fn cells(&self) -> usize {
        self.cells.len()
    }

    /// The most cells the gauge may grow to.
    pub fn max_cells(&self) -> usize {
        self.cells.max_len()
    }

    /// Whether lasting contention has made the gauge striped.
    pub fn is_striped(&self) -> bool {
        self.cells.is_striped()
    }

    /// Heap bytes the gauge holds: 0 while compact, then every block of cells it has had; see
    /// [`Counter::heap_bytes`](super::Counter::heap_bytes).
    pub fn heap_bytes(&self) -> usize {
        self.cells.heap_bytes()
    }

    /// Folds the cells back and frees them: compact again, same level. See
    /// [`Counter::compact`](super::Counter::compact).
    pub fn compact(&mut self) {
        self.cells.compact();
    }
}

impl Default for Gauge {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauge")
            .field("value", &self.value())
            .field("striped", &self.is_striped())
            .field("cells", &self.cells())
            .field("heap_bytes", &self.heap_bytes())
            .finish()
    }
}
