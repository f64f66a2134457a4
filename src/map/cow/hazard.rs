//! Hazard pointers: how a read announces the version it is about to use, so a writer never
//! frees it underneath.
//!
//! The registry is two grow-only, lock-free lists of slots, each slot an `AtomicPtr` in a
//! cache-padded node of its own; null means free. A read claims a free slot of the first list with
//! one CAS that also writes the pointer it protects, re-checks that the map still points there,
//! uses the version, and frees the slot with one store. It tries first the slot its thread took
//! last in this registry (`sync::last_slot`: the registry's unique id and the slot's address), and
//! else walks the list from the newest slot and remembers the one it takes, so threads reading at
//! once keep to a slot each instead of racing for the first free one. A writer reads every slot of
//! both lists after it swaps a version out and keeps the old version while some slot holds it (and,
//! if some slot holds the new one already, one unheld old version as its next write's spare:
//! `Inner::unheld`). A read pushes a new slot on the first list when its walk found every slot
//! busy, each at the moment it looked: so the list holds about as many slots as reads ever ran at
//! once (reads that end and start again behind a walk can make it find that with fewer at once),
//! and no read ever falls back to anything slower than taking a new slot.
//!
//! The second list holds the slots of `Reader`s: a `Reader` keeps its slot for its life and
//! moves it on to each version it takes (its version needs no reference count). A `Reader`'s
//! drop pushes its slot on a stack of free ones (lock-free, linked through the nodes), and a new
//! `Reader` pops one (pops take a small lock of their own, which makes the stack immune to
//! ABA: only pushes can happen between a popper's load of the top and its CAS) or, if none is
//! free, adds a slot: so making a `Reader` never walks the slots of live ones. The list holds as
//! many slots as `Reader`s were ever alive at once (plus any made while a drop was pushing).
//! Slots are freed with the map, so each write's scan walks every slot ever needed.
//!
//! This is Maged Michael's scheme ("Hazard Pointers: Safe Memory Reclamation for Lock-Free
//! Objects", IEEE TPDS 2004), with the slot claimed per read instead of per thread (a thread's
//! last slot first).
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

use crate::sync::{
    fence, last_slot, set_last_slot, unique_id, AtomicPtr, CachePadded, Mutex, Ordering,
};
use std::ptr::{self, NonNull};

/// The registry of hazard slots for pointers to `T`.
pub(super) struct Hazards<T> {
    /// Two lists of slots, each by its newest node; each node points to the one pushed before
    /// it. Nodes are only pushed, never removed, until the registry drops. [`READS`]: slots of
    /// reads in progress, taken and freed around each read; [`HELD`]: slots `Reader`s keep for
    /// their life. Apart, so a read looking for a free slot never walks past the slots of
    /// thousands of live `Reader`s.
    lists: [AtomicPtr<Node<T>>; 2],
    /// The free slots of [`HELD`], newest first, linked through `Slot::next_free` (a Treiber
    /// stack): `release_held` pushes without a lock, `claim_held` pops under `popping`.
    free: AtomicPtr<Node<T>>,
    /// Serialises pops of `free`. With one popper at a time, the top a popper loaded can change
    /// before its CAS only by pushes, which the CAS sees; so the classic ABA (the top popped
    /// and pushed back, with another next, between the load and the CAS) cannot happen.
    popping: Mutex<()>,
    /// This registry's name in a thread's last-slot hint (`sync::last_slot`): unique for the
    /// process's life, so a hint that names it names one of its nodes.
    id: u64,
}

/// The list of slots taken for one read.
const READS: usize = 0;
/// The list of slots held by `Reader`s.
const HELD: usize = 1;

/// A slot with its links, padded to a cache-line block of its own (`CachePadded`: 128 bytes on
/// x86-64 and aarch64), so readers writing their slots never share a line.
type Node<T> = CachePadded<Slot<T>>;

struct Slot<T> {
    /// The protected pointer, or null while the slot is free.
    hazard: AtomicPtr<T>,
    /// The node pushed before this one; written before the push publishes the node, never
    /// after.
    next: *mut Node<T>,
    /// For a free [`HELD`] slot on the `free` stack, the node below it. Written only by the
    /// slot's releaser, before the push that publishes it.
    next_free: AtomicPtr<Node<T>>,
}

