//! dhat: what `thrifty::arena` allocates, asserted.
//!
//! dhat's profiler is global, so one `#[test]` runs every case in turn.

#![cfg(not(loom))]

use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;
use thrifty::arena::{
    scratch, scratch_pool, ArenaGuard, ArenaPool, BuildError, DEFAULT_RETAIN_BYTES,
};

mod common;
use common::{allocated, allocates_nothing, heap, warm_up_threads};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    warm_up_threads(|| drop(ArenaPool::new().get()));
    a_warm_request_allocates_nothing();
    stats_allocate_nothing();
    warm_owned_gets_and_resets_allocate_nothing();
    a_spilled_round_costs_one_allocation_then_none();
    a_round_that_frees_its_newest_block_gets_warm();
    a_round_of_page_aligned_values_gets_warm();
    one_over_aligned_value_in_a_spilled_round_gets_warm();
    a_return_the_pool_drops_makes_no_chunk();
    warm_scratch_calls_allocate_nothing();
    retain_bytes_gives_a_grown_arena_back();
    a_limit_off_a_page_multiple_regrows_rounds_just_under_it();
    the_limit_holds_against_the_system_allocator();
    retained_memory_stays_within_capacity_times_retain();
    build_makes_no_chunk();
    // Claims of the docs that the cases above do not assert (a review of every documented
    // claim against the tests, 2026-12-06).
    build_at_the_defaults_takes_about_seven_kib();
    a_limit_under_4_kib_makes_and_frees_one_probe_chunk();
    a_limit_below_the_smallest_chunk_is_refused_without_allocating();
    refusals_for_the_limit_never_reach_the_allocator();
    scratch_pool_after_the_first_call_allocates_nothing();
}

/// `build` makes the three allocations its docs name (the pool's shared store, the box of its
/// factory, the `Arc` that shares the pool) and keeps them: no block it makes is freed before it
/// returns (no probe chunk for a limit of 4 KiB or more).
fn build_makes_no_chunk() {
    let before = heap();
    let arenas = ArenaPool::builder().build();
    let after = heap();
    let made = after.total_blocks - before.total_blocks;
    let kept = (after.curr_blocks - before.curr_blocks) as u64;
    assert_eq!(made, kept, "build freed {} of {made} blocks", made - kept);
    assert_eq!(made, 3, "build's allocations");
    drop(arenas);
}

/// A request: `n` small structs of 16 to 256 bytes, each written, and a few strings.
fn request(arena: &ArenaGuard<'_>, n: usize) -> usize {
    let mut sum = 0;
    for i in 0..n {
        sum += match i % 4 {
            0 => arena.alloc([i as u8; 16]).len(),
            1 => arena.alloc([i as u64; 8]).len(),
            2 => arena.alloc([i as u32; 32]).len(),
            _ => arena.alloc([i as u8; 256]).len(),
        };
    }
    for s in ["GET", "/index.html", "HTTP/1.1", "keep-alive"] {
        sum += arena.alloc_str(s).len();
    }
    black_box(sum)
}

fn a_warm_request_allocates_nothing() {
    let arenas = ArenaPool::builder().capacity(4).chunk_bytes(1024).build();
    // The first request spills over several chunks; its return frees them, and the next get
    // makes one chunk that holds it.
    request(&arenas.get(), 1000);
    request(&arenas.get(), 1000);
    assert_eq!(arenas.stats().rebuilt, 1);
    let before = settled();
    for _ in 0..10_000 {
        request(&arenas.get(), 1000);
    }
    // Smaller requests fit too.
    for n in [0, 1, 10, 999] {
        request(&arenas.get(), n);
    }
    let after = heap();
    assert_eq!(
        after.total_blocks, before.total_blocks,
        "a warm request allocated"
    );
    let stats = arenas.stats();
    assert_eq!((stats.created, stats.rebuilt, stats.shrunk), (1, 1, 0));
}

