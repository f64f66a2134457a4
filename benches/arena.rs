//! `thrifty::arena` against a heap allocation per object and the peer arenas, on one
//! per-request workload.
//!
//! A request allocates `N` small structs (16, 32, 64 and 256 bytes in turn, each written with
//! values that depend on its index) and four strings, reads one word of each back, and ends:
//! everything it allocated is freed. Candidates, same payload:
//! - `Box per object` (std baseline): each struct and string boxed, held in `Vec`s that the
//!   bench keeps across requests (cleared at the end of each), so objects live to the end of
//!   the request as a real one's do;
//! - `bumpalo fresh Bump, unsized`: `Bump::new()` per request (no `with_capacity`);
//! - `bumpalo reused Bump (bound)`: one `Bump`, `reset()` after each request, the ceiling for
//!   any pool of arenas;
//! - `thrifty ArenaPool` (`get` per request) and `thrifty scratch`;
//! - `typed-arena`: one typed arena per struct type, and one for the strings' bytes, per request
//!   (it has no reset);
//! - `bump-scope reused Bump`: one `bump_scope::Bump`, reset after each request.
//!
//! Groups: `arena/request/<N>` (time, throughput in objects) for N = 10 to 100 000, and
//! `arena/allocs/<N>` (allocator calls per request, `thrifty::measure::Allocations`, after
//! warm-up); the pool in these rows keeps up to 64 MiB per arena (the row says so), so they
//! measure the warm steady state. Plus `arena/huge_then_small`: each iteration a 100 000-object
//! request then a 10-object one, both timed (the huge one's regrowth dominates), from a pool
//! with the default `retain_bytes` (1 MiB: the huge arena is shrunk on every return and
//! regrown by the next huge request, from memory the allocator may have to fault in again),
//! from one that keeps 64 MiB, and from a reused `Bump` (whose one chunk stays huge).
//!
//! `arena/handoff/100`: each request built on one thread and dropped on another.
//! `arena/held/3x100`: three arenas held at once (a request that keeps a parse arena, a scratch
//! arena and a response arena alive together), 100 objects in each.
//!
//! Every row runs on one spawned thread (see `main`), not on the main thread, whose malloc arena
//! no worker thread gets.
//!
//! Run: `cargo bench --bench arena -- --warm-up-time 1 --measurement-time 2 <filter>`.

#[path = "../examples/common/arena_request.rs"]
mod arena_request;

use arena_request::{request, Boxes, Typed};
use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};
use thrifty::arena::{scratch, ArenaPool};
use thrifty::measure::{self, Allocations, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

const SIZES: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];
/// Adds every candidate's row for `n` objects per request.
fn rows<M: Measurement>(g: &mut BenchmarkGroup<'_, M>, n: usize) {
    let id = |name: &str| BenchmarkId::new(name, n);
    let boxes = Boxes::default();
    g.bench_function(id("Box per object"), |b| {
        b.iter(|| {
            let r = request(&boxes, black_box(n));
            boxes.end();
            r
        })
    });
    g.bench_function(id("bumpalo fresh Bump, unsized"), |b| {
        b.iter(|| request(&bumpalo::Bump::new(), black_box(n)))
    });
    let mut bump = bumpalo::Bump::new();
    g.bench_function(id("bumpalo reused Bump (bound)"), |b| {
        b.iter(|| {
            let r = request(&bump, black_box(n));
            bump.reset();
            r
        })
    });
    // Kept arenas may hold what the largest request needs (a 100 000-object request takes
    // about 12 MiB): these rows measure the warm steady state the pool exists for. The cost of
    // the default `retain_bytes` (1 MiB) when requests past it recur is `arena/huge_then_small`.
    let arenas = ArenaPool::builder().retain_bytes(64 << 20).build();
    g.bench_function(id("thrifty ArenaPool (retain_bytes 64 MiB)"), |b| {
        b.iter(|| request(&arenas.get(), black_box(n)))
    });
    g.bench_function(id("thrifty scratch"), |b| {
        b.iter(|| scratch(|arena| request(arena, black_box(n))))
    });
    g.bench_function(id("typed-arena"), |b| {
        b.iter(|| request(&Typed::new(), black_box(n)))
    });
    let mut scope = bump_scope::Bump::<bump_scope::alloc::Global>::new();
    g.bench_function(id("bump-scope reused Bump"), |b| {
        b.iter(|| {
            let r = request(&scope, black_box(n));
            scope.reset();
            r
        })
    });
}

