//! dhat: `pool::Builder`'s Allocation claim that `tests/alloc_pool.rs` does not assert exactly:
//! "The first 8 threads' caches are inside the pool; the others come in leaves of 8, each
//! allocated when a thread of its 8 slots first uses the pool" (and `caches.rs`: "a leaf of 8
//! caches (3 KiB on x86-64) per 8-slot range used"). Sixteen threads, holding thread slots 0 to
//! 15 (the registry hands out the lowest free index, and they claim in turn), each use a fresh
//! pool for the first time, one at a time: slots 0 to 7 allocate nothing, slot 8 one leaf, slots
//! 9 to 15 nothing more.
//!
//! dhat's profiler is global (it sees every thread), so one `#[test]` runs it, and the heap is
//! read only while every other thread waits at a barrier.

use std::sync::Barrier;
use thrifty::pool::Pool;

mod common;
use common::{heap, park_once, warm_up_threads};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const THREADS: usize = 16;

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    // The harness's and std's one-time thread allocations, before anything is counted.
    warm_up_threads(park_once);
    a_pool_allocates_one_leaf_per_eight_slots_past_the_first_eight();
}

fn a_pool_allocates_one_leaf_per_eight_slots_past_the_first_eight() {
    // Used only to make each thread claim its slot, in turn.
    let claim = Pool::new(Vec::<u8>::new);
    let pool = Pool::new(Vec::<u8>::new);
    let barrier = Barrier::new(THREADS);
    // This thread takes slot 0.
    assert!(claim.try_get().is_none());
    let per_slot: Vec<(u64, u64)> = std::thread::scope(|s| {
        let threads: Vec<_> = (1..THREADS)
            .map(|k| {
                let (claim, pool, barrier) = (&claim, &pool, &barrier);
                s.spawn(move || {
                    // Phase 1: claim slot k, in turn.
                    for turn in 1..THREADS {
                        barrier.wait();
                        if turn == k {
                            assert!(claim.try_get().is_none());
                        }
                        barrier.wait();
                    }
                    // Phase 2: the first use of `pool` from slot k, in turn.
                    for turn in 1..THREADS {
                        barrier.wait();
                        if turn == k {
                            assert!(pool.try_get().is_none());
                        }
                        barrier.wait();
                    }
                    // Kept alive until the last count is read: an exit gives the slot back,
                    // which may grow the registry's free list.
                    barrier.wait();
                })
            })
            .collect();
        for _ in 1..THREADS {
            barrier.wait();
            barrier.wait();
        }
        let mut per_slot = Vec::with_capacity(THREADS);
        let before = heap();
        assert!(pool.try_get().is_none());
        let after = heap();
        per_slot.push((
            after.total_blocks - before.total_blocks,
            after.total_bytes - before.total_bytes,
        ));
        for _ in 1..THREADS {
            let before = heap();
            barrier.wait();
            barrier.wait();
            let after = heap();
            per_slot.push((
                after.total_blocks - before.total_blocks,
                after.total_bytes - before.total_bytes,
            ));
        }
        barrier.wait();
        for t in threads {
            t.join().unwrap();
        }
        per_slot
    });
    for (slot, &(blocks, bytes)) in per_slot.iter().enumerate() {
        match slot {
            8 => {
                assert_eq!(blocks, 1, "slot 8's first use: one leaf, {per_slot:?}");
                assert!(
                    (2 << 10..=4 << 10).contains(&bytes),
                    "a leaf of 8 caches is about 3 KiB: {bytes} bytes, {per_slot:?}"
                );
            }
            _ => assert_eq!(
                blocks, 0,
                "slot {slot}'s first use of the pool allocated: {per_slot:?}"
            ),
        }
    }
}
