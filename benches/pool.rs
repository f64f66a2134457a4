//! `thrifty::pool` against allocating per use and the peer pool crates.
//!
//! Each operation takes a byte buffer of 64 B, 4 KiB or 64 KiB, writes one byte and gives it
//! back (drops it). Candidates: `Vec::with_capacity` + drop (the std baseline), thrifty's
//! `BufferPool` (and, one thread only, a closure-built `Pool<Vec<u8>>`), `object-pool` (a
//! `parking_lot` mutex around a `Vec`; no reset, so the candidate clears by hand),
//! `lockfree-object-pool`'s `LinearObjectPool` and `sharded-slab`'s `Pool`.
//!
//! Shapes (criterion groups `pool/get_put/*`, and `pool/allocs/*` for allocator calls):
//! - `1_thread`, `2_threads_one_pool`: get + put in a loop (throughput counts every thread's
//!   ops);
//! - `cross_thread`: get on a producer thread, drop on a consumer thread through a bounded
//!   channel of 256, whose cost every candidate pays alike; pools of 1024. Both threads are
//!   spawned per sample: nothing is timed on the main thread, whose malloc arena no worker gets;
//! - `cross_thread_bounded`: the same at 4 KiB through a channel of 6 and of 254, with thrifty's
//!   pool of capacity 8 and 256 (the depth plus 2, so the capacity just covers what is in
//!   flight); the peers are unbounded. Std, thrifty, `object-pool` and `lockfree-object-pool`
//!   (`pull_owned` for both peers);
//! - `cross_thread_scratch`: `cross_thread` at 4 KiB (pools of 1024, a channel of 256), where
//!   the consumer also takes two buffers of its own from the same pool for every message
//!   (scratch work) and drops them before the message; std, thrifty, `object-pool` and
//!   `lockfree-object-pool`;
//! - `2_threads_idle_crowd`: 2 threads get + put at 4 KiB while 0, 4, 16, 64 or 1 100 other
//!   threads sleep, each having used another `BufferPool` once (so each holds a thread slot).
//!   With 1 100, the working threads' slots lie past the 1 024 whose owners a pool can track:
//!   their path must cost what it costs below them;
//! - `many_threads`: 8 and 16 threads get + put at 4 KiB ("oversubscribed" where they
//!   outnumber the cores: the shape only).
//!
//! Threads are spawned once per sample (the idle crowd once per row), outside the timed span.
//! The second pass reports allocator calls per operation (`thrifty::measure::Allocations`):
//! counted on each working thread inside its timed span, and process-wide (consumer included)
//! in the cross-thread shapes, after warm-up. `benches/pool_mimalloc.rs` repeats the 4 KiB and
//! 64 KiB cases under mimalloc.
//!
//! Run: `cargo bench --bench pool -- --warm-up-time 1 --measurement-time 2 <filter>`, e.g. the
//! filter `cross_thread_bounded`.

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use std::fmt::Display;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{label, on_threads, Idle, Pick};
use thrifty::measure::{self, Allocations, CountingAlloc};
use thrifty::pool::{BufferPool, Pool, PooledBufferOwned, PooledOwned};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

const SIZES: [usize; 3] = [64, 4 * 1024, 64 * 1024];
/// The buffer size of the newer shapes (`cross_thread_bounded`, `2_threads_idle_crowd`,
/// `many_threads`).
const SIZE: usize = 4 * 1024;

