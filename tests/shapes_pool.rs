//! `thrifty::pool` used the way servers use it: objects handed between threads, threads that go
//! idle or exit with objects cached, guards detached or forgotten, memory given back. Each test
//! is one row of issue #10's table, named for what it shows.

#![cfg(not(loom))]

#[path = "common/pool_budget.rs"]
mod pool_budget;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Barrier, Mutex};
use thrifty::pool::{Pool, PooledOwned};

/// Hand-overs per test (fewer under Miri, which runs some thousand times slower).
const ROUNDS: usize = if cfg!(miri) { 2_000 } else { 20_000 };
const WARM_UP: usize = if cfg!(miri) { 200 } else { 1_000 };

/// A pool of `Vec<u8>` whose objects count themselves alive.
fn counted_pool(capacity: usize, bytes: usize) -> (Arc<Pool<Counted>>, Arc<AtomicUsize>) {
    let live = Arc::new(AtomicUsize::new(0));
    let l = Arc::clone(&live);
    let pool = Pool::builder()
        .capacity(capacity)
        .reset(|c: &mut Counted| c.buf.clear())
        .build(move || Counted::new(&l, bytes));
    (Arc::new(pool), live)
}

struct Counted {
    buf: Vec<u8>,
    live: Arc<AtomicUsize>,
}

impl Counted {
    fn new(live: &Arc<AtomicUsize>, bytes: usize) -> Self {
        live.fetch_add(1, SeqCst);
        Self {
            buf: Vec::with_capacity(bytes),
            live: Arc::clone(live),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(1, SeqCst);
    }
}

/// Producer `get_owned` → bounded channel → consumer drops: the consumer never takes from the
/// pool, so its returns go where the producer finds them. With a capacity that covers what is in
/// flight (the channel's depth + 2), at least 99% of gets after warm-up are hits, at every
/// capacity from 2 up (a capacity-4 pool with a channel of depth 1 used to miss on every get).
#[test]
fn a_producer_reuses_what_its_consumer_drops_at_every_capacity_from_two() {
    for capacity in [2, 3, 4, 5, 8, 9, 16] {
        let (pool, live) = counted_pool(capacity, 64);
        let (tx, rx) = sync_channel::<PooledOwned<Counted>>(capacity - 2);
        let consumer = std::thread::spawn(move || {
            for mut buf in rx {
                buf.buf.push(2);
            }
        });
        let mut after_warm_up = None;
        for i in 0..ROUNDS {
            if i == WARM_UP {
                after_warm_up = Some(pool.stats());
            }
            let mut buf = pool.get_owned();
            assert!(buf.buf.is_empty(), "handed out dirty");
            buf.buf.push(1);
            tx.send(buf).unwrap();
        }
        drop(tx);
        consumer.join().unwrap();
        let (before, after) = (after_warm_up.unwrap(), pool.stats());
        let gets = (after.hits + after.misses) - (before.hits + before.misses);
        let hits = after.hits - before.hits;
        assert!(
            hits * 100 >= gets * 99,
            "capacity {capacity}: {hits} hits in {gets} gets after warm-up; {after:?}"
        );
        assert!(after.retained <= capacity, "{after:?}");
        assert_eq!(live.load(SeqCst), after.retained, "objects lost or leaked");
    }
}

/// The same hand-over through a pool that lives for good (a `static`) and its borrowing `get`,
/// whose guards are `'static` and `Send` without an `Arc`: the producer reuses what the consumer
/// drops as it does with `get_owned`.
#[test]
fn a_static_pools_borrowed_guards_cross_threads_and_come_back() {
    static POOL: std::sync::LazyLock<thrifty::pool::BufferPool> = std::sync::LazyLock::new(|| {
        thrifty::pool::BufferPool::builder()
            .capacity(8)
            .buffer_capacity(64)
            .build()
    });
    assert_eq!(POOL.prefill(8), 8);
    let (tx, rx) = sync_channel::<thrifty::pool::PooledBuffer<'static>>(6);
    let consumer = std::thread::spawn(move || {
        for mut buf in rx {
            buf.push(2);
        }
    });
    for _ in 0..ROUNDS {
        let mut buf = POOL.get();
        assert!(buf.is_empty(), "handed out dirty");
        buf.push(1);
        tx.send(buf).unwrap();
    }
    drop(tx);
    consumer.join().unwrap();
    let after = POOL.stats();
    assert_eq!(after.misses, 0, "a get found no buffer to reuse: {after:?}");
    assert_eq!(after.hits, ROUNDS as u64, "{after:?}");
    assert_eq!(after.retained, 8, "{after:?}");
}

/// Four threads each held five objects once and are now idle (alive, parked); a fifth thread
/// loops get/drop. Their caches are reached the first time the fifth thread finds the pool dry:
/// it never calls the factory, and nothing it returns is dropped for want of room. `clear`
/// then empties the idle threads' caches before it returns.
#[test]
fn idle_threads_caches_serve_a_busy_thread() {
    let (pool, live) = counted_pool(20, 64);
    let held = Barrier::new(4);
    let filled = Barrier::new(5);
    let release = Barrier::new(5);
    let (made, busy, cleared) = std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let objects: Vec<_> = (0..5).map(|_| pool.get()).collect();
                held.wait(); // twenty distinct objects
                drop(objects);
                filled.wait();
                release.wait(); // idle, with its cache full, until the end
            });
        }
        filled.wait();
        let made = pool.stats();
        s.spawn(|| {
            for _ in 0..ROUNDS {
                pool.get().buf.push(1);
            }
        })
        .join()
        .unwrap();
        let busy = pool.stats();
        pool.clear();
        let cleared = (pool.stats().retained, live.load(SeqCst));
        release.wait();
        (made, busy, cleared)
    });
    assert_eq!((made.misses, made.retained), (20, 20), "{made:?}");
    assert_eq!(
        busy.misses, 20,
        "the busy thread called the factory: {busy:?}"
    );
    assert_eq!((busy.discarded, busy.retained), (0, 20), "{busy:?}");
    assert_eq!(cleared, (0, 0), "clear left (retained, alive)");
}

