//! Reclaim: every cache's objects moved to the shared store, from any thread, and the calls
//! built on it (`trim`, `clear`, and the get and put paths' last resorts).
//!
//! A reclaim closes the pool's gate, runs the heavy fence, waits for each cache's owner to be
//! out of its section, and from then on holds every cache (the protocol is in `local.rs`). A
//! full reclaim (`trim`, `clear`, a put that found the budget full) moves each cache's objects
//! to the shared store, each with its unit of the budget, and gives back the reservations that
//! held no object (those of objects lent out, or of room not yet used); it also revokes every
//! ticket out (`ticket.rs`) and gives their units back. A get's reclaim moves only what another
//! thread may take: stacked objects, and the hot objects of exited threads (a live thread keeps
//! its hot object and its hot slot's reservation; one whose stack it takes gives back the
//! stack's reservation and stops stacking until it takes again, `Local::flush`; a thread's
//! every 64th get that calls the factory while the budget is full runs a full reclaim instead,
//! if a hot slot holds an object, `take.rs`). The pool's `Stats::reclaims` counts them all.
//! Then it opens the gate. Owners that came by meanwhile
//! used the shared store; one that came to redeem or settle a ticket waited for the reclaim's
//! mutex instead (outside its section, so the reclaim never waits for it). Reclaims are
//! serialised by that mutex and run no user code while they hold it (a full reclaim frees the
//! caches' spare boxes there: memory only, no destructor); the objects they drop are dropped
//! after it is released.

use super::gate::Gate;
use super::local::Flushed;
use super::{Hooks, Local, Pool};
use crate::sync::{fence, Ordering};

impl<T, H: Hooks<T>> Pool<T, H> {
    /// With `everything`, moves every cache's objects to the shared store and gives back every
    /// reservation that held no object; else moves what a get may take from other threads
    /// (stacked objects, and exited threads' hot objects). Returns how many objects moved.
    #[cold]
    pub(super) fn reclaim(&self, everything: bool) -> usize {
        self.reclaim_as(everything, false)
    }

    /// A full reclaim for a return that found the budget full: as `reclaim(true)`, and if it
    /// revokes tickets, owners pause issuing them (`ticket.rs`).
    #[cold]
    pub(super) fn reclaim_for_room(&self) -> usize {
        self.reclaim_as(true, true)
    }

    #[cold]
    #[inline(never)]
    fn reclaim_as(&self, everything: bool, for_room: bool) -> usize {
        let mut moved = 0;
        let (mut unused, mut unused_bytes) = (0, 0);
        let mut carried = (0usize, 0usize);
        {
            let _serial = self.reclaiming.lock();
            // The mutex makes this thread the tally's only writer.
            self.shared.tallies.reclaims.bump_owned();
            // Relaxed, then the heavy fence: the store-load pair of `local.rs`'s table.
            self.gate
                .closed
                .store(self.gate.open | Gate::CLOSED, Ordering::Relaxed);
            fence::heavy();
            for local in self.caches.iter() {
                local.wait_idle();
                let mut objects = Flushed::new();
                // SAFETY: the gate is closed and the owner was seen out of its section after
                // the heavy fence, so it stays out until the gate opens; this thread holds the
                // reclaim mutex, so no other reclaimer is here.
                let (count, bytes) = unsafe { local.flush(&mut objects, everything) };
                unused += count;
                unused_bytes += bytes;
                if everything {
                    let (count, bytes) = local.carried.take();
                    carried = (carried.0.wrapping_add(count), carried.1.wrapping_add(bytes));
                }
                moved += objects.len();
                if !objects.is_empty() {
                    // Each object keeps its unit of the budget in the store.
                    self.shared.push_many(objects);
                }
            }
            if everything {
                // Every ticket out is revoked: its unit held no object.
                let (count, bytes) = self.revoke(carried);
                unused += count;
                unused_bytes += bytes;
            }
            if for_room {
                // Owners that see the pause epoch move stop issuing tickets and growing their
                // reservations for a while (`ticket.rs`). Relaxed: a hint; only a reclaim
                // writes it, under the mutex.
                let pause = self.gate.pause_epoch.load(Ordering::Relaxed) + 1;
                self.gate.pause_epoch.store(pause, Ordering::Relaxed);
            }
            // Release: pairs with the Acquire load in `Local::enter`, so an owner that sees the
            // gate open sees its cache as this reclaim left it.
            self.gate.closed.store(self.gate.open, Ordering::Release);
        }
        self.budget.release(unused, unused_bytes);
        moved
    }