/// Three arenas held at once per request, `N` objects in each: the pool hands out three
/// different arenas and takes them back together.
fn held(c: &mut Criterion) {
    const N: usize = 100;
    let mut g = c.benchmark_group(format!("arena/held/3x{N}"));
    g.throughput(Throughput::Elements(3 * N as u64));
    let boxes: [Boxes; 3] = Default::default();
    g.bench_function("Box per object", |b| {
        b.iter(|| {
            let r: u64 = boxes.iter().map(|a| request(a, black_box(N))).sum();
            boxes.iter().for_each(Boxes::end);
            r
        })
    });
    g.bench_function("bumpalo fresh Bump, unsized", |b| {
        b.iter(|| {
            let arenas: [bumpalo::Bump; 3] = Default::default();
            arenas.iter().map(|a| request(a, black_box(N))).sum::<u64>()
        })
    });
    let mut bumps: [bumpalo::Bump; 3] = Default::default();
    g.bench_function("bumpalo reused Bump (bound)", |b| {
        b.iter(|| {
            let r: u64 = bumps.iter().map(|a| request(a, black_box(N))).sum();
            bumps.iter_mut().for_each(bumpalo::Bump::reset);
            r
        })
    });
    let pool = ArenaPool::new();
    g.bench_function("thrifty ArenaPool", |b| {
        b.iter(|| {
            let arenas = [pool.get(), pool.get(), pool.get()];
            arenas.iter().map(|a| request(a, black_box(N))).sum::<u64>()
        })
    });
    g.finish();
}

fn timings(c: &mut Criterion) {
    for n in SIZES {
        let mut g = c.benchmark_group(format!("arena/request/{n}"));
        g.throughput(Throughput::Elements(n as u64));
        rows(&mut g, n);
        g.finish();
    }
    // Both requests are timed, and both results go through `black_box`.
    let mut g = c.benchmark_group("arena/huge_then_small");
    let arenas = ArenaPool::new();
    g.bench_function("thrifty ArenaPool, default retain_bytes 1 MiB", |b| {
        b.iter(|| {
            black_box(request(&arenas.get(), black_box(100_000)));
            request(&arenas.get(), black_box(10))
        })
    });
    // The same pool told to keep what the huge request needs: what retaining costs against
    // what shrinking saves.
    let keeping = ArenaPool::builder().retain_bytes(64 << 20).build();
    g.bench_function("thrifty ArenaPool, retain_bytes 64 MiB", |b| {
        b.iter(|| {
            black_box(request(&keeping.get(), black_box(100_000)));
            request(&keeping.get(), black_box(10))
        })
    });
    let mut bump = bumpalo::Bump::new();
    g.bench_function("bumpalo reused Bump", |b| {
        b.iter(|| {
            black_box(request(&bump, black_box(100_000)));
            bump.reset();
            let r = request(&bump, black_box(10));
            bump.reset();
            r
        })
    });
    g.finish();
}

/// Sends `iters` values from `make` through a channel of depth 4 to a thread that drops them;
/// the time until that thread has dropped the last.
fn across<T: Send + 'static>(iters: u64, mut make: impl FnMut() -> T) -> Duration {
    let (tx, rx) = mpsc::sync_channel::<T>(4);
    // Pausing is per thread: the consumer pauses itself if the caller is paused.
    let paused = measure::is_paused();
    let consumer = thread::spawn(move || {
        let _paused = paused.then(measure::pause);
        rx.into_iter().for_each(|v| drop(black_box(v)))
    });
    let start = Instant::now();
    for _ in 0..iters {
        tx.send(make()).unwrap();
    }
    drop(tx);
    consumer.join().unwrap();
    start.elapsed()
}

/// A request built on one thread and dropped on another (the arena, its `Bump` or its boxes
/// cross over a channel of depth 4): the pool's arenas come back from the consumer's thread.
fn handoff(c: &mut Criterion) {
    const N: usize = 100;
    let mut g = c.benchmark_group(format!("arena/handoff/{N}"));
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("Box per object", |b| {
        b.iter_custom(|iters| {
            across(iters, || {
                let boxes = Boxes::for_request(N);
                black_box(request(&boxes, N));
                boxes
            })
        })
    });
    g.bench_function("bumpalo fresh Bump, unsized", |b| {
        b.iter_custom(|iters| {
            across(iters, || {
                let bump = bumpalo::Bump::new();
                black_box(request(&bump, N));
                bump
            })
        })
    });
    let arenas = Arc::new(ArenaPool::new());
    g.bench_function("thrifty ArenaPool get_owned", |b| {
        b.iter_custom(|iters| {
            across(iters, || {
                let arena = arenas.get_owned();
                black_box(request(&arena, N));
                arena
            })
        })
    });
    g.finish();
}

fn allocations(c: &mut Criterion<Allocations>) {
    for n in [10, 1_000] {
        let mut g = c.benchmark_group(format!("arena/allocs/{n}"));
        rows(&mut g, n);
        g.finish();
    }
}

fn main() {
    // Every row runs on one spawned thread, never on the main thread, which is in a state no
    // server worker is in (glibc's main malloc arena is its alone): the allocating rows (`Box per
    // object`, fresh `Bump`s, typed-arena) are measured as a worker would see them. One thread
    // for the whole run, so thread-local state (the `scratch` arena) stays warm across samples
    // as it did on the main thread. Spawning it also ends glibc's single-thread lock skipping.
    thread::spawn(|| {
        {
            // Counting off while timing, so allocating candidates pay no counting cost.
            let _paused = measure::pause();
            let mut c = Criterion::default().configure_from_args();
            timings(&mut c);
            handoff(&mut c);
            held(&mut c);
        }
        let mut c = Criterion::default()
            .with_measurement(Allocations)
            .configure_from_args();
        allocations(&mut c);
        c.final_summary();
    })
    .join()
    .expect("bench thread panicked");
}
