//! Single-key operations: each hashes the key once, locks the one shard the hash picks, and runs
//! any closure with that shard locked.

use super::ShardedMap;
use crate::map::quiet::{drop_then, drop_two_then};
use hashbrown::hash_table::{Entry, OccupiedEntry};
use hashbrown::HashTable;
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::mem;

/// What [`ShardedMap::compute`]'s closure asks the map to do with the key's entry.
///
/// `compute` returns the value a `Set` replaced or a `Remove` removed, and `None` for `Keep`.
///
/// Use it with `compute` when one locked step must decide between keeping, replacing and
/// removing an entry (decrement and remove at zero, say); for an unconditional change `insert`,
/// `remove` or `update` read more plainly.
///
/// # Examples
/// ```
/// use thrifty::map::{Compute, ShardedMap};
///
/// let map = ShardedMap::new();
/// assert_eq!(map.compute("k", |_| Compute::Set(1)), None); // inserted
/// assert_eq!(map.compute("k", |_| Compute::Set(2)), Some(1)); // replaced
/// assert_eq!(map.compute("k", |v| { *v.unwrap() += 1; Compute::Keep }), None);
/// assert_eq!(map.compute("k", |_| Compute::Remove), Some(3));
/// assert!(map.is_empty());
/// ```
///
/// # Allocation and cost
/// None of its own: `Set` moves the value into the map, which may grow the shard's table (one
/// allocation) if the key is new. `Keep` and `Remove` never allocate, present key or absent
/// (`tests/alloc_map_sharded.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compute<V> {
    /// Leave the entry as it is (changed in place through the `&mut V`, or still absent).
    Keep,
    /// Insert this value, or replace the present one.
    Set(V),
    /// Remove the entry, if present.
    Remove,
}