/// One way to get a buffer, use it and give it back.
trait Candidate: Send + Sync + Sized + 'static {
    /// What crosses to another thread in the cross-thread shape; dropping it gives it back.
    type Owned: Send + 'static;
    const NAME: &'static str;
    fn new(size: usize) -> Self;
    /// A candidate that retains at most `capacity` buffers; the peers are unbounded, so only
    /// thrifty's pool is built differently.
    fn bounded(size: usize, _capacity: usize) -> Self {
        Self::new(size)
    }
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
        // Room for every buffer in flight in the cross-thread shape (a 256-slot channel plus
        // the caches): the peers are unbounded, so a smaller cap would measure discards.
        Self::bounded(size, 1024)
    }
    fn bounded(size: usize, capacity: usize) -> Self {
        Self(Arc::new(
            BufferPool::builder()
                .capacity(capacity)
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

/// How the operations of one sample run.
#[derive(Clone, Copy)]
enum Shape {
    /// `op` in a loop on each of this many threads, started together. One thread runs the same
    /// loop, on a spawned thread, as two do, so the groups differ only in the thread count
    /// (criterion's `b.iter` on the bench thread compiles and places a different loop).
    Threads(usize),
    /// `take_owned` on a producer thread, dropped on a consumer thread through a channel of this
    /// depth; both spawned per sample, as `Threads` spawns its threads.
    Cross(usize),
    /// As `Cross`, the consumer taking two buffers of its own for every message.
    CrossScratch(usize),
}

/// Times `iters` ops on each of `threads` threads, each thread's share of the pool warmed (8 ops)
/// before the clock starts; counts the allocator calls each thread makes inside its span and
/// returns them per thread, so that the `allocs` pass reports calls per operation (an iteration
/// is one op on every thread) at any thread count, as `benches/map_sharded.rs` does.
fn threaded<C: Candidate>(c: &C, threads: usize, iters: u64) -> (Duration, u64) {
    let allocs = AtomicU64::new(0);
    let warm = || (0..8).for_each(|_| c.op());
    let span = on_threads(threads, iters, &warm, &|n| {
        let before = measure::thread_stats().calls();
        (0..n).for_each(|_| c.op());
        allocs.fetch_add(measure::thread_stats().calls() - before, Relaxed);
    });
    (span, allocs.into_inner() / threads as u64)
}

/// Takes `iters` buffers on a producer thread and drops them on a consumer thread, after a
/// warm-up that fills the channel twice; counts every thread's allocator calls from the first
/// timed send to the last. Both threads are spawned here, so the producer, like every timed
/// thread of this bench, is never the main thread (in a state no worker is in: glibc's main
/// malloc arena is its alone).
fn cross<C: Candidate>(c: &Arc<C>, depth: usize, scratch: bool, iters: u64) -> (Duration, u64) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<C::Owned>(depth);
    // Pausing is per thread: each thread pauses itself if this one is paused (time pass).
    let paused = measure::is_paused();
    std::thread::scope(|s| {
        s.spawn(move || {
            let _paused = paused.then(measure::pause);
            while let Ok(message) = rx.recv() {
                if scratch {
                    drop(black_box((c.take_owned(), c.take_owned())));
                }
                drop(message);
            }
        });
        let producer = s.spawn(move || {
            let _paused = paused.then(measure::pause);
            for _ in 0..(2 * depth).max(64) {
                tx.send(c.take_owned()).unwrap();
            }
            let (before, t) = (measure::total_stats().calls(), Instant::now());
            for _ in 0..iters {
                tx.send(black_box(c.take_owned())).unwrap();
            }
            let allocs = measure::total_stats().calls() - before;
            // `tx` is dropped here: the consumer drains the channel and returns.
            (t.elapsed(), allocs)
        });
        producer.join().unwrap()
    })
}

/// One row: candidate `c`, measured per sample by `shape`.
fn row<C: Candidate, M: Pick>(g: &mut BenchmarkGroup<'_, M>, id: impl Display, c: C, shape: Shape) {
    let c = Arc::new(c);
    g.bench_function(BenchmarkId::new(C::NAME, id), |b| {
        b.iter_custom(|iters| {
            let (span, allocs) = match shape {
                Shape::Threads(threads) => threaded(&*c, threads, iters),
                Shape::Cross(depth) => cross(&c, depth, false, iters),
                Shape::CrossScratch(depth) => cross(&c, depth, true, iters),
            };
            M::pick(span, allocs)
        })
    });
}

/// The rows of the newer shapes: allocating, thrifty (retaining at most `capacity`),
/// `object-pool` and `lockfree-object-pool` (both unbounded), at 4 KiB.
fn quartet<M: Pick>(g: &mut BenchmarkGroup<'_, M>, id: &str, capacity: usize, shape: Shape) {
    row(g, id, Std::bounded(SIZE, capacity), shape);
    row(g, id, Thrifty::bounded(SIZE, capacity), shape);
    row(g, id, ObjectPool::bounded(SIZE, capacity), shape);
    row(g, id, Lockfree::bounded(SIZE, capacity), shape);
}

/// The groups both passes run: `pass` is `get_put` (time) or `allocs`.
fn newer_shapes<M: Pick>(c: &mut Criterion<M>, pass: &str) {
    let mut g = c.benchmark_group(format!("pool/{pass}/cross_thread_bounded"));
    g.throughput(Throughput::Elements(1));
    for capacity in [8, 256] {
        // Only thrifty's pool has a capacity; the channel's depth applies to every row.
        let depth = capacity - 2;
        let id = format!("channel {depth} (thrifty capacity {capacity})");
        quartet(&mut g, &id, capacity, Shape::Cross(depth));
    }
    g.finish();

    let mut g = c.benchmark_group(format!("pool/{pass}/cross_thread_scratch"));
    g.throughput(Throughput::Elements(1));
    let id = "channel 256 (thrifty capacity 1024)";
    quartet(&mut g, id, 1024, Shape::CrossScratch(256));
    g.finish();

    let mut g = c.benchmark_group(format!("pool/{pass}/2_threads_idle_crowd"));
    g.throughput(Throughput::Elements(2));
    let other = Arc::new(BufferPool::default());
    for idle in [0, 4, 16, 64, 1100] {
        let other = Arc::clone(&other);
        let _crowd = Idle::spawn(idle, move || drop(other.get()));
        quartet(&mut g, &format!("{idle} idle"), 1024, Shape::Threads(2));
    }
    g.finish();

    let mut g = c.benchmark_group(format!("pool/{pass}/many_threads"));
    for threads in [8, 16] {
        g.throughput(Throughput::Elements(threads as u64));
        quartet(&mut g, &label(threads), 1024, Shape::Threads(threads));
    }
    g.finish();
}

/// One row per size for each candidate type listed, the id being the size.
macro_rules! rows {
    ($g:expr, $sizes:expr, $shape:expr; $($c:ty),+) => {
        $(for &size in $sizes { row($g, size, <$c>::new(size), $shape); })+
    };
}

fn timings(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool/get_put/1_thread");
    g.throughput(Throughput::Elements(1));
    let one = Shape::Threads(1);
    rows!(&mut g, &SIZES, one; Std, Thrifty, ThriftyClosures, ObjectPool, Lockfree, Slab);
    g.finish();

    let mut g = c.benchmark_group("pool/get_put/2_threads_one_pool");
    // Both threads' operations count: compare with 1_thread's throughput for scaling.
    g.throughput(Throughput::Elements(2));
    let two = Shape::Threads(2);
    rows!(&mut g, &SIZES, two; Std, Thrifty, ObjectPool, Lockfree, Slab);
    g.finish();

    let mut g = c.benchmark_group("pool/get_put/cross_thread");
    g.throughput(Throughput::Elements(1));
    let cross = Shape::Cross(256);
    rows!(&mut g, &SIZES, cross; Std, Thrifty, ObjectPool, Lockfree, Slab);
    g.finish();

    newer_shapes(c, "get_put");
}

fn allocations(c: &mut Criterion<Allocations>) {
    let mut g = c.benchmark_group("pool/allocs/1_thread");
    let one = Shape::Threads(1);
    rows!(&mut g, &SIZES, one; Std, Thrifty, ThriftyClosures, ObjectPool, Lockfree, Slab);
    g.finish();

    let mut g = c.benchmark_group("pool/allocs/cross_thread");
    let cross = Shape::Cross(256);
    rows!(&mut g, &[SIZE], cross; Std, Thrifty, ObjectPool, Lockfree, Slab);
    g.finish();

    newer_shapes(c, "allocs");
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
