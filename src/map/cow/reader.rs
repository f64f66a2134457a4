//! [`Reader`]: a per-thread read handle that keeps the version it last read.

use super::hazard::{self, Held};
use super::inner::Inner;
use super::version::{released, Version};
use super::Snapshot;
use crate::map::FastRandomState;
use crate::sync::{Arc, AtomicPtr, Ordering};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::mem::ManuallyDrop;
use std::panic::{RefUnwindSafe, UnwindSafe};

/// The fastest way to read a [`CowMap`](super::CowMap): a handle, one per thread, that holds
/// the version it last read and checks with one atomic load that it is still current.
///
/// # When to use
/// A thread that reads the map in a loop (a request handler, a worker). Make one per thread
/// with [`CowMap::reader`](super::CowMap::reader) and keep it.
///
/// # When not to use
/// - One-off reads: [`CowMap::read`](super::CowMap::read) needs no handle.
/// - One per connection or request, by the thousand: each `Reader` alive at once adds a
///   hazard slot that every later write, `trim` and `Reader` drop scans, for the map's whole
///   life (see *Cost*). Share one per thread.
///
/// A `Reader` left idle holds on to the version it last read (at most one old version, until
/// its next read or drop). While that version is old, a write finds no spare to build in
/// unless another reader moved on since the last write (the map keeps at most one old version
/// per reader, and this reader's is taken): with no other reader, every write copies the whole
/// map into a new table. Before a reader idles, [`let_go`](Reader::let_go) lets go of its
/// version (the `Reader` stays usable: its next read takes the current one), and the map then
/// keeps a spare for it that writes build in. [`refresh`](Reader::refresh) takes the current
/// version instead, which the next write makes old. Drop readers you stop using.
///
/// # Examples
/// ```
/// let map = thrifty::map::CowMap::from_iter([("timeout_ms", 100)]);
/// let mut reader = map.reader();
/// assert_eq!(reader.get_cloned("timeout_ms"), Some(100));
/// map.insert("timeout_ms", 250);
/// assert_eq!(reader.get_cloned("timeout_ms"), Some(250)); // sees the write on its next read
/// ```
///
/// # Allocation
/// None (`tests/alloc_map_cow.rs`), except the hazard slot it keeps for its life, which the map
/// adds if no slot a dropped `Reader` gave back is free (a `CachePadded` block: 128 bytes on x86-64
/// and aarch64, kept until the map drops; see [`CowMap`](super::CowMap)), and a drop that frees
/// more than 4 old versions at once (several `Reader`s held distinct ones), which gathers them in a
/// heap buffer until they are freed. Reads never free: the old version a read lets go of stays for
/// the next write to copy into (or to free). Dropping a `Reader` frees the old versions only it
/// held (after letting go of the writers' lock, before for plain data), or has the write in
/// progress free them; it never waits for a writer.
///
/// # Cost
/// While no write happened since its last read: one load of a cache line that writers write
/// only when they publish, a compare, then the lookup; no atomic read-modify-write, nothing
/// written. The first read after a write moves the reader's own hazard slot to the new
/// version (a store, a full fence and a re-load) and lets go of the old one by that same
/// store: no reference count, no line that other readers write. `cargo bench --bench map_cow
/// -- refresh` times that first read against a read with nothing changed, with a floor row for
/// criterion's clock reads (the repository's JOURNAL.md has the figures).
///
/// Making one: a slot off the stack of those dropped `Reader`s gave back (a lock among
/// `Reader`s being made, held for a few instructions), or a new slot: `O(1)` however many are
/// alive. Dropping one: a store and a push (lock-free); then, if old versions wait to be
/// freed, a scan of every hazard slot under the writers' lock, if it is free. The map keeps a
/// slot for each `Reader` that was alive at once, and every write scans them all: the cost of
/// a write grows with the most `Reader`s ever alive at once, not with those alive now.
pub struct Reader<K, V, S = FastRandomState> {
    inner: Arc<Inner<K, V, S>>,
    /// This reader's hazard slot in `inner`'s registry, held for the reader's life (given back
    /// in `drop`, hence `ManuallyDrop`): it protects `cached`, so a writer keeps that version
    /// while it is here.
    slot: ManuallyDrop<Held<Version<K, V, S>>>,
    /// The version this reader last read, protected by `slot`, so its address cannot be
    /// reused while we compare `current` against it; or, after `let_go`, the marker the slot
    /// holds (`version::released`), which no version's address equals, never followed.
    cached: *const Version<K, V, S>,
}

