//! dhat: what `thrifty::map::ShardedMap` allocates, asserted. Lookups, updates, removes,
//! computes, whole-map walks and the re-entrancy check never allocate; inserting n keys into a
//! map made `with_capacity(n)` allocates nothing; `clear` keeps memory and `shrink_to_fit` and
//! drop give it back; `collect` allocates what `with_capacity` does, `extend` into a presized
//! map nothing, and `into_iter` nothing (and frees the map, early drop or not).
//!
//! dhat's profiler is global (it sees every thread), so one `#[test]` runs every case in turn,
//! and the two-thread case reads the stats only while its threads wait at a barrier.

#![cfg(not(loom))]

use std::sync::Barrier;
use thrifty::map::{Compute, ShardedMap};

mod common;
use common::{heap, join_all, park_once, warm_up_threads};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Keys spread over `u64` (an odd multiplier is a bijection).
fn key(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    warm_up_threads(|| {});
    presized_fill_allocates_nothing();
    memory_is_what_the_docs_say();
    single_key_operations_allocate_nothing();
    updates_on_a_full_shard_allocate_nothing();
    a_borrowed_upsert_makes_the_key_only_for_an_insert();
    computes_that_insert_nothing_allocate_nothing();
    whole_map_walks_and_reentry_checks_allocate_nothing();
    clear_keeps_memory_and_shrink_and_drop_free_it();
    churn_at_a_steady_size_grows_each_shard_once_at_most();
    two_threads_updating_allocate_nothing();
    collect_extend_and_into_iter_allocate_as_documented();
}

fn presized_fill_allocates_nothing() {
    for (n, shards) in [
        (100_000, None),
        (10_000, Some(64)),
        (1_000, Some(1)),
        (37, Some(8)),
    ] {
        let map = match shards {
            None => ShardedMap::with_capacity(n as usize),
            Some(s) => ShardedMap::builder().capacity(n as usize).shards(s).build(),
        };
        let before = heap();
        for i in 0..n {
            assert!(map.insert(key(i), i).is_none());
        }
        let after = heap();
        assert_eq!(map.len(), n as usize);
        assert_eq!(
            after.total_blocks,
            before.total_blocks,
            "filling a map presized for {n} ({} shards) allocated",
            map.shard_count()
        );
    }
}

/// The figures in `ShardedMap`'s docs: one 128-byte padded slot per shard on x86-64 (16 KiB for
/// an empty map of 128 shards), and `with_capacity(1000)` of `(u64, u64)` on 128 shards
/// reserving about 70 KiB of tables (32 buckets a shard: 16-byte entries plus control bytes).
fn memory_is_what_the_docs_say() {
    let before = heap();
    let empty: ShardedMap<u64, u64> = ShardedMap::builder().shards(128).build();
    let headers = heap().curr_bytes - before.curr_bytes;
    assert_eq!(
        heap().total_blocks - before.total_blocks,
        1,
        "an empty map is one allocation: the shard array"
    );
    if cfg!(target_arch = "x86_64") {
        assert_eq!(headers, 128 * 128, "an empty map of 128 shards");
    }
    drop(empty);
    let before = heap();
    let presized: ShardedMap<u64, u64> = ShardedMap::builder().shards(128).capacity(1000).build();
    let tables = heap().curr_bytes - before.curr_bytes - headers;
    assert!(
        (64 << 10..=76 << 10).contains(&tables),
        "with_capacity(1000) on 128 shards reserved {tables} bytes of tables, not about 70 KiB"
    );
    drop(presized);
}