/// A [`HELD`] slot, claimed by [`Hazards::claim_held`] for as long as its holder likes (a
/// `Reader`'s life) and given back with [`Hazards::release_held`]. Valid while its registry is.
pub(super) struct Held<T>(NonNull<Node<T>>);

impl<T> Held<T> {
    /// The slot.
    ///
    /// # Safety
    /// The registry that made this slot must be alive for `'a`.
    #[inline(always)]
    pub(super) unsafe fn slot<'a>(&self) -> &'a AtomicPtr<T> {
        // SAFETY: nodes live as long as their registry, which the caller keeps alive.
        unsafe { &self.0.as_ref().hazard }
    }
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
            free: AtomicPtr::new(ptr::null_mut()),
            popping: Mutex::new(()),
            id: unique_id(),
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
        let slot = self.claim_read(ptr);
        let ptr = confirm(slot, ptr, src);
        Hazard { slot, ptr }
    }

    /// Claims a slot for as long as the caller likes (a `Reader`'s), protecting what `src`
    /// holds: the caller keeps the slot and moves it to newer pointers with [`protect_in`],
    /// and gives it back with [`Hazards::release_held`]. Takes a free slot off the stack, or
    /// adds one if none is free: `O(1)` whatever the number of live `Reader`s.
    pub(super) fn claim_held(&self, src: &AtomicPtr<T>) -> (Held<T>, *mut T) {
        // Relaxed: as in `protect`.
        let ptr = src.load(Ordering::Relaxed);
        debug_assert!(!ptr.is_null(), "hazard source is null");
        let node = match self.pop_free() {
            Some(node) => {
                // A swap, not a store: a read-modify-write continues the release sequence of
                // the previous holder's Release store of null (`release_held`), so a writer
                // whose Acquire load in `for_each` reads `ptr` here also sees every access that
                // holder made through its pointer (a plain store would break that chain). The
                // claim_read CAS does the same. Relaxed: the slot write of the protocol,
                // ordered before the re-load by the fence in `confirm`. The slot is ours alone:
                // the stack handed it to this popper only.
                node.hazard.swap(ptr, Ordering::Relaxed);
                node
            }
            None => self.claim_slow(HELD, ptr),
        };
        let ptr = confirm(&node.hazard, ptr, src);
        (Held(NonNull::from(node)), ptr)
    }

    /// Pops a free [`HELD`] slot off the stack, if there is one.
    fn pop_free(&self) -> Option<&Node<T>> {
        // Relaxed: a peek that skips the lock when the stack is empty. Missing a slot pushed
        // just now only adds a slot.
        if self.free.load(Ordering::Relaxed).is_null() {
            return None;
        }
        let _one_popper = self.popping.lock();
        // Acquire: pairs with the Release CAS of the push that put `top` there, so its
        // `next_free` (and the releaser's Release store of null) are seen.
        let mut top = self.free.load(Ordering::Acquire);
        loop {
            // SAFETY: nodes on the stack are nodes of `HELD`, which live as long as the
            // registry (`&self`).
            let node = unsafe { top.as_ref() }?;
            // Relaxed: written before the push that published `node`, which the Acquire load
            // (or failed CAS) that gave us `node` synchronised with. Unchanged since: only a pop
            // takes `node` off the stack, and we are the only popper.
            let below = node.next_free.load(Ordering::Relaxed);
            // Acquire on failure: as the load above, for the newly pushed top. (On success
            // nothing more is needed; Acquire for loom, which rejects a failure ordering
            // stronger than the success one.)
            match self
                .free
                .compare_exchange_weak(top, below, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(node),
                Err(now) => top = now,
            }
        }
    }

    /// Frees a held slot and pushes it on the stack of free ones, for the next
    /// [`Hazards::claim_held`]. Lock-free; never waits.
    ///
    /// # Safety
    /// `held` came from this registry's `claim_held`, and is not used again.
    pub(super) unsafe fn release_held(&self, held: Held<T>) {
        // SAFETY: the caller's contract: a node of this registry, alive with it (`&self`).
        let node = unsafe { held.0.as_ref() };
        // Release: as in `Hazard::drop`, so a writer that sees the slot free also sees every
        // access the holder made through the pointer it protected.
        node.hazard.store(ptr::null_mut(), Ordering::Release);
        // Relaxed: a guess for the CAS, which re-checks.
        let mut top = self.free.load(Ordering::Relaxed);
        loop {
            // Relaxed: published by the Release CAS below. Nobody else reads it now: the node
            // is on no stack until that CAS.
            node.next_free.store(top, Ordering::Relaxed);
            // Release: pairs with the Acquire loads in `pop_free`.
            match self.free.compare_exchange_weak(
                top,
                held.0.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => top = now,
            }
        }
    }

    /// Claims a free slot of [`READS`] and writes `ptr` into it: the slot the calling thread
    /// claimed last, if it is free, else the first free one from the newest, which the thread
    /// then remembers.
    #[inline]
    fn claim_read(&self, ptr: *mut T) -> &AtomicPtr<T> {
        if let Some(last) = last_slot(self.id) {
            // SAFETY: the hint is a node of the registry whose id is ours, and ids are unique for
            // the process's life, so it is one of our nodes, alive while `&self` is.
            let n = unsafe { &*last.cast::<Node<T>>() };
            if try_claim(n, ptr) {
                return &n.hazard;
            }
        }
        // Acquire: pairs with the push in `claim_slow`, so the node's fields are initialised.
        let mut node = self.lists[READS].load(Ordering::Acquire);
        // SAFETY: nodes are freed only when the registry drops, and `&self` keeps it alive;
        // every non-null `node` came from `head` or a `next` written before publication.
        while let Some(n) = unsafe { node.as_ref() } {
            if try_claim(n, ptr) {
                set_last_slot(self.id, node.cast_const().cast());
                return &n.hazard;
            }
            node = n.next;
        }
        let n = self.claim_slow(READS, ptr);
        set_last_slot(self.id, ptr::from_ref(n).cast());
        &n.hazard
    }

    /// Every slot was busy: pushes a new one, already holding `ptr`.
    #[cold]
    #[inline(never)]
    fn claim_slow(&self, list: usize, ptr: *mut T) -> &Node<T> {
        let node = Box::into_raw(Box::new(CachePadded::new(Slot {
            hazard: AtomicPtr::new(ptr),
            next: ptr::null_mut(),
            next_free: AtomicPtr::new(ptr::null_mut()),
        })));
        // Relaxed: only a guess for the CAS below, which re-checks.
        let mut head = self.lists[list].load(Ordering::Relaxed);
        loop {
            // SAFETY: `node` is ours alone until the CAS below publishes it.
            unsafe { (&mut *node).next = head };
            // Release: pairs with the Acquire loads of `head`, so the node is seen initialised.
            // Publishing the node is the slot write of the protocol, ordered before the
            // re-load by the fence in `confirm`.
            match self.lists[list].compare_exchange_weak(
                head,
                node,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                // SAFETY: published nodes live as long as the registry (`&self`).
                Ok(_) => return unsafe { &*node },
                Err(now) => head = now,
            }
        }
    }

    /// Calls `f` with what each slot holds now, and whether the slot is a held one (a
    /// `Reader`'s, [`claim_held`](Hazards::claim_held)) rather than a read's, reading each slot
    /// once: a slot that moves during the scan counts at one pointer only. For writers, after
    /// they swapped pointers out of the source and called [`Hazards::fence`]: a swapped-out
    /// pointer that no call names can no longer be reached by any read.
    pub(super) fn for_each(&self, mut f: impl FnMut(*const T, bool)) {
        for (kind, list) in self.lists.iter().enumerate() {
            // Acquire: pairs with the Release push in `claim_slow`.
            let mut node = list.load(Ordering::Acquire);
            // SAFETY: as in `claim_read`.
            while let Some(n) = unsafe { node.as_ref() } {
                // Acquire: pairs with the Release stores that free or move a slot
                // (`Hazard::drop`, `release_held`, `protect_in`), and through the release
                // sequences the claims' read-modify-writes continue (the CAS in `claim_read`,
                // the swap in `claim_held`), so the reader's accesses happen before whatever
                // the writer frees or reuses next.
                let p = n.hazard.load(Ordering::Acquire);
                if !p.is_null() {
                    f(p.cast_const(), kind == HELD);
                }
                node = n.next;
            }
        }
    }

    /// The writer's fence of the protocol: call it after swapping pointers out of the source
    /// and before asking [`Hazards::for_each`] about them (see "Orderings").
    pub(super) fn fence(&self) {
        // SeqCst: pairs with the reader's fence in `confirm` (see "Orderings").
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
        // Acquire: as in `claim_read`.
        let mut node = self.lists[list].load(Ordering::Acquire);
        // SAFETY: as in `claim_read`.
        while let Some(n) = unsafe { node.as_ref() } {
            count += 1;
            node = n.next;
        }
        count
    }
}

