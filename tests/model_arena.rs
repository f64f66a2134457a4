//! proptest: random rounds of allocations of random sizes and alignments, checked against a
//! plain model of what the arena must hold.
//!
//! A case is a pool (limit, first chunk, retain) and a list of rounds; each round takes an
//! arena from the pool (capacity 1, so rounds reuse one arena, settled in between), runs its
//! allocations through the guard's API, and checks after every allocation:
//! - every value is aligned for its type, no two live values overlap, and the bytes of the live
//!   values never exceed the round's `allocated_bytes` (where the values lie, chunk by chunk,
//!   the public API does not show);
//! - every live value still holds what was written into it, until the round ends (reset);
//! - the limit, exactly: the chunks held never exceed `limit_bytes`; a request that fits the
//!   room left in the current chunk succeeds and takes no chunk; a refused request changes
//!   nothing and says `ArenaFull { requested, limit }` with its own size; and a refusal happens
//!   only where no chunk could fit under the limit (held + the smallest chunk bumpalo makes for
//!   the request, at most 4 × the request or 4 × 448 bytes, plus a page, is over the limit).
//!
//! `PROPTEST_CASES=n` sets the case count (default 128).

#![cfg(not(loom))]

use proptest::prelude::*;
use thrifty::arena::{ArenaFull, ArenaGuard, ArenaPool};

/// A value type of each alignment the model allocates, 1 to 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(align(16))]
struct A16([u8; 16]);

/// One allocation: `len` elements of the type of alignment `1 << align_log2`, filled with `tag`.
#[derive(Clone, Copy, Debug)]
struct Op {
    align_log2: u8,
    len: usize,
    /// Through `try_alloc_str` instead (alignment 1) when set.
    as_str: bool,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0u8..5,
        prop_oneof![0usize..64, 0usize..600, 0usize..5000],
        any::<bool>(),
    )
        .prop_map(|(align_log2, len, as_str)| Op {
            align_log2,
            len,
            as_str: as_str && align_log2 == 0,
        })
}

/// A live value: its address range, alignment and a check of its contents.
struct Live<'a> {
    start: usize,
    bytes: usize,
    intact: Box<dyn Fn() -> bool + 'a>,
}

/// Allocates `len` copies of `value` through `try_alloc_slice_copy` and records it.
fn alloc_slice<'a, T: Copy + PartialEq + 'a>(
    arena: &'a ArenaGuard<'_>,
    value: T,
    len: usize,
) -> Result<Live<'a>, ArenaFull> {
    let src = vec![value; len];
    let slice: &'a mut [T] = arena.try_alloc_slice_copy(&src)?;
    let start = slice.as_ptr() as usize;
    assert_eq!(start % std::mem::align_of::<T>(), 0, "misaligned");
    let bytes = std::mem::size_of_val(slice);
    let slice = &*slice;
    Ok(Live {
        start,
        bytes,
        intact: Box::new(move || slice.iter().all(|v| *v == value)),
    })
}

fn alloc<'a>(arena: &'a ArenaGuard<'_>, op: Op, tag: u8) -> Result<Live<'a>, ArenaFull> {
    match op.align_log2 {
        _ if op.as_str => {
            let src = std::iter::repeat(char::from(b'a' + tag % 26))
                .take(op.len)
                .collect::<String>();
            let s: &'a str = arena.try_alloc_str(&src)?;
            let (start, bytes) = (s.as_ptr() as usize, s.len());
            Ok(Live {
                start,
                bytes,
                intact: Box::new(move || s == src),
            })
        }
        0 => alloc_slice(arena, tag, op.len),
        1 => alloc_slice(arena, u16::from(tag) * 257, op.len),
        2 => alloc_slice(arena, u32::from(tag) * 0x0101_0101, op.len),
        3 => alloc_slice(arena, u64::from(tag) * 0x0101_0101_0101_0101, op.len),
        _ => alloc_slice(arena, A16([tag; 16]), op.len),
    }
}

/// bumpalo's chunk rounding bound: a chunk made for `size` bytes is at most this big.
fn largest_chunk_for(size: usize) -> usize {
    4 * size.max(448) + 4096
}

fn run_round(arenas: &ArenaPool, ops: &[Op], round: usize) -> Result<(), TestCaseError> {
    let limit = arenas.limit_bytes();
    let arena = arenas.get();
    prop_assert_eq!(arena.stats().allocated_bytes, 0, "handed out dirty");
    let mut live: Vec<Live<'_>> = Vec::new();
    for (i, &op) in ops.iter().enumerate() {
        let tag = (round * 31 + i) as u8;
        let align = 1usize << op.align_log2;
        let elem = if op.as_str {
            1
        } else {
            align.max(1 << op.align_log2)
        };
        let size = op.len * elem;
        let before = arena.stats();
        let room = arena.chunk_capacity();
        match alloc(&arena, op, tag) {
            Ok(value) => {
                prop_assert_eq!(value.bytes, size);
                for other in &live {
                    let disjoint = value.start + value.bytes <= other.start
                        || other.start + other.bytes <= value.start;
                    prop_assert!(disjoint || size == 0 || other.bytes == 0, "overlap");
                }
                live.push(value);
            }
            Err(full) => {
                prop_assert_eq!(
                    full,
                    ArenaFull {
                        requested: size,
                        limit
                    }
                );
                prop_assert_eq!(arena.stats(), before, "a refusal changed the arena");
                // Refused only if it did not fit the current chunk...
                let aligned = size.next_multiple_of(align);
                prop_assert!(room / align * align < aligned, "fit the chunk, yet refused");
                // ... and no chunk for it could fit under the limit.
                prop_assert!(
                    before.chunk_bytes + largest_chunk_for(aligned) > limit,
                    "refused {} bytes with {} of {} held",
                    size,
                    before.chunk_bytes,
                    limit
                );
            }
        }
        let after = arena.stats();
        prop_assert!(after.chunk_bytes <= limit, "past the limit: {:?}", after);
        let aligned = size.next_multiple_of(align);
        if room / align * align >= aligned {
            prop_assert_eq!(
                after.chunk_bytes,
                before.chunk_bytes,
                "fit, yet took a chunk"
            );
        }
        for value in &live {
            prop_assert!((value.intact)(), "a live value was overwritten");
        }
        let handed: usize = live.iter().map(|v| v.bytes).sum();
        prop_assert!(handed <= after.allocated_bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(128)
    ))]

    #[test]
    fn arenas_match_the_model(
        limit in prop_oneof![Just(4096usize), Just(16 << 10), Just(64 << 10), 2048usize..100_000],
        chunk in prop_oneof![Just(256usize), Just(1024), Just(2000)],
        retain_extra in 0usize..32_768,
        rounds in prop::collection::vec(prop::collection::vec(op(), 0..40), 1..6),
    ) {
        let arenas = ArenaPool::builder()
            .capacity(1)
            .limit_bytes(limit)
            .chunk_bytes(chunk)
            .retain_bytes(chunk + retain_extra)
            .build();
        for (round, ops) in rounds.iter().enumerate() {
            run_round(&arenas, ops, round)?;
            let stats = arenas.stats();
            prop_assert!(stats.retained_bytes <= arenas.retain_bytes(), "{:?}", stats);
        }
        let stats = arenas.stats();
        prop_assert_eq!(stats.created + stats.reused, rounds.len() as u64);
    }
}
