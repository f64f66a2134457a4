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
use super::Item;
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, CachePadded, Ordering, UnsafeCell};
use smallvec::SmallVec;
use std::fmt;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr;

/// Objects one thread's cache stacks at most, besides its hot slot.
pub(super) const LOCAL_CAP: usize = 4;

/// Objects taken out of a cache (its stack and its hot slot), with their weights, to be dropped
/// once the cache is no longer borrowed (a `T`'s destructor is user code and may re-enter the
/// pool).
pub(super) type Flushed<T> = SmallVec<[(Item<T>, usize); LOCAL_CAP + 1]>;

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
///
/// The cache is a *hot slot* (the object its owner returned last) in front of a small stack.
/// A thread that gets and puts one object at a time only touches the hot slot: its get is a
/// load and a store of one pointer, its put a load, two compares and a store. A stack would make
/// every get and put read the length the previous one wrote and index with it, a chain of
/// store-to-load forwards through memory that measured 1.1 ns more per get + put.
pub(super) struct Local<T> {
    /// The hot slot: null, or an `Item<T>` from `Box::into_raw` that this cache retains under
    /// `Cache::hot_room`. Written by the owner only; `Pool::stats` reads whether it is null.
    hot: AtomicPtr<CachePadded<T>>,
    /// The stack and the reservations; only the slot's owner touches it (see the module doc).
    cache: UnsafeCell<Cache<T>>,
    /// Event counts, written by the owner only.
    pub(super) tallies: Tallies,
    /// Mirror of the stack's length for `Pool::stats`, written by the owner only.
    len: AtomicUsize,
}

struct Cache<T> {
    /// `items[..len]` are initialised; the rest are not. Fixed-size and inline: a cache never
    /// allocates, and a push or pop moves one pointer.
    items: [MaybeUninit<Item<T>>; LOCAL_CAP],
    /// `weights[i]` is the weight of `items[i]` (bytes for buffer pools, 0 otherwise).
    weights: [usize; LOCAL_CAP],
    len: usize,
    /// Sum of `weights[..len]`.
    bytes: usize,
    /// Objects the stack may hold under the budget: `len <= reserved <= LOCAL_CAP`.
    reserved: usize,
    /// Bytes the stack may hold under the budget: `bytes <= reserved_bytes`.
    reserved_bytes: usize,
    /// The hot slot's reservation: 0 for none, else one object of fewer than `hot_room` bytes
    /// (`hot_room - 1` bytes are reserved). One number, so the fast put checks it with one
    /// compare: `weight < hot_room`.
    hot_room: usize,
    /// The pool's `epoch` when this cache last synced; an older value means a `clear` or `trim`
    /// asked every cache to give its objects back.
    epoch: usize,
}

/// The objects and bytes a hot-slot reservation of `room` holds against the budget.
fn hot_units(room: usize) -> (usize, usize) {
    match room {
        0 => (0, 0),
        room => (1, room - 1),
    }
}

impl<T> Cache<T> {
    /// Takes every stacked object out (`len` becomes 0).
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

impl<T> Drop for Local<T> {
    fn drop(&mut self) {
        // Relaxed: `&mut self`, no other thread can see this cache any more.
        let hot = self.hot.swap(ptr::null_mut(), Ordering::Relaxed);
        if !hot.is_null() {
            // SAFETY: a non-null hot slot holds an `Item<T>` from `Box::into_raw` that nothing
            // else owns; it was swapped out, so it is freed once.
            drop(unsafe { Box::from_raw(hot) });
        }
    }
}

impl<T> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local")
            .field("retained", &self.retained())
            .field("tallies", &self.tallies)
            .finish_non_exhaustive()
    }
}

impl<T> Local<T> {
    pub(super) fn new(epoch: usize) -> Self {
        Self {
            hot: AtomicPtr::new(ptr::null_mut()),
            cache: UnsafeCell::new(Cache {
                items: [const { MaybeUninit::uninit() }; LOCAL_CAP],
                weights: [0; LOCAL_CAP],
                len: 0,
                bytes: 0,
                reserved: 0,
                reserved_bytes: 0,
                hot_room: 0,
                epoch,
            }),
            tallies: Tallies::default(),
            len: AtomicUsize::new(0),
        }
    }