/// A thread caches five 20 MiB buffers and exits: another thread's next get finds them (no
/// factory call), and `clear` frees them all before it returns. The next thread started takes
/// the exited one's thread slot, and with it its cache, so its get is a hit in its own cache
/// (no reclaim); a thread in another slot reclaiming what an exited one left is
/// [`an_exited_threads_cache_is_reclaimed_by_a_thread_in_another_slot`].
#[test]
fn an_exited_threads_cache_is_reused_and_cleared() {
    const MIB_20: usize = 20 << 20;
    let (pool, live) = counted_pool(8, MIB_20);
    let p = Arc::clone(&pool);
    std::thread::spawn(move || drop((0..5).map(|_| p.get()).collect::<Vec<_>>()))
        .join()
        .unwrap();
    assert_eq!((pool.stats().retained, live.load(SeqCst)), (5, 5));
    let p = Arc::clone(&pool);
    // Every object is made at 20 MiB and `reset` only clears, so the capacity cannot tell a
    // reused object from a new one: the miss count below does.
    std::thread::spawn(move || drop(p.get())).join().unwrap();
    assert_eq!(
        pool.stats().misses,
        5,
        "the exited thread's objects were not found"
    );
    pool.clear();
    assert_eq!(pool.stats().retained, 0);
    assert_eq!(live.load(SeqCst), 0, "100 MiB still alive after clear");
}

/// A thread caches five objects (one in its hot slot, four stacked) and exits, while a thread
/// started before it, so in another thread slot with another cache, waits. That thread's gets
/// then find its cache and the store dry and reclaim the exited thread's cache, the hot object
/// included (a live owner's hot object would be left to it): holding all five at once, it calls
/// no factory. `clear` then frees them all.
#[test]
fn an_exited_threads_cache_is_reclaimed_by_a_thread_in_another_slot() {
    let (pool, live) = counted_pool(8, 64);
    let other = Pool::new(Vec::<u8>::new);
    let (slotted, exited) = (Barrier::new(2), Barrier::new(2));
    let (before, after) = std::thread::scope(|s| {
        let taker = s.spawn(|| {
            drop(other.get()); // claims this thread's slot before the exiting thread exists
            slotted.wait();
            exited.wait();
            let before = pool.stats();
            let held: Vec<_> = (0..5).map(|_| pool.get()).collect();
            let after = pool.stats();
            drop(held);
            (before, after)
        });
        slotted.wait();
        let p = &pool;
        s.spawn(move || drop((0..5).map(|_| p.get()).collect::<Vec<_>>()))
            .join()
            .unwrap();
        exited.wait();
        taker.join().unwrap()
    });
    assert_eq!((before.misses, before.retained), (5, 5), "{before:?}");
    assert_eq!(
        after.misses, 5,
        "the exited thread's objects were not all found: {after:?}"
    );
    assert!(
        after.reclaims > before.reclaims,
        "no reclaim ran: {after:?}"
    );
    pool.clear();
    assert_eq!((pool.stats().retained, live.load(SeqCst)), (0, 0));
}

/// An object taken from a thread's cache keeps its reservation there while it is out. Whether
/// it never comes back (`mem::forget`, `into_inner`) or comes back on another thread, the pool
/// still keeps every object it has room for.
#[test]
fn lent_detached_and_forgotten_objects_never_make_the_pool_refuse() {
    for how in ["forget", "into_inner", "other thread"] {
        let (pool, live) = counted_pool(1, 64);
        drop(pool.get()); // this thread's cache now reserves one object
        let lent = pool.get_owned(); // out, its reservation still in the cache
        match how {
            "forget" => forget(lent),
            "into_inner" => drop(PooledOwned::into_inner(lent)),
            _ => std::thread::spawn(move || drop(lent)).join().unwrap(),
        }
        if how != "other thread" {
            // A value built elsewhere, given back on a thread that never took from the pool.
            let p = Arc::clone(&pool);
            let l = Arc::clone(&live);
            std::thread::spawn(move || p.put(Counted::new(&l, 64)))
                .join()
                .unwrap();
        }
        let s = pool.stats();
        assert_eq!((s.retained, s.discarded), (1, 0), "{how}: {s:?}");
        // The retained object serves the next get.
        drop(pool.get());
        assert_eq!(pool.stats().misses, 1, "{how}");
        let forgotten = usize::from(how == "forget");
        assert_eq!(live.load(SeqCst), 1 + forgotten, "{how}");
    }
}

/// `mem::forget`s a guard; under Miri, keeps it in [`FORGOTTEN`] instead, where its drop never
/// runs either: the pool sees the same leak, and Miri's leak check, which counts what a static
/// reaches as live, does not report the deliberately leaked object and pool.
fn forget(g: PooledOwned<Counted>) {
    if cfg!(miri) {
        FORGOTTEN.lock().unwrap().push(g);
    } else {
        std::mem::forget(g);
    }
}