// SAFETY: a `Reader` is an `Arc<Inner>` plus a pointer into that `Inner` (its slot) and a
// version the slot keeps alive: it shares what a `Snapshot` (an `Arc<Version>`) and the map
// share, so it may cross threads exactly when they may.
unsafe impl<K, V, S> Send for Reader<K, V, S> where Arc<Version<K, V, S>>: Send + Sync {}
// SAFETY: as for `Send`. Only `refresh_slow` and `let_go` (`&mut self`) move `cached`, so
// while a `&Reader` is shared between threads `cached` stays put and the slot keeps its
// version alive: the reads through `&self` (`Debug`) read a version that cannot be freed, as a
// `Snapshot`'s reads do; the others take `&mut self`.
unsafe impl<K, V, S> Sync for Reader<K, V, S> where Arc<Version<K, V, S>>: Send + Sync {}

// As for `CowMap`: a panic leaves the map on a whole version, and a reader's own state (its
// slot and the version it holds) changes only by whole moves.
impl<K: RefUnwindSafe, V: RefUnwindSafe, S: RefUnwindSafe> UnwindSafe for Reader<K, V, S> {}
impl<K: RefUnwindSafe, V: RefUnwindSafe, S: RefUnwindSafe> RefUnwindSafe for Reader<K, V, S> {}

impl<K, V, S> Reader<K, V, S> {
    pub(super) fn new(inner: &Arc<Inner<K, V, S>>) -> Self {
        let (slot, cached) = inner.hazards.claim_held(&inner.current);
        Self {
            slot: ManuallyDrop::new(slot),
            cached,
            inner: inner.clone(),
        }
    }

    /// The slot, which lives as long as `inner`'s registry.
    fn slot(&self) -> &AtomicPtr<Version<K, V, S>> {
        // SAFETY: slots are freed only when the registry drops, with `Inner`, which our `Arc`
        // keeps alive.
        unsafe { self.slot.slot() }
    }

    /// The current version, taking it if a write replaced the one we hold.
    #[inline(always)]
    fn current(&mut self) -> &Version<K, V, S> {
        // Relaxed: nothing is read through the loaded pointer; it is only compared with the
        // version our slot protects (whose address cannot be reused while it does). If it
        // differs, `refresh_slow` loads it again with the hazard protocol's orderings. Loads
        // of one atomic never go back in its modification order, so neither do our versions.
        let current = self.inner.current.load(Ordering::Relaxed);
        if current.cast_const() != self.cached {
            self.refresh_slow();
        }
        // SAFETY: `cached` was confirmed current after our slot held it (`protect_in`), so
        // no writer frees it while the slot does, and the slot moves on only in
        // `refresh_slow`, which needs `&mut self`, so not while this borrow lives. (After
        // `let_go`, `cached` is the marker, which `current` never equals: `refresh_slow` ran.)
        unsafe { &*self.cached }
    }

    /// Moves our slot to the current version: the old one is no longer protected by us, and
    /// the next write reuses or frees it. No reference count, no read-modify-write.
    #[cold]
    #[inline(never)]
    fn refresh_slow(&mut self) {
        self.cached = hazard::protect_in(self.slot(), &self.inner.current);
    }

    /// Takes the current version now, letting go of the one held.
    pub fn refresh(&mut self) {
        self.current();
    }

