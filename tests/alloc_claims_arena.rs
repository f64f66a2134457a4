//! dhat: allocation claims of `thrifty::arena`'s docs that `tests/alloc_arena.rs` does not
//! assert. `Builder`'s "about 7 KiB at the defaults" for `build`'s three allocations; `try_build`'s
//! "a limit under 4 KiB is checked by making and freeing one small chunk", and a limit below
//! bumpalo's smallest chunk refused with nothing allocated; `ArenaFull`'s "a refusal for the
//! limit never reaches the allocator" for `try_alloc`, `try_alloc_str` and
//! `try_alloc_slice_copy` (and their panicking twins); `scratch_pool`'s "later calls are one
//! `OnceLock` load".
//!
//! dhat's profiler is global, so one `#[test]` runs every case in turn.

use std::panic::{catch_unwind, AssertUnwindSafe};
use thrifty::arena::{scratch_pool, ArenaPool, BuildError};

mod common;
use common::{allocated, allocates_nothing, heap, park_once, warm_up_threads};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    // The harness's and std's one-time thread allocations, before anything is counted.
    warm_up_threads(park_once);
    build_at_the_defaults_takes_about_seven_kib();
    a_limit_under_4_kib_makes_and_frees_one_probe_chunk();
    a_limit_below_the_smallest_chunk_is_refused_without_allocating();
    refusals_for_the_limit_never_reach_the_allocator();
    scratch_pool_after_the_first_call_allocates_nothing();
}

/// `Builder`'s Allocation: "`build` makes three allocations (about 7 KiB at the defaults)".
/// (`alloc_arena.rs` asserts the count; this the size, within 6 to 8 KiB.)
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
