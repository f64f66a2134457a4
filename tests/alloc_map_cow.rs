//! dhat: what `thrifty::map::CowMap` allocates, asserted.
//!
//! dhat's profiler is global, so one `#[test]` runs every case in turn.

#![cfg(not(loom))]

use std::collections::HashMap;
use thrifty::map::CowMap;

mod common;
use common::{heap, settled};
use std::sync::Barrier;
use std::time::Duration;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    // dhat counts every thread: let the test harness's main thread finish its own start-up.
    settled(Duration::from_millis(50), |_| false);
    reads_allocate_nothing();
    version_and_retired_versions_allocate_nothing();
    reads_on_two_threads_allocate_nothing();
    a_batch_of_writes_makes_one_copy();
    store_allocates_one_block_whatever_the_map_size();
    a_write_reuses_the_version_a_reader_let_go_of();
    a_hasher_with_drop_glue_costs_a_copy_its_table();
    an_idle_reader_makes_writes_copy_unless_it_lets_go();
    readers_that_come_and_go_leave_writes_a_spare();
    a_write_builds_in_a_version_no_snapshot_holds();
    reader_slots_are_one_padded_block_and_reused();
    old_versions_are_freed_once_readers_move_on();
    everything_is_freed_with_the_map();
}

fn entries(n: u64) -> HashMap<u64, u64> {
    (0..n).map(|k| (k, k)).collect()
}

/// Fails naming `what` if `f`, run 10 000 times, allocated.
fn allocates_nothing(what: &str, mut f: impl FnMut(u64) -> u64) {
    let before = heap().total_blocks;
    let mut sum = 0u64;
    for i in 0..10_000u64 {
        sum = sum.wrapping_add(f(i % 1000));
    }
    let blocks = heap().total_blocks - before;
    assert_eq!(
        blocks, 0,
        "{what} allocated {blocks} blocks in 10 000 calls"
    );
    std::hint::black_box(sum);
}

/// Every kind of read, including a `Reader`'s first read after a write (its slow path), once
/// the hazard registry holds as many slots as reads run at once.
fn reads_allocate_nothing() {
    let map = CowMap::from_map(entries(1000));
    let mut reader = map.reader();
    map.read(&1, |_| map.len()); // two reads at once: the registry grows to two slots
    map.insert(0, 1);
    allocates_nothing("Reader::read", |k| reader.read(&k, |v| *v).unwrap());
    allocates_nothing("Reader::map", |_| reader.map().len() as u64);
    allocates_nothing("Reader::snapshot", |k| reader.snapshot()[&k]);
    allocates_nothing("CowMap::read", |k| map.read(&k, |v| *v).unwrap());
    allocates_nothing("CowMap::get_cloned", |k| map.get_cloned(&k).unwrap());
    allocates_nothing("CowMap::contains_key and len", |k| {
        u64::from(map.contains_key(&k)) + map.len() as u64
    });
    allocates_nothing("CowMap::snapshot", |k| map.snapshot()[&k]);
    allocates_nothing("a read inside a read", |k| {
        map.read(&k, |_| map.len() as u64).unwrap()
    });
    // The reader's slow path, after each write: measured between the writes.
    let mut read_blocks = 0;
    for i in 0..100u64 {
        map.insert(i, i);
        let start = heap().total_blocks;
        assert_eq!(reader.read(&i, |v| *v), Some(i));
        read_blocks += heap().total_blocks - start;
    }
    assert_eq!(read_blocks, 0, "a reader's refresh allocated");
}

/// `CowMap::version`, `retired_versions` and `is_empty` allocate nothing: reads, as documented.
fn version_and_retired_versions_allocate_nothing() {
    let map = CowMap::from_map(entries(1000));
    let snap = map.snapshot();
    map.insert(0, 1); // `snap` keeps the first version: one retired
    allocates_nothing("CowMap::version", |_| map.version());
    allocates_nothing("CowMap::retired_versions and is_empty", |_| {
        map.retired_versions() as u64 + u64::from(map.is_empty())
    });
    assert_eq!((map.version(), map.retired_versions()), (1, 1));
    drop(snap);
}

