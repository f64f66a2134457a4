//! The pool's per-thread caches, indexed by thread slot, in an array that grows with the slots
//! that actually use the pool.
//!
//! Slot indices (`sync::thread_slot_hint`) are dense among live threads but have no upper
//! bound: a process with 64 live threads hands out indices 0 to 63. A fixed array sized to the
//! CPU count left every thread past it without a cache, on the shared store's lock. Here the
//! caches sit in buckets that double in size (the layout of the `thread_local` crate, with a
//! first bucket of 8): bucket 0 holds slots 0 to 7, bucket 1 slots 8 to 15, bucket 2 slots 16
//! to 31, and so on. Bucket 0 is part of the pool itself, so the lookup most threads make is a
//! compare and an index, with no load and no null test; every other bucket is allocated the
//! first time a thread of its range uses the pool, and is then one bit scan, one load and an
//! index away. Buckets never move or shrink, so a reference to a cache stays valid for the
//! pool's life. Memory follows the highest slot index that used the pool: at most twice that
//! many caches (8 at least, inside the pool), of 384 bytes each on x86-64.

use super::local::Local;
use crate::drop_each::drop_each;
use crate::sync::{AtomicPtr, AtomicUsize, CachePadded, Ordering};
use std::ptr;

/// One bucket per bit of an index: enough for every `usize` slot. Under loom, models have a
/// handful of threads and every bucket is a modelled atomic that each reclaim loads, so fewer.
#[cfg(not(loom))]
const BUCKETS: usize = usize::BITS as usize;
#[cfg(loom)]
const BUCKETS: usize = 4;

/// `repr(C)`: `first` at offset 0 (see `Pool`).
#[repr(C)]
pub(super) struct Caches<T> {
    /// Bucket 0: the caches of slots below `FIRST`, made with the pool.
    first: [CachePadded<Local<T>>; FIRST],
    /// `buckets[b]` for `b >= 1`: null, or `bucket_len(b)` caches from `Box::into_raw` of a
    /// boxed slice, published once. `buckets[0]` stays null (bucket 0 is `first`).
    buckets: [AtomicPtr<CachePadded<Local<T>>>; BUCKETS],
    /// Caches in the buckets made beyond bucket 0 (counted just before each is published):
    /// bounds a pass ([`iter`](Self::iter)) and paces them (`pace.rs`).
    beyond_first: AtomicUsize,
}

/// Caches in bucket 0 and in bucket 1; bucket `b >= 1` holds `FIRST << (b - 1)`. Under loom, 2:
/// a reclaim visits every cache made, each visit a handful of modelled atomics, and models have
/// a handful of threads. A power of two.
#[cfg(not(loom))]
const FIRST: usize = 8;
#[cfg(loom)]
const FIRST: usize = 2;

/// How many caches bucket `bucket` holds.
fn bucket_len(bucket: usize) -> usize {
    match bucket {
        0 => FIRST,
        b => FIRST << (b - 1),
    }
}

/// How many buckets past bucket 0 a pass must visit when the buckets made past it hold
/// `beyond_first` caches: the highest made is bucket `b` exactly when `beyond_first / FIRST`
/// has `b` bits, since bucket `b` alone holds `FIRST << (b - 1)` and buckets 1 to `b` together
/// `FIRST * (2^b - 1)`, however sparse the ones below it are.
fn buckets_made(beyond_first: usize) -> usize {
    (usize::BITS - (beyond_first / FIRST).leading_zeros()) as usize
}

/// Marks the path that calls it as the unlikely one, so the compiler lays the common path out
/// straight (a branch hint, not a call: it inlines to nothing).
#[cold]
#[inline(always)]
fn cold() {}

/// Bucket and offset of slot `slot`, or `None` for `usize::MAX` (no slot). Slots below `FIRST`
/// (the threads of most processes) are one compare away; above, bucket `b` holds the slots
/// `FIRST << (b - 1) .. FIRST << b`.
#[inline(always)]
fn locate(slot: usize) -> Option<(usize, usize)> {
    if slot < FIRST {
        return Some((0, slot));
    }
    if slot == usize::MAX {
        return None;
    }
    let top = (usize::BITS - 1 - slot.leading_zeros()) as usize; // >= log2(FIRST)
    let bucket = top + 1 - FIRST.trailing_zeros() as usize;
    (bucket < BUCKETS).then_some((bucket, slot ^ (1 << top)))
}

