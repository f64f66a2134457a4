//! One immutable version of a [`CowMap`](super::CowMap)'s contents.

use crate::drop_each::drop_each_if_needed;
use crate::sync::{Arc, AtomicUsize, CachePadded, Ordering, UnsafeCell};
use std::collections::HashMap;
use std::mem;
use std::panic::RefUnwindSafe;

/// What the hazard slot of a [`Reader`](super::Reader) that let go of its version
/// ([`Reader::let_go`](super::Reader::let_go)) holds, never followed: the non-null dangling
/// pointer, whose address is `Version`'s alignment. No version has it: every version is an
/// `Arc`'s payload, placed after the counts at a non-zero multiple of that alignment in a
/// non-null allocation, so at a higher address (`Locked::publish` asserts it in debug builds).
/// A write that finds it keeps a spare for that reader, as for one on the current version.
pub(super) fn released<K, V, S>() -> *mut Version<K, V, S> {
    std::ptr::NonNull::dangling().as_ptr()
}

/// How a version's single write changed its key (see [`Version::change`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// `insert` of a key the previous version did not hold.
    Inserted,
    /// `insert` of a key the previous version held: its value was replaced.
    Replaced,
    /// `remove` of a key the previous version held.
    Removed,
}

/// A published map and its sequence number, shared through an `Arc` by the map, readers and
/// snapshots; never changed after it is published.
pub(super) struct Version<K, V, S> {
    /// 0 for the map's first version, then one more per publish.
    pub(super) seq: u64,
    /// The one change that made this version from version `seq - 1`, when the write was an
    /// `insert` (the value is this version's) or a `remove`: a write that reuses version
    /// `seq - 1` as its spare replays it instead of copying the whole map. `None` after an
    /// `update`, and after a `trim` took it (the key may hold a resource: a removed key must
    /// not wait for the next write). A key, never a value: no value outlives its versions.
    /// Touched only by writers, under the map's writers' lock ([`Version::swap_change`]);
    /// readers never look at it.
    change: UnsafeCell<Option<(K, Change)>>,
    /// The contents. Padded so that the `Arc`'s counts, which snapshots update, sit on another
    /// cache line than the table header every read loads.
    map: CachePadded<HashMap<K, V, S>>,
    /// How many versions of this map are alive, this one included: the map's
    /// `retired_versions` metric. Shared with the map, so a version that outlives it (held by
    /// a snapshot) still counts itself out.
    alive: Arc<CachePadded<AtomicUsize>>,
    /// Under loom, every read of the contents and the version's drop touch this cell, so the
    /// model checker reports a read that is not ordered before the free (a use after free).
    #[cfg(loom)]
    probe: crate::sync::UnsafeCell<u8>,
}

impl<K, V, S> Version<K, V, S> {
    /// A new version, counted in `alive`.
    pub(super) fn new(
        seq: u64,
        map: HashMap<K, V, S>,
        alive: &Arc<CachePadded<AtomicUsize>>,
    ) -> Self {
        // Relaxed: a statistic; nothing is published through it.
        alive.fetch_add(1, Ordering::Relaxed);
        Self {
            seq,
            change: UnsafeCell::new(None),
            map: CachePadded::new(map),
            alive: alive.clone(),
            #[cfg(loom)]
            probe: crate::sync::UnsafeCell::new(0),
        }
    }

    /// Records `change` as the one that made this version and returns the one recorded before.
    ///
    /// # Safety
    /// The caller holds the writers' lock of the map this version belongs to (or the version's
    /// only reference): no other access to the record can run meanwhile.
    pub(super) unsafe fn swap_change(&self, change: Option<(K, Change)>) -> Option<(K, Change)> {
        // SAFETY: the caller's contract; readers never touch the record.
        self.change
            .with_mut(|c| unsafe { mem::replace(&mut *c, change) })
    }

    /// Runs `f` on the recorded change.
    ///
    /// # Safety
    /// As [`swap_change`](Version::swap_change).
    pub(super) unsafe fn with_change<R>(&self, f: impl FnOnce(Option<&(K, Change)>) -> R) -> R {
        // SAFETY: the caller's contract; readers never touch the record.
        self.change.with(|c| f(unsafe { (*c).as_ref() }))
    }

    /// The contents.
    #[inline(always)]
    pub(super) fn map(&self) -> &HashMap<K, V, S> {
        #[cfg(loom)]
        self.probe.with(|_| ());
        &self.map
    }
}

impl<K, V, S> Version<K, V, S> {
    /// The contents, to change: only through an `Arc` nobody else holds (`Arc::get_mut`), for
    /// a version not yet published or one reused as the spare.
    pub(super) fn map_mut(&mut self) -> &mut HashMap<K, V, S> {
        #[cfg(loom)]
        self.probe.with_mut(|_| ());
        &mut self.map
    }
}

// SAFETY: a shared `Version` gives readers `&` access to its contents (`K`, `V`, `S`: `Sync`)
// and writers, one at a time under the writers' lock, the change record: they may take its key
// out and drop it on their own thread (`K: Send`). Nothing else is shared; the loom probe is
// loom's to check.
unsafe impl<K: Send + Sync, V: Sync, S: Sync> Sync for Version<K, V, S> {}

// The record's cell does not make a shared `Version` any less unwind-safe than its contents: it
// is changed only under the writers' lock, by one swap that a panic cannot leave half done.
impl<K: RefUnwindSafe, V: RefUnwindSafe, S: RefUnwindSafe> RefUnwindSafe for Version<K, V, S> {}

impl<K, V, S> Drop for Version<K, V, S> {
    fn drop(&mut self) {
        #[cfg(loom)]
        self.probe.with_mut(|_| ());
        // Relaxed: a statistic, as in `new`.
        self.alive.fetch_sub(1, Ordering::Relaxed);
        drop_entries(&mut self.map);
    }
}

/// Drops `map`'s entries one by one, going on past one whose `Drop` panics
/// ([`drop_each_if_needed`]): `HashMap`'s own drop would stop at the panic and leak the rest of
/// the entries and the table. Keeps the (empty) table for the map's drop to free. Nothing to
/// do, at no cost, for entries without drop glue.
pub(super) fn drop_entries<K, V, S>(map: &mut HashMap<K, V, S>) {
    drop_each_if_needed(|| map.drain());
}
