//! [`ShardedMap`]: a hash map split into independently locked shards.

mod builder;
mod iter;
mod ops;
mod shard;
mod whole;

pub use builder::{BuildError, Builder};
pub use iter::IntoIter;
pub use ops::Compute;

use crate::map::FastRandomState;
use crate::sync::CachePadded;
use shard::Shard;
use std::fmt;
use std::hash::{BuildHasher, Hash};

/// The most shards a map can have.
const MAX_SHARDS: usize = 1 << 16;

/// The odd multiplier that spreads a hash over the shards: `2^64 / φ`, whose multiples'
/// top bits fall evenly for consecutive inputs.
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

/// A concurrent hash map split into shards, each a hashbrown table behind its own reader-writer
/// lock, for maps that many threads write.
///
/// Every operation hashes the key once; the hash picks a shard and then the slot inside it, so
/// threads working on keys in different shards never wait for each other. Access is through
/// closures (`read`, `update`, `compute`, …) that run while the shard is locked: no guard can
/// outlive the call, so holding an entry while touching the map again, the classic way to
/// deadlock a sharded map, is impossible, and a call back into the same map from inside one of
/// its closures panics with a clear message instead (see [Re-entrancy](#re-entrancy)).
///
/// A map `collect`s from `(K, V)` pairs, `extend`s (through `&self` too, so threads can extend
/// one map at once), and, owned, turns into an iterator of its entries ([`IntoIter`]). There is
/// no iterator of borrowed entries, as no reference may outlive its closure: walk the map with
/// [`for_each`](Self::for_each).
///
/// # When to use
/// Many threads insert, update and remove in one map: per-key counters and aggregates, caches
/// filled by workers, session and connection tables.
///
/// # When not to use
/// - Reads vastly outnumber writes and readers must never wait: a copy-on-write map
///   ([`CowMap`](crate::map::CowMap)) makes reads lock-free at the price of copying on write.
/// - One thread, or a map touched a few times a second: a plain `HashMap`, or
///   `RwLock<HashMap>`, is simpler, iterates in one pass and takes a consistent snapshot.
/// - Most traffic goes to one key (a single hot counter): one key is one shard, so sharding does
///   not spread it; use `counter::Counter` for the hot value.
/// - You need a consistent view of the whole map (`for_each` and `len` are shard by shard).
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use thrifty::map::ShardedMap;
///
/// let hits = Arc::new(ShardedMap::new());
/// std::thread::scope(|s| {
///     for t in 0..4u64 {
///         let hits = Arc::clone(&hits);
///         s.spawn(move || {
///             for i in 0..1000u64 {
///                 hits.get_or_insert_with(i % 10, || 0u64, |n| *n += t);
///             }
///         });
///     }
/// });
/// assert_eq!(hits.len(), 10);
/// assert_eq!(hits.read(&3, |n| *n), Some(100 * (0 + 1 + 2 + 3)));
/// ```
///
/// # Allocation
/// Lookups, updates and removes never allocate, nor does a [`compute`](Self::compute) that
/// inserts nothing; neither do inserts while every shard has room. A shard grows (one
/// allocation, every entry of that shard rehashed) when it fills;
/// [`with_capacity`](Self::with_capacity) gives each shard about four standard deviations of
/// room above its expected share, so that filling the map to its capacity grows a shard only
/// with a small probability (see there; `tests/alloc_map_sharded.rs` asserts both for its
/// keys). Removes leave tombstones in a shard's table (hashbrown's), which use up its room
/// until the shard rehashes: under steady churn (a remove and an insert, the size staying
/// put) a shard more than half full rehashes into a table twice the size once, and in place
/// after that, so churn costs at most one allocation per shard; presize for twice the entries
/// to churn with none (`tests/alloc_map_sharded.rs`). `clear` keeps the shards' memory;
/// `shrink_to_fit` returns it.
///
/// # Cost
/// - An operation: one hash, one lock and unlock of one shard (an atomic read-modify-write each,
///   uncontended), a probe of a hashbrown table, and a thread-local read and two writes (the
///   re-entrancy check). Threads contend only when they hit the same shard at the same moment.
///   On one thread, with 100,000 `u64` keys, a read, an insert that replaces and a
///   `get_or_insert_with` increment each take 89–90 instructions, against dashmap's 103–107
///   and a single `RwLock<HashMap>`'s 56–74 (`bash scripts/instructions_map.sh`):
///   sharding costs a little on one thread and pays when threads write at once. Times against scc,
///   dashmap and `RwLock<HashMap>` at 1 and 2 threads: `cargo bench --bench map_sharded` and
///   `cargo run --release --example shootout -- --only map` (the README quotes the shootout's).
/// - `len` and `is_empty` read one counter per shard, without locking; `for_each`, `retain`,
///   `clear` and `shrink_to_fit` lock the shards one at a time.
/// - Memory: one cache-line-padded slot per shard (the lock, a table header and the count;
///   128 bytes on x86-64, so 16 KiB for the default 128 shards on 2 CPUs, up to 128 KiB at
///   1024 shards; `tests/alloc_map_sharded.rs` asserts it) plus each shard's table:
///   entries of `(K, V)` and a control byte each, at most 7/8 full. Many small maps want
///   [`with_shards`](Self::with_shards) of a few.
///
/// # Re-entrancy
/// Each closure runs with its shard locked. If it called the map again, a call that landed on
/// the same shard would wait on itself, and one that landed on another shard could deadlock
/// against a thread doing the reverse. So any call on a map from inside one of that map's
/// closures panics, whatever the shard, before it takes a lock; only the calls that take no
/// lock (`len`, `is_empty`, `shard_count`, `hasher`) are allowed there. The check covers the
/// map's own callbacks too: a key's `Eq`, `Hash` or `to_owned` (`get_or_insert_with_ref`), a
/// value's `Clone`, a key's or value's `Drop` or `Debug` (formatting the map), and the map's
/// hasher, run while a shard is locked. Closures may use *other* maps (nesting up to 8 maps deep
/// on one thread); as with any two locks, two threads that nest two maps in opposite orders can
/// deadlock.
///
/// The check is per thread: it cannot see a closure that waits for *another* thread (a
/// channel, a `join`, a scoped thread, a rayon task) which calls this map. If that call lands
/// on a shard the closure holds, both wait for ever, undetected; even two readers can, since a
/// waiting writer holds back new readers (the locks are fair). Do not block inside a closure
/// on work that touches the same map.
///
/// # Panics
/// On a re-entrant call (above); on a call made inside the closures of 8 maps at once on one thread
/// (the depth the check tracks: this map would be the ninth); and where [`Builder::build`]
/// documents. A key's `Hash` must not panic: one that panics while a shard's table rehashes
/// under its lock (an insert into a full shard: to grow the table, or in place to clear the
/// tombstones of removed entries) aborts the process, after the panic's message. hashbrown
/// 0.16, unwinding out of a rehash in place, drops the entries it had not placed yet and, where
/// neither keys nor values have drop glue, leaves the table counting them, so that a later walk
/// reads past its end (fixed in hashbrown 0.17, which needs Rust 1.85); the rehash cannot tell
/// the map which kind it runs, so both abort. A `Hash` that panics anywhere else (hashing the
/// key of a call, before the lock; [`shrink_to_fit`](Self::shrink_to_fit), which builds new
/// tables and loses nothing) unwinds to the caller as usual.
///
/// If a key's or value's `Drop` panics while [`clear`](Self::clear) or the map's drop drops
/// entries, every other entry is still dropped, and the first such panic is resumed after; a
/// second panic while one unwinds aborts the process, as in std's collections. A key's `Drop`
/// that panics where a call drops a key after the lock (the spare key of an
/// [`insert`](Self::insert), [`get_or_insert_with`](Self::get_or_insert_with) or
/// [`compute`](Self::compute) of a present key, the key a [`remove`](Self::remove) or `compute`
/// removes), or an unused `make`'s, reaches the caller; what the call would have returned (the
/// replaced or removed value, `f`'s result) and any key it had yet to drop are dropped as that
/// panic unwinds, and a panic from their own `Drop` is let go there (the panic hook still runs
/// for it), where escaping it would abort the process.
///
/// A closure that panics part-way through changing a value leaves it as it was left: the shard's
/// lock is released and not poisoned (as with parking_lot's locks and dashmap), so the map is not
/// `RefUnwindSafe`. Wrap it in [`AssertUnwindSafe`](std::panic::AssertUnwindSafe) where a
/// half-changed value cannot matter.
pub struct ShardedMap<K, V, S = FastRandomState> {
    /// The shards; their count is a power of two.
    shards: Box<[CachePadded<Shard<K, V>>]>,
    /// `64 - log2(shards.len())`, at most 63: see [`ShardedMap::shard_index`].
    shift: u32,
    hasher: S,
}

