use super::chunks::{chunk_at_least, chunk_at_most, smaller};
use super::*;

fn held(arena: &ArenaGuard<'_>) -> usize {
    arena.allocated_bytes()
}

#[test]
fn chunk_at_most_never_exceeds_its_target() {
    for target in [0, 1, 63, 64, 100, 448, 500, 4096, 5000, 65_536, 1 << 20] {
        let bump = chunk_at_most(target, usize::MAX);
        assert!(bump.allocated_bytes() <= target, "target {target}");
        assert_eq!(bump.allocation_limit(), Some(usize::MAX));
        if target >= 4096 {
            // bumpalo's page-sized chunks: within a page and 1/64 of the target.
            let least = (target - target / 64).saturating_sub(4096);
            assert!(bump.allocated_bytes() >= least, "target {target}");
        }
    }
}

/// A chunk the allocator refuses is halved after one fine step, so a target far beyond memory
/// costs a few refused allocations, not hundreds; below 64 pages the steps stay fine.
#[test]
fn a_target_beyond_memory_is_halved_not_stepped() {
    let tries = |target: usize, served_at: usize| {
        let (mut size, mut misses) = (target, 0);
        while size > served_at {
            misses += 1;
            size = smaller(size, misses);
        }
        misses
    };
    #[cfg(target_pointer_width = "64")]
    assert_eq!(tries(1 << 40, 16 << 30), 7, "1 TiB down to 16 GiB");
    assert!(tries(usize::MAX, 1 << 30) <= 36, "usize::MAX down to 1 GiB");
    assert_eq!(
        smaller(10 << 20, 1),
        (10 << 20) - (10 << 20) / 64,
        "the first step is fine"
    );
    assert_eq!(smaller(64 * 4096, 2), 32 * 4096);
    let below = 64 * 4096 - 1;
    assert_eq!(smaller(below, 9), below - below / 64, "fine below 64 pages");
    assert_eq!(smaller(1, 1), 0);
}

#[test]
fn chunk_at_least_holds_the_size_or_allocates_nothing() {
    let bump = chunk_at_least(10_000, 1 << 20, 1 << 20).unwrap();
    assert!(bump.allocated_bytes() >= 10_000);
    assert!(bump.chunk_capacity() >= 10_000, "one chunk, empty");
    assert!(chunk_at_least(10_000, 9_000, 1 << 20).is_none());
}

#[test]
fn the_limit_bounds_every_path() {
    let arenas = ArenaPool::builder()
        .chunk_bytes(1024)
        .limit_bytes(64 << 10)
        .build();
    let arena = arenas.get();
    // The guard's methods.
    while arena.try_alloc([0u8; 100]).is_ok() {}
    assert!(held(&arena) <= 64 << 10);
    let err = arena.try_alloc([9u8; 100]).unwrap_err();
    assert_eq!(
        err.full,
        ArenaFull {
            requested: 100,
            limit: 64 << 10
        }
    );
    assert_eq!(err.into_inner(), [9u8; 100], "the refused value comes back");
    drop(arena);
    // bumpalo's own methods, through `Deref`.
    let arena = arenas.get();
    while arena
        .try_alloc_layout(std::alloc::Layout::new::<[u64; 9]>())
        .is_ok()
    {}
    assert!(held(&arena) <= 64 << 10);
    // A single request over the limit asks for nothing.
    assert!(arena.try_alloc_slice_copy(&vec![0u8; 1 << 20]).is_err());
    // bumpalo's `try_` forms give its refusals as an `Err` (its other forms panic with its own
    // out-of-memory messages: the module docs).
    assert!(arena.try_alloc_with(|| [0u8; 100_000]).is_err());
    #[cfg(feature = "collections")]
    assert!(collections::Vec::<u8>::new_in(&arena)
        .try_reserve(100_000)
        .is_err());
}

