//! The pool's per-thread caches, indexed by thread slot, in leaves made for the slots that
//! actually use the pool.
//!
//! Slot indices (`sync::thread_slot_hint`) are dense among live threads but have no upper bound,
//! and a thread keeps its index for life: a process with 64 live threads hands out indices 0 to 63,
//! and a thread that outlives a crowd of a thousand may keep index 999. A fixed array sized to the
//! CPU count would leave every thread past it without a cache, on the shared store's lock; an array
//! grown to the highest index would make each pool such a survivor touched pay for a thousand
//! caches. Here the caches sit in leaves of 8, one leaf per 8 consecutive slots, made the first
//! time a thread of its range uses the pool, so memory follows the threads that used the pool, not
//! the highest index. Leaf 0 (slots 0 to 7) is part of the pool itself, so the lookup most threads
//! make is a compare and an index, with no load and no null test. The pointers of leaves 1 to 127
//! (slots 8 to 1 023: the tracked slots, `sync::TRACKED_SLOTS`) are in the pool too, one load away.
//! Past them, leaf pointers sit in tables that double in size (the layout of the `thread_local`
//! crate): table 0 holds those of leaves 128 to 255, table 1 those of leaves 256 to 511, and so on,
//! each made when a leaf of its range is, one bit scan and two loads away. Leaves and tables never
//! move or shrink, so a reference to a cache stays valid for the pool's life. Memory: a leaf of 8
//! caches (3 KiB on x86-64) per 8-slot range used, 1 KiB of near pointers in the pool, and past
//! slot 1 023, 8 bytes a leaf in the tables up to the highest one used.

use super::local::Local;
use crate::drop_each::drop_each;
use crate::sync::{AtomicPtr, AtomicUsize, CachePadded, Ordering};
use std::ptr;

/// Caches in a leaf. Under loom, 2: a reclaim visits every cache made, each visit a handful of
/// modelled atomics, and models have a handful of threads. A power of two.
#[cfg(not(loom))]
const LEAF: usize = 8;
#[cfg(loom)]
const LEAF: usize = 2;

/// Leaves `1 ..= NEAR` have their pointers in the pool: `2^NEAR_BITS - 1` of them. Under loom,
/// 3 (slots 2 to 7), so that models reach the tables past them.
#[cfg(not(loom))]
const NEAR_BITS: usize = 7;
#[cfg(loom)]
const NEAR_BITS: usize = 2;
const NEAR: usize = (1 << NEAR_BITS) - 1;

/// Tables past the near leaves, one per bit of a leaf index above `NEAR_BITS`: enough for every
/// `usize` slot (the largest leaf index, `usize::MAX / LEAF`, has `usize::BITS - log2(LEAF)`
/// bits). Under loom, 2: every table is a modelled atomic that each reclaim loads.
#[cfg(not(loom))]
const TABLES: usize = (usize::BITS - LEAF.trailing_zeros()) as usize - NEAR_BITS;
#[cfg(loom)]
const TABLES: usize = 2;

/// `LEAF` consecutive slots' caches.
type Leaf<T> = [CachePadded<Local<T>>; LEAF];

/// A pointer to a leaf, null until the leaf is made.
type LeafPtr<T> = AtomicPtr<Leaf<T>>;

/// `repr(C)`: `first` at offset 0 (see `Pool`).
#[repr(C)]
pub(super) struct Caches<T> {
    /// Leaf 0: the caches of slots below `LEAF`, made with the pool.
    first: Leaf<T>,
    /// `near[i]`: leaf `i + 1`, null until made, published once.
    near: [LeafPtr<T>; NEAR],
    /// `tables[t]`: null, or the `table_len(t)` pointers of leaves `(NEAR + 1) << t ..`, from
    /// `Box::into_raw` of a boxed slice, published once.
    tables: [AtomicPtr<LeafPtr<T>>; TABLES],
    /// One past the highest leaf index made (raised just before each leaf is published): bounds
    /// a pass ([`iter`](Self::iter)), so a pool that only low slots used looks at few pointers.
    leaves_hi: AtomicUsize,
    /// Caches in the leaves made beyond leaf 0 (counted just before each is published): paces
    /// the passes (`pace.rs`).
    beyond_first: AtomicUsize,
}

