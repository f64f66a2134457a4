//! What a map shares with its readers: the current version, the hazard slots and the writer's
//! lock with the versions it retired.

use super::hazard::Hazards;
use super::version::{drop_entries, released, Change, Version};
use crate::sync::{
    enter_or_panic, fence, Arc, AtomicBool, AtomicPtr, AtomicUsize, CachePadded, Inside, Mutex,
    MutexGuard, Ordering,
};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};

/// The writers' list of replaced versions a hazard held when they were replaced, and of the
/// one kept as the next write's spare (see `Inner::unheld`).
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
    /// hazard still protected when it was replaced, or that a write kept as the spare; every
    /// write and `trim` retries them.
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
        debug_assert_ne!(
            first.cast_mut(),
            released(),
            "a version at the let-go marker's address"
        );
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

    /// This map's name for the re-entrancy check (`crate::sync::enter`): its address, unique
    /// among live objects and fixed while any write of it runs.
    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// Fences, scans the slots once and moves the retired versions some slot holds to the
    /// front (in no particular order); returns how many, and whether a slot `spare` names holds
    /// the current version it gives (a read that already left the version it replaced) or is a
    /// `Reader`'s that let go of its version (it holds nothing: `Reader::let_go`). No allocation.
    fn partition_held(
        &self,
        retired: &mut [Arc<Version<K, V, S>>],
        spare: SpareFor<K, V, S>,
    ) -> (usize, bool) {
        self.hazards.fence();
        let (mut held, mut on_current) = (0, false);
        self.hazards.for_each(|p, reader| {
            on_current |= match spare {
                SpareFor::Nobody => false,
                SpareFor::AnySlotOn(c) => p == c || p == released(),
                SpareFor::ReaderOn(c) => reader && (p == c || p == released()),
            };
            if let Some(i) = (held..retired.len()).find(|&i| Arc::as_ptr(&retired[i]) == p) {
                retired.swap(i, held);
                held += 1;
            }
        });
        (held, on_current)
    }

    /// The writer lock, for a write or `trim` of this map: marks the thread as inside the
    /// map's writes first, so that a write from code run under the lock (an `update`'s
    /// closure, a key's or value's `Clone`, `Hash` or `Eq`) panics instead of waiting for
    /// itself. The guard unlocks, leaves the map and then frees what the holder let go of.
    ///
    /// # Panics
    /// If this thread is already inside a write of this map, or inside `MAX_INSIDE` maps'
    /// closures.
    #[inline]
    pub(super) fn lock(&self) -> Locked<'_, K, V, S> {
        let inside = enter_or_panic(self.id(), "CowMap", REENTERED);
        self.lock_marked(Some(inside))
    }

    /// The writer lock, without the re-entrancy mark: for the map's drop, which cannot run
    /// inside a write of the map (a write borrows it), and must not panic for being nested
    /// inside `MAX_INSIDE` other maps' closures. Its caller must run nothing of the user's
    /// under the lock.
    pub(super) fn lock_unmarked(&self) -> Locked<'_, K, V, S> {
        self.lock_marked(None)
    }

    #[inline]
    fn lock_marked(&self, inside: Option<Inside>) -> Locked<'_, K, V, S> {
        Locked {
            inner: self,
            guard: ManuallyDrop::new(self.writer.lock()),
            trash: Trash::default(),
            _inside: inside,
        }
    }

    /// A `Reader` freed its hazard slot: reclaim now if the lock is free, else flag the
    /// holder, whose `Locked` drop re-checks after unlocking. Never waits.
    pub(super) fn reader_gone(&self) {
        // Release: a holder that takes the flag with its Acquire swap (`Locked::drop`) then sees
        // this `Reader`'s slot released (`release_held`, before this), and its scan finds the
        // version free. The fence after is the store-load pair for a holder that has already
        // unlocked. A swap, not a store: loom orders a plain store against the holder's swap
        // too loosely and reports a lost flag that the hardware cannot lose.
        self.reclaim_wanted.swap(true, Ordering::Release);
        // SeqCst: pairs with the fence in `Locked::drop`: either its load sees the flag, or
        // this `try_lock` sees the lock free.
        fence(Ordering::SeqCst);
        if let Some(guard) = self.writer.try_lock() {
            // No `Inside`: nothing of the user's runs under this lock (the reclaim compares
            // pointers; the frees run no destructor under it), and `try_lock` never waits.
            drop(Locked {
                inner: self,
                guard: ManuallyDrop::new(guard),
                trash: Trash::default(),
                _inside: None,
            });
        }
    }

    /// Moves every retired version no hazard holds now, with the map's count on each, into `out`,
    /// for the caller to drop after it lets go of the writer lock; but if a hazard `spare` names
    /// holds the current version, or is a `Reader`'s that let go and holds nothing, keeps the
    /// newest unheld one as the next write's spare: it counts against that hazard, as a version a
    /// hazard held would. Allocates only past [`TRASH_VERSIONS`] such versions at once.
    fn unheld(
        &self,
        retired: &mut Retired<K, V, S>,
        out: &mut TrashVersions<K, V, S>,
        spare: SpareFor<K, V, S>,
    ) {
        if retired.is_empty() {
            return;
        }
        let (held, on_current) = self.partition_held(retired, spare);
        let kept = match newest_from(retired, held) {
            Some(spare) if on_current => {
                retired.swap(spare, held);
                held + 1
            }
            _ => held,
        };
        move_from(retired, kept, out);
    }
}