/// `ArenaPool::stats` and `ArenaGuard::stats` allocate nothing, as their docs say.
fn stats_allocate_nothing() {
    let arenas = ArenaPool::builder().capacity(4).build();
    request(&arenas.get(), 100);
    request(&arenas.get(), 100);
    let before = settled();
    for _ in 0..1000 {
        black_box(arenas.stats());
        let arena = arenas.get();
        black_box(arena.stats());
        request(&arena, 10);
        black_box(arena.stats());
    }
    assert_eq!(
        heap().total_blocks,
        before.total_blocks,
        "ArenaPool::stats or ArenaGuard::stats allocated"
    );
}

/// A warm arena allocates nothing, got by `get_owned` or emptied by `reset`, as the docs say.
fn warm_owned_gets_and_resets_allocate_nothing() {
    let arenas = std::sync::Arc::new(ArenaPool::builder().capacity(4).build());
    // `request`'s shape, through the owned guard.
    let owned_request = || {
        let arena = arenas.get_owned();
        for i in 0..100 {
            black_box(arena.alloc([i as u8; 64]));
        }
        black_box(arena.alloc_str("GET /index.html"));
    };
    for _ in 0..2 {
        owned_request();
        let mut arena = arenas.get();
        request(&arena, 100);
        arena.reset();
        request(&arena, 100);
    }
    let rebuilt = arenas.stats().rebuilt;
    let before = settled();
    for _ in 0..1000 {
        owned_request();
    }
    let mut arena = arenas.get();
    for _ in 0..1000 {
        request(&arena, 100);
        arena.reset();
    }
    drop(arena);
    assert_eq!(
        heap().total_blocks,
        before.total_blocks,
        "a warm get_owned or reset allocated"
    );
    let stats = arenas.stats();
    assert_eq!((stats.created, stats.rebuilt), (1, rebuilt), "{stats:?}");
}

fn a_spilled_round_costs_one_allocation_then_none() {
    let arenas = ArenaPool::builder().capacity(1).chunk_bytes(4096).build();
    request(&arenas.get(), 10);
    let before = settled();
    // A bigger request spills: its chunks; the return makes none, and the next get makes the
    // one rebuilt chunk.
    let arena = arenas.get();
    request(&arena, 2000);
    let chunks = arena.stats().chunks as u64;
    assert!(chunks > 1);
    drop(arena);
    let spilled = heap().total_blocks - before.total_blocks;
    assert_eq!(spilled, chunks - 1, "the new chunks, and none on return");
    let before = heap();
    request(&arenas.get(), 2000);
    assert_eq!(
        heap().total_blocks - before.total_blocks,
        1,
        "the rebuilt chunk"
    );
    let before = heap();
    for _ in 0..100 {
        request(&arenas.get(), 2000);
    }
    assert_eq!(heap().total_blocks, before.total_blocks);
}

/// A round whose largest block is freed before its end (bumpalo takes the newest block back):
/// the first round spills and is rebuilt, every later one allocates nothing (a rebuilt chunk
/// that held only what was still in use at the end would leave every round to spill again).
fn a_round_that_frees_its_newest_block_gets_warm() {
    // bumpalo's `alloc_try_with`, failing: its 64 KiB block is freed at once.
    let failing = |arena: &ArenaGuard<'_>| {
        arena.alloc_str("GET /index.html");
        assert!(arena.alloc_try_with(|| Err::<[u64; 8192], ()>(())).is_err());
        arena.alloc(7u64);
    };
    rounds_get_warm(DEFAULT_RETAIN_BYTES, failing);
    // 20 000 `u64` pushed to an arena `Vec`, dropped before the guard.
    #[cfg(feature = "collections")]
    rounds_get_warm(DEFAULT_RETAIN_BYTES, |arena| {
        let mut ids = thrifty::arena::collections::Vec::new_in(arena);
        for i in 0..20_000u64 {
            ids.push(i);
        }
        black_box(ids.iter().sum::<u64>());
    });
}

/// Values aligned to a page, among bytes: the rebuilt chunk holds them with their padding.
/// (An allowance of 16 bytes of padding per chunk let the first warm round spill.)
fn a_round_of_page_aligned_values_gets_warm() {
    #[derive(Clone, Copy)]
    #[repr(C, align(4096))]
    struct Page([u8; 8]);

    rounds_get_warm(64 << 20, |arena| {
        for _ in 0..100 {
            arena.alloc(1u8);
            black_box(arena.alloc(Page([1; 8])));
        }
    });
}

