//! The pool's per-thread caches, indexed by thread slot, in an array that grows with the slots
//! that actually use the pool.
//!
//! Slot indices (`sync::thread_slot_hint`) are dense among live threads but have no upper
//! bound: a process with 64 live threads hands out indices 0 to 63. A fixed array sized to the
//! CPU count left every thread past it without a cache, on the shared store's lock. Here cache
//! `i` lives in bucket `b = log2(i + 1)`, which holds the `2^b` caches of indices
//! `2^b - 1 .. 2^(b+1) - 1` and is allocated the first time a thread of that range uses the
//! pool (the layout of the `thread_local` crate). Buckets never move or shrink, so a reference
//! to a cache stays valid for the pool's life, and a lookup is a shift, one load and an index,
//! whatever the number of threads. Memory follows the highest slot index that used the pool:
//! at most twice that many caches, of two cache lines each.

use super::local::Local;
use crate::sync::{AtomicPtr, CachePadded, Ordering};
use std::ptr;

/// One bucket per bit of an index: enough for every `usize` slot. Under loom, models have a
/// handful of threads and every bucket is a modelled atomic that each reclaim loads, so fewer.
#[cfg(not(loom))]
const BUCKETS: usize = usize::BITS as usize;
#[cfg(loom)]
const BUCKETS: usize = 4;

pub(super) struct Caches<T> {
    /// `buckets[b]`: null, or `2^b` caches from `Box::into_raw` of a boxed slice, published once.
    buckets: [AtomicPtr<CachePadded<Local<T>>>; BUCKETS],
}

/// Bucket and offset of slot `slot`, or `None` for `usize::MAX` (no slot).
#[inline(always)]
fn locate(slot: usize) -> Option<(usize, usize)> {
    let n = slot.wrapping_add(1);
    if n == 0 {
        return None;
    }
    let bucket = (usize::BITS - 1 - n.leading_zeros()) as usize;
    (bucket < BUCKETS).then_some((bucket, n ^ (1 << bucket)))
}

impl<T> Caches<T> {
    pub(super) fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }

    /// Slot `slot`'s cache if its bucket exists: the fast path's lookup. `None` for
    /// `usize::MAX` (a thread without a slot).
    #[inline(always)]
    pub(super) fn get(&self, slot: usize) -> Option<&Local<T>> {
        let (bucket, offset) = locate(slot)?;
        // Acquire: pairs with the Release in `get_or_make`, so the caches' initial state is
        // visible.
        let base = self.buckets[bucket].load(Ordering::Acquire);
        if base.is_null() {
            return None;
        }
        // SAFETY: a non-null bucket holds `2^bucket` initialised caches and is never freed
        // before `self`; `offset < 2^bucket` by `locate`.
        Some(unsafe { &**base.add(offset) })
    }

    /// Slot `slot`'s cache, allocating its bucket if this is the first use of that range.
    #[cold]
    pub(super) fn get_or_make(&self, slot: usize) -> Option<&Local<T>> {
        if let Some(local) = self.get(slot) {
            return Some(local);
        }
        let (bucket, _) = locate(slot)?;
        let fresh: Box<[CachePadded<Local<T>>]> = (0..1usize << bucket)
            .map(|_| CachePadded::new(Local::new()))
            .collect();
        let fresh = Box::into_raw(fresh).cast::<CachePadded<Local<T>>>();
        // Release: publishes the caches' initial state to `get`'s Acquire. Acquire on failure:
        // the winner's bucket is then read through `get`.
        if let Err(_winner) = self.buckets[bucket].compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::Release,
            Ordering::Acquire,
        ) {
            // SAFETY: `fresh` came from `Box::into_raw` of a slice of `2^bucket` caches just
            // above and was never published, so this is its only owner.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(fresh, 1 << bucket)) });
        }
        self.get(slot)
    }

    /// Every cache made so far.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Local<T>> {
        self.buckets.iter().enumerate().flat_map(|(bucket, base)| {
            // Acquire: as in `get`.
            let base = base.load(Ordering::Acquire);
            let len = if base.is_null() { 0 } else { 1 << bucket };
            // SAFETY: as in `get`, for every offset below `len`.
            (0..len).map(move |offset| unsafe { &**base.add(offset) })
        })
    }
}

impl<T> Drop for Caches<T> {
    fn drop(&mut self) {
        for (bucket, base) in self.buckets.iter().enumerate() {
            // Relaxed: `&mut self`, no other thread can see the buckets any more.
            let base = base.load(Ordering::Relaxed);
            if !base.is_null() {
                // SAFETY: published by `get_or_make` from `Box::into_raw` of a slice of
                // `2^bucket` caches; `&mut self` means nothing refers to them any more.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(base, 1 << bucket)) });
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_distinct_buckets_and_offsets() {
        assert_eq!(locate(usize::MAX), None);
        assert_eq!(locate(0), Some((0, 0)));
        assert_eq!(locate(1), Some((1, 0)));
        assert_eq!(locate(2), Some((1, 1)));
        assert_eq!(locate(3), Some((2, 0)));
        assert_eq!(locate(6), Some((2, 3)));
        assert_eq!(locate(7), Some((3, 0)));
        assert_eq!(locate(usize::MAX - 1), Some((63, (1 << 63) - 1)));
    }

    #[test]
    fn caches_are_made_on_first_use_and_stay_put() {
        let caches: Caches<u32> = Caches::new();
        assert!(caches.get(5).is_none());
        let a: *const Local<u32> = caches.get_or_make(5).unwrap();
        assert_eq!(caches.iter().count(), 4, "bucket 2 holds slots 3..7");
        assert!(ptr::eq(a, caches.get(5).unwrap()));
        assert!(ptr::eq(a, caches.get_or_make(5).unwrap()));
        let b: *const Local<u32> = caches.get_or_make(64).unwrap();
        assert!(!ptr::eq(a, b));
        assert_eq!(caches.iter().count(), 4 + 64);
        assert!(caches.get_or_make(usize::MAX).is_none());
    }
}
