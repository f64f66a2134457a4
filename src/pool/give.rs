//! The return path: the hot slot, then the cache's stack, then the shared store (reclaiming
//! reservations that hold no object when the budget is full), else the object is dropped.

use super::pace::{look_elsewhere, Pass};
use super::take::OnUnwind;
use super::tally::Tallies;
use super::ticket::Ticket;
use super::{Hooks, Item, Pool};
use std::mem::{self, ManuallyDrop};

impl<T, H: Hooks<T>> Pool<T, H> {
    /// Gives `value` to the pool as if a guard holding it were dropped: the return hooks run
    /// (`reset_on_return`, `keep_if`), then the pool keeps it if it has room and drops it if
    /// not. For values built outside the pool or detached with `into_inner`; the next `get`
    /// resets it (unless it was reset on return) before handing it out.
    ///
    /// Allocates the box the pool keeps each object in (unless the thread's cache keeps an
    /// empty one, see [`Pool`]'s Allocation section), and none if the pool refuses the value
    /// for sure before it boxes it: the return hooks refused it, or the budget is full and all
    /// of it is held by objects in the shared store (no cache or ticket holds room a reclaim
    /// could give back).
    ///
    /// # Panics
    /// If `reset` (on return), `keep_if` or `weigh` panics; `value` is dropped.
    pub fn put(&self, value: T) {
        if let Err(value) = self.try_put(value) {
            self.count_discard();
            drop(value);
        }
    }

    /// Like [`put`](Pool::put), but hands `value` back instead of dropping it when the pool
    /// will not keep it (full, too heavy, or refused by `keep_if`). With `reset_on_return` (or
    /// a [`BufferPool`](super::BufferPool) built with `zero_on_return`), a value handed back has
    /// already been reset (a buffer zeroed and emptied): its contents are gone although the pool
    /// did not keep it.
    ///
    /// Allocates as `put` does: a value refused for sure before it is boxed costs no box.
    ///
    /// # Errors
    /// `Err(value)` when the pool does not keep it.
    ///
    /// # Panics
    /// If `reset` (on return), `keep_if` or `weigh` panics; `value` is then dropped, not handed
    /// back.
    ///
    /// # Examples
    /// ```
    /// let pool = thrifty::pool::Pool::builder().capacity(1).build(Vec::<u8>::new);
    /// assert!(pool.try_put(vec![1]).is_ok());
    /// assert_eq!(pool.try_put(vec![2]), Err(vec![2]), "full: handed back");
    /// assert!(pool.get().is_empty(), "the kept one comes out reset");
    /// ```
    pub fn try_put(&self, mut value: T) -> Result<(), T> {
        // The hooks and the budget first, on the bare value: a refused one is never boxed.
        let Some(weight) = self.vet(&mut value, None, Ticket::NONE) else {
            return Err(value);
        };
        if self.refuses_for_sure(weight) {
            return Err(value);
        }
        self.keep(self.boxed(value), weight, Ticket::NONE)
            .map_err(|obj| self.unbox(obj))
    }

    /// Whether a return of `weight` bytes that brings no ticket would be refused whatever the
    /// return path does: the budget has no room for it, and every unit the budget counts is an
    /// object in the shared store (`units_all_stored`), so no cache has room to keep it and a
    /// reclaim could give no room back. Records the refused weight as [`store`](Pool::store)
    /// does. A snapshot, as the return path's own checks are: an object another thread frees
    /// room for just after is refused, as it would be a moment earlier.
    fn refuses_for_sure(&self, weight: usize) -> bool {
        if !self.budget.lacks_room(weight) || !self.units_all_stored() {
            return false;
        }
        if weight <= self.budget.max_bytes() {
            // As `store`: a weight beyond the whole budget is not recorded.
            self.budget.note_refused(weight);
        }
        true
    }

