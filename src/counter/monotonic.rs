//! [`Counter`]: a monotonic `u64` that many threads bump and a few read.

use super::cells::{default_max, Cells, MAX_CELLS};
use super::LocalCounter;

/// A monotonic `u64` counter: one `fetch_add` (and a few plain instructions) while it is not
/// contended, striped over per-thread cells where contention lasts.
///
/// It starts compact (16 bytes, no heap) and adds with one `fetch_add`. If two or more threads
/// keep bumping it at the same moment (the rule is in the
/// [module docs](super#when-a-counter-stripes)), it moves to 2 cache-padded cells, and doubles
/// them while threads still have to share one.
/// A thread that owns its cell adds with a plain load and store, no locked instruction, and
/// `sum` adds the cells up.
///
/// # When to use
/// Any count bumped by several threads: one hot counter (requests served, bytes sent) or
/// thousands in a metrics registry (requests per route, errors per code). It is the default for
/// every counter in a program: the cold ones cost about an `AtomicU64`'s add (1-4% more on one
/// thread in a registry of up to 10 000; up to 1.2x on two threads at 100 000: the module's
/// Performance section) and take 16 bytes, twice its 8; the hot ones stripe.
///
/// # When not to use
/// - A counter read about as often as it is written: a striped `sum` reads a line per cell of
///   every block the counter has had (`2c - 2` for `c` cells).
///   A plain [`AtomicU64`](std::sync::atomic::AtomicU64) reads in one load (and is 8 bytes).
/// - A value that must also go down or be set: use [`Gauge`](super::Gauge).
/// - Per-thread state richer than one number: use [`PerCpu`](super::PerCpu).
/// - Inside a signal handler: an owner adds to its cell by a plain load and store, which a
///   handler's add to the same counter on the same thread can interleave with and lose (on
///   targets where the pair is two instructions), and a first striped add may take a lock the
///   interrupted code holds. Use an `AtomicU64` there.
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
///
/// A registry of thousands: each stays 16 bytes unless contention on it lasts.
/// ```
/// use thrifty::counter::Counter;
///
/// let per_route: Vec<Counter> = (0..10_000).map(|_| Counter::new()).collect();
/// per_route[42].incr();
/// assert_eq!(std::mem::size_of_val(&per_route[..]), 160_000);
/// assert_eq!(per_route.iter().map(Counter::heap_bytes).sum::<usize>(), 0);
/// ```
///
/// # Allocation
/// None while compact (16 bytes, no heap). Allocates once when it stripes and once per doubling
/// (`tests/alloc_counter.rs`), never otherwise: 128 bytes per cell on x86-64, 2 cells for two
/// contending threads; a counter that doubled to `c` cells keeps the blocks it outgrew (their
/// cells still hold counts), `(2c - 2) * 128` bytes in all, until [`compact`](Counter::compact)
/// frees them. The [module docs](super#memory) have the table. (A thread that used any counter
/// may allocate once as it exits, in the crate's thread-slot registry: see
/// [`PerCpu`](super::PerCpu)'s Allocation.)
///
/// # Cost
/// - Compact: `add` is a `fetch_add` and a per-thread tick (thread-local words): one fetch of the
///   counter's line where another core holds it, as an `AtomicU64`'s add. A thread that uses
///   striped counters also reads its memo and filter (thread-local) before the add and the
///   counter's state word after it. One add in 4096 of a thread, on average, also checks briefly
///   for contention. A counter whose filter bit the thread set this interval (the [module
///   docs](super#how-it-works)) reads the state word first, fetching such a line twice. See the
///   [module docs](super#performance) for measured ratios to `AtomicU64`.
/// - Striped: for the counter whose cell the thread found last (its hot entry), `add` reads three
///   thread-local words and the state word (a line every thread keeps in cache, which only strays
///   and `take`/`reset` write), then adds with a load and a store; for another, it reads the
///   thread's memo of the counter (thread-local), the state word and its own cell's owner token.
///   The first add after the counter grows looks its cell up again. A thread's first adds to a
///   striped counter are strays, `fetch_add`s on the counter's own total, as on a compact one: one
///   for a thread that uses striped counters or is in its first sampling interval, then the
///   look-up of its cell; for a thread that used none in its last interval, about a sampling
///   interval's worth (4096) until one of its probes learns of the cells (the [module
///   docs](super#how-it-works)). After its memo lost the counter, at most one per sampling
///   interval. Through a [`LocalCounter`] (made once per loop or thread), whose
///   first add looks its cell up, a thread-local read and the load and store.
/// - `sum` reads one cache line per cell of every block it has had (`2c - 2` lines at `c`
///   cells: see Memory); `take`/`reset` add one compare-exchange.
/// - Never blocks, except that a thread's first add to a striped counter registers its thread
///   slot and its hot entry under short, process-wide locks (once per thread). Dropping or
///   compacting a striped counter takes a process-wide lock and reads one word per thread that
///   ever held a hot entry, to void those naming its cells.
pub struct Counter {
    cells: Cells,
}

// The compact form is the 16 bytes the docs promise (the total and the state word), at most the
// 24 the issue allows, and aligned so it never straddles a cache line; checked where the crate
// compiles. Loom's atomics are larger.
#[cfg(not(loom))]
const _: () = assert!(
    std::mem::size_of::<Counter>() == 16
        && std::mem::size_of::<Counter>() <= 24
        && std::mem::align_of::<Counter>() == 16
);