fn reads_on_two_threads_allocate_nothing() {
    let map = CowMap::from_map(entries(1000));
    // Warm-up: the threads' own machinery, and four hazard slots: one per `Reader` (held for
    // its life) and one per plain read, on two threads at once.
    let both = Barrier::new(2);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut reader = map.reader();
                map.read(&1, |_| {
                    both.wait();
                    reader.read(&1, |v| *v)
                })
            });
        }
    });
    map.read(&1, |_| map.len());
    // Both threads measure between two barriers, after both are spawned and set up.
    let (start, end) = (Barrier::new(2), Barrier::new(2));
    let reads = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut reader = map.reader();
                    let mut sum = 0u64;
                    start.wait();
                    let before = heap().total_blocks;
                    for i in 0..10_000u64 {
                        sum += reader.read(&(i % 1000), |v| *v).unwrap();
                        sum += map.read(&(i % 1000), |v| *v).unwrap();
                    }
                    let blocks = heap().total_blocks - before;
                    end.wait();
                    (blocks, sum)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    // dhat counts are global: each thread's span also covers the other's reads.
    for (blocks, sum) in reads {
        assert_eq!(blocks, 0, "reads on two threads allocated");
        assert!(sum > 0);
    }
}

/// `store` moves the given map into a new version: one block (the version's `Arc`), for a map
/// of 10 entries as for one of 10 000, where a write that replaced the map through `update`
/// would copy the current version first.
fn store_allocates_one_block_whatever_the_map_size() {
    let map = CowMap::from_map(entries(10));
    map.store(entries(10)); // the first write also allocates the writer's retired list
    for n in [10, 10_000] {
        let next = entries(n); // built before counting, as a reload builds it off to the side
        let start = heap().total_blocks;
        map.store(next);
        assert_eq!(
            heap().total_blocks - start,
            1,
            "store of {n} entries: the version's block only"
        );
    }
    assert_eq!(map.len(), 10_000);
    let start = heap().total_blocks;
    map.clear();
    assert_eq!(
        heap().total_blocks - start,
        1,
        "clear: the version's block only"
    );
    assert!(map.is_empty());
}

/// One write of k changes allocates what one write of one change does: one table and one
/// version block; k single writes allocate k times that.
fn a_batch_of_writes_makes_one_copy() {
    let map = CowMap::from_map(entries(1000));
    let blocks = |f: &dyn Fn()| {
        let start = heap().total_blocks;
        f();
        heap().total_blocks - start
    };
    map.insert(0, 0); // the first write also allocates the writer's retired list
    let one = blocks(&|| {
        map.update(|m| m.insert(1, 2));
    });
    let batch = blocks(&|| {
        map.update(|m| {
            for k in 0..100 {
                m.insert(k, k + 1);
            }
        })
    });
    let singles = blocks(&|| {
        for k in 0..100 {
            map.insert(k, k + 2);
        }
    });
    assert_eq!(
        one, 2,
        "a write allocates its copy of the table and the version's block"
    );
    assert_eq!(batch, one, "a batch of 100 changes copied more than once");
    assert_eq!(singles, 100 * one);
    // A remove of an absent key copies nothing.
    assert_eq!(blocks(&|| assert_eq!(map.remove(&5000), None)), 0);
}

/// A reader that moves on hands its old version to the map, and the next write copies into
/// it: a steady stream of writes and reader refreshes allocates nothing (`u64` entries, so the
/// copy is one `clone_from` into a table of the same size).
fn a_write_reuses_the_version_a_reader_let_go_of() {
    let map = CowMap::from_map(entries(1000));
    let mut reader = map.reader();
    map.insert(0, 1); // a new version; the reader holds the first
    assert_eq!(reader.read(&0, |v| *v), Some(1)); // ... and lets it go: the spare
    let before = heap().total_blocks;
    for i in 2..102 {
        map.insert(0, i);
        assert_eq!(reader.read(&0, |v| *v), Some(i));
    }
    assert_eq!(
        heap().total_blocks - before,
        0,
        "100 writes, each followed by a reader's refresh, allocated"
    );
    assert_eq!(map.retired_versions(), 1, "the spare");
    map.trim();
    assert_eq!(map.retired_versions(), 0);
}

/// A hasher with drop glue (a no-op `Drop`; its clone allocates nothing).
#[derive(Clone, Default)]
struct Glue(std::hash::BuildHasherDefault<std::hash::DefaultHasher>);

