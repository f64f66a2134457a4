//! [`CowMap`]: the type, its constructors, its reads and its metrics. Writes are in `write.rs`.

use super::inner::Inner;
use super::{Reader, Snapshot};
use crate::map::FastRandomState;
use crate::sync::{Arc, Ordering};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::panic::{RefUnwindSafe, UnwindSafe};

/// A copy-on-write hash map whose readers never wait: each write copies the map, changes the
/// copy and publishes it atomically; reads go to whichever version is current.
///
/// # When to use
/// Data read on every request and written rarely: configuration, routing tables, feature flags,
/// allow-lists. Reads never block, never spin on a writer and never write a cache line that another
/// reader writes; a [`Reader`] handle reads with no atomic read-modify-write at all. Writers never
/// wait for reads, nor for destructors another call runs: old versions (and the entries a write
/// displaces) are dropped by the write, [`trim`](CowMap::trim) or `Reader` drop that freed them,
/// after it has let go of the writers' lock, so a value's `Drop` may also write the map (plain
/// data, which no `Drop` runs for, is freed before letting go). A writer does wait for another
/// holder of the lock: a write, or a dropped `Reader` scanning the hazard slots (see *Cost*).
/// [`update`](CowMap::update) applies a batch of changes with one copy, and readers see all of it
/// or none; [`store`](CowMap::store) publishes a whole map built elsewhere (a reloaded
/// configuration, as arc-swap's `store`) with no copy at all.
///
/// # When not to use
/// - Write-heavy data: a write copies the whole map (`O(len)` time: a table with over four times
///   the room its entries need is rebuilt to fit them rather than copied; and a second map's
///   memory while readers hold the old one), except where the previous write was one `insert` or
///   `remove` and readers have kept up (every `Reader` refreshed or let go since, no `Snapshot`
///   holding the old version): then the write replays that one entry into the spare table and
///   costs one entry (see Cost). A write after an `update` or a `store`, or one whose readers
///   lag, copies; `store` itself copies nothing. When writes are frequent, or keys are written
///   from many threads, a sharded lock map (`RwLock<HashMap>` per shard, or `dashmap`/`papaya`)
///   costs less.
/// - Very large maps written often by `update`, or whose readers idle on old versions: a map of
///   a million entries then copies megabytes per write. Batch writes with `update`, or use a
///   concurrent map.
/// - Values that must change in place (counters, queues): a write replaces values; put an
///   atomic in the value instead, or use a lock.
///
/// # Examples
/// ```
/// use thrifty::map::CowMap;
///
/// let routes: CowMap<String, u16> = CowMap::new();
/// routes.insert("api".to_string(), 8080);
/// routes.update(|m| {
///     // one copy, published at once
///     m.insert("web".to_string(), 80);
///     m.remove("api");
/// });
/// assert_eq!(routes.get_cloned("web"), Some(80));
///
/// let mut reader = routes.reader(); // per thread: the fastest reads
/// assert_eq!(reader.read("web", |port| port + 1), Some(81));
///
/// let snap = routes.snapshot(); // a consistent view for several reads
/// routes.insert("new".to_string(), 1);
/// assert_eq!(snap.len(), 1); // still the old version
/// ```
///
/// # Allocation
/// - **Reads**: nothing (`tests/alloc_map_cow.rs`), except the first time more reads run at once
///   than ever before (about: a read adds a slot when it finds every slot busy as it walks them,
///   which reads that end and start again behind it can make it find with fewer at once), which
///   adds a hazard slot (a `CachePadded` block: 128 bytes on x86-64 and aarch64, kept until the
///   map drops); a [`Reader`] does the same when more `Reader`s are alive
///   at once than ever before.
/// - **A write that has a spare** (the newest old version no read can reach any more; one write,
///   then readers refreshing, has one for every write): nothing, for keys, values and hasher with
///   no heap inside and no drop glue (`tests/alloc_map_cow.rs`: zero over 100 such rounds). With
///   drop glue, a write that copies the whole map builds a new table beside the spare (one
///   allocation, besides what the clones allocate); an `insert` or `remove` that replays into the
///   spare allocates only what cloning its key and value does (a `String` key allocates on each
///   clone).
/// - **A write with no spare** (no reader refreshed since the last write, a [`Reader`] idles
///   holding an old version, or a [`Snapshot`] holds it): its copy of the table and one block for
///   the version, for a batch of any size in one `update`. A `Reader` about to idle should
///   [`let_go`](Reader::let_go) of its version, so that writes build in a spare.
/// - **[`store`](CowMap::store) and [`clear`](CowMap::clear)**: one block (the version), whatever
///   the map's size.
/// - **Retained**: the current version, plus at most one old version per live [`Reader`] or
///   [`Snapshot`] or read in progress, and the one a write in progress replaces (with drop glue,
///   plus one write's worth per writer thread made to wait while it frees; and one recorded
///   key): a map whose readers refresh holds two copies between writes.
///   [`retired_versions`](CowMap::retired_versions) counts them; [`trim`](CowMap::trim) frees
///   what no read holds.
///
/// Which version is kept as the spare, who frees what and when, the recorded key and the extra
/// versions of drop glue: the module doc's "Allocation and cost, in detail".
///
/// # Cost
/// - **[`Reader`] reads**: one load of the map's current-version pointer (a cache line written
///   only when a write publishes), a compare, then the hash lookup; after a write, a store to the
///   reader's own hazard slot, a full fence and a re-load. No reference count, no
///   read-modify-write.
/// - **`read`, `get_cloned`, `contains_key`, `len`** on the map: one CAS, one full fence and one
///   store on a hazard slot's line, around the lookup. The slot is the one the calling thread
///   took last in this map if it is free (each thread keeps such hints for up to 8 maps), so
///   threads that read at once each keep to a line of their own: about `ArcSwap::load`'s time
///   on 1 and 2 threads, and about 5 times a `Reader`'s. A thread that reads more maps by
///   turns (or two whose hints share an entry) takes the first free slot from the newest, a
///   line the threads doing the same share. Hot loops want a [`Reader`].
/// - **[`snapshot`](CowMap::snapshot)**: as `read`, plus one reference-count increment.
/// - **Writes**, one at a time under the writers' lock: a clone of the whole map (`O(len)`), or,
///   for an [`insert`](CowMap::insert) or [`remove`](CowMap::remove) in the steady pattern (one
///   write, then readers refreshing; not after an [`update`](CowMap::update)), a replay of one
///   entry: at 100 k `u64` entries about 1 µs, where a copying one takes about 45 µs (the write
///   column of `cargo bench --bench map_cow -- table`). [`store`](CowMap::store) clones nothing.
/// - **Every write, [`trim`](CowMap::trim) and `Reader` drop** scans the hazard slots:
///   `O(most Readers ever alive at once)`, for the map's whole life. Share `Reader`s per thread
///   (or per worker), not per connection or request. Making a `Reader` is `O(1)`.
///
/// `cargo bench --bench map_cow -- map_cow/read` (2 reader threads, 1 k and 100 k `u64`
/// entries, every candidate on [`FastRandomState`]), ranges across runs on a shared 2-core
/// machine: with no writer a `Reader` read ties an `arc_swap::Cache` read (0.96x-1.12x its
/// time), and with a writer active it takes 1/10-1/12.8 of parking_lot's `RwLock<HashMap>`'s
/// time at 1 k entries and 1/5.5 (a write every 100 µs) to 1/8.3 (every 1 ms) at 100 k. At
/// 100 k with a writer it takes 0.29x-0.40x `Cache`'s time: an `insert` replays into the
/// version readers let go of, where `ArcSwap`'s writer copies the whole map back to back.
/// Plain `read` (a hazard slot claimed and freed per lookup) takes about `ArcSwap::load`'s time,
/// about 5 times a `Reader`'s: use a `Reader` in hot loops.
///
/// The default hasher is [`FastRandomState`] (foldhash, randomly seeded), as for
/// [`ShardedMap`](crate::map::ShardedMap); for keys an adversary chooses, pass std's SipHash
/// with [`with_hasher`](CowMap::with_hasher) (`std::hash::RandomState::new()`): see
/// [`FastRandomState`] for the trade-off.
///
/// # Re-entrancy
/// A write holds the writers' lock while it copies the map and runs an `update`'s closure, so a
/// write ([`insert`](CowMap::insert), [`remove`](CowMap::remove), `update`) or
/// [`trim`](CowMap::trim) of the same map from there would wait for itself. It panics instead,
/// before it locks: from inside an `update`'s closure, a key's or value's `Clone`, `Hash` or `Eq`,
/// or the hasher's `Clone` or `build_hasher`, while a write runs (a per-thread mark, as for
/// [`ShardedMap`](crate::map::ShardedMap); one thread can be inside the closures of at most 8 maps
/// at once). Reads, `Reader`s and `Snapshot`s of the map, and writes of other maps, are fine there.
/// A value's (or the hasher's) `Drop` may write the map when a write, `trim`, `Snapshot` or
/// `Reader` frees it: that runs after the lock is let go, as does a key a write or `trim` lets go
/// of. Only what the closure itself drops (a `remove` whose result it discards) and the key an
/// `insert` of a present key drops are dropped under the lock, and, as a panic in a write unwinds,
/// what the call held there (what a panicking `Clone` had cloned of a half-made copy; the key and
/// value an `insert` was given; for an `insert` of a present key whose key `Clone` panics, the
/// value it displaced): a `Drop` that writes the map there panics in the unwind, which aborts.
///
/// The check is per thread: it cannot see an `update`'s closure that waits for *another*
/// thread (a channel, a `join`, a scoped thread) which writes or trims this map; both then
/// wait for ever, undetected. Reads from that thread never wait. Do not block inside a
/// closure on work that writes the same map.
///
/// # Thread safety
/// A `CowMap`, its [`Snapshot`]s and [`Reader`]s are `Send` and `Sync` when `K`, `V` and `S`
/// all are: readers on any thread share the versions, and whichever thread lets go of a
/// version last drops it. So a map of `Rc`s stays on its thread:
/// ```compile_fail
/// let map = thrifty::map::CowMap::<u8, std::rc::Rc<u8>>::new();
/// std::thread::spawn(move || map.len()); // error: `Rc<u8>` cannot be shared between threads
/// ```
pub struct CowMap<K, V, S = FastRandomState> {
    pub(super) inner: Arc<Inner<K, V, S>>,
}