    /// Objects this cache retains now (exact for its owner; a snapshot for anyone else).
    pub(super) fn retained(&self) -> usize {
        // Relaxed: statistics; the pointer is only compared with null, never followed.
        self.len.load(Ordering::Relaxed) + usize::from(!self.hot.load(Ordering::Relaxed).is_null())
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

    /// Takes the hot slot's object, if it holds one. Its reservation stays with the cache
    /// while the object is out, so the matching put needs no budget.
    ///
    /// A cache that a `clear` or `trim` asked to flush still hands out what it holds (objects
    /// are reset on the way out either way); it flushes at its owner's next put, which checks
    /// the epoch. That keeps one load and compare off every get.
    ///
    /// # Safety
    /// The caller is this slot's owner (see [`Local::with`]).
    #[inline(always)]
    pub(super) unsafe fn pop_hot(&self) -> Option<Item<T>> {
        // Relaxed: only the owner writes the slot; other threads only test it for null.
        let hot = self.hot.load(Ordering::Relaxed);
        if hot.is_null() {
            return None;
        }
        self.hot.store(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: a non-null hot slot holds an `Item<T>` from `Box::into_raw`, owned by this
        // cache; the slot was cleared above, so it is taken out once.
        Some(unsafe { Box::from_raw(hot) })
    }

    /// Moves the object out of `src` into the hot slot if the slot is empty, its reservation
    /// has room for `weight`, and the cache is in sync with `epoch`; returns whether it did.
    ///
    /// # Safety
    /// The caller is this slot's owner (see [`Local::with`]), `src` holds a value, and after a
    /// `true` the caller treats `src` as empty (never reads or drops it again).
    #[inline(always)]
    pub(super) unsafe fn push_hot(
        &self,
        src: &mut ManuallyDrop<Item<T>>,
        weight: usize,
        epoch: usize,
    ) -> bool {
        // Relaxed: as in `pop_hot`.
        if !self.hot.load(Ordering::Relaxed).is_null() {
            return false;
        }
        // SAFETY: forwarded from this fn's contract; the closure only reads.
        if !unsafe { self.with(|cache| weight < cache.hot_room && cache.epoch == epoch) } {
            return false;
        }
        // SAFETY: `src` holds a value (contract), which the caller never touches after `true`.
        let obj = unsafe { ManuallyDrop::take(src) };
        self.hot.store(Box::into_raw(obj), Ordering::Relaxed);
        true
    }

    /// Pops the newest stacked object if there is one.
    ///
    /// # Safety
    /// The caller is this slot's owner (see [`Local::with`]).
    #[inline]
    pub(super) unsafe fn pop(&self) -> Option<Item<T>> {
        let pop = |cache: &mut Cache<T>| {
            if cache.len == 0 {
                return None;
            }
            let len = cache.len - 1;
            debug_assert!(len < LOCAL_CAP);
            cache.len = len;
            // SAFETY: `len < LOCAL_CAP` (the stack never holds more), so both reads are in
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

    /// The put that missed the hot slot: syncs with `epoch` (flushing a stale cache), then
    /// keeps `obj` in the first place that can take it:
    /// 1. the hot slot, if empty, growing its reservation from `budget` to fit `weight`;
    /// 2. the stack, within its reservation;
    /// 3. the stack, growing its reservation by a whole stack's worth of objects when the
    ///    budget allows (so the next puts need no atomics); if the stack is full, its objects
    ///    first move into `spill`, each still holding its unit of the reservation (the caller
    ///    stores them in the shared store, which keeps the budget exact).
    ///
    /// On success returns what a stale flush took out (to drop); on failure also gives `obj`
    /// back.
    ///
    /// # Safety
    /// The caller is this slot's owner (see [`Local::with`]).
    #[allow(clippy::type_complexity)]
    pub(super) unsafe fn push_reserving(
        &self,
        obj: Item<T>,
        weight: usize,
        epoch: usize,
        budget: &Budget,
        spill: &mut Flushed<T>,
    ) -> Result<Flushed<T>, (Item<T>, Flushed<T>)> {
        let push = |cache: &mut Cache<T>| {
            let flushed = self.sync(cache, epoch, budget);
            self.publish_len(cache);
            // Relaxed: as in `pop_hot`. (A weight of `usize::MAX` cannot be reserved as
            // `hot_room - 1`; it takes the stack.)
            if self.hot.load(Ordering::Relaxed).is_null() && weight < usize::MAX {
                let (count, bytes) = hot_units(cache.hot_room);
                if budget.reserve(1 - count, weight.saturating_sub(bytes)) {
                    cache.hot_room = cache.hot_room.max(weight + 1);
                    self.hot.store(Box::into_raw(obj), Ordering::Relaxed);
                    return Ok(flushed);
                }
            }
            if cache.len == cache.reserved || cache.bytes + weight > cache.reserved_bytes {
                if cache.len == LOCAL_CAP {
                    let moved_bytes = cache.bytes;
                    *spill = cache.take_all();
                    cache.reserved -= LOCAL_CAP;
                    cache.reserved_bytes -= moved_bytes;
                }
                let need = (cache.len + 1).saturating_sub(cache.reserved);
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
            }
            let len = cache.len;
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
    /// hands out) and `rest` (objects to stack), each with its unit of the budget, which
    /// becomes this cache's reservation: the lent object's unit the hot slot's, the others the
    /// stack's. The cache must be empty with no reservation (as [`Local::refresh`] leaves a
    /// cache whose stack and hot slot were empty), and the batch at most `LOCAL_CAP` objects.
    ///
    /// # Safety
    /// The caller is this slot's owner (see [`Local::with`]).
    pub(super) unsafe fn adopt(&self, lent: usize, rest: Flushed<T>) {
        let adopt = |cache: &mut Cache<T>| {
            debug_assert!(cache.len == 0 && cache.reserved == 0 && cache.hot_room == 0);
            debug_assert!(rest.len() < LOCAL_CAP);
            cache.hot_room = lent.saturating_add(1);
            cache.reserved = rest.len();
            cache.reserved_bytes = 0;
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

    /// The slow get's step after the stack ran dry: syncs with `epoch`, and if the cache holds
    /// nothing gives its whole reservation back to `budget` (this thread is taking from the
    /// shared store, so the reservation would only keep another thread's returns out). Returns
    /// what was flushed.
    ///
    /// # Safety
    /// The caller is this slot's owner (see [`Local::with`]).
    pub(super) unsafe fn refresh(&self, epoch: usize, budget: &Budget) -> Flushed<T> {
        // SAFETY: forwarded from this fn's contract; the closure only moves values and
        // touches the budget's atomics.
        unsafe {
            self.with(|cache| {
                let flushed = self.sync(cache, epoch, budget);
                // Relaxed: as in `pop_hot`.
                if cache.len == 0 && self.hot.load(Ordering::Relaxed).is_null() {
                    self.release(cache, budget);
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
                let flushed = self.flush(cache, budget);
                cache.epoch = epoch;
                self.publish_len(cache);
                flushed
            })
        }
    }

    /// Flushes `cache` if it is older than `epoch`.
    fn sync(&self, cache: &mut Cache<T>, epoch: usize, budget: &Budget) -> Flushed<T> {
        if cache.epoch == epoch {
            return Flushed::new();
        }
        cache.epoch = epoch;
        self.flush(cache, budget)
    }

    /// Takes the stack and the hot slot out and gives every reservation back.
    fn flush(&self, cache: &mut Cache<T>, budget: &Budget) -> Flushed<T> {
        let hot_bytes = hot_units(cache.hot_room).1;
        self.release(cache, budget);
        let mut flushed = cache.take_all();
        // Relaxed: as in `pop_hot`; only the owner (the caller) writes the slot.
        let hot = self.hot.swap(ptr::null_mut(), Ordering::Relaxed);
        if !hot.is_null() {
            // SAFETY: a non-null hot slot holds an `Item<T>` from `Box::into_raw` owned by
            // this cache; swapped out, so it is taken once. Its weight is at most what its
            // reservation held, which is what it is accounted at from here on.
            flushed.push((unsafe { Box::from_raw(hot) }, hot_bytes));
        }
        flushed
    }

    /// Gives the stack's and the hot slot's reservations back to `budget`.
    fn release(&self, cache: &mut Cache<T>, budget: &Budget) {
        let (hot_count, hot_bytes) = hot_units(cache.hot_room);
        budget.release(cache.reserved + hot_count, cache.reserved_bytes + hot_bytes);
        cache.reserved = 0;
        cache.reserved_bytes = 0;
        cache.hot_room = 0;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn item(v: usize) -> Item<usize> {
        Box::new(CachePadded::new(v))
    }

    fn value(item: Option<Item<usize>>) -> Option<usize> {
        item.map(|b| **b)
    }

    impl Local<usize> {
        /// `push_hot` with the value given back on failure.
        unsafe fn hot(&self, v: usize, weight: usize, epoch: usize) -> Result<(), usize> {
            let mut obj = ManuallyDrop::new(item(v));
            // SAFETY: forwarded; `obj` holds a value and is not touched after `true`.
            if unsafe { self.push_hot(&mut obj, weight, epoch) } {
                Ok(())
            } else {
                Err(**ManuallyDrop::into_inner(obj))
            }
        }

        /// `push_reserving` with a fresh spill, the object given back on failure.
        unsafe fn reserving(&self, v: usize, weight: usize, budget: &Budget) -> Result<(), usize> {
            // SAFETY: forwarded.
            match unsafe { self.push_reserving(item(v), weight, 0, budget, &mut Flushed::new()) } {
                Ok(flushed) => {
                    assert!(flushed.is_empty());
                    Ok(())
                }
                Err((obj, _)) => Err(**obj),
            }
        }
    }

    #[test]
    fn the_hot_slot_needs_a_reservation_and_keeps_it_while_lent() {
        let budget = Budget::new(2, usize::MAX);
        let local = Local::new(0);
        // SAFETY: this test thread is the only one touching `local`.
        unsafe {
            assert_eq!(local.hot(1, 0, 0), Err(1), "no reservation yet");
            assert_eq!(local.reserving(1, 0, &budget), Ok(()));
            assert_eq!(budget.used(), (1, 0), "the hot slot reserves one object");
            assert_eq!(local.hot(2, 0, 0), Err(2), "the slot is taken");
            assert_eq!(value(local.pop_hot()), Some(1));
            assert_eq!(local.hot(3, 0, 0), Ok(()), "the reservation stayed");
            assert_eq!(local.reserving(4, 0, &budget), Ok(()), "onto the stack");
            assert_eq!(
                local.reserving(5, 0, &budget),
                Err(5),
                "budget of 2 is spent"
            );
            assert_eq!(local.retained(), 2);
            assert_eq!(value(local.pop_hot()), Some(3));
            assert_eq!(local.hot(6, 0, 1), Err(6), "a stale cache takes nothing");
            let flushed = local.refresh(1, &budget);
            assert_eq!(flushed.len(), 1, "the stacked object");
            assert_eq!(local.retained(), 0);
            assert_eq!(budget.used(), (0, 0), "a flush gives the reservation back");
        }
    }

    #[test]
    fn bytes_are_reserved_too() {
        let budget = Budget::new(usize::MAX, 100);
        let local = Local::new(0);
        // SAFETY: this test thread is the only one touching `local`.
        unsafe {
            assert_eq!(local.reserving(1, 60, &budget), Ok(()), "into the hot slot");
            assert_eq!(local.reserving(2, 60, &budget), Err(2), "120 > 100 bytes");
            assert_eq!(local.reserving(3, 40, &budget), Ok(()), "onto the stack");
            // The stack reserves a stack-full of objects at a time; bytes only as needed.
            assert_eq!(budget.used(), (1 + LOCAL_CAP, 100));
            assert_eq!(value(local.pop_hot()), Some(1));
            assert_eq!(local.hot(4, 61, 0), Err(4), "heavier than its reservation");
            assert_eq!(local.hot(5, 60, 0), Ok(()));
            assert!(local.refresh(0, &budget).is_empty());
            assert_eq!(budget.used(), (1 + LOCAL_CAP, 100), "not empty: kept");
            assert_eq!(value(local.pop_hot()), Some(5));
            assert_eq!(value(local.pop()), Some(3));
            assert!(local.refresh(0, &budget).is_empty());
            assert_eq!(
                budget.used(),
                (0, 0),
                "an empty cache gives its reservation back"
            );
        }
    }

    #[test]
    fn an_empty_hot_slot_grows_its_reservation_for_a_heavier_object() {
        let budget = Budget::new(usize::MAX, 100);
        let local = Local::new(0);
        // SAFETY: this test thread is the only one touching `local`.
        unsafe {
            assert_eq!(local.reserving(1, 10, &budget), Ok(()));
            assert_eq!(value(local.pop_hot()), Some(1));
            assert_eq!(local.reserving(2, 30, &budget), Ok(()), "grown by 20 bytes");
            assert_eq!(budget.used(), (1, 30));
            let flushed = local.drain(0, &budget);
            assert_eq!(flushed.len(), 1);
            assert_eq!(flushed[0].1, 30, "accounted at its reservation");
        }
        assert_eq!(budget.used(), (0, 0));
    }

    #[test]
    fn a_full_cache_spills_its_stack_with_its_reservation() {
        let budget = Budget::new(usize::MAX, usize::MAX);
        let local = Local::new(0);
        let mut spill = Flushed::new();
        // SAFETY: this test thread is the only one touching `local`.
        unsafe {
            for i in 0..=LOCAL_CAP {
                assert!(local
                    .push_reserving(item(i), 1, 0, &budget, &mut spill)
                    .is_ok());
                assert!(spill.is_empty());
            }
            assert_eq!(budget.used(), (1 + LOCAL_CAP, 1 + LOCAL_CAP));
            assert!(local
                .push_reserving(item(99), 1, 0, &budget, &mut spill)
                .is_ok());
            assert_eq!(spill.len(), LOCAL_CAP, "the whole stack moves out at once");
            // The spilled objects keep their units; the new one took a fresh stack-full.
            assert_eq!(budget.used(), (1 + 2 * LOCAL_CAP, 1 + LOCAL_CAP + 1));
            assert_eq!(
                local.drain(0, &budget).len(),
                2,
                "the hot slot and the new one"
            );
        }
        assert_eq!(
            budget.used(),
            (LOCAL_CAP, LOCAL_CAP),
            "the spill's units remain"
        );
        // What the shared store does with spilled objects: give their units back on take.
        budget.release(spill.len(), spill.iter().map(|(_, w)| w).sum());
        assert_eq!(budget.used(), (0, 0));
        // Adopting a batch turns its units into the cache's reservation: the lent object's
        // into the hot slot's, the rest into the stack's.
        assert!(budget.reserve(3, 30));
        let batch: Flushed<usize> = [(item(7), 10), (item(8), 10)].into_iter().collect();
        // SAFETY: as above.
        unsafe {
            local.adopt(10, batch);
            assert_eq!(value(local.pop_hot()), None, "the lent object is out");
            assert_eq!(local.hot(9, 10, 0), Ok(()), "and has room to come back");
            assert_eq!(value(local.pop_hot()), Some(9));
            assert_eq!(value(local.pop()), Some(8));
            assert_eq!(value(local.pop()), Some(7));
            assert!(local.refresh(0, &budget).is_empty());
        }
        assert_eq!(
            budget.used(),
            (0, 0),
            "adopted units went back with the reservation"
        );
    }

    #[test]
    fn dropping_a_cache_drops_its_hot_object() {
        let budget = Budget::new(usize::MAX, usize::MAX);
        let local: Local<std::rc::Rc<()>> = Local::new(0);
        let counted = std::rc::Rc::new(());
        // SAFETY: this test thread is the only one touching `local`.
        unsafe {
            let obj = Box::new(CachePadded::new(std::rc::Rc::clone(&counted)));
            assert!(local
                .push_reserving(obj, 0, 0, &budget, &mut Flushed::new())
                .is_ok());
        }
        assert_eq!(std::rc::Rc::strong_count(&counted), 2);
        drop(local);
        assert_eq!(std::rc::Rc::strong_count(&counted), 1);
    }
}
