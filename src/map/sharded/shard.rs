//! One shard: a hash table behind a reader-writer lock, its length mirrored in an atomic, and
//! the locking that refuses re-entrant calls.

use crate::drop_each::drop_each_if_needed;
use crate::sync::{enter_or_panic, AtomicUsize, Ordering, RwLock, RwLockReadGuard};
use crate::sync::{Inside, RwLockWriteGuard};
use hashbrown::HashTable;
use std::ops::{Deref, DerefMut};

/// A shard of a [`ShardedMap`](super::ShardedMap). The map keeps each in its own cache line
/// (`CachePadded`), so writers on two shards never share one.
pub(super) struct Shard<K, V> {
    /// The entries whose hash picks this shard.
    table: RwLock<HashTable<(K, V)>>,
    /// `table.len()` as of the last write lock released: stored (Relaxed) by [`Write`]'s drop
    /// while the lock is still held, read without the lock by `len`/`is_empty`. Relaxed: it is
    /// a count, publishing nothing; a reader that must see a writer's entries synchronises with
    /// the writer some other way (a join, a channel), which also orders this store before it.
    len: AtomicUsize,
}

impl<K, V> Shard<K, V> {
    /// An empty shard with room for `capacity` entries, or `None` if that much cannot be
    /// allocated (or its size overflows).
    pub(super) fn try_with_capacity(capacity: usize) -> Option<Self> {
        let mut table = HashTable::new();
        // An empty table never rehashes, so the hasher is never called.
        table
            .try_reserve(capacity, |_: &(K, V)| unreachable!("empty table"))
            .ok()?;
        Some(Self {
            table: RwLock::new(table),
            len: AtomicUsize::new(0),
        })
    }

    /// The entry count as of the last released write lock.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Takes the table out, leaving an empty one (which allocates nothing), and zeroes the
    /// length copy. No lock: `&mut self` is the only reference.
    pub(super) fn take(&mut self) -> HashTable<(K, V)> {
        // Relaxed: see `Shard::len`; `&mut self` orders it before any later read.
        self.len.store(0, Ordering::Relaxed);
        std::mem::take(self.table.get_mut())
    }

    /// Takes the shared lock, first marking this thread as inside map `id`.
    ///
    /// # Panics
    /// If this thread is already inside map `id` (see [`REENTERED`]).
    #[inline]
    pub(super) fn read(&self, id: usize) -> Read<'_, K, V> {
        let inside = enter_or_panic(id, "ShardedMap", REENTERED);
        Read {
            table: self.table.read(),
            _inside: inside,
        }
    }

    /// Takes the exclusive lock, first marking this thread as inside map `id`.
    ///
    /// # Panics
    /// As [`Shard::read`].
    #[inline]
    pub(super) fn write(&self, id: usize) -> Write<'_, K, V> {
        let inside = enter_or_panic(id, "ShardedMap", REENTERED);
        Write {
            table: self.table.write(),
            len: &self.len,
            _inside: inside,
        }
    }
}

impl<K, V> Drop for Shard<K, V> {
    /// Drops the entries one by one, going on past one whose `Drop` panics: the table's own
    /// drop would stop there and leak the rest of the shard.
    fn drop(&mut self) {
        let table = self.table.get_mut();
        drop_each_if_needed(|| table.drain());
    }
}

/// A shard's table under the shared lock.
pub(super) struct Read<'a, K, V> {
    // Fields drop in order: the lock is released before the thread leaves the map.
    table: RwLockReadGuard<'a, HashTable<(K, V)>>,
    _inside: Inside,
}

impl<K, V> Deref for Read<'_, K, V> {
    type Target = HashTable<(K, V)>;
    #[inline]
    fn deref(&self) -> &Self::Target {
        &self.table
    }
}

/// A shard's table under the exclusive lock; refreshes the shard's length on drop, so the count
/// stays right even when a caller's closure panics half-way through a `retain`.
pub(super) struct Write<'a, K, V> {
    table: RwLockWriteGuard<'a, HashTable<(K, V)>>,
    len: &'a AtomicUsize,
    _inside: Inside,
}

impl<K, V> Deref for Write<'_, K, V> {
    type Target = HashTable<(K, V)>;
    #[inline]
    fn deref(&self) -> &Self::Target {
        &self.table
    }
}

impl<K, V> DerefMut for Write<'_, K, V> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.table
    }
}

impl<K, V> Drop for Write<'_, K, V> {
    #[inline]
    fn drop(&mut self) {
        // Relaxed: see `Shard::len`. Stored under the lock, so stores land in lock order and
        // the last one is the table's length.
        self.len.store(self.table.len(), Ordering::Relaxed);
    }
}

/// Why a call into a map from inside one of its own closures panics (`sync::enter_or_panic`).
const REENTERED: &str = "re-entrant call: this thread is already inside this map, in a closure \
    it passed to it (read, update, compute, get_or_insert_with(_ref), retain, for_each) or in \
    code of its own that the map runs under a shard lock (a key's Hash, Eq or Clone/to_owned, a \
    value's Clone, a key's or value's Drop or Debug, the map's hasher); calling the map again \
    could deadlock, so it panics instead. Copy out what the closure needs and call the map after \
    it returns";
