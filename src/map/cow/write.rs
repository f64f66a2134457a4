//! [`CowMap`]'s writes: copy, change, publish, retire.

use super::inner::Locked;
use super::version::Change;
use super::CowMap;
use crate::map::quiet::drop_then;
use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

impl<K, V, S> CowMap<K, V, S>
where
    K: Eq + Hash + Clone,
    V: Clone,
    S: BuildHasher + Clone,
{
    /// Applies `f` to a copy of the current version and publishes the copy: any number of
    /// changes for one copy, seen by readers all at once or not at all. Returns what `f`
    /// returns.
    ///
    /// Writers take turns (a lock among writers only); readers never wait for it, and it never
    /// waits for a read. The copy is published even if `f` changes nothing. What the write
    /// replaces is dropped after the lock is let go, or freed before for plain data (see
    /// [Re-entrancy](CowMap#re-entrancy)); what `f` itself drops (a `remove` whose result it
    /// discards) is dropped under it: return it to drop it after.
    ///
    /// # Panics
    /// - If called from inside a write of the same map: from `f`, from a key's or value's
    ///   `Clone`, `Hash` or `Eq`, or from the hasher's `Clone` or `build_hasher`, while a write
    ///   runs (a write there would wait for itself for ever); likewise
    ///   [`insert`](CowMap::insert), [`remove`](CowMap::remove) and [`trim`](CowMap::trim).
    ///   Reads of the map are fine there. Nothing is published.
    /// - If `f`, or a key's or value's `Clone` or `Hash` while the map is copied, panics,
    ///   nothing is published and the panic propagates; the map is unchanged and usable. The
    ///   unpublished copy is dropped as the panic unwinds, so a value whose copies panic in
    ///   `Drop` then aborts the process, as a `Vec` of them dropped in an unwind does.
    /// - If a key's or value's `Drop` panics while the write frees what it replaced, the write
    ///   has been published and the lock let go; the panic reaches the caller, and the rest of
    ///   what it freed is still dropped (a second panicking `Drop` then aborts, as in `Vec`).
    ///   What the write would have returned (`f`'s result; for `insert` and `remove`, the
    ///   old value) is dropped as the panic unwinds, and a panic from its own `Drop` is let go.
    ///
    /// ```
    /// let map = thrifty::map::CowMap::from_iter([("a", 1)]);
    /// let old = map.update(|m| {
    ///     m.insert("b", 2);
    ///     m.insert("c", 3);
    ///     m.remove("a")
    /// });
    /// assert_eq!(old, Some(1));
    /// assert_eq!((map.len(), map.version()), (2, 1));
    /// ```
    pub fn update<R>(&self, f: impl FnOnce(&mut HashMap<K, V, S>) -> R) -> R {
        self.write(|map| (f(map), None))
    }

    /// Copies the current version, applies `f` to the copy and publishes it, recording the
    /// change `f` reports (an insert's or a remove's, for the next write to replay; see
    /// `Locked::build`).
    fn write<R>(&self, f: impl FnOnce(&mut HashMap<K, V, S>) -> (R, Option<(K, Change)>)) -> R {
        let mut locked = self.inner.lock();
        // SAFETY: we hold the writer lock (`current_locked`'s contract).
        let current = unsafe { &*self.inner.current_locked() };
        let version = locked.build(current);
        let (result, change) = f(version.map_mut());
        // SAFETY: the version is not published yet: ours alone.
        drop(unsafe { version.swap_change(change) });
        locked.publish();
        unlock_returning(locked, result)
    }

    /// Inserts `value` under `key` (a copy of the map, or, where the last write was an `insert`
    /// or `remove` and readers have moved on, a replay of that one entry into the spare: see
    /// [`CowMap`]'s Cost); returns the value it replaced.
    ///
    /// # Panics
    /// As [`update`](CowMap::update).
    ///
    /// ```
    /// let map = thrifty::map::CowMap::new();
    /// assert_eq!(map.insert("k", 1), None);
    /// assert_eq!(map.insert("k", 2), Some(1));
    /// ```
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        self.write(|m| match m.entry(key) {
            // `entry` drops the key passed in when it finds the map's (under the lock, before
            // anything is replaced: if its `Drop` panics, `value` is still the closure's, and
            // the unwind drops it). `insert` would drop it after taking out the old value, which
            // a panic there would leak (rust-lang/rust#47949).
            Entry::Occupied(mut e) => {
                let old = e.insert(value);
                // A clone of the key the map kept: the record keeps no key alive but the map's.
                let record = e.key().clone();
                (Some(old), Some((record, Change::Replaced)))
            }
            Entry::Vacant(e) => {
                let record = e.key().clone();
                e.insert(value);
                (None, Some((record, Change::Inserted)))
            }
        })
    }

    /// Removes `key` (as [`insert`](CowMap::insert) writes: a copy or a replay; nothing if `key`
    /// is absent); returns its value.
    ///
    /// The removed key itself stays recorded in the new version until the next write or
    /// [`trim`](CowMap::trim) (see the type's Memory bullet): a key that holds a resource (a
    /// connection, an `Arc` to unwrap) lets go of it then.
    ///
    /// # Panics
    /// As [`update`](CowMap::update).
    ///
    /// ```
    /// let map = thrifty::map::CowMap::from_iter([("k", 1)]);
    /// assert_eq!(map.remove("k"), Some(1));
    /// assert_eq!(map.remove("k"), None);
    /// assert_eq!(map.version(), 1); // the second remove published nothing
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut locked = self.inner.lock();
        // SAFETY: we hold the writer lock (`current_locked`'s contract).
        let current = unsafe { &*self.inner.current_locked() };
        if !current.map().contains_key(key) {
            return None;
        }
        let version = locked.build(current);
        let (owned, removed) = version.map_mut().remove_entry(key).expect(
            "CowMap::remove: the key is in the current version but not in its copy: the key \
                 type's Clone, Hash and Eq disagree (a clone must equal its original and hash \
                 as it does)",
        );
        // SAFETY: the version is not published yet: ours alone.
        drop(unsafe { version.swap_change(Some((owned, Change::Removed))) });
        locked.publish();
        unlock_returning(locked, Some(removed))
    }
}