/// How many leaf pointers table `table` holds.
fn table_len(table: usize) -> usize {
    (NEAR + 1) << table
}

/// Marks the path that calls it as the unlikely one, so the compiler lays the common path out
/// straight (a branch hint, not a call: it inlines to nothing).
#[cold]
#[inline(always)]
fn cold() {}

/// Where leaf `leaf > NEAR` has its pointer: the table, and the index in it; `None` past the
/// last table (no slot reaches it).
#[inline(always)]
fn in_table(leaf: usize) -> Option<(usize, usize)> {
    let top = (usize::BITS - 1 - leaf.leading_zeros()) as usize; // >= NEAR_BITS
    let table = top - NEAR_BITS;
    (table < TABLES).then_some((table, leaf ^ (1 << top)))
}

impl<T> Caches<T> {
    pub(super) fn new() -> Self {
        Self {
            first: new_leaf(),
            near: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            tables: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            leaves_hi: AtomicUsize::new(1),
            beyond_first: AtomicUsize::new(0),
        }
    }

    /// Slot `slot`'s cache if its leaf exists: the fast path's lookup. `None` for `usize::MAX`
    /// (a thread without a slot).
    #[inline(always)]
    pub(super) fn get(&self, slot: usize) -> Option<&Local<T>> {
        if slot < LEAF {
            return Some(&self.first[slot]);
        }
        cold();
        // Acquire: pairs with the Release in `get_or_make`, so the caches' initial state is
        // visible.
        let leaf = match self.near.get(slot / LEAF - 1) {
            Some(near) => near.load(Ordering::Acquire),
            None => self.far(slot)?.load(Ordering::Acquire),
        };
        if leaf.is_null() {
            return None;
        }
        // SAFETY: a non-null leaf pointer points at an initialised leaf, never freed before
        // `self`; `slot % LEAF < LEAF`.
        Some(unsafe { &(*leaf)[slot % LEAF] })
    }

    /// The pointer to slot `slot`'s leaf (`slot >= LEAF`), if it is near or its table exists;
    /// `None` for `usize::MAX`.
    fn leaf_ptr(&self, slot: usize) -> Option<&LeafPtr<T>> {
        self.near.get(slot / LEAF - 1).or_else(|| self.far(slot))
    }

    /// The pointer to slot `slot`'s leaf past the near ones, if its table exists; `None` for
    /// `usize::MAX`. Out of line: the near leaves' lookup, which most threads past slot 8 make,
    /// stays one load.
    #[inline(never)]
    fn far(&self, slot: usize) -> Option<&LeafPtr<T>> {
        let leaf = slot / LEAF;
        if slot == usize::MAX {
            return None;
        }
        let (table, at) = in_table(leaf)?;
        // Acquire: pairs with the Release in `table_or_make`, so the table's null pointers are
        // visible.
        let table = self.tables[table].load(Ordering::Acquire);
        // SAFETY: a non-null table holds `table_len` initialised leaf pointers and is never
        // freed before `self`; `at < table_len` by `in_table`.
        (!table.is_null()).then(|| unsafe { &*table.add(at) })
    }