#[test]
fn a_limit_changed_through_the_bump_is_restored_on_the_next_get() {
    let arenas = ArenaPool::builder()
        .capacity(1)
        .chunk_bytes(1024)
        .limit_bytes(8192)
        .build();
    let arena = arenas.get();
    // bumpalo's own setter, through `Deref`: the round may now go past the pool's limit...
    arena.set_allocation_limit(None);
    assert!(arena.try_alloc_slice_copy(&[0u8; 32 << 10]).is_ok());
    drop(arena);
    // ...and the next get has the pool's limit back, in an arena shrunk under retain_bytes.
    let arena = arenas.get();
    assert_eq!(arena.allocation_limit(), Some(8192));
    assert!(
        held(&arena) <= 8192,
        "kept {} bytes of chunks",
        held(&arena)
    );
    assert!(arena.try_alloc_slice_copy(&[0u8; 32 << 10]).is_err());
}

#[test]
fn a_reused_arena_near_its_limit_keeps_the_limit() {
    // fitzgen/bumpalo#244: bumpalo ignores a limit below what the arena holds. A reused arena
    // holds its previous round's chunk; the limit must still refuse the next chunk.
    let limit = 32 << 10;
    let arenas = ArenaPool::builder()
        .capacity(1)
        .chunk_bytes(1024)
        .limit_bytes(limit)
        .retain_bytes(limit)
        .build();
    for round in 0..3 {
        let arena = arenas.get();
        while arena.try_alloc([0u8; 256]).is_ok() {}
        assert!(held(&arena) <= limit, "round {round}: {}", held(&arena));
    }
}

#[test]
fn the_infallible_forms_panic_with_a_clear_message() {
    let arenas = ArenaPool::builder()
        .chunk_bytes(1024)
        .limit_bytes(4096)
        .build();
    let arena = arenas.get();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arena.alloc_slice_copy(&[0u8; 5000]);
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.starts_with("arena full: an allocation of 5000 bytes"),
        "{msg}"
    );
    assert!(msg.contains("limit_bytes (4096)"), "{msg}");
}

/// The panic message of `f`, which must panic with a formatted message.
fn panic_message(f: impl FnOnce()) -> String {
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
    *panic.downcast::<String>().unwrap()
}

/// `alloc` and `alloc_str` on an arena that cannot hold the request panic, as documented,
/// with `ArenaFull`'s message (the limit's alone for a request over it; the limit or the
/// allocator once a request under it finds the arena's chunks full), and leave the arena as it
/// was: a small allocation still fits. A panic with another message, or none (the value
/// written past the limit), fails.
#[test]
fn alloc_and_alloc_str_on_a_full_arena_panic_with_arena_fulls_message() {
    let arenas = ArenaPool::builder()
        .chunk_bytes(1024)
        .limit_bytes(4096)
        .build();
    let arena = arenas.get();
    let before = held(&arena);
    let over = "arena full: an allocation of 8192 bytes does not fit under the arena's \
                limit_bytes (4096) (use the try_ form to handle it)";
    assert_eq!(
        panic_message(|| {
            arena.alloc([7u8; 8192]);
        }),
        over
    );
    let long = "x".repeat(8192);
    assert_eq!(
        panic_message(|| {
            arena.alloc_str(&long);
        }),
        over
    );
    assert_eq!(held(&arena), before, "nothing was allocated for them");
    assert_eq!(*arena.alloc(5u64), 5, "the arena still serves");
    assert_eq!(arena.alloc_str("still"), "still");
    // Under the limit, once the arena's chunks are full.
    while arena.try_alloc([0u8; 256]).is_ok() {}
    let beside = "arena full: an allocation of 256 bytes needs a chunk that does not fit under \
                  the arena's limit_bytes (4096) beside the chunks it holds, or that the system \
                  allocator refused (use the try_ form to handle it)";
    assert_eq!(
        panic_message(|| {
            arena.alloc([0u8; 256]);
        }),
        beside
    );
    let mid = "y".repeat(256);
    assert_eq!(
        panic_message(|| {
            arena.alloc_str(&mid);
        }),
        beside
    );
}