/// The guards [`forget`] kept under Miri, never dropped.
static FORGOTTEN: Mutex<Vec<PooledOwned<Counted>>> = Mutex::new(Vec::new());

/// `trim(keep)` reaches other threads' caches, idle but alive, before it returns, and keeps
/// `keep` objects.
#[test]
fn trim_reaches_every_cache() {
    let (pool, live) = counted_pool(64, 64);
    let held = Barrier::new(3);
    let ready = Barrier::new(4);
    let done = Barrier::new(4);
    let (before, after) = std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let objects: Vec<_> = (0..5).map(|_| pool.get()).collect();
                held.wait(); // fifteen distinct objects
                drop(objects);
                ready.wait();
                done.wait();
            });
        }
        ready.wait();
        let before = (pool.len(), live.load(SeqCst));
        pool.trim(4);
        let after = (pool.len(), live.load(SeqCst));
        done.wait();
        (before, after)
    });
    assert_eq!(before, (15, 15), "each thread's cache keeps its five");
    assert_eq!(after, (4, 4), "trim(4) left (retained, alive)");
}

thread_local! {
    static HELD: std::cell::RefCell<Option<thrifty::pool::PooledBufferOwned>> =
        const { std::cell::RefCell::new(None) };
}

/// A buffer taken from the shared store keeps its unit of the budget while it travels (a
/// ticket); dropped by the TLS destructor of a thread that never used the pool, it still comes
/// back with that unit, once. That thread has no slot claim when `HELD` is destroyed, so the
/// return makes one there and then (registered after `HELD`'s, it is destroyed later) and goes
/// through that slot's cache. The drop after the claim has ended, with no cache to go through,
/// is `a_buffer_dropped_after_its_threads_slot_is_gone_comes_back_with_its_unit`.
#[test]
fn a_buffer_dropped_in_thread_teardown_keeps_the_budget_exact() {
    let pool = Arc::new(thrifty::pool::BufferPool::builder().capacity(2).build());
    assert_eq!(pool.prefill(2), 2);
    let buf = pool.get_owned();
    std::thread::spawn(move || HELD.with(|held| *held.borrow_mut() = Some(buf)))
        .join()
        .unwrap();
    let s = pool.stats();
    assert_eq!((s.retained, s.discarded), (2, 0), "{s:?}");
    pool_budget::assert_budget_is_exact(&pool, 2);
}

/// Work for a thread's teardown that runs after its slot claim has ended (see
/// [`after_the_slot_is_gone`]).
struct Late(std::cell::RefCell<Option<Box<dyn FnOnce()>>>);

impl Drop for Late {
    fn drop(&mut self) {
        if let Some(work) = self.0.borrow_mut().take() {
            work();
        }
    }
}

thread_local! {
    static LATE: Late = const { Late(std::cell::RefCell::new(None)) };
}

/// Runs `setup` on a new thread, then the work it returns in that thread's teardown, after the
/// thread's slot claim has been given back: `LATE`'s destructor is registered first, and
/// `setup`'s first use of the pool makes the claim, whose destructor runs first (Linux runs
/// thread-local destructors in reverse order of registration; `tests/teardown_counter.rs`
/// relies on the same). The late work then finds no slot, so no cache: a ticket it redeems or
/// settles goes through the reclaim mutex (the pool's `strays`).
fn after_the_slot_is_gone<F: FnOnce() + 'static>(setup: impl FnOnce() -> F + Send + 'static) {
    std::thread::spawn(move || {
        LATE.with(|_| {});
        let work = setup();
        LATE.with(|late| *late.0.borrow_mut() = Some(Box::new(work)));
    })
    .join()
    .unwrap();
}

/// A capacity-2 `BufferPool` holding 2 buffers in its shared store, so the first get of a
/// fresh thread takes one with its unit (a ticket).
fn two_in_the_store() -> Arc<thrifty::pool::BufferPool> {
    let pool = Arc::new(thrifty::pool::BufferPool::builder().capacity(2).build());
    assert_eq!(pool.prefill(2), 2);
    pool
}

/// A ticketed buffer dropped by a thread's TLS destructor after the thread's slot is gone
/// comes back to the shared store with its unit, once: counted as returned (on the shared
/// tallies), retained, and served to the next gets without a miss; the full pool then refuses a
/// third buffer. A unit lost would make room for one more (or be missing after `clear`); a
/// unit counted twice, one less.
#[test]
fn a_buffer_dropped_after_its_threads_slot_is_gone_comes_back_with_its_unit() {
    let pool = two_in_the_store();
    let p = Arc::clone(&pool);
    after_the_slot_is_gone(move || {
        let buf = p.get_owned(); // the claim, and a buffer from the store with its ticket
        move || drop(buf)
    });
    let s = pool.stats();
    assert_eq!(
        (s.returned, s.retained, s.discarded, s.misses),
        (1, 2, 0, 0),
        "{s:?}"
    );
    assert!(
        pool.try_put(Vec::with_capacity(4096)).is_err(),
        "full: the unit came back once"
    );
    drop((pool.get(), pool.get()));
    assert_eq!(pool.stats().misses, 0, "both buffers were in the pool");
    pool_budget::assert_budget_is_exact(&pool, 2);
}