impl<T> Caches<T> {
    pub(super) fn new() -> Self {
        Self {
            first: std::array::from_fn(|_| CachePadded::new(Local::new())),
            buckets: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            beyond_first: AtomicUsize::new(0),
        }
    }

    /// Slot `slot`'s cache if its bucket exists: the fast path's lookup. `None` for
    /// `usize::MAX` (a thread without a slot).
    #[inline(always)]
    pub(super) fn get(&self, slot: usize) -> Option<&Local<T>> {
        if slot < FIRST {
            return Some(&self.first[slot]);
        }
        cold();
        let (bucket, offset) = locate(slot)?;
        // Acquire: pairs with the Release in `get_or_make`, so the caches' initial state is
        // visible.
        let base = self.buckets[bucket].load(Ordering::Acquire);
        if base.is_null() {
            return None;
        }
        // SAFETY: a non-null bucket holds `bucket_len(bucket)` initialised caches and is never
        // freed before `self`; `offset < bucket_len(bucket)` by `locate`.
        Some(unsafe { &**base.add(offset) })
    }

    /// Slot `slot`'s cache, allocating its bucket if this is the first use of that range.
    #[cold]
    pub(super) fn get_or_make(&self, slot: usize) -> Option<&Local<T>> {
        if let Some(local) = self.get(slot) {
            return Some(local);
        }
        let (bucket, _) = locate(slot)?;
        let fresh: Box<[CachePadded<Local<T>>]> = (0..bucket_len(bucket))
            .map(|_| CachePadded::new(Local::new()))
            .collect();
        let fresh = Box::into_raw(fresh).cast::<CachePadded<Local<T>>>();
        // Counted before it is published, so a thread that sees the bucket (through the CAS's
        // Release) also sees the count that makes `iter` visit it. Relaxed: that order comes
        // from the CAS; a loser's count, taken back below, only makes a pass look at a null
        // bucket meanwhile.
        self.beyond_first
            .fetch_add(bucket_len(bucket), Ordering::Relaxed);
        // Release: publishes the caches' initial state (and the count) to `get`'s Acquire.
        // Acquire on failure: the winner's bucket is then read through `get`.
        if let Err(_winner) = self.buckets[bucket].compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::Release,
            Ordering::Acquire,
        ) {
            // Relaxed: as above.
            self.beyond_first
                .fetch_sub(bucket_len(bucket), Ordering::Relaxed);
            // SAFETY: `fresh` came from `Box::into_raw` of a slice of `bucket_len` caches just
            // above and was never published, so this is its only owner.
            drop(unsafe {
                Box::from_raw(ptr::slice_from_raw_parts_mut(fresh, bucket_len(bucket)))
            });
        }
        self.get(slot)
    }

    /// How many caches [`iter`](Self::iter) visits: those of bucket 0 and of every bucket made
    /// (those published since a moment ago may be missing).
    pub(super) fn made(&self) -> usize {
        // Relaxed: a bucket's count is sequenced before its publishing CAS (Release), so a
        // thread that has seen the bucket, or is ordered after one that has, reads it here.
        FIRST + self.beyond_first.load(Ordering::Relaxed)
    }

    /// Every cache made so far (those published since a moment ago may be missing). Visits
    /// the buckets up to the highest made ([`made`](Self::made)), not all `BUCKETS` of them: a
    /// pass is what a get that misses or a refused put pays.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Local<T>> {
        let first = self.first.iter().map(|local| &**local);
        first.chain(
            self.buckets
                .iter()
                .enumerate()
                .skip(1)
                .take(buckets_made(self.made() - FIRST))
                .flat_map(|(bucket, base)| {
                    // Acquire: as in `get`.
                    let base = base.load(Ordering::Acquire);
                    let len = if base.is_null() {
                        0
                    } else {
                        bucket_len(bucket)
                    };
                    // SAFETY: as in `get`, for every offset below `len`.
                    (0..len).map(move |offset| unsafe { &**base.add(offset) })
                }),
        )
    }
}