impl<K, V> ShardedMap<K, V> {
    /// An empty map with the default shard count (64 × CPUs, at most 1024, a power of two: see
    /// [`Builder::shards`]) and a randomly seeded [`FastRandomState`]. Allocates the shard
    /// array; no table yet. (The process's first default map also asks the OS for the CPU count
    /// and has foldhash seed itself, a few allocations, once per process.)
    ///
    /// # Examples
    /// ```
    /// let map = thrifty::map::ShardedMap::new();
    /// map.insert("a", 1);
    /// assert_eq!(map.get_cloned("a"), Some(1));
    /// ```
    #[track_caller]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// An empty map presized for `n` entries: each of the `s` shards gets room for `m + 4·⌈√m⌉ + 8`
    /// entries, where `m = ⌈n/s⌉` (more, after hashbrown rounds up), about four standard deviations
    /// above the mean a shard receives when keys hash like random ones. That is a statistical
    /// promise, not a guarantee: filling the map to `n` grows no shard in most maps, but the
    /// fullest of the `s` shards can land past its room and grow once. Ordinary keys meet it too,
    /// rarely (a few maps in a thousand of 16 shards filled with the keys `3·i + 2⁴⁰`; JOURNAL.md
    /// has the counts). Keys that hash unevenly (many equal hashes) grow shards for sure. A map of
    /// one shard gets room for exactly `n` (before rounding): nothing can land unevenly, and
    /// filling it never grows it. With few entries per shard the slack dominates:
    /// `with_capacity(1000)` of `(u64, u64)` on the default 128 shards reserves about 70 KiB of
    /// tables for 16 KB of entries (`tests/alloc_map_sharded.rs` asserts it); a small map wants
    /// fewer shards ([`Builder::shards`]). Near a power of two the slack takes every shard's table
    /// to the next one: `with_capacity(100_000)` of `(u64, u64)` on 128 shards holds 4.27 MiB once
    /// filled, where one `HashMap::with_capacity(100_000)` or dashmap on 128 shards holds 2.13 MiB
    /// (at 90 000 they are even), and a core whose cache holds the smaller and not the larger then
    /// misses it about twice as often on each lookup. Where memory matters more than a shard
    /// growing once while the map fills, ask for less capacity: the tables grow as they need.
    ///
    /// # Panics
    /// If the tables for `n` entries cannot be allocated; [`Builder::try_build`] returns
    /// [`BuildError::Capacity`] instead.
    ///
    /// # Examples
    /// ```
    /// let map = thrifty::map::ShardedMap::with_capacity(1000);
    /// for i in 0..1000u32 {
    ///     map.insert(i, i); // almost surely no allocation: every shard has room
    /// }
    /// assert_eq!(map.len(), 1000);
    /// ```
    #[track_caller]
    pub fn with_capacity(n: usize) -> Self {
        Self::builder().capacity(n).build()
    }