impl std::hash::BuildHasher for Glue {
    type Hasher = std::hash::DefaultHasher;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

impl Drop for Glue {
    fn drop(&mut self) {}
}

/// The type's Allocation doc: with a hasher that has drop glue, a write that copies the whole
/// map into the spare builds a new table beside it (the spare's table and hasher are dropped
/// after the lock), one allocation per write; a write that replays one change into the spare
/// allocates nothing, as with plain data. With the default hasher the copy allocates nothing.
fn a_hasher_with_drop_glue_costs_a_copy_its_table() {
    fn rounds<S: std::hash::BuildHasher + Clone>(map: &CowMap<u64, u64, S>, batch: bool) -> u64 {
        let mut reader = map.reader();
        map.insert(0, 1); // the reader holds the first version, then lets it go: the spare
        assert_eq!(reader.read(&0, |v| *v), Some(1));
        map.update(|m| m.insert(0, 1)); // no single change recorded: the next write copies
        assert_eq!(reader.read(&0, |v| *v), Some(1));
        let before = heap().total_blocks;
        for i in 2..102 {
            if batch {
                map.update(|m| m.insert(0, i)); // a whole copy each time
            } else {
                map.insert(0, i); // a replay of the last change each time
            }
            assert_eq!(reader.read(&0, |v| *v), Some(i));
        }
        heap().total_blocks - before
    }
    let glue = |n| {
        let mut m = HashMap::with_hasher(Glue::default());
        m.extend((0..n).map(|k| (k, k)));
        CowMap::from_map(m)
    };
    assert_eq!(
        rounds(&glue(1000), true),
        100,
        "whole copies: one table each"
    );
    // The first insert after the update copies (nothing to replay), the other 99 replay.
    assert_eq!(rounds(&glue(1000), false), 1, "replays allocate nothing");
    assert_eq!(
        rounds(&CowMap::from_map(entries(1000)), true),
        0,
        "default hasher"
    );
}

/// Short-lived `Reader`s beside one that stays (a handle per task, say): each holds the version
/// a write replaces, and its drop leaves that version as the next write's spare, since the one
/// that stays is on the current version. No write allocates; the last reader's drop frees the
/// spare.
fn readers_that_come_and_go_leave_writes_a_spare() {
    let map = CowMap::from_map(entries(1000));
    let mut stays = map.reader();
    drop(map.reader()); // the registry's second reader slot, which each `passing` reuses
    map.insert(0, 1);
    assert_eq!(stays.read(&0, |v| *v), Some(1)); // the spare
    let before = heap().total_blocks;
    for i in 2..102 {
        let mut passing = map.reader();
        assert_eq!(passing.read(&0, |v| *v), Some(i - 1));
        map.insert(0, i); // `passing` holds the version this replaces
        assert_eq!(stays.read(&0, |v| *v), Some(i));
        drop(passing);
        assert_eq!(
            map.retired_versions(),
            1,
            "the version `passing` held: the spare"
        );
    }
    assert_eq!(
        heap().total_blocks - before,
        0,
        "100 writes, each after a reader's drop, allocated"
    );
    drop(stays);
    assert_eq!(
        map.retired_versions(),
        0,
        "the last reader's drop frees the spare"
    );
}

/// A `Reader` that idles holding an old version leaves writes no spare (the map keeps one old
/// version per reader, and that one is held): each write copies the whole map, a table and a
/// version allocated and the previous ones freed. One that let go (`Reader::let_go`) holds
/// nothing, the map keeps a spare for it, and writes build in that spare: none allocates.
fn an_idle_reader_makes_writes_copy_unless_it_lets_go() {
    let map = CowMap::from_map(entries(1000));
    let mut reader = map.reader();
    assert_eq!(reader.read(&0, |v| *v), Some(0));
    map.insert(0, 1); // `reader` now holds an old version, and idles
    let before = heap().total_blocks;
    for i in 2..12 {
        map.insert(0, i);
    }
    assert_eq!(
        heap().total_blocks - before,
        20,
        "10 writes while an idle reader held an old version: each allocates a table and a version"
    );
    assert_eq!(
        map.retired_versions(),
        1,
        "the version the idle reader holds"
    );
    reader.let_go();
    let before = heap().total_blocks;
    map.insert(0, 12); // copies the map into the version let go of (too old to replay into)
    assert_eq!(
        heap().total_blocks - before,
        0,
        "a copy into the spare, at the same capacity"
    );
    let before = heap().total_blocks;
    for i in 13..113 {
        map.insert(0, i);
    }
    assert_eq!(
        heap().total_blocks - before,
        0,
        "100 writes while a reader that let go idled allocated"
    );
    assert_eq!(
        map.retired_versions(),
        1,
        "the spare, kept for the reader that let go"
    );
    assert_eq!(
        reader.read(&0, |v| *v),
        Some(112),
        "a reader that let go reads the current version"
    );
    drop(reader);
    assert_eq!(
        map.retired_versions(),
        0,
        "the reader's drop frees the spare kept for it"
    );
}

/// Two old versions no reader holds, the newer one held by a `Snapshot` (which makes it
/// unusable to build in): the write builds in the older one, allocating nothing.
fn a_write_builds_in_a_version_no_snapshot_holds() {
    let map = CowMap::from_map(entries(1000));
    let (mut a, mut b) = (map.reader(), map.reader());
    assert_eq!((a.read(&0, |v| *v), b.read(&0, |v| *v)), (Some(0), Some(0)));
    map.insert(0, 1); // version 1; version 0 kept: both readers hold it
    let snap = map.snapshot(); // holds version 1
    assert_eq!(b.read(&0, |v| *v), Some(1));
    map.insert(0, 2); // version 2; `a` still holds 0 and `b` holds 1: both kept
    assert_eq!((a.read(&0, |v| *v), b.read(&0, |v| *v)), (Some(2), Some(2)));
    assert_eq!(
        map.retired_versions(),
        2,
        "versions 0 and 1, which no reader holds now"
    );
    let before = heap().total_blocks;
    map.insert(0, 3);
    assert_eq!(
        heap().total_blocks - before,
        0,
        "the write skipped version 0 for version 1, which the snapshot holds, and allocated"
    );
    assert_eq!(snap[&0], 1, "the snapshot's version is untouched");
    drop((a, b, snap));
    map.trim();
    assert_eq!(map.retired_versions(), 0);
}

/// A `Reader`'s hazard slot is one block of a `CachePadded` node (128 bytes on x86-64, as the
/// docs say), made only when no slot a dropped `Reader` gave back is free: `Reader`s made after
/// others were dropped, in any order, allocate nothing.
fn reader_slots_are_one_padded_block_and_reused() {
    let map = CowMap::from_map(entries(10));
    let mut readers = Vec::with_capacity(8);
    let before = heap();
    readers.extend((0..8).map(|_| map.reader()));
    let after = heap();
    assert_eq!(
        after.total_blocks - before.total_blocks,
        8,
        "a block per slot"
    );
    if cfg!(target_arch = "x86_64") {
        assert_eq!(
            after.curr_bytes - before.curr_bytes,
            8 * 128,
            "slots of 128 bytes"
        );
    }
    readers.swap(1, 6);
    readers.truncate(3);
    readers.extend((0..5).map(|_| map.reader()));
    readers.retain(|_| false);
    readers.extend((0..8).map(|_| map.reader()));
    assert_eq!(
        heap().total_blocks,
        after.total_blocks,
        "a dropped Reader's slot was not reused"
    );
}

/// What a map holds besides its versions in `old_versions_are_freed_once_readers_move_on`:
/// two hazard slots (the `Reader`'s, held for its life, and the snapshot's, claimed while the
/// reader held the first) of one padded block each, and the writers' retired list.
const SLOTS_AND_LIST: usize = 1024;

fn old_versions_are_freed_once_readers_move_on() {
    let map = CowMap::from_map(entries(10_000));
    let one_version = heap().curr_bytes;
    let mut reader = map.reader();
    let snap = map.snapshot();
    map.insert(1, 2);
    let pinned = heap().curr_bytes;
    assert!(
        pinned > one_version,
        "the reader and snapshot keep the first version"
    );
    assert_eq!(map.retired_versions(), 1);
    drop(snap);
    assert_eq!(reader.read(&1, |v| *v), Some(2));
    // The reader let go of the first version; the map keeps it as the spare for the next
    // write, until `trim`.
    assert_eq!(map.retired_versions(), 1);
    map.trim();
    assert_eq!(map.retired_versions(), 0);
    let moved_on = heap().curr_bytes;
    assert!(
        moved_on <= one_version + SLOTS_AND_LIST,
        "{moved_on} bytes held, {one_version} for one version"
    );
    drop(reader);
    // A plain read in progress during a write: kept by the write, freed by the next one.
    map.read(&1, |_| map.insert(2, 3));
    assert_eq!(map.retired_versions(), 1);
    map.insert(3, 4);
    assert_eq!(map.retired_versions(), 0);
    assert!(heap().curr_bytes <= one_version + SLOTS_AND_LIST);
}

fn everything_is_freed_with_the_map() {
    let before = heap();
    let map = CowMap::from_map(entries(1000));
    let reader = map.reader();
    let snap = map.snapshot();
    map.insert(1, 1);
    map.read(&1, |_| map.insert(2, 2));
    drop(map);
    drop(reader);
    drop(snap);
    let after = heap();
    assert_eq!(
        (after.curr_blocks, after.curr_bytes),
        (before.curr_blocks, before.curr_bytes),
        "blocks leaked"
    );
}
