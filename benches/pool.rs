//! `thrifty::pool` against allocating per use and the peer pool crates.
//!
//! Each operation takes a byte buffer of 64 B, 4 KiB or 64 KiB, writes one byte and gives it
//! back (drops it). Candidates: `Vec::with_capacity` + drop (the std baseline), thrifty's
//! `BufferPool` (and, one thread only, a closure-built `Pool<Vec<u8>>`), `object-pool` (a
//! `parking_lot` mutex around a `Vec`; no reset, so the candidate clears by hand),
//! `lockfree-object-pool`'s `LinearObjectPool` and `sharded-slab`'s `Pool`.
//! Shapes: one thread; two threads on one shared pool (throughput counts both threads' ops);
//! cross-thread (get on the bench thread, drop on a consumer thread through a bounded channel,
//! whose cost every candidate pays alike).
//!
//! A second pass reports allocator calls per operation with `thrifty::measure::Allocations`.
//! `benches/pool_mimalloc.rs` repeats the 4 KiB and 64 KiB cases under mimalloc.
//!
//! Run: `cargo bench --bench pool -- --warm-up-time 1 --measurement-time 2`

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::on_threads;
use thrifty::measure::{self, Allocations, CountingAlloc};
use thrifty::pool::{BufferPool, Pool, PooledBufferOwned, PooledOwned};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

const SIZES: [usize; 3] = [64, 4 * 1024, 64 * 1024];

/// One way to get a buffer, use it and give it back.
trait Candidate: Send + Sync + Sized + 'static {
    /// What crosses to another thread in the cross-thread shape; dropping it gives it back.
    type Owned: Send + 'static;
    const NAME: &'static str;
    fn new(size: usize) -> Self;
    /// Get, write one byte, give back.
    fn op(&self);
    /// Get and write one byte; the caller drops it elsewhere.
    fn take_owned(self: &Arc<Self>) -> Self::Owned;
}

struct Std(usize);

impl Candidate for Std {
    type Owned = Vec<u8>;
    const NAME: &'static str = "std Vec::with_capacity + drop";
    fn new(size: usize) -> Self {
        Self(size)
    }
    #[inline]
    fn op(&self) {
        let mut v = Vec::<u8>::with_capacity(black_box(self.0));
        v.push(1);
        black_box(&v);
    }
    fn take_owned(self: &Arc<Self>) -> Vec<u8> {
        let mut v = Vec::<u8>::with_capacity(black_box(self.0));
        v.push(1);
        v
    }
}

struct Thrifty(Arc<BufferPool>);

impl Candidate for Thrifty {
    type Owned = PooledBufferOwned;
    const NAME: &'static str = "thrifty BufferPool";
    fn new(size: usize) -> Self {
        Self(Arc::new(
            BufferPool::buffers()
                // Room for every buffer in flight in the cross-thread shape (a 256-slot
                // channel plus the caches): the peers are unbounded, so a smaller cap would
                // measure discards, not the pool.
                .capacity(1024)
                .byte_budget(usize::MAX)
                .buffer_capacity(size)
                .max_buffer_capacity(size)
                .build(),
        ))
    }
    #[inline]
    fn op(&self) {
        let mut b = self.0.get();
        b.push(1);
        black_box(&*b);
    }
    fn take_owned(self: &Arc<Self>) -> Self::Owned {
        let mut b = self.0.get_owned();
        b.push(1);
        b
    }
}

/// The same buffers in a closure-built `Pool<Vec<u8>>`: reset (the `Reset` impl) and factory
/// are called through pointers, where `BufferPool`'s hooks inline. The row prices that choice.
struct ThriftyClosures(Arc<Pool<Vec<u8>>>);

impl Candidate for ThriftyClosures {
    type Owned = PooledOwned<Vec<u8>>;
    const NAME: &'static str = "thrifty Pool<Vec<u8>> (closures)";
    fn new(size: usize) -> Self {
        Self(Arc::new(
            Pool::builder()
                .capacity(1024) // as `Thrifty`
                .build(move || Vec::with_capacity(size)),
        ))
    }
    #[inline]
    fn op(&self) {
        let mut b = self.0.get();
        b.push(1);
        black_box(&*b);
    }
    fn take_owned(self: &Arc<Self>) -> Self::Owned {
        let mut b = self.0.get_owned();
        b.push(1);
        b
    }
}

