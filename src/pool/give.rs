//! The return path: the hot slot, then the cache's stack, then the shared store (reclaiming
//! reservations that hold no object when the budget is full), else the object is dropped.

use super::take::CountOnUnwind;
use super::{Hooks, Item, Pool};
use std::mem::{self, ManuallyDrop};

impl<T, H: Hooks<T>> Pool<T, H> {
    /// Takes an object back from a guard, in place: `value` is moved into the pool or dropped.
    ///
    /// Only the hot-slot push is inline, with no call on its way: the guard's drop stays small
    /// enough to inline into the caller's loop. Every other case, hooks included, is one tail
    /// call.
    ///
    /// # Safety
    /// `value` holds an object, and the caller never reads or drops it again.
    #[inline(always)]
    pub(crate) unsafe fn put_back(&self, value: &mut ManuallyDrop<Item<T>>) {
        let weight = self.hooks.weigh(value);
        // The hooks' floor sends objects that need a return hook or a look at the pool's
        // limits to `put_cold`; the hot slot's room covers the rest (see `Hooks::fast_floor`).
        if weight >= self.hooks.fast_floor() {
            if let Some(local) = self.local_fast() {
                // SAFETY: `local_fast` is the cache of the calling thread's slot.
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
        self.put_cold(unsafe { ManuallyDrop::take(value) })
    }

    /// A return that is not a plain hot-slot push.
    #[inline(never)]
    fn put_cold(&self, obj: Item<T>) {
        if let Err(obj) = self.give(obj) {
            self.count_discard();
            drop(obj);
        }
    }

    /// Runs the return hooks on `obj`, then keeps it in the calling thread's cache or the
    /// shared store; gives it back if the pool will not keep it. If a hook panics, drops `obj`,
    /// counts a discard and propagates.
    pub(super) fn give(&self, mut obj: Item<T>) -> Result<(), Item<T>> {
        if self.hooks.has_return_hooks() {
            let unwinding = CountOnUnwind(&self.shared.tallies.discarded);
            let keep = self.hooks.on_return(&mut obj);
            mem::forget(unwinding);
            if !keep {
                return Err(obj);
            }
        }
        let weight = self.hooks.weigh(&obj);
        if !self.hooks.fits(weight) {
            return Err(obj);
        }
        let local = self.local();
        if let Some(local) = local {
            // SAFETY: `local()` is the cache of the calling thread's slot.
            if let Some(section) = unsafe { local.enter(&self.gate) } {
                section.claim();
                match section.push(obj, weight, &self.budget) {
                    Ok(()) => {
                        drop(section);
                        local.tallies.returned.bump_owned();
                        return Ok(());
                    }
                    Err(back) => obj = back,
                }
            }
        }
        self.store(obj)?;
        match local {
            Some(local) => local.tallies.returned.bump_owned(),
            None => self.shared.tallies.returned.bump(),
        }
        Ok(())
    }

    /// Keeps `obj` in the shared store if the budget has room for it, reclaiming the
    /// reservations of caches that hold no object first if it has none; else gives it back.
    pub(super) fn store(&self, obj: Item<T>) -> Result<(), Item<T>> {
        let weight = self.hooks.weigh(&obj);
        let room = self.budget.reserve(1, weight)
            || (self.reserved_without_objects() && {
                self.reclaim(true);
                self.budget.reserve(1, weight)
            });
        if !room {
            return Err(obj);
        }
        self.shared.push(obj, weight);
        Ok(())
    }
}
