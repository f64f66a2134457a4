//! Hazard pointers: how a read announces the version it is about to use, so a writer never
//! frees it underneath.
//!
//! The registry is a grow-only, lock-free list of slots, each an `AtomicPtr` on its own cache
//! line; null means free. A read claims a free slot with one CAS that also writes the pointer
//! it protects, re-checks that the map still points there, uses the version, and frees the
//! slot with one store. A writer reads every slot after it swaps a version out and keeps the
//! old version only while some slot holds it. The list grows when every slot is busy, so it
//! holds as many slots as reads ever ran at once plus one per live `Reader` (a `Reader` keeps
//! its slot for its life and moves it on to each version it takes: its version needs no
//! reference count), and no read ever falls back to anything slower than taking a new slot.
//! Slots are freed with the map.
//!
//! This is Maged Michael's scheme ("Hazard Pointers: Safe Memory Reclamation for Lock-Free
//! Objects", IEEE TPDS 2004), with the slot claimed per read instead of per thread.
//!
//! # Orderings
//!
//! Reader: write the slot, `fence(SeqCst)`, re-load the source. Writer: swap the source,
//! `fence(SeqCst)`, load the slots. The two fences are ordered one way or the other in the
//! single total order of SeqCst operations. If the reader's fence comes first, the writer's
//! slot loads see the reader's slot write (or a later write of the same reader, made only
//! after it is done with the pointer). If the writer's fence comes first, the reader's
//! re-load sees the swap and the reader tries again. Either the writer sees the hazard or
//! the reader sees the new pointer; never neither. This is Dekker's store-then-load pattern,
//! which needs a full fence on both sides: SeqCst *accesses* alone would do in the C++ model,
//! but loom models SeqCst accesses as acquire/release only, and flagged the fence-less
//! version as a use after free; with the fences it checks the protocol as written. Freeing a
//! slot is a Release store; the writer's Acquire load that sees it free synchronises with it,
//! so everything the reader did through the pointer happens before the writer frees what it
//! pointed to.

use crate::sync::{fence, AtomicPtr, CachePadded, Ordering};
use std::ptr;

/// The registry of hazard slots for pointers to `T`.
pub(super) struct Hazards<T> {
    /// Two lists of slots, each by its newest node; each node points to the one pushed before
    /// it. Nodes are only pushed, never removed, until the registry drops. [`READS`]: slots of
    /// reads in progress, taken and freed around each read; [`HELD`]: slots `Reader`s keep for
    /// their life. Apart, so a read looking for a free slot never walks past the slots of
    /// thousands of live `Reader`s.
    lists: [AtomicPtr<Node<T>>; 2],
}

/// The list of slots taken for one read.
const READS: usize = 0;
/// The list of slots held by `Reader`s.
const HELD: usize = 1;

struct Node<T> {
    /// The protected pointer, or null while the slot is free.
    hazard: CachePadded<AtomicPtr<T>>,
    /// The node pushed before this one; written before the push publishes the node, never
    /// after.
    next: *mut Node<T>,
}

/// A claimed slot protecting one pointer; frees the slot when dropped, even on a panic.
pub(super) struct Hazard<'a, T> {
    slot: &'a AtomicPtr<T>,
    ptr: *mut T,
}

impl<T> Hazard<'_, T> {
    /// The protected pointer: what the source held after this hazard became visible to every
    /// later scan.
    #[inline(always)]
    pub(super) fn ptr(&self) -> *mut T {
        self.ptr
    }
}

impl<T> Drop for Hazard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        // Release: pairs with the Acquire loads in `Hazards::for_each`: a writer that sees the
        // slot free also sees every access made through the pointer before this store.
        self.slot.store(ptr::null_mut(), Ordering::Release);
    }
}

impl<T> Hazards<T> {
    pub(super) fn new() -> Self {
        Self {
            lists: [
                AtomicPtr::new(ptr::null_mut()),
                AtomicPtr::new(ptr::null_mut()),
            ],
        }
    }

