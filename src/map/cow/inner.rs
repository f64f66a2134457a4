//! What a map shares with its readers: the current version, the hazard slots and the writer's
//! lock with the versions it retired.

use super::hazard::Hazards;
use super::version::Version;
use crate::sync::{Arc, AtomicPtr, AtomicUsize, CachePadded, Mutex, Ordering};
use std::collections::HashMap;
use std::marker::PhantomData;

/// The state behind a [`CowMap`](super::CowMap) and its [`Reader`](super::Reader)s.
pub(super) struct Inner<K, V, S> {
    /// The current version: a pointer from `Arc::into_raw` that owns one strong count (the
    /// map's). Never null. Written only by `publish`, so a reader's check of it reads a line
    /// that changes once per write.
    pub(super) current: CachePadded<AtomicPtr<Version<K, V, S>>>,
    /// The hazard slots of reads in progress.
    pub(super) hazards: CachePadded<Hazards<Version<K, V, S>>>,
    /// Serialises writers, and holds the map's strong count on each replaced version that a
    /// hazard still protected when it was replaced; every write and `trim` retries them.
    pub(super) writer: Mutex<Vec<Arc<Version<K, V, S>>>>,
    /// How many versions are alive (see `Version::alive`).
    pub(super) alive: Arc<CachePadded<AtomicUsize>>,
    /// `current` owns a version, which `AtomicPtr` does not tell the compiler: this makes
    /// `Inner` `Send`/`Sync` exactly when `Arc<Version>` is, that is when `K`, `V` and `S` are
    /// `Send + Sync` (readers on any thread read them and drop the last reference to them).
    _owns: PhantomData<Arc<Version<K, V, S>>>,
}

impl<K, V, S> Inner<K, V, S> {
    pub(super) fn new(map: HashMap<K, V, S>) -> Self {
        let alive = Arc::new(CachePadded::new(AtomicUsize::new(0)));
        let first = Arc::into_raw(Arc::new(Version::new(0, map, &alive)));
        Self {
            current: CachePadded::new(AtomicPtr::new(first.cast_mut())),
            hazards: CachePadded::new(Hazards::new()),
            writer: Mutex::new(Vec::new()),
            alive,
            _owns: PhantomData,
        }
    }

    /// Runs `f` on the current version under a hazard: no refcount, one slot claimed and freed.
    #[inline]
    pub(super) fn with<R>(&self, f: impl FnOnce(&Version<K, V, S>) -> R) -> R {
        let hazard = self.hazards.protect(&self.current);
        // SAFETY: `current` held `hazard.ptr()` after the hazard was visible to every writer's
        // scan, and a writer frees a replaced version only if no hazard holds it (see
        // `hazard.rs`, "Orderings"), so it stays alive until `hazard` drops, after `f`.
        f(unsafe { &*hazard.ptr() })
    }

    /// A strong reference to the current version, taken under a hazard.
    pub(super) fn load(&self) -> Arc<Version<K, V, S>> {
        let hazard = self.hazards.protect(&self.current);
        let ptr = hazard.ptr().cast_const();
        // SAFETY: `ptr` came from `Arc::into_raw` and is alive while `hazard` is held (as in
        // `with`); the count we add keeps it alive after, and `from_raw` takes that count.
        unsafe {
            Arc::increment_strong_count(ptr);
            Arc::from_raw(ptr)
        }
    }

    /// The current version, for the writer: valid while the caller holds `writer`'s lock,
    /// since only a writer replaces it and the map's count keeps it alive until then.
    pub(super) fn current_locked(&self) -> *const Version<K, V, S> {
        // Relaxed: only writers store `current`, under the lock the caller holds, whose
        // acquire orders the previous writer's store before this load.
        self.current.load(Ordering::Relaxed)
    }

    /// Makes `map` the current version and retires the one it replaces. Caller holds the
    /// writer lock; `retired` is what it guards.
    pub(super) fn publish(
        &self,
        retired: &mut Vec<Arc<Version<K, V, S>>>,
        seq: u64,
        map: HashMap<K, V, S>,
    ) {
        let new = Arc::into_raw(Arc::new(Version::new(seq, map, &self.alive)));
        // AcqRel: the release half pairs with the Acquire loads in `Hazards::protect` that
        // find `new`, so they see the map built above; the acquire half, with the previous
        // publish (already ordered by the writer lock; kept for the reader of this line).
        // The swap's order against hazards comes from the fence in `reclaim`.
        let old = self.current.swap(new.cast_mut(), Ordering::AcqRel);
        // SAFETY: `old` came from `Arc::into_raw` and carried the map's strong count, which
        // `current` no longer holds: we take it over.
        retired.push(unsafe { Arc::from_raw(old) });
        self.reclaim(retired);
    }

    /// Drops the map's count on every retired version no hazard holds now. A reader that
    /// took its own count keeps the version alive past this; `Arc` frees it with the last.
    pub(super) fn reclaim(&self, retired: &mut Vec<Arc<Version<K, V, S>>>) {
        if retired.is_empty() {
            return;
        }
        self.hazards.fence();
        retired.retain(|version| self.hazards.holds(Arc::as_ptr(version)));
    }
}

impl<K, V, S> Drop for Inner<K, V, S> {
    fn drop(&mut self) {
        // Relaxed: `&mut self`: every reader and writer is gone (each held a share of `Inner`
        // or a borrow of the map), and whatever ended them synchronised with this thread.
        let current = self.current.load(Ordering::Relaxed);
        // SAFETY: `current` came from `Arc::into_raw` and owns the map's count; no hazard can
        // be set any more. The retired list drops its counts with the `Mutex`.
        drop(unsafe { Arc::from_raw(current) });
    }
}
