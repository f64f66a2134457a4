//! [`Counter`]: a monotonic `u64` that many threads bump and a few read.

use super::cells::{Cells, MAX_CELLS};
use super::LocalCounter;

/// A monotonic `u64` counter that scales with the threads bumping it.
///
/// It starts compact (24 bytes, no heap) and updates one word with a compare-exchange. The first
/// failed compare-exchange (another thread got there first) allocates its cells, once:
/// [`cells`](Counter::cells) cache-padded stripes, one per thread slot. From then on a thread
/// that owns its stripe adds with a plain load and store, no locked instruction, and `sum` adds
/// the stripes up. See the [module docs](super) for the design and why it was chosen over
/// `LongAdder`'s.
///
/// # When to use
/// A count bumped on a hot path by several threads at once (requests served, bytes sent, cache
/// misses) and read far less often than it is written (a metrics scrape every few seconds).
///
/// # When not to use
/// - A counter off the hot path, or one read about as often as it is written: a plain
///   [`AtomicU64`](std::sync::atomic::AtomicU64) is 8 bytes, reads in one load, and its
///   `fetch_add` costs the same as this counter's compact form.
/// - A value that must also go down or be set: use [`Gauge`](super::Gauge).
/// - Per-thread state richer than one number: use [`PerCpu`](super::PerCpu).
///
/// # Cost
/// - Compact (never contended): `add` is a load and a compare-exchange, about an uncontended
///   `fetch_add`. 24 bytes, no heap.
/// - Striped: `add` is a thread-local read, three loads and a store on a cache line only the
///   caller writes; through a [`LocalCounter`] (made once per loop or thread), a thread-local
///   read and the load and store. `cells() * 128` bytes of heap on x86-64 (one line per cell,
///   holding its value, its shared word and its owner), allocated once.
///   A thread keeps its cell while it lives, even when idle; threads that find no cell to own
///   near their slot (more live threads than cells, counting idle owners) pay a short probe
///   and a `fetch_add` beside another thread's cell: 2–8 ns, about a shared atomic's cost.
///   Give such counters more cells ([`with_cells`](Counter::with_cells)).
/// - Measured on a shared, noisy 2-core VM, two threads, per add per thread
///   (`cargo bench --bench counter`, and the counter table of
///   `cargo run --release --example shootout -- --only counter`): striped `add` 0.8–1.6 ns and
///   a [`LocalCounter`] handle 0.6–0.7 ns, against 11–16 ns for a shared `AtomicU64` (7x to
///   19x the throughput across runs), 0.7 ns for a `thread_local!` `Cell` and 0.3–0.6 ns for a
///   plain add in a register (the physical bound). Never contended, `add` costs 1.05x–1.2x an
///   uncontended `fetch_add`.
/// - `sum` reads one cache line per cell; `take`/`reset` add one compare-exchange.
/// - Never allocates, except the one expansion; never blocks.
///
/// # Examples
/// ```
/// use thrifty::counter::Counter;
///
/// let served = Counter::new();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             for _ in 0..1000 {
///                 served.incr();
///             }
///         });
///     }
/// });
/// assert_eq!(served.sum(), 4000);
/// assert_eq!(served.take(), 4000);
/// assert_eq!(served.sum(), 0);
/// ```
pub struct Counter {
    cells: Cells,
}

// The compact form is the 24 bytes the docs promise (a `u64` total, the pointer to the cells,
// the cell count), checked where the crate compiles. Loom's atomics are larger.
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Counter>() <= 24);

