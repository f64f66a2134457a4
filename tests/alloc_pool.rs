//! dhat: what `thrifty::pool` allocates, asserted.
//!
//! dhat's profiler is global, so one `#[test]` runs every case in turn.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use thrifty::pool::{BufferPool, Pool, Pooled, PooledOwned};

mod common;
use common::{allocated, allocates_nothing, heap, park_once, warm_up_threads};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    warm_up_threads(|| drop(Pool::new(Vec::<u8>::new).get()));
    steady_state_get_put_allocates_nothing();
    stats_and_len_allocate_nothing();
    owned_guards_allocate_nothing_once_warm();
    try_get_allocates_nothing_once_warm();
    a_pool_with_hooks_and_a_budget_allocates_nothing_once_warm();
    zeroing_buffers_allocate_nothing_once_warm();
    a_miss_allocates_one_box_of_whole_lines();
    a_return_refused_for_sure_allocates_nothing();
    a_box_left_by_a_detached_object_serves_the_next_miss();
    build_allocates_the_store_the_docs_size();
    steady_state_on_two_threads_allocates_nothing();
    cross_thread_returns_allocate_nothing();
    a_full_pool_retains_exactly_capacity();
    clearing_a_pool_past_its_ring_frees_the_overflow();
    the_builder_allocates_only_the_capturing_closures_boxes();
    everything_is_freed_after_the_pool_and_its_threads();
    // Claims of the docs that the cases above do not assert (a review of every documented
    // claim against the tests, 2026-12-06).
    a_pool_allocates_one_leaf_per_eight_slots_past_the_first_eight();
}

fn steady_state_get_put_allocates_nothing() {
    let pool = Pool::new(|| Vec::<u8>::with_capacity(4096));
    let buffers = BufferPool::builder().build();
    // Warm-up: one miss each, and more held at once than a thread cache holds (a hot slot and
    // a stack of 8), so the shared store is in play too; as many as the loop below holds.
    for _ in 0..3 {
        drop(
            (0..13)
                .map(|_| (pool.get(), buffers.get()))
                .collect::<Vec<_>>(),
        );
    }
    // The warm-up threads may still be running their thread-local destructors.
    let before = settled(|_| false);
    for i in 0..10_000 {
        let mut a = pool.get();
        a.push(i as u8);
        let mut b = buffers.get();
        b.extend_from_slice(b"response");
        if i % 100 == 0 {
            // Now and then more at once than the cache holds: through the shared store.
            let burst: Vec<_> = (0..12).map(|_| pool.get()).collect::<Vec<_>>();
            drop(burst);
        }
    }
    let after = heap();
    // The bursts' own `Vec` of guards allocates once per burst; nothing else may.
    assert_eq!(
        after.total_blocks - before.total_blocks,
        100,
        "get/put allocated in steady state"
    );
    assert_eq!(after.curr_blocks, before.curr_blocks);
}

/// A pool and a buffer pool, each warmed with 13 objects held at once (more than a thread's
/// cache holds, so some go back to the shared store), so the cases below run on warm pools.
fn warm_pools() -> (Arc<Pool<Vec<u8>>>, Arc<BufferPool>) {
    let pool = Arc::new(Pool::new(|| Vec::<u8>::with_capacity(64)));
    let buffers = Arc::new(BufferPool::new());
    for _ in 0..3 {
        drop(
            (0..13)
                .map(|_| (pool.get(), buffers.get()))
                .collect::<Vec<_>>(),
        );
        drop(pool.get_owned());
        drop(BufferPool::get_owned(&buffers));
    }
    (pool, buffers)
}

/// `Pool::stats` and `len` allocate nothing, as their docs say.
fn stats_and_len_allocate_nothing() {
    let (pool, buffers) = warm_pools();
    allocates_nothing("Pool::stats or len", || {
        for _ in 0..1000 {
            std::hint::black_box(pool.stats());
            std::hint::black_box(pool.len());
            std::hint::black_box(buffers.stats());
            std::hint::black_box(buffers.len());
        }
    });
}

/// `PooledOwned` and `PooledBufferOwned` allocate nothing of their own, as their docs say.
fn owned_guards_allocate_nothing_once_warm() {
    let (pool, buffers) = warm_pools();
    allocates_nothing("get_owned and its guard's drop, in steady state,", || {
        for i in 0..10_000 {
            pool.get_owned().push(i as u8);
            BufferPool::get_owned(&buffers).extend_from_slice(b"response");
        }
    });
}

