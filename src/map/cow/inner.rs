//! What a map shares with its readers: the current version, the hazard slots and the writer's
//! lock with the versions it retired.

use super::hazard::Hazards;
use super::version::Version;
use crate::sync::{
    fence, Arc, AtomicBool, AtomicPtr, AtomicUsize, CachePadded, Mutex, MutexGuard, Ordering,
};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

/// The writers' list of replaced versions a hazard held when they were replaced.
type Retired<K, V, S> = Vec<Arc<Version<K, V, S>>>;

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
    /// Set by a `Reader` dropped while the writer lock was taken: the lock's holder reclaims
    /// after it unlocks (see `reader_gone`).
    reclaim_wanted: AtomicBool,
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
            reclaim_wanted: AtomicBool::new(false),
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

    /// The newest retired version that no read can reach any more, for the next write to
    /// build in; drops the map's count on the other unreachable ones (as `reclaim` does).
    /// Caller holds the writer lock, which guards `retired`.
    fn take_spare(
        &self,
        retired: &mut Vec<Arc<Version<K, V, S>>>,
    ) -> Option<Arc<Version<K, V, S>>> {
        if retired.is_empty() {
            return None;
        }
        // Every retired version was swapped out of `current` before this fence.
        let held = self.partition_held(retired);
        let spare_at = (held..retired.len()).max_by_key(|&i| retired[i].seq)?;
        let spare = retired.swap_remove(spare_at);
        retired.truncate(held);
        Some(spare)
    }

    /// Fences, scans the slots once and moves the retired versions some slot holds to the
    /// front (in no particular order); returns how many. No allocation.
    fn partition_held(&self, retired: &mut [Arc<Version<K, V, S>>]) -> usize {
        self.hazards.fence();
        let mut held = 0;
        self.hazards.for_each(|p| {
            if let Some(i) = (held..retired.len()).find(|&i| Arc::as_ptr(&retired[i]) == p) {
                retired.swap(i, held);
                held += 1;
            }
        });
        held
    }

    /// The next version for a writer to change and publish: a copy of `current` numbered
    /// `current.seq + 1`, with no recorded change. Built in the memory of a retired version
    /// no read can reach (the *spare*) when the writer is its only holder (no allocation for
    /// the `Arc` and, at equal capacity, none for the table): if the spare is the version just
    /// before `current` and `current` records the one change that made it, by replaying that
    /// change (two versions apart by one entry, so the write costs one entry, not the map);
    /// else by `clone_from`. Otherwise newly allocated. Caller holds the writer lock, which
    /// guards `retired`.
    pub(super) fn next_version(
        &self,
        current: &Version<K, V, S>,
        retired: &mut Vec<Arc<Version<K, V, S>>>,
    ) -> Arc<Version<K, V, S>>
    where
        K: Eq + Hash + Clone,
        V: Clone,
        S: BuildHasher + Clone,
    {
        let seq = current.seq + 1;
        if let Some(mut spare) = self.take_spare(retired) {
            // `get_mut` succeeds only if no other count or weak reference exists. A replaced
            // version gains counts only from existing ones, or from a load whose hazard was
            // confirmed while it was current, and no hazard holds the spare now (so no such
            // load is in progress, and none can start: see `hazard.rs`). So a unique spare is
            // ours.
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
                    _ if is_sparse(current.map()) => *version.map_mut() = copy_of(current.map()),
                    _ => version.map_mut().clone_from(current.map()),
                }
                version.seq = seq;
                version.change = None;
                return spare;
            }
        }
        Arc::new(Version::new(seq, copy_of(current.map()), &self.alive))
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
    }

    /// The writer lock, as a guard whose drop runs the flag check after unlocking.
    pub(super) fn lock(&self) -> Locked<'_, K, V, S> {
        Locked {
            inner: self,
            guard: ManuallyDrop::new(self.writer.lock()),
        }
    }

    /// A `Reader` freed its hazard slot: reclaim now if the lock is free, else flag the
    /// holder, whose `Locked` drop re-checks after unlocking. Never waits.
    pub(super) fn reader_gone(&self) {
        // Relaxed, then the fence: the store-load pair with `Locked::drop`. A swap, not a
        // store: loom orders a plain store against the holder's swap too loosely and reports a
        // lost flag that the hardware cannot lose.
        self.reclaim_wanted.swap(true, Ordering::Relaxed);
        // SeqCst: pairs with the fence in `Locked::drop`: either its load sees the flag, or
        // this `try_lock` sees the lock free.
        fence(Ordering::SeqCst);
        if let Some(guard) = self.writer.try_lock() {
            drop(Locked {
                inner: self,
                guard: ManuallyDrop::new(guard),
            });
        }
    }

    /// Drops the map's count on every retired version no hazard holds now. A `Snapshot` that
    /// took its own count keeps the version alive past this; `Arc` frees it with the last.
    pub(super) fn reclaim(&self, retired: &mut Retired<K, V, S>) {
        if retired.is_empty() {
            return;
        }
        let held = self.partition_held(retired);
        retired.truncate(held);
    }

    /// Takes out of `retired` every version no hazard holds now, with the map's count on each,
    /// for the caller to drop after it lets go of the writer lock (see `Locked::drop`). Allocates
    /// only past 4 such versions at once (more than 4 readers let go of a version since the
    /// last write or reclaim).
    fn unheld(&self, retired: &mut Retired<K, V, S>) -> SmallVec<[Arc<Version<K, V, S>>; 4]> {
        if retired.is_empty() {
            return SmallVec::new();
        }
        let held = self.partition_held(retired);
        retired.drain(held..).collect()
    }
}