impl Counter {
    /// A counter at zero that will stripe over the default number of cells (the CPU count
    /// rounded up to a power of two) if it is ever contended. Usable in a `static`.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            cells: Cells::new(0),
        }
    }

    /// A counter at zero that will stripe over the default number of cells.
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            cells: Cells::new(0),
        }
    }

    /// A counter at zero that will stripe over `cells` cells (rounded up to a power of two) if
    /// it is ever contended.
    ///
    /// More cells than threads that bump it at once waste memory; fewer make threads share
    /// cells through `fetch_add`.
    ///
    /// # Panics
    /// If `cells` is 0 or more than 65 536.
    ///
    /// # Examples
    /// ```
    /// let c = thrifty::counter::Counter::with_cells(3);
    /// assert_eq!(c.cells(), 4);
    /// ```
    pub fn with_cells(cells: usize) -> Self {
        Self {
            cells: Cells::new(cell_count(cells)),
        }
    }

    /// Adds `n`. Wraps at `u64::MAX` (ten years at ten billion a second).
    ///
    /// # Examples
    /// ```
    /// let bytes = thrifty::counter::Counter::new();
    /// bytes.add(1500);
    /// assert_eq!(bytes.sum(), 1500);
    /// ```
    #[inline]
    pub fn add(&self, n: u64) {
        self.cells.add(n);
    }

    /// Adds 1.
    #[inline]
    pub fn incr(&self) {
        self.cells.add(1);
    }

    /// A handle for the calling thread that remembers its cell: for a hot loop, where
    /// [`LocalCounter::add`] costs about half of [`add`](Counter::add) once the counter is
    /// striped. See [`LocalCounter`].
    ///
    /// # Examples
    /// ```
    /// let c = thrifty::counter::Counter::new();
    /// let mut local = c.local();
    /// for _ in 0..10 {
    ///     local.incr();
    /// }
    /// assert_eq!(c.sum(), 10);
    /// ```
    pub fn local(&self) -> LocalCounter<'_> {
        LocalCounter::new(&self.cells)
    }

    /// The count: exact once writers are quiescent. While they run it is never below the
    /// total of the adds that completed before `sum` started (less what a `take` that also
    /// completed before took), and may include part of the adds running meanwhile.
    ///
    /// A `take` running at the same time may or may not have been applied: `sum` then returns
    /// either the count before that `take` or the count after it, plus concurrent adds.
    ///
    /// # Examples
    /// ```
    /// let c = thrifty::counter::Counter::new();
    /// c.add(2);
    /// c.incr();
    /// assert_eq!(c.sum(), 3);
    /// ```
    pub fn sum(&self) -> u64 {
        self.cells.sum()
    }

    /// Returns the count and restarts it from zero, atomically: every add lands in exactly one
    /// `take`'s result (or in the count left after the last one), never two, never none.
    ///
    /// An add that completed before `take` started is in the result. An add that starts after
    /// `take` returns is not. An add running at the same time is wholly in this result or wholly
    /// left for the next `take`/`sum`; which one is not specified. So the results of successive
    /// takes always add up to the total ever added: the shape of "report the delta since the
    /// last scrape".
    ///
    /// Lock-free: one compare-exchange, retried only if an add or another `take` changed the
    /// counter's shared word meanwhile.
    ///
    /// # Examples
    /// ```
    /// let c = thrifty::counter::Counter::new();
    /// c.add(5);
    /// assert_eq!(c.take(), 5);
    /// c.add(2);
    /// assert_eq!(c.take(), 2);
    /// assert_eq!(c.take(), 0);
    /// ```
    pub fn take(&self) -> u64 {
        self.cells.replace(0)
    }

    /// Restarts the count from zero: [`take`](Counter::take) without the result, with the same
    /// guarantee for concurrent adds (wholly before and discarded, or wholly after and kept).
    pub fn reset(&self) {
        self.cells.replace(0);
    }

    /// The number of cells the counter stripes over once contended.
    pub fn cells(&self) -> usize {
        self.cells.len()
    }

    /// Whether contention has expanded the counter to its striped form.
    ///
    /// # Examples
    /// ```
    /// let c = thrifty::counter::Counter::new();
    /// c.incr(); // one thread: never contended
    /// assert!(!c.is_striped());
    /// assert_eq!(c.heap_bytes(), 0);
    /// ```
    pub fn is_striped(&self) -> bool {
        self.cells.is_striped()
    }

    /// Heap bytes the counter holds: 0 while compact, then one cache line per cell
    /// (`2 * 128 = 256` for 2 cells on x86-64).
    pub fn heap_bytes(&self) -> usize {
        self.cells.heap_bytes()
    }
}

/// Checks and rounds a requested cell count.
pub(super) fn cell_count(cells: usize) -> usize {
    assert!(
        cells > 0 && cells <= MAX_CELLS,
        "a counter needs 1 to {MAX_CELLS} cells, not {cells}"
    );
    cells.next_power_of_two()
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("sum", &self.sum())
            .field("striped", &self.is_striped())
            .field("cells", &self.cells())
            .finish()
    }
}