/// `Pool::try_get` allocates nothing: only a miss allocates, as the pool's docs say.
fn try_get_allocates_nothing_once_warm() {
    let (pool, buffers) = warm_pools();
    allocates_nothing("try_get, in steady state,", || {
        for i in 0..10_000 {
            pool.try_get()
                .expect("a warm pool holds objects")
                .push(i as u8);
            buffers
                .try_get()
                .expect("a warm pool holds buffers")
                .push(1);
        }
    });
}

/// A pool with `weigh`, `keep_if` and `reset_on_return` allocates nothing once warm, as documented.
fn a_pool_with_hooks_and_a_budget_allocates_nothing_once_warm() {
    let pool = Pool::builder()
        .weigh(|v: &Vec<u8>| v.capacity())
        .byte_budget(1 << 20)
        .keep_if(|v: &Vec<u8>| v.capacity() < 4096)
        .reset_on_return(true)
        .build(|| Vec::<u8>::with_capacity(64));
    for _ in 0..3 {
        drop((0..13).map(|_| pool.get()).collect::<Vec<_>>());
    }
    let misses = pool.stats().misses;
    allocates_nothing("a pool with weigh, keep_if and reset_on_return", || {
        for i in 0..10_000 {
            pool.get().push(i as u8);
        }
    });
    assert_eq!(pool.stats().misses, misses);
}

/// A `BufferPool` that zeroes on return allocates nothing in steady state, as its docs say.
fn zeroing_buffers_allocate_nothing_once_warm() {
    let buffers = BufferPool::builder().zero_on_return(true).build();
    drop(buffers.get());
    allocates_nothing("a zeroing BufferPool, in steady state,", || {
        for _ in 0..10_000 {
            buffers.get().extend_from_slice(b"secret");
        }
    });
}

/// A miss allocates one box, 128 bytes on x86-64 for an object of up to 112, as the docs say.
fn a_miss_allocates_one_box_of_whole_lines() {
    fn miss<const N: usize>() -> (u64, u64) {
        let pool = Pool::builder()
            .reset(|_: &mut [u8; N]| {})
            .build(|| [0u8; N]);
        // This thread's cache, made without making an object.
        assert!(pool.try_get().is_none());
        allocated(|| drop(pool.get())).0
    }
    if cfg!(target_arch = "x86_64") {
        assert_eq!(miss::<112>(), (1, 128), "a miss on a 112-byte object");
        assert_eq!(miss::<113>(), (1, 256), "a miss on a 113-byte object");
    }
}

/// A return the full pool refuses for sure (its budget all held by stored objects) boxes
/// nothing: `try_put` hands the value back and `put` drops it, allocating nothing.
fn a_return_refused_for_sure_allocates_nothing() {
    let pool = BufferPool::builder().capacity(2).build();
    assert_eq!(pool.prefill(2), 2);
    let values: Vec<_> = (0..4).map(|_| Vec::<u8>::with_capacity(4096)).collect();
    let ((blocks, bytes), ()) = allocated(|| {
        for v in values {
            let back = pool.try_put(v).expect_err("the pool is full");
            pool.put(back);
        }
    });
    assert_eq!((blocks, bytes), (0, 0), "refused returns allocated");
    assert_eq!(pool.stats().discarded, 4);
}

/// An object that leaves the pool for good (detached, or refused on return) leaves its box,
/// empty, to its thread's cache, for the thread's next: a get that calls the factory then
/// allocates only what the factory makes. `clear` frees the kept box.
fn a_box_left_by_a_detached_object_serves_the_next_miss() {
    let pool = BufferPool::builder().capacity(4).build();
    drop(Pooled::into_inner(pool.get())); // the first box, kept empty
    let ((blocks, bytes), ()) = allocated(|| {
        for _ in 0..10 {
            drop(Pooled::into_inner(pool.get()));
        }
    });
    assert_eq!((blocks, bytes), (10, 10 * 4096), "only the buffers");
    let before = heap().curr_blocks;
    pool.clear();
    assert_eq!(heap().curr_blocks, before - 1, "`clear` frees the kept box");
    // One kept box at most: two objects leaving with no box kept yet keep one and free one.
    let (a, b) = (pool.get(), pool.get());
    let before = heap().curr_blocks;
    drop((Pooled::into_inner(a), Pooled::into_inner(b)));
    assert_eq!(
        heap().curr_blocks,
        before - 2 - 1,
        "two buffers and one box freed"
    );
    pool.clear();
    // A `prefill` whose object `keep_if` refuses leaves its box as the kept one, as a refused
    // return does.
    let picky = Pool::builder()
        .capacity(4)
        .keep_if(|_: &Vec<u8>| false)
        .build(|| Vec::<u8>::with_capacity(4096));
    assert!(picky.try_get().is_none()); // this thread's cache, made without an object
    assert_eq!(picky.prefill(1), 0, "keep_if refuses what prefill makes");
    let ((blocks, _), ()) = allocated(|| drop(Pooled::into_inner(picky.get())));
    assert_eq!(
        blocks, 1,
        "the miss boxes its buffer in the box prefill left"
    );
    // An exited thread's kept box is reachable too: `clear` frees it.
    let crowd = BufferPool::builder().capacity(4).build();
    std::thread::scope(|s| {
        // Joined by hand: the thread's teardown frees blocks, which must not fall into the count.
        common::join_all(vec![s.spawn(|| drop(Pooled::into_inner(crowd.get())))]);
    });
    let before = heap().curr_blocks;
    crowd.clear();
    assert_eq!(
        heap().curr_blocks,
        before - 1,
        "`clear` frees the exited thread's kept box"
    );
}