/// Which hazards on the current version make [`Inner::unheld`] keep a spare.
enum SpareFor<K, V, S> {
    /// None: free every version no hazard holds (`trim`, the map's drop).
    Nobody,
    /// Any hazard, a `Reader`'s or a read's, on this version (the one a write just published),
    /// or a `Reader`'s that let go: the readers are moving on.
    AnySlotOn(*const Version<K, V, S>),
    /// A `Reader`'s hazard on this version (the current one), or one that let go: for a
    /// `Reader`'s drop, which keeps the spare for the readers that stay; a plain read, which
    /// ends at once, would keep it with no reader left.
    ReaderOn(*const Version<K, V, S>),
}

/// The index of the version in `retired[from..]` a write should build in, if any: the newest
/// one that only the map holds a count on, else the newest. (A `Snapshot`'s count would make
/// `Locked::build`'s `Arc::get_mut` fail and the write allocate, where an older version that
/// only the map holds takes a copy in place. The count is a hint here; `get_mut` decides.)
fn newest_from<K, V, S>(retired: &Retired<K, V, S>, from: usize) -> Option<usize> {
    (from..retired.len()).max_by_key(|&i| (Arc::strong_count(&retired[i]) == 1, retired[i].seq))
}

/// Moves `retired[from..]` to the end of `out`: a pop each, no call when there is nothing to
/// move (most writes), where `extend(drain(..))` costs a reservation and a tail move.
fn move_from<K, V, S>(
    retired: &mut Retired<K, V, S>,
    from: usize,
    out: &mut TrashVersions<K, V, S>,
) {
    while retired.len() > from {
        out.extend(retired.pop());
    }
}

/// Why a write from inside one of the map's own writes panics (`sync::enter_or_panic`).
const REENTERED: &str = "re-entrant write: this thread is inside a write of the same map (an \
    update's closure, a key's or value's Clone, Hash or Eq, or the hasher's Clone or \
    build_hasher, during a write), which holds the writers' lock; a write or trim from there \
    would wait for itself for ever, so it panics instead. Reads are fine there; change the \
    closure's own map, or write after the write returns";

/// Whether `map`'s table is mostly empty: over four times the room its entries need, plus a
/// little (a map emptied in place, or made with a large capacity). A copy of it is then built
/// to fit the entries, rehashing each: one scan of the table's control bytes (16 a step) and
/// `O(len)` copies, where a clone copies the whole table; and the copy, published, fits.
fn is_sparse<K, V, S>(map: &HashMap<K, V, S>) -> bool {
    too_roomy(map.capacity(), map.len())
}