struct ObjectPool(Arc<object_pool::Pool<Vec<u8>>>, usize);

impl Candidate for ObjectPool {
    type Owned = object_pool::ReusableOwned<Vec<u8>>;
    const NAME: &'static str = "object-pool";
    fn new(size: usize) -> Self {
        Self(Arc::new(object_pool::Pool::new(0, Vec::new)), size)
    }
    #[inline]
    fn op(&self) {
        let size = self.1;
        let mut b = self.0.pull(|| Vec::with_capacity(size));
        b.clear(); // object-pool does not reset
        b.push(1);
        black_box(&*b);
    }
    fn take_owned(self: &Arc<Self>) -> Self::Owned {
        let size = self.1;
        let mut b = self.0.pull_owned(|| Vec::with_capacity(size));
        b.clear();
        b.push(1);
        b
    }
}

struct Lockfree(Arc<lockfree_object_pool::LinearObjectPool<Vec<u8>>>);

impl Candidate for Lockfree {
    type Owned = lockfree_object_pool::LinearOwnedReusable<Vec<u8>>;
    const NAME: &'static str = "lockfree-object-pool Linear";
    fn new(size: usize) -> Self {
        Self(Arc::new(lockfree_object_pool::LinearObjectPool::new(
            move || Vec::with_capacity(size),
            |v: &mut Vec<u8>| v.clear(),
        )))
    }
    #[inline]
    fn op(&self) {
        let mut b = self.0.pull();
        b.push(1);
        black_box(&*b);
    }
    fn take_owned(self: &Arc<Self>) -> Self::Owned {
        let mut b = self.0.pull_owned();
        b.push(1);
        b
    }
}

struct Slab(Arc<sharded_slab::Pool<Vec<u8>>>, usize);

/// A `sharded-slab` entry that clears its slot when dropped, like the other guards.
struct SlabEntry(Arc<sharded_slab::Pool<Vec<u8>>>, usize);

impl Drop for SlabEntry {
    fn drop(&mut self) {
        self.0.clear(self.1);
    }
}

impl Candidate for Slab {
    type Owned = SlabEntry;
    const NAME: &'static str = "sharded-slab Pool";
    fn new(size: usize) -> Self {
        Self(Arc::new(sharded_slab::Pool::new()), size)
    }
    #[inline]
    fn op(&self) {
        let mut b = self.0.create().expect("slab full");
        b.reserve(self.1); // slots keep their capacity once grown
        b.push(1);
        black_box(&*b);
        let key = b.key();
        drop(b);
        self.0.clear(key);
    }
    fn take_owned(self: &Arc<Self>) -> SlabEntry {
        let size = self.1;
        let key = self
            .0
            .create_with(|b| {
                b.reserve(size);
                b.push(1);
            })
            .expect("slab full");
        SlabEntry(self.0.clone(), key)
    }
}

/// Times `iters` ops on each of `threads` threads started together, each thread's share of
/// the pool warmed (8 ops) before the clock starts.
fn parallel<C: Candidate>(c: &C, threads: usize, iters: u64) -> Duration {
    let warm = || (0..8).for_each(|_| c.op());
    on_threads(threads, iters, &warm, &|n| (0..n).for_each(|_| c.op()))
}

/// Takes `iters` buffers here and drops them on a consumer thread.
fn cross<C: Candidate>(c: &Arc<C>, iters: u64) -> Duration {
    let (tx, rx) = std::sync::mpsc::sync_channel::<C::Owned>(256);
    let consumer = std::thread::spawn(move || while rx.recv().is_ok() {});
    for _ in 0..512 {
        tx.send(c.take_owned()).unwrap(); // warm-up: fill the pool with buffers in flight
    }
    let t = Instant::now();
    for _ in 0..iters {
        tx.send(black_box(c.take_owned())).unwrap();
    }
    drop(tx);
    consumer.join().unwrap();
    t.elapsed()
}

/// Times `threads` threads on one candidate. One thread runs the same loop, on a spawned thread,
/// as two do, so the two groups differ only in the thread count, and their ratio is the scaling
/// (criterion's `b.iter` on the bench thread compiles and places a different loop).
fn time_threads<C: Candidate>(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    threads: usize,
) {
    for size in SIZES {
        let c = C::new(size);
        g.bench_with_input(BenchmarkId::new(C::NAME, size), &size, |b, _| {
            b.iter_custom(|iters| parallel(&c, threads, iters))
        });
    }
}

