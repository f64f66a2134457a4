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
use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering};

/// The most slots the ring preallocates (a pool of a larger capacity overflows to a `Vec`).
const RING_MAX: usize = 1024;

/// The limits on what a pool retains: objects and bytes (weights).
///
/// `count` is the number of objects reserved (by caches), stored (in the shared store) or kept
/// for lent-out objects by their tickets (`ticket.rs`); `bytes` the same for weights. Objects
/// retained never exceed what is reserved or stored, so `count <= max_count` and
/// `bytes <= max_bytes` bound what the pool holds at every instant.
///
/// Both live in one atomic word (`count` in the top [`COUNT_BITS`], `bytes` below), so a
/// reservation is one compare-exchange and a release one `fetch_sub`, not two of each. (An
/// object that crosses threads through the store usually pays neither: its ticket keeps its
/// unit, `ticket.rs`.) Limits above the fields' range are clamped to it ([`Budget::new`]).
#[derive(Debug)]
pub(super) struct Budget {
    used: AtomicU64,
    max_count: usize,
    max_bytes: usize,
    /// The weight of the last object the store refused for want of room, until room is given
    /// back (0: none): bytes short of `max_bytes` by less than this count as full
    /// ([`Budget::is_full`]).
    refused: AtomicUsize,
}

/// Bits of the budget word that hold the object count: at most `2^24 - 1` objects reserved.
const COUNT_BITS: u32 = 24;
/// Bits that hold the bytes: at most `2^40 - 1` (1 TiB) reserved.
const BYTES_BITS: u32 = 64 - COUNT_BITS;
/// The most objects a budget counts (a larger capacity is clamped to it).
pub(super) const MAX_COUNT: usize = (1 << COUNT_BITS) - 1;
/// The most bytes a budget counts (a larger byte budget is clamped to it).
pub(super) const MAX_BYTES: u64 = (1 << BYTES_BITS) - 1;

/// A byte budget as a [`Budget`] counts it: clamped to [`MAX_BYTES`] (on 32-bit targets every
/// `usize` fits).
pub(super) fn counted_bytes(bytes: usize) -> usize {
    usize::try_from(MAX_BYTES).map_or(bytes, |cap| bytes.min(cap))
}

/// The budget word for `count` objects and `bytes` bytes; both within their fields' range.
fn pack(count: usize, bytes: usize) -> u64 {
    ((count as u64) << BYTES_BITS) | bytes as u64
}

/// `(count, bytes)` from a budget word.
fn unpack(word: u64) -> (usize, usize) {
    ((word >> BYTES_BITS) as usize, (word & MAX_BYTES) as usize)
}

impl Budget {
    /// A budget of `max_count` objects and `max_bytes` bytes, each clamped to what its field
    /// holds ([`MAX_COUNT`], [`MAX_BYTES`]; on 32-bit targets `usize::MAX` bytes).
    pub(super) fn new(max_count: usize, max_bytes: usize) -> Self {
        Self {
            used: AtomicU64::new(0),
            max_count: max_count.min(MAX_COUNT),
            max_bytes: counted_bytes(max_bytes),
            refused: AtomicUsize::new(0),
        }
    }

    /// Records that an object of `weight` found no room, for [`Budget::is_full`].
    pub(super) fn note_refused(&self, weight: usize) {
        // Relaxed: a hint for when to reclaim; nothing is published through it. Written only
        // when it changes, so pools that refuse objects of one weight do not share-write it.
        if self.refused.load(Ordering::Relaxed) != weight {
            self.refused.store(weight, Ordering::Relaxed);
        }
    }

