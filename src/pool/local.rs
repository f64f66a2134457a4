//! The per-slot cache: a few objects for one thread, owned by the pool, reachable by any thread.
//!
//! A pool holds one [`Local`] per thread slot index (`caches.rs`). Slot indices of live threads
//! are distinct, so the thread that holds index `i` is the only *owner* of cache `i`. The owner
//! reads and writes the cache with plain loads and stores, inside a [`Section`]. Other threads
//! reach a cache only through the pool's reclaim (`reclaim.rs`: `clear`, `trim`, a get that
//! finds the pool dry, a put that finds the budget held by reservations without objects or by
//! tickets), which
//! shuts the owners out first. The two meet in Dekker's pattern with an asymmetric fence
//! (`sync::fence`):
//!
//! | owner (every get and put)                | reclaimer (rare)                        |
//! | ---------------------------------------- | --------------------------------------- |
//! | `busy = 1`; light fence; load `gate`     | `gate = 1`; heavy fence; load `busy`    |
//! | `gate` is 0: use the cache; `busy = 0`   | `busy` is 1: wait until it is 0         |
//! | `gate` is 1: `busy = 0`, use the store   | `busy` is 0: the cache is the reclaimer's until `gate = 0` |
//!
//! The fences guarantee that the two loads never both miss the other side's store, so an owner
//! and a reclaimer are never in the cache at once. The owner's side costs three plain memory
//! operations and a compiler fence, no locked instruction.
//!
//! When a thread exits, its index goes back to the registry (under the registry's mutex, which
//! orders the old owner's last access before the next owner's first) and the next thread to
//! take the index inherits the cache with its objects; a reclaim reaches the cache meanwhile.
//!
//! Each cache also holds a *reservation* against the pool's budget (`shared::Budget`): the
//! objects and bytes it may keep without asking the budget again. An object the owner takes out
//! keeps its unit in the cache, so the get+put pair of a thread that gives back what it took
//! never touches the budget's shared atomics. Only a thread that has taken from the pool may
//! grow its cache's reservation: a thread that only gives back (the consumer end of a
//! producer-consumer pair) sends every object to the shared store, where the producer finds it.
//! A get's reclaim that takes a live owner's stack makes the owner a non-taker again, with no
//! stack reservation, until its next get that misses its hot slot: a consumer that took once
//! would otherwise stack what it gives back, for the producer to reclaim again and again.
//! One that takes a few objects for every message misses its hot slot every time and stacks
//! again at once: there the getter's pacing (`take.rs`, `GROW_BEFORE_RECLAIM`) keeps the
//! reclaims rare.

use super::gate::Gate;
use super::section::Section;
use super::spare::Spare;
use super::tally::Tallies;
use super::ticket::{Carried, Held};
use super::Item;
use crate::drop_each::drop_each;
use crate::sync::{
    fence, spin_loop, token_is_live, yield_now, AtomicPtr, AtomicU64, AtomicUsize, CachePadded,
    Ordering, UnsafeCell,
};
use smallvec::SmallVec;
use std::fmt;
use std::mem::MaybeUninit;
use std::ptr;

/// Objects one thread's cache stacks at most, besides its hot slot.
pub(super) const LOCAL_CAP: usize = 8;

/// What a reclaim takes out of one cache: its objects with their weights. Inline, so a reclaim
/// allocates nothing.
pub(super) type Flushed<T> = SmallVec<[(Item<T>, usize); LOCAL_CAP + 1]>;

/// One slot's cache and statistics. Padded by the pool so neighbours never share a line.
///
/// The cache is a *hot slot* (the object its owner returned last) in front of a small stack.
/// A thread that gets and puts one object at a time only touches the hot slot: its get loads a
/// pointer and stores null, its put loads it, compares the weight with the slot's reservation
/// and stores the pointer back. A stack would make every get and put read the length the
/// previous one wrote and index with it, a chain of store-to-load forwards through memory.
pub(super) struct Local<T> {
    /// 1 while the owner is inside a [`Section`]; written by the owner only.
    pub(super) busy: AtomicUsize,
    /// The hot slot: null, or an `Item<T>` from `Box::into_raw` retained under
    /// `Cache::hot_room`. Atomic only so `Pool::stats` can test it for null; written by
    /// whoever holds the cache (the owner in a section, or a reclaimer).
    pub(super) hot: AtomicPtr<CachePadded<Held<T>>>,
    /// The stack and the reservations; touched by whoever holds the cache.
    pub(super) cache: UnsafeCell<Cache<T>>,
    /// Mirror of the stack's length for `Pool::stats`.
    pub(super) len: AtomicUsize,
    /// Mirror of the stack's bytes, for `Pool::retained_bytes`.
    pub(super) stack_bytes: AtomicUsize,
    /// The slot claim id of the thread that owns the cache (`sync::thread_claim_id`: its token
    /// on a tracked slot; 0: not known), set by the owner's slow paths; a reclaim takes the hot
    /// object of an owner that has exited, or whose liveness cannot be told.
    pub(super) owner: AtomicU64,
    /// Mirror of the cache's whole reservation (hot slot and stack): objects and bytes. Written
    /// when it changes (slow paths and reclaims), read by a put that finds the budget full.
    units: AtomicUsize,
    unit_bytes: AtomicUsize,
    /// The weight of the object in the hot slot (meaningless while it is empty), written with
    /// every push into it: what a reclaim accounts the object at, and what
    /// `Pool::retained_bytes` counts.
    pub(super) hot_weight: AtomicUsize,
    /// Event counts, written by the owner only.
    pub(super) tallies: Tallies,
    /// Tickets this cache's owners issued minus those they redeemed (`ticket.rs`).
    pub(super) carried: Carried,
}

