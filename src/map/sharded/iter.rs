//! Building a [`ShardedMap`] from entries (`FromIterator`, `From<HashMap>`), adding entries to
//! one (`Extend`), and taking a map apart into its entries ([`IntoIter`]).
//!
//! An [`IntoIter`] owns the map, so it takes no lock: it takes each shard's table out in turn
//! and drains it, leaving an empty table (no allocation) behind. Its `Drop` drops what is left
//! with [`drop_each`](crate::drop_each::drop_each), which goes on past a `Drop` that panics.

use super::shard::Shard;
use super::ShardedMap;
use crate::drop_each::drop_each_if_needed;
use crate::sync::CachePadded;
use hashbrown::hash_table;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::iter::FusedIterator;

/// Collects entries into a map presized for the iterator's `size_hint` lower bound, as
/// [`with_capacity_and_hasher`](ShardedMap::with_capacity_and_hasher) with `S::default()`; a
/// later duplicate key replaces the earlier one's value (as `HashMap` does), which is dropped.
///
/// # Allocation and cost
/// The shard array and, for a lower bound `n > 0`, every shard's table, sized with slack for
/// an uneven spread (see [`with_capacity`](ShardedMap::with_capacity)); then one
/// [`insert`](ShardedMap::insert) per entry, each locking its shard, which allocates only if a
/// shard outgrows that slack or the iterator yields more than its lower bound. With a small
/// `n` the slack dominates (`n` = 1,000 over 128 shards, the default on 2 CPUs, reserves about
/// 70 KiB of tables for 16 KB of `(u64, u64)`): for small maps, build with few shards
/// (`ShardedMap::builder().shards(4).capacity(n).build()`) and [`extend`](Extend::extend) it.
///
/// # Panics
/// If the iterator panics (the entries collected so far are dropped), or if the presized
/// tables cannot be allocated.
///
/// # Examples
/// ```
/// use thrifty::map::ShardedMap;
///
/// let squares: ShardedMap<u64, u64> = (0..100).map(|i| (i, i * i)).collect();
/// assert_eq!(squares.len(), 100);
/// assert_eq!(squares.get_cloned(&7), Some(49));
/// ```
impl<K: Hash + Eq, V, S: BuildHasher + Default> FromIterator<(K, V)> for ShardedMap<K, V, S> {
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let map = ShardedMap::with_capacity_and_hasher(iter.size_hint().0, S::default());
        (&map).extend(iter);
        map
    }
}

/// Moves a `HashMap`'s entries into a map presized for them (as
/// [`with_capacity_and_hasher`](ShardedMap::with_capacity_and_hasher)), hashing with a clone
/// of the `HashMap`'s hasher.
///
/// # Allocation and cost
/// As [`FromIterator`]: the shard array and presized tables, then every key hashed again
/// (the shard comes from the hash) and inserted; the `HashMap`'s memory is freed.
///
/// # Examples
/// ```
/// use std::collections::HashMap;
/// use thrifty::map::ShardedMap;
///
/// let plain: HashMap<&str, u32> = HashMap::from([("a", 1), ("b", 2)]);
/// let map = ShardedMap::from(plain);
/// assert_eq!(map.get_cloned("b"), Some(2));
/// ```
impl<K: Hash + Eq, V, S: BuildHasher + Clone> From<HashMap<K, V, S>> for ShardedMap<K, V, S> {
    #[track_caller]
    fn from(entries: HashMap<K, V, S>) -> Self {
        let map = ShardedMap::with_capacity_and_hasher(entries.len(), entries.hasher().clone());
        (&map).extend(entries);
        map
    }
}

/// Inserts every entry through [`insert`](ShardedMap::insert), one shard lock each; a key
/// already present (or repeated later in the iterator) gets the new value, keeps its first key,
/// and the replaced value and the spare key are dropped after the shard is unlocked.
///
/// Takes `&self`, so threads may extend one map at once. Each insert is on its own: other
/// threads see the entries arrive one by one, and a panic part-way (from the iterator, or a
/// re-entrant call) leaves the entries inserted before it in the map.
///
/// # Allocation and cost
/// One hash, lock and probe per entry, as `insert`; nothing is reserved ahead (the shards'
/// locks are taken one entry at a time), so a shard grows as it fills: presize with
/// [`with_capacity`](ShardedMap::with_capacity) to extend without allocating.
///
/// # Panics
/// As [`insert`](ShardedMap::insert): if called from inside one of this map's closures (see
/// [Re-entrancy](ShardedMap#re-entrancy)). The iterator itself runs with no shard locked, so
/// it may read the map.
impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for &ShardedMap<K, V, S> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