    /// Lets go of the version this reader holds, for a reader about to sit idle. The `Reader`
    /// stays usable: its next read takes the current version (as the first read after a write
    /// does); to give up the handle, drop it.
    ///
    /// A reader idling on an old version leaves writes no spare to build in (the map keeps one old
    /// version per reader, and this one's is taken), so unless another reader moves on between
    /// writes, every write copies the whole map into a new table. One that let go holds none, and
    /// the map keeps a spare for it: from the second write on, writes build in it (an `insert` or
    /// `remove` after an `insert` or `remove` replays one entry; other writes copy the map into
    /// it), and for keys and values without heap or drop glue they allocate nothing. It does not
    /// lower memory: the map keeps the current version and that spare until
    /// [`trim`](super::CowMap::trim), or until a `Reader`'s drop leaves no reader on the current
    /// version or let go. A store to the reader's own slot; nothing is freed here.
    ///
    /// ```
    /// let map = thrifty::map::CowMap::from_iter([(1, 10)]);
    /// let mut reader = map.reader();
    /// assert_eq!(reader.get_cloned(&1), Some(10));
    /// reader.let_go(); // about to wait for work
    /// map.insert(1, 11); // keeps the version it replaced as the spare
    /// map.insert(1, 12); // replays into the spare: no copy of the map
    /// assert_eq!(reader.get_cloned(&1), Some(12));
    /// ```
    #[doc(alias = "release")]
    #[doc(alias = "unpin")]
    #[doc(alias = "reset_protection")]
    pub fn let_go(&mut self) {
        let released = released();
        // Release: lets go of `cached`, as moving the slot does (`hazard::protect_in`): a
        // writer that reads the marker also sees our reads through the version we held.
        self.slot().store(released, Ordering::Release);
        self.cached = released;
    }

    /// The current version's whole map, for several reads or iteration without a snapshot's
    /// reference count. The borrow ends before the next read refreshes it.
    ///
    /// ```
    /// let map = thrifty::map::CowMap::from_iter([(1, 10), (2, 20)]);
    /// let mut reader = map.reader();
    /// assert_eq!(reader.map().values().sum::<i32>(), 30);
    /// ```
    #[inline]
    pub fn map(&mut self) -> &HashMap<K, V, S> {
        self.current().map()
    }

    /// The current version as a [`Snapshot`] (one reference-count increment).
    #[must_use = "a snapshot does nothing unless read"]
    pub fn snapshot(&mut self) -> Snapshot<K, V, S> {
        self.current();
        // The pointer as loaded, not one made from a reference: `Arc` reaches the counts in
        // front of the version.
        let version = self.cached;
        // SAFETY: `version` came from `Arc::into_raw` (every published version does) and our
        // slot keeps it alive while we add the count that `from_raw` then takes.
        Snapshot::new(unsafe {
            Arc::increment_strong_count(version);
            Arc::from_raw(version)
        })
    }

    /// The number of entries in the current version.
    #[inline]
    pub fn len(&mut self) -> usize {
        self.map().len()
    }

    /// Whether the current version is empty.
    #[inline]
    pub fn is_empty(&mut self) -> bool {
        self.map().is_empty()
    }

    /// The current version's number (see [`CowMap::version`](super::CowMap::version)).
    #[inline]
    pub fn version(&mut self) -> u64 {
        self.current().seq
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> Reader<K, V, S> {
    /// Runs `f` on the value for `key` in the current version, if there is one.
    ///
    /// ```
    /// let map = thrifty::map::CowMap::from_iter([("a", String::from("xyz"))]);
    /// let mut reader = map.reader();
    /// assert_eq!(reader.read("a", |s| s.len()), Some(3));
    /// ```
    #[inline]
    pub fn read<Q, R>(&mut self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map().get(key).map(f)
    }

    /// A clone of the value for `key` in the current version.
    #[inline]
    pub fn get_cloned<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.read(key, V::clone)
    }

    /// Whether the current version holds `key`.
    #[inline]
    pub fn contains_key<Q>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map().contains_key(key)
    }
}

impl<K, V, S> Drop for Reader<K, V, S> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once, and the slot is not touched after this.
        let slot = unsafe { ManuallyDrop::take(&mut self.slot) };
        // SAFETY: the slot came from this registry's `claim_held` (in `new`), and this is its
        // last use.
        unsafe { self.inner.hazards.release_held(slot) };
        // Old versions only this reader held, or left since the last write, are freed now
        // (or by the writer lock's holder), but for the newest if another `Reader` is on the
        // current version or let go (the spare, counted against it): one per live reader holds.
        self.inner.reader_gone();
    }
}

impl<K, V, S> Clone for Reader<K, V, S> {
    /// Another handle on the same map, starting at the current version.
    fn clone(&self) -> Self {
        Self::new(&self.inner)
    }
}

impl<K, V, S> fmt::Debug for Reader<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Reader");
        if self.cached == released() {
            d.field("version", &format_args!("none (let go)"));
        } else {
            // SAFETY: as in `current`: our slot protects `cached` (`&self`: it stays).
            d.field("version", &unsafe { &*self.cached }.seq);
        }
        d.finish_non_exhaustive()
    }
}