    /// Reserves `count` objects and `bytes` bytes, or nothing if either would exceed its
    /// limit.
    pub(super) fn reserve(&self, count: usize, bytes: usize) -> bool {
        if count == 0 && bytes == 0 {
            return true;
        }
        // Relaxed throughout: the CAS alone makes the check-and-add atomic, which is all the
        // limits need; no data is published through the budget (objects travel through the
        // store or stay with their cache's owner).
        let mut current = self.used.load(Ordering::Relaxed);
        loop {
            let (used_count, used_bytes) = unpack(current);
            let fits =
                |used: usize, n: usize, max: usize| used.checked_add(n).filter(|&s| s <= max);
            let (Some(next_count), Some(next_bytes)) = (
                fits(used_count, count, self.max_count),
                fits(used_bytes, bytes, self.max_bytes),
            ) else {
                return false;
            };
            match self.used.compare_exchange_weak(
                current,
                pack(next_count, next_bytes),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    /// Gives back what [`Budget::reserve`] took. Room given back forgets the last refused
    /// weight: an object of that weight may fit now, and one that does not records it again.
    pub(super) fn release(&self, count: usize, bytes: usize) {
        // Relaxed: as in `reserve`. What is given back was reserved, so neither field borrows
        // from the other.
        if count != 0 || bytes != 0 {
            self.used.fetch_sub(pack(count, bytes), Ordering::Relaxed);
            // Relaxed: as in `note_refused`; written only when set, so releases do not all
            // write it.
            if self.refused.load(Ordering::Relaxed) != 0 {
                self.refused.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Whether objects are retained and no more could be reserved now: the count is at its
    /// limit, or the bytes left are fewer than the object refused since the last release
    /// weighed, or, with bytes held, none are left (a snapshot).
    /// Never for a budget that holds nothing (a capacity of 0 is always at its limit, and there
    /// is nothing to reclaim), nor by bytes for objects that weigh nothing (a byte budget of 0
    /// keeps those: it is not full while the count has room).
    pub(super) fn is_full(&self) -> bool {
        let (count, bytes) = self.used();
        // Relaxed: as in `note_refused`.
        let refused = self.refused.load(Ordering::Relaxed);
        count > 0
            && (count >= self.max_count
                || (self.max_bytes.saturating_sub(bytes) < refused.max(1)
                    && (bytes > 0 || refused > 0)))
    }

    /// Whether one more object of `weight` bytes would exceed a limit now (a snapshot): what
    /// [`Budget::reserve`]`(1, weight)` would refuse.
    pub(super) fn lacks_room(&self, weight: usize) -> bool {
        let (count, bytes) = self.used();
        count >= self.max_count
            || bytes
                .checked_add(weight)
                .map_or(true, |bytes| bytes > self.max_bytes)
    }

    /// Objects and bytes reserved or stored now (a snapshot).
    pub(super) fn used(&self) -> (usize, usize) {
        // Relaxed: a snapshot for statistics and tests.
        unpack(self.used.load(Ordering::Relaxed))
    }

    pub(super) fn max_count(&self) -> usize {
        self.max_count
    }

    pub(super) fn max_bytes(&self) -> usize {
        self.max_bytes
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

    /// Takes a stored object (the ring's oldest, else the overflow's newest), with its weight;
    /// the caller gives its unit of the budget back, or keeps it as the object's ticket.
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

    /// Takes out all but `keep` objects: the ring's, oldest first, then the overflow's, from
    /// its oldest end (`pop` takes the overflow's newest), and gives back the overflow's
    /// buffer beyond what it still holds (`trim` and `clear` are how a pool's memory goes
    /// back after a burst; gets empty the overflow but keep its buffer). The caller drops the
    /// objects after this returns (a destructor may re-enter the pool) and gives their budget
    /// back.
    pub(super) fn split_off_oldest(&self, keep: usize) -> Vec<(Item<T>, usize)> {
        let excess = self.len().saturating_sub(keep);
        let mut out: Vec<_> = (0..excess).map_while(|_| self.ring.pop()).collect();
        let more = excess - out.len();
        let mut overflow = self.overflow.lock();
        let more = more.min(overflow.len());
        out.extend(overflow.drain(..more));
        overflow.shrink_to_fit();
        // Relaxed: as in `push`.
        self.overflow_len.store(overflow.len(), Ordering::Relaxed);
        out
    }
}

#[cfg(all(test, not(loom)))]
mod budget_tests {
    use super::*;

    #[test]
    fn both_limits_hold_in_one_word() {
        let budget = Budget::new(3, 100);
        assert!(budget.reserve(2, 60));
        assert!(!budget.reserve(2, 0), "a third and fourth object");
        assert!(!budget.reserve(1, 41), "101 bytes");
        assert!(!budget.lacks_room(40));
        assert!(budget.reserve(1, 40));
        assert_eq!(budget.used(), (3, 100));
        assert!(budget.lacks_room(0), "the count is at its limit");
        budget.release(1, 40);
        assert_eq!(budget.used(), (2, 60));
        assert!(budget.lacks_room(41), "101 bytes");
        assert!(budget.lacks_room(usize::MAX), "an overflowing weight");
        assert!(
            !budget.reserve(0, usize::MAX),
            "an overflowing weight is refused"
        );
        budget.release(2, 60);
        assert_eq!(budget.used(), (0, 0));
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn limits_past_the_fields_are_clamped_and_still_hold() {
        let budget = Budget::new(usize::MAX, usize::MAX);
        assert_eq!(budget.max_count(), MAX_COUNT);
        assert_eq!(budget.max_bytes() as u64, MAX_BYTES);
        assert!(budget.reserve(MAX_COUNT, MAX_BYTES as usize));
        assert!(!budget.reserve(1, 0), "the count field is full");
        assert!(!budget.reserve(0, 1), "the bytes field is full");
        assert_eq!(budget.used(), (MAX_COUNT, MAX_BYTES as usize));
        budget.release(MAX_COUNT, MAX_BYTES as usize);
        assert_eq!(budget.used(), (0, 0));
    }
}