fn single_key_operations_allocate_nothing() {
    let map = ShardedMap::with_capacity(10_000);
    (0..10_000).for_each(|i| {
        map.insert(key(i), i);
    });
    let before = heap();
    for i in 0..20_000u64 {
        let k = key(i % 10_000);
        std::hint::black_box(map.read(&k, |v| *v));
        std::hint::black_box(map.get_cloned(&k));
        std::hint::black_box(map.contains_key(&key(i + 1_000_000)));
        map.update(&k, |v| *v += 1);
        map.get_or_insert_with(k, || 0, |v| *v += 1);
        map.get_or_insert_with_ref(&k, || 0, |v| *v += 1);
        map.compute(k, |v| {
            *v.unwrap() += 1;
            Compute::Keep
        });
        map.insert(k, i); // replaces
        if i % 7 == 0 {
            // Remove and put back: the freed slot is reused.
            let v = map.remove(&k).unwrap();
            assert!(map.compute(k, |_| Compute::Set(v)).is_none());
        }
    }
    std::hint::black_box((map.len(), map.is_empty()));
    let after = heap();
    assert_eq!(
        after.total_blocks, before.total_blocks,
        "lookups/updates allocated"
    );
}

/// `get_or_insert_with_ref` on `String` keys: a present key, asked by `&str`, allocates
/// nothing; an absent one allocates its `String` (the table presized, so nothing else), where
/// the owned form makes a `String` on every call.
fn a_borrowed_upsert_makes_the_key_only_for_an_insert() {
    let map: ShardedMap<String, u64> = ShardedMap::builder().shards(1).capacity(64).build();
    let words: Vec<String> = (0..32).map(|i| format!("word-{i}")).collect();
    let count = |f: &dyn Fn()| {
        let start = heap().total_blocks;
        f();
        heap().total_blocks - start
    };
    let first = count(&|| {
        for w in &words {
            map.get_or_insert_with_ref(w.as_str(), || 0, |n| *n += 1);
        }
    });
    assert_eq!(first, 32, "one String per new key");
    let again = count(&|| {
        for w in &words {
            map.get_or_insert_with_ref(w.as_str(), || 0, |n| *n += 1);
        }
    });
    assert_eq!(again, 0, "present keys asked by &str");
    let owned = count(&|| {
        for w in &words {
            map.get_or_insert_with(w.clone(), || 0, |n| *n += 1);
        }
    });
    assert_eq!(owned, 32, "the owned form: a String per call");
    assert_eq!(map.get_cloned("word-7"), Some(3));
}

/// A shard with no room left (one shard presized for 7: 8 buckets, all 7 usable ones full):
/// replacing, updating and removing keys that are present must not grow it. hashbrown's `entry`
/// makes room before it looks, so these once doubled the table.
fn updates_on_a_full_shard_allocate_nothing() {
    let map = ShardedMap::builder().shards(1).capacity(7).build();
    (0..7).for_each(|i| assert!(map.insert(key(i), i).is_none()));
    let before = heap();
    for i in 0..7 {
        assert_eq!(map.insert(key(i), i + 1), Some(i));
        map.get_or_insert_with(key(i), || 0, |v| *v += 1);
        map.get_or_insert_with_ref(&key(i), || 0, |v| *v += 1);
        map.compute(key(i), |v| {
            *v.unwrap() += 1;
            Compute::Keep
        });
    }
    assert_eq!(map.compute(key(3), |_| Compute::Remove), Some(7)); // 3 + 1, then three adds
    let after = heap();
    assert_eq!(
        after.total_blocks, before.total_blocks,
        "updates on a full shard allocated"
    );
    assert_eq!(map.len(), 6);
}