/// `build` allocates only its shared store, of the size the pool's docs give.
fn build_allocates_the_store_the_docs_size() {
    // 24 bytes a slot for `min(capacity, 1024)` slots rounded up to a power of two (6 KiB at
    // the default capacity); the first 8 caches are inside the pool itself.
    let built = |build: &dyn Fn() -> Pool<Vec<u8>>| allocated(build).0;
    assert_eq!(
        built(&|| Pool::new(Vec::new)),
        (1, 6 * 1024),
        "the default capacity"
    );
    assert_eq!(
        built(&|| Pool::builder().capacity(3).build(Vec::new)),
        (1, 4 * 24),
        "capacity 3"
    );
    assert_eq!(
        built(&|| Pool::builder().capacity(2_000).build(Vec::new)),
        (1, 1024 * 24),
        "capacity 2 000"
    );
}

fn steady_state_on_two_threads_allocates_nothing() {
    let pool = Pool::new(|| Vec::<u8>::with_capacity(4096));
    let ready = Barrier::new(3);
    let done = Barrier::new(3);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..10 {
                    pool.get().push(1);
                }
                ready.wait();
                for _ in 0..10_000 {
                    pool.get().push(1);
                }
                done.wait();
            });
        }
        ready.wait();
        let before = heap();
        done.wait();
        let after = heap();
        assert_eq!(
            after.total_blocks, before.total_blocks,
            "two threads' steady-state get/put allocated"
        );
    });
}

fn cross_thread_returns_allocate_nothing() {
    use std::sync::mpsc::{TryRecvError, TrySendError};

    let pool = Arc::new(Pool::new(|| Vec::<u8>::with_capacity(4096)));
    // A bounded std channel preallocates its ring, so `try_send` and `try_recv` never allocate.
    // Neither side ever blocks on it: a channel's first blocked sender or receiver allocates
    // its waiter list, at a moment that depends on scheduling. `None` marks the end of a
    // phase: the consumer has then dropped (given back) every buffer sent before it, and waits
    // at `gate` while the heap is read, as in `tests/alloc_counter.rs`.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Option<PooledOwned<Vec<u8>>>>(64);
    let gate = Arc::new(Barrier::new(2));
    let consumer = {
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || {
            park_once();
            loop {
                match rx.try_recv() {
                    Ok(Some(buf)) => drop(buf), // returned on this thread
                    Ok(None) => {
                        gate.wait(); // main reads the heap
                        gate.wait();
                    }
                    Err(TryRecvError::Empty) => std::thread::yield_now(),
                    Err(TryRecvError::Disconnected) => break,
                }
            }
        })
    };
    let send = |mut msg: Option<PooledOwned<Vec<u8>>>| loop {
        match tx.try_send(msg) {
            Ok(()) => return,
            Err(TrySendError::Full(m)) => {
                msg = m;
                std::thread::yield_now();
            }
            Err(TrySendError::Disconnected(_)) => panic!("the consumer is gone"),
        }
    };
    let round = |n: usize| {
        for _ in 0..n {
            let mut buf = pool.get_owned();
            buf.push(7);
            send(Some(buf));
        }
    };
    park_once();
    round(1000); // warm-up: the pool fills with the buffers in flight
    send(None);
    gate.wait(); // the consumer has given back every warm-up buffer and waits
                 // Threads of earlier cases may still be freeing their thread-locals.
    let before = settled(|_| false);
    let misses_before = pool.stats().misses;
    gate.wait();
    round(10_000);
    send(None);
    gate.wait(); // ... and every measured one
    let after = heap();
    let s = pool.stats();
    gate.wait();
    drop(tx);
    consumer.join().unwrap();
    assert!(s.hits > 9_000, "{s:?}");
    // At most 66 buffers are ever out of the pool at once (64 in the channel, one being filled,
    // one being dropped) and the pool keeps every one it gets back (capacity 256), so a miss
    // means all made so far are out: the factory runs at most 66 times over the whole run.
    assert!(s.misses <= 66, "{s:?}");
    // Buffers in flight may pass the warm-up's high-water mark: each factory call in the
    // measured span makes two blocks (the buffer and the box the pool keeps it in), and nothing
    // else may allocate.
    let new_objects = s.misses - misses_before;
    let extra = after.total_blocks - before.total_blocks;
    assert!(
        extra <= 2 * new_objects,
        "{extra} allocations for {new_objects} factory calls in the measured span"
    );
}

