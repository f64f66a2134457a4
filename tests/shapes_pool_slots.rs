//! `thrifty::pool` under more live threads than there are tracked thread slots: 1 100 threads
//! alive at once use one pool, then exit.
//!
//! Thread slots are dense among live threads, so with 1 100 alive at once at least 76 of them
//! hold a slot of 1 024 or above. Only the first 1 024 slots carry a claim token, which is how a
//! cache tells that its owner has exited. A get's reclaim leaves a live owner's hot object to
//! it, and counts a cache whose owner is not known (no token) as left behind. So what such
//! threads leave when they exit is found by the next get that needs it, as the pool's docs
//! promise for every exited thread; a pool that took their caches' owners for alive would
//! have a thread needing 1 100 objects call the factory once per such thread while their
//! objects sat in the pool. These tests check that, and the docs' other promises in this
//! shape: the pool never retains more than its capacity, it leaks nothing, objects handed between such threads are
//! found again, `clear` reaches everything, and a thread's returns go to the shared store
//! until it takes from the pool itself, whoever held its slot before.
//!
//! The tests run one at a time (each spawns 1 100 threads, and they share the process-wide
//! slots), on threads with small stacks.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread::ScopedJoinHandle;
use thrifty::measure::{self, CountingAlloc};
use thrifty::pool::{BufferPool, Pool, Pooled};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// Threads alive at once in each crowd: more than the 1 024 tracked slots.
const THREADS: usize = 1100;
/// Stack of each crowd thread (a debug build of the survivor test builds pools of several KiB
/// each on it).
const STACK: usize = 128 * 1024;

/// Serialises the tests: each needs its 1 100 threads to be the only ones claiming slots.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Objects the factory made and objects dropped, for one pool.
#[derive(Default)]
struct Counts {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

impl Counts {
    fn made(&self) -> usize {
        self.made.load(SeqCst)
    }