impl<T> Drop for Caches<T> {
    fn drop(&mut self) {
        // Every bucket, past one holding an object whose `Drop` panics (`drop_each`).
        drop_each(
            self.buckets
                .iter()
                .enumerate()
                .filter_map(|(bucket, base)| {
                    // Relaxed: `&mut self`, no other thread can see the buckets any more.
                    let base = base.load(Ordering::Relaxed);
                    // SAFETY: published by `get_or_make` from `Box::into_raw` of a slice of
                    // `bucket_len(bucket)` caches; `&mut self` means nothing refers to them any
                    // more, and each bucket is taken back once, here.
                    (!base.is_null()).then(|| unsafe {
                        Box::from_raw(ptr::slice_from_raw_parts_mut(base, bucket_len(bucket)))
                    })
                }),
        );
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_distinct_buckets_and_offsets() {
        assert_eq!(locate(usize::MAX), None);
        assert_eq!(locate(0), Some((0, 0)));
        assert_eq!(locate(7), Some((0, 7)));
        assert_eq!(locate(8), Some((1, 0)));
        assert_eq!(locate(15), Some((1, 7)));
        assert_eq!(locate(16), Some((2, 0)));
        assert_eq!(locate(31), Some((2, 15)));
        assert_eq!(locate(32), Some((3, 0)));
        assert_eq!(locate(64), Some((4, 0)));
        // Every slot up to a few buckets lands once, in range.
        let mut seen = std::collections::HashSet::new();
        for slot in 0..1024 {
            let (bucket, offset) = locate(slot).unwrap();
            assert!(offset < bucket_len(bucket), "slot {slot}");
            assert!(seen.insert((bucket, offset)), "slot {slot} shares a cache");
        }
    }

    /// The size the module doc and `Pool`'s docs quote for a cache.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn a_cache_takes_384_bytes_on_x86_64() {
        assert_eq!(std::mem::size_of::<CachePadded<Local<Vec<u8>>>>(), 384);
        // The `Pool` docs' figure: slot 1 000 lies in the bucket of slots 512 to 1 023.
        assert_eq!(locate(1000), Some((7, 488)));
        assert_eq!(bucket_len(7) * 384, 192 << 10);
    }

    /// The size `Pool`'s docs quote: the first bucket's 8 caches are inside the pool.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn a_pool_holds_its_first_8_caches_in_under_5_kib() {
        let size = std::mem::size_of::<crate::pool::BufferPool>();
        assert!((8 * 384..5 << 10).contains(&size), "{size} bytes");
    }

    #[test]
    fn a_pass_visits_every_bucket_made_however_sparse() {
        assert_eq!(buckets_made(0), 0);
        for top in 1..BUCKETS.min(40) {
            // Bucket `top` alone, and with every bucket below it.
            let alone = bucket_len(top);
            let all: usize = (1..=top).map(bucket_len).sum();
            assert_eq!(buckets_made(alone), top, "bucket {top} alone");
            assert_eq!(buckets_made(all), top, "buckets 1 to {top}");
        }
        let caches: Caches<u32> = Caches::new();
        caches.get_or_make(100).unwrap(); // bucket 4 (slots 64..128), none between
        assert_eq!(caches.iter().count(), 8 + 64);
        caches.get_or_make(9).unwrap(); // bucket 1
        assert_eq!(caches.iter().count(), 8 + 64 + 8);
        caches.get_or_make(5000).unwrap(); // bucket 10 (slots 4 096..8 192), far above the rest
        assert_eq!(caches.iter().count(), 8 + 64 + 8 + 4096);
    }

    #[test]
    fn caches_are_made_on_first_use_and_stay_put() {
        let caches: Caches<u32> = Caches::new();
        assert_eq!(
            caches.iter().count(),
            8,
            "bucket 0, slots 0..8, is made with the pool"
        );
        assert!(caches.get(8).is_none());
        let a: *const Local<u32> = caches.get_or_make(5).unwrap();
        assert_eq!(caches.iter().count(), 8);
        assert!(ptr::eq(a, caches.get(5).unwrap()));
        assert!(ptr::eq(a, caches.get_or_make(5).unwrap()));
        let b: *const Local<u32> = caches.get_or_make(64).unwrap();
        assert!(!ptr::eq(a, b));
        assert_eq!(
            caches.iter().count(),
            8 + 64,
            "bucket 4 holds slots 64..128"
        );
        assert!(caches.get_or_make(usize::MAX).is_none());
    }
}