// A panic leaves the map on a whole version: a write builds its copy aside and publishes it
// with one swap, so a panicking closure, `Clone` or `Hash` publishes nothing, and readers never
// see a version change. Entries are shared read-only, hence the bounds (as `HashMap`'s).
impl<K: RefUnwindSafe, V: RefUnwindSafe, S: RefUnwindSafe> UnwindSafe for CowMap<K, V, S> {}
impl<K: RefUnwindSafe, V: RefUnwindSafe, S: RefUnwindSafe> RefUnwindSafe for CowMap<K, V, S> {}

impl<K, V> CowMap<K, V, FastRandomState> {
    /// An empty map with the module's default hasher, [`FastRandomState`].
    ///
    /// ```
    /// let flags: thrifty::map::CowMap<&str, bool> = thrifty::map::CowMap::new();
    /// assert!(flags.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_hasher(FastRandomState::new())
    }

    /// A map holding `entries` (a later duplicate key wins), with the default hasher.
    /// For another hasher, `collect()` into a `CowMap<K, V, S>` (it implements
    /// `FromIterator` for every `S: BuildHasher + Default`).
    ///
    /// ```
    /// let map = thrifty::map::CowMap::from_iter([("a", 1), ("b", 2)]);
    /// assert_eq!(map.len(), 2);
    /// ```
    // Inherent as well as `FromIterator`, so `CowMap::from_iter(..)` infers the default hasher
    // (std's `HashMap` has `From<[(K, V); N]>` for the same reason).
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self
    where
        K: Eq + Hash,
    {
        Self::from_map(entries.into_iter().collect())
    }
}