pub(super) struct Cache<T> {
    /// `items[..len]` are initialised; the rest are not. Fixed-size and inline: a cache never
    /// allocates, and a push or pop moves one pointer.
    pub(super) items: [MaybeUninit<Item<T>>; LOCAL_CAP],
    /// `weights[i]` is the weight of `items[i]` (bytes for weighed pools, 0 otherwise).
    pub(super) weights: [usize; LOCAL_CAP],
    pub(super) len: usize,
    /// Sum of `weights[..len]`.
    pub(super) bytes: usize,
    /// Objects the stack may hold under the budget: `len <= reserved <= LOCAL_CAP`.
    pub(super) reserved: usize,
    /// Bytes the stack may hold under the budget: `bytes <= reserved_bytes`.
    pub(super) reserved_bytes: usize,
    /// The hot slot's reservation: 0 for none, else one object of fewer than `hot_room` bytes
    /// (`hot_room - 1` bytes are reserved). One number, so the fast put checks it with one
    /// compare: `weight < hot_room`.
    pub(super) hot_room: usize,
    /// The owner has taken objects from the pool, so its puts may grow the reservation.
    pub(super) taker: bool,
    /// The last `Gate::pause_epoch` the owner saw, and the store pops left before it issues
    /// tickets again (`ticket.rs`).
    pub(super) seen_pause: u64,
    pub(super) pause: u32,
    /// The emptied box of an object that left the pool, for the owner's next one (`spare.rs`).
    pub(super) spare: Option<Spare<T>>,
}

/// The objects and bytes a hot-slot reservation of `room` holds against the budget.
pub(super) fn hot_units(room: usize) -> (usize, usize) {
    match room {
        0 => (0, 0),
        room => (1, room - 1),
    }
}

impl<T> Drop for Cache<T> {
    fn drop(&mut self) {
        // Past an object whose `Drop` panics, as `Vec` goes on (`drop_each`).
        drop_each(self.items[..self.len].iter_mut().map(|item| {
            // SAFETY: `items[..len]` are initialised and read out once, here.
            unsafe { item.assume_init_read() }
        }));
    }
}

impl<T> Drop for Local<T> {
    fn drop(&mut self) {
        // Relaxed: `&mut self`, no other thread can see this cache any more.
        let hot = self.hot.load(Ordering::Relaxed);
        if !hot.is_null() {
            // SAFETY: a non-null hot slot holds an `Item<T>` from `Box::into_raw` that nothing
            // else owns; `&mut self` means nothing can reach it any more.
            drop(unsafe { Box::from_raw(hot) });
        }
    }
}

impl<T> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local")
            .field("retained", &self.retained())
            .field("tallies", &self.tallies)
            .finish_non_exhaustive()
    }
}

impl<T> Local<T> {
    pub(super) fn new() -> Self {
        Self {
            busy: AtomicUsize::new(0),
            hot: AtomicPtr::new(ptr::null_mut()),
            cache: UnsafeCell::new(Cache {
                items: [const { MaybeUninit::uninit() }; LOCAL_CAP],
                weights: [0; LOCAL_CAP],
                len: 0,
                bytes: 0,
                reserved: 0,
                reserved_bytes: 0,
                hot_room: 0,
                taker: false,
                seen_pause: 0,
                pause: 0,
                spare: None,
            }),
            len: AtomicUsize::new(0),
            stack_bytes: AtomicUsize::new(0),
            owner: AtomicU64::new(0),
            units: AtomicUsize::new(0),
            unit_bytes: AtomicUsize::new(0),
            hot_weight: AtomicUsize::new(0),
            tallies: Tallies::default(),
            carried: Carried::default(),
        }
    }

    /// Objects this cache retains now (exact for its holder; a snapshot for anyone else).
    pub(super) fn retained(&self) -> usize {
        // Relaxed: statistics; the pointer is only compared with null, never followed.
        self.len.load(Ordering::Relaxed) + usize::from(self.holds_hot())
    }