    /// Protects the pointer `src` holds, which must never be null: on return, no writer
    /// that follows the protocol in the module doc frees what it points to until the
    /// `Hazard` drops. Wait-free unless writers keep swapping `src` (each retry follows a
    /// publish that happened meanwhile); allocates only when every slot is busy.
    #[inline]
    pub(super) fn protect(&self, src: &AtomicPtr<T>) -> Hazard<'_, T> {
        // Relaxed: a guess, never dereferenced before the re-load in `confirm` confirms it.
        let ptr = src.load(Ordering::Relaxed);
        debug_assert!(!ptr.is_null(), "hazard source is null");
        let slot = self.claim(READS, ptr);
        let ptr = confirm(slot, ptr, src);
        Hazard { slot, ptr }
    }

    /// Claims a slot for as long as the caller likes (a `Reader`'s), protecting what `src`
    /// holds: the caller keeps the slot and moves it to newer pointers with [`protect_in`],
    /// and frees it with [`release`]. The slot lives as long as the registry.
    pub(super) fn claim_held(&self, src: &AtomicPtr<T>) -> (&AtomicPtr<T>, *mut T) {
        // Relaxed: as in `protect`.
        let ptr = src.load(Ordering::Relaxed);
        debug_assert!(!ptr.is_null(), "hazard source is null");
        let slot = self.claim(HELD, ptr);
        (slot, confirm(slot, ptr, src))
    }

    /// Claims a free slot of `list` and writes `ptr` into it.
    #[inline]
    fn claim(&self, list: usize, ptr: *mut T) -> &AtomicPtr<T> {
        // Acquire: pairs with the push in `claim_slow`, so the node's fields are initialised.
        let mut node = self.lists[list].load(Ordering::Acquire);
        // SAFETY: nodes are freed only when the registry drops, and `&self` keeps it alive;
        // every non-null `node` came from `head` or a `next` written before publication.
        while let Some(n) = unsafe { node.as_ref() } {
            // Relaxed: a hint that skips busy slots without a locked instruction; the CAS
            // re-checks.
            if n.hazard.load(Ordering::Relaxed).is_null()
                // Relaxed: the slot write of the protocol, ordered before the re-load by the
                // fence in `protect`; nothing else is published through it.
                && n.hazard
                    .compare_exchange(ptr::null_mut(), ptr, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                return &n.hazard;
            }
            node = n.next;
        }
        self.claim_slow(list, ptr)
    }

    /// Every slot was busy: pushes a new one, already holding `ptr`.
    #[cold]
    #[inline(never)]
    fn claim_slow(&self, list: usize, ptr: *mut T) -> &AtomicPtr<T> {
        let node = Box::into_raw(Box::new(Node {
            hazard: CachePadded::new(AtomicPtr::new(ptr)),
            next: ptr::null_mut(),
        }));
        // Relaxed: only a guess for the CAS below, which re-checks.
        let mut head = self.lists[list].load(Ordering::Relaxed);
        loop {
            // SAFETY: `node` is ours alone until the CAS below publishes it.
            unsafe { (*node).next = head };
            // Release: pairs with the Acquire loads of `head`, so the node is seen initialised.
            // Publishing the node is the slot write of the protocol, ordered before the
            // re-load by the fence in `protect`.
            match self.lists[list].compare_exchange_weak(
                head,
                node,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                // SAFETY: published nodes live as long as the registry (`&self`).
                Ok(_) => return unsafe { &(*node).hazard },
                Err(now) => head = now,
            }
        }
    }

    /// Calls `f` with what each slot holds now, reading each slot once: a slot that moves
    /// during the scan counts at one pointer only. For writers, after they swapped pointers
    /// out of the source and called [`Hazards::fence`]: a swapped-out pointer that no call
    /// names can no longer be reached by any read.
    pub(super) fn for_each(&self, mut f: impl FnMut(*const T)) {
        for list in &self.lists {
            // Acquire: pairs with the Release push in `claim_slow`.
            let mut node = list.load(Ordering::Acquire);
            // SAFETY: as in `claim`.
            while let Some(n) = unsafe { node.as_ref() } {
                // Acquire: pairs with the Release stores that free or move a slot
                // (`Hazard::drop`, `release`, `protect_in`), so the reader's accesses happen
                // before whatever the writer frees or reuses next.
                let p = n.hazard.load(Ordering::Acquire);
                if !p.is_null() {
                    f(p.cast_const());
                }
                node = n.next;
            }
        }
    }

    /// The writer's fence of the protocol: call it after swapping pointers out of the source
    /// and before asking [`Hazards::for_each`] about them (see "Orderings").
    pub(super) fn fence(&self) {
        // SeqCst: pairs with the reader's fence in `protect` (see "Orderings").
        fence(Ordering::SeqCst);
    }

    /// How many slots reads take: the most reads that ever ran at once.
    pub(super) fn slots(&self) -> usize {
        self.count(READS)
    }

    /// How many slots `Reader`s hold: the most `Reader`s that were ever alive at once.
    pub(super) fn held_slots(&self) -> usize {
        self.count(HELD)
    }

    fn count(&self, list: usize) -> usize {
        let mut count = 0;
        // Acquire: as in `claim`.
        let mut node = self.lists[list].load(Ordering::Acquire);
        // SAFETY: as in `claim`.
        while let Some(n) = unsafe { node.as_ref() } {
            count += 1;
            node = n.next;
        }
        count
    }
}

