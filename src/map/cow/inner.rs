//! What a map shares with its readers: the current version, the hazard slots and the writer's
//! lock with the versions it retired.

use super::hazard::Hazards;
use super::version::Version;
use crate::sync::{fence, Arc, AtomicPtr, AtomicUsize, CachePadded, Mutex, Ordering};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::ptr;

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
    /// A replaced version a `Reader` let go of, with the reader's strong count (from
    /// `Arc::into_raw`), or null: the next write builds its copy in it instead of allocating,
    /// and the reader did not free it on the read path. Freed by `trim` and on drop.
    spare: CachePadded<AtomicPtr<Version<K, V, S>>>,
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
            spare: CachePadded::new(AtomicPtr::new(ptr::null_mut())),
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

    /// A count on a replaced version that a `Reader` lets go of, the reader now holding
    /// `holding`. If the count looks like the last one, the version becomes the spare, so the
    /// reader does not free it on its read path. Otherwise, or if a spare is already waiting
    /// (readers a version apart), the count is dropped here, which frees the version if it was
    /// the last.
    ///
    /// The spare must only exist while the reader that left it holds the current version, or
    /// old versions could exceed one per live reader or snapshot, plus the current. A write
    /// that publishes while we park it would break that; so both sides check after a SeqCst
    /// fence: we re-read `current` after parking (and take the spare back if it moved), and a
    /// writer drops any spare it finds after publishing (`publish`). The two fences are in one
    /// total order, so at least one of the two checks sees the other side's step.
    pub(super) fn give_back(
        &self,
        version: Arc<Version<K, V, S>>,
        holding: *const Version<K, V, S>,
    ) {
        // A hint only: `next_version` checks that it is the only holder before reusing it.
        if Arc::strong_count(&version) != 1 {
            return drop(version);
        }
        let raw = Arc::into_raw(version).cast_mut();
        // Release: pairs with the Acquire swap in `take_spare`, so the writer that takes it
        // sees everything this thread did with it. Relaxed on failure: nothing was handed over.
        if self
            .spare
            .compare_exchange(ptr::null_mut(), raw, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: `raw` came from `Arc::into_raw` just above and was not handed over.
            return drop(unsafe { Arc::from_raw(raw) });
        }
        // SeqCst: pairs with the writer's fence after its swap (`reclaim`), as above.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence; only compared.
        if self.current.load(Ordering::Relaxed).cast_const() != holding {
            drop(self.take_spare());
        }
    }

    /// The spare version, if a reader left one.
    fn take_spare(&self) -> Option<Arc<Version<K, V, S>>> {
        // Acquire: pairs with the Release in `give_back`.
        let raw = self.spare.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: a non-null spare came from `Arc::into_raw` in `give_back` and carries one
        // strong count, which the swap hands to us alone.
        (!raw.is_null()).then(|| unsafe { Arc::from_raw(raw) })
    }

    /// The next version for a writer to change and publish: a copy of `current` numbered
    /// `current.seq + 1`, with no recorded change. Built in the spare's memory when the writer
    /// is its only holder (no allocation for the `Arc` and, at equal capacity, none for the
    /// table): if the spare is the version just before `current` and `current` records the one
    /// change that made it, by replaying that change (two versions apart by one entry, so the
    /// write costs one entry, not the map); else by `clone_from`. Otherwise newly allocated.
    /// Caller holds the writer lock.
    pub(super) fn next_version(&self, current: &Version<K, V, S>) -> Arc<Version<K, V, S>>
    where
        K: Eq + Hash + Clone,
        V: Clone,
        S: BuildHasher + Clone,
    {
        let seq = current.seq + 1;
        if let Some(mut spare) = self.take_spare() {
            // `get_mut` succeeds only if no other count or weak reference exists. A replaced
            // version gains counts only from existing ones, or from a load whose hazard was
            // confirmed while it was current (and then the retired list keeps a count until
            // that load has its own): see the module doc. So a unique spare is ours.
            if let Some(version) = Arc::get_mut(&mut spare) {
                // Versions never change once published, and version n + 1 is version n's
                // contents plus its write: so the spare plus `current.change` is `current`.
                match &current.change {
                    Some((key, inserted)) if version.seq + 1 == current.seq => {
                        let map = version.map_mut();
                        match current.map().get(key).filter(|_| *inserted) {
                            Some(value) => drop(map.insert(key.clone(), value.clone())),
                            None => drop(map.remove(key)),
                        }
                    }
                    _ => version.map_mut().clone_from(current.map()),
                }
                version.seq = seq;
                version.change = None;
                return spare;
            }
        }
        Arc::new(Version::new(seq, current.map().clone(), &self.alive))
    }

    /// Makes `new` (from `next_version`, changed by the writer) the current version and
    /// retires the one it replaces. Caller holds the writer lock; `retired` is what it guards.
    pub(super) fn publish(
        &self,
        retired: &mut Vec<Arc<Version<K, V, S>>>,
        new: Arc<Version<K, V, S>>,
    ) {
        let new = Arc::into_raw(new);
        // AcqRel: the release half pairs with the Acquire loads in `Hazards::protect` that
        // find `new`, so they see the map built above; the acquire half, with the previous
        // publish (already ordered by the writer lock; kept for the reader of this line).
        // The swap's order against hazards comes from the fence in `reclaim`.
        let old = self.current.swap(new.cast_mut(), Ordering::AcqRel);
        // SAFETY: `old` came from `Arc::into_raw` and carried the map's strong count, which
        // `current` no longer holds: we take it over.
        retired.push(unsafe { Arc::from_raw(old) });
        // Fences after the swap (`retired` is not empty), then asks the hazards.
        self.reclaim(retired);
        // A spare parked while we published belongs to a reader that now holds the version we
        // replaced: drop it (see `give_back`).
        drop(self.take_spare());
    }

    /// Frees the spare version, if a reader left one (for `trim`).
    pub(super) fn drop_spare(&self) {
        drop(self.take_spare());
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
        drop(self.take_spare());
    }
}
