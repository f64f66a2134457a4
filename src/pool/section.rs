//! The owner's section: what a thread does to its own cache between `Local::enter` and the
//! section's drop, with plain loads and stores (the protocol is in `local.rs`).

use super::local::{hot_units, Cache, Local, LOCAL_CAP};
use super::shared::Budget;
use super::spare::Spare;
use super::ticket::{Carried, Ticket, PAUSE};
use super::Item;
use crate::sync::{thread_claim_id, Ordering};
use std::mem::ManuallyDrop;
use std::ptr;

/// The owner's exclusive hold on its cache: while it lives, no reclaimer is in the cache.
/// Dropping it lets reclaimers in again. Never held across user code (a reset, a factory, a
/// `T`'s destructor), which could re-enter the pool.
pub(super) struct Section<'a, T> {
    local: &'a Local<T>,
}

impl<'a, T> Section<'a, T> {
    /// The section `Local::enter` opened.
    pub(super) fn new(local: &'a Local<T>) -> Self {
        Self { local }
    }
}

impl<T> Drop for Section<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        // Release: pairs with the Acquire load in `Local::wait_idle`, so a reclaimer that sees
        // 0 also sees everything this section did to the cache.
        self.local.busy.store(0, Ordering::Release);
    }
}

impl<T> Section<'_, T> {
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce(&mut Cache<T>) -> R) -> R {
        self.local.cache.with_mut(|cache| {
            // SAFETY: an open section is the only holder of the cache (see `Local::enter`), and
            // `f` never re-enters it (sections run no user code).
            f(unsafe { &mut *cache })
        })
    }

    /// Takes the hot slot's object, if it holds one. Its reservation stays with the cache
    /// while the object is out, so the matching put needs no budget.
    #[inline(always)]
    pub(super) fn pop_hot(&self) -> Option<Item<T>> {
        // Relaxed: only the cache's holder writes the slot; others only test it for null.
        let hot = self.local.hot.load(Ordering::Relaxed);
        if hot.is_null() {
            return None;
        }
        self.local.hot.store(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: a non-null hot slot holds an `Item<T>` from `Box::into_raw`, owned by this
        // cache; the slot was cleared above, so it is taken out once.
        Some(unsafe { Box::from_raw(hot) })
    }

    /// Moves the object out of `src` into the hot slot if the slot is empty and its
    /// reservation has room for `weight`; returns whether it did.
    ///
    /// # Safety
    /// `src` holds a value, and after a `true` the caller treats it as empty (never reads or
    /// drops it again).
    #[inline(always)]
    pub(super) unsafe fn push_hot(&self, src: &mut ManuallyDrop<Item<T>>, weight: usize) -> bool {
        // Relaxed: as in `pop_hot`.
        if !self.local.hot.load(Ordering::Relaxed).is_null()
            || !self.with(|cache| weight < cache.hot_room)
        {
            return false;
        }
        // SAFETY: `src` holds a value (contract), which the caller never touches after `true`.
        let obj = unsafe { ManuallyDrop::take(src) };
        self.fill_hot(obj, weight);
        true
    }

    /// Puts `obj` of `weight` into the empty hot slot.
    #[inline(always)]
    fn fill_hot(&self, obj: Item<T>, weight: usize) {
        // Relaxed: only the cache's holder writes these; others read them as statistics.
        self.local.hot_weight.store(weight, Ordering::Relaxed);
        self.local.hot.store(Box::into_raw(obj), Ordering::Relaxed);
    }

    /// Pops the newest stacked object if there is one; its reservation stays.
    #[inline]
    pub(super) fn pop(&self) -> Option<Item<T>> {
        self.with(|cache| {
            if cache.len == 0 {
                return None;
            }
            let len = cache.len - 1;
            cache.len = len;
            // SAFETY: `len < LOCAL_CAP` (the stack never holds more) and `items[..=len]` were
            // initialised; `len` has been lowered past this one, so it is read out once.
            let obj = unsafe { cache.items.get_unchecked(len).assume_init_read() };
            cache.bytes -= cache.weights[len];
            // Relaxed: statistic mirrors.
            self.local.len.store(len, Ordering::Relaxed);
            self.local.stack_bytes.store(cache.bytes, Ordering::Relaxed);
            Some(obj)
        })
    }

    /// Takes the cache's spare box (`spare.rs`), if it keeps one.
    #[inline]
    pub(super) fn take_spare(&self) -> Option<Spare<T>> {
        self.with(|cache| cache.spare.take())
    }

    /// Keeps `spare` as the cache's spare box if it has none; else gives it back, for the
    /// caller to free after the section.
    #[inline]
    pub(super) fn keep_spare(&self, spare: Spare<T>) -> Option<Spare<T>> {
        self.with(|cache| match cache.spare {
            None => {
                cache.spare = Some(spare);
                None
            }
            Some(_) => Some(spare),
        })
    }

    /// The cache's count of tickets issued minus redeemed.
    pub(super) fn carried(&self) -> &Carried {
        &self.local.carried
    }

    /// Records the owner's claim id (its token on a tracked slot), so a reclaim can tell when
    /// the owner has exited, and makes a new owner a non-taker until it takes: the flag was its
    /// predecessor's. On an untracked slot too, whose id tells its holders apart though their
    /// liveness cannot be told.
    #[inline]
    pub(super) fn claim(&self) {
        let id = thread_claim_id();
        // Relaxed load: only owners write it, and this one is the holder now.
        if id != 0 && self.local.owner.load(Ordering::Relaxed) != id {
            // Release: pairs with the Acquire in `Local::owner_gone`.
            self.local.owner.store(id, Ordering::Release);
            self.with(|cache| cache.taker = false);
            // The pacing of the passes over every cache, and of the reclaims that take live
            // threads' stacks, is the last owner's (`pace.rs`, `take.rs`).
            self.local.tallies.dry_looks.set(0);
            self.local.tallies.grown_at.set(0);
        }
    }

    /// Records that the owner takes from the pool, so its puts may grow the reservation.
    #[inline]
    pub(super) fn mark_taker(&self) {
        self.with(|cache| cache.taker = true);
    }

    /// The put that missed the fast path: keeps `obj` in the first place that can take it:
    /// 1. the hot slot, if empty, growing its reservation from `budget` to fit `weight`;
    /// 2. the stack, within its reservation, or growing it by what `obj` needs.
    ///
    /// A reservation grows only if the owner is a taker and does not pause (after it saw
    /// `pause_epoch` move: a return found the budget full and reclaimed for room; `ticket.rs`).
    /// Gives `obj` back if neither fits.
    pub(super) fn push(
        &self,
        obj: Item<T>,
        weight: usize,
        budget: &Budget,
        pause_epoch: u64,
    ) -> Result<(), Item<T>> {
        self.with(|cache| {
            let grows = cache.taker && !pauses(cache, pause_epoch, false);
            // Relaxed: as in `pop_hot`. (A weight of `usize::MAX` cannot be reserved as
            // `hot_room - 1`; it takes the stack.)
            if self.local.hot.load(Ordering::Relaxed).is_null() && weight < usize::MAX {
                let (count, bytes) = hot_units(cache.hot_room);
                if weight < cache.hot_room
                    || (grows && budget.reserve(1 - count, weight.saturating_sub(bytes)))
                {
                    if weight >= cache.hot_room {
                        cache.hot_room = weight + 1;
                        self.local.publish_units(cache);
                    }
                    self.fill_hot(obj, weight);
                    return Ok(());
                }
            }
            if cache.len == LOCAL_CAP {
                return Err(obj);
            }
            let need = (cache.len + 1).saturating_sub(cache.reserved);
            // A `weigh` may return up to `usize::MAX`: such an object is not kept.
            let Some(bytes) = cache.bytes.checked_add(weight) else {
                return Err(obj);
            };
            let need_bytes = bytes.saturating_sub(cache.reserved_bytes);
            if need != 0 || need_bytes != 0 {
                if !(grows && budget.reserve(need, need_bytes)) {
                    return Err(obj);
                }
                cache.reserved += need;
                cache.reserved_bytes += need_bytes;
                self.local.publish_units(cache);
            }
            self.stack(cache, obj, weight);
            Ok(())
        })
    }

    /// Pushes `obj` of `weight` onto the stack, which has room and a reservation for it.
    fn stack(&self, cache: &mut Cache<T>, obj: Item<T>, weight: usize) {
        let len = cache.len;
        cache.items[len].write(obj);
        cache.weights[len] = weight;
        cache.len = len + 1;
        cache.bytes += weight;
        // Relaxed: statistic mirrors.
        self.local.len.store(len + 1, Ordering::Relaxed);
        self.local.stack_bytes.store(cache.bytes, Ordering::Relaxed);
    }

    /// An object of `weight` bytes was taken from the shared store, its unit still counted:
    /// keeps the unit as a ticket of `epoch`, or returns [`Ticket::NONE`] (the caller gives the
    /// unit back) while the owner pauses after seeing a return reclaim for want of room
    /// (`pause_epoch` moved; `ticket.rs`).
    pub(super) fn issue(&self, weight: usize, epoch: u64, pause_epoch: u64) -> Ticket {
        self.with(|cache| {
            if pauses(cache, pause_epoch, true) {
                return Ticket::NONE;
            }
            self.local.carried.change(true, weight);
            Ticket::new(epoch, weight)
        })
    }

    /// Keeps `obj` of `weight` bytes, which brings its own unit of the budget (a redeemed
    /// ticket), in this cache if the owner takes from the pool: the unit becomes the hot slot's
    /// reservation if the slot is empty and has none, else the stack's if it has room. Gives
    /// `obj` back otherwise, for the shared store, where the unit goes with it.
    pub(super) fn push_with_unit(&self, obj: Item<T>, weight: usize) -> Result<(), Item<T>> {
        self.with(|cache| {
            if !cache.taker {
                return Err(obj);
            }
            // Relaxed: as in `pop_hot`.
            if self.local.hot.load(Ordering::Relaxed).is_null()
                && cache.hot_room == 0
                && weight < usize::MAX
            {
                cache.hot_room = weight + 1;
                self.local.publish_units(cache);
                self.fill_hot(obj, weight);
                return Ok(());
            }
            if cache.len == LOCAL_CAP || cache.reserved == LOCAL_CAP {
                return Err(obj);
            }
            cache.reserved += 1;
            cache.reserved_bytes += weight;
            self.local.publish_units(cache);
            self.stack(cache, obj, weight);
            Ok(())
        })
    }
}

/// Whether the owner pauses issuing tickets and growing reservations: for its next [`PAUSE`]
/// pops from the store after it sees `pause_epoch` move (`ticket.rs`); a `pop` counts one.
fn pauses<T>(cache: &mut Cache<T>, pause_epoch: u64, pop: bool) -> bool {
    if cache.seen_pause != pause_epoch {
        cache.seen_pause = pause_epoch;
        cache.pause = PAUSE;
    }
    let paused = cache.pause > 0;
    if paused && pop {
        cache.pause -= 1;
    }
    paused
}