/// Whether a table with room for `capacity` entries is over four times what `len` need, plus a
/// little: [`is_sparse`], and the test that keeps [`Locked::build`] from replaying a change
/// into a spare whose table would then be as sparse.
fn too_roomy(capacity: usize, len: usize) -> bool {
    capacity > 4 * len + 32
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

/// How many versions a [`Trash`] holds without allocating.
const TRASH_VERSIONS: usize = 4;

/// The versions a writer or a dropped `Reader` let go of.
type TrashVersions<K, V, S> = SmallVec<[Arc<Version<K, V, S>>; TRASH_VERSIONS]>;

/// What the holder of the writer lock let go of, dropped after it unlocks (by [`Locked`]'s drop),
/// so that no key's, value's or hasher's `Drop` runs under the lock: one that writes the map then
/// finds it unlocked, and no writer waits for destructors. Without drop glue in keys, values and
/// hasher, dropping it only deallocates, and `Locked` does it before unlocking.
pub(super) struct Trash<K, V, S> {
    /// The map's counts on replaced versions no read can reach (the last count, unless a
    /// `Snapshot` holds one).
    versions: TrashVersions<K, V, S>,
    /// A version built but not published: `f` of an `update` panicked.
    unpublished: Option<Arc<Version<K, V, S>>>,
    /// What building in the spare displaced.
    displaced: Displaced<K, V, S>,
    /// A recorded change's key let go of (after a `remove`, the map's last copy of the removed
    /// key): the replaced version's, when a write publishes (only the current version's record
    /// is ever replayed, so no retired version keeps one), or the current version's, when
    /// `trim` forgets it. One per lock: a write publishes once, and `trim` publishes nothing.
    recorded: Option<K>,
}

/// What a write that builds in the spare takes out of it (at most one of these).
enum Displaced<K, V, S> {
    Nothing,
    /// The value a replayed replace overwrote.
    Value(V),
    /// The entry a replayed remove took out.
    Entry(K, V),
    /// The spare's whole table, when the write built a new one rather than copy into it.
    Table(HashMap<K, V, S>),
}

impl<K, V, S> Default for Trash<K, V, S> {
    #[inline]
    fn default() -> Self {
        Self {
            versions: SmallVec::new(),
            unpublished: None,
            displaced: Displaced::Nothing,
            recorded: None,
        }
    }
}

impl<K, V, S> Drop for Displaced<K, V, S> {
    fn drop(&mut self) {
        // The table's own drop would stop at a panicking entry and leak the rest.
        if let Displaced::Table(table) = self {
            drop_entries(table);
        }
    }
}

/// The writer lock held. Dropping it unlocks, then (SeqCst fence, pairing with `reader_gone`)
/// reclaims for every `Reader` dropped meanwhile, re-checking after each unlock, then leaves
/// the map (`_inside`) and drops the trash (before each unlock instead, for plain data: see
/// [`Trash`]). Runs on every exit, panics and early returns included.
pub(super) struct Locked<'a, K, V, S> {
    inner: &'a Inner<K, V, S>,
    guard: ManuallyDrop<MutexGuard<'a, Retired<K, V, S>>>,
    // `_inside` and `trash` drop after `Locked::drop` has unlocked, in this order: the thread
    // leaves the map before the trash's destructors run (they may write the map). A trash
    // with no drop glue but deallocation is emptied before unlocking instead.
    /// The thread's mark as inside this map's writes: a writer's; `None` for a `Reader`'s
    /// drop, which only `try_lock`s and runs nothing of the user's under the lock.
    _inside: Option<Inside>,
    trash: Trash<K, V, S>,
}