    /// Builds objects with the factory until `n` more are retained, the pool is full, or it
    /// refuses what the factory makes (`keep_if`, `max_object_bytes`, or no bytes left in the
    /// byte budget: a made object that a return would drop is dropped, and counted as
    /// discarded), and returns how many it added: warms a pool before traffic so the first
    /// gets do not miss. A pool already retaining `capacity` objects makes none.
    ///
    /// # Panics
    /// If the factory, or a return hook (`keep_if`, `reset` on return, `weigh`), panics; the
    /// objects made so far stay in the pool.
    ///
    /// # Examples
    /// ```
    /// let pool = thrifty::pool::Pool::builder().capacity(8).build(Vec::<u8>::new);
    /// assert_eq!(pool.prefill(100), 8, "up to the capacity");
    /// assert_eq!(pool.len(), 8);
    /// ```
    pub fn prefill(&self, n: usize) -> usize {
        // No factory call for a pool that retains `capacity` objects already: no reclaim could
        // make room for one more. (Short of that, an object the pool turns away once made, for
        // want of bytes or of a reservation a reclaim could free, is counted as discarded.)
        if n == 0 || self.len() >= self.budget.max_count() {
            return 0;
        }
        let mut added = 0;
        while added < n {
            // Nor for one the count has no room for, unless a reservation without an object
            // might give it some.
            if self.budget.used().0 >= self.budget.max_count() && !self.reserved_without_objects() {
                break;
            }
            let mut obj = self.boxed(self.hooks.make());
            // The return hooks as a `put` runs them: a hook that panics counts a discard too.
            let Some(weight) = self.vet(&mut obj, None, Ticket::NONE) else {
                self.count_discard();
                // Its box stays as the thread's spare, as a refused return's does.
                drop(self.unbox(obj));
                break;
            };
            if let Err(obj) = self.store(obj, weight, None) {
                self.count_discard();
                drop(self.unbox(obj));
                break;
            }
            added += 1;
        }
        added
    }

    /// Takes an object back from a guard, in place: `value` is moved into the pool or dropped.
    ///
    /// Only the hot-slot push is inline, with no call on its way: the guard's drop stays small
    /// enough to inline into the caller's loop. Every other case, hooks and tickets included,
    /// is one tail call.
    ///
    /// # Safety
    /// `value` holds an object, and the caller never reads or drops it again.
    #[inline(always)]
    pub(crate) unsafe fn put_back(&self, value: &mut ManuallyDrop<Item<T>>) {
        // Weighed here to choose the path, before the return hooks: a pool with hooks has the
        // floor `usize::MAX`, so its objects go to `give`, which weighs them again after the
        // hooks ran. The floor sends objects that need a look at the pool's limits to
        // `put_cold` too; the hot slot's room covers the rest (see `Hooks::fast_floor`).
        let weight = self.hooks.weigh(value);
        if weight >= self.hooks.fast_floor() && value.ticket.is_none() {
            if let Some(local) = self.local_fast() {
                // SAFETY: `local_fast` is the cache of the calling thread's slot, and none of its
                // sections is open: sections run no user code (`Section`), so none encloses this.
                if let Some(section) = unsafe { local.enter_fast(&self.gate) } {
                    // SAFETY: `value` holds an object (contract), untouched after `true`.
                    if unsafe { section.push_hot(value, weight) } {
                        drop(section);
                        local.tallies.returned.bump_owned();
                        return;
                    }
                }
            }
        }
        // SAFETY: `value` holds an object (contract); it is read out once, here. By value, so
        // the guard's fields need no address and stay in registers in the caller's loop.
        self.put_cold(unsafe { ManuallyDrop::take(value) }, weight)
    }

    /// A return that is not a plain hot-slot push, of an object that weighed `weight` before
    /// the return hooks (if the pool has any, `give` weighs it again after them).
    #[inline(never)]
    fn put_cold(&self, obj: Item<T>, weight: usize) {
        if let Err(obj) = self.give(obj, Some(weight)) {
            self.count_discard();
            drop(self.unbox(obj));
        }
    }

    /// Runs the return hooks on `obj`, weighs it (once per return: `weighed`, if the caller
    /// did, for a pool without return hooks), then keeps it in the calling thread's cache or
    /// the shared store, with its ticket's unit if that is still valid; gives it back if the
    /// pool will not keep it. If a hook panics, drops `obj`, counts a discard and propagates.
    pub(super) fn give(&self, mut obj: Item<T>, weighed: Option<usize>) -> Result<(), Item<T>> {
        // An object in the pool keeps no ticket.
        let ticket = mem::replace(&mut obj.ticket, Ticket::NONE);
        match self.vet(&mut obj, weighed, ticket) {
            Some(weight) => self.keep(obj, weight, ticket),
            None => {
                self.settle(ticket);
                Err(obj)
            }
        }
    }

    /// Runs the return hooks on `value` and weighs it (`weighed`, if the caller did and the
    /// pool has no return hooks): its weight if the pool may keep it, `None` if a hook or the
    /// per-object limits refuse it. A hook that panics (user code: `keep_if`, `reset` on
    /// return, `weigh`) counts a discard and settles `ticket` as the unwind drops the value.
    #[inline]
    fn vet(&self, value: &mut T, weighed: Option<usize>, ticket: Ticket) -> Option<usize> {
        let unwinding = OnUnwind(self, ticket);
        let hooks = self.hooks.has_return_hooks();
        let keep = !hooks || self.hooks.on_return(value);
        let weight = match weighed {
            Some(weight) if !hooks => weight,
            _ => self.hooks.weigh(value),
        };
        mem::forget(unwinding);
        (keep && self.hooks.fits(weight)).then_some(weight)
    }