fn a_full_pool_retains_exactly_capacity() {
    // Threads of earlier cases may still be freeing their thread-locals.
    let before = settled(|_| false);
    let pool = Pool::builder()
        .capacity(5)
        .build(|| Vec::<u8>::with_capacity(100));
    // This thread's cache is made at its first use of the pool: an empty `try_get` makes it
    // without making an object.
    assert!(pool.try_get().is_none());
    let overhead = heap().curr_blocks - before.curr_blocks;
    let held: Vec<_> = (0..20).map(|_| pool.get()).collect();
    drop(held);
    let retained = heap().curr_blocks - before.curr_blocks - overhead;
    // Each retained object is its buffer plus the box the pool keeps it in; this thread's cache
    // keeps one more box, empty, from the returns the pool refused (its spare).
    assert_eq!(retained, 2 * 5 + 1, "a pool of capacity 5 holds 5 buffers");
    assert_eq!(pool.stats().retained, 5);
    drop(pool);
    assert_eq!(heap().curr_blocks, before.curr_blocks);
    assert_eq!(heap().curr_bytes, before.curr_bytes);
}

fn clearing_a_pool_past_its_ring_frees_the_overflow() {
    let pool = Pool::builder()
        .capacity(5_000)
        .reset(|_: &mut u64| {})
        .build(|| 0u64);
    // This thread's cache, made without making an object.
    assert!(pool.try_get().is_none());
    let before = settled(|_| false);
    // A burst given back by a thread that never took: every object goes to the shared store,
    // most of them past its ring (1 024 slots), into the overflow.
    std::thread::scope(|s| {
        s.spawn(|| (0..5_000u64).for_each(|v| pool.put(v)));
    });
    assert_eq!(pool.stats().retained, 5_000);
    pool.clear();
    assert_eq!(pool.stats().retained, 0);
    // The thread's own allocations are freed as it exits; the slot registry's free list may
    // have grown a few bytes. The overflow's buffer would be 64 KiB.
    let after = settled(|h| h.curr_blocks <= before.curr_blocks);
    assert!(
        after.curr_blocks <= before.curr_blocks && after.curr_bytes <= before.curr_bytes + 1024,
        "memory kept after `clear`: {before:?} -> {after:?}"
    );
}

fn the_builder_allocates_only_the_capturing_closures_boxes() {
    let limit = 64usize;
    let before = heap().total_blocks;
    let plain = Pool::builder()
        .capacity(4)
        .keep_if(|v: &Vec<u8>| v.capacity() <= 64)
        .weigh(|v: &Vec<u8>| v.capacity());
    assert_eq!(
        heap().total_blocks - before,
        0,
        "closures that capture nothing"
    );
    let capturing = Pool::builder()
        .keep_if(move |v: &Vec<u8>| v.capacity() <= limit)
        .weigh(move |v: &Vec<u8>| v.capacity().min(limit));
    assert_eq!(
        heap().total_blocks - before,
        2,
        "one box per capturing closure"
    );
    drop((plain, capturing));
}

static MADE: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

struct Obj(Vec<u8>);

impl Drop for Obj {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, SeqCst);
    }
}

fn workload(pool: &Arc<Pool<Obj>>) {
    std::thread::scope(|s| {
        for t in 0..3 {
            s.spawn(move || {
                for i in 0..500 {
                    let a = pool.get_owned();
                    let held: Vec<_> = (0..(i % 7)).map(|_| pool.get()).collect();
                    if (i + t) % 5 == 0 {
                        // Dropped on yet another thread.
                        std::thread::spawn(move || drop(a)).join().unwrap();
                    }
                    drop(held);
                }
            });
        }
    });
}