fn time_cross<C: Candidate>(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    for size in SIZES {
        let c = Arc::new(C::new(size));
        g.bench_with_input(BenchmarkId::new(C::NAME, size), &size, |b, _| {
            b.iter_custom(|iters| cross(&c, iters))
        });
    }
}

fn timings(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool/get_put/1_thread");
    g.throughput(Throughput::Elements(1));
    time_threads::<Std>(&mut g, 1);
    time_threads::<Thrifty>(&mut g, 1);
    time_threads::<ThriftyClosures>(&mut g, 1);
    time_threads::<ObjectPool>(&mut g, 1);
    time_threads::<Lockfree>(&mut g, 1);
    time_threads::<Slab>(&mut g, 1);
    g.finish();

    let mut g = c.benchmark_group("pool/get_put/2_threads_one_pool");
    // Both threads' operations count: compare with 1_thread's throughput for scaling.
    g.throughput(Throughput::Elements(2));
    time_threads::<Std>(&mut g, 2);
    time_threads::<Thrifty>(&mut g, 2);
    time_threads::<ObjectPool>(&mut g, 2);
    time_threads::<Lockfree>(&mut g, 2);
    time_threads::<Slab>(&mut g, 2);
    g.finish();

    let mut g = c.benchmark_group("pool/get_put/cross_thread");
    g.throughput(Throughput::Elements(1));
    time_cross::<Std>(&mut g);
    time_cross::<Thrifty>(&mut g);
    time_cross::<ObjectPool>(&mut g);
    time_cross::<Lockfree>(&mut g);
    time_cross::<Slab>(&mut g);
    g.finish();
}

fn alloc_one<C: Candidate>(g: &mut BenchmarkGroup<'_, Allocations>) {
    for size in SIZES {
        let c = C::new(size);
        c.op(); // warm: the first get of a pool is a miss
        g.bench_with_input(BenchmarkId::new(C::NAME, size), &size, |b, _| {
            b.iter_custom(|iters| {
                let before = measure::total_stats().calls();
                for _ in 0..iters {
                    c.op();
                }
                measure::total_stats().calls() - before
            })
        });
    }
}

fn alloc_cross<C: Candidate>(g: &mut BenchmarkGroup<'_, Allocations>) {
    let size = 4 * 1024;
    let c = Arc::new(C::new(size));
    g.bench_with_input(BenchmarkId::new(C::NAME, size), &size, |b, _| {
        b.iter_custom(|iters| {
            // Channel and thread setup allocate: count only the steady-state span.
            let (tx, rx) = std::sync::mpsc::sync_channel::<C::Owned>(256);
            let consumer = std::thread::spawn(move || while rx.recv().is_ok() {});
            for _ in 0..512 {
                tx.send(c.take_owned()).unwrap();
            }
            let before = measure::total_stats().calls();
            for _ in 0..iters {
                tx.send(c.take_owned()).unwrap();
            }
            let spent = measure::total_stats().calls() - before;
            drop(tx);
            consumer.join().unwrap();
            spent
        })
    });
}

fn allocations(c: &mut Criterion<Allocations>) {
    let mut g = c.benchmark_group("pool/allocs/1_thread");
    alloc_one::<Std>(&mut g);
    alloc_one::<Thrifty>(&mut g);
    alloc_one::<ThriftyClosures>(&mut g);
    alloc_one::<ObjectPool>(&mut g);
    alloc_one::<Lockfree>(&mut g);
    alloc_one::<Slab>(&mut g);
    g.finish();

    let mut g = c.benchmark_group("pool/allocs/cross_thread");
    alloc_cross::<Std>(&mut g);
    alloc_cross::<Thrifty>(&mut g);
    alloc_cross::<ObjectPool>(&mut g);
    alloc_cross::<Lockfree>(&mut g);
    alloc_cross::<Slab>(&mut g);
    g.finish();
}

fn main() {
    {
        // Counting off while timing, so allocating candidates pay no counting cost.
        let _paused = measure::pause();
        let mut c = Criterion::default().configure_from_args();
        timings(&mut c);
    }
    let mut c = Criterion::default()
        .with_measurement(Allocations)
        .configure_from_args();
    allocations(&mut c);
    c.final_summary();
}
