//! [`LocalCounter`] and [`LocalGauge`]: a thread's handle on its own cell, for hot loops.

use super::cells::{Cells, Owned};
use std::marker::PhantomData;

/// The engine under both handles: the cells, and this thread's own word once it has one.
struct Handle<'a> {
    cells: &'a Cells,
    owned: Option<Owned<'a>>,
    /// Adds without a word of our own before the next look for one.
    until_look: u32,
    /// Not `Send` nor `Sync`: the word belongs to the thread that made the handle.
    _thread: PhantomData<*const ()>,
}

/// Adds a handle without a word makes through the counter between two looks for one (after the
/// first): a look on every add cost a compact counter's add a third again; a counter that
/// stripes meanwhile counts the adds all the same.
pub(super) const LOOK_EVERY: u32 = 64;

impl<'a> Handle<'a> {
    fn new(cells: &'a Cells) -> Self {
        Self {
            cells,
            owned: cells.owned(),
            // The first add looks again: a thread usually claims its cell on its first add to
            // a striped counter.
            until_look: 1,
            _thread: PhantomData,
        }
    }

    #[inline(always)]
    fn add(&mut self, n: u64) {
        match self.owned {
            Some(owned) if owned.try_add(n) => {}
            // No word of our own yet (compact, or not claimed yet), or our claim has ended (the
            // thread is tearing down): the counter's own path, and a look for a word at once if
            // we had one, else every `LOOK_EVERY` adds.
            // The looking add reads the counter's state word after it even where the thread
            // would add blind, so that a striped counter's cell is claimed before the look.
            _ => {
                self.until_look -= 1;
                if self.owned.is_some() || self.until_look == 0 {
                    self.cells.add_looking(n);
                    self.owned = self.cells.owned();
                    self.until_look = LOOK_EVERY;
                } else {
                    self.cells.add(n);
                }
            }
        }
    }
}

/// A thread's handle on a [`Counter`](super::Counter): the same count, with the lookup of the
/// thread's cell done once instead of on every add.
///
/// [`Counter::add`](super::Counter::add) finds the calling thread's cell each time: the counter's
/// state word and the thread's hot entry or memo (thread-local reads), and through the memo the
/// cell's owner token. A handle holds the cell, so its `add` is a thread-local read (is this still
/// the claim that owns the cell?) and a load and a store. Until it holds one (the counter is
/// compact, or this thread has not claimed a cell yet), it adds through the counter and looks for
/// its cell after its first add and then every 64th.
///
/// Adds through a handle and through the counter land in the same total; `sum`, `take` and
/// `reset` see them alike. The handle is neither `Send` nor `Sync`: the cell it remembers is
/// owned by the thread that made it.
///
/// # When to use
/// A hot loop or a worker thread that bumps one contended counter many times: make the handle
/// at the top and drop it with the loop.
///
/// # When not to use
/// On a counter that is never contended (it stays compact and every handle add takes the
/// counter's own path, with a countdown beside it), or for one add: `Counter::add` is enough.
///
/// # Examples
/// ```
/// use thrifty::counter::Counter;
///
/// let hits = Counter::new();
/// std::thread::scope(|s| {
///     for _ in 0..2 {
///         s.spawn(|| {
///             let mut local = hits.local();
///             for _ in 0..1000 {
///                 local.incr();
///             }
///         });
///     }
/// });
/// assert_eq!(hits.sum(), 2000);
/// ```
///
/// A handle stays on the thread that made it. It is not `Send`, so it cannot move to another
/// thread:
///
/// ```compile_fail,E0277
/// fn is_send<T: Send>() {}
/// is_send::<thrifty::counter::LocalCounter<'static>>();
/// ```
///
/// and not `Sync`, so other threads cannot share it:
///
/// ```compile_fail,E0277
/// fn is_sync<T: Sync>() {}
/// is_sync::<thrifty::counter::LocalCounter<'static>>();
/// ```
///
/// # Allocation
/// None of its own: only the counter's striping and doublings allocate.
///
/// # Cost
/// Striped, owning a cell: one thread-local read and a compare, then a relaxed load and store;
/// the counter module's [Performance](super#performance) section has measured ratios. Otherwise
/// `Counter::add` plus one look for the cell. Never blocks, except that a thread's first
/// handle on a striped counter registers its thread slot under a short, process-wide lock (once
/// per thread).
#[must_use = "a handle does nothing unless added through"]
pub struct LocalCounter<'a> {
    handle: Handle<'a>,
}

impl<'a> LocalCounter<'a> {
    pub(super) fn new(cells: &'a Cells) -> Self {
        Self {
            handle: Handle::new(cells),
        }
    }

    /// Adds `n` to the counter. Wraps at `u64::MAX`.
    #[inline]
    pub fn add(&mut self, n: u64) {
        self.handle.add(n);
    }

    /// Adds 1 to the counter.
    #[inline]
    pub fn incr(&mut self) {
        self.handle.add(1);
    }
}

impl std::fmt::Debug for LocalCounter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCounter")
            .field("owns_cell", &self.handle.owned.is_some())
            .finish()
    }
}

/// A thread's handle on a [`Gauge`](super::Gauge): the same level, with the thread's cell
/// looked up once.
///
/// Use it where [`LocalCounter`] pays: a hot loop moving one contended gauge; not for a single
/// add.
///
/// # Examples
/// ```
/// use thrifty::counter::Gauge;
///
/// let in_flight = Gauge::new();
/// let mut local = in_flight.local();
/// local.add(3);
/// local.sub(1);
/// assert_eq!(in_flight.value(), 2);
/// ```
///
/// Like a [`LocalCounter`], it stays on the thread that made it: it is not `Send`,
///
/// ```compile_fail,E0277
/// fn is_send<T: Send>() {}
/// is_send::<thrifty::counter::LocalGauge<'static>>();
/// ```
///
/// and not `Sync`:
///
/// ```compile_fail,E0277
/// fn is_sync<T: Sync>() {}
/// is_sync::<thrifty::counter::LocalGauge<'static>>();
/// ```
///
/// # Allocation and cost
/// As [`LocalCounter`]: nothing allocated of its own; an add through it is a thread-local read,
/// a compare, a load and a store once the gauge is striped.
#[must_use = "a handle does nothing unless added through"]
pub struct LocalGauge<'a> {
    handle: Handle<'a>,
}

impl<'a> LocalGauge<'a> {
    pub(super) fn new(cells: &'a Cells) -> Self {
        Self {
            handle: Handle::new(cells),
        }
    }

    /// Adds `n` (which may be negative) to the gauge, wrapping at the `i64` bounds.
    #[inline]
    pub fn add(&mut self, n: i64) {
        self.handle.add(n as u64);
    }

    /// Subtracts `n` from the gauge, wrapping at the `i64` bounds.
    #[inline]
    pub fn sub(&mut self, n: i64) {
        self.handle.add(n.wrapping_neg() as u64);
    }
}

impl std::fmt::Debug for LocalGauge<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalGauge")
            .field("owns_cell", &self.handle.owned.is_some())
            .finish()
    }
}