/// A ticketed buffer that grew before its late drop (after its thread's slot is gone) no
/// longer fits its unit: the unit goes back and the buffer reserves anew, so the pool holds it
/// at its new weight and the budget stays exact.
#[test]
fn a_buffer_grown_and_dropped_after_its_threads_slot_is_gone_reserves_anew() {
    let pool = two_in_the_store();
    let p = Arc::clone(&pool);
    after_the_slot_is_gone(move || {
        let mut buf = p.get_owned();
        move || {
            buf.reserve(3 * 4096); // 4 KiB to at least 12 KiB
            drop(buf)
        }
    });
    let s = pool.stats();
    assert_eq!((s.returned, s.retained, s.discarded), (1, 2, 0), "{s:?}");
    assert!(
        s.retained_bytes >= 4096 + 3 * 4096,
        "weighed as grown: {s:?}"
    );
    assert!(pool.try_put(Vec::with_capacity(4096)).is_err(), "full");
    pool_budget::assert_budget_is_exact(&pool, 2);
}

/// A ticketed buffer detached with `into_inner` after its thread's slot is gone gives its unit
/// back (through the reclaim mutex): the pool, holding one buffer, takes exactly one more.
/// Without the unit back it would refuse it; with the unit given back twice, take two.
#[test]
fn a_buffer_detached_after_its_threads_slot_is_gone_gives_its_unit_back() {
    let pool = two_in_the_store();
    let p = Arc::clone(&pool);
    after_the_slot_is_gone(move || {
        let buf = p.get_owned();
        move || drop(PooledOwned::into_inner(buf))
    });
    let s = pool.stats();
    assert_eq!((s.returned, s.retained, s.discarded), (0, 1, 0), "{s:?}");
    pool_budget::assert_takes_exactly(&pool, 1);
    pool_budget::assert_budget_is_exact(&pool, 2);
}

/// An object `keep_if` refuses on its late return (after its thread's slot is gone) is dropped,
/// counted as discarded, and its ticket's unit goes back: the pool, holding one object, takes
/// exactly one more.
#[test]
fn an_object_refused_after_its_threads_slot_is_gone_gives_its_unit_back() {
    let pool = Arc::new(
        Pool::builder()
            .capacity(2)
            .keep_if(|v: &Vec<u8>| v.is_empty())
            .build(Vec::new),
    );
    assert_eq!(pool.prefill(2), 2);
    let p = Arc::clone(&pool);
    after_the_slot_is_gone(move || {
        let mut v = p.get_owned();
        move || {
            v.push(1); // not empty: refused
            drop(v)
        }
    });
    let s = pool.stats();
    assert_eq!((s.returned, s.retained, s.discarded), (0, 1, 1), "{s:?}");
    pool_budget::assert_takes_exactly(&pool, 1);
    pool_budget::assert_budget_is_exact(&pool, 2);
}

/// Runs `work` while `n` threads that ran `hold` (a get and a return: one object in each one's
/// hot slot) stay alive and idle; returns what `work` returned.
fn beside_idle_holders<R>(n: usize, hold: impl Fn() + Sync, work: impl FnOnce() -> R) -> R {
    let idle = Barrier::new(n + 1);
    std::thread::scope(|s| {
        for _ in 0..n {
            s.spawn(|| {
                hold();
                idle.wait();
                idle.wait(); // alive, idle, holding its hot object
            });
        }
        idle.wait();
        /// Lets the idle threads go when `work` ends, even by a panic, so the scope ends too.
        struct LetGo<'a>(&'a Barrier);
        impl Drop for LetGo<'_> {
            fn drop(&mut self) {
                self.0.wait();
            }
        }
        let _let_go = LetGo(&idle);
        work()
    })
}

/// Two idle threads hold a 4 KiB buffer each in their hot slots, and a byte budget has room
/// left, but less than a buffer: the budget counts as full for the buffer it refused, so a
/// working thread's gets still reclaim the idle threads' buffers now and then (every 64th
/// miss), as they do when the budget is full to the byte. Without that, the worker called the
/// factory on every get and dropped on every put.
#[test]
fn a_budget_with_less_room_than_a_buffer_still_reclaims_from_idle_threads() {
    for budget in [8192, 10_240] {
        let pool = thrifty::pool::BufferPool::builder()
            .capacity(256)
            .buffer_capacity(4096)
            .max_buffer_capacity(4096)
            .byte_budget(budget)
            .build();
        let (before, after) = beside_idle_holders(
            2,
            || drop(pool.get()),
            || {
                let before = pool.stats();
                std::thread::scope(|s| s.spawn(|| (0..1000).for_each(|_| drop(pool.get()))).join())
                    .unwrap();
                (before, pool.stats())
            },
        );
        let (hits, misses) = (after.hits - before.hits, after.misses - before.misses);
        assert!(
            hits > 900,
            "byte budget {budget}: {hits} hits and {misses} misses in 1000 gets"
        );
    }
}