/// One value aligned to 64 KiB in a round of 500 KB of bytes (half the default `retain_bytes`),
/// and a zero-sized marker aligned to 1 MiB in a round of 10 KB: the padding allowed for the
/// alignment counts only as many chunks as the round made over-aligned allocations (charged to
/// every chunk, it would take the round past `retain_bytes`), and a zero-sized value, which
/// takes no byte, counts none.
fn one_over_aligned_value_in_a_spilled_round_gets_warm() {
    #[derive(Clone, Copy)]
    #[repr(C, align(65536))]
    struct Aligned([u8; 8]);
    #[derive(Clone, Copy)]
    #[repr(C, align(1048576))]
    struct Marker;

    rounds_get_warm(DEFAULT_RETAIN_BYTES, |arena| {
        for _ in 0..500 {
            black_box(arena.alloc([1u8; 1000]));
        }
        black_box(arena.alloc(Aligned([1; 8])));
    });
    rounds_get_warm(DEFAULT_RETAIN_BYTES, |arena| {
        for _ in 0..10 {
            black_box(arena.alloc([1u8; 1000]));
        }
        black_box(arena.alloc(Marker));
    });
}

/// A spilled round's return frees its chunks, and the get that hands the arena out again
/// makes the chunk for its next round: an arena that the pool drops on return (capacity 0, or
/// a full pool) makes none.
fn a_return_the_pool_drops_makes_no_chunk() {
    for capacity in [0, 1] {
        let arenas = ArenaPool::builder().capacity(capacity).build();
        let filler = arenas.get();
        let spilled = arenas.get();
        request(&spilled, 2000);
        assert!(spilled.stats().chunks > 1);
        drop(filler); // a pool of capacity 1 is full now
        let before = heap();
        drop(spilled);
        let after = heap();
        let stats = arenas.stats();
        assert_eq!(
            (after.total_blocks - before.total_blocks, stats.dropped),
            (0, 2 - capacity as u64),
            "capacity {capacity}: {stats:?}"
        );
    }
}

