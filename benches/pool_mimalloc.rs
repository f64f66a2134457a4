//! The 4 KiB and 64 KiB cases of `benches/pool.rs` with mimalloc as the global allocator:
//! does pooling still pay when the allocator itself is fast?
//!
//! Candidates: `Vec::with_capacity` + drop under mimalloc, thrifty's `BufferPool` (built as
//! `benches/pool.rs` builds it: capacity 1024, no byte budget), and the two peers of the
//! shootout's pool table, `lockfree-object-pool`'s `LinearObjectPool` (the faster peer on one
//! thread) and `object-pool` (which has beaten it on 2 threads); one thread, and two threads on
//! one shared pool.
//!
//! Run: `cargo bench --bench pool_mimalloc -- --warm-up-time 1 --measurement-time 2`

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

mod common;
use common::on_threads;
use thrifty::pool::BufferPool;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZES: [usize; 2] = [4 * 1024, 64 * 1024];

type Wall<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Times `iters` calls of `op` on each of `threads` threads started together, each warmed by
/// 8 calls before the clock starts.
fn parallel(threads: usize, iters: u64, op: &(impl Fn() + Sync)) -> Duration {
    on_threads(threads, iters, &|| (0..8).for_each(|_| op()), &|n| {
        (0..n).for_each(|_| op())
    })
}

fn candidates(g: &mut Wall<'_>, threads: usize) {
    for size in SIZES {
        let std_op = move || {
            let mut v = Vec::<u8>::with_capacity(black_box(size));
            v.push(1);
            black_box(&v);
        };
        let pool = BufferPool::builder()
            .capacity(1024)
            .byte_budget(usize::MAX)
            .buffer_capacity(size)
            .max_buffer_capacity(size)
            .build();
        let thrifty_op = || {
            let mut b = pool.get();
            b.push(1);
            black_box(&*b);
        };
        let lockfree = lockfree_object_pool::LinearObjectPool::new(
            move || Vec::<u8>::with_capacity(size),
            |v: &mut Vec<u8>| v.clear(),
        );
        let lockfree_op = || {
            let mut b = lockfree.pull();
            b.push(1);
            black_box(&*b);
        };
        bench(
            g,
            "mimalloc Vec::with_capacity + drop",
            size,
            threads,
            &std_op,
        );
        let object_pool = object_pool::Pool::<Vec<u8>>::new(0, Vec::new);
        let object_pool_op = || {
            let mut b = object_pool.pull(|| Vec::with_capacity(size));
            b.clear(); // object-pool does not reset
            b.push(1);
            black_box(&*b);
        };
        bench(g, "thrifty BufferPool", size, threads, &thrifty_op);
        bench(
            g,
            "lockfree-object-pool Linear",
            size,
            threads,
            &lockfree_op,
        );
        bench(g, "object-pool", size, threads, &object_pool_op);
    }
}

/// One thread runs the same loop on a spawned thread as two do (as in `benches/pool.rs`).
fn bench(g: &mut Wall<'_>, name: &str, size: usize, threads: usize, op: &(impl Fn() + Sync)) {
    g.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
        b.iter_custom(|iters| parallel(threads, iters, op))
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("pool_mimalloc/get_put/1_thread");
    g.throughput(Throughput::Elements(1));
    candidates(&mut g, 1);
    g.finish();
    let mut g = c.benchmark_group("pool_mimalloc/get_put/2_threads_one_pool");
    g.throughput(Throughput::Elements(2));
    candidates(&mut g, 2);
    g.finish();
    c.final_summary();
}