/// A refused heavy buffer makes the budget count as full only until room is given back: once
/// the pool is cleared, a thread working with light buffers runs no reclaim, which would take an
/// idle thread's hot buffer.
#[test]
fn one_refused_heavy_buffer_does_not_make_a_roomy_budget_full_for_good() {
    let pool = Pool::builder()
        .capacity(256)
        .weigh(|v: &Vec<u8>| v.capacity())
        .byte_budget(1_000)
        .build(|| Vec::with_capacity(200));
    pool.put(Vec::with_capacity(600));
    let refused = pool.try_put(Vec::with_capacity(900));
    assert_eq!(refused.map_err(|v| v.capacity()), Err(900));
    pool.clear();
    let (before, after) = beside_idle_holders(
        1,
        || drop(pool.get()),
        || {
            let before = pool.stats();
            // 64 misses: buffers taken for good, as a consumer that keeps them does.
            for _ in 0..64 {
                drop(thrifty::pool::Pooled::into_inner(pool.get()));
            }
            (before, pool.stats())
        },
    );
    assert_eq!(before.retained, 1, "{before:?}");
    assert_eq!(
        after.reclaims, before.reclaims,
        "200 of 1 000 bytes held, yet a reclaim ran: {after:?}"
    );
}

/// A burst from an empty pool in which 30 threads each hold 9 objects at once, three rounds:
/// prefilled with as many objects as are held at once, no get finds its cache and the store dry,
/// so none reclaims (each thread's first round takes from the store, and the 9 it gives back
/// fill its own cache, hot slot and stack, for the next rounds). The pool's Cost section says
/// so; without `prefill` such bursts reclaim now and then, how often depends on the schedule.
#[test]
fn a_prefilled_burst_of_many_holders_runs_no_reclaim() {
    let pool = Pool::builder().capacity(400).build(Vec::<u8>::new);
    assert_eq!(pool.prefill(270), 270);
    let before = pool.stats();
    let go = Barrier::new(30);
    std::thread::scope(|s| {
        for _ in 0..30 {
            s.spawn(|| {
                go.wait();
                for _ in 0..3 {
                    drop((0..9).map(|_| pool.get()).collect::<Vec<_>>());
                }
            });
        }
    });
    let after = pool.stats();
    assert_eq!(
        (
            after.reclaims - before.reclaims,
            after.misses - before.misses
        ),
        (0, 0),
        "{after:?}"
    );
}

/// A byte budget of 0 with objects that weigh nothing (a bad setting, but a legal one: it keeps
/// only weightless objects) is not full while the count has room, so a thread's misses run no
/// reclaim, which would take an idle thread's hot object: as with no byte budget.
#[test]
fn a_zero_byte_budget_of_weightless_objects_is_not_full() {
    for budget in [None, Some(0)] {
        let mut builder = Pool::builder().capacity(100).weigh(|_: &Vec<u8>| 0);
        if let Some(bytes) = budget {
            builder = builder.byte_budget(bytes);
        }
        let pool = builder.build(Vec::new);
        let after = beside_idle_holders(
            1,
            || drop(pool.get()),
            || {
                for _ in 0..640 {
                    drop(thrifty::pool::Pooled::into_inner(pool.get()));
                }
                pool.stats()
            },
        );
        assert_eq!(
            (after.reclaims, after.retained),
            (0, 1),
            "byte budget {budget:?}: {after:?}"
        );
    }
}

/// Each return weighs its object once, and every limit it meets sees that one weight: a `weigh`
/// whose answers change from call to call cannot get an object past `max_object_bytes`.
#[test]
fn a_return_weighs_its_object_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counting = Arc::clone(&calls);
    // Light on odd calls, heavy on even ones.
    let pool = Pool::builder()
        .capacity(8)
        .weigh(move |_: &Vec<u8>| {
            if counting.fetch_add(1, SeqCst) % 2 == 0 {
                10
            } else {
                1_000
            }
        })
        .max_object_bytes(100)
        .byte_budget(10_000)
        .build(Vec::new);
    let held: Vec<_> = (0..4).map(|_| pool.get()).collect();
    // Given back on a thread that never took: through the shared store.
    std::thread::scope(|s| {
        s.spawn(|| pool.put(Vec::new()));
        s.spawn(|| drop(held));
    });
    let st = pool.stats();
    assert_eq!(calls.load(SeqCst), 5, "one weigh per return: {st:?}");
    assert!(st.retained_bytes <= 100 * st.retained, "{st:?}");
    // The 4 gets and the `put` of a value made outside: each counted once, kept or not.
    assert_eq!(st.misses + 1, st.returned + st.discarded, "{st:?}");
}

/// Dropping a pool drops every object it holds, in the shared store and in a thread's cache,
/// even past one whose `Drop` panics; that panic reaches the caller.
#[test]
fn a_panicking_drop_while_the_pool_drops_leaves_no_object_behind() {
    /// An object that counts itself alive; the one numbered `.1` panics as it is dropped.
    struct Obj(usize, usize, Arc<AtomicUsize>);
    impl Drop for Obj {
        fn drop(&mut self) {
            self.2.fetch_sub(1, SeqCst);
            assert!(self.0 != self.1, "object {}'s drop panics", self.0);
        }
    }
    // The panicking object in the shared store, in this thread's cache, and the last one made.
    for panics in [3, 22, 31] {
        let live = Arc::new(AtomicUsize::new(0));
        let made = AtomicUsize::new(0);
        let counting = Arc::clone(&live);
        let pool = Pool::builder()
            .capacity(64)
            .reset(|_: &mut Obj| {})
            .build(move || {
                counting.fetch_add(1, SeqCst);
                Obj(made.fetch_add(1, SeqCst), panics, Arc::clone(&counting))
            });
        // 20 taken for good, then 12 into this thread's cache (its hot slot and stack, then
        // the store), then the 20 given back by a thread that never took: into the store.
        let more: Vec<Obj> = (0..20)
            .map(|_| thrifty::pool::Pooled::into_inner(pool.get()))
            .collect();
        drop((0..12).map(|_| pool.get()).collect::<Vec<_>>());
        std::thread::scope(|s| {
            s.spawn(|| more.into_iter().for_each(|o| pool.put(o)));
        });
        assert_eq!((pool.len(), live.load(SeqCst)), (32, 32));
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(pool)));
        assert!(
            dropped.is_err(),
            "object {panics}'s panic reaches the caller"
        );
        assert_eq!(
            live.load(SeqCst),
            0,
            "object {panics} panicking left some undropped"
        );
    }
}

