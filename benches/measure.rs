//! `measure::Allocations` in use: the same two workloads reported in time and in allocator calls
//! per iteration, the way `go test -benchmem` reports ns/op beside allocs/op.

use criterion::measurement::Measurement;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use thrifty::measure::{self, Allocations, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

fn grow(n: usize) -> Vec<u64> {
    let mut v = Vec::new();
    for i in 0..n as u64 {
        v.push(i);
    }
    v
}

fn presized(n: usize) -> Vec<u64> {
    let mut v = Vec::with_capacity(n);
    for i in 0..n as u64 {
        v.push(i);
    }
    v
}

/// Both candidates at two sizes, under whichever measurement `c` carries.
fn vec_build<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let mut g = c.benchmark_group(group);
    for n in [16usize, 1000] {
        g.bench_with_input(BenchmarkId::new("Vec::new+push", n), &n, |b, &n| {
            b.iter(|| grow(black_box(n)))
        });
        g.bench_with_input(BenchmarkId::new("with_capacity+push", n), &n, |b, &n| {
            b.iter(|| presized(black_box(n)))
        });
    }
    g.finish();
}

/// Time, with counting paused on this thread (criterion times on it), so the counter's cost
/// does not inflate either candidate.
fn time(c: &mut Criterion) {
    let _paused = measure::pause();
    vec_build(c, "measure/vec_build_time");
}

/// What counting costs: one 8-byte allocation and its free, counted and with counting paused
/// (a paused call reads the thread's flags and forwards to `System`, skipping every add).
fn counting_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("measure/alloc_free");
    g.bench_function("counted", |b| {
        b.iter(|| drop(black_box(Box::new(black_box(7u64)))))
    });
    g.bench_function("paused", |b| {
        let _paused = measure::pause();
        b.iter(|| drop(black_box(Box::new(black_box(7u64)))))
    });
    // Two threads allocating at once, each running all the iterations, counted and paused: the
    // time of one allocation and free on each thread at once. The span starts before the
    // threads are spawned and ends after they are joined, so spawn and join are timed too,
    // amortised over the iterations. Counts shared by every thread would bounce one cache line
    // between them on every call; the totals' stripes keep each thread on its own.
    for paused in [false, true] {
        let name = if paused {
            "paused, 2 threads"
        } else {
            "counted, 2 threads"
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let _timing = measure::pause();
                let start = std::time::Instant::now();
                std::thread::scope(|s| {
                    let both: Vec<_> = (0..2)
                        .map(|_| {
                            s.spawn(move || {
                                let _paused = paused.then(measure::pause);
                                for i in 0..iters {
                                    drop(black_box(Box::new(black_box(i))));
                                }
                            })
                        })
                        .collect();
                    both.into_iter().for_each(|t| t.join().unwrap());
                });
                start.elapsed()
            })
        });
    }
    g.finish();
}

/// Allocator calls per iteration: 1 + log2 growth steps versus exactly 1.
fn allocations(c: &mut Criterion<Allocations>) {
    vec_build(c, "measure/vec_build_allocs");
}

criterion_group!(timing, time, counting_cost);
criterion_group! {
    name = allocs;
    config = Criterion::default().with_measurement(Allocations);
    targets = allocations
}
criterion_main!(timing, allocs);