    /// Slot `slot`'s cache, making its leaf (and the leaf's table) if this is the first use of
    /// that range.
    #[cold]
    pub(super) fn get_or_make(&self, slot: usize) -> Option<&Local<T>> {
        if let Some(local) = self.get(slot) {
            return Some(local);
        }
        let leaf = match self.leaf_ptr(slot) {
            Some(leaf) => leaf,
            None if slot == usize::MAX => return None,
            None => {
                let (table, at) = in_table(slot / LEAF)?;
                // SAFETY: `table_or_make` returns a published table of `table_len(table)` leaf
                // pointers, never freed before `self`; `at < table_len` by `in_table`.
                unsafe { &*self.table_or_make(table).add(at) }
            }
        };
        let fresh = Box::into_raw(Box::new(new_leaf()));
        // Counted, and the bound raised, before the leaf is published, so a thread that sees
        // the leaf (through the CAS's Release), or is ordered after one that has, also sees a
        // count and a bound that make `iter` visit it. Relaxed: that order comes from the CAS;
        // a loser's count, taken back below, only paces a pass as if the leaf were there
        // meanwhile, and its bound is the winner's.
        self.beyond_first.fetch_add(LEAF, Ordering::Relaxed);
        self.leaves_hi.fetch_max(slot / LEAF + 1, Ordering::Relaxed);
        // Release: publishes the caches' initial state to `get`'s Acquire. Acquire on
        // failure: the winner's leaf is then read through `get`.
        let published =
            leaf.compare_exchange(ptr::null_mut(), fresh, Ordering::Release, Ordering::Acquire);
        if published.is_err() {
            // Relaxed: as above.
            self.beyond_first.fetch_sub(LEAF, Ordering::Relaxed);
            // SAFETY: `fresh` came from `Box::into_raw` just above and was never published, so
            // this is its only owner.
            drop(unsafe { Box::from_raw(fresh) });
        }
        self.get(slot)
    }

    /// Table `table`, made (all leaf pointers null) if no thread has made it yet.
    fn table_or_make(&self, table: usize) -> *mut LeafPtr<T> {
        // Acquire: as in `leaf_ptr`.
        let current = self.tables[table].load(Ordering::Acquire);
        if !current.is_null() {
            return current;
        }
        let fresh: Box<[LeafPtr<T>]> = (0..table_len(table))
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect();
        let fresh = Box::into_raw(fresh).cast::<LeafPtr<T>>();
        // Release: publishes the null pointers to `leaf_ptr`'s Acquire. Acquire on failure: the
        // winner's table is read through the pointer returned.
        match self.tables[table].compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::Release,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(winner) => {
                // SAFETY: `fresh` came from `Box::into_raw` of a slice of `table_len(table)`
                // pointers just above and was never published, so this is its only owner.
                drop(unsafe {
                    Box::from_raw(ptr::slice_from_raw_parts_mut(fresh, table_len(table)))
                });
                winner
            }
        }
    }

    /// How many caches the leaves made so far hold (those published since a moment ago may be
    /// missing): what a pass ([`iter`](Self::iter)) visits.
    pub(super) fn made(&self) -> usize {
        // Relaxed: a leaf's count is sequenced before its publishing CAS (Release), so a
        // thread that has seen the leaf, or is ordered after one that has, reads it here.
        LEAF + self.beyond_first.load(Ordering::Relaxed)
    }

    /// Every leaf pointer below the bound `leaves_hi` (leaves published since a moment ago may
    /// be past it): the near ones, then those in the tables made.
    fn leaf_ptrs(&self) -> impl Iterator<Item = &LeafPtr<T>> {
        // Relaxed: as in `made`, for the bound raised before a leaf's publishing CAS.
        let hi = self.leaves_hi.load(Ordering::Relaxed);
        let near = &self.near[..(hi - 1).min(NEAR)];
        let far = (0..TABLES)
            .map_while(move |table| {
                let first = (NEAR + 1) << table;
                (first < hi).then(|| (table, (hi - first).min(table_len(table))))
            })
            .filter_map(|(table, len)| {
                // Acquire: as in `leaf_ptr`.
                let ptr = self.tables[table].load(Ordering::Acquire);
                (!ptr.is_null()).then_some((ptr, len))
            })
            .flat_map(|(table, len)| {
                // SAFETY: as in `leaf_ptr`; `len` is at most the table's length.
                (0..len).map(move |at| unsafe { &*table.add(at) })
            });
        near.iter().chain(far)
    }

    /// Every table made, with its length: the ones `Drop` frees. For `&mut self` or a thread
    /// ordered after every `get_or_make` (Relaxed).
    fn made_tables(&self) -> Vec<(*mut LeafPtr<T>, usize)> {
        (0..TABLES)
            .map(|table| (self.tables[table].load(Ordering::Relaxed), table_len(table)))
            .filter(|(ptr, _)| !ptr.is_null())
            .collect()
    }

    /// Every cache made so far (those published since a moment ago may be missing). Visits the
    /// leaf pointers up to the highest leaf made, and the leaves made: a pass is what a get that
    /// misses or a refused put pays.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Local<T>> {
        let leaves = self.leaf_ptrs().filter_map(|leaf| {
            // Acquire: as in `get`.
            let leaf = leaf.load(Ordering::Acquire);
            // SAFETY: as in `get`: a non-null leaf is initialised and outlives `self`.
            (!leaf.is_null()).then(|| unsafe { &*leaf })
        });
        self.first
            .iter()
            .chain(leaves.flatten())
            .map(|local| &**local)
    }
}