/// Lets go of a write's lock, freeing what the write replaced (after unlocking unless plain
/// data), and returns `result`. If a key's or value's `Drop` panics in the free, `result` is
/// dropped quietly as that panic unwinds (`drop_then`): escaping, a panic from its own `Drop`
/// would abort the process, as a copy of a value that panics in `Drop` (what `insert` and
/// `remove` return) did.
fn unlock_returning<K, V, S, R>(locked: Locked<'_, K, V, S>, result: R) -> R {
    drop_then(locked, result)
}

impl<K, V, S> CowMap<K, V, S> {
    /// Frees the old versions that writes had to keep because a read was using them then (or kept
    /// as the next write's spare), if no read uses them now (every write does this too, but keeps
    /// one such version to build its copy in): for a map whose writes have stopped, the memory of
    /// every version but the current one and those still held, and the key the current version
    /// recorded for the next write's replay (that write then copies the map). Versions a `Reader`
    /// or [`Snapshot`](super::Snapshot) holds stay until it lets go. Takes the writers' lock, scans
    /// every hazard slot under it and drops what it frees after letting go (before, for plain
    /// data).
    ///
    /// # Panics
    /// If called from inside a write of the same map (see [`update`](CowMap::update)). If an
    /// entry's `Drop` panics, after the rest are dropped.
    ///
    /// ```
    /// let map = thrifty::map::CowMap::from_iter([(1, 1)]);
    /// map.trim();
    /// assert_eq!(map.retired_versions(), 0);
    /// ```
    pub fn trim(&self) {
        let mut locked = self.inner.lock();
        locked.reclaim();
        locked.forget_change();
        // Unlocks and frees (in that order unless plain data).
        drop(locked);
    }

    /// Publishes `map` as the next version, as it is: a configuration reloaded from a file, a
    /// routing table built off to the side (arc-swap's `store`). Nothing is copied, where
    /// `update(|m| *m = map)` would copy the current version first and throw the copy away,
    /// and no `Clone` is asked of keys, values or hasher.
    ///
    /// Readers see the old version or `map`, never a mix, as for any write; the old version
    /// is retired as a write's is (freed once no read uses it, or kept as the next write's
    /// spare), and the next write copies `map`. Its hasher is `map`'s own: build it with
    /// `HashMap::with_hasher` (the default `S` is [`FastRandomState`](crate::map::FastRandomState),
    /// whose `default` seeds a new one; any seed works).
    ///
    /// # Allocation and cost
    /// One allocation (the version's `Arc`, which moves `map` in; the map's first write of any
    /// kind also allocates the writers' list of retired versions), the writers' lock, and the
    /// retirement every write does; nothing proportional to the map.
    ///
    /// # Panics
    /// As [`update`](CowMap::update): from inside a write of the same map, before anything is
    /// published; or if a key's or value's `Drop` panics while what it replaced is freed,
    /// after `map` is published.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use thrifty::map::{CowMap, FastRandomState};
    ///
    /// let config = CowMap::from_iter([("timeout_ms", 500), ("retries", 3)]);
    /// let mut reader = config.reader();
    /// let mut reloaded = HashMap::with_hasher(FastRandomState::default());
    /// reloaded.insert("timeout_ms", 250);
    /// config.store(reloaded);
    /// assert_eq!(reader.get_cloned("timeout_ms"), Some(250));
    /// assert_eq!(reader.get_cloned("retries"), None, "the whole map was replaced");
    /// assert_eq!(config.version(), 1);
    /// ```
    pub fn store(&self, map: HashMap<K, V, S>) {
        self.store_with(|_| map);
    }

    /// Publishes an empty map with the current version's hasher: [`store`](CowMap::store) of
    /// nothing, with no copy of the entries (where `update(|m| m.clear())` would copy them
    /// first). The old entries are freed as any replaced version's are.
    ///
    /// # Allocation and cost
    /// As `store`: one block (the version; an empty table allocates nothing), and a clone of
    /// the hasher.
    ///
    /// # Panics
    /// As [`store`](CowMap::store).
    ///
    /// ```
    /// let sessions = thrifty::map::CowMap::from_iter([(1, "ada"), (2, "bob")]);
    /// sessions.clear();
    /// assert!(sessions.is_empty());
    /// assert_eq!(sessions.version(), 1);
    /// ```
    pub fn clear(&self)
    where
        S: Clone,
    {
        self.store_with(|current| HashMap::with_hasher(current.hasher().clone()));
    }

    /// Publishes the map `next` makes from the current version's, under the writers' lock.
    fn store_with(&self, next: impl FnOnce(&HashMap<K, V, S>) -> HashMap<K, V, S>) {
        let mut locked = self.inner.lock();
        // SAFETY: we hold the writer lock (`current_locked`'s contract).
        let current = unsafe { &*self.inner.current_locked() };
        let map = next(current.map());
        locked.build_from(current, map);
        locked.publish();
        // Unlocks and frees what the write replaced (in that order unless plain data).
        drop(locked);
    }
}