/// As [`Extend`] for `&ShardedMap` (the same inserts, taking the shards' locks as usual).
impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for ShardedMap<K, V, S> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        (&*self).extend(iter);
    }
}

/// Takes the map apart into its entries, shard by shard, in no particular order.
///
/// # Allocation and cost
/// Allocates nothing (`tests/alloc_map_sharded.rs`) and takes no lock: it owns the map. Each
/// shard's table is freed once drained, the shard array when the iterator is dropped. A walk
/// visits each shard up to the last that holds entries and every slot of their tables, so a
/// map emptied from a large size still costs its old capacity to walk.
///
/// # Examples
/// ```
/// use thrifty::map::ShardedMap;
///
/// let map = ShardedMap::new();
/// map.insert("a", 1);
/// map.insert("b", 2);
/// let mut entries: Vec<(&str, i32)> = map.into_iter().collect();
/// entries.sort();
/// assert_eq!(entries, [("a", 1), ("b", 2)]);
/// ```
impl<K, V, S> IntoIterator for ShardedMap<K, V, S> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> IntoIter<K, V> {
        let ShardedMap { shards, .. } = self;
        IntoIter {
            // Exact: the map is ours, so every write lock has been released, and each release
            // stored its table's length.
            rest: shards.iter().map(|s| s.len()).sum(),
            shards,
            next: 0,
            current: hash_table::IntoIter::default(),
        }
    }
}

/// The entries of a [`ShardedMap`], by value: `map.into_iter()`.
///
/// Yields each entry once, shard by shard, in no particular order; knows exactly how many are
/// left ([`ExactSizeIterator`]). Dropping it early drops the entries it has not yielded, each
/// once; if one's `Drop` panics, the rest are still dropped and then that panic goes on (a
/// second panic while it unwinds aborts the process, as in std's collections).
///
/// # Allocation and cost
/// Allocates nothing and takes no lock; each `next` is a step of a hashbrown table's iterator,
/// or, between shards, a move of the next shard's table out of its slot.
///
/// # Examples
/// ```
/// let map: thrifty::map::ShardedMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
/// let mut entries = map.into_iter();
/// assert_eq!(entries.len(), 10);
/// let first: Vec<(u32, u32)> = entries.by_ref().take(4).collect();
/// assert_eq!((first.len(), entries.len()), (4, 6));
/// drop(entries); // drops the 6 entries not yielded
/// ```
pub struct IntoIter<K, V> {
    /// The map's shards; those before `next` have had their tables taken (left empty).
    shards: Box<[CachePadded<Shard<K, V>>]>,
    /// The shard whose table is taken next.
    next: usize,
    /// The entries of the table taken last that are not yet yielded.
    current: hash_table::IntoIter<(K, V)>,
    /// The entries in the shards from `next` on.
    rest: usize,
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    #[inline]
    fn next(&mut self) -> Option<(K, V)> {
        loop {
            if let Some(entry) = self.current.next() {
                return Some(entry);
            }
            if self.rest == 0 {
                // Later shards are empty; their tables (if any) go with the shard array.
                return None;
            }
            let table = self.shards.get_mut(self.next)?.take();
            self.next += 1;
            self.rest = self.rest.saturating_sub(table.len());
            // The drained table's memory is freed here; it has no entries left to drop.
            self.current = table.into_iter();
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.current.len() + self.rest;
        (n, Some(n))
    }
}

impl<K, V> ExactSizeIterator for IntoIter<K, V> {}

// Fused: once `current` is empty and `rest` is 0 (or the shards run out), `next` returns
// `None` without changing anything, and hashbrown's iterator is fused itself.
impl<K, V> FusedIterator for IntoIter<K, V> {}

impl<K, V> fmt::Debug for IntoIter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<K, V> Drop for IntoIter<K, V> {
    /// Drops the entries not yet yielded, going on past one whose `Drop` panics (a table's own
    /// drop would stop there and leak the rest of it).
    fn drop(&mut self) {
        // `next` never panics (it moves tables and steps hashbrown's iterator), as `drop_each`
        // requires. Without drop glue nothing is walked: the fields' drops free the tables.
        drop_each_if_needed(|| self.by_ref());
    }
}
