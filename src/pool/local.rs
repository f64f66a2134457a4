//! The per-slot cache: a few objects for one thread, owned by the pool, touched by one thread.
//!
//! A pool holds an array of [`Local`]s, one per thread slot index (`sync::try_thread_slot`).
//! Slot indices of live threads are distinct, so the thread that holds index `i` is the only
//! one that touches `locals[i]`: no lock, no read-modify-write, no cache line shared with another
//! thread on the fast path. When a thread exits its index goes back to the registry (under the
//! registry's mutex, which orders the old owner's last access before the next owner's first),
//! and the next thread to take that index inherits the cache and its objects. The cache belongs
//! to the pool, not to the thread, so nothing is lost or leaked when threads come and go, and no
//! thread-local destructor ever needs to reach a pool.
//!
//! Each cache also holds a *reservation* against the pool's budget (`shared::Budget`): the
//! objects and bytes it may keep without asking the budget again. Objects retained anywhere never
//! exceed the budget because the budget counts reservations, not objects. In steady state a
//! thread's get pops one object (the reservation stays) and its put pushes it back within the
//! reservation: the budget's shared atomics are not touched.

use super::shared::Budget;
use crate::sync::{AtomicU64, AtomicUsize, Ordering, UnsafeCell};
use smallvec::SmallVec;
use std::fmt;
use std::mem::{ManuallyDrop, MaybeUninit};

/// Objects one thread's cache holds at most.
pub(super) const LOCAL_CAP: usize = 4;

/// Objects taken out of a cache, to be dropped once the cache is no longer borrowed (a `T`'s
/// destructor is user code and may re-enter the pool).
pub(super) type Flushed<T> = SmallVec<[(T, usize); LOCAL_CAP]>;

/// One statistic, written by one thread at a time.
#[derive(Debug, Default)]
pub(super) struct Tally(AtomicU64);