impl<K, V, S> CowMap<K, V, S> {
    /// An empty map that hashes with `hasher`.
    ///
    /// ```
    /// use std::hash::BuildHasherDefault;
    /// use std::collections::hash_map::DefaultHasher;
    /// let hasher = BuildHasherDefault::<DefaultHasher>::default();
    /// let map = thrifty::map::CowMap::<u64, u64, _>::with_hasher(hasher);
    /// map.insert(1, 2);
    /// assert_eq!(map.get_cloned(&1), Some(2));
    /// ```
    pub fn with_hasher(hasher: S) -> Self {
        Self::from_map(HashMap::with_hasher(hasher))
    }

    /// A map whose first version is `map`, without copying it.
    pub fn from_map(map: HashMap<K, V, S>) -> Self {
        Self {
            inner: Arc::new(Inner::new(map)),
        }
    }

    /// A handle for one thread's reads: it keeps the version it last read and checks with one
    /// load that it is still current, so its reads perform no atomic read-modify-write. It
    /// keeps at most one old version alive until its next read (or its drop).
    ///
    /// A `Reader` shares the map's state, so it may outlive the map (it then reads the last
    /// version) and move to another thread. Making one is `O(1)`; but each `Reader` alive at
    /// once adds a hazard slot that every later write scans, for the map's life: keep one per
    /// thread, not one per connection or request (see [`Reader`]).
    ///
    /// ```
    /// let map = thrifty::map::CowMap::from_iter([(1, "one")]);
    /// let mut reader = map.reader();
    /// std::thread::spawn(move || assert_eq!(reader.get_cloned(&1), Some("one")))
    ///     .join()
    ///     .unwrap();
    /// ```
    #[must_use = "a reader does nothing unless read through"]
    pub fn reader(&self) -> Reader<K, V, S> {
        Reader::new(&self.inner)
    }