impl Counter {
    /// A counter at zero, compact, that may stripe over up to one cell per thread slot if
    /// contention lasts. Usable in a `static`.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            cells: Cells::new(0),
        }
    }

    /// A counter at zero, compact, that may stripe if contention lasts.
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            cells: Cells::new(0),
        }
    }

    /// A counter at zero that may stripe over at most `cells` cells (rounded up to a power of
    /// two) if contention lasts: a cap on its memory. It still starts compact and grows from 2.
    ///
    /// With fewer cells than threads bumping it at once, the extra threads share cells through
    /// `fetch_add`. A cap above 1 024, the thread slots that can own a cell, acts as 1 024: no
    /// more threads could own cells, so the counter could not use them ([`max_cells`] says so).
    ///
    /// [`max_cells`]: Counter::max_cells
    ///
    /// # Panics
    /// If `cells` is 0 or more than 65 536.
    ///
    /// # Examples
    /// ```
    /// let c = thrifty::counter::Counter::with_cells(3);
    /// assert_eq!(c.max_cells(), 4);
    /// assert_eq!(c.cells(), 0); // compact until contention lasts
    /// ```
    #[track_caller]
    pub fn with_cells(cells: usize) -> Self {
        Self {
            cells: Cells::new(cell_count(cells, "Counter")),
        }
    }

    /// Adds `n`. Wraps at `u64::MAX` (58 years at ten billion a second).
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
    /// [`LocalCounter::add`] skips the look-up of the thread's cell that [`add`](Counter::add)
    /// makes once the counter is striped (the shootout's counter table,
    /// `cargo run --release --example shootout -- --only counter`, has both rows). See
    /// [`LocalCounter`].
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

    /// The count: exact once writers are quiescent.
    ///
    /// While adds run, `sum` includes every add that *happens-before* it (in the memory model's
    /// sense: an add made earlier on the calling thread, or on a thread the caller has since
    /// synchronised with, by joining it, a lock, a channel, or an Acquire load of a Release
    /// store made after the add), less what a `take` that happens-before it took. An add merely
    /// finished earlier in wall-clock time on an unsynchronised thread may not be included yet:
    /// the cells are read with relaxed loads. Adds concurrent with `sum` may be included or not,
    /// each wholly.
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
    /// An add that happens-before `take` is in the result. An add that starts after
    /// `take` returns is not. An add running at the same time is wholly in this result or wholly
    /// left for the next `take`/`sum`; which one is not specified. So the results of successive
    /// takes always add up to the total ever added: the shape of "report the delta since the
    /// last scrape".
    ///
    /// Lock-free: one compare-exchange, retried only if a compact add, a stray (module docs) or
    /// another `take` or `reset` changed the counter's shared word meanwhile.
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
    #[must_use = "`take` zeroes the counter: use `reset` to drop the count"]
    pub fn take(&self) -> u64 {
        self.cells.replace(0)
    }

    /// Restarts the count from zero: [`take`](Counter::take) without the result, with the same
    /// guarantee for concurrent adds (wholly before and discarded, or wholly after and kept).
    pub fn reset(&self) {
        self.cells.replace(0);
    }

    /// The number of cells now: 0 while compact, then 2, 4, 8, … as contention lasts (1 for a
    /// counter capped at one cell).
    pub fn cells(&self) -> usize {
        self.cells.len()
    }

    /// The most cells the counter may grow to: the cap given to
    /// [`with_cells`](Counter::with_cells) (rounded up to a power of two, at most 1 024), or one
    /// per thread slot that can own a cell (1 024) by default.
    pub fn max_cells(&self) -> usize {
        self.cells.max_len()
    }

    /// Folds the cells back into the total and frees them: the counter is compact again, with
    /// the same count, and stripes again only if contention lasts again.
    ///
    /// Takes `&mut self`: only then is it certain that no thread is in the middle of an add to
    /// a cell (see the [module docs](super#giving-memory-back) for why `take` and `reset` cannot).
    /// On a striped counter it takes a process-wide lock, as dropping one does, to void every
    /// thread's hot entry naming the cells it frees (the module docs' How it works).
    ///
    /// # Examples
    /// ```
    /// let mut c = thrifty::counter::Counter::new();
    /// c.add(3);
    /// c.compact();
    /// assert_eq!((c.sum(), c.heap_bytes()), (3, 0));
    /// ```
    pub fn compact(&mut self) {
        self.cells.compact();
    }

    /// Whether lasting contention has made the counter striped.
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

    /// Heap bytes the counter holds, exactly: 0 while compact, then one cache line per cell of
    /// every block it has had (`2 * 128 = 256` for 2 cells on x86-64; `(2 + 4) * 128` after
    /// one doubling).
    pub fn heap_bytes(&self) -> usize {
        self.cells.heap_bytes()
    }
}

/// Checks and rounds a requested cell count, and holds it to the cells threads can own.
#[track_caller]
pub(super) fn cell_count(cells: usize, of: &str) -> usize {
    assert!(
        cells > 0 && cells <= MAX_CELLS,
        "{of}::with_cells needs 1 to {MAX_CELLS} cells, not {cells}"
    );
    cells.next_power_of_two().min(default_max())
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
            .field("heap_bytes", &self.heap_bytes())
            .finish()
    }
}