impl Tally {
    /// Adds one where the caller is the only writer (a cache's owner): a load and a store, no
    /// locked instruction.
    #[inline(always)]
    pub(super) fn bump_owned(&self) {
        // Relaxed: a statistic; nothing is published through it, and the owner is the only
        // writer, so no increment can be lost.
        self.0
            .store(self.0.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Adds one where any thread may write.
    #[inline]
    pub(super) fn bump(&self) {
        // Relaxed: a statistic; nothing is published through it.
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The current value (a snapshot that may lag concurrent writers).
    pub(super) fn get(&self) -> u64 {
        // Relaxed: a statistic read for reporting.
        self.0.load(Ordering::Relaxed)
    }
}

/// The four event counts `Pool::stats` sums.
#[derive(Debug, Default)]
pub(super) struct Tallies {
    pub(super) hits: Tally,
    pub(super) misses: Tally,
    pub(super) returned: Tally,
    pub(super) discarded: Tally,
}

/// One slot's cache and statistics. Padded by the pool so neighbours never share a line.
#[derive(Debug)]
pub(super) struct Local<T> {
    /// The objects and the reservation; only the slot's owner touches it (see the module doc).
    cache: UnsafeCell<Cache<T>>,
    /// Event counts, written by the owner only.
    pub(super) tallies: Tallies,
    /// Mirror of `cache.items.len()` for `Pool::stats`, written by the owner only.
    pub(super) len: AtomicUsize,
}

struct Cache<T> {
    /// `items[..len]` are initialised; the rest are not. Fixed-size and inline: a cache never
    /// allocates, and a push or pop moves one `T` and nothing else.
    items: [MaybeUninit<T>; LOCAL_CAP],
    /// `weights[i]` is the weight of `items[i]` (bytes for buffer pools, 0 otherwise).
    weights: [usize; LOCAL_CAP],
    len: usize,
    /// Sum of `weights[..len]`.
    bytes: usize,
    /// Objects this cache may hold under the budget: `len <= reserved <= LOCAL_CAP`.
    reserved: usize,
    /// Bytes this cache may hold under the budget: `bytes <= reserved_bytes`.
    reserved_bytes: usize,
    /// The pool's `epoch` when this cache last synced; an older value means a `clear` or `trim`
    /// asked every cache to give its objects back.
    epoch: usize,
}

impl<T> Cache<T> {
    /// Takes every object out (`len` becomes 0).
    fn take_all(&mut self) -> Flushed<T> {
        let len = std::mem::replace(&mut self.len, 0);
        self.bytes = 0;
        (0..len)
            .map(|i| {
                // SAFETY: `i < len`, so `items[i]` is initialised, and `len` is already 0, so
                // it is read out exactly once.
                (unsafe { self.items[i].assume_init_read() }, self.weights[i])
            })
            .collect()
    }
}

impl<T> Drop for Cache<T> {
    fn drop(&mut self) {
        drop(self.take_all());
    }
}

impl<T> fmt::Debug for Cache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.len)
            .field("bytes", &self.bytes)
            .field("reserved", &self.reserved)
            .field("reserved_bytes", &self.reserved_bytes)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl<T> Local<T> {
    pub(super) fn new(epoch: usize) -> Self {
        Self {
            cache: UnsafeCell::new(Cache {
                items: [const { MaybeUninit::uninit() }; LOCAL_CAP],
                weights: [0; LOCAL_CAP],
                len: 0,
                bytes: 0,
                reserved: 0,
                reserved_bytes: 0,
                epoch,
            }),
            tallies: Tallies::default(),
            len: AtomicUsize::new(0),
        }
    }

    /// Runs `f` on the cache.
    ///
    /// # Safety
    /// The caller is this slot's owner: the calling thread's `try_thread_slot()` is this
    /// cache's index (or the caller has `&mut` to the pool), and `f` runs no user code (no
    /// `T` destructor, reset, factory), so the cache cannot be re-entered while borrowed.
    #[inline(always)]
    unsafe fn with<R>(&self, f: impl FnOnce(&mut Cache<T>) -> R) -> R {
        self.cache.with_mut(|cache| {
            // SAFETY: the caller owns the slot and runs no re-entrant code (this fn's
            // contract), so this is the only reference to the cache.
            f(unsafe { &mut *cache })
        })
    }

    #[inline(always)]
    fn publish_len(&self, cache: &Cache<T>) {
        // Relaxed: a statistic mirror read by `Pool::stats`; the objects themselves are never
        // handed to another thread through it.
        self.len.store(cache.len, Ordering::Relaxed);
    }

    /// Pops an object if the cache has one.
    ///
    /// A cache that a `clear` or `trim` asked to flush still hands out what it holds (objects
    /// are reset on the way out either way); it flushes at its owner's next put, which checks
    /// the epoch. That keeps one load and compare off every get.
    ///
    /// # Safety
    /// The caller is this slot's owner (see [`Local::with`]).
    #[inline(always)]
    pub(super) unsafe fn pop(&self) -> Option<T> {
        let pop = |cache: &mut Cache<T>| {
            if cache.len == 0 {
                return None;
            }
            let len = cache.len - 1;
            debug_assert!(len < LOCAL_CAP);
            cache.len = len;
            // SAFETY: `len < LOCAL_CAP` (the cache never holds more), so both reads are in
            // bounds; `items[..=len]` were initialised and `len` has been lowered past this
            // one, so it is read out exactly once.
            let (obj, weight) = unsafe {
                (
                    cache.items.get_unchecked(len).assume_init_read(),
                    *cache.weights.get_unchecked(len),
                )
            };
            cache.bytes -= weight;
            self.publish_len(cache);
            Some(obj)
        };
        // SAFETY: forwarded from this fn's contract; `pop` only moves values.
        unsafe { self.with(pop) }
    }

    /// Moves the value out of `src` into the cache if it fits in the cache and its current
    /// reservation, and returns true; leaves `src` alone and returns false if not.
    ///
    /// # Safety
    /// The caller is this slot's owner (see [`Local::with`]), `src` holds a value, and after a
    /// `true` the caller treats `src` as empty (never reads or drops it again).
    #[inline(always)]
    pub(super) unsafe fn push_from(
        &self,
        src: &mut ManuallyDrop<T>,
        weight: usize,
        epoch: usize,
    ) -> bool {
        let push = |cache: &mut Cache<T>| {
            let len = cache.len;
            if cache.epoch == epoch
                && len < cache.reserved
                && cache.bytes + weight <= cache.reserved_bytes
            {
                debug_assert!(cache.reserved <= LOCAL_CAP);
                // SAFETY: `len < reserved <= LOCAL_CAP`, so both writes are in bounds; `src`
                // holds a value (contract) that the caller will not touch again after `true`;
                // it lands in the first uninitialised item.
                unsafe {
                    cache
                        .items
                        .get_unchecked_mut(len)
                        .write(ManuallyDrop::take(src));
                    *cache.weights.get_unchecked_mut(len) = weight;
                }
                cache.len = len + 1;
                cache.bytes += weight;
                self.publish_len(cache);
                true
            } else {
                false
            }
        };
        // SAFETY: forwarded from this fn's contract; `push` only moves values.
        unsafe { self.with(push) }
    }

    /// The slow push: syncs with `epoch` (flushing a stale cache); if the cache is full, moves
    /// all its objects into `spill`, each still holding its unit of the reservation (the
    /// caller stores them in the shared store, which keeps the budget exact); then grows the
    /// reservation from `budget` to fit `obj`, by a whole cache's worth of objects when the
    /// budget allows, so the next puts need no atomics. On success returns what a stale flush
    /// took out (to drop); on failure also gives `obj` back.
    ///
    /// # Safety
    /// The caller is this slot's owner (see [`Local::with`]).
    #[allow(clippy::type_complexity)]
    pub(super) unsafe fn push_reserving(
        &self,
        obj: T,
        weight: usize,
        epoch: usize,
        budget: &Budget,
        spill: &mut Flushed<T>,
    ) -> Result<Flushed<T>, (T, Flushed<T>)> {
        let push = |cache: &mut Cache<T>| {
            let flushed = Self::sync(cache, epoch, budget);
            if cache.len == LOCAL_CAP {
                let moved_bytes = cache.bytes;
                *spill = cache.take_all();
                cache.reserved -= LOCAL_CAP;
                cache.reserved_bytes -= moved_bytes;
            }
            let len = cache.len;
            let need = (len + 1).saturating_sub(cache.reserved);
            let need_bytes = (cache.bytes + weight).saturating_sub(cache.reserved_bytes);
            let want = LOCAL_CAP - cache.reserved;
            let got = if budget.reserve(want, need_bytes) {
                want
            } else if need < want && budget.reserve(need, need_bytes) {
                need
            } else {
                self.publish_len(cache);
                return Err((obj, flushed));
            };
            cache.reserved += got;
            cache.reserved_bytes += need_bytes;
            cache.items[len].write(obj);
            cache.weights[len] = weight;
            cache.len = len + 1;
            cache.bytes += weight;
            self.publish_len(cache);
            Ok(flushed)
        };
        // SAFETY: forwarded from this fn's contract; `push` only moves values and touches the
        // budget's atomics.
        unsafe { self.with(push) }
    }

    /// Takes in a batch from the shared store: `lent` (the weight of the object the caller
    /// hands out) and `rest` (objects to cache), each with its unit of the budget, which
    /// becomes this cache's reservation. The cache must be empty with no reservation (as
    /// [`Local::refresh`] leaves it), and the batch at most `LOCAL_CAP` objects.
    ///
    /// # Safety
    /// The caller is this slot's owner (see [`Local::with`]).
    pub(super) unsafe fn adopt(&self, lent: usize, rest: Flushed<T>) {
        let adopt = |cache: &mut Cache<T>| {
            debug_assert!(cache.len == 0 && cache.reserved == 0 && rest.len() < LOCAL_CAP);
            cache.reserved = rest.len() + 1;
            cache.reserved_bytes = lent;
            for (i, (obj, weight)) in rest.into_iter().enumerate() {
                cache.items[i].write(obj);
                cache.weights[i] = weight;
                cache.len = i + 1;
                cache.bytes += weight;
                cache.reserved_bytes += weight;
            }
            self.publish_len(cache);
        };
        // SAFETY: forwarded from this fn's contract; `adopt` only moves values.
        unsafe { self.with(adopt) }
    }

    /// The slow get's first step: syncs with `epoch`, and if the cache is empty gives its whole
    /// reservation back to `budget` (this thread is taking from the shared store, so the
    /// reservation would only keep another thread's returns out). Returns what was flushed.
    ///
    /// # Safety
    /// The caller is this slot's owner (see [`Local::with`]).
    pub(super) unsafe fn refresh(&self, epoch: usize, budget: &Budget) -> Flushed<T> {
        // SAFETY: forwarded from this fn's contract; the closure only moves values and
        // touches the budget's atomics.
        unsafe {
            self.with(|cache| {
                let flushed = Self::sync(cache, epoch, budget);
                if cache.len == 0 && (cache.reserved | cache.reserved_bytes) != 0 {
                    budget.release(cache.reserved, cache.reserved_bytes);
                    cache.reserved = 0;
                    cache.reserved_bytes = 0;
                }
                self.publish_len(cache);
                flushed
            })
        }
    }

    /// Takes every object out and gives the whole reservation back, whatever the epoch.
    ///
    /// # Safety
    /// The caller is this slot's owner (see [`Local::with`]).
    pub(super) unsafe fn drain(&self, epoch: usize, budget: &Budget) -> Flushed<T> {
        // SAFETY: forwarded from this fn's contract; the closure only moves values and
        // touches the budget's atomics.
        unsafe {
            self.with(|cache| {
                let flushed = Self::flush(cache, budget);
                cache.epoch = epoch;
                self.publish_len(cache);
                flushed
            })
        }
    }

    /// Flushes `cache` if it is older than `epoch`.
    fn sync(cache: &mut Cache<T>, epoch: usize, budget: &Budget) -> Flushed<T> {
        if cache.epoch == epoch {
            return Flushed::new();
        }
        cache.epoch = epoch;
        Self::flush(cache, budget)
    }

    fn flush(cache: &mut Cache<T>, budget: &Budget) -> Flushed<T> {
        budget.release(cache.reserved, cache.reserved_bytes);
        cache.reserved = 0;
        cache.reserved_bytes = 0;
        cache.take_all()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    impl<T> Local<T> {
        /// `push_from` with the value given back on failure.
        unsafe fn push(&self, obj: T, weight: usize, epoch: usize) -> Result<(), T> {
            let mut obj = ManuallyDrop::new(obj);
            // SAFETY: forwarded; `obj` holds a value and is not touched after `true`.
            if unsafe { self.push_from(&mut obj, weight, epoch) } {
                Ok(())
            } else {
                Err(ManuallyDrop::into_inner(obj))
            }
        }
    }

    #[test]
    fn push_needs_a_reservation_and_pop_keeps_it() {
        let budget = Budget::new(2, usize::MAX);
        let local = Local::new(0);
        // SAFETY: this test thread is the only one touching `local`.
        unsafe {
            assert_eq!(
                local.push(vec![1u8], 0, 0),
                Err(vec![1]),
                "no reservation yet"
            );
            assert!(local
                .push_reserving(vec![1u8], 0, 0, &budget, &mut Flushed::new())
                .is_ok());
            assert!(local
                .push_reserving(vec![2u8], 0, 0, &budget, &mut Flushed::new())
                .is_ok());
            let third = local.push_reserving(vec![3u8], 0, 0, &budget, &mut Flushed::new());
            assert!(
                matches!(third, Err((ref v, _)) if v == &[3]),
                "budget of 2 is spent"
            );
            assert_eq!(local.pop(), Some(vec![2]));
            assert_eq!(
                local.push(vec![4u8], 0, 0),
                Ok(()),
                "the reservation stayed"
            );
            assert_eq!(
                local.push(vec![5u8], 0, 1),
                Err(vec![5]),
                "a stale cache takes nothing"
            );
            let flushed = local.refresh(1, &budget);
            assert_eq!(flushed.len(), 2);
            assert_eq!(budget.used(), (0, 0), "a flush gives the reservation back");
        }
    }

    #[test]
    fn bytes_are_reserved_too() {
        let budget = Budget::new(usize::MAX, 100);
        let local = Local::new(0);
        // SAFETY: this test thread is the only one touching `local`.
        unsafe {
            assert!(local
                .push_reserving(1u8, 60, 0, &budget, &mut Flushed::new())
                .is_ok());
            assert!(
                local
                    .push_reserving(2u8, 60, 0, &budget, &mut Flushed::new())
                    .is_err(),
                "120 > 100 bytes"
            );
            assert!(local
                .push_reserving(3u8, 40, 0, &budget, &mut Flushed::new())
                .is_ok());
            // Objects are reserved a cache-full at a time; bytes only as needed.
            assert_eq!(budget.used(), (LOCAL_CAP, 100));
            assert_eq!(local.pop(), Some(3));
            assert_eq!(local.pop(), Some(1));
            assert!(local.refresh(0, &budget).is_empty());
            assert_eq!(
                budget.used(),
                (0, 0),
                "an empty cache gives its reservation back"
            );
        }
    }

    #[test]
    fn a_full_cache_spills_everything_with_its_reservation() {
        let budget = Budget::new(usize::MAX, usize::MAX);
        let local = Local::new(0);
        let mut spill = Flushed::new();
        // SAFETY: this test thread is the only one touching `local`.
        unsafe {
            for i in 0..LOCAL_CAP {
                assert!(local.push_reserving(i, 1, 0, &budget, &mut spill).is_ok());
                assert!(spill.is_empty());
            }
            assert_eq!(budget.used(), (LOCAL_CAP, LOCAL_CAP));
            assert!(local.push_reserving(99, 1, 0, &budget, &mut spill).is_ok());
            assert_eq!(spill.len(), LOCAL_CAP, "the whole cache moves out at once");
            // The spilled objects keep their units; the new one took a fresh cache-full.
            assert_eq!(budget.used(), (2 * LOCAL_CAP, LOCAL_CAP + 1));
            assert_eq!(local.drain(0, &budget).len(), 1);
        }
        assert_eq!(
            budget.used(),
            (LOCAL_CAP, LOCAL_CAP),
            "the spill's units remain"
        );
        // What the shared store does with spilled objects: give their units back on take.
        budget.release(spill.len(), spill.iter().map(|(_, w)| w).sum());
        assert_eq!(budget.used(), (0, 0));
        // Adopting a batch turns its units into the cache's reservation.
        assert!(budget.reserve(3, 30));
        let batch: Flushed<usize> = [(7, 10), (8, 10)].into_iter().collect();
        // SAFETY: as above.
        unsafe {
            local.adopt(10, batch);
            assert_eq!(local.pop(), Some(8));
            assert_eq!(local.pop(), Some(7));
            assert!(local.refresh(0, &budget).is_empty());
        }
        assert_eq!(
            budget.used(),
            (0, 0),
            "adopted units went back with the reservation"
        );
    }
}