/// A leaf of fresh caches.
fn new_leaf<T>() -> Leaf<T> {
    std::array::from_fn(|_| CachePadded::new(Local::new()))
}

impl<T> Drop for Caches<T> {
    fn drop(&mut self) {
        /// Frees the tables, after the leaves: on the way out of a panic in a leaf's drop too.
        struct Tables<T>(Vec<(*mut LeafPtr<T>, usize)>);
        impl<T> Drop for Tables<T> {
            fn drop(&mut self) {
                for &(table, len) in &self.0 {
                    // SAFETY: published by `table_or_make` from `Box::into_raw` of a slice of
                    // `len` pointers; the pool is being dropped, so nothing refers to it, and
                    // each table is taken back once, here.
                    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(table, len)) });
                }
            }
        }
        let _tables = Tables(self.made_tables());
        // Every leaf, past one holding an object whose `Drop` panics (`drop_each`). Relaxed:
        // `&mut self`, no other thread can see them any more.
        drop_each(self.leaf_ptrs().filter_map(|leaf| {
            let leaf = leaf.load(Ordering::Relaxed);
            // SAFETY: published by `get_or_make` from `Box::into_raw`; `&mut self` means
            // nothing refers to it any more, and each leaf is taken back once, here.
            (!leaf.is_null()).then(|| unsafe { Box::from_raw(leaf) })
        }));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn leaves_past_the_near_ones_map_to_distinct_tables_and_indices() {
        assert_eq!(in_table(128), Some((0, 0)));
        assert_eq!(in_table(255), Some((0, 127)));
        assert_eq!(in_table(256), Some((1, 0)));
        let last = usize::MAX / LEAF;
        let top = (usize::BITS - 1 - last.leading_zeros()) as usize;
        assert_eq!(in_table(last), Some((TABLES - 1, last ^ (1 << top))));
        assert_eq!(top - NEAR_BITS, TABLES - 1, "no table to spare");
        let mut seen = std::collections::HashSet::new();
        for leaf in NEAR + 1..if cfg!(miri) { 1024 } else { 8192 } {
            let (table, at) = in_table(leaf).unwrap();
            assert!(at < table_len(table), "leaf {leaf}");
            assert!(seen.insert((table, at)), "leaf {leaf} shares a pointer");
        }
    }

    /// The sizes the module doc and `Pool`'s docs quote.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn a_cache_takes_384_bytes_and_a_leaf_3_kib_on_x86_64() {
        assert_eq!(std::mem::size_of::<CachePadded<Local<Vec<u8>>>>(), 384);
        assert_eq!(std::mem::size_of::<Leaf<Vec<u8>>>(), 3 << 10);
        assert_eq!(std::mem::size_of::<[LeafPtr<u8>; NEAR]>(), 1016);
    }

    /// The size `Pool`'s docs quote: leaf 0's 8 caches and the near leaves' pointers are inside
    /// the pool.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn a_pool_holds_its_first_8_caches_in_under_6_kib() {
        let size = std::mem::size_of::<crate::pool::BufferPool>();
        assert!((8 * 384 + 1016..6 << 10).contains(&size), "{size} bytes");
    }

    #[test]
    fn a_pass_visits_every_leaf_made_however_sparse() {
        let caches: Caches<u32> = Caches::new();
        assert_eq!(
            caches.leaf_ptrs().count(),
            0,
            "only leaf 0: no pointer to look at"
        );
        caches.get_or_make(20).unwrap(); // leaf 2, near
        assert_eq!(caches.leaf_ptrs().count(), 2, "leaves 1 and 2");
        caches.get_or_make(100).unwrap(); // leaf 12, near
        assert_eq!(caches.iter().count(), 8 + 8 + 8);
        caches.get_or_make(9).unwrap(); // leaf 1, near
        assert_eq!(caches.iter().count(), 8 + 8 + 8 + 8);
        caches.get_or_make(5000).unwrap(); // leaf 625, table 2, none below it
        assert_eq!(caches.iter().count(), 8 + 8 + 8 + 8 + 8);
        caches.get_or_make(101).unwrap(); // leaf 12 again
        assert_eq!(caches.iter().count(), 40);
        assert_eq!(caches.made(), 40);
        let visited: Vec<*const Local<u32>> = caches.iter().map(ptr::from_ref).collect();
        for slot in [0, 7, 8, 15, 20, 96, 103, 5000] {
            let local: *const Local<u32> = caches.get(slot).unwrap();
            assert!(visited.contains(&local), "slot {slot}'s cache not visited");
        }
    }

    #[test]
    fn caches_are_made_on_first_use_and_stay_put() {
        let caches: Caches<u32> = Caches::new();
        assert_eq!(
            caches.iter().count(),
            8,
            "leaf 0, slots 0..8, is made with the pool"
        );
        assert!(caches.get(8).is_none());
        let a: *const Local<u32> = caches.get_or_make(5).unwrap();
        assert_eq!(caches.iter().count(), 8);
        assert!(ptr::eq(a, caches.get(5).unwrap()));
        assert!(ptr::eq(a, caches.get_or_make(5).unwrap()));
        let b: *const Local<u32> = caches.get_or_make(64).unwrap();
        assert!(!ptr::eq(a, b));
        assert_eq!(caches.iter().count(), 16, "leaf 8 holds slots 64..72");
        assert!(caches.get(72).is_none(), "slots 72..80 are another leaf's");
        assert!(caches.get(1 << 14).is_none(), "no table yet");
        let c: *const Local<u32> = caches.get_or_make(1 << 14).unwrap();
        assert!(ptr::eq(c, caches.get(1 << 14).unwrap()));
        assert!(
            caches.get((1 << 14) + 8).is_none(),
            "the table, not the leaf, is there"
        );
        assert!(caches.get_or_make(usize::MAX).is_none());
    }

    /// An object whose `Drop` panics, in the hot slot of a cache past slot 1 023, unwinds out
    /// of the caches' drop, and on the way out every other leaf's objects are dropped and the
    /// tables of leaf pointers freed (Miri's leak check sees a table left behind).
    #[test]
    fn a_panicking_drop_past_slot_1023_still_frees_the_tables_and_other_leaves() {
        use crate::pool::ticket::Held;
        static DROPPED: AtomicUsize = AtomicUsize::new(0);
        struct Bomb(bool);
        impl Drop for Bomb {
            fn drop(&mut self) {
                DROPPED.fetch_add(1, Ordering::SeqCst);
                assert!(!self.0, "a pooled object's drop panics");
            }
        }
        let caches: Caches<Bomb> = Caches::new();
        for (slot, panics) in [(1100, true), (5000, false), (1 << 14, false), (3, false)] {
            let item = Box::into_raw(Box::new(CachePadded::new(Held::new(Bomb(panics)))));
            caches
                .get_or_make(slot)
                .unwrap()
                .hot
                .store(item, Ordering::Relaxed);
        }
        assert_eq!(caches.made_tables().len(), 3);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(caches)));
        assert!(unwound.is_err(), "the object's panic reaches the caller");
        assert_eq!(
            DROPPED.load(Ordering::SeqCst),
            4,
            "every object dropped, past the panic"
        );
    }

    /// A thread of slot 999 makes one leaf, near; one of slot 1 100 a leaf and a table of 128
    /// leaf pointers; neither makes caches for the slots below it (`tests/shapes_pool_slots.rs`
    /// counts the bytes).
    #[test]
    fn a_thread_of_a_high_slot_makes_one_leaf() {
        let caches: Caches<Vec<u8>> = Caches::new();
        caches.get_or_make(999).unwrap();
        assert_eq!((caches.made(), caches.made_tables().len()), (16, 0));
        caches.get_or_make(1100).unwrap();
        assert_eq!(caches.made(), 24);
        let tables: Vec<usize> = caches.made_tables().iter().map(|&(_, len)| len).collect();
        assert_eq!(tables, [128]);
        assert_eq!(
            caches.leaf_ptrs().count(),
            127 + (137 - 128 + 1),
            "up to leaf 137's"
        );
        assert_eq!(caches.iter().count(), 24);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::loom_model::{model, thread};
    use crate::sync::plain::RelaxedUsize;
    use crate::sync::Arc;

    /// The address of slot `slot`'s cache, made if need be.
    fn made(caches: &Caches<u32>, slot: usize) -> usize {
        ptr::from_ref(caches.get_or_make(slot).unwrap()) as usize
    }

    /// Under loom a leaf holds 2 caches and leaves 1 to 3 are near: slots 2 and 3 share leaf 1,
    /// slots 8 and 10 are leaves 4 and 5, which share table 0. Two threads race to make the same
    /// leaf and the same table while the main thread passes over the caches: each slot ends
    /// with one cache, found again by `get`; the pass visits only initialised caches (their
    /// atomics' loads are ordered after their creation, or loom reports a causality violation:
    /// a `Relaxed` publishing CAS does), and after the joins it visits all 8.
    #[test]
    fn loom_threads_that_make_one_leaf_and_one_table_at_once_share_them() {
        model(|| {
            let caches = Arc::new(Caches::<u32>::new());
            let (a, b) = (Arc::clone(&caches), Arc::clone(&caches));
            let a = thread::spawn(move || (made(&a, 2), made(&a, 8)));
            let b = thread::spawn(move || (made(&b, 3), made(&b, 10)));
            let seen = caches.iter().map(Local::retained).count();
            assert!([2, 4, 6, 8].contains(&seen), "{seen} caches in a pass");
            let ((two, eight), (three, ten)) = (a.join().unwrap(), b.join().unwrap());
            for (slot, at) in [(2, two), (3, three), (8, eight), (10, ten)] {
                assert_eq!(made(&caches, slot), at, "slot {slot} has two caches");
            }
            assert_eq!(three - two, std::mem::size_of::<CachePadded<Local<u32>>>());
            assert_eq!(caches.made(), 8);
            assert_eq!(caches.iter().count(), 8);
        });
    }

    /// A thread that sees another's new leaf (through `get`'s Acquire) and then passes over the
    /// caches visits that leaf: the bound `iter` uses is raised before the leaf is published.
    /// Raising it after the publishing CAS fails this model. (The pass before the `get` is
    /// there for loom: without it, loom ran this model once, the maker never before the
    /// `get`.)
    #[test]
    fn loom_a_pass_visits_a_leaf_its_thread_has_seen() {
        // Executions where this thread saw the new leaf, the case the assertion checks.
        let seen_leaf: &'static RelaxedUsize = Box::leak(Box::new(RelaxedUsize::new()));
        model(move || {
            let caches = Arc::new(Caches::<u32>::new());
            let other = Arc::clone(&caches);
            let maker = thread::spawn(move || made(&other, 8));
            assert!(caches.iter().count() <= 2 + 2);
            if let Some(seen) = caches.get(8) {
                let seen = ptr::from_ref(seen);
                assert!(
                    caches.iter().any(|local| ptr::eq(local, seen)),
                    "a cache this thread has seen is not in its pass"
                );
                seen_leaf.increment();
            }
            maker.join().unwrap();
        });
        assert!(
            seen_leaf.get() > 0,
            "this thread never saw the new leaf: the model did not reach its case"
        );
    }
}