    /// Bytes this cache retains now (a snapshot for anyone but its holder).
    pub(super) fn retained_bytes(&self) -> usize {
        // Relaxed: statistics, as in `retained`.
        let hot = if self.hot.load(Ordering::Relaxed).is_null() {
            0
        } else {
            self.hot_weight.load(Ordering::Relaxed)
        };
        hot + self.stack_bytes.load(Ordering::Relaxed)
    }

    /// Whether the cache's reservation covers more objects or bytes than it holds (objects
    /// lent out, room not used yet): what a reclaim would give back. A snapshot.
    pub(super) fn has_unused_room(&self) -> bool {
        // Relaxed: statistics, as in `retained`.
        self.units.load(Ordering::Relaxed) > self.retained()
            || self.unit_bytes.load(Ordering::Relaxed) > self.retained_bytes()
    }

    /// Bytes this cache reserves beyond the objects it holds (a snapshot).
    pub(super) fn unused_bytes(&self) -> usize {
        // Relaxed: statistics, as in `retained`.
        self.unit_bytes
            .load(Ordering::Relaxed)
            .saturating_sub(self.retained_bytes())
    }

    /// Updates the reservation mirrors after a change.
    pub(super) fn publish_units(&self, cache: &Cache<T>) {
        let (count, bytes) = hot_units(cache.hot_room);
        // Relaxed: statistic mirrors.
        self.units.store(count + cache.reserved, Ordering::Relaxed);
        self.unit_bytes
            .store(bytes + cache.reserved_bytes, Ordering::Relaxed);
    }