#[test]
fn a_spilled_round_is_rebuilt_to_one_chunk_that_holds_it() {
    let arenas = ArenaPool::builder().capacity(1).chunk_bytes(1024).build();
    let arena = arenas.get();
    for i in 0..1000u64 {
        arena.alloc(i);
    }
    let before = arena.stats();
    assert!(before.chunks > 1);
    drop(arena);
    let stats = arenas.stats();
    // The return frees the chunks; the next get makes the rebuilt one.
    assert_eq!((stats.rebuilt, stats.retained_bytes), (0, 0), "{stats:?}");
    let arena = arenas.get();
    assert_eq!(arenas.stats().rebuilt, 1);
    let after = arena.stats();
    assert_eq!(after.chunks, 1);
    assert!(after.chunk_bytes >= before.allocated_bytes);
    assert_eq!(after.high_water_bytes, before.allocated_bytes);
    for i in 0..1000u64 {
        arena.alloc(i);
    }
    assert_eq!(
        arena.stats().chunks,
        1,
        "the same round fits the rebuilt chunk"
    );
}

#[test]
fn a_round_past_retain_bytes_is_shrunk() {
    let arenas = ArenaPool::builder()
        .capacity(1)
        .chunk_bytes(4096)
        .retain_bytes(64 << 10)
        .build();
    let arena = arenas.get();
    arena.alloc_slice_copy(&vec![1u8; 1 << 20]);
    drop(arena);
    let stats = arenas.stats();
    assert_eq!(
        (stats.retained, stats.retained_bytes),
        (1, 0),
        "chunks freed: {stats:?}"
    );
    assert!(arenas.get().stats().chunk_bytes <= 4096);
    assert_eq!(arenas.stats().shrunk, 1, "the get made the small chunk");
}

#[test]
fn retained_bytes_stay_within_capacity_times_retain() {
    let arenas = ArenaPool::builder()
        .capacity(4)
        .chunk_bytes(1024)
        .retain_bytes(16 << 10)
        .build();
    let held: Vec<_> = (0..10).map(|_| arenas.get()).collect();
    for (i, arena) in held.iter().enumerate() {
        arena.alloc_slice_copy(&vec![0u8; 1000 * (i + 1)]);
    }
    assert!(arenas.is_empty(), "all ten are lent out");
    drop(held);
    let stats = arenas.stats();
    assert!(stats.retained <= 4);
    assert_eq!(arenas.len(), stats.retained);
    assert!(stats.retained_bytes <= 4 * (16 << 10), "{stats:?}");
    assert_eq!(stats.dropped, 6);
}

#[test]
fn build_refuses_settings_that_cannot_work() {
    let e = ArenaPool::builder().limit_bytes(1000).chunk_bytes(4096);
    assert_eq!(
        e.try_build().unwrap_err(),
        BuildError::ChunkOverLimit {
            chunk_bytes: 4096,
            limit_bytes: 1000
        }
    );
    let e = ArenaPool::builder().retain_bytes(100).chunk_bytes(4096);
    assert!(matches!(
        e.try_build().unwrap_err(),
        BuildError::RetainUnderChunk { .. }
    ));
    for limit in [0, 10] {
        let e = ArenaPool::builder().limit_bytes(limit).chunk_bytes(0);
        assert_eq!(
            e.try_build().unwrap_err(),
            BuildError::LimitBelowOneChunk { limit_bytes: limit }
        );
    }
    let msg = std::panic::catch_unwind(|| ArenaPool::builder().limit_bytes(0).build())
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
    // The default chunk gives way to the limit, so the limit itself is what cannot work.
    assert!(
        msg.contains("limit_bytes (0) is below bumpalo's smallest chunk"),
        "{msg}"
    );
    // A small limit that bumpalo can serve works.
    let arenas = ArenaPool::builder().limit_bytes(100).chunk_bytes(0).build();
    assert!(arenas.get().try_alloc(1u64).is_ok());
}

/// A `chunk_bytes` of `usize::MAX` is refused by `build` with the message of the first
/// `BuildError` that applies, naming the values: over the default limit, `ChunkOverLimit`; with
/// the limit lifted, `RetainUnderChunk` (the default retain is under it). A message that names
/// another setting, or a build that goes through, fails.
#[test]
fn a_chunk_of_usize_max_is_refused_with_the_settings_named() {
    let over = panic_message(|| drop(ArenaPool::builder().chunk_bytes(usize::MAX).build()));
    assert_eq!(
        over,
        format!(
            "chunk_bytes ({}) is over limit_bytes ({DEFAULT_LIMIT_BYTES}): the first chunk \
             would break the limit",
            usize::MAX
        )
    );
    let retain = panic_message(|| {
        drop(
            ArenaPool::builder()
                .chunk_bytes(usize::MAX)
                .limit_bytes(usize::MAX)
                .build(),
        )
    });
    assert_eq!(
        retain,
        format!(
            "retain_bytes ({DEFAULT_RETAIN_BYTES}) is under chunk_bytes ({}): no arena could be \
             kept on return",
            usize::MAX
        )
    );
}

