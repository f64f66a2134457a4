//! The pool's shared side: the budget every retained object is counted against, and the store
//! behind the per-thread caches.
//!
//! The store is a `Mutex<Vec<_>>`. It is only reached when a thread's cache is empty (get) or
//! full (put): for the cross-thread pattern (get on A, drop on B), for threads beyond the
//! pool's slots, and during thread teardown. A lock-free queue would avoid the lock but would
//! need its own allocation per node or a second bounded ring; the `Vec` is preallocated, so a
//! push under the lock never allocates in steady state, and parking_lot's uncontended lock is a
//! single CAS.

use super::local::Tallies;
use super::Item;
use crate::sync::{AtomicUsize, Mutex, Ordering};

/// Capacity the store preallocates at most; above it, it grows when first needed.
const PREALLOCATE_MAX: usize = 1024;

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
    /// Objects with their weights. Each holds one unit (and its weight) of the budget.
    store: Mutex<Store<T>>,
    /// Mirror of the store's length: lets a get skip the lock when the store is empty, and
    /// feeds `Pool::stats`.
    len: AtomicUsize,
    /// Mirror of the store's summed weights, for `Pool::retained_bytes`.
    bytes: AtomicUsize,
    /// Events of gets and puts from threads without a cache, and of panics in hooks.
    pub(super) tallies: Tallies,
}

#[derive(Debug)]
struct Store<T> {
    /// Oldest first: pushes and pops happen at the back.
    items: Vec<(Item<T>, usize)>,
    /// Sum of the items' weights.
    bytes: usize,
}

impl<T> Shared<T> {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            store: Mutex::new(Store {
                items: Vec::with_capacity(capacity.min(PREALLOCATE_MAX)),
                bytes: 0,
            }),
            len: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            tallies: Tallies::default(),
        }
    }

    /// Objects stored now (a snapshot).
    pub(super) fn len(&self) -> usize {
        // Relaxed: a hint; `pop` re-checks under the lock.
        self.len.load(Ordering::Relaxed)
    }

    /// Bytes stored now (a snapshot).
    pub(super) fn bytes(&self) -> usize {
        // Relaxed: a statistic.
        self.bytes.load(Ordering::Relaxed)
    }

    /// Updates the mirrors; called with the lock held.
    fn publish(&self, store: &Store<T>) {
        // Relaxed: mirrors written under the lock; readers only use them as hints.
        self.len.store(store.items.len(), Ordering::Relaxed);
        self.bytes.store(store.bytes, Ordering::Relaxed);
    }

    /// Stores `obj`; the caller has reserved one unit and `weight` bytes of the budget for it.
    pub(super) fn push(&self, obj: Item<T>, weight: usize) {
        self.push_many([(obj, weight)]);
    }

    /// Stores a batch; each object holds its unit of the budget already.
    pub(super) fn push_many(&self, batch: impl IntoIterator<Item = (Item<T>, usize)>) {
        let mut store = self.store.lock();
        for (obj, weight) in batch {
            store.bytes += weight;
            store.items.push((obj, weight));
        }
        self.publish(&store);
    }

    /// Takes the most recently stored object (the one most likely still in cache), with its
    /// weight; the caller gives its budget back.
    pub(super) fn pop(&self) -> Option<(Item<T>, usize)> {
        if self.len() == 0 {
            // Nothing seen: skip the lock. A racing push is missed, costing one factory call.
            return None;
        }
        let mut store = self.store.lock();
        let popped = store.items.pop();
        if let Some((_, weight)) = &popped {
            store.bytes -= weight;
        }
        self.publish(&store);
        popped
    }

    /// Takes out all but the newest `keep` objects; the caller drops them after the lock is
    /// released (a destructor may re-enter the pool) and gives their budget back.
    pub(super) fn split_off_oldest(&self, keep: usize) -> Vec<(Item<T>, usize)> {
        let mut store = self.store.lock();
        let excess = store.items.len().saturating_sub(keep);
        let taken: Vec<_> = store.items.drain(..excess).collect();
        store.bytes -= taken.iter().map(|(_, weight)| weight).sum::<usize>();
        self.publish(&store);
        taken
    }
}