    /// The current version, as an immutable view that later writes do not change: for several
    /// reads that must agree, and for iteration. Cheap to clone; `Send + Sync` when the map is.
    ///
    /// ```
    /// let map = thrifty::map::CowMap::from_iter([("a", 1), ("b", 2)]);
    /// let snap = map.snapshot();
    /// map.remove("a");
    /// let total: i32 = snap.values().sum();
    /// assert_eq!(total, 3);
    /// ```
    #[must_use = "a snapshot does nothing unless read"]
    pub fn snapshot(&self) -> Snapshot<K, V, S> {
        Snapshot::new(self.inner.load())
    }

    /// The number of entries in the current version.
    pub fn len(&self) -> usize {
        self.inner.with(|v| v.map().len())
    }

    /// Whether the current version is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current version's number: 0 for the first, one more per write.
    pub fn version(&self) -> u64 {
        self.inner.with(|v| v.seq)
    }

    /// How many versions older than the current one are still alive: those a [`Reader`] or
    /// [`Snapshot`] holds, those a `Reader` or a read held when a write replaced them, and the one
    /// a write kept because a read already held the new version (or a `Reader` had let go), or a
    /// `Reader`'s drop kept for a `Reader` on the current version (the next write reuses the
    /// newest such one that no read holds any more, the spare, and frees the others;
    /// [`trim`](CowMap::trim) frees them all). At most one per live `Reader` and `Snapshot`, and
    /// per read in progress now or at the last write, plus the one a write in progress replaces;
    /// when keys, values or the hasher have drop glue, plus those a write or a `Reader`'s drop
    /// let go of and frees after unlocking, so that no destructor runs under the lock (one
    /// write's worth per thread that waits to run between the two). One relaxed load.
    ///
    /// ```
    /// let map = thrifty::map::CowMap::from_iter([(1, 1)]);
    /// let snap = map.snapshot();
    /// map.insert(2, 2);
    /// assert_eq!(map.retired_versions(), 1); // `snap` holds the first version
    /// drop(snap);
    /// assert_eq!(map.retired_versions(), 0);
    /// ```
    pub fn retired_versions(&self) -> usize {
        // Relaxed: a statistic; the current version always counts itself.
        self.inner.alive.load(Ordering::Relaxed).saturating_sub(1)
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> CowMap<K, V, S> {
    /// Runs `f` on the value for `key` in the current version, if there is one.
    ///
    /// The version stays alive while `f` runs (a write that replaces it meanwhile leaves it
    /// to a later write to free), so keep `f` short. In a hot loop, a [`Reader`] is faster.
    ///
    /// ```
    /// let map = thrifty::map::CowMap::from_iter([("limit", vec![1, 2, 3])]);
    /// assert_eq!(map.read("limit", |v| v.len()), Some(3));
    /// assert_eq!(map.read("other", |v| v.len()), None);
    /// ```
    #[inline]
    pub fn read<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.with(|v| v.map().get(key).map(f))
    }

    /// A clone of the value for `key` in the current version.
    #[inline]
    pub fn get_cloned<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.read(key, V::clone)
    }

    /// Whether the current version holds `key`.
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.with(|v| v.map().contains_key(key))
    }
}

impl<K, V> Default for CowMap<K, V, FastRandomState> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> From<HashMap<K, V, S>> for CowMap<K, V, S> {
    fn from(map: HashMap<K, V, S>) -> Self {
        Self::from_map(map)
    }
}

impl<K: Eq + Hash, V, S: BuildHasher + Default> FromIterator<(K, V)> for CowMap<K, V, S> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::from_map(iter.into_iter().collect())
    }
}

impl<K, V, S> fmt::Debug for CowMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (len, version) = self.inner.with(|v| (v.map().len(), v.seq));
        f.debug_struct("CowMap")
            .field("len", &len)
            .field("version", &version)
            .field("retired_versions", &self.retired_versions())
            .field("hazard_slots", &self.inner.hazards.slots())
            .field("reader_slots", &self.inner.hazards.held_slots())
            .finish_non_exhaustive()
    }
}

impl<K, V, S> Drop for CowMap<K, V, S> {
    fn drop(&mut self) {
        // Readers may keep the shared state alive; free what they do not hold now (as `trim`,
        // without its re-entrancy check: no write of this map can be running on this thread).
        let mut locked = self.inner.lock_unmarked();
        locked.reclaim();
        drop(locked);
    }
}