fn everything_is_freed_after_the_pool_and_its_threads() {
    let make = || {
        Arc::new(
            Pool::builder()
                .capacity(16)
                .reset(|o: &mut Obj| o.0.clear())
                .build(|| {
                    MADE.fetch_add(1, SeqCst);
                    Obj(Vec::with_capacity(64))
                }),
        )
    };
    // The same run once before measuring, so std's and the slot registry's one-time
    // allocations for this many threads are already made.
    workload(&make());
    let before = settled(|_| false);
    let pool = make();
    workload(&pool);
    drop(pool);
    assert!(MADE.load(SeqCst) > 0);
    assert_eq!(MADE.load(SeqCst), DROPPED.load(SeqCst), "objects leaked");
    // Exited threads run their thread-local destructors (std's thread handle, the slot claim)
    // after `scope` returns: wait for them, then nothing may be left.
    // The slot registry's free list may have grown (a realloc: same block count, a few more
    // bytes) if more threads were alive at once than in the warm-up; a leaked object would be
    // two blocks (its box and its buffer).
    let after = settled(|h| h.curr_blocks <= before.curr_blocks);
    assert!(
        after.curr_blocks <= before.curr_blocks && after.curr_bytes <= before.curr_bytes + 1024,
        "memory leaked: {before:?} -> {after:?}"
    );
}

fn settled(done: impl Fn(&dhat::HeapStats) -> bool) -> dhat::HeapStats {
    common::settled(std::time::Duration::from_millis(200), done)
}

/// `pool::Builder`'s Allocation claim, exactly: "The first 8 threads' caches are inside the
/// pool; the others come in leaves of 8, each allocated when a thread of its 8 slots first uses
/// the pool" (and `caches.rs`: "a leaf of 8 caches (3 KiB on x86-64) per 8-slot range used").
/// Sixteen threads, holding thread slots 0 to 15 (the registry hands out the lowest free index,
/// and they claim in turn), each use a fresh pool for the first time, one at a time: slots 0 to
/// 7 allocate nothing, slot 8 one leaf, slots 9 to 15 nothing more. The heap is read only while
/// every other thread waits at a barrier.
fn a_pool_allocates_one_leaf_per_eight_slots_past_the_first_eight() {
    const THREADS: usize = 16;
    // Used only to make each thread claim its slot, in turn.
    let claim = Pool::new(Vec::<u8>::new);
    let pool = Pool::new(Vec::<u8>::new);
    let barrier = Barrier::new(THREADS);
    // This thread takes slot 0.
    assert!(claim.try_get().is_none());
    let per_slot: Vec<(u64, u64)> = std::thread::scope(|s| {
        let threads: Vec<_> = (1..THREADS)
            .map(|k| {
                let (claim, pool, barrier) = (&claim, &pool, &barrier);
                s.spawn(move || {
                    // Phase 1: claim slot k, in turn.
                    for turn in 1..THREADS {
                        barrier.wait();
                        if turn == k {
                            assert!(claim.try_get().is_none());
                        }
                        barrier.wait();
                    }
                    // Phase 2: the first use of `pool` from slot k, in turn.
                    for turn in 1..THREADS {
                        barrier.wait();
                        if turn == k {
                            assert!(pool.try_get().is_none());
                        }
                        barrier.wait();
                    }
                    // Kept alive until the last count is read: an exit gives the slot back,
                    // which may grow the registry's free list.
                    barrier.wait();
                })
            })
            .collect();
        for _ in 1..THREADS {
            barrier.wait();
            barrier.wait();
        }
        let mut per_slot = Vec::with_capacity(THREADS);
        let before = heap();
        assert!(pool.try_get().is_none());
        let after = heap();
        per_slot.push((
            after.total_blocks - before.total_blocks,
            after.total_bytes - before.total_bytes,
        ));
        for _ in 1..THREADS {
            let before = heap();
            barrier.wait();
            barrier.wait();
            let after = heap();
            per_slot.push((
                after.total_blocks - before.total_blocks,
                after.total_bytes - before.total_bytes,
            ));
        }
        barrier.wait();
        for t in threads {
            t.join().unwrap();
        }
        per_slot
    });
    for (slot, &(blocks, bytes)) in per_slot.iter().enumerate() {
        match slot {
            8 => {
                assert_eq!(blocks, 1, "slot 8's first use: one leaf, {per_slot:?}");
                assert!(
                    (2 << 10..=4 << 10).contains(&bytes),
                    "a leaf of 8 caches is about 3 KiB: {bytes} bytes, {per_slot:?}"
                );
            }
            _ => assert_eq!(
                blocks, 0,
                "slot {slot}'s first use of the pool allocated: {per_slot:?}"
            ),
        }
    }
}