    /// Opens the owner's section, or `None` while a reclaim holds the pool's caches, when the
    /// caller must leave the cache alone and use the shared store. For the slow paths: it
    /// takes the fence the process needs ([`fence::light_as`]).
    ///
    /// # Safety
    /// The calling thread owns this cache: its slot index (`sync::try_thread_slot`) is this
    /// cache's index. At most one section of a cache is open at a time.
    #[inline(always)]
    pub(super) unsafe fn enter(&self, gate: &Gate) -> Option<Section<'_, T>> {
        // Relaxed, then the light fence: the store-load pair of the table in the module doc.
        self.busy.store(1, Ordering::Relaxed);
        fence::light_as(gate.asymmetric);
        // Acquire: pairs with the Release that ends a reclaim, so this section sees what the
        // reclaimer did to the cache.
        if gate.closed.load(Ordering::Acquire) & Gate::CLOSED != 0 {
            // Release: as in `Section::drop`.
            self.busy.store(0, Ordering::Release);
            return None;
        }
        Some(Section::new(self))
    }

    /// [`enter`](Local::enter) for the fast paths: the same section, with
    /// [`fence::light_fast`], or `None` whenever the gate is not 0 (a reclaim runs, or the
    /// process needs the full fence: [`Gate::SLOW`]); the caller then takes its slow path.
    ///
    /// # Safety
    /// As [`enter`](Local::enter).
    #[inline(always)]
    pub(super) unsafe fn enter_fast(&self, gate: &Gate) -> Option<Section<'_, T>> {
        // Relaxed, then the light fence: as in `enter`. A gate without `SLOW` means
        // `light_fast` suffices.
        self.busy.store(1, Ordering::Relaxed);
        fence::light_fast();
        // Acquire: as in `enter`.
        if gate.closed.load(Ordering::Acquire) != 0 {
            // Release: as in `Section::drop`.
            self.busy.store(0, Ordering::Release);
            return None;
        }
        Some(Section::new(self))
    }

    /// Waits until the owner is out of its section. A reclaimer calls it after closing the
    /// gate and the heavy fence; from then until the gate opens, the cache is the reclaimer's.
    pub(super) fn wait_idle(&self) {
        let mut spins = 0u32;
        // Acquire: pairs with the Release in `Section::drop`.
        while self.busy.load(Ordering::Acquire) != 0 {
            // A section is a few instructions with no user code; it only lasts while its thread
            // is descheduled, so spin briefly, then give the CPU away. (Under loom, yield at
            // once: each spin would be one more scheduling point to explore.)
            if spins < 64 && !cfg!(loom) {
                spin_loop();
                spins += 1;
            } else {
                yield_now();
            }
        }
    }

    /// Takes objects out (each with the weight it is accounted at, which its budget units
    /// cover): with `everything`, all of them and the cache's whole reservation; else only the
    /// stacked objects with their units, plus the hot slot and its reservation if the cache's
    /// owner has exited. Returns the units of reservation given up that held no object (the
    /// caller gives those back to the budget; the objects keep theirs).
    ///
    /// # Safety
    /// The caller holds the cache as a reclaimer: the gate is closed and [`wait_idle`]
    /// returned after it.
    ///
    /// [`wait_idle`]: Local::wait_idle
    pub(super) unsafe fn flush(&self, into: &mut Flushed<T>, everything: bool) -> (usize, usize) {
        let with_hot = everything || self.owner_gone();
        self.cache.with_mut(|cache| {
            // SAFETY: the owner is shut out (this fn's contract) and no other reclaimer runs
            // (reclaims are serialised), so this is the only reference.
            let cache = unsafe { &mut *cache };
            let (mut count, mut bytes) = (0, 0);
            if with_hot {
                (count, bytes) = hot_units(cache.hot_room);
                cache.hot_room = 0;
                // Relaxed: the reclaimer holds the cache; the gate's Release publishes this.
                let hot = self.hot.swap(ptr::null_mut(), Ordering::Relaxed);
                if !hot.is_null() {
                    // Relaxed: written by this cache's holders only, the last of them ordered
                    // before this reclaim by `wait_idle`.
                    let weight = self.hot_weight.load(Ordering::Relaxed);
                    // SAFETY: a non-null hot slot holds an `Item<T>` from `Box::into_raw`,
                    // owned by this cache; it was swapped out, so it is taken once.
                    into.push((unsafe { Box::from_raw(hot) }, weight));
                    count -= 1;
                    bytes -= weight;
                }
            }
            let len = std::mem::replace(&mut cache.len, 0);
            for i in 0..len {
                // SAFETY: `i < len`, so `items[i]` is initialised; `len` is already 0, so it
                // is read out once.
                into.push((
                    unsafe { cache.items[i].assume_init_read() },
                    cache.weights[i],
                ));
            }
            // The moved objects take their units along.
            cache.reserved -= len;
            cache.reserved_bytes -= cache.bytes;
            cache.bytes = 0;
            // A get took this owner's stack: the owner gives back more than it takes here (a
            // consumer that also took once), so it stops stacking until its next get that
            // misses the hot slot, and what it gives back goes to the store, where the getter
            // finds it without another reclaim.
            let stack_taken = !everything && len > 0;
            if stack_taken {
                cache.taker = false;
            }
            if everything {
                // Memory goes back with the objects on every full reclaim: no object, so no
                // user code runs (a free under the reclaim's mutex).
                cache.spare = None;
            }
            if everything || stack_taken {
                count += cache.reserved;
                bytes += cache.reserved_bytes;
                cache.reserved = 0;
                cache.reserved_bytes = 0;
            }
            self.publish_units(cache);
            // Relaxed: statistic mirrors.
            self.len.store(0, Ordering::Relaxed);
            self.stack_bytes.store(0, Ordering::Relaxed);
            (count, bytes)
        })
    }

    /// Whether the hot slot holds an object, whoever owns the cache (a snapshot): what only a
    /// full reclaim takes from a live owner.
    pub(super) fn holds_hot(&self) -> bool {
        // Relaxed: a snapshot, as in `retained`; the reclaim it starts takes what is there.
        !self.hot.load(Ordering::Relaxed).is_null()
    }

    /// Whether a get elsewhere may take objects from this cache without a full reclaim: it has
    /// stacked objects, or its owner has exited or is not known ([`owner_gone`](Self::owner_gone))
    /// and left one in the hot slot. (A known live owner's hot object is left to it: taking it
    /// would only make the owner take one back on its next get, and two threads would pass one
    /// object to and fro through reclaims.) A snapshot.
    pub(super) fn stealable(&self) -> bool {
        // Relaxed: statistics, as in `retained`.
        self.len.load(Ordering::Relaxed) > 0 || (self.holds_hot() && self.owner_gone())
    }

    /// Whether the thread that last owned this cache has exited (or is not known) and left
    /// objects in it (a snapshot).
    pub(super) fn left_behind(&self) -> bool {
        // Relaxed: as in `stealable`.
        (self.len.load(Ordering::Relaxed) > 0 || self.holds_hot()) && self.owner_gone()
    }

    /// Whether the thread that last owned this cache has exited (its slot claim ended), or is not
    /// known. A thread past the tracked slots (`sync::TRACKED_SLOTS`) has no claim token, so
    /// whether the owner of such a slot's cache has exited cannot be told (`token_is_live` says no
    /// for its claim id): its hot object is treated as left behind, which a reclaim takes (safely:
    /// it shuts a live owner out as a full reclaim does). Otherwise an exited thread's hot object
    /// there would be out of every get's reach; a live one may lose its hot object to a get that
    /// found the pool dry, and take one back on its next get.
    fn owner_gone(&self) -> bool {
        // Acquire: pairs with the Release in `Section::claim`, as `token_is_live` requires.
        let owner = self.owner.load(Ordering::Acquire);
        owner == 0 || !token_is_live(owner)
    }
}
