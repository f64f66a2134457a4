//! `thrifty::pool`: get + put of 4 KiB buffers against allocating one per use, two peer pools
//! (`lockfree-object-pool`'s `LinearObjectPool`, the faster peer on one thread, and
//! `object-pool`, a mutex around a `Vec`, which has beaten it on 2 threads and more; neither is
//! fastest everywhere, so both run in every workload), and the bound no pool can beat: buffers
//! the loop keeps itself and clears each time, which is all a pool does with a buffer minus
//! finding it and giving it back.
//!
//! Workloads, as a user's code looks: one byte written (the best case, at 1, 2, 8 and 16
//! threads); the whole 4 KiB written; 4 and 8 buffers held at once, 4 KiB written into each.
//! Every thread of a workload uses the same pool. `pool_threads.rs` adds buffers crossing
//! threads and busy threads beside idle ones.

use crate::harness::{per_thread, Candidate, Harness};
use lockfree_object_pool::LinearObjectPool;
use std::hint::black_box;
use std::sync::Arc;
use thrifty::pool::{BufferPool, DEFAULT_CAPACITY};

/// Every buffer's capacity.
pub const SIZE: usize = 4096;

pub fn run(h: &mut Harness) {
    let mut t = h.table("pool", "get + put of 4 KiB Vec<u8> buffers");
    for threads in t.threads(&[1, 2, 8, 16]) {
        t.workload("1 byte written", threads, candidates::<1, false>(threads));
    }
    for threads in t.threads(&[1, 2]) {
        t.workload("4 KiB written", threads, candidates::<1, true>(threads));
    }
    for threads in t.threads(&[1, 2]) {
        let held = candidates::<4, true>(threads);
        t.workload("4 held, 4 KiB each", threads, held);
    }
    for threads in t.threads(&[1, 2]) {
        let held = candidates::<8, true>(threads);
        t.workload("8 held, 4 KiB each", threads, held);
    }
}

/// Writes a workload's payload into `b`: one byte, or (`FULL`) all 4 KiB (a `memset`; a
/// `memcpy` from one static source measured the same, give or take where the buffers fell).
#[inline(always)]
fn write<const FULL: bool>(b: &mut Vec<u8>) {
    if FULL {
        b.resize(black_box(SIZE), 7);
    } else {
        b.push(1);
    }
}

/// One op: takes `HELD` buffers with `take`, writes into each (reached through `vec`), drops
/// them all. A single buffer is not put in an array: for a pool's get + put, the array's spill
/// costs about 0.5 ns, a sixth of the op.
#[inline(always)]
fn op<const HELD: usize, const FULL: bool, B>(
    take: impl Fn() -> B,
    vec: impl Fn(&mut B) -> &mut Vec<u8>,
) {
    if HELD == 1 {
        let mut b = take();
        write::<FULL>(vec(&mut b));
        black_box(&*vec(&mut b));
        return;
    }
    let mut held: [B; HELD] = std::array::from_fn(|_| take());
    for b in &mut held {
        write::<FULL>(vec(b));
        black_box(&*vec(b));
    }
}

/// The two pools every table compares, of `SIZE`-byte buffers: thrifty's, retaining
/// `capacity` of them, and `lockfree-object-pool`'s (which has no bound).
pub fn pools(capacity: usize) -> (Arc<BufferPool>, Arc<LinearObjectPool<Vec<u8>>>) {
    let pool = BufferPool::builder()
        .capacity(capacity)
        .buffer_capacity(SIZE)
        .max_buffer_capacity(SIZE)
        .build();
    let lockfree = LinearObjectPool::new(
        || Vec::<u8>::with_capacity(SIZE),
        |v: &mut Vec<u8>| v.clear(),
    );
    (Arc::new(pool), Arc::new(lockfree))
}

/// The candidates of one workload on `threads` threads: each op takes `HELD` buffers, writes
/// into each, then drops them all.
pub fn candidates<const HELD: usize, const FULL: bool>(threads: usize) -> Vec<Candidate> {
    let (pool, lockfree) = pools(DEFAULT_CAPACITY);
    // The bound's buffers: each measuring thread (by index) keeps its own across rounds.
    let kept = per_thread::<[Vec<u8>; HELD]>(threads);
    let object_pool = Arc::new(object_pool::Pool::<Vec<u8>>::new(0, Vec::new));
    vec![
        Candidate::std("Vec::with_capacity + drop", |_, ops| {
            for _ in 0..ops {
                op::<HELD, FULL, _>(|| Vec::with_capacity(black_box(SIZE)), |b| b);
            }
        }),
        Candidate::new("reused Vec, clear() (bound)", move |t, ops| {
            // Allocated by the thread that writes them (on its first round), and moved onto its
            // stack for the round, as a thread-local would be: buffers allocated side by side,
            // or `Vec` headers next to each other in `kept`, would share cache lines between
            // the threads, and the bound would lose to the pools.
            let mut slot = kept[t].lock().unwrap();
            let mut own = slot
                .take()
                .unwrap_or_else(|| std::array::from_fn(|_| Vec::with_capacity(SIZE)));
            for _ in 0..ops {
                for b in &mut own {
                    b.clear();
                    write::<FULL>(b);
                    black_box(&*b);
                }
            }
            *slot = Some(own);
        }),
        Candidate::new("thrifty BufferPool", move |_, ops| {
            for _ in 0..ops {
                op::<HELD, FULL, _>(|| pool.get(), |b| &mut **b);
            }
        }),
        Candidate::new("lockfree-object-pool Linear", move |_, ops| {
            for _ in 0..ops {
                op::<HELD, FULL, _>(|| lockfree.pull(), |b| &mut **b);
            }
        }),
        Candidate::new("object-pool", move |_, ops| {
            let take = || {
                let mut b = object_pool.pull(|| Vec::with_capacity(SIZE));
                b.clear(); // object-pool does not reset
                b
            };
            for _ in 0..ops {
                op::<HELD, FULL, _>(take, |b| &mut **b);
            }
        }),
    ]
}
