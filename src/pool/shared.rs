//! The pool's shared side: the budget every retained object is counted against, and the store
//! behind the per-thread caches.
//!
//! The store is a bounded lock-free ring (`ring.rs`, Vyukov's MPMC queue) of up to 1024 slots,
//! preallocated, so a push or a pop is one CAS and never allocates or parks. It is reached when
//! a thread's cache is empty (get) or cannot keep an object (put): objects crossing threads (get
//! on A, drop on B), a reclaim's haul, threads in teardown. A pool whose capacity is above the
//! ring's size keeps what does not fit in an overflow `Mutex<Vec<_>>`, reached only then.

use super::ring::Ring;
use super::tally::Tallies;
use super::Item;
use crate::sync::{AtomicUsize, Mutex, Ordering};

/// The most slots the ring preallocates (a pool of a larger capacity overflows to a `Vec`).
const RING_MAX: usize = 1024;

/// The limits on what a pool retains: objects and bytes (weights).
///
/// `count` is the number of objects reserved (by caches) or stored (in the shared store);
/// `bytes` the same for weights. Objects retained never exceed what is reserved or stored, so
/// `count <= max_count` and `bytes <= max_bytes` bound what the pool holds at every instant.
#[derive(Debug)]
pub(super) struct Budget {
    count: AtomicUsize,
    bytes: AtomicUsize,
    max_count: usize,
    max_bytes: usize,
}

impl Budget {
    pub(super) fn new(max_count: usize, max_bytes: usize) -> Self {
        Self {
            count: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            max_count,
            max_bytes,
        }
    }

    /// Reserves `count` objects and `bytes` bytes, or nothing if either would exceed its
    /// limit.
    pub(super) fn reserve(&self, count: usize, bytes: usize) -> bool {
        if !reserve_one(&self.count, count, self.max_count) {
            return false;
        }
        if !reserve_one(&self.bytes, bytes, self.max_bytes) {
            self.release(count, 0);
            return false;
        }
        true
    }

    /// Gives back what [`Budget::reserve`] took.
    pub(super) fn release(&self, count: usize, bytes: usize) {
        // Relaxed: the budget publishes no data (objects travel under the store's mutex or
        // stay with their cache's owner); atomicity alone keeps the sums exact.
        if count != 0 {
            self.count.fetch_sub(count, Ordering::Relaxed);
        }
        if bytes != 0 {
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Objects and bytes reserved or stored now (a snapshot).
    pub(super) fn used(&self) -> (usize, usize) {
        // Relaxed: a snapshot for statistics and tests.
        (
            self.count.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    pub(super) fn max_count(&self) -> usize {
        self.max_count
    }

    pub(super) fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

/// Adds `n` to `counter` unless the sum would pass `max`.
fn reserve_one(counter: &AtomicUsize, n: usize, max: usize) -> bool {
    if n == 0 {
        return true;
    }
    // Relaxed throughout: the CAS alone makes the check-and-add atomic, which is all the limit
    // needs; no data is published through the counter.
    let mut current = counter.load(Ordering::Relaxed);
    loop {
        match current.checked_add(n) {
            Some(next) if next <= max => {
                match counter.compare_exchange_weak(
                    current,
                    next,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(seen) => current = seen,
                }
            }
            _ => return false,
        }
    }
}

/// The shared store and the tallies of threads that have no cache.
#[derive(Debug)]
pub(super) struct Shared<T> {
    /// Objects with their weights, oldest first. Each holds one unit (and its weight) of the
    /// budget.
    ring: Ring<(Item<T>, usize)>,
    /// What did not fit the ring: only a pool whose capacity is above `RING_MAX` uses it.
    overflow: Mutex<Vec<(Item<T>, usize)>>,
    /// Mirror of `overflow.len()`, so a pop skips the lock when it is empty.
    overflow_len: AtomicUsize,
    /// Events of gets and puts from threads without a cache, and of panics in hooks.
    pub(super) tallies: Tallies,
}

impl<T> Shared<T> {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            ring: Ring::with_capacity(capacity.clamp(1, RING_MAX)),
            overflow: Mutex::new(Vec::new()),
            overflow_len: AtomicUsize::new(0),
            tallies: Tallies::default(),
        }
    }

    /// Objects stored now (a snapshot).
    pub(super) fn len(&self) -> usize {
        // Relaxed: a hint; `pop` re-checks under the lock.
        self.ring.len() + self.overflow_len.load(Ordering::Relaxed)
    }

    /// Stores `obj`, which holds one unit and `weight` bytes of the budget.
    pub(super) fn push(&self, obj: Item<T>, weight: usize) {
        if let Err(full) = self.ring.push((obj, weight)) {
            let mut overflow = self.overflow.lock();
            overflow.push(full);
            // Relaxed: a mirror written under the lock; readers use it as a hint.
            self.overflow_len.store(overflow.len(), Ordering::Relaxed);
        }
    }

    /// Stores a batch; each object holds its unit of the budget already.
    pub(super) fn push_many(&self, batch: impl IntoIterator<Item = (Item<T>, usize)>) {
        for (obj, weight) in batch {
            self.push(obj, weight);
        }
    }

    /// Takes the oldest stored object, with its weight; the caller gives its budget back.
    pub(super) fn pop(&self) -> Option<(Item<T>, usize)> {
        self.ring.pop().or_else(|| {
            // Relaxed: a hint, re-checked under the lock. A racing push is missed, costing one
            // factory call at most.
            if self.overflow_len.load(Ordering::Relaxed) == 0 {
                return None;
            }
            let mut overflow = self.overflow.lock();
            let popped = overflow.pop();
            // Relaxed: as in `push`.
            self.overflow_len.store(overflow.len(), Ordering::Relaxed);
            popped
        })
    }

    /// Takes out all but `keep` objects, oldest first; the caller drops them after this returns
    /// (a destructor may re-enter the pool) and gives their budget back.
    pub(super) fn split_off_oldest(&self, keep: usize) -> Vec<(Item<T>, usize)> {
        let excess = self.len().saturating_sub(keep);
        (0..excess).map_while(|_| self.pop()).collect()
    }
}