/// `prefill` keeps only what a return would keep: an object over `max_object_bytes`, or one
/// `keep_if` refuses, is dropped (and counted), not stored.
#[test]
fn prefill_keeps_only_what_a_return_would_keep() {
    let heavy = Pool::builder()
        .weigh(|v: &Vec<u8>| v.capacity())
        .max_object_bytes(100)
        .build(|| Vec::<u8>::with_capacity(1000));
    assert_eq!(heavy.prefill(4), 0);
    assert_eq!((heavy.len(), heavy.stats().discarded), (0, 1));
    let refused = Pool::builder()
        .keep_if(|v: &Vec<u8>| v.capacity() <= 100)
        .build(|| Vec::<u8>::with_capacity(1000));
    assert_eq!(refused.prefill(4), 0);
    assert_eq!(refused.len(), 0);
    let fine = Pool::builder()
        .keep_if(|v: &Vec<u8>| v.capacity() <= 100)
        .build(|| Vec::<u8>::with_capacity(10));
    assert_eq!(fine.prefill(4), 4);
}

/// `prefill` on a full pool makes nothing; one whose byte budget refuses what it made counts
/// that object as discarded.
#[test]
fn prefill_on_a_full_pool_makes_nothing_and_counts_what_it_drops() {
    let made = Arc::new(AtomicUsize::new(0));
    let counting = Arc::clone(&made);
    let pool = Pool::builder().capacity(2).build(move || {
        counting.fetch_add(1, SeqCst);
        Vec::<u8>::new()
    });
    assert_eq!(pool.prefill(5), 2);
    assert!((0..10).all(|_| pool.prefill(1) == 0));
    assert_eq!(made.load(SeqCst), 2, "no factory call once full");
    let bytes = Pool::builder()
        .weigh(|v: &Vec<u8>| v.capacity())
        .byte_budget(250)
        .build(|| Vec::<u8>::with_capacity(100));
    assert_eq!(bytes.prefill(5), 2);
    assert_eq!(bytes.stats().discarded, 1, "the third, made and refused");
}

/// A return the full pool refuses is refused at once, before the value is boxed, only when all
/// of the budget is held by objects in the shared store: one that finds room held by a ticket
/// (an object lent out) or by a cache's reservation still reclaims it and keeps the value. The
/// return hooks run first either way: with `reset_on_return`, the value handed back is reset.
#[test]
fn a_full_pool_refuses_at_once_only_what_no_reclaim_could_make_room_for() {
    let pool = Arc::new(
        Pool::builder()
            .capacity(2)
            .reset_on_return(true)
            .build(Vec::<u8>::new),
    );
    assert_eq!(pool.prefill(2), 2);
    // Full of stored objects: refused, reset, with no reclaim and nothing counted but the
    // `put`'s discard.
    assert_eq!(
        pool.try_put(vec![1, 2, 3]),
        Err(vec![]),
        "handed back reset"
    );
    pool.put(vec![4]);
    let s = pool.stats();
    assert_eq!((s.retained, s.discarded, s.returned), (2, 1, 0), "{s:?}");
    assert_eq!(s.reclaims, 0, "nothing to reclaim: {s:?}");
    // Another thread takes both from the store and keeps them (tickets: their units stay
    // counted while they are out), then stays alive: the budget is full with nothing stored.
    let (lent, done) = (Barrier::new(2), Barrier::new(2));
    std::thread::scope(|s| {
        s.spawn(|| {
            let held = (pool.get(), pool.get());
            lent.wait();
            done.wait();
            drop(held);
        });
        lent.wait();
        assert_eq!(pool.len(), 0);
        // The return reclaims the tickets' units and keeps the value.
        assert_eq!(pool.try_put(vec![5]), Ok(()), "room a reclaim gives back");
        assert_eq!(pool.stats().reclaims, 1);
        done.wait();
    });
    assert!(pool.len() <= 2);
    // This thread's cache reserves room for the object it lent out, and the store holds one
    // that a thread that never took gave back: the budget is full, and this thread's own
    // reserved room keeps the value, with no reclaim.
    pool.clear();
    drop(pool.get());
    let out = pool.get();
    std::thread::scope(|s| {
        s.spawn(|| pool.put(vec![]));
    });
    assert_eq!(pool.len(), 1);
    let reclaims = pool.stats().reclaims;
    assert_eq!(
        pool.try_put(vec![6]),
        Ok(()),
        "kept in this thread's reserved room"
    );
    assert_eq!(pool.stats().reclaims, reclaims);
    assert_eq!(pool.len(), 2);
    drop(out);
    assert_eq!(pool.len(), 2);
}

