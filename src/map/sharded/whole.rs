//! Whole-map operations: each visits the shards one at a time, locking only the shard it is in.

use super::ShardedMap;
use crate::drop_each::drop_each_if_needed;
use std::hash::{BuildHasher, Hash};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

impl<K, V, S> ShardedMap<K, V, S> {
    /// Calls `f` on every entry, shard by shard, each shard under its shared lock.
    ///
    /// Not a snapshot: writes to shards not yet visited show, writes to visited ones do not,
    /// so concurrent writers can make it see a state the map was never in. Writers of the shard
    /// being visited wait until `f` has seen all its entries.
    ///
    /// # Panics
    /// If called from inside a closure running on this map; `f` itself cannot call this map.
    ///
    /// # Examples
    /// ```
    /// let map = thrifty::map::ShardedMap::new();
    /// (0..10u64).for_each(|i| { map.insert(i, i * i); });
    /// let mut sum = 0;
    /// map.for_each(|_, v| sum += v);
    /// assert_eq!(sum, 285);
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        for shard in self.shards.iter() {
            let table = shard.read(self.id());
            table.iter().for_each(|(k, v)| f(k, v));
        }
    }

    /// Keeps only the entries for which `f` returns `true`, shard by shard, each under its
    /// exclusive lock. Removed values are dropped with the shard locked.
    ///
    /// # Panics
    /// As [`for_each`](Self::for_each). If `f` panics, the shards already visited are
    /// filtered, the shard it panicked in is filtered up to that entry (what `f` rejected there
    /// is removed, the rest kept), later shards are untouched, and `len` stays exact.
    ///
    /// # Examples
    /// ```
    /// let map = thrifty::map::ShardedMap::new();
    /// (0..10u64).for_each(|i| { map.insert(i, i); });
    /// map.retain(|_, v| *v % 2 == 0);
    /// assert_eq!(map.len(), 5);
    /// ```
    pub fn retain(&self, mut f: impl FnMut(&K, &mut V) -> bool) {
        for shard in self.shards.iter() {
            let mut table = shard.write(self.id());
            table.retain(|(k, v)| f(k, v));
        }
    }

    /// Removes every entry, shard by shard; the shards keep their memory (as
    /// `HashMap::clear`). Values are dropped with their shard locked.
    ///
    /// Not atomic: an insert into a shard already cleared survives.
    ///
    /// # Panics
    /// As [`for_each`](Self::for_each). If a key's or value's `Drop` panics, every other entry
    /// is still dropped, in every shard, and the map is left empty; then the first such panic
    /// is resumed. A second panic while one unwinds (a second `Drop` panicking in the same
    /// shard) aborts the process, as in std's collections.
    pub fn clear(&self) {
        let mut first_panic = None;
        for shard in self.shards.iter() {
            let mut table = shard.write(self.id());
            let dropped = catch_unwind(AssertUnwindSafe(|| drop_each_if_needed(|| table.drain())));
            if let Err(payload) = dropped {
                first_panic.get_or_insert(payload);
            }
            // Entries without drop glue were left for this (`drop_each_if_needed` skips them).
            table.clear();
        }
        if let Some(payload) = first_panic {
            resume_unwind(payload);
        }
    }
}

impl<K: Hash, V, S: BuildHasher> ShardedMap<K, V, S> {
    /// Shrinks every shard's table to fit its entries, shard by shard (rehashing each shard's
    /// keys), and frees the tables of empty shards.
    ///
    /// # Panics
    /// As [`for_each`](Self::for_each).
    pub fn shrink_to_fit(&self) {
        for shard in self.shards.iter() {
            let mut table = shard.write(self.id());
            table.shrink_to_fit(|(k, _)| self.hasher.hash_one(k));
        }
    }
}