/// `compute` on an absent key whose closure answers `Keep` or `Remove` is a lookup: it must
/// not make room for an insert, in a shard with no table yet (an empty map) or with no room
/// left (one shard presized for 7, filled). hashbrown's `entry` makes room before it looks,
/// so these once allocated a table, or doubled it. A `Set` then inserts (and may grow).
fn computes_that_insert_nothing_allocate_nothing() {
    let empty: ShardedMap<u64, u64> = ShardedMap::builder().shards(1).build();
    let full = ShardedMap::builder().shards(1).capacity(7).build();
    (0..7).for_each(|i| assert!(full.insert(key(i), i).is_none()));
    for (what, map) in [("an empty shard", &empty), ("a full shard", &full)] {
        let len = map.len();
        let before = heap();
        for i in 100..110 {
            assert_eq!(
                map.compute(key(i), |v| {
                    assert!(v.is_none());
                    Compute::Keep
                }),
                None
            );
            assert_eq!(map.compute(key(i), |_| Compute::Remove), None);
        }
        let after = heap();
        assert_eq!(
            after.total_blocks - before.total_blocks,
            0,
            "compute on absent keys, inserting nothing, allocated in {what}"
        );
        assert_eq!(map.len(), len);
        // A `Set` of an absent key inserts it, growing the shard's table.
        assert_eq!(map.compute(key(200), |_| Compute::Set(200)), None);
        assert!(
            heap().total_blocks > after.total_blocks,
            "{what}: premise: no room left"
        );
        assert_eq!((map.len(), map.get_cloned(&key(200))), (len + 1, Some(200)));
    }
}

fn whole_map_walks_and_reentry_checks_allocate_nothing() {
    let a = ShardedMap::with_capacity(1000);
    let b = ShardedMap::with_capacity(1000);
    (0..1000).for_each(|i| {
        a.insert(key(i), i);
    });
    let before = heap();
    let mut sum = 0;
    a.for_each(|_, v| sum += v);
    a.retain(|_, v| {
        *v += 1;
        true
    });
    // Nested maps: a closure of `a` that writes `b` (one nested entry each).
    a.for_each(|k, v| {
        b.insert(*k, *v);
    });
    let after = heap();
    assert_eq!(sum, 999 * 1000 / 2);
    assert_eq!(b.len(), 1000);
    assert_eq!(after.total_blocks, before.total_blocks, "walks allocated");
}

/// A session table at its steady size: each round removes the oldest key and inserts a new
/// one. Removes leave tombstones, so a shard presized more than half full rehashes into a table
/// twice the size once, and in place after that: at most one allocation per shard, however long
/// the churn. A map presized for twice the entries allocates nothing.
fn churn_at_a_steady_size_grows_each_shard_once_at_most() {
    let n = 20_000u64;
    for (presized, shards, most) in [(n, 16, 16), (2 * n, 16, 0), (896, 1, 1)] {
        let n = n.min(presized);
        let map = ShardedMap::builder()
            .shards(shards)
            .capacity(presized as usize)
            .build();
        (0..n).for_each(|i| assert!(map.insert(key(i), i).is_none()));
        let mut round = 0;
        let mut churn = |rounds: u64| {
            let before = heap().total_blocks;
            for _ in 0..rounds {
                assert!(map.remove(&key(round)).is_some());
                assert!(map.insert(key(n + round), round).is_none());
                round += 1;
            }
            heap().total_blocks - before
        };
        let grown: Vec<u64> = (0..4).map(|_| churn(2 * n)).collect();
        assert_eq!(map.len(), n as usize);
        assert!(
            grown.iter().sum::<u64>() <= most,
            "presized for {presized}, {n} keys, {shards} shards: allocations in each {} rounds: \
             {grown:?}",
            2 * n
        );
    }
}

fn clear_keeps_memory_and_shrink_and_drop_free_it() {
    let start = heap();
    let map = ShardedMap::with_shards(8);
    (0..50_000).for_each(|i| {
        map.insert(key(i), i);
    });
    let full = heap();
    map.clear();
    assert!(map.is_empty());
    let cleared = heap();
    assert_eq!(
        cleared.curr_bytes, full.curr_bytes,
        "clear keeps the tables"
    );
    (0..50_000).for_each(|i| {
        map.insert(key(i), i);
    });
    assert_eq!(
        heap().total_blocks,
        cleared.total_blocks,
        "refill reuses them"
    );
    map.clear();
    map.shrink_to_fit();
    let shrunk = heap();
    // What stays is the shard array: 8 cache-padded shards.
    assert!(
        shrunk.curr_bytes - start.curr_bytes <= 8 * 128,
        "shrink_to_fit kept {} of {} bytes",
        shrunk.curr_bytes - start.curr_bytes,
        full.curr_bytes - start.curr_bytes
    );
    drop(map);
    let end = heap();
    assert_eq!(
        (end.curr_blocks, end.curr_bytes),
        (start.curr_blocks, start.curr_bytes),
        "drop freed everything"
    );
}