#[test]
fn retain_is_capped_by_the_limit() {
    let arenas = ArenaPool::builder()
        .chunk_bytes(1024)
        .limit_bytes(8192)
        .build();
    assert_eq!(arenas.retain_bytes(), 8192);
}

#[test]
fn guards_are_send_and_the_pool_is_sync() {
    fn send<T: Send>() {}
    fn sync<T: Sync + Send>() {}
    send::<ArenaGuard<'static>>();
    send::<ArenaGuardOwned>();
    sync::<ArenaPool>();
}

#[test]
fn the_pool_is_unwind_safe_and_a_panicking_round_leaves_it_whole() {
    use std::panic::{RefUnwindSafe, UnwindSafe};
    fn both<T: UnwindSafe + RefUnwindSafe>() {}
    both::<ArenaPool>();
    let arenas = ArenaPool::builder().capacity(1).build();
    let failed = std::panic::catch_unwind(|| {
        let arena = arenas.get();
        arena.alloc(7u64);
        panic!("mid-round");
    });
    assert!(failed.is_err());
    assert_eq!(arenas.stats().retained, 1, "the arena went back");
    assert_eq!(
        arenas.get().stats().allocated_bytes,
        0,
        "and comes out reset"
    );
}

#[test]
fn trim_and_clear_reach_the_retained_arenas() {
    let arenas = ArenaPool::builder().capacity(8).build();
    drop((0..5).map(|_| arenas.get()).collect::<Vec<_>>());
    assert_eq!(arenas.stats().retained, 5);
    arenas.trim(2);
    assert_eq!(arenas.stats().retained, 2);
    arenas.clear();
    assert_eq!(arenas.stats().retained, 0);
}

#[test]
fn nested_scratch_calls_get_their_own_arena() {
    scratch(|outer| {
        let a = outer.alloc(1u64);
        scratch(|inner| {
            let b = inner.alloc(2u64);
            assert_ne!(a as *const u64, b as *const u64);
            assert_eq!(inner.stats().allocated_bytes, 8);
        });
        assert_eq!(*a, 1, "the inner call did not reset the outer arena");
        assert_eq!(outer.stats().allocated_bytes, 8);
    });
}

#[test]
fn a_round_stays_warm_only_if_a_whole_chunk_for_it_fits_under_retain_bytes() {
    // 37 000 bytes a round. Under a `retain_bytes` of 40 000 no single bumpalo chunk (whole
    // pages) holds the round, so every return shrinks the arena (documented on
    // `Builder::retain_bytes`); a page more and the arena is rebuilt once, then kept.
    for (retain, shrinks_every_round) in [(40_000, true), (40_000 + 4096, false)] {
        let arenas = ArenaPool::builder()
            .capacity(1)
            .chunk_bytes(4096)
            .retain_bytes(retain)
            .build();
        for _ in 0..6 {
            let arena = arenas.get();
            for _ in 0..37 {
                arena.try_alloc_slice_copy(&[7u8; 1000]).unwrap();
            }
        }
        // Counted when the next get makes the chunk: the 5 gets after the first.
        let stats = arenas.stats();
        if shrinks_every_round {
            assert_eq!(stats.shrunk, 5, "retain {retain}: {stats:?}");
        } else {
            assert_eq!(
                (stats.rebuilt, stats.shrunk),
                (1, 0),
                "retain {retain}: {stats:?}"
            );
        }
    }
}

