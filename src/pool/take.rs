//! The get path: the hot slot, then the cache's stack, then the shared store, then the other
//! caches (through a reclaim), then the factory.

use super::pace::{look_elsewhere, Pass};
use super::tally::Tallies;
use super::ticket::Ticket;
use super::{Hooks, Item, Local, Pool, Tally, FULL_MISS_RECLAIM, GROW_BEFORE_RECLAIM};
use std::mem;

impl<T, H: Hooks<T>> Pool<T, H> {
    /// The object a get hands out, in reset state: a retained one, else a new one; with the
    /// ticket it keeps if it came from the shared store (`ticket.rs`).
    #[inline(always)]
    pub(super) fn take(&self) -> Item<T> {
        match self.take_hot() {
            Some(obj) => self.ready(obj, Ticket::NONE),
            None => self
                .take_slow(true)
                .expect("a get with the factory always has an object"),
        }
    }

    /// A retained object in reset state, if the pool has one, with its ticket.
    #[inline(always)]
    pub(super) fn take_retained(&self) -> Option<Item<T>> {
        match self.take_hot() {
            Some(obj) => Some(self.ready(obj, Ticket::NONE)),
            None => self.take_slow(false),
        }
    }

    /// The fast path: the calling thread's hot slot.
    #[inline(always)]
    fn take_hot(&self) -> Option<Item<T>> {
        let local = self.local_fast()?;
        // SAFETY: `local_fast` is the cache of the calling thread's slot, and none of its
        // sections is open: sections run no user code (`Section`), so none encloses this.
        let section = unsafe { local.enter_fast(&self.gate) }?;
        let obj = section.pop_hot()?;
        drop(section);
        local.tallies.hits.bump_owned();
        Some(obj)
    }

    /// A get that missed the hot slot (or had no slot or cache yet). Not `#[cold]`: a thread
    /// holding two objects at once comes here for one of them on every round.
    #[inline(never)]
    fn take_slow(&self, make: bool) -> Option<Item<T>> {
        let local = self.local();
        // Whether the store was just found dry inside the section: a second pop right after
        // would only find what a racing put pushed meanwhile (one factory call, at most).
        let mut store_tried = false;
        if let Some(local) = local {
            // SAFETY: `local()` is the cache of the calling thread's slot, and none of its sections
            // is open: sections run no user code (`Section`), so none encloses this.
            if let Some(section) = unsafe { local.enter(&self.gate) } {
                section.claim();
                section.mark_taker();
                // The hot slot too: a thread's first get comes here without trying it, and the
                // cache it inherits from an exited thread may hold an object there.
                if let Some(obj) = section.pop_hot().or_else(|| section.pop()) {
                    drop(section);
                    local.tallies.hits.bump_owned();
                    return Some(self.ready(obj, Ticket::NONE));
                }
                // The store, inside the section, so the object may keep its unit as a ticket.
                if let Some((obj, weight)) = self.shared.pop() {
                    let ticket = section.issue(weight, self.gate.epoch(), self.gate.pause_epoch());
                    drop(section);
                    local.tallies.hits.bump_owned();
                    return Some(self.out_of_store(obj, weight, ticket));
                }
                store_tried = true;
            }
        }
        let (tallies, count): (&Tallies, fn(&Tally)) = match local {
            Some(local) => (&local.tallies, Tally::bump_owned),
            None => (&self.shared.tallies, Tally::bump),
        };
        let (hits, misses) = (&tallies.hits, &tallies.misses);
        let popped = if store_tried { None } else { self.shared.pop() };
        let popped = popped.or_else(|| {
            // No cache holds an object while every unit is one in the store: nothing to look
            // for (`units_all_stored`).
            if self.units_all_stored() {
                return None;
            }
            // The store is dry: objects cached by other threads (idle ones, exited ones) are
            // moved to it before the factory is called. Live threads' stacks, though, not again
            // until this thread has made `GROW_BEFORE_RECLAIM` objects since its last take, while
            // the budget has room: a reclaim that takes a busy thread's stack leaves the pool as
            // small as the objects in flight, so every dry moment after it would reclaim again,
            // where a few factory calls grow it for good. (A `try_get`, which makes nothing,
            // always takes them.)
            let live_too = !make || misses.get() >= tallies.grown_at.get() || self.budget.is_full();
            look_elsewhere(
                &tallies.dry_looks,
                Pass::Get,
                hits,
                || self.caches.made(),
                || {
                    let took = self.cached_elsewhere(live_too) && self.reclaim(false) > 0;
                    if took {
                        tallies.grown_at.set(misses.get() + GROW_BEFORE_RECLAIM);
                    }
                    took
                },
            )
            .then(|| self.shared.pop())
            .flatten()
        });
        if let Some((obj, weight)) = popped {
            count(hits);
            return Some(self.out_of_store(obj, weight, Ticket::NONE));
        }
        if !make {
            return None;
        }
        if self.budget.is_full() {
            // The capacity may be retained where a get's reclaim leaves it: live threads' hot
            // objects (idle threads that used the pool once hold one each). On every
            // `FULL_MISS_RECLAIM`th get of this thread (or of the cacheless threads together)
            // that gets here while the budget is full, take those too if a hot slot holds one,
            // so those threads cannot keep the pool from the ones that work. Objects lent out
            // to users cannot be taken: a budget full of those costs no reclaim.
            count(&tallies.full_misses);
            if tallies.full_misses.get() % FULL_MISS_RECLAIM == 0
                && self.caches.iter().any(Local::holds_hot)
                && self.reclaim(true) > 0
            {
                if let Some((obj, weight)) = self.shared.pop() {
                    count(hits);
                    return Some(self.out_of_store(obj, weight, Ticket::NONE));
                }
            }
        }
        count(misses);
        Some(self.boxed(self.hooks.make()))
    }

    /// An object of `weight` bytes popped from the store, readied for its user: its unit of
    /// the budget goes back unless `ticket` keeps it, in the object's box.
    fn out_of_store(&self, mut obj: Item<T>, weight: usize, ticket: Ticket) -> Item<T> {
        if ticket.is_none() {
            self.budget.release(1, weight);
        }
        obj.ticket = ticket;
        self.ready(obj, ticket)
    }

    /// Resets a reused object for its next user (unless it was reset on return). If the reset
    /// panics, the object is dropped by the unwind (and counted as discarded), and its ticket
    /// settled.
    #[inline(always)]
    fn ready(&self, mut obj: Item<T>, ticket: Ticket) -> Item<T> {
        if !self.hooks.reset_on_return() {
            let unwinding = OnUnwind(self, ticket);
            self.hooks.reset(&mut obj);
            mem::forget(unwinding);
        }
        obj
    }
}

/// Counts a discard and settles the ticket of the object being dropped if dropped, i.e. if the
/// user code it guards panicked.
pub(super) struct OnUnwind<'a, T, H: Hooks<T>>(pub(super) &'a Pool<T, H>, pub(super) Ticket);

impl<T, H: Hooks<T>> Drop for OnUnwind<'_, T, H> {
    fn drop(&mut self) {
        self.0.shared.tallies.discarded.bump();
        self.0.settle(self.1);
    }
}