/// Whether `map`'s table is mostly empty: over four times the room its entries need, plus a
/// little (a map emptied in place, or made with a large capacity). A copy of it is then built
/// to fit the entries, rehashing each: one scan of the table's control bytes (16 a step) and
/// `O(len)` copies, where a clone copies the whole table; and the copy, published, fits.
fn is_sparse<K, V, S>(map: &HashMap<K, V, S>) -> bool {
    map.capacity() > 4 * map.len() + 32
}

/// A copy of `map`: `HashMap::clone` (the table copied as it is, no key rehashed), or a table
/// built to fit the entries if `map`'s is sparse.
fn copy_of<K, V, S>(map: &HashMap<K, V, S>) -> HashMap<K, V, S>
where
    K: Eq + Hash + Clone,
    V: Clone,
    S: BuildHasher + Clone,
{
    if !is_sparse(map) {
        return map.clone();
    }
    let mut copy = HashMap::with_capacity_and_hasher(map.len(), map.hasher().clone());
    copy.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
    copy
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

/// The writer lock held; dropping it unlocks, then (SeqCst fence, pairing with `reader_gone`)
/// reclaims for every `Reader` dropped meanwhile, re-checking after each unlock. Runs on
/// every exit, panics and early returns included.
pub(super) struct Locked<'a, K, V, S> {
    inner: &'a Inner<K, V, S>,
    guard: ManuallyDrop<MutexGuard<'a, Retired<K, V, S>>>,
}

impl<K, V, S> Deref for Locked<'_, K, V, S> {
    type Target = Retired<K, V, S>;
    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl<K, V, S> DerefMut for Locked<'_, K, V, S> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
    }
}

impl<K, V, S> Drop for Locked<'_, K, V, S> {
    fn drop(&mut self) {
        let inner = self.inner;
        // SAFETY: `drop` runs once and the field is not touched after this.
        let mut guard = unsafe { ManuallyDrop::take(&mut self.guard) };
        loop {
            // Relaxed: the lock orders this with the flag's setters that took it, and the
            // fences below with those that did not.
            let freed = if inner.reclaim_wanted.swap(false, Ordering::Relaxed) {
                inner.unheld(&mut guard)
            } else {
                SmallVec::new()
            };
            drop(guard);
            // After unlocking: freeing a version runs its entries' destructors, which a writer
            // waiting for the lock (a `Reader`'s drop brought us here) should not wait for.
            drop(freed);
            // SeqCst: pairs with the fence in `reader_gone` (see there).
            fence(Ordering::SeqCst);
            // Relaxed: ordered by the fence.
            if !inner.reclaim_wanted.load(Ordering::Relaxed) {
                return;
            }
            match inner.writer.try_lock() {
                Some(g) => guard = g,
                // Its holder re-checks when it lets go.
                None => return,
            }
        }
    }
}