    /// An empty map with `n` shards, rounded up to a power of two.
    ///
    /// # Panics
    /// If `n` is 0 or above 65,536; [`Builder::try_build`] returns the error instead.
    ///
    /// # Examples
    /// ```
    /// let map: thrifty::map::ShardedMap<u8, u8> = thrifty::map::ShardedMap::with_shards(12);
    /// assert_eq!(map.shard_count(), 16);
    /// ```
    #[track_caller]
    pub fn with_shards(n: usize) -> Self {
        Self::builder().shards(n).build()
    }

    /// A [`Builder`] to set shards, capacity and hasher together.
    pub fn builder() -> Builder<K, V> {
        Builder::new()
    }
}

impl<K, V, S> ShardedMap<K, V, S> {
    /// An empty map hashing with `hasher`, with the default shard count.
    ///
    /// # Examples
    /// SipHash, for keys an adversary picks:
    /// ```
    /// let sip = std::collections::hash_map::RandomState::new();
    /// let map = thrifty::map::ShardedMap::with_hasher(sip);
    /// map.insert("user".to_string(), 1);
    /// assert!(map.contains_key("user"));
    /// ```
    #[track_caller]
    pub fn with_hasher(hasher: S) -> Self {
        Builder::new().hasher(hasher).build()
    }

