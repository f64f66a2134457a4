//! [`PerCpu`]: per-thread-slot state of any type, combined on read.

use crate::sync::{thread_slot, CachePadded, Mutex};

/// The most values a `PerCpu` may hold.
const MAX_SLOTS: usize = 1 << 16;

/// One `T` per thread slot (not per CPU: a thread's slot is its small dense index, see below),
/// each on its own cache line and lock, combined when read.
///
/// A *thread slot* is the small integer `thrifty` gives each live thread (the lowest one free
/// when it first asks; given back when it exits). `PerCpu` holds `len()` values (by default the
/// CPU count, rounded up to a power of two) and a thread uses value `slot % len()`: while no
/// more threads than values have ever been alive at once, no two share one. Past that peak,
/// live threads keep the slots they were given, which may be far apart (33 threads alive at
/// once, then 5 left on slots 0, 8, 16, 24 and 32 share value 0 of 8), until they exit. The
/// name follows the kernel's `percpu` idiom, which it approximates from user space.
///
/// [`with`](PerCpu::with) runs a closure on the calling thread's slot; [`fold`](PerCpu::fold),
/// [`for_each`](PerCpu::for_each) and [`iter_mut`](PerCpu::iter_mut) combine or drain all of
/// them. Each slot sits behind its own lock, so the structure stays safe when two threads map to
/// one slot (more threads than slots, or a thread whose slot was given back during thread-local
/// teardown): the second one waits, or borrows another free slot, rather than racing.
///
/// # When to use
/// Per-thread aggregation too rich for one number: a latency histogram per slot merged at scrape
/// time, per-slot free lists, per-slot batches flushed together.
///
/// # When not to use
/// - A single number: [`Counter`](super::Counter) adds without a lock.
/// - State every thread must see at once: use one `Mutex<T>`; `PerCpu` only combines on read.
/// - Values that must not be split across slots (a thread's own running state across calls):
///   a thread may be handed a different slot when its own is busy.
///
/// # Examples
/// ```
/// use thrifty::counter::PerCpu;
///
/// // A latency histogram per slot: 4 buckets of powers of ten in microseconds.
/// let hist = PerCpu::new(|| [0u64; 4]);
/// std::thread::scope(|s| {
///     for t in 0..2 {
///         let hist = &hist;
///         s.spawn(move || {
///             for us in [3u64, 40, 500, 7] {
///                 let bucket = (us.max(1).ilog10() as usize).min(3);
///                 hist.with(|h| h[bucket] += 1 + t);
///             }
///         });
///     }
/// });
/// let merged = hist.fold([0u64; 4], |mut acc, h| {
///     acc.iter_mut().zip(h).for_each(|(a, b)| *a += b);
///     acc
/// });
/// assert_eq!(merged, [6, 3, 3, 0]);
/// ```
///
/// # Allocation
/// All slots and their `T`s are built up front, in one block: `len()` slots, each
/// `size_of::<Mutex<T>>()` (`T` and a lock byte, rounded up to `T`'s alignment) rounded up to a
/// multiple of 128 bytes (an 8-byte `T` takes 128, a 128-byte one 256, a 320-byte one 384;
/// `tests/alloc_counter.rs` asserts it). Nothing allocates afterwards except what the closures do,
/// and the crate's thread-slot registry (shared by every `PerCpu`, `Counter` and pool), whose list
/// of free slots grows when more threads have exited at once than ever before: a thread's exit
/// may allocate there, about `log2` of the peak thread count times per process in all.
///
/// # Cost
/// `with`: a thread-local read and an uncontended lock and unlock on a line no other thread uses
/// (two atomic operations), plus the closure. When the slot is busy it tries the other slots once,
/// then waits for its own. `fold`/`for_each` lock each slot in turn.
///
/// # Deadlocks
/// A slot's lock is not re-entrant. `fold` or `for_each` called from inside any closure of the
/// same `PerCpu` deadlocks, whatever the slot count (it locks every slot, the caller's
/// included); a `with` inside one deadlocks with one slot, and for good whenever every other
/// slot is held at that moment (it then locks its own slot, which the outer call holds). Don't
/// nest them.
///
/// # Panics in closures
/// A closure that panics part-way through changing its slot's `T` leaves it as it was left: the
/// slot's lock is released and not poisoned, so `PerCpu` is not `RefUnwindSafe`.
pub struct PerCpu<T> {
    /// A power-of-two number of slots; a thread uses `slots[thread_slot() & (len - 1)]`.
    slots: Box<[CachePadded<Mutex<T>>]>,
}