fn two_threads_updating_allocate_nothing() {
    let map = ShardedMap::with_capacity(4096);
    (0..4096).for_each(|i| {
        map.insert(key(i), 0u64);
    });
    let gate = Barrier::new(3);
    let (before, after) = std::thread::scope(|s| {
        let mut threads = Vec::new();
        for t in 0..2u64 {
            let (map, gate) = (&map, &gate);
            threads.push(s.spawn(move || {
                // A thread's first park sets up parking_lot's per-thread data (it allocates),
                // and contended shard locks may park: do it before the measured span.
                park_once();
                gate.wait(); // main reads `before`
                gate.wait();
                for i in 0..50_000u64 {
                    let k = key((i * 2 + t) % 4096);
                    map.update(&k, |v| *v += 1);
                    map.compute(k, |v| {
                        *v.unwrap() += 1;
                        Compute::Keep
                    });
                    std::hint::black_box(map.read(&key(i % 4096), |v| *v));
                }
                gate.wait(); // main reads `after`
                gate.wait();
            }));
        }
        gate.wait();
        let before = heap();
        gate.wait();
        gate.wait();
        let after = heap();
        gate.wait();
        // Joined by hand: `scope` returns once the closures have, and the threads' teardown
        // (their thread-locals) could free blocks into the next case's counts.
        join_all(threads);
        (before, after)
    });
    let mut total = 0;
    map.for_each(|_, v| total += v);
    assert_eq!(total, 2 * 50_000 * 2, "no update lost");
    assert_eq!(
        after.total_blocks, before.total_blocks,
        "two threads updating allocated"
    );
}

/// `collect` allocates what `with_capacity` of its size-hint does (the shard array and the
/// presized tables), and no more while filling them; `extend` into a presized map allocates
/// nothing; `into_iter` allocates nothing, whole or dropped part-way, and frees everything.
fn collect_extend_and_into_iter_allocate_as_documented() {
    let n = 10_000u64;
    let start = heap();
    let before = heap();
    let presized: ShardedMap<u64, u64> = ShardedMap::with_capacity(n as usize);
    let built = heap().total_blocks - before.total_blocks;
    let bytes = heap().curr_bytes - before.curr_bytes;
    drop(presized);

    let before = heap();
    let map: ShardedMap<u64, u64> = (0..n).map(|i| (key(i), i)).collect();
    let after = heap();
    assert_eq!(map.len(), n as usize);
    assert_eq!(
        after.total_blocks - before.total_blocks,
        built,
        "collect allocated beyond with_capacity's tables"
    );
    assert_eq!(after.curr_bytes - before.curr_bytes, bytes);

    let target: ShardedMap<u64, u64> = ShardedMap::with_capacity(2 * n as usize);
    let before = heap();
    (&target).extend((0..n).map(|i| (key(i), i)));
    let mut target = target;
    target.extend((n..2 * n).map(|i| (key(i), i)));
    assert_eq!(heap().total_blocks, before.total_blocks, "extend allocated");

    let before = heap();
    let mut sum = 0u64;
    for (_, v) in map {
        sum += v;
    }
    assert_eq!(sum, n * (n - 1) / 2);
    let mut part = target.into_iter();
    part.by_ref().take(1_000).for_each(drop);
    drop(part);
    let after = heap();
    assert_eq!(
        after.total_blocks, before.total_blocks,
        "into_iter allocated"
    );
    assert_eq!(
        (after.curr_blocks, after.curr_bytes),
        (start.curr_blocks, start.curr_bytes),
        "into_iter did not free the maps"
    );
}