impl<K, V, S> Locked<'_, K, V, S> {
    /// The version after `current` holding `map` as it is, for [`CowMap::store`]: nothing
    /// copied, no change recorded (the next write copies), and the spare left for that write.
    /// It stays in the trash until [`Locked::publish`], as [`Locked::build`]'s does.
    pub(super) fn build_from(&mut self, current: &Version<K, V, S>, map: HashMap<K, V, S>) {
        debug_assert!(
            self.trash.unpublished.is_none(),
            "one version built per lock"
        );
        let version = Version::new(current.seq + 1, map, &self.inner.alive);
        self.trash.unpublished = Some(Arc::new(version));
    }

    /// The newest retired version that no read can reach any more, for the next write to
    /// build in; trashes the map's count on the other unreachable ones (as `reclaim` does).
    fn take_spare(&mut self) -> Option<Arc<Version<K, V, S>>> {
        let retired: &mut Retired<K, V, S> = &mut self.guard;
        if retired.is_empty() {
            return None;
        }
        // Every retired version was swapped out of `current` before this fence.
        let (held, _) = self.inner.partition_held(retired, SpareFor::Nobody);
        let spare_at = newest_from(retired, held)?;
        let spare = retired.swap_remove(spare_at);
        move_from(retired, held, &mut self.trash.versions);
        Some(spare)
    }

    /// Builds the next version for a writer to change and publish, and returns it to change:
    /// a copy of `current` numbered `current.seq + 1`, with no recorded change. Built in the
    /// memory of a retired version no read can reach (the *spare*) when the writer is its only
    /// holder (no allocation for the `Arc` and, at equal capacity and for entries without drop
    /// glue, none for the table): if the spare is the version just before `current`, `current`
    /// records the one change that made it, and the spare's table is not mostly empty for
    /// `current`'s entries, by replaying that change (two versions apart by one entry, so the
    /// write costs one entry, not the map); else by `clone_from`, or a copy built to fit.
    /// Otherwise newly allocated. What the spare lets go of goes to the trash, and the version
    /// stays there until [`Locked::publish`]: a panic meanwhile frees it after unlocking.
    pub(super) fn build(&mut self, current: &Version<K, V, S>) -> &mut Version<K, V, S>
    where
        K: Eq + Hash + Clone,
        V: Clone,
        S: BuildHasher + Clone,
    {
        let seq = current.seq + 1;
        let mut spare = self.take_spare();
        let unique = spare.as_mut().is_some_and(|v| Arc::get_mut(v).is_some());
        let Trash {
            versions,
            unpublished,
            displaced,
            ..
        } = &mut self.trash;
        // `get_mut` succeeds only if no other count or weak reference exists. A replaced
        // version gains counts only from existing ones, or from a load whose hazard was
        // confirmed while it was current, and no hazard holds the spare now (so no such load
        // is in progress, and none can start: see `hazard.rs`). So a unique spare is ours.
        match spare {
            Some(spare) if unique => {
                let version = Arc::get_mut(unpublished.insert(spare)).expect("checked unique");
                // Versions never change once published, and version n + 1 is version n's
                // contents plus its write: so the spare plus `current.change` is `current`.
                // Not into a spare whose table is mostly empty for what `current` holds (the
                // version before a map was emptied): the copy below fits the entries, and
                // replaying would keep publishing that table, every other version.
                let next = version.seq + 1 == current.seq
                    && !too_roomy(version.map().capacity(), current.map().len());
                // SAFETY: we hold the writers' lock (`Locked`).
                let replayed = unsafe {
                    current.with_change(|recorded| match recorded {
                        Some((key, change)) if next => {
                            replay(version.map_mut(), current.map(), key, *change)
                        }
                        _ => None,
                    })
                };
                match replayed {
                    Some(out) => *displaced = out,
                    // Copying into the spare drops its entries and its hasher (`clone_from`
                    // replaces it): with drop glue in any of them, they go to the trash with the
                    // spare's table, and the copy gets a table of its own.
                    None if mem::needs_drop::<(K, V, S)>() || is_sparse(current.map()) => {
                        let copy = copy_of(current.map());
                        *displaced = Displaced::Table(mem::replace(version.map_mut(), copy));
                    }
                    None => version.map_mut().clone_from(current.map()),
                }
                version.seq = seq;
                debug_assert!(
                    // SAFETY: the spare is ours alone (`get_mut` above).
                    unsafe { version.with_change(|c| c.is_none()) },
                    "a retired version keeps no record: `publish` let go of it"
                );
                version
            }
            spare => {
                // A `Snapshot` holds the spare, if any: drop our count after unlocking (it
                // may be the last by then).
                versions.extend(spare);
                let version = Version::new(seq, copy_of(current.map()), &self.inner.alive);
                Arc::get_mut(unpublished.insert(Arc::new(version)))
                    .expect("a version not yet published has one holder")
            }
        }
    }

    /// Makes the version from [`Locked::build`], changed by the writer, the current one, and
    /// retires the one it replaces.
    pub(super) fn publish(&mut self) {
        let new = self.trash.unpublished.take().expect("`build` came first");
        let new = Arc::into_raw(new);
        debug_assert_ne!(
            new.cast_mut(),
            released(),
            "a version at the let-go marker's address"
        );
        // AcqRel: the release half pairs with the Acquire re-load in `hazard::confirm` (behind
        // `protect`, `claim_held` and `protect_in`) that finds `new`, so it sees the map built
        // above; the acquire half, with the previous
        // publish (already ordered by the writer lock; kept for the reader of this line).
        // The swap's order against hazards comes from the fence in `unheld`'s scan.
        let old = self.inner.current.swap(new.cast_mut(), Ordering::AcqRel);
        // SAFETY: `old` came from `Arc::into_raw` and carried the map's strong count, which
        // `current` no longer holds: we take it over.
        let old = unsafe { Arc::from_raw(old) };
        // Its record is never replayed now (only the current version's is): let go of the key
        // with the trash, so a removed key lives until the next write even when a `Reader`
        // keeps this version as the spare.
        // SAFETY: we hold the writers' lock (`swap_change`'s contract); readers never touch
        // the record.
        let record = unsafe { old.swap_change(None) };
        self.keep_recorded(record);
        self.guard.push(old);
        // Fences after the swap (`retired` is not empty), then asks the hazards. A reader
        // that already moved on to `new` before the scan left `old` unheld: the newest unheld
        // version stays as the next write's spare, as `old` would had the scan come first
        // (freeing it would make the next write copy the whole map, a race the readers win
        // now and then).
        self.inner.unheld(
            &mut self.guard,
            &mut self.trash.versions,
            SpareFor::AnySlotOn(new),
        );
    }

    /// Trashes the map's count on every retired version no hazard holds now. A `Snapshot`
    /// that took its own count keeps the version alive past this; `Arc` frees it with the
    /// last.
    pub(super) fn reclaim(&mut self) {
        self.inner
            .unheld(&mut self.guard, &mut self.trash.versions, SpareFor::Nobody);
    }

    /// Takes the current version's change record into the trash: `trim` lets go of the last
    /// write's key (a removed key may hold a resource), and the next write copies the map
    /// rather than replaying that change into its spare.
    pub(super) fn forget_change(&mut self) {
        // SAFETY: we hold the writers' lock (`current_locked`'s and `swap_change`'s contract).
        let record = unsafe { (*self.inner.current_locked()).swap_change(None) };
        self.keep_recorded(record);
    }

    /// Puts a taken record's key in the trash, dropped with it after unlocking.
    fn keep_recorded(&mut self, record: Option<(K, Change)>) {
        debug_assert!(self.trash.recorded.is_none(), "one record let go per lock");
        self.trash.recorded = record.map(|(key, _)| key);
    }
}