#[test]
fn the_default_chunk_gives_way_to_a_small_limit_but_an_explicit_one_does_not() {
    let arenas = ArenaPool::builder().limit_bytes(2048).build();
    let arena = arenas.get();
    assert!(arena.try_alloc_slice_copy(&[1u8; 1024]).is_ok());
    assert!(held(&arena) <= 2048, "kept {} bytes", held(&arena));
    let err = ArenaPool::builder()
        .limit_bytes(2048)
        .chunk_bytes(4096)
        .try_build()
        .unwrap_err();
    assert_eq!(
        err,
        BuildError::ChunkOverLimit {
            chunk_bytes: 4096,
            limit_bytes: 2048
        }
    );
}

#[test]
fn capacity_reports_what_the_pool_can_retain() {
    let arenas = ArenaPool::builder().capacity(usize::MAX).build();
    assert_eq!(arenas.capacity(), (1 << 24) - 1);
    assert_eq!(ArenaPool::builder().capacity(3).build().capacity(), 3);
}

#[test]
fn a_guard_reset_begins_a_round() {
    let arenas = ArenaPool::builder().capacity(1).build();
    let mut arena = arenas.get();
    assert_eq!(arena.stats().rounds, 1);
    arena.reset();
    assert_eq!(arena.stats().rounds, 2);
    drop(arena);
    assert_eq!(arenas.get().stats().rounds, 3);
}

/// Limits from 4 KiB up build without asking bumpalo for a chunk; smaller ones still find out
/// whether one fits (both sides of the threshold, and bumpalo's default chunk of 448 bytes, 496
/// with its footer).
#[test]
fn only_a_small_limit_is_checked_against_bumpalo() {
    for limit in [512, 1024, 4095, 4096, 1 << 20] {
        let arenas = ArenaPool::builder().limit_bytes(limit).try_build().unwrap();
        let arena = arenas.get();
        assert!(
            arena.try_alloc_slice_copy(&[1u8; 8]).is_ok(),
            "limit {limit}"
        );
    }
}

/// A value grown by doubling keeps each outgrown buffer in an earlier chunk (bumpalo takes a
/// block back only in its current chunk), so in a fresh arena a `collections::Vec` pushed to
/// its largest reaches about a quarter of `limit_bytes`, while the same Vec reserved once, up
/// front, reaches nearly all of it (the module docs' third case).
#[cfg(feature = "collections")]
#[test]
fn a_vec_grown_by_doubling_reaches_a_quarter_of_the_limit_and_one_reserved_up_front_nearly_all() {
    const LIMIT: usize = 1 << 20;
    let pool = ArenaPool::builder().limit_bytes(LIMIT).build();
    let largest_grown = {
        let arena = pool.get();
        let mut v = collections::Vec::<u8>::new_in(&arena);
        while v.try_reserve_exact(v.capacity().max(8)).is_ok() {
            v.resize(v.capacity(), 0);
        }
        v.capacity()
    };
    assert!(
        (LIMIT / 5..LIMIT / 2).contains(&largest_grown),
        "grown to {largest_grown} of {LIMIT}"
    );
    let largest_reserved = (1..=LIMIT / 4096)
        .rev()
        .map(|pages| pages * 4096)
        .find(|&n| {
            let fresh = ArenaPool::builder().limit_bytes(LIMIT).build();
            let arena = fresh.get();
            let ok = collections::Vec::<u8>::new_in(&arena)
                .try_reserve_exact(n)
                .is_ok();
            ok
        })
        .unwrap();
    assert!(
        largest_reserved >= LIMIT * 9 / 10,
        "reserved {largest_reserved} of {LIMIT}"
    );
}