/// Makes `slot`, which holds `ptr`, protect what `src` holds now, and returns that: the
/// reader's fence and re-load of the protocol, repeated while writers move `src` on. Wait-free
/// unless writers keep publishing (each retry follows a publish made meanwhile).
#[inline]
fn confirm<T>(slot: &AtomicPtr<T>, mut ptr: *mut T, src: &AtomicPtr<T>) -> *mut T {
    loop {
        // SeqCst: the reader's fence of the protocol, between the slot write and the re-load
        // (see "Orderings").
        fence(Ordering::SeqCst);
        // Acquire: pairs with the publishing swap (`Inner::publish`), so the version is seen
        // whole.
        let now = src.load(Ordering::Acquire);
        if now == ptr {
            return ptr;
        }
        ptr = now;
        // Relaxed: the fence above (next time round) orders it before the re-load.
        slot.store(ptr, Ordering::Relaxed);
    }
}

/// Moves a held slot (from [`Hazards::claim_held`]) on to what `src` holds now and returns it.
/// What the slot protected before is unprotected from then on: the caller must be done with it.
#[inline]
pub(super) fn protect_in<T>(slot: &AtomicPtr<T>, src: &AtomicPtr<T>) -> *mut T {
    // Relaxed: a guess, confirmed by the re-load in `confirm`.
    let ptr = src.load(Ordering::Relaxed);
    // Release: this store also lets go of the pointer the slot held, which the holder read
    // through: pairs with the Acquire loads in `Hazards::for_each`, as the Release that frees a
    // slot does (`Hazard::drop`), so a writer that sees the slot moved on also sees those
    // reads. It is the slot write of the protocol too, ordered before the re-load by
    // `confirm`'s fence.
    slot.store(ptr, Ordering::Release);
    confirm(slot, ptr, src)
}

/// Frees a held slot. Release: as in `Hazard::drop`, so a writer that sees it free also sees
/// every access the holder made through the pointer it protected.
pub(super) fn release<T>(slot: &AtomicPtr<T>) {
    slot.store(ptr::null_mut(), Ordering::Release);
}

impl<T> Drop for Hazards<T> {
    fn drop(&mut self) {
        for list in &self.lists {
            // Acquire: as in `claim` (`&mut self`: no claim can race with this).
            let mut node = list.load(Ordering::Acquire);
            while !node.is_null() {
                // SAFETY: every node came from `Box::into_raw` in `claim_slow` and is in one
                // list once; nothing can reach the lists any more.
                let n = unsafe { Box::from_raw(node) };
                node = n.next;
            }
        }
    }
}
