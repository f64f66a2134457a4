//! `thrifty::arena`: one request's allocations (N structs of 16, 32, 64 and 256 bytes in turn,
//! each written, plus four strings, all freed at the end) against a heap allocation per object,
//! a fresh `bumpalo::Bump` per request, and the peer arenas; the bound is one `Bump` the thread
//! keeps and resets, which is all a pool of arenas does minus finding the arena and giving it
//! back. `benches/arena.rs` measures the same payload with criterion, from 10 to 100 000
//! objects; both take it, and the candidates' `Alloc`, from `examples/common/arena_request.rs`.
//!
//! Workloads: 10, 1 000 and 10 000 objects per request (ns/op is per request), on 1 and 2
//! threads for 1 000 (every thread uses the same `ArenaPool`).

use crate::arena_request::{request, Boxes, Typed};
use crate::harness::{per_thread, Candidate, Harness};
use std::hint::black_box;
use std::sync::Arc;
use thrifty::arena::ArenaPool;

pub fn run(h: &mut Harness) {
    let mut t = h.table(
        "arena",
        "one request: N small structs + 4 strings, freed together",
    );
    t.workload("10 objects", 1, candidates(10, 1));
    for threads in t.threads(&[1, 2]) {
        t.workload("1 000 objects", threads, candidates(1_000, threads));
    }
    t.workload("10 000 objects", 1, candidates(10_000, 1));
}

fn candidates(n: usize, threads: usize) -> Vec<Candidate> {
    let arenas = Arc::new(ArenaPool::new());
    // Each thread's kept arena lives across rounds, warm, as the pool's arenas do.
    let (bumps, scopes) = (
        per_thread::<bumpalo::Bump>(threads),
        per_thread::<bump_scope::Bump>(threads),
    );
    vec![
        Candidate::std("Box per object", move |_, ops| {
            let boxes = Boxes::for_request(n);
            for _ in 0..ops {
                black_box(request(&boxes, n));
                boxes.end();
            }
        }),
        Candidate::new("bumpalo Bump::new() per request, unsized", move |_, ops| {
            for _ in 0..ops {
                black_box(request(&bumpalo::Bump::new(), n));
            }
        }),
        Candidate::new("bumpalo Bump kept, reset (bound)", move |t, ops| {
            let mut slot = bumps[t].lock().unwrap();
            let bump = slot.get_or_insert_with(bumpalo::Bump::new);
            for _ in 0..ops {
                black_box(request(&*bump, n));
                bump.reset();
            }
        }),
        Candidate::new("thrifty ArenaPool", move |_, ops| {
            for _ in 0..ops {
                black_box(request(&arenas.get(), n));
            }
        }),
        Candidate::new("typed-arena per request, unsized", move |_, ops| {
            for _ in 0..ops {
                black_box(request(&Typed::new(), n));
            }
        }),
        Candidate::new("bump-scope Bump kept, reset", move |t, ops| {
            let mut slot = scopes[t].lock().unwrap();
            let bump = slot.get_or_insert_with(bump_scope::Bump::new);
            for _ in 0..ops {
                black_box(request(&*bump, n));
                bump.reset();
            }
        }),
    ]
}
