//! Concurrent hash maps: [`ShardedMap`] for maps that many threads write; `CowMap`
//! (copy-on-write, readers never wait) is *planned*.
//!
//! # Which map when
//!
//! | your map | use | why |
//! | --- | --- | --- |
//! | written by many threads (counters per key, caches filled by workers, session tables) | [`ShardedMap`] | writers on different shards never meet; no guard can escape to deadlock |
//! | read constantly, written rarely (config, routing tables), readers must never wait | `CowMap` (*planned*) | reads take no lock; a write copies the map |
//! | touched by a few threads a few times a second, or needs whole-map snapshots | `RwLock<HashMap>` (std or parking_lot) | simplest; one lock makes every view consistent |
//! | one hot key takes most of the traffic | `counter::Counter` for the hot value | one key is one shard: sharding cannot spread it |
//!
//! `cargo bench --bench map_sharded` and `cargo run --release --example shootout -- --only map`
//! measure ShardedMap against `Mutex<HashMap>`, `RwLock<HashMap>`, dashmap, scc and papaya.
//!
//! # Hashing
//!
//! The default hasher, [`FastRandomState`], is foldhash: fast and randomly seeded per map, but
//! not built to resist HashDoS. For keys an attacker chooses, pass std's SipHash:
//! `ShardedMap::with_hasher(std::hash::RandomState::new())`.
//!
//! # How it works
//!
//! A `ShardedMap` is a power-of-two array of shards, each a `hashbrown::HashTable<(K, V)>` behind
//! a `parking_lot::RwLock`, in its own cache line beside an atomic copy of its length. An
//! operation hashes the key once; bits 56 and down of the hash pick the shard, and the same hash
//! is handed to the shard's table, which takes its slot tag from the top 7 bits and its probe
//! start from the low bits (a table rehashes its own keys only when it grows). This is the shape
//! of dashmap, whose lesson is that guards returned to callers deadlock when a caller holds one
//! while calling the map again; here closures replace guards, and a per-thread stack of the maps
//! the thread is inside (`src/sync/inside.rs`) turns any call back into the same map into a
//! panic before it locks.
//!
//! `len` reads each shard's length copy, which the write guard stores on release while it still
//! holds the lock: writers pay one store to a line they already own, and `len` takes no lock.

mod hasher;
mod sharded;

pub use hasher::{FastHasher, FastRandomState};
pub use sharded::{BuildError, Builder, Compute, ShardedMap};