    /// Keeps `obj`, which weighs `weight` and passed the return hooks, in the calling thread's
    /// cache or the shared store, with `ticket`'s unit if that is still valid; gives it back
    /// if the pool has no room for it.
    fn keep(&self, obj: Item<T>, weight: usize, ticket: Ticket) -> Result<(), Item<T>> {
        let local = self.local();
        let returned = || match local {
            Some(local) => local.tallies.returned.bump_owned(),
            None => self.shared.tallies.returned.bump(),
        };
        // SAFETY: `local()` is the cache of the calling thread's slot, and none of its sections
        // is open: sections run no user code (`Section`), so none encloses this.
        let obj = match local.and_then(|local| unsafe { local.enter(&self.gate) }) {
            Some(section) => {
                section.claim();
                let unit = ticket.valid_in(self.gate.epoch()) && {
                    section.carried().change(false, ticket.weight());
                    self.redeem(ticket, weight)
                };
                let kept = if unit {
                    // The unit goes with the object: to this cache, or to the store.
                    section.push_with_unit(obj, weight).or_else(|obj| {
                        self.shared.push(obj, weight);
                        Ok(())
                    })
                } else {
                    section.push(obj, weight, &self.budget, self.gate.pause_epoch())
                };
                drop(section);
                match kept {
                    Ok(()) => {
                        returned();
                        return Ok(());
                    }
                    Err(back) => back,
                }
            }
            None => match self.redeem_locked(obj, weight, ticket) {
                Ok(()) => {
                    returned();
                    return Ok(());
                }
                Err(back) => back,
            },
        };
        self.store(
            obj,
            weight,
            Some(local.map_or(&self.shared.tallies, |local| &local.tallies)),
        )?;
        returned();
        Ok(())
    }

    /// The valid `ticket` of an object now of `weight` bytes was just redeemed: whether its
    /// unit covers the object as it is. If the weight changed, the unit goes back to the
    /// budget and the object reserves anew like any other.
    fn redeem(&self, ticket: Ticket, weight: usize) -> bool {
        if ticket.weight() == weight {
            return true;
        }
        self.budget.release(1, ticket.weight());
        false
    }

    /// For a thread that cannot open its section (a reclaim runs, or it has no cache): redeems
    /// `ticket`, if still valid, under the reclaim mutex, and stores `obj` with its unit if
    /// that covers it. Gives `obj` back otherwise, for the caller to store like any other.
    fn redeem_locked(&self, obj: Item<T>, weight: usize, ticket: Ticket) -> Result<(), Item<T>> {
        if ticket.is_none() {
            return Err(obj);
        }
        let _serial = self.reclaiming.lock();
        if !ticket.valid_in(self.gate.epoch()) {
            return Err(obj);
        }
        self.strays.change(false, ticket.weight());
        if !self.redeem(ticket, weight) {
            return Err(obj);
        }
        self.shared.push(obj, weight);
        Ok(())
    }

    /// Keeps `obj`, which weighs `weight`, in the shared store if the budget has room for it,
    /// reclaiming the reservations of caches that hold no object first if it has none; else
    /// gives it back.
    /// `tallies` are the returning thread's (its cache's, or the cacheless threads' shared
    /// ones): they pace the pass over every cache that looks for such reservations
    /// (`pace.rs`). `None` (`prefill`) always looks.
    pub(super) fn store(
        &self,
        obj: Item<T>,
        weight: usize,
        tallies: Option<&Tallies>,
    ) -> Result<(), Item<T>> {
        if weight > self.budget.max_bytes() {
            // Heavier than the whole budget: no reclaim can make room, and as the last refused
            // weight it would make the budget look full for good.
            return Err(obj);
        }
        // The pass over every cache looks for reservations and tickets that hold no object:
        // there are none while every unit is an object in the store (one load of the budget
        // word and of the store's indices, where the pass loads words of every cache).
        let room = self.budget.reserve(1, weight)
            || (!self.units_all_stored()
                && match tallies {
                    Some(t) => look_elsewhere(
                        &t.dry_looks,
                        Pass::Put,
                        &t.returned,
                        || self.caches.made(),
                        || self.reserved_without_objects(),
                    ),
                    None => self.reserved_without_objects(),
                }
                && {
                    self.reclaim_for_room();
                    self.budget.reserve(1, weight)
                });
        if !room {
            self.budget.note_refused(weight);
            return Err(obj);
        }
        self.shared.push(obj, weight);
        Ok(())
    }
}
