//! `thrifty::pool` beside a crowd: a get whose buffer is never given back, and a return the
//! full pool refuses, on one thread while 0 or 1 000 other threads, alive and asleep, have used
//! the same pool (so it has made a cache for each). Buffers are 4 KiB.
//!
//! Both shapes find nothing in the calling thread's cache. Each would look through the others'
//! (a get for an object to take, a refused return for room a reclaim could make; paced past 64
//! caches, see the pool's module docs), but here the budget counts no object outside the shared
//! store, which says there is nothing to find: neither looks, and the refused `try_put` does not
//! box its value; the kept get boxes its buffer in the box the previous `into_inner` left to the
//! thread's cache. So their cost should not grow with the crowd; these rows show whether it
//! does. Each pool candidate is set beside what a program without a pool does in its place:
//! allocate the buffer (and free it, as the buffer kept by the caller is freed in the end), or
//! free the buffer the pool refused. `lockfree-object-pool` has neither shape (no way to keep a
//! pulled object, no bound that refuses one).
//!
//! - Kept: the crowd's threads each took a buffer and gave it back, into their own caches; the
//!   warm-up rounds take those, then every get misses and makes a buffer.
//! - Refused: the crowd's threads each took a buffer and kept it out of the pool (their caches
//!   hold none); the pool (capacity 4) is filled with `prefill`, so every return finds it full.

use crate::harness::{Candidate, Harness, Table};
use crate::pool::{pools, SIZE};
use crate::pool_threads::Idle;
use std::hint::black_box;
use thrifty::pool::{Pooled, DEFAULT_CAPACITY};

pub fn run(h: &mut Harness) {
    let title = "a get whose buffer is kept, a return the full pool refuses (4 KiB), idle crowd";
    let mut t = h.table("pool", title);
    for idle in [0, 1000] {
        let (pool, _) = pools(DEFAULT_CAPACITY);
        let shared = pool.clone();
        let crowd = Idle::spawn(idle, move || drop(shared.get()));
        let kept = Candidate::new("thrifty get + into_inner + drop", move |_, ops| {
            for _ in 0..ops {
                drop(black_box(Pooled::into_inner(pool.get())));
            }
        });
        beside(&mut t, &format!("kept, {idle} idle threads"), crowd, kept);
    }
    for idle in [0, 1000] {
        let (pool, _) = pools(4);
        let shared = pool.clone();
        let crowd = Idle::spawn(idle, move || drop(Pooled::into_inner(shared.get())));
        assert_eq!(pool.prefill(4), 4, "the pool starts full");
        let name = "Vec::with_capacity + thrifty try_put (refused) + drop";
        let refused = Candidate::new(name, move |_, ops| {
            for _ in 0..ops {
                let refused = pool.try_put(Vec::with_capacity(black_box(SIZE)));
                drop(black_box(refused.expect_err("the pool is full")));
            }
        });
        beside(
            &mut t,
            &format!("refused, {idle} idle threads"),
            crowd,
            refused,
        );
    }
}

/// Measures `thrifty` beside [`allocate`] on one thread while `crowd` sleeps, then lets the
/// crowd exit.
fn beside(t: &mut Table<'_>, workload: &str, crowd: Idle, thrifty: Candidate) {
    t.workload(workload, 1, vec![allocate(), thrifty]);
    drop(crowd);
}

/// What a program without a pool does in both shapes' place: allocate the buffer, and free it.
fn allocate() -> Candidate {
    Candidate::std("Vec::with_capacity + drop", |_, ops| {
        for _ in 0..ops {
            drop(black_box(Vec::<u8>::with_capacity(black_box(SIZE))));
        }
    })
}
