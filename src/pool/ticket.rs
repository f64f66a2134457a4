//! Tickets: the budget unit an object taken from the shared store keeps while it is lent out,
//! so an object that crosses threads (get on one, drop on another) never touches the budget's
//! shared word.
//!
//! An object in the shared store holds one unit of the budget (one object, its weight in
//! bytes). A get that pops it inside its owner's section may keep that unit with the guard, as
//! a [`Ticket`], instead of giving it back; the return, inside the returning thread's section,
//! puts the object back in the store (or a cache) with the same unit, instead of reserving a
//! new one. A handoff then costs no read-modify-write on the budget, whose word would otherwise
//! bounce between the two threads twice per object.
//!
//! A ticket is room the pool keeps for an object that is lent out, and the pool must never
//! refuse an object it has room for because of one (a guard may be held for ever, forgotten or
//! detached). So tickets can be revoked: a full reclaim (`clear`, `trim`, a return that finds
//! the budget full while tickets are out) adds up the tickets every cache issued and redeemed,
//! gives that many units back to the budget, and moves the pool to a new *epoch*. A ticket is
//! valid only in the epoch it was issued in; a revoked one is worth nothing, and its object
//! comes back like any other, reserving room if there is some.
//!
//! Issuing and redeeming happen inside a section (or under the reclaim mutex, for a thread
//! that cannot open one), and revocation with every cache shut and the mutex held, so a ticket
//! is redeemed either before its revocation or after it, never during:
//!
//! | where            | issue (get)                    | redeem (put, detach, panic)           |
//! | ---------------- | ------------------------------ | ------------------------------------- |
//! | owner's section  | pop the store; `carried += w`  | epoch still current? `carried -= w`   |
//! | reclaim mutex    | (never)                        | epoch still current? `strays -= w`    |
//! | full reclaim     | sum every `carried` and `strays`, zero them, release the sum, epoch + 1 |
//!
//! Counters are per cache and written by their owner alone (plain loads and stores; a cache's
//! count may go below zero when its thread redeems tickets other threads issued): their sum is
//! the number of tickets out, exact while the caches are shut.
//!
//! A pool too small for the objects in flight finds its budget full of tickets, or of caches'
//! reservations for objects lent out, on every surplus return, and each would reclaim (a
//! `membarrier` system call), and the owners would take their reservations again on their next
//! returns. So a return that reclaims for want of room moves `Gate::pause_epoch`, and an owner that
//! sees it move stops issuing tickets and growing its cache's reservations for its next [`PAUSE`]
//! pops from the store (what it gives back meanwhile goes to the shared store, within the budget):
//! such reclaims then cost at most about one per `PAUSE` pops of a thread. A well-sized pool never
//! reclaims for room and always issues; `clear` and `trim` pause no one. The pause is the cache's,
//! not the thread's: a cache pauses the first time it is used after the move, even one no thread
//! had used before, and a thread that takes over an exited thread's slot goes on with the pause its
//! cache had left (`a_new_threads_first_get_takes_an_inherited_hot_object` waits out such pauses).

use super::{Hooks, Pool};
use crate::sync::{AtomicUsize, Ordering};
use std::ops::{Deref, DerefMut};

/// The epoch of a new pool. Epoch 0 marks "no ticket".
pub(super) const FIRST_EPOCH: u64 = 1;

/// Pops from the store an owner makes without issuing tickets or growing its reservations
/// after it sees a return reclaim for want of room.
pub(super) const PAUSE: u32 = 1024;

/// The budget unit a lent-out object keeps: one object of `weight` bytes, valid while the pool
/// is in `epoch`. [`Ticket::NONE`] for an object that keeps none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    epoch: u64,
    weight: usize,
}

impl Ticket {
    /// No unit kept.
    pub(crate) const NONE: Self = Self {
        epoch: 0,
        weight: 0,
    };

    /// A unit of `weight` bytes issued in `epoch` (never 0).
    pub(super) fn new(epoch: u64, weight: usize) -> Self {
        debug_assert_ne!(epoch, 0);
        Self { epoch, weight }
    }

    #[inline(always)]
    pub(crate) fn is_none(self) -> bool {
        self.epoch == 0
    }

    /// The weight the unit covers.
    pub(super) fn weight(self) -> usize {
        self.weight
    }

    /// Whether the unit is still held: issued, and not revoked since (the pool is in `epoch`).
    pub(super) fn valid_in(self, epoch: u64) -> bool {
        !self.is_none() && self.epoch == epoch
    }
}