impl<K: Hash + Eq, V, S: BuildHasher> ShardedMap<K, V, S> {
    /// Runs `f` on the value for `key` under the shard's shared lock; `None` if absent.
    ///
    /// Readers of one shard run in parallel; a writer of that shard waits for them. Keep `f`
    /// short: it holds the lock.
    ///
    /// # Panics
    /// If called from inside a closure running on this map (see
    /// [Re-entrancy](ShardedMap#re-entrancy)).
    ///
    /// # Examples
    /// ```
    /// let map = thrifty::map::ShardedMap::new();
    /// map.insert("k".to_string(), vec![1, 2, 3]);
    /// assert_eq!(map.read("k", |v| v.len()), Some(3)); // borrowed lookup: &str for String
    /// assert_eq!(map.read("x", |v| v.len()), None);
    /// ```
    #[inline]
    pub fn read<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let table = self.shard(hash).read(self.id());
        let found = table.find(hash, |(k, _)| k.borrow() == key);
        found.map(|(_, v)| f(v))
    }

    /// A clone of the value for `key`, taken under the shard's shared lock.
    ///
    /// # Panics
    /// As [`read`](Self::read).
    #[inline]
    pub fn get_cloned<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.read(key, V::clone)
    }

    /// Whether `key` has an entry.
    ///
    /// # Panics
    /// As [`read`](Self::read).
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read(key, |_| ()).is_some()
    }

    /// Runs `f` on the value for `key` under the shard's exclusive lock; `None` (and `f` not
    /// called) if absent.
    ///
    /// # Panics
    /// As [`read`](Self::read).
    ///
    /// # Examples
    /// ```
    /// let map = thrifty::map::ShardedMap::new();
    /// map.insert(7, 1);
    /// assert_eq!(map.update(&7, |v| { *v += 1; *v }), Some(2));
    /// assert_eq!(map.update(&8, |v| *v += 1), None);
    /// ```
    #[inline]
    pub fn update<Q, R>(&self, key: &Q, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let mut table = self.shard(hash).write(self.id());
        let found = table.find_mut(hash, |(k, _)| k.borrow() == key);
        found.map(|(_, v)| f(v))
    }

    /// Inserts `key` with `value`; returns the value it replaced. The key already in the map is
    /// kept (as `HashMap::insert` does) and the given one dropped.
    ///
    /// # Panics
    /// As [`read`](Self::read).
    #[inline(always)]
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        let hash = self.hasher.hash_one(&key);
        // The guard is dropped where it lies, at the block's end (moved into `drop`, it would be
        // copied first, a store-forwarding stall in a caller's loop), then the spare key,
        // unlocked, while `old` is held: if its `Drop` panics, the unwind drops `old` too
        // (returned already, it would be leaked: rust-lang/rust#47949), quietly (`drop_then`).
        let old = {
            let mut table = self.shard(hash).write(self.id());
            // One probe finds the key or the slot for it.
            match entry(&mut table, hash, &key, |(k, _)| self.rehash_one(k)) {
                Entry::Occupied(mut e) => mem::replace(&mut e.get_mut().1, value),
                Entry::Vacant(e) => {
                    e.insert((key, value));
                    return None;
                }
            }
        };
        Some(drop_then(key, old))
    }

    /// Removes `key`'s entry and returns its value (dropped by the caller, outside the lock).
    ///
    /// # Panics
    /// As [`read`](Self::read).
    #[inline]
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        // The guard dropped where it lies, at the block's end (as in `insert`), then the key,
        // unlocked, while `value` is held.
        let (key, value) = {
            let mut table = self.shard(hash).write(self.id());
            let found = table.find_entry(hash, |(k, _)| k.borrow() == key).ok()?;
            found.remove().0
        };
        Some(drop_then(key, value))
    }

    /// Runs `f` on the value for `key`, first inserting `make()` if the key is absent; all
    /// under the shard's exclusive lock, so two threads never both insert.
    ///
    /// It takes the key by value, so a key that allocates (a `String`) is made on every call,
    /// present or not: [`get_or_insert_with_ref`](Self::get_or_insert_with_ref) takes it
    /// borrowed and makes the owned key only for an insert.
    ///
    /// # Panics
    /// As [`read`](Self::read).
    ///
    /// # Examples
    /// ```
    /// let counts = thrifty::map::ShardedMap::new();
    /// for word in "a b a c a".split(' ') {
    ///     counts.get_or_insert_with(word, || 0, |n| *n += 1);
    /// }
    /// assert_eq!(counts.get_cloned("a"), Some(3));
    /// ```
    #[inline]
    pub fn get_or_insert_with<R>(
        &self,
        key: K,
        make: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> R {
        let hash = self.hasher.hash_one(&key);
        // The unused `make` and a present key's spare are dropped after the guard, outside the
        // lock, while `f`'s result (and the key, while `make` drops) is held, as in `insert`.
        let out = {
            let mut table = self.shard(hash).write(self.id());
            match entry(&mut table, hash, &key, |(k, _)| self.rehash_one(k)) {
                Entry::Occupied(e) => f(&mut e.into_mut().1),
                Entry::Vacant(e) => {
                    // Made first: if `make` panics, `key` is still the caller's, dropped
                    // unlocked.
                    let value = make();
                    return f(&mut e.insert((key, value)).into_mut().1);
                }
            }
        };
        drop_two_then(make, key, out)
    }

    /// [`get_or_insert_with`](Self::get_or_insert_with) with a borrowed key (`&str` for a
    /// `String` key): the owned key is made (`to_owned`) only when the key is absent, so
    /// counting into a map of `String` keys allocates nothing for a key already there.
    ///
    /// # Panics
    /// As [`read`](Self::read). The key's `to_owned` and `make` run under the shard's lock (a
    /// panic there leaves the map as it was, and what was already made is dropped there).
    ///
    /// # Examples
    /// ```
    /// let counts = thrifty::map::ShardedMap::<String, u64>::new();
    /// for word in "a b a c a".split(' ') {
    ///     counts.get_or_insert_with_ref(word, || 0, |n| *n += 1); // a String only per new word
    /// }
    /// assert_eq!(counts.get_cloned("a"), Some(3));
    /// ```
    ///
    /// # Allocation and cost
    /// For a present key: one hash, the exclusive lock, one probe; nothing allocated. For an
    /// absent key, what `to_owned` and `make` allocate, and the shard's table may grow.
    #[inline]
    pub fn get_or_insert_with_ref<Q, R>(
        &self,
        key: &Q,
        make: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        // The unused `make` is dropped after the guard, while `f`'s result is held.
        let out = {
            let mut table = self.shard(hash).write(self.id());
            match entry(&mut table, hash, key, |(k, _)| self.rehash_one(k)) {
                Entry::Occupied(e) => f(&mut e.into_mut().1),
                Entry::Vacant(e) => {
                    // `Borrow`'s contract: the owned key hashes and compares as `key` did. Made
                    // before the value, so a `make` that counts what it makes (as
                    // `KeyedLimiter`'s does) runs only when the insert can no longer fail.
                    let owned = key.to_owned();
                    let value = make();
                    return f(&mut e.insert((owned, value)).into_mut().1);
                }
            }
        };
        drop_then(make, out)
    }

    /// Inserts, updates or removes `key`'s entry in one locked step: `f` sees the value (or
    /// `None`), may change it in place, and says what to do with the entry. Returns the value
    /// that [`Compute::Set`] replaced or [`Compute::Remove`] removed, for the caller to drop
    /// outside the lock.
    ///
    /// Nothing else touches the shard between `f`'s look and the change it asks for, so a
    /// decision made in `f` is never made on a stale value. `f` runs exactly once; to get a
    /// result of its own out (what it decided, a value it read), have it write to a variable
    /// it borrows mutably, as `was_new` below.
    ///
    /// # Panics
    /// As [`read`](Self::read). If `f` panics, the entry is as `f` left it.
    ///
    /// # Examples
    /// A reference count whose entry goes away at zero:
    /// ```
    /// use thrifty::map::{Compute, ShardedMap};
    ///
    /// let refs = ShardedMap::new();
    /// let acquire = |k| refs.compute(k, |v| match v {
    ///     Some(n) => { *n += 1; Compute::Keep }
    ///     None => Compute::Set(1),
    /// });
    /// let release = |k| refs.compute(k, |v| match v {
    ///     Some(n) if *n > 1 => { *n -= 1; Compute::Keep }
    ///     _ => Compute::Remove,
    /// });
    /// acquire("conn");
    /// acquire("conn");
    /// release("conn");
    /// let mut was_new = false;
    /// refs.compute("other", |v| {
    ///     was_new = v.is_none();
    ///     Compute::Set(1)
    /// });
    /// assert!(was_new);
    /// assert_eq!(refs.get_cloned("conn"), Some(1));
    /// assert_eq!(release("conn"), Some(1)); // the removed value
    /// assert_eq!(release("other"), Some(1));
    /// assert!(refs.is_empty());
    /// ```
    #[inline]
    pub fn compute(&self, key: K, f: impl FnOnce(Option<&mut V>) -> Compute<V>) -> Option<V> {
        let hash = self.hasher.hash_one(&key);
        // The key of an entry `f` removes, and the given key where the map keeps its own: dropped
        // after the guard (at the block's end, where it lies), outside the lock, while the result
        // (and the given key, while the removed one drops) is held, as in `insert`.
        let mut removed = None;
        let out = {
            let mut table = self.shard(hash).write(self.id());
            let rehash = |(k, _): &(K, V)| self.rehash_one(k);
            if table.len() < table.capacity() {
                // Room for an insert: one probe finds the key or the slot for it, allocating
                // nothing.
                match table.entry(hash, |(k, _)| *k == key, rehash) {
                    Entry::Occupied(e) => computed(e, f, &mut removed),
                    Entry::Vacant(e) => {
                        if let Compute::Set(v) = f(None) {
                            e.insert((key, v));
                            return None;
                        }
                        None
                    }
                }
            } else {
                // No room (a full table, or none yet): `entry` would grow the table before it
                // looks, so look first, and make room only for a `Set` of an absent key.
                match table.find_entry(hash, |(k, _)| *k == key) {
                    Ok(e) => computed(e, f, &mut removed),
                    Err(absent) => {
                        if let Compute::Set(v) = f(None) {
                            absent.into_table().insert_unique(hash, (key, v), rehash);
                            return None;
                        }
                        None
                    }
                }
            }
        };
        drop_two_then(removed, key, out)
    }
}