impl<T> PerCpu<T> {
    /// One `T` per CPU (the CPU count rounded up to a power of two, at most 65 536), each
    /// built by `init`. Never panics, however many CPUs the machine has.
    pub fn new(init: impl FnMut() -> T) -> Self {
        Self::with_slots(crate::sync::cpus().min(MAX_SLOTS), init)
    }

    /// `slots` values (rounded up to a power of two), each built by `init`.
    ///
    /// # Panics
    /// If `slots` is 0 or more than 65 536: "PerCpu needs 1 to 65536 slots, not {slots}".
    ///
    /// # Examples
    /// ```
    /// let p = thrifty::counter::PerCpu::with_slots(3, || 0u8);
    /// assert_eq!(p.len(), 4);
    /// ```
    #[track_caller]
    pub fn with_slots(slots: usize, mut init: impl FnMut() -> T) -> Self {
        assert!(
            slots > 0 && slots <= MAX_SLOTS,
            "PerCpu needs 1 to {MAX_SLOTS} slots, not {slots}"
        );
        let n = slots.next_power_of_two();
        Self {
            slots: (0..n)
                .map(|_| CachePadded::new(Mutex::new(init())))
                .collect(),
        }
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: there is at least one slot. Present for the `len`/`is_empty` pair.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Runs `f` on the calling thread's slot and returns its result.
    ///
    /// If another thread holds that slot (threads outnumber slots), `f` runs on the first free
    /// slot after it; if all are busy, it waits for its own.
    ///
    /// # Examples
    /// ```
    /// let seen = thrifty::counter::PerCpu::new(Vec::<u32>::new);
    /// seen.with(|v| v.push(7));
    /// assert_eq!(seen.fold(0, |n, v| n + v.len()), 1);
    /// ```
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mine = thread_slot() & (self.slots.len() - 1);
        match self.slots[mine].try_lock() {
            Some(mut guard) => f(&mut guard),
            None => self.with_slow(mine, f),
        }
    }

    /// Our slot is busy: borrow another free one, or wait for ours.
    #[cold]
    #[inline(never)]
    fn with_slow<R>(&self, mine: usize, f: impl FnOnce(&mut T) -> R) -> R {
        let mask = self.slots.len() - 1;
        for step in 1..self.slots.len() {
            if let Some(mut guard) = self.slots[(mine + step) & mask].try_lock() {
                return f(&mut guard);
            }
        }
        let mut guard = self.slots[mine].lock();
        f(&mut guard)
    }

    /// Combines every slot into one value, locking one slot at a time: slots already visited
    /// may change again before `fold` returns, so the result is exact once `with` callers are
    /// quiescent.
    pub fn fold<A>(&self, init: A, mut f: impl FnMut(A, &T) -> A) -> A {
        self.slots
            .iter()
            .fold(init, |acc, slot| f(acc, &slot.lock()))
    }

    /// Runs `f` on every slot in turn, each under its lock: to drain or reset them.
    ///
    /// # Examples
    /// ```
    /// let batches = thrifty::counter::PerCpu::new(Vec::<u32>::new);
    /// batches.with(|b| b.extend([1, 2, 3]));
    /// let mut flushed = Vec::new();
    /// batches.for_each(|b| flushed.append(b));
    /// assert_eq!(flushed, [1, 2, 3]);
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(&mut T)) {
        for slot in self.slots.iter() {
            f(&mut slot.lock());
        }
    }

    /// Every slot, without locking: `&mut self` proves no `with` is running.
    ///
    /// # Examples
    /// ```
    /// let mut hits = thrifty::counter::PerCpu::with_slots(4, || 0u32);
    /// hits.with(|n| *n += 2);
    /// assert_eq!(hits.iter_mut().map(|n| *n).sum::<u32>(), 2);
    /// ```
    #[cfg(not(loom))]
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.slots.iter_mut().map(|slot| slot.get_mut())
    }

    /// The values, one per slot.
    pub fn into_vec(self) -> Vec<T> {
        self.slots
            .into_vec()
            .into_iter()
            .map(|slot| CachePadded::into_inner(slot).into_inner())
            .collect()
    }
}

/// [`PerCpu::new`] with `T::default` in every slot.
///
/// # Examples
/// ```
/// let sums: thrifty::counter::PerCpu<u64> = Default::default();
/// assert_eq!(sums.fold(0, |acc, n| acc + n), 0);
/// ```
impl<T: Default> Default for PerCpu<T> {
    fn default() -> Self {
        Self::new(T::default)
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for PerCpu<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for slot in self.slots.iter() {
            match slot.try_lock() {
                Some(value) => list.entry(&*value),
                None => list.entry(&format_args!("<busy>")),
            };
        }
        list.finish()
    }
}
