//! Op-sequence interpreter for `thrifty::arena`, shared by the cargo-fuzz target and
//! `tests/fuzz_corpus.rs`. Parses raw bytes by hand (no `arbitrary`), so it builds on stable.
//!
//! Layout: byte 0 is the pool: capacity (bits 0–1), which of [`LIMITS`] (bits 2–3), which of
//! [`CHUNKS`] (bits 4–5), which of [`RETAINS`] (bits 6–7). Every later byte is an op (low 3
//! bits) with its argument (high 5 bits, and for allocations the next byte); at most
//! [`MAX_OPS`] run. Up to [`HELD`] guards are held at once.
//!
//! Checked after every op: every arena holds at most its limit in chunks; every live value is
//! aligned, inside no other live value, and still holds the byte written into it; a refused
//! allocation says `ArenaFull` with its own size and the limit and changes nothing; a fresh
//! guard hands out an empty arena; the pool retains at most its capacity and
//! `capacity × retain_bytes` bytes, and its counts add up (every get is a creation or a reuse).

use thrifty::arena::{ArenaFull, ArenaGuard, ArenaPool};

/// Per-arena limits, picked by bits 2–3 of byte 0.
const LIMITS: [usize; 4] = [1024, 4096, 20_000, 1 << 20];
/// First-chunk sizes, picked by bits 4–5 (capped by the limit).
const CHUNKS: [usize; 4] = [0, 256, 1000, 4096];
/// Extra retain bytes over the chunk, picked by bits 6–7.
const RETAINS: [usize; 4] = [0, 1000, 10_000, 1 << 20];
/// Guards held at most at once.
const HELD: usize = 3;
/// Ops run at most per input.
const MAX_OPS: usize = 256;

/// A live value: where it is, how long, and the byte every one of its bytes holds.
struct Live {
    ptr: *const u8,
    len: usize,
    byte: u8,
}

struct Held<'a> {
    guard: ArenaGuard<'a>,
    live: Vec<Live>,
}

pub fn run(data: &[u8]) {
    let Some((&config, ops)) = data.split_first() else {
        return;
    };
    let capacity = usize::from(config & 3);
    let limit = LIMITS[usize::from(config >> 2 & 3)];
    let chunk = CHUNKS[usize::from(config >> 4 & 3)].min(limit);
    let retain = chunk + RETAINS[usize::from(config >> 6 & 3)];
    let arenas = ArenaPool::builder()
        .capacity(capacity)
        .limit_bytes(limit)
        .chunk_bytes(chunk)
        .retain_bytes(retain)
        .build();
    let mut held: Vec<Held<'_>> = Vec::new();
    let mut gets = 0u64;
    let mut i = 0;
    for _ in 0..MAX_OPS {
        let Some(&op) = ops.get(i) else { break };
        i += 1;
        let arg = usize::from(op >> 3);
        match op & 7 {
            0 if held.len() < HELD => {
                let guard = arenas.get();
                gets += 1;
                assert_eq!(guard.stats().allocated_bytes, 0, "handed out dirty");
                held.push(Held {
                    guard,
                    live: Vec::new(),
                });
            }
            1 if !held.is_empty() => {
                let h = held.remove(arg % held.len());
                check_live(&h.live);
            }
            2..=4 if !held.is_empty() => {
                let next = usize::from(ops.get(i).copied().unwrap_or(0));
                i += 1;
                let len = next * (1 + arg % 8) * if op & 7 == 4 { 64 } else { 1 };
                let n = held.len();
                let h = &mut held[arg % n];
                alloc(h, len, op & 7 == 3, (i % 251) as u8);
            }
            5 if !held.is_empty() => {
                let n = held.len();
                let h = &mut held[arg % n];
                check_live(&h.live);
                h.live.clear();
                h.guard.reset();
                assert_eq!(h.guard.stats().allocated_bytes, 0);
            }
            6 => arenas.trim(arg % 4),
            7 => arenas.clear(),
            _ => {}
        }
        for h in &held {
            check_live(&h.live);
            let stats = h.guard.stats();
            assert!(stats.chunk_bytes <= limit, "past the limit: {stats:?}");
        }
        check_disjoint(&held);
        let stats = arenas.stats();
        assert!(stats.retained <= capacity, "{stats:?}");
        assert!(stats.retained_bytes <= capacity * retain.min(limit), "{stats:?}");
        assert_eq!(stats.created + stats.reused, gets, "{stats:?}");
    }
    for h in held.drain(..) {
        check_live(&h.live);
    }
}

/// Allocates `len` bytes of `byte` (a string when `as_str`, else 8-aligned words of it).
fn alloc(h: &mut Held<'_>, len: usize, as_str: bool, byte: u8) {
    let before = h.guard.stats();
    let limit = h.guard.limit_bytes();
    let result: Result<(*const u8, usize), ArenaFull> = if as_str {
        let src = String::from_utf8(vec![b'a' + byte % 26; len]).unwrap();
        h.guard
            .try_alloc_str(&src)
            .map(|s| (s.as_ptr(), s.len()))
    } else {
        let word = u64::from_ne_bytes([byte; 8]);
        let src = vec![word; len / 8];
        h.guard.try_alloc_slice_copy(&src).map(|s| {
            assert_eq!(s.as_ptr() as usize % 8, 0, "misaligned");
            (s.as_ptr().cast::<u8>(), s.len() * 8)
        })
    };
    match result {
        Ok((ptr, len)) => h.live.push(Live {
            ptr,
            len,
            byte: if as_str { b'a' + byte % 26 } else { byte },
        }),
        Err(full) => {
            let requested = if as_str { len } else { len / 8 * 8 };
            assert_eq!(full, ArenaFull { requested, limit });
            assert_eq!(h.guard.stats(), before, "a refusal changed the arena");
        }
    }
}

fn check_live(live: &[Live]) {
    for v in live {
        // SAFETY: `v.ptr` came from an allocation of `v.len` bytes in an arena whose guard is
        // still held and has not been reset since (reset and drop clear the list first); the
        // arena never hands those bytes out again meanwhile, and nothing writes them.
        let bytes = unsafe { std::slice::from_raw_parts(v.ptr, v.len) };
        assert!(bytes.iter().all(|&b| b == v.byte), "a live value changed");
    }
}

fn check_disjoint(held: &[Held<'_>]) {
    let mut ranges: Vec<(usize, usize)> = held
        .iter()
        .flat_map(|h| h.live.iter())
        .filter(|v| v.len > 0)
        .map(|v| (v.ptr as usize, v.ptr as usize + v.len))
        .collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "two live values overlap: {pair:?}");
    }
}