/// Runs `round` in one arena of a pool of capacity 1 (`retain_bytes` as given, other settings
/// the defaults): the first round builds the arena and spills, the second's get rebuilds it,
/// the next 10 allocate nothing.
fn rounds_get_warm(retain_bytes: usize, round: impl Fn(&ArenaGuard<'_>)) {
    let arenas = ArenaPool::builder()
        .capacity(1)
        .retain_bytes(retain_bytes)
        .build();
    round(&arenas.get());
    round(&arenas.get());
    let before = settled();
    for _ in 0..10 {
        round(&arenas.get());
    }
    let after = heap();
    assert_eq!(
        after.total_blocks - before.total_blocks,
        0,
        "warm rounds allocated: {:?}",
        arenas.stats()
    );
    let stats = arenas.stats();
    assert_eq!((stats.rebuilt, stats.shrunk), (1, 0), "{stats:?}");
}

fn warm_scratch_calls_allocate_nothing() {
    // The scratch pool and this thread's arena, and a nested one; both spill, and the second
    // call's gets rebuild them.
    for _ in 0..2 {
        scratch(|a| scratch(|b| request(a, 100) + request(b, 100)));
    }
    let before = settled();
    for _ in 0..1000 {
        scratch(|a| scratch(|b| request(a, 100) + request(b, 100)));
    }
    assert_eq!(heap().total_blocks, before.total_blocks);
}

/// A round of 99 000 bytes (64-byte values) under a `limit_bytes` of 100 000, which is not a
/// page multiple: no chunk under the limit holds it (the largest, 24 pages less 64 bytes, is
/// 98 240), so every round is granted across chunks and grown again from `chunk_bytes`, 7
/// allocations a round, `shrunk` counting each (documented on `Builder::limit_bytes`). Under a
/// limit of 25 pages the arena keeps one chunk for it and warm rounds allocate nothing.
fn a_limit_off_a_page_multiple_regrows_rounds_just_under_it() {
    for (limit, blocks_a_round) in [(100_000, 7), (25 * 4096, 0)] {
        let arenas = ArenaPool::builder().capacity(1).limit_bytes(limit).build();
        let round = || {
            let arena = arenas.get();
            for i in 0..99_000 / 64 {
                arena
                    .try_alloc([i as u8; 64])
                    .expect("granted under the limit");
            }
        };
        round();
        round();
        let shrunk = arenas.stats().shrunk;
        let before = settled();
        for _ in 0..10 {
            round();
        }
        assert_eq!(
            heap().total_blocks - before.total_blocks,
            10 * blocks_a_round,
            "limit {limit}: {:?}",
            arenas.stats()
        );
        let expected = if blocks_a_round > 0 { 10 } else { 0 };
        assert_eq!(arenas.stats().shrunk - shrunk, expected, "limit {limit}");
    }
}

fn retain_bytes_gives_a_grown_arena_back() {
    let arenas = ArenaPool::builder()
        .capacity(2)
        .chunk_bytes(4096)
        .retain_bytes(64 << 10)
        .build();
    request(&arenas.get(), 10);
    let before = settled();
    let arena = arenas.get();
    arena.alloc_slice_copy(&vec![7u8; 8 << 20]);
    assert!(heap().curr_bytes >= before.curr_bytes + (8 << 20));
    drop(arena);
    // The 8 MiB chunk is gone on return, and the arena holds none until its next get...
    assert_eq!(heap().curr_blocks, before.curr_blocks - 1);
    // ... which makes one of at most 4 KiB.
    let arena = arenas.get();
    assert_eq!(arenas.stats().shrunk, 1);
    let after = heap();
    assert_eq!(after.curr_blocks, before.curr_blocks);
    assert!(
        after.curr_bytes <= before.curr_bytes,
        "{after:?} {before:?}"
    );
    drop(arena);
}

fn the_limit_holds_against_the_system_allocator() {
    let limit = 256 << 10;
    let arenas = ArenaPool::builder()
        .chunk_bytes(4096)
        .limit_bytes(limit)
        .build();
    let arena = arenas.get();
    let before = settled();
    // A 13 GiB request (bumpalo#3) asks the system for nothing.
    let huge = std::alloc::Layout::from_size_align(13 << 30, 8).unwrap();
    assert!(arena.try_alloc_layout(huge).is_err());
    assert_eq!(heap().total_blocks, before.total_blocks);
    // Allocations until the limit: no block ever larger than the limit allows, and the chunks
    // held (with bumpalo's footers) within it.
    let mut n = 0usize;
    while arena.try_alloc([n as u8; 64]).is_ok() {
        n += 1;
    }
    let after = heap();
    let chunks = arena.stats().chunks;
    assert!(n * 64 > limit / 2, "{n} allocations");
    let footers = 64 * chunks;
    assert!(
        after.curr_bytes - before.curr_bytes <= limit - 4096 + footers,
        "{} bytes held by {chunks} chunks under a limit of {limit}",
        after.curr_bytes - before.curr_bytes
    );
    drop(arena);
}

fn retained_memory_stays_within_capacity_times_retain() {
    let (capacity, retain) = (4, 32 << 10);
    let before = settled();
    let arenas = ArenaPool::builder()
        .capacity(capacity)
        .chunk_bytes(4096)
        .retain_bytes(retain)
        .build();
    let overhead = heap().curr_bytes - before.curr_bytes;
    // 16 arenas at once, each grown to a different size, some past `retain_bytes`.
    let held: Vec<_> = (0..16).map(|_| arenas.get()).collect();
    for (i, arena) in held.iter().enumerate() {
        request(arena, 50 * (i + 1));
    }
    drop(held);
    let retained = heap().curr_bytes - before.curr_bytes - overhead;
    let stats = arenas.stats();
    assert!(stats.retained <= capacity);
    assert!(stats.retained_bytes <= capacity * retain, "{stats:?}");
    // Each retained arena also costs bumpalo's footer and the pool's box (and this thread's
    // pool cache, made at the first get).
    assert!(
        retained <= capacity * (retain + 64 + 128) + 1024,
        "{retained} bytes retained"
    );
    drop(arenas);
    assert_eq!(heap().curr_bytes, before.curr_bytes);
}

fn settled() -> dhat::HeapStats {
    common::settled(Duration::from_millis(200), |_| false)
}

/// `Builder`'s Allocation: "`build` makes three allocations (about 7 KiB at the defaults)".
/// (`build_makes_no_chunk` asserts the count; this the size, within 6 to 8 KiB.)
fn build_at_the_defaults_takes_about_seven_kib() {
    let before = heap();
    let arenas = ArenaPool::builder().build();
    let after = heap();
    let blocks = after.total_blocks - before.total_blocks;
    let bytes = after.curr_bytes - before.curr_bytes;
    assert_eq!(blocks, 3, "build's allocations");
    assert!(
        (6 << 10..=8 << 10).contains(&bytes),
        "build at the defaults: {bytes} bytes in {blocks} blocks, not about 7 KiB"
    );
    drop(arenas);
}

/// `try_build`'s Errors: "A limit under 4 KiB is checked by making and freeing one small chunk;
/// a larger one allocates nothing here."
fn a_limit_under_4_kib_makes_and_frees_one_probe_chunk() {
    for limit in [256, 2048, 4095] {
        let before = heap();
        let arenas = ArenaPool::builder().limit_bytes(limit).build();
        let after = heap();
        let made = after.total_blocks - before.total_blocks;
        let kept = (after.curr_blocks - before.curr_blocks) as u64;
        assert_eq!(
            (made, kept),
            (4, 3),
            "limit {limit}: the three blocks of build, and one probe chunk made and freed"
        );
        drop(arenas);
    }
    let before = heap();
    let arenas = ArenaPool::builder().limit_bytes(4096).build();
    let after = heap();
    assert_eq!(
        (after.total_blocks - before.total_blocks) as usize,
        after.curr_blocks - before.curr_blocks,
        "a limit of 4 KiB: no probe chunk"
    );
    drop(arenas);
}

/// `BuildError::LimitBelowOneChunk`: "no allocation could ever succeed"; the probe for a limit
/// bumpalo has no chunk under asks the system for nothing (`chunks.rs`: "it allocates nothing
/// then"), and the refusal is a plain value.
fn a_limit_below_the_smallest_chunk_is_refused_without_allocating() {
    for limit in [0, 1, 10] {
        let ((blocks, _), err) = allocated(|| {
            ArenaPool::builder()
                .limit_bytes(limit)
                .try_build()
                .map(drop)
        });
        assert_eq!(
            err,
            Err(BuildError::LimitBelowOneChunk { limit_bytes: limit })
        );
        assert_eq!(blocks, 0, "limit {limit}: the refused build allocated");
    }
}

/// `ArenaFull`'s Allocation: "A refusal for the limit never reaches the allocator", for each
/// fallible allocation method and the panic of each infallible twin but for the message
/// (formatted into a `String` by the panic machinery, so only the `try_` forms are counted).
fn refusals_for_the_limit_never_reach_the_allocator() {
    let arenas = ArenaPool::builder()
        .chunk_bytes(1024)
        .limit_bytes(4096)
        .build();
    let arena = arenas.get();
    arena.alloc(0u64); // the arena's first chunk exists already
    let big = "x".repeat(8192);
    let bytes = vec![0u8; 8192];
    allocates_nothing(
        "refused try_alloc/try_alloc_str/try_alloc_slice_copy",
        || {
            for _ in 0..100 {
                assert!(arena.try_alloc([0u8; 8192]).is_err());
                assert!(arena.try_alloc_str(&big).is_err());
                assert!(arena.try_alloc_slice_copy(&bytes).is_err());
            }
        },
    );
    // And the arena is still usable under the limit afterwards.
    assert_eq!(*arena.alloc(7u32), 7);
    let refused = catch_unwind(AssertUnwindSafe(|| arena.alloc([0u8; 8192]).len()));
    assert!(refused.is_err());
    drop(arena);
}

/// `scratch_pool`'s Allocation: "The first call builds the pool (a few allocations, once per
/// process); later calls are one `OnceLock` load."
fn scratch_pool_after_the_first_call_allocates_nothing() {
    let ((blocks, _), _) = allocated(scratch_pool);
    assert!(blocks <= 4, "the first scratch_pool call: {blocks} blocks");
    allocates_nothing("scratch_pool after the first call", || {
        for _ in 0..1000 {
            std::hint::black_box(scratch_pool());
        }
    });
}