    /// Whether any cache holds objects another thread's get may take: what exited threads left
    /// (`Local::left_behind`) and, if `live_too`, live threads' stacks (`Local::stealable`). A
    /// get that found the store dry reclaims them before calling the factory.
    pub(super) fn cached_elsewhere(&self, live_too: bool) -> bool {
        match live_too {
            true => self.caches.iter().any(Local::stealable),
            false => self.caches.iter().any(Local::left_behind),
        }
    }

    /// Whether the budget counts more objects or bytes than are retained, i.e. some cache
    /// holds a reservation without an object (lent out, or room not used yet) or a ticket is
    /// out: a put that found the budget full may reclaim those before dropping its object. A
    /// snapshot: a reclaim it starts may find nothing to give back.
    pub(super) fn reserved_without_objects(&self) -> bool {
        // Objects in the store hold exactly their units: only caches and tickets can hold unused
        // ones.
        self.caches.iter().any(Local::has_unused_room) || self.tickets_out()
    }

    /// Whether every unit the budget counts is held by an object in the shared store (a
    /// snapshot): then no cache holds an object or a reservation and no ticket is out, so a
    /// get's look at the other caches ([`cached_elsewhere`](Pool::cached_elsewhere)) and a
    /// put's ([`reserved_without_objects`](Pool::reserved_without_objects)) would find
    /// nothing, and a reclaim would move nothing and give nothing back. One load of the
    /// budget's word and of the store's indices, where those looks load words of every cache.
    ///
    /// The object count alone tells: a cache keeps objects only under its reservation, each of
    /// its reservations (hot slot, stack) and each ticket counts one object or more wherever it
    /// counts bytes, and a stored object holds exactly one unit. Racing gets and puts change
    /// the two numbers one after the other, so a snapshot taken meanwhile may say "not all
    /// stored" when it is, costing the caller the look it would have made anyway, or "all" when
    /// a racing reservation or reclaim was just moving units, which the caller treats as it
    /// treats a look that found nothing: one more factory call, or one refused return.
    pub(super) fn units_all_stored(&self) -> bool {
        self.budget.used().0 == self.shared.len()
    }

    /// Drops retained objects until at most `keep` remain, to give memory back after a burst.
    /// The threads' caches move their objects to the shared store first; the store then gives
    /// up its ring's objects, oldest first, before those that overflowed the ring (a pool of
    /// more than 1 024 objects), oldest first too. Which objects stay is otherwise not
    /// specified.
    ///
    /// Reaches every thread's cache, including those of idle and exited threads, before it
    /// returns: when it returns, the objects beyond `keep` have been dropped (their memory
    /// freed). Objects other threads give back meanwhile may be kept. Costs a reclaim: on Linux
    /// a `membarrier` system call (microseconds), then a pass over every cache.
    ///
    /// # Examples
    /// ```
    /// let pool = thrifty::pool::Pool::new(Vec::<u8>::new);
    /// let held: Vec<_> = (0..10).map(|_| pool.get()).collect();
    /// drop(held);
    /// assert_eq!(pool.stats().retained, 10);
    /// pool.trim(2);
    /// assert_eq!(pool.stats().retained, 2);
    /// ```
    pub fn trim(&self, keep: usize) {
        self.reclaim(true);
        let excess = self.shared.split_off_oldest(keep);
        let bytes = excess.iter().map(|(_, weight)| weight).sum();
        self.budget.release(excess.len(), bytes);
        drop(excess);
    }

    /// Drops every retained object, in every thread's cache and the shared store, before it
    /// returns: afterwards `stats().retained` is 0 unless other threads gave objects back
    /// meanwhile. See [`trim`](Pool::trim).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// let pool = Arc::new(thrifty::pool::Pool::new(Vec::<u8>::new));
    /// let p = Arc::clone(&pool);
    /// std::thread::spawn(move || drop(p.get())).join().unwrap(); // cached by that thread
    /// assert_eq!(pool.len(), 1);
    /// pool.clear();
    /// assert_eq!(pool.len(), 0, "the exited thread's cache was reached");
    /// ```
    pub fn clear(&self) {
        self.trim(0);
    }
}