/// A reused arena keeps a chunk `c` of up to `retain_bytes`; a larger allocation needs a second
/// chunk beside it, which bumpalo tries at `2 × c` first and then halves, but never below the
/// allocation's own size. So the limit that grants single allocations of `n` bytes is
/// `retain_bytes + max(n, 2 × retain_bytes)` plus a page; `n + retain_bytes` plus a page is not
/// enough for `n` between `c` and `2 × c`.
#[test]
fn a_reused_arena_grants_n_under_retain_plus_the_larger_of_n_and_twice_retain() {
    const RETAIN: usize = 256 << 10;
    const PAGE: usize = 4096;
    let warm = |limit: usize| {
        let arenas = ArenaPool::builder()
            .capacity(1)
            .limit_bytes(limit)
            .retain_bytes(RETAIN)
            .build();
        {
            let arena = arenas.get();
            for _ in 0..250 {
                arena.alloc([0u8; 1000]);
            }
        } // rebuilt to one chunk that holds the round, and kept
        arenas
    };
    let big = vec![7u8; 1 << 20];
    // The module docs' example: the kept chunk counts against a limit of 1 MiB.
    let arenas = warm(1 << 20);
    let arena = arenas.get();
    assert!(
        arena.stats().chunk_bytes > 200_000,
        "the round's chunk was kept"
    );
    assert!(arena.try_alloc_slice_copy(&big[..800_000]).is_err());
    let fresh = ArenaPool::builder()
        .limit_bytes(1 << 20)
        .retain_bytes(RETAIN)
        .build();
    assert!(fresh.get().try_alloc_slice_copy(&big[..800_000]).is_ok());
    // The advice, for `n` on both sides of the kept chunk and of twice it.
    let kept = warm(usize::MAX).get().stats().chunk_bytes;
    assert!(kept > 200_000 && kept <= RETAIN, "kept {kept}");
    for n in [
        1000,
        kept,
        kept + 1,
        300_000,
        400_000,
        2 * kept - 1,
        2 * kept,
        2 * kept + 1,
        2 * RETAIN + PAGE,
        800_000,
        1 << 20,
    ] {
        let limit = RETAIN + n.max(2 * RETAIN) + PAGE;
        let arenas = warm(limit);
        let arena = arenas.get();
        assert_eq!(arena.stats().chunk_bytes, kept, "n {n}");
        let granted = arena.try_alloc_slice_copy(&big[..n]).map(|s| s.len());
        assert_eq!(granted, Ok(n), "n {n} under a limit of {limit}");
    }
    // The old advice: not enough for `n` between the kept chunk and twice it.
    for n in [kept + 1, kept + kept / 4, kept + kept / 2] {
        let arenas = warm(n + RETAIN + PAGE);
        assert!(
            arenas.get().try_alloc_slice_copy(&big[..n]).is_err(),
            "n {n}"
        );
    }
}

/// A round that grows a value and frees it before its end (a `collections::Vec` dropped; here
/// bumpalo's `alloc_try_with` failing, which frees its block the same way) gets warm. The
/// round's end shows only what is still in use: a rebuilt chunk sized for that would leave every
/// later round to spill and be rebuilt again.
#[test]
fn a_round_that_frees_its_newest_block_is_rebuilt_once_then_stays_in_one_chunk() {
    let arenas = ArenaPool::builder().capacity(1).build();
    for round in 0..6 {
        let arena = arenas.get();
        arena.alloc_str("GET /index.html");
        let failed = arena.alloc_try_with(|| Err::<[u64; 8192], ()>(()));
        assert!(failed.is_err());
        arena.alloc(7u64);
        if round > 0 {
            assert_eq!(arena.stats().chunks, 1, "round {round} spilled");
        }
    }
    let stats = arenas.stats();
    assert_eq!((stats.rebuilt, stats.shrunk), (1, 0), "{stats:?}");
}

/// 20 000 `u64` pushed to an arena `Vec`, dropped before the guard.
#[cfg(feature = "collections")]
#[test]
fn a_round_that_grows_and_drops_a_vec_is_rebuilt_once_then_stays_in_one_chunk() {
    let arenas = ArenaPool::builder().capacity(1).build();
    for round in 0..4 {
        let arena = arenas.get();
        {
            let mut ids = collections::Vec::new_in(&arena);
            for i in 0..20_000u64 {
                ids.push(i);
            }
            assert_eq!(ids.iter().sum::<u64>(), 19_999 * 10_000);
        }
        if round > 0 {
            assert_eq!(arena.stats().chunks, 1, "round {round} spilled");
        }
    }
    let stats = arenas.stats();
    assert_eq!((stats.rebuilt, stats.shrunk), (1, 0), "{stats:?}");
}