/// `ROUNDS` handoffs from a producer (`get_owned`) through a channel of 16 to a consumer that
/// runs `each` before it drops every message (`first` once, before the first): at most 8
/// reclaims and 64 factory calls in all, with a capacity of 256.
fn handoffs_reclaim_seldom(
    first: impl Fn(&Pool<Counted>) + Send + 'static,
    each: impl Fn(&Pool<Counted>) + Send + 'static,
) {
    let (pool, _live) = counted_pool(256, 64);
    let (tx, rx) = sync_channel::<PooledOwned<Counted>>(16);
    let consumer = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            first(&pool);
            for message in rx {
                each(&pool);
                drop(message);
            }
        })
    };
    for _ in 0..ROUNDS {
        tx.send(pool.get_owned()).unwrap();
    }
    drop(tx);
    consumer.join().unwrap();
    let stats = pool.stats();
    assert!(
        stats.reclaims <= 8,
        "{} reclaims in {ROUNDS} handoffs: {stats:?}",
        stats.reclaims
    );
    assert!(stats.misses <= 64, "reuse stopped: {stats:?}");
}

#[test]
fn a_consumer_that_took_once_does_not_make_every_handoff_a_reclaim() {
    // The consumer also takes a buffer of its own once (scratch work, say). Were what it drops
    // stacked in its cache, the producer's next get, finding the store dry, would take the stack
    // back by a reclaim, about once every 16 handoffs.
    handoffs_reclaim_seldom(|pool| drop(pool.get()), |_| ());
}

#[test]
fn a_consumer_that_holds_two_scratch_objects_per_message_reclaims_seldom() {
    // For every message the consumer takes two objects of its own at once (a request buffer and
    // an encode buffer, say), so every message misses its hot slot and it stacks what it drops,
    // the producer's objects included. A producer that found the store dry took that stack back
    // by a reclaim rather than call the factory, so the pool never grew past the few objects in
    // flight and its next dry moment reclaimed again: one reclaim every 16 to 64 handoffs, for
    // good, with a capacity ten times what was ever in use.
    handoffs_reclaim_seldom(|_| (), |pool| drop((pool.get(), pool.get())));
}

/// The rule behind the test above, step by step. A live thread `B` stacks objects in its cache;
/// the main thread, holding everything it gets (so the store stays dry), takes `B`'s stack by a
/// reclaim. When `B` has stacked again, the main thread makes its next `GROW` objects rather
/// than reclaim `B`'s stack at once, and only then reclaims again; a `try_get`, which makes
/// nothing, takes the stack whenever it finds the store dry.
#[test]
fn a_get_that_took_a_live_threads_stack_makes_a_few_objects_before_taking_again() {
    const GROW: u64 = 8; // the pool's `GROW_BEFORE_RECLAIM`
    let (pool, _live) = counted_pool(256, 0);
    let (stack, stacked) = (sync_channel::<usize>(0), sync_channel::<()>(0));
    let (orders, done) = (stack.0, stacked.1);
    let b = {
        let (pool, orders, done) = (Arc::clone(&pool), stack.1, stacked.0);
        std::thread::spawn(move || {
            for n in orders {
                let held: Vec<_> = (0..n).map(|_| pool.get()).collect();
                drop(held); // one to the hot slot, the rest to the stack
                done.send(()).unwrap();
            }
        })
    };
    let stack_on_b = |n| {
        orders.send(n).unwrap();
        done.recv().unwrap();
    };
    let mut held = Vec::new();
    stack_on_b(5);
    let s0 = pool.stats();
    held.push(pool.get_owned()); // the store is dry: takes B's stack of 4
    let s1 = pool.stats();
    assert_eq!(
        (s1.reclaims - s0.reclaims, s1.misses - s0.misses),
        (1, 0),
        "{s1:?}"
    );
    held.extend((0..3).map(|_| pool.get_owned())); // the other 3 from the store
    stack_on_b(5); // B's hot one and 4 new ones, stacked again
    let s2 = pool.stats();
    held.extend((0..GROW).map(|_| pool.get_owned()));
    let s3 = pool.stats();
    assert_eq!(
        (s3.reclaims - s2.reclaims, s3.misses - s2.misses),
        (0, GROW),
        "made {GROW} without taking B's stack: {s3:?}"
    );
    held.push(pool.get_owned());
    let s4 = pool.stats();
    assert_eq!(
        (s4.reclaims - s3.reclaims, s4.misses - s3.misses),
        (1, 0),
        "then took it: {s4:?}"
    );
    held.extend((0..3).map(|_| pool.get_owned()));
    stack_on_b(5);
    assert!(pool.try_get().is_some(), "try_get reaches B's stack");
    assert_eq!(pool.stats().reclaims - s4.reclaims, 1);
    drop(orders);
    b.join().unwrap();
    drop(held);
}

#[test]
fn threads_holding_more_than_the_capacity_reclaim_seldom() {
    // Eight threads each hold one object at a time from a pool of 4: returns find the budget
    // full of the others' reservations. A reclaim for room on each of them ran one every few
    // gets; they are paced now, and objects past the capacity are dropped.
    const THREADS: usize = 8;
    const GETS: usize = if cfg!(miri) { 400 } else { 4_000 };
    let (pool, live) = counted_pool(4, 64);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let pool = &pool;
            s.spawn(move || {
                for _ in 0..GETS {
                    let held = pool.get();
                    std::thread::yield_now();
                    drop(held);
                }
            });
        }
    });
    let stats = pool.stats();
    let gets = (THREADS * GETS) as u64;
    assert_eq!(stats.hits + stats.misses, gets);
    assert!(
        stats.reclaims <= gets / 32,
        "{} reclaims in {gets} gets: {stats:?}",
        stats.reclaims
    );
    assert!(stats.retained <= 4, "{stats:?}");
    drop(pool);
    assert_eq!(live.load(SeqCst), 0, "an object leaked");
}

