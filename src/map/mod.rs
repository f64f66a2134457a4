//! Concurrent hash maps: [`ShardedMap`] for maps that many threads write; [`CowMap`]
//! (copy-on-write) for maps read constantly and written rarely, whose readers never wait.
//!
//! # Which map when
//!
//! | your map | use | why |
//! | --- | --- | --- |
//! | written by many threads (counters per key, caches filled by workers, session tables) | [`ShardedMap`] | writers on different shards never meet; no guard escapes a closure, and a closure that calls the same map panics instead of deadlocking |
//! | read constantly, written rarely (config, routing tables), readers must never wait | [`CowMap`] (a [`Reader`] per thread for hot loops) | reads take no lock and write no shared line; a write copies the map |
//! | touched by a few threads a few times a second, or needs whole-map snapshots | `RwLock<HashMap>` (std or parking_lot) | simplest; one lock makes every view consistent |
//! | one hot key takes most of the traffic | `counter::Counter` for the hot value | one key is one shard: sharding cannot spread it |
//!
//! `cargo bench --bench map_sharded` and `cargo run --release --example shootout -- --only map`
//! measure ShardedMap against `Mutex<HashMap>`, `RwLock<HashMap>`, dashmap, scc and papaya;
//! `cargo bench --bench map_cow` measures CowMap against `RwLock<HashMap>`, arc-swap, papaya and
//! evmap, and the same shootout measures it against `RwLock<HashMap>` (std and parking_lot) and
//! arc-swap.
//!
//! # Hashing
//!
//! The default hasher, [`FastRandomState`], is foldhash: fast and randomly seeded per map, but
//! not built to resist HashDoS. For keys an attacker chooses, pass std's SipHash:
//! `ShardedMap::with_hasher(std::hash::RandomState::new())`.
//!
//! # How it works
//!
//! [`CowMap`]'s design (versions, hazard slots, readers) is on its own page. A `ShardedMap` is
//! a power-of-two array of shards, each a `hashbrown::HashTable<(K, V)>` behind a
//! `parking_lot::RwLock`, in its own cache line beside an atomic copy of its length. An operation
//! hashes the key once; the top bits of the hash times an odd constant pick the shard (the hash's
//! own bits would not do: a hash that is one multiply by a seed, as foldhash's is for an integer,
//! piles consecutive keys into some shards under a few seeds in a thousand), and the same hash is
//! handed to the shard's table, which takes its slot tag from the top 7 bits and its probe start
//! from the low bits (a table rehashes its own keys only when it grows). This is the shape of
//! dashmap, whose lesson is that guards returned to callers deadlock when a caller holds one while
//! calling the map again; here closures replace guards, and a per-thread stack of the maps the
//! thread is inside (`src/sync/inside.rs`) turns any call back into the same map into a panic
//! before it locks. `CowMap`'s writes mark themselves on the same stack, so a write of a `CowMap`
//! from inside one of its own writes panics too.
//!
//! `len` reads each shard's length copy, which the write guard stores on release while it still
//! holds the lock: writers pay one store to a line they already own, and `len` takes no lock.
//!
//! Per-thread state: the re-entrancy stack, nine words per thread shared by every map,
//! `const`-initialised, never allocated and empty whenever the thread is not inside a closure,
//! so there is nothing for `clear` or `shrink_to_fit` to reach and nothing left behind when a
//! thread exits; and, for `CowMap`'s plain reads, the hazard slot last taken in each of up to 8
//! maps (8 × 16 bytes, also `const`-initialised and never allocated; see [`CowMap`]).

mod cow;
mod hasher;
mod quiet;
mod sharded;

pub use cow::{CowMap, Reader, Snapshot};
pub use hasher::{FastHasher, FastRandomState};
pub use sharded::{BuildError, Builder, Compute, IntoIter, ShardedMap};