/// A rebuilt chunk allows, per chunk of the round, padding for the largest alignment the
/// round's values needed, so a round of values aligned above 16 bytes (here page-aligned values,
/// each after a byte) is held by it; an allowance of 16 bytes per chunk let such a round spill
/// once more. How much padding a round needs in one chunk depends on where its chunks lay in
/// memory, so several shapes run.
#[test]
fn rounds_of_over_aligned_values_are_held_by_their_rebuilt_chunk() {
    #[derive(Clone, Copy)]
    #[repr(C, align(4096))]
    struct Page([u8; 8]);
    #[derive(Clone, Copy)]
    #[repr(C, align(65536))]
    struct Block([u8; 8]);

    fn round(arena: &ArenaGuard<'_>, page: bool, values: usize, bytes: usize) {
        for _ in 0..values {
            arena.alloc_slice_copy(&[1u8; 64][..bytes]);
            if page {
                assert_eq!(arena.alloc(Page([1; 8])) as *mut Page as usize % 4096, 0);
            } else {
                assert_eq!(arena.alloc(Block([1; 8])) as *mut Block as usize % 65536, 0);
            }
        }
    }

    let shapes: &[(bool, usize, usize)] = if cfg!(miri) {
        &[(true, 100, 1)]
    } else {
        &[
            (true, 100, 1),
            (true, 23, 48),
            (true, 49, 26),
            (true, 155, 7),
            (false, 4, 4),
            (false, 16, 35),
            (false, 9, 1),
            (false, 30, 17),
        ]
    };
    for &(page, values, bytes) in shapes {
        let arenas = ArenaPool::builder()
            .capacity(1)
            .retain_bytes(64 << 20)
            .build();
        for i in 0..4 {
            let arena = arenas.get();
            round(&arena, page, values, bytes);
            if i > 0 {
                let chunks = arena.stats().chunks;
                assert_eq!(chunks, 1, "page {page}, {values} values: round {i} spilled");
            }
        }
        let stats = arenas.stats();
        assert_eq!((stats.rebuilt, stats.shrunk), (1, 0), "{stats:?}");
    }
}

/// The rule `retain_bytes` documents for over-aligned values: a round of page-aligned values
/// among bytes that spread over 4 chunks (61 184 bytes of them) is kept warm once
/// `retain_bytes` leaves 4 pages of padding beside all it can have had in use: 80 KiB.
#[test]
fn page_aligned_values_spread_over_four_chunks_stay_warm_with_four_pages_of_room() {
    #[derive(Clone, Copy)]
    #[repr(C, align(4096))]
    struct Page([u8; 64]);

    let arenas = ArenaPool::builder()
        .capacity(1)
        .retain_bytes(80 << 10)
        .build();
    for round in 0..4 {
        let arena = arenas.get();
        for _ in 0..6 {
            arena.alloc_slice_copy(&[1u8; 500]);
            assert_eq!(arena.alloc(Page([0; 64])) as *mut Page as usize % 4096, 0);
        }
        let chunks = arena.stats().chunks;
        assert_eq!(chunks, if round == 0 { 4 } else { 1 }, "round {round}");
    }
    let stats = arenas.stats();
    assert_eq!((stats.rebuilt, stats.shrunk), (1, 0), "{stats:?}");
}

/// `ArenaFull`'s message blames `limit_bytes` only where the limit can have refused (not under
/// `usize::MAX`); `tests/refusal_arena.rs` has the system allocator refuse.
#[test]
fn arena_full_blames_only_what_can_have_refused() {
    let over = ArenaFull {
        requested: 5000,
        limit: 4096,
    };
    assert_eq!(
        over.to_string(),
        "arena full: an allocation of 5000 bytes does not fit under the arena's limit_bytes \
         (4096)",
        "no advice to use the try_ form: a returned `ArenaFull` came from it"
    );
    let system = ArenaFull {
        requested: 1 << 40,
        limit: usize::MAX,
    }
    .to_string();
    assert!(
        system.starts_with("arena full: an allocation of 1099511627776 bytes"),
        "{system}"
    );
    assert!(system.contains("system allocator refused"), "{system}");
    assert!(!system.contains("does not fit"), "{system}");
    let either = ArenaFull {
        requested: 100,
        limit: 4096,
    }
    .to_string();
    assert!(either.contains("limit_bytes (4096)"), "{either}");
    assert!(either.contains("system allocator"), "{either}");
}