impl<K: Hash, V, S: BuildHasher> ShardedMap<K, V, S> {
    /// A stored key's hash for hashbrown when it rehashes a shard's table under the lock (to
    /// grow it, or in place to clear the tombstones of removed entries). A key's `Hash` that
    /// panics there aborts the process: hashbrown 0.16, unwinding out of a rehash in place, leaves
    /// a table of keys and values without drop glue counting the entries it had not placed
    /// again, whose later walks read past them (undefined behaviour; hashbrown 0.17, which needs
    /// Rust 1.85, counts them right). A rehash into a grown table would unwind safely, but the
    /// closure cannot tell which rehash calls it.
    #[inline]
    fn rehash_one(&self, key: &K) -> u64 {
        let abort = AbortOnUnwind;
        let hash = self.hasher.hash_one(key);
        mem::forget(abort);
        hash
    }

    /// [`retain`](Self::retain) in the one shard that holds (or would hold) `key`, under its
    /// exclusive lock, if its table is at least a quarter full (a table less full than that
    /// takes more entries without allocating, so it is left alone); returns whether it walked.
    /// For an owner that filters the map a shard at a time, and would otherwise walk the empty
    /// slots of tables a past peak grew.
    pub(crate) fn retain_crowded_shard_of<Q>(
        &self,
        key: &Q,
        mut f: impl FnMut(&K, &mut V) -> bool,
    ) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + ?Sized,
    {
        let mut table = self.shard(self.hasher.hash_one(key)).write(self.id());
        let crowded = table.len() >= table.capacity() / 4;
        if crowded {
            table.retain(|(k, v)| f(k, v));
        }
        crowded
    }
}