#[test]
fn a_buffer_heavier_than_the_whole_byte_budget_costs_no_reclaim() {
    // `try_build` accepts a byte budget below the largest buffer kept; a buffer grown past the
    // whole budget can never be kept: its return must not reclaim for room every time, nor
    // leave the budget looking full to every later miss.
    let pool = thrifty::pool::BufferPool::builder()
        .byte_budget(32 << 10)
        .build();
    for _ in 0..200 {
        let lent = pool.get();
        let mut heavy = pool.get();
        heavy.reserve_exact(48 << 10);
        drop(heavy);
        drop(lent);
    }
    let stats = pool.stats();
    assert_eq!(stats.reclaims, 0, "{stats:?}");
    assert_eq!(stats.discarded, 200, "{stats:?}");
}

#[test]
fn threads_swapping_batches_past_the_capacity_reclaim_at_most_once_a_round() {
    // Two threads each take 3 objects a round, hand them to the other and drop the 3 they were
    // handed: 6 objects are held at once. With room for 6 every round reuses them all, with no
    // reclaim. With room for 4, at least 2 a round are made and dropped (a third when the 4
    // kept sit in one thread's cache), and a get that finds its cache and the store empty
    // while the other's cache stacks what it was just given back reclaims it: at most once a
    // round, as the pool's docs say, not on every such get.
    const SWAPS: usize = if cfg!(miri) { 200 } else { 2_000 };
    let past_the_capacity = (3 * SWAPS) as u64;
    for (capacity, most_reclaims, most_misses) in [(6, 0, 12), (4, SWAPS as u64, past_the_capacity)]
    {
        let (pool, live) = counted_pool(capacity, 64);
        let (to_b, from_a) = sync_channel::<Vec<PooledOwned<Counted>>>(1);
        let (to_a, from_b) = sync_channel::<Vec<PooledOwned<Counted>>>(1);
        // A two-thread barrier made of channels: if one thread panics, its ends drop and the
        // other's `send` or `recv` fails, so a failure cannot leave it waiting.
        let (meet_b, met_a) = sync_channel::<()>(1);
        let (meet_a, met_b) = sync_channel::<()>(1);
        std::thread::scope(|s| {
            for (to, from, meet, met) in
                [(to_b, from_b, meet_b, met_b), (to_a, from_a, meet_a, met_a)]
            {
                let pool = &pool;
                let wait = move || {
                    meet.send(()).unwrap();
                    met.recv().unwrap();
                };
                s.spawn(move || {
                    for _ in 0..SWAPS {
                        let batch: Vec<_> = (0..3).map(|_| pool.get_owned()).collect();
                        wait(); // both hold their 3
                        to.send(batch).unwrap();
                        drop(from.recv().unwrap());
                        wait(); // both gave the other's 3 back
                    }
                });
            }
        });
        let stats = pool.stats();
        assert_eq!(stats.hits + stats.misses, (6 * SWAPS) as u64);
        assert!(
            stats.reclaims <= most_reclaims && stats.misses <= most_misses,
            "capacity {capacity}: {stats:?}"
        );
        assert!(stats.retained <= capacity, "{stats:?}");
        drop(pool);
        assert_eq!(live.load(SeqCst), 0, "an object leaked");
    }
}

/// A node that may hold a guard of a node from its own pool: a tree of pooled nodes.
struct Node {
    child: Option<PooledOwned<Node>>,
}

/// Nodes that hold guards of their own pool: with `reset_on_return(true)` and a reset that
/// drops the child, the pool is freed once the last user `Arc` goes, as `get_owned`'s docs say;
/// with the default reset on get, a node given back keeps its child's guard, and with it the
/// pool, alive (the cycle those docs warn of), until a `clear` drops the nodes.
#[test]
fn nodes_that_hold_guards_of_their_own_pool_free_it_as_documented() {
    let tree = |pool: &Arc<Pool<Node>>| {
        let mut root = Pool::get_owned(pool);
        root.child = Some(Pool::get_owned(pool));
        drop(root);
    };
    let reset_on_return = Arc::new(
        Pool::builder()
            .reset_on_return(true)
            .reset(|n: &mut Node| n.child = None)
            .build(|| Node { child: None }),
    );
    tree(&reset_on_return);
    let gone = Arc::downgrade(&reset_on_return);
    drop(reset_on_return);
    assert!(
        gone.upgrade().is_none(),
        "reset on return: the pool was not freed"
    );

    let on_get = Arc::new(
        Pool::builder()
            .reset(|n: &mut Node| n.child = None)
            .build(|| Node { child: None }),
    );
    tree(&on_get);
    let kept = Arc::downgrade(&on_get);
    assert_eq!(on_get.stats().retained, 1, "the root, holding its child");
    assert_eq!(
        Arc::strong_count(&on_get),
        2,
        "the child's guard holds the pool"
    );
    on_get.clear();
    drop(on_get);
    assert!(kept.upgrade().is_none(), "cleared: the pool was not freed");
}