/// An object as the pool holds it: the value, and the ticket it keeps while lent out
/// ([`Ticket::NONE`] whenever it is in the pool). In the object's box, beside the value the
/// user touches anyway, so a guard stays two words and its fast drop reads no extra line.
pub(crate) struct Held<T> {
    value: T,
    pub(super) ticket: Ticket,
}

impl<T> Held<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            value,
            ticket: Ticket::NONE,
        }
    }

    pub(crate) fn into_value(self) -> T {
        self.value
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Held<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

impl<T> Deref for Held<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Held<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// Tickets issued minus tickets redeemed, and their bytes, in one place (a cache, or the
/// threads that redeemed without one). Wrapping arithmetic: a place may redeem more than it
/// issued; the sum over all places is the tickets out.
#[derive(Debug, Default)]
pub(super) struct Carried {
    count: AtomicUsize,
    bytes: AtomicUsize,
}

impl Carried {
    /// Adds (`issued`) or takes away one ticket of `weight`, where the caller is the only
    /// writer (a cache's owner in its section, or a holder of the reclaim mutex): a load and a
    /// store each.
    pub(super) fn change(&self, issued: bool, weight: usize) {
        // Relaxed: the section or the mutex orders these with the revocation that reads them.
        let (count, bytes) = (
            self.count.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        );
        let (count, bytes) = if issued {
            (count.wrapping_add(1), bytes.wrapping_add(weight))
        } else {
            (count.wrapping_sub(1), bytes.wrapping_sub(weight))
        };
        self.count.store(count, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
    }

    /// Zeroes the counts and returns them; for a reclaimer holding the place.
    pub(super) fn take(&self) -> (usize, usize) {
        // Relaxed: as in `change`.
        (
            self.count.swap(0, Ordering::Relaxed),
            self.bytes.swap(0, Ordering::Relaxed),
        )
    }

    /// The count now (a snapshot for anyone but the place's holder).
    pub(super) fn count(&self) -> usize {
        // Relaxed: a snapshot.
        self.count.load(Ordering::Relaxed)
    }

    /// The bytes now (a snapshot, as `count`).
    pub(super) fn bytes(&self) -> usize {
        // Relaxed: a snapshot.
        self.bytes.load(Ordering::Relaxed)
    }
}

impl<T, H: Hooks<T>> Pool<T, H> {
    /// Gives back the unit a ticket holds, without an object: a guard detached or dropped
    /// without its object (`into_inner`, a panic in a hook, an object the pool will not keep).
    pub(super) fn settle(&self, ticket: Ticket) {
        if ticket.is_none() {
            return;
        }
        if let Some(local) = self.local() {
            // SAFETY: `local()` is the cache of the calling thread's slot, and none of its sections
            // is open: sections run no user code (`Section`), so none encloses this.
            if let Some(_section) = unsafe { local.enter(&self.gate) } {
                if ticket.valid_in(self.gate.epoch()) {
                    local.carried.change(false, ticket.weight());
                    self.budget.release(1, ticket.weight());
                }
                return;
            }
        }
        let _serial = self.reclaiming.lock();
        if ticket.valid_in(self.gate.epoch()) {
            self.strays.change(false, ticket.weight());
            self.budget.release(1, ticket.weight());
        }
    }

    /// Whether any ticket is out: a return that finds the budget full revokes them.
    pub(super) fn tickets_out(&self) -> bool {
        let sum = self.caches.iter().fold(self.strays.count(), |sum, local| {
            sum.wrapping_add(local.carried.count())
        });
        sum != 0
    }

    /// The bytes tickets keep for lent-out objects (a snapshot; 0 if the counts, read one by
    /// one while threads move tickets, add up below zero).
    pub(super) fn ticket_bytes(&self) -> usize {
        let sum = self.caches.iter().fold(self.strays.bytes(), |sum, local| {
            sum.wrapping_add(local.carried.bytes())
        });
        // A sum below zero wraps to a huge number, beyond any budget.
        if sum > self.budget.max_bytes() {
            0
        } else {
            sum
        }
    }

    /// Revokes every ticket out and returns their units, for the caller to give back to the
    /// budget. The caller holds the reclaim mutex and every cache.
    pub(super) fn revoke(&self, carried: (usize, usize)) -> (usize, usize) {
        let (strays, stray_bytes) = self.strays.take();
        let (count, bytes) = (
            carried.0.wrapping_add(strays),
            carried.1.wrapping_add(stray_bytes),
        );
        if count != 0 {
            // Relaxed: only a reclaim writes the epoch; the gate's Release store (sections) and
            // the mutex (redeemers without one) publish it.
            let epoch = self.gate.epoch.load(Ordering::Relaxed) + 1;
            self.gate.epoch.store(epoch, Ordering::Relaxed);
        }
        (count, bytes)
    }
}
