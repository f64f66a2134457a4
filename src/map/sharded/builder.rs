//! [`Builder`]: shard count, capacity and hasher of a [`ShardedMap`], and the settings it refuses.

use super::{ShardedMap, MAX_SHARDS};
use crate::map::FastRandomState;
use std::fmt;
use std::marker::PhantomData;

/// Settings for a [`ShardedMap`]: `ShardedMap::builder()`, then [`build`](Builder::build).
///
/// Use it to set two knobs at once (shards and capacity, or a hasher too) or to get a typed
/// error from [`try_build`](Builder::try_build); for one knob, [`ShardedMap::with_shards`],
/// [`ShardedMap::with_capacity`] and [`ShardedMap::with_hasher`] are shorter.
///
/// # Examples
/// ```
/// use thrifty::map::ShardedMap;
///
/// let map: ShardedMap<u64, u64> = ShardedMap::builder().shards(16).capacity(10_000).build();
/// assert_eq!(map.shard_count(), 16);
/// ```
///
/// # Allocation and cost
/// The builder allocates nothing; `build` allocates the shard array and, with a capacity, each
/// shard's table. The process's first build without [`shards`](Builder::shards) asks the OS for
/// the CPU count (a few allocations, once per process).
#[must_use = "a builder does nothing until `build`"]
pub struct Builder<K, V, S = FastRandomState> {
    shards: Option<usize>,
    capacity: usize,
    hasher: S,
    /// The key and value types the map will have (so `build` needs no annotation).
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Builder<K, V> {
    pub(super) fn new() -> Self {
        Builder {
            shards: None,
            capacity: 0,
            hasher: FastRandomState::default(),
            types: PhantomData,
        }
    }
}

impl<K, V, S: fmt::Debug> fmt::Debug for Builder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("shards", &self.shards)
            .field("capacity", &self.capacity)
            .field("hasher", &self.hasher)
            .finish()
    }
}

impl<K, V, S> Builder<K, V, S> {
    /// The number of shards, rounded up to a power of two. Default: 64 times the CPU count, at
    /// most 1024, rounded up to a power of two (128 on 2 CPUs, 1024 from 9 CPUs up).
    ///
    /// Why so many: threads meet on a shard about `(threads - 1) / shards` of the time, and a
    /// meeting costs far more than the lock's uncontended round trip (a spin, and on a busy
    /// machine a wait for a preempted holder). With dashmap's default of 4 × CPUs, two writing
    /// threads meet often enough to fall well behind scc's per-bucket locking; at 64 × CPUs
    /// they tie it. Compare shard counts on your machine with
    /// `cargo bench --bench map_sharded -- 'time/mix/.*/100000/uniform/2 threads'` after
    /// building with each count. The price is memory and walks: one cache-line-padded slot per
    /// shard (128 bytes on x86-64: 16 KiB at 128 shards, 128 KiB at 1024) before any entry,
    /// and `len`, `for_each` and `clear` visit every shard. For many small maps (a map per
    /// connection), ask for a few shards: `shards(2)`.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Room for `n` entries, with slack for uneven spreading so that filling the map to `n`
    /// grows no shard, with high probability (not for certain: see
    /// [`ShardedMap::with_capacity`]). Default 0: shards allocate on first insert.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// The hasher for keys. Default [`FastRandomState`]; `std::hash::RandomState` for keys an
    /// adversary chooses.
    ///
    /// The map multiplies the hash by an odd constant and takes the product's top bits as the
    /// shard (one bit per doubling of the shard count); each shard's table takes its tags from
    /// the hash's top 7 bits and its probe start from the low bits. An identity hasher
    /// (`nohash`-style, the key's value as its hash) still spreads integer keys over the shards,
    /// but keys below `2^57` all get tag 0, so a lookup compares the key of every entry in each
    /// group of slots it probes: correct, but slower per lookup than a hasher that mixes.
    pub fn hasher<T>(self, hasher: T) -> Builder<K, V, T> {
        Builder {
            shards: self.shards,
            capacity: self.capacity,
            hasher,
            types: PhantomData,
        }
    }

    /// The map, or why these settings cannot make one.
    ///
    /// # Errors
    /// [`BuildError::ZeroShards`] for `shards(0)`; [`BuildError::TooManyShards`] above
    /// 65,536 shards; [`BuildError::Capacity`] if the tables for `capacity(n)` cannot be
    /// allocated. Each shard's table is its own allocation, so on a system that overcommits
    /// memory (Linux by default) a capacity past the machine's memory may be granted table by
    /// table and then exhaust the memory as the tables are initialised, as
    /// `HashMap::with_capacity` may: the capacity is not compared with the memory there is.
    pub fn try_build(self) -> Result<ShardedMap<K, V, S>, BuildError> {
        let shards = match self.shards {
            None => default_shards(),
            Some(0) => return Err(BuildError::ZeroShards),
            Some(n) if n > MAX_SHARDS => return Err(BuildError::TooManyShards(n)),
            Some(n) => n.next_power_of_two(),
        };
        ShardedMap::try_from_parts(shards, self.capacity, self.hasher)
            .ok_or(BuildError::Capacity(self.capacity))
    }

    /// The map.
    ///
    /// # Panics
    /// Where [`try_build`](Builder::try_build) returns an error, with its message.
    #[track_caller]
    pub fn build(self) -> ShardedMap<K, V, S> {
        match self.try_build() {
            Ok(map) => map,
            Err(e) => crate::fail::fail(format_args!("ShardedMap: {e}")),
        }
    }
}

/// The default shard count: 64 × the CPU count, at most [`DEFAULT_SHARDS_MAX`], rounded up to
/// a power of two (see `Builder::shards` for why so many).
pub(super) fn default_shards() -> usize {
    (64 * crate::sync::cpus())
        .min(DEFAULT_SHARDS_MAX)
        .next_power_of_two()
}

/// The most shards a map gets by default: 1024 (128 KiB of shard headers).
pub(super) const DEFAULT_SHARDS_MAX: usize = 1024;

/// Settings a [`Builder`] refuses, from [`try_build`](Builder::try_build);
/// [`build`](Builder::build) panics with its message instead.
///
/// Match on it where the shard count or capacity comes from outside the program; with
/// constants, `build` and its panic are simpler.
///
/// # Examples
/// ```
/// use thrifty::map::{BuildError, ShardedMap};
///
/// let err = ShardedMap::<u64, u64>::builder().shards(0).try_build().unwrap_err();
/// assert_eq!(err, BuildError::ZeroShards);
/// assert_eq!(err.to_string(), "shards(0): a map needs at least one shard");
/// ```
///
/// # Allocation and cost
/// None: a plain value, made only when a build is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuildError {
    /// `shards(0)`: a map needs at least one shard.
    ZeroShards,
    /// More shards than the 65,536 a map can have (the requested count).
    TooManyShards(usize),
    /// The tables for this many entries cannot be allocated (or their size overflows).
    Capacity(usize),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroShards => f.write_str("shards(0): a map needs at least one shard"),
            BuildError::TooManyShards(n) => {
                write!(
                    f,
                    "shards({n}): more than the {MAX_SHARDS} shards a map can have"
                )
            }
            BuildError::Capacity(n) => {
                write!(
                    f,
                    "capacity({n}): the tables for {n} entries cannot be allocated"
                )
            }
        }
    }
}

impl std::error::Error for BuildError {}
