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
    assert_eq!(arenas.stats().rebuilt, 1);
    let arena = arenas.get();
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
    assert_eq!((stats.shrunk, stats.retained), (1, 1));
    assert!(stats.retained_bytes <= 4096);
    assert!(arenas.get().stats().chunk_bytes <= 4096);
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
    drop(held);
    let stats = arenas.stats();
    assert!(stats.retained <= 4);
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
        let stats = arenas.stats();
        if shrinks_every_round {
            assert_eq!(stats.shrunk, 6, "retain {retain}: {stats:?}");
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
/// whether one fits (both sides of the threshold, and bumpalo's default chunk of 512 bytes).
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

#[test]
fn a_reused_arena_grants_n_under_a_limit_of_n_plus_retain() {
    const N: usize = 800_000;
    const RETAIN: usize = 256 << 10;
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
    let big = vec![7u8; N];
    // The module docs' example: the kept chunk counts against a limit of 1 MiB.
    let arenas = warm(1 << 20);
    let arena = arenas.get();
    assert!(
        arena.stats().chunk_bytes > 200_000,
        "the round's chunk was kept"
    );
    assert!(arena.try_alloc_slice_copy(&big).is_err());
    let fresh = ArenaPool::builder()
        .limit_bytes(1 << 20)
        .retain_bytes(RETAIN)
        .build();
    assert!(fresh.get().try_alloc_slice_copy(&big).is_ok());
    // The advice: a limit of `n + retain_bytes` plus a page grants `n` in a reused arena.
    let arenas = warm(N + RETAIN + 4096);
    let arena = arenas.get();
    assert!(arena.stats().chunk_bytes > 200_000);
    assert_eq!(arena.try_alloc_slice_copy(&big).unwrap().len(), N);
}