    /// Objects alive now: retained by the pool or held by a user.
    fn live(&self) -> usize {
        self.made.load(SeqCst) - self.dropped.load(SeqCst)
    }
}

/// A pooled object that counts its drop; `dirty` checks that objects are handed out reset.
struct Obj {
    counts: Arc<Counts>,
    dirty: bool,
}

impl Drop for Obj {
    fn drop(&mut self) {
        self.counts.dropped.fetch_add(1, SeqCst);
    }
}

/// A pool of `capacity` objects whose factory and drops are counted.
fn counted_pool(capacity: usize) -> (Pool<Obj>, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let c = Arc::clone(&counts);
    let pool = Pool::builder()
        .capacity(capacity)
        .reset(|o: &mut Obj| o.dirty = false)
        .build(move || {
            c.made.fetch_add(1, SeqCst);
            Obj {
                counts: Arc::clone(&c),
                dirty: false,
            }
        });
    (pool, counts)
}

/// Takes a thread slot for the calling thread now, through a pool of its own, so that it holds
/// a low (tracked) slot before a crowd takes the others, and has no cache in the pool under test.
fn claim_a_slot() {
    let other = Pool::builder().reset(|_: &mut u8| {}).build(|| 0u8);
    drop(other.get());
}

/// Gets `n` objects from `pool` at once (all held together), checks they come out reset, and
/// gives them back; returns how many times the factory was called meanwhile.
fn hold_at_once(pool: &Pool<Obj>, counts: &Counts, n: usize) -> usize {
    let before = counts.made();
    let mut held: Vec<Pooled<'_, Obj>> = (0..n).map(|_| pool.get()).collect();
    for obj in &mut held {
        assert!(!obj.dirty, "handed out without its reset");
        obj.dirty = true;
    }
    let made = counts.made() - before;
    drop(held);
    made
}

/// Runs `n` threads that are all alive at once, and joins every one before returning.
///
/// Thread `k` runs `first(k)`, which must use a pool, so the thread takes its slot: the lowest
/// free one, while no crowd thread has exited, so at least `n - 1024` of them hold untracked
/// slots. Once all have run `first`, thread `k` runs `then(k, what first returned)` and exits.
///
/// Without `in_turn`, the threads run `first` together, then `then` together. With it, thread
/// `k + 1` is spawned only once thread `k` has run `first` (so they take their slots in spawn
/// order, and the last ones spawned hold the untracked slots, in practice), and the threads
/// run `then` one at a time, in the order `in_turn` lists.
///
/// Each thread is joined explicitly: a join returns once the thread's locals, its slot claim
/// among them, are destroyed (the end of a scope only waits for the closures to return).
fn crowd<S>(
    n: usize,
    in_turn: Option<Vec<usize>>,
    first: impl Fn(usize) -> S + Sync,
    then: impl Fn(usize, S) + Sync,
) {
    std::thread::scope(|s| {
        // One channel each way per thread, with no other sender: if the thread panics, a wait
        // for it ends (and the panic is passed on) instead of hanging, and if this thread
        // panics, the threads that wait for it see their channel closed and end too.
        let mut threads = Vec::with_capacity(n);
        let wait = |threads: &mut Vec<(_, mpsc::Receiver<()>, ScopedJoinHandle<'_, ()>)>,
                    k: usize| {
            if threads[k].1.recv().is_err() {
                let (_, _, handle) = threads.swap_remove(k);
                std::panic::resume_unwind(handle.join().unwrap_err());
            }
        };
        for k in 0..n {
            let (go_tx, go_rx) = mpsc::channel::<()>();
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let (first, then) = (&first, &then);
            let handle = std::thread::Builder::new()
                .stack_size(STACK)
                .spawn_scoped(s, move || {
                    let state = first(k);
                    done_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    then(k, state);
                    // Awaited with `in_turn` only; the join waits for the rest.
                    let _ = done_tx.send(());
                })
                .expect("spawn a crowd thread");
            threads.push((go_tx, done_rx, handle));
            if in_turn.is_some() {
                wait(&mut threads, k);
            }
        }
        match in_turn {
            Some(order) => {
                for k in order {
                    threads[k].0.send(()).unwrap();
                    wait(&mut threads, k);
                }
            }
            None => {
                for k in 0..n {
                    wait(&mut threads, k);
                }
                for (go, _, _) in &threads {
                    go.send(()).unwrap();
                }
            }
        }
        for (_, _, handle) in threads {
            handle.join().expect("a crowd thread panicked");
        }
    });
}

/// A pool of `capacity` after a crowd of [`THREADS`] threads each got one object (all held at
/// once, so each a factory call) and gave it back on its own thread, then exited: each object
/// is in its exited thread's cache, at least 76 of them under untracked slots.
fn pool_after_exited_crowd(capacity: usize) -> (Pool<Obj>, Arc<Counts>) {
    assert!(capacity >= THREADS);
    claim_a_slot();
    let (pool, counts) = counted_pool(capacity);
    crowd(THREADS, None, |_| pool.get(), |_, obj| drop(obj));
    let s = pool.stats();
    assert_eq!(counts.made(), THREADS, "each crowd thread made its object");
    assert_eq!((s.misses, s.hits), (THREADS as u64, 0), "{s:?}");
    assert_eq!(
        (s.retained, s.discarded, counts.live()),
        (THREADS, 0, THREADS),
        "every object kept in its thread's cache: {s:?}"
    );
    (pool, counts)
}

/// A roomy pool (capacity 4 096), whose budget is never full, so no get's full reclaim runs:
/// once the 1 100 threads have exited, a thread that gets 1 100 objects at once is served from
/// their caches, untracked slots' included, and again on its next round; the pool never
/// retains more than its capacity, and `clear` drops every object.
#[test]
fn exited_threads_objects_are_reused_and_cleared_past_the_tracked_slots() {
    let _serial = serial();
    const CAPACITY: usize = 4096;
    let (pool, counts) = pool_after_exited_crowd(CAPACITY);

    let first = hold_at_once(&pool, &counts, THREADS);
    assert_eq!(first, 0, "the first round called the factory");
    let s = pool.stats();
    assert!(s.retained <= CAPACITY, "{s:?}");
    assert_eq!(counts.live(), s.retained, "objects lost or leaked: {s:?}");

    let second = hold_at_once(&pool, &counts, THREADS);
    assert_eq!(second, 0, "the second round called the factory");
    assert_eq!(pool.stats().discarded, 0);

    pool.clear();
    assert_eq!(pool.stats().retained, 0);
    assert_eq!(
        counts.live(),
        0,
        "clear left objects alive (exited threads' hot slots not reached)"
    );
    drop(pool);
    assert_eq!(counts.live(), 0);
}

/// A thread that outlives a crowd keeps its high slot (here the last of 1 100, spawned in
/// turn): each pool it then uses makes the one leaf of 8 caches its slot needs (3 KiB on
/// x86-64) and a table of leaf pointers, as a thread of a low slot would, not caches for every
/// slot below its own (a bucket of caches for the 1 024 slots around its own would take 384 KiB
/// a pool here, whatever its capacity).
#[test]
fn a_thread_left_from_a_crowd_makes_one_leaf_of_caches_per_pool() {
    let _serial = serial();
    const POOLS: usize = 10;
    let survivor = THREADS - 1;
    let per_pool = |()| {
        let (pools, made) = measure::count(|| {
            (0..POOLS)
                .map(|_| {
                    let pool = BufferPool::builder().capacity(4).build();
                    drop(pool.get());
                    pool
                })
                .collect::<Vec<_>>()
        });
        drop(pools);
        made.bytes_allocated / POOLS as u64
    };
    let low = per_pool(());
    let high = Mutex::new(0);
    crowd(
        THREADS,
        Some((0..THREADS).rev().collect()),
        |_| claim_a_slot(),
        |k, ()| {
            if k == survivor {
                *high.lock().unwrap() = per_pool(());
            }
        },
    );
    let high = high.into_inner().unwrap();
    // A 4 KiB buffer, the pool (its first 8 caches inside), its store; past slot 8, a leaf of
    // 8 caches and a table of at most 128 leaf pointers.
    assert!(low < 12 << 10, "{low} bytes a pool on a low slot");
    assert!(
        high < low + (4 << 10) + 1024,
        "{high} bytes a pool on a high slot, {low} on a low one"
    );
}

/// The same crowd with a pool whose capacity is exactly the 1 100 objects it left: the budget
/// is full of the exited threads' reservations. A thread that then gets 1 100 objects at once,
/// round after round, is served from the pool every time. Were the untracked threads' hot
/// objects out of a get's reach, the first round would call the factory once per such
/// thread (the budget at 1 099 of 1 100, not full, so no full reclaim), and the second until
/// the throttled full reclaim on the 64th get that calls the factory with the budget full.
#[test]
fn a_full_pool_serves_every_get_from_what_exited_untracked_threads_left() {
    let _serial = serial();
    let (pool, counts) = pool_after_exited_crowd(THREADS);

    let rounds: Vec<usize> = (0..4)
        .map(|_| {
            let made = hold_at_once(&pool, &counts, THREADS);
            let s = pool.stats();
            assert!(s.retained <= THREADS, "over capacity: {s:?}");
            assert_eq!(counts.live(), s.retained, "objects lost or leaked: {s:?}");
            made
        })
        .collect();
    assert_eq!(rounds, [0, 0, 0, 0], "factory calls per round");

    pool.clear();
    assert_eq!((pool.stats().retained, counts.live()), (0, 0));
}

/// A pool of 4 and 1 100 threads, all alive, each holding an object it got (1 100 factory
/// calls). They give them back one at a time, the last spawned (untracked slots, in practice)
/// first, and exit: the pool keeps 4, in those threads' caches, and drops the rest. A thread
/// that then loops get-and-drop finds the budget full of what the exited threads left, and
/// takes those 4 without calling the factory (were they out of a get's reach, it would
/// call it on every get until the throttled full reclaim, and drop each return for want of
/// room). Nothing leaks: after the pool is dropped, every object made has been dropped.
#[test]
fn a_small_pool_keeps_its_capacity_and_leaks_nothing() {
    let _serial = serial();
    const CAPACITY: usize = 4;
    claim_a_slot();
    let (pool, counts) = counted_pool(CAPACITY);
    let last_spawned_first = (0..THREADS).rev().collect();
    crowd(
        THREADS,
        Some(last_spawned_first),
        |_| pool.get(),
        |_, obj| drop(obj),
    );
    let s = pool.stats();
    assert_eq!(counts.made(), THREADS);
    assert_eq!(
        (s.retained, counts.live(), s.discarded),
        (CAPACITY, CAPACITY, (THREADS - CAPACITY) as u64),
        "{s:?}"
    );

    let before = counts.made();
    let mut misses = Vec::new();
    for i in 0..256 {
        let made = counts.made();
        let mut obj = pool.get();
        assert!(!obj.dirty, "handed out without its reset");
        obj.dirty = true;
        drop(obj);
        if counts.made() != made {
            misses.push(i);
        }
        assert!(counts.live() <= CAPACITY, "over capacity after get {i}");
    }
    assert!(misses.is_empty(), "factory calls on gets {misses:?}");
    assert_eq!(counts.made(), before);

    // Several held at once: the pool still keeps 4.
    assert_eq!(hold_at_once(&pool, &counts, 3 * CAPACITY), 2 * CAPACITY);
    assert_eq!((pool.stats().retained, counts.live()), (CAPACITY, CAPACITY));
    pool.clear();
    assert_eq!((pool.stats().retained, counts.live()), (0, 0));
    hold_at_once(&pool, &counts, 3 * CAPACITY);
    assert_eq!(counts.live(), CAPACITY);
    drop(pool);
    assert_eq!(counts.made(), counts.dropped.load(SeqCst), "objects leaked");
}

/// Objects cross between threads of untracked slots and this thread, both ways:
/// - 1 100 threads alive at once each get an object (a factory call each) and hand it to this
///   thread, which gives them all back after the threads exited;
/// - then, with the pool cleared, this thread gets 1 100 objects at once and hands one to each
///   of 1 100 new threads alive at once, which give them back on their own threads and exit.
///   Those threads never take, though the first crowd's threads, which held their slots, did.
///   The docs: "an object given back on a thread that never takes (the consumer of a
///   producer-consumer pair) goes to the shared store, where the producer finds it". Were a
///   cache a taker's for its next owners, each return would go to the returning thread's
///   cache, and those of untracked slots would be lost to gets once their threads exited.
///
/// Each time, a thread that then gets 1 100 objects at once finds every one in the pool.
#[test]
fn objects_handed_between_untracked_threads_and_another_are_all_found() {
    let _serial = serial();
    claim_a_slot();

    // Got on the crowd's threads, given back here.
    let (pool, counts) = counted_pool(2 * THREADS);
    let handed = Mutex::new(Vec::with_capacity(THREADS));
    crowd(
        THREADS,
        None,
        |_| pool.get(),
        |_, obj| handed.lock().unwrap().push(obj),
    );
    assert_eq!(counts.made(), THREADS);
    drop(handed);
    all_kept_then_found(&pool, &counts);

    // Got here, given back on the crowd's threads.
    let lent: Vec<Mutex<Option<Pooled<'_, Obj>>>> =
        (0..THREADS).map(|_| Mutex::new(Some(pool.get()))).collect();
    assert_eq!(counts.made(), 2 * THREADS, "the pool was cleared");
    crowd(
        THREADS,
        None,
        // The return is the thread's first use of the pool: it takes its slot then, while
        // all the crowd is alive.
        |k| {
            let mut obj = lent[k].lock().unwrap().take().unwrap();
            obj.dirty = true;
            drop(obj);
        },
        |_, ()| {},
    );
    all_kept_then_found(&pool, &counts);
}

/// A thread that holds a slot a taker held before, untracked slots included, starts as a
/// non-taker: a crowd whose threads only give back, on the slots of a crowd that took, sends
/// its returns to the shared store, where a getter finds them with no reclaim.
#[test]
fn returns_of_threads_that_never_took_reach_the_store_on_a_takers_old_slot() {
    let _serial = serial();
    claim_a_slot();
    let (pool, counts) = counted_pool(2 * THREADS);
    // Every thread takes, marking its slot's cache a taker's, and keeps what it took.
    crowd(
        THREADS,
        None,
        |_| drop(Pooled::into_inner(pool.get())),
        |_, ()| {},
    );
    assert_eq!(pool.stats().retained, 0);
    // On the same slots, threads whose only use of the pool is a return.
    let lent: Vec<Mutex<Option<Pooled<'_, Obj>>>> =
        (0..THREADS).map(|_| Mutex::new(Some(pool.get()))).collect();
    crowd(
        THREADS,
        None,
        |k| drop(lent[k].lock().unwrap().take().unwrap()),
        |_, ()| {},
    );
    let before = pool.stats();
    assert_eq!(before.retained, THREADS, "{before:?}");
    assert_eq!(hold_at_once(&pool, &counts, THREADS), 0);
    let after = pool.stats();
    assert_eq!(
        after.reclaims, before.reclaims,
        "returns kept in their caches, not the store: {after:?}"
    );
}

/// The pool kept all [`THREADS`] objects the crowd gave back, a thread that gets as many at
/// once finds every one without calling the factory, and `clear` then drops them all.
fn all_kept_then_found(pool: &Pool<Obj>, counts: &Counts) {
    let s = pool.stats();
    assert_eq!((s.retained, s.discarded), (THREADS, 0), "{s:?}");
    assert_eq!(counts.live(), THREADS);
    assert_eq!(hold_at_once(pool, counts, THREADS), 0, "{:?}", pool.stats());
    pool.clear();
    assert_eq!(counts.live(), 0);
}