/// Replays into `spare` (the version before `current`) the change that made `current`:
/// `key`'s entry inserted, replaced or removed. Two hashes of `key`, and for an insert a
/// clone of its key and value (for a replace, of its value). Returns the value a replace
/// displaces or the entry a remove takes out, for the trash; `None`, with `spare` untouched,
/// if `current` has no entry for an inserted or replaced `key` (a key not equal to itself,
/// as a NaN float's `Eq` makes it: `HashMap` keeps such an entry but never finds it), for the
/// caller to copy `current` instead.
fn replay<K, V, S>(
    spare: &mut HashMap<K, V, S>,
    current: &HashMap<K, V, S>,
    key: &K,
    change: Change,
) -> Option<Displaced<K, V, S>>
where
    K: Eq + Hash + Clone,
    V: Clone,
    S: BuildHasher,
{
    let displaced = match change {
        Change::Removed => {
            return Some(match spare.remove_entry(key) {
                Some((k, v)) => Displaced::Entry(k, v),
                None => Displaced::Nothing,
            })
        }
        // The spare does not hold `key` (the insert that made `current` found it absent), so
        // nothing is displaced.
        Change::Inserted => {
            let value = current.get(key)?;
            spare.insert(key.clone(), value.clone())
        }
        Change::Replaced => {
            let value = current.get(key)?;
            match spare.get_mut(key) {
                Some(old) => Some(mem::replace(old, value.clone())),
                None => spare.insert(key.clone(), value.clone()),
            }
        }
    };
    Some(displaced.map_or(Displaced::Nothing, Displaced::Value))
}

impl<K, V, S> Drop for Locked<'_, K, V, S> {
    fn drop(&mut self) {
        let inner = self.inner;
        // SAFETY: `drop` runs once and the field is not touched after this.
        let mut guard = unsafe { ManuallyDrop::take(&mut self.guard) };
        loop {
            // Acquire: pairs with the Release swap in `reader_gone`, so the scan below sees the
            // slot that setter released (a setter's own flag is no proof of its slot's store
            // otherwise, on weakly ordered hardware); the fence after unlocking covers a flag
            // set after this swap.
            if inner.reclaim_wanted.swap(false, Ordering::Acquire) {
                // A `Reader` dropped: free what only it held or left, but keep the spare if
                // another `Reader` is on the current version (or let go): the next write builds
                // in it, as it would have had the dropped reader stayed.
                let spare = SpareFor::ReaderOn(inner.current_locked());
                inner.unheld(&mut guard, &mut self.trash.versions, spare);
            }
            if !mem::needs_drop::<(K, V, S)>() {
                // No key, value or hasher runs code when dropped: free the trash under the
                // lock (deallocations only), so that a thread made to wait between unlocking
                // and freeing holds no old version.
                self.trash = Trash::default();
            }
            drop(guard);
            // SeqCst: pairs with the fence in `reader_gone` (see there).
            fence(Ordering::SeqCst);
            // Relaxed: ordered by the fence.
            if !inner.reclaim_wanted.load(Ordering::Relaxed) {
                break;
            }
            match inner.writer.try_lock() {
                Some(g) => guard = g,
                // Its holder re-checks when it lets go.
                None => break,
            }
        }
        // Unlocked. The fields drop next: `_inside` (out of the map), then `trash`, whose
        // entries' destructors may write the map, and which no writer waiting for the lock
        // should wait for.
    }
}
