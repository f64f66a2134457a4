//! [`CowMap`]'s writes: copy, change, publish, retire.

use super::CowMap;
use crate::sync::Arc;
use std::borrow::Borrow;
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
    /// waits for them. The copy is published even if `f` changes nothing.
    ///
    /// # Panics
    /// If `f` panics, nothing is published and the panic propagates; the map is unchanged and
    /// usable. `f` must not write to or [`trim`](CowMap::trim) the same map (that would wait
    /// for itself forever); reads of it are fine. The same holds for the keys' and values'
    /// `Clone`, `Hash`, `Eq` and `Drop`, which run under the writers' lock too (copying a
    /// version, finding a key, dropping an old version's entries).
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
    /// `Inner::next_version`).
    fn write<R>(&self, f: impl FnOnce(&mut HashMap<K, V, S>) -> (R, Option<(K, bool)>)) -> R {
        let mut retired = self.inner.lock();
        // SAFETY: we hold the writer lock (`current_locked`'s contract).
        let current = unsafe { &*self.inner.current_locked() };
        let mut next = self.inner.next_version(current, &mut retired);
        let version = Arc::get_mut(&mut next).expect("a version not yet published has one holder");
        let (result, change) = f(version.map_mut());
        version.change = change;
        self.inner.publish(&mut retired, next);
        drop(retired);
        result
    }

    /// Inserts `value` under `key` (one copy of the map); returns the value it replaced.
    ///
    /// ```
    /// let map = thrifty::map::CowMap::new();
    /// assert_eq!(map.insert("k", 1), None);
    /// assert_eq!(map.insert("k", 2), Some(1));
    /// ```
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        self.write(|m| {
            let change = (key.clone(), true);
            (m.insert(key, value), Some(change))
        })
    }

    /// Removes `key` (one copy of the map, none if `key` is absent); returns its value.
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
        let mut retired = self.inner.lock();
        // SAFETY: we hold the writer lock (`current_locked`'s contract).
        let current = unsafe { &*self.inner.current_locked() };
        if !current.map().contains_key(key) {
            return None;
        }
        let mut next = self.inner.next_version(current, &mut retired);
        let version = Arc::get_mut(&mut next).expect("a version not yet published has one holder");
        let (owned, removed) = version
            .map_mut()
            .remove_entry(key)
            .expect("the key was in the version copied");
        version.change = Some((owned, false));
        self.inner.publish(&mut retired, next);
        drop(retired);
        Some(removed)
    }
}

impl<K, V, S> CowMap<K, V, S> {
    /// Frees the old versions that writes had to keep because a read was using them then, if
    /// no read uses them now (every write does this too, but keeps one such version to build
    /// its copy in): for a map whose writes have stopped, the memory of every version but the
    /// current one and those still held. Versions a `Reader` or [`Snapshot`](super::Snapshot)
    /// holds stay until it lets go. Takes the writers' lock.
    ///
    /// ```
    /// let map = thrifty::map::CowMap::from_iter([(1, 1)]);
    /// map.trim();
    /// assert_eq!(map.retired_versions(), 0);
    /// ```
    pub fn trim(&self) {
        let mut retired = self.inner.lock();
        self.inner.reclaim(&mut retired);
        drop(retired);
    }
}
