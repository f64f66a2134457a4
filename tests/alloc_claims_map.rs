//! dhat: allocation claims of `thrifty::map`'s docs that `tests/alloc_map_sharded.rs` and
//! `tests/alloc_map_cow.rs` do not assert. `FastRandomState`: "No allocation ... (but for the
//! process's first `new` ...: one allocation, once)", and `FastHasher`: "No allocation";
//! `Builder`: "The builder allocates nothing; `build` allocates the shard array and, with a
//! capacity, each shard's table"; `From<HashMap>`: "As `FromIterator`: the shard array and
//! presized tables ...; the `HashMap`'s memory is freed"; `Snapshot`: "Nothing to take, clone or
//! read" (taking one from a `Reader`, cloning, reading, dropping).
//!
//! dhat's profiler is global, so one `#[test]` runs every case in turn.

#![cfg(not(loom))]

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use thrifty::map::{CowMap, FastRandomState, ShardedMap};

mod common;
use common::{allocated, allocates_nothing, heap, park_once, warm_up_threads};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    // The harness's and std's one-time thread allocations, before anything is counted.
    warm_up_threads(park_once);
    // First: the process's first `FastRandomState` is the one that may allocate.
    fast_random_state_allocates_once_per_process_and_hashing_never();
    the_builder_allocates_nothing_and_build_the_array_and_tables();
    from_a_hash_map_allocates_as_with_capacity_and_frees_the_hash_map();
    snapshots_allocate_nothing_to_take_clone_or_read();
}

fn fast_random_state_allocates_once_per_process_and_hashing_never() {
    let ((first, _), state) = allocated(FastRandomState::new);
    assert!(first <= 1, "the first FastRandomState::new: {first} blocks");
    allocates_nothing("FastRandomState::new/default after the first", || {
        for _ in 0..1000 {
            std::hint::black_box(FastRandomState::new());
            std::hint::black_box(FastRandomState::default());
        }
    });
    allocates_nothing("FastHasher", || {
        let mut sum = 0u64;
        for i in 0..1000u64 {
            sum = sum.wrapping_add(state.hash_one(i));
            let mut h = state.build_hasher();
            "a longer string key than a word".hash(&mut h);
            h.write_u128(u128::from(i));
            sum = sum.wrapping_add(h.finish());
        }
        std::hint::black_box(sum);
    });
}

fn the_builder_allocates_nothing_and_build_the_array_and_tables() {
    // The process's first build without `shards` asks the OS for the CPU count: done here.
    drop(ShardedMap::<u64, u64>::new());
    allocates_nothing("ShardedMap::builder and its setters", || {
        let b = ShardedMap::<u64, u64>::builder()
            .shards(8)
            .capacity(1000)
            .hasher(FastRandomState::default());
        std::hint::black_box(&b);
        drop(b);
    });
    for shards in [1, 8, 64] {
        let ((blocks, _), map) =
            allocated(|| ShardedMap::<u64, u64>::builder().shards(shards).build());
        assert_eq!(
            blocks, 1,
            "{shards} shards, no capacity: the shard array only"
        );
        drop(map);
        let ((blocks, _), map) = allocated(|| {
            ShardedMap::<u64, u64>::builder()
                .shards(shards)
                .capacity(100 * shards)
                .build()
        });
        assert_eq!(
            blocks,
            1 + shards as u64,
            "{shards} shards with a capacity: the array and one table a shard"
        );
        drop(map);
    }
}

fn from_a_hash_map_allocates_as_with_capacity_and_frees_the_hash_map() {
    let n = 5_000u64;
    let hasher = FastRandomState::default();
    let before = heap();
    let presized: ShardedMap<u64, u64> =
        ShardedMap::with_capacity_and_hasher(n as usize, hasher.clone());
    let built_blocks = heap().total_blocks - before.total_blocks;
    let built_bytes = heap().curr_bytes - before.curr_bytes;
    drop(presized);

    let mut plain = HashMap::with_hasher(hasher);
    for i in 0..n {
        plain.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i);
    }
    let before = heap();
    let map = ShardedMap::from(plain);
    let after = heap();
    assert_eq!(map.len(), n as usize);
    assert_eq!(
        after.total_blocks - before.total_blocks,
        built_blocks,
        "From<HashMap> allocated beyond with_capacity's array and tables"
    );
    // The HashMap's table is freed: what is held now is the presized map, less the HashMap.
    assert!(
        after.curr_bytes <= before.curr_bytes - (n as usize * 16) + built_bytes,
        "the HashMap's memory was not freed: {} bytes before, {} after, {built_bytes} for the map",
        before.curr_bytes,
        after.curr_bytes
    );
    assert_eq!(
        after.curr_blocks + 1,
        before.curr_blocks + built_blocks as usize,
        "one block (the HashMap's table) freed"
    );
    drop(map);
}

fn snapshots_allocate_nothing_to_take_clone_or_read() {
    let map: CowMap<u64, u64> = (0..1000u64).map(|i| (i, i)).collect();
    let mut reader = map.reader();
    // The map's first snapshot claims a hazard slot (one padded block, kept): take it first.
    drop(map.snapshot());
    allocates_nothing("Snapshot: take, clone, read, drop", || {
        for i in 0..1000u64 {
            let snap = reader.snapshot();
            let again = snap.clone();
            let other = map.snapshot();
            assert_eq!(snap[&i], i);
            assert_eq!(again.get(&i), Some(&i));
            assert_eq!(other.len(), 1000);
            assert_eq!(snap.version(), other.version());
            drop((snap, again, other));
        }
    });
}