    /// An empty map presized for `n` entries (as [`with_capacity`](ShardedMap::with_capacity))
    /// hashing with `hasher`.
    ///
    /// # Panics
    /// As [`with_capacity`](ShardedMap::with_capacity).
    #[track_caller]
    pub fn with_capacity_and_hasher(n: usize, hasher: S) -> Self {
        Builder::new().capacity(n).hasher(hasher).build()
    }

    /// A map of `shards` shards (a power of two in `1..=MAX_SHARDS`) presized for `capacity`
    /// entries; `None` if the tables cannot be allocated.
    fn try_from_parts(shards: usize, capacity: usize, hasher: S) -> Option<Self> {
        debug_assert!(shards.is_power_of_two() && shards <= MAX_SHARDS);
        let each = per_shard(capacity, shards);
        // Reserved exactly, then filled: one allocation for the array (collecting into an
        // `Option` gives no size hint, so the `Vec` would double its way there and shrink).
        let mut array = Vec::new();
        array.try_reserve_exact(shards).ok()?;
        for _ in 0..shards {
            array.push(CachePadded::new(Shard::try_with_capacity(each)?));
        }
        let shards = array.into_boxed_slice();
        Some(ShardedMap {
            shift: (64 - shards.len().trailing_zeros()).min(63),
            shards,
            hasher,
        })
    }

    /// The number of shards (a power of two).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The map's hasher.
    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    /// The number of entries, without locking: the sum of one counter per shard.
    ///
    /// Exact when no write is in flight (every writer's work happens-before the call, e.g. its
    /// thread was joined); during concurrent writes it is a sum of per-shard counts read at
    /// slightly different moments, so it may count an entry moved between calls, or miss one.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// Whether the map has no entries, without locking; stops at the first non-empty shard.
    /// Exact under the same condition as [`len`](ShardedMap::len).
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.len() == 0)
    }

    /// This map's identity for the re-entrancy check: the address of its shard array, a heap
    /// block it alone owns, so unique among live maps and fixed while any of its closures runs
    /// (they borrow the map). Not the map's own address: a hasher that holds another map as its
    /// first field can lie at the map's address, and so would that other map.
    #[inline]
    fn id(&self) -> usize {
        self.shards.as_ptr() as usize
    }

    /// The shard for `hash`: the top `log2(shards)` bits of `hash × SPREAD` (Fibonacci
    /// hashing of the hash; the mask covers one shard, whose shift stops at 63).
    ///
    /// Not the hash's own bits: a hash that is one multiply by a seed (foldhash's for an
    /// integer key) gives consecutive keys a sequence in any fixed bit window that, under a few
    /// seeds in a thousand, piles up in some shards; the second multiply folds the low bits,
    /// which consecutive keys spread evenly, into the top ones. Within a shard, hashbrown's tag
    /// (the hash's top 7 bits) and probe start (its low bits) stay spread over their range.
    #[inline]
    fn shard_index(&self, hash: u64) -> usize {
        (hash.wrapping_mul(SPREAD) >> self.shift) as usize & (self.shards.len() - 1)
    }
}

impl<K: Hash, V, S: BuildHasher> ShardedMap<K, V, S> {
    /// The shard that holds (or would hold) the key with `hash`.
    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K, V> {
        &self.shards[self.shard_index(hash)]
    }
}

/// Each shard's capacity for `n` entries over `shards` shards: the mean plus four standard
/// deviations of an even spread (√mean bounds the binomial's), plus 8 for small maps.
fn per_shard(n: usize, shards: usize) -> usize {
    if n == 0 || shards == 1 {
        return n;
    }
    let mean = n.div_ceil(shards);
    let sd = (mean as f64).sqrt().ceil() as usize;
    mean.saturating_add(4 * sd).saturating_add(8)
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for ShardedMap<K, V, S> {
    /// The entries, shard by shard (not a snapshot: see [`ShardedMap::for_each`]).
    ///
    /// # Panics
    /// Formatting a map from inside one of its own closures (re-entrancy).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        self.for_each(|k, v| {
            m.entry(k, v);
        });
        m.finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