/// `compute`'s step for a present key: runs `f` on its value and does what it asks. The key of
/// an entry it removes goes to `removed`, for the caller to drop once the shard is unlocked.
#[inline(always)]
fn computed<K, V>(
    mut e: OccupiedEntry<'_, (K, V)>,
    f: impl FnOnce(Option<&mut V>) -> Compute<V>,
    removed: &mut Option<K>,
) -> Option<V> {
    match f(Some(&mut e.get_mut().1)) {
        Compute::Keep => None,
        Compute::Set(v) => Some(mem::replace(&mut e.get_mut().1, v)),
        Compute::Remove => {
            let (key, value) = e.remove().0;
            *removed = Some(key);
            Some(value)
        }
    }
}

/// `key`'s entry in a shard's table: one probe, as `HashTable::entry`, while the table has room.
///
/// hashbrown's `entry` makes room for an insert before it looks for the key, so on a table with
/// no room left it would grow (allocate, and rehash every key under the lock) even for a key
/// that is present, or whose entry the caller is about to remove. A table without room is
/// searched first; only a key that is absent then goes through `entry`, and may grow it.
#[inline(always)]
fn entry<'t, K: Borrow<Q>, Q: Eq + ?Sized, V>(
    table: &'t mut HashTable<(K, V)>,
    hash: u64,
    key: &Q,
    rehash: impl Fn(&(K, V)) -> u64,
) -> Entry<'t, (K, V)> {
    if table.len() < table.capacity() {
        return table.entry(hash, |(k, _)| k.borrow() == key, rehash);
    }
    match table.find_entry(hash, |(k, _)| k.borrow() == key) {
        Ok(found) => Entry::Occupied(found),
        Err(absent) => absent
            .into_table()
            .entry(hash, |(k, _)| k.borrow() == key, rehash),
    }
}

/// Aborts the process if dropped: while a panic unwinds out of a key's `Hash` during a rehash
/// ([`ShardedMap::rehash_one`]), after the panic's message is printed.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!(
            "ShardedMap: a key's Hash panicked while a shard's table was rehashing under its lock; \
             the table cannot be left whole, so the process aborts"
        );
        std::process::abort();
    }
}