/// Claims the read slot `n` for `ptr` if it is free.
#[inline(always)]
fn try_claim<T>(n: &Node<T>, ptr: *mut T) -> bool {
    // Relaxed: a hint that skips a busy slot without a locked instruction; the CAS re-checks.
    n.hazard.load(Ordering::Relaxed).is_null()
        // Relaxed: the slot write of the protocol, ordered before the re-load by the fence in
        // `confirm`; nothing else is published through it.
        && n.hazard
            .compare_exchange(ptr::null_mut(), ptr, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
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
        // Acquire: pairs with the publishing swap (`Locked::publish`), so the version is seen
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

impl<T> Drop for Hazards<T> {
    fn drop(&mut self) {
        for list in &self.lists {
            // Acquire: as in `claim_read` (`&mut self`: no claim can race with this).
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::LAST_SLOT_WAYS as WAYS;

    /// Where a hazard's slot is, as a number that can cross threads.
    fn at<T>(hazard: &Hazard<'_, T>) -> usize {
        hazard.slot as *const AtomicPtr<T> as usize
    }

    /// A read takes the slot its thread took last, not the newest free one, so threads that
    /// read one map each keep to a slot of their own; a thread with no such slot takes the
    /// newest free one.
    #[test]
    fn a_read_takes_the_slot_its_thread_took_last() {
        let hazards = Hazards::new();
        let mut value = 7u8;
        let src = AtomicPtr::new(ptr::from_mut(&mut value));
        let first = hazards.protect(&src);
        let mine = at(&first);
        // Another thread reads while ours is busy: a second slot, now the newest.
        let theirs = std::thread::scope(|s| s.spawn(|| at(&hazards.protect(&src))).join());
        let theirs = theirs.unwrap();
        drop(first);
        assert_ne!(mine, theirs);
        assert_eq!(hazards.slots(), 2);
        // Both are free; ours is found by the hint, not by the walk from the newest.
        assert_eq!(at(&hazards.protect(&src)), mine, "the thread's own slot");
        let fresh = std::thread::scope(|s| s.spawn(|| at(&hazards.protect(&src))).join());
        assert_eq!(
            fresh.unwrap(),
            theirs,
            "a fresh thread walks from the newest"
        );
        assert_eq!(hazards.slots(), 2);
    }

    /// A thread's hint names its registry by id, never by address: a registry made where a
    /// dropped one was (its nodes too, maybe) does not follow the hint into freed memory (Miri
    /// checks), and reads as a fresh one does; nor does one whose entry another registry took.
    #[test]
    fn a_hint_into_a_dropped_registry_is_not_followed() {
        let mut value = 7u8;
        let src = AtomicPtr::new(ptr::from_mut(&mut value));
        for _ in 0..4 {
            let hazards = Hazards::new();
            let read = hazards.protect(&src);
            assert_eq!(read.ptr(), src.load(Ordering::Relaxed));
            drop(read);
            assert_eq!(hazards.slots(), 1);
        }
        // Registries read by turns, one more than a thread's hints hold: two of them share an
        // entry, find each other named there, and walk; each still needs one slot only.
        let registries: Vec<_> = (0..=WAYS).map(|_| Hazards::new()).collect();
        for _ in 0..3 {
            for hazards in &registries {
                let read = hazards.protect(&src);
                assert_eq!(read.ptr(), src.load(Ordering::Relaxed));
            }
        }
        assert!(registries.iter().all(|h| h.slots() == 1));
    }
}
