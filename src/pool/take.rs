//! The get path: the hot slot, then the cache's stack, then the shared store, then the other
//! caches (through a reclaim), then the factory.

use super::{Hooks, Item, Pool, Tally};
use crate::sync::CachePadded;
use std::mem;

impl<T, H: Hooks<T>> Pool<T, H> {
    /// The object a get hands out, in reset state: a retained one, else a new one.
    #[inline(always)]
    pub(super) fn take(&self) -> Item<T> {
        match self.take_hot() {
            Some(obj) => self.ready(obj),
            None => self
                .take_slow(true)
                .expect("a get with the factory always has an object"),
        }
    }

    /// A retained object in reset state, if the pool has one.
    #[inline(always)]
    pub(super) fn take_retained(&self) -> Option<Item<T>> {
        match self.take_hot() {
            Some(obj) => Some(self.ready(obj)),
            None => self.take_slow(false),
        }
    }

    /// The fast path: the calling thread's hot slot.
    #[inline(always)]
    fn take_hot(&self) -> Option<Item<T>> {
        let local = self.local_fast()?;
        // SAFETY: `local_fast` is the cache of the calling thread's slot.
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
        if let Some(local) = local {
            // SAFETY: `local()` is the cache of the calling thread's slot.
            if let Some(section) = unsafe { local.enter(&self.gate) } {
                section.claim();
                section.mark_taker();
                // The hot slot too: a thread's first get comes here without trying it, and the
                // cache it inherits from an exited thread may hold an object there.
                let obj = section.pop_hot().or_else(|| section.pop());
                drop(section);
                if let Some(obj) = obj {
                    local.tallies.hits.bump_owned();
                    return Some(self.ready(obj));
                }
            }
        }
        let (hits, misses, count): (&Tally, &Tally, fn(&Tally)) = match local {
            Some(local) => (
                &local.tallies.hits,
                &local.tallies.misses,
                Tally::bump_owned,
            ),
            None => (
                &self.shared.tallies.hits,
                &self.shared.tallies.misses,
                Tally::bump,
            ),
        };
        let popped = self.shared.pop().or_else(|| {
            // The store is dry: objects cached by other threads (idle ones, exited ones) are
            // moved to it before the factory is called.
            (self.cached_elsewhere() && self.reclaim(false) > 0)
                .then(|| self.shared.pop())
                .flatten()
        });
        if let Some((obj, weight)) = popped {
            self.budget.release(1, weight);
            count(hits);
            return Some(self.ready(obj));
        }
        if !make {
            return None;
        }
        count(misses);
        Some(Box::new(CachePadded::new(self.hooks.make())))
    }

    /// Resets a reused object for its next user (unless it was reset on return). If the reset
    /// panics, the object is dropped by the unwind (and counted as discarded).
    #[inline(always)]
    fn ready(&self, mut obj: Item<T>) -> Item<T> {
        if !self.hooks.reset_on_return() {
            let unwinding = CountOnUnwind(&self.shared.tallies.discarded);
            self.hooks.reset(&mut obj);
            mem::forget(unwinding);
        }
        obj
    }
}

/// Counts a discard if dropped, i.e. if the user code it guards panicked.
pub(super) struct CountOnUnwind<'a>(pub(super) &'a Tally);

impl Drop for CountOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.bump();
    }
}
