//! dhat: what `thrifty::limit` allocates, asserted. Token bucket acquires and refunds, in-flight
//! enters, semaphore acquires and releases (contended ones too, once the waiter queue has grown;
//! owned permits too, whose `Arc` count moves but nothing is allocated; forgetting a permit)
//! and keyed acquires on a key already present (or of 0 tokens) allocate nothing; a release that
//! wakes more than 4 waiters allocates one buffer. New keys grow the keyed map's tables, by
//! doubling, and `KeyedLimiter::shrink_to_fit` gives that memory back once the keys are evicted.
//!
//! dhat's profiler is global, so one `#[test]` runs every case in turn.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use thrifty::limit::{
    Clock, Fairness, InFlight, KeyedLimiter, ManualClock, MonotonicClock, RateError, Semaphore,
    TokenBucket,
};

mod common;
use common::{allocated, allocates_nothing, heap, join_all, park_once, warm_up_threads};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    warm_up_threads(park_once);
    bucket_acquire_and_refund_allocate_nothing();
    clocks_after_the_first_allocate_nothing();
    in_flight_allocates_nothing();
    semaphore_allocates_nothing_once_its_queue_has_grown(Semaphore::new(2));
    // The barging mode: its nudges use the same buffer as grants.
    let barging = Semaphore::with_fairness(2, Fairness::Eventual(Duration::from_micros(100)));
    semaphore_allocates_nothing_once_its_queue_has_grown(barging);
    timed_semaphore_acquires_that_need_no_wait_allocate_nothing();
    a_release_that_wakes_eight_waiters_allocates_one_buffer();
    owned_semaphore_permits_allocate_nothing();
    forgetting_semaphore_permits_allocates_nothing();
    keyed_allocates_nothing_for_a_present_key();
    keyed_with_hasher_allocates_the_new_maps_shard_array();
    keyed_requests_of_zero_tokens_for_an_absent_key_allocate_nothing();
    keyed_new_keys_grow_the_tables_and_shrink_to_fit_frees_them();
    // Claims of the docs that the cases above do not assert (a review of every documented
    // claim against the tests, 2026-12-06).
    a_manual_clock_is_one_shared_word();
    refusals_allocate_nothing();
    making_a_keyed_limiter_allocates_its_shard_array();
}

/// A `KeyedLimiter` made after the process's first (the CPU count asked, a clock made) allocates
/// one block: its map's shard array (its Allocation section).
fn making_a_keyed_limiter_allocates_its_shard_array() {
    let before = heap();
    let k: KeyedLimiter<String> = KeyedLimiter::new(1000, 5).unwrap();
    let after = heap();
    assert_eq!(
        after.total_blocks - before.total_blocks,
        1,
        "the shard array"
    );
    drop(k);
}

fn bucket_acquire_and_refund_allocate_nothing() {
    let clock = ManualClock::new();
    let bucket = TokenBucket::with_clock(1_000_000, 100, clock.clone()).unwrap();
    let real = TokenBucket::new(1_000_000_000, 1000).unwrap();
    allocates_nothing("TokenBucket", || {
        let mut admitted = 0;
        for i in 0..10_000u32 {
            match bucket.try_acquire(1 + i % 3) {
                Ok(t) if i % 5 == 0 => bucket.refund(t),
                Ok(_) => admitted += 1,
                Err(e) => assert!(e.retry_after().is_some()),
            }
            clock.advance(Duration::from_micros(1));
            bucket.acquire(1).unwrap();
            std::hint::black_box(real.try_acquire(1).is_ok());
        }
        assert!(admitted > 0);
    });
}

/// The first `MonotonicClock` of a process may allocate (it reads one `/sys` file to see
/// whether the kernel keeps time on the TSC); later ones, and every reading, do not.
fn clocks_after_the_first_allocate_nothing() {
    let _first = MonotonicClock::new();
    allocates_nothing(
        "MonotonicClock::new after the first, and its readings",
        || {
            for _ in 0..100 {
                let clock = MonotonicClock::new();
                std::hint::black_box(clock.now());
                std::hint::black_box(MonotonicClock::std_instant().now());
            }
        },
    );
}

fn in_flight_allocates_nothing() {
    let gate = std::sync::Arc::new(InFlight::new(2));
    allocates_nothing("InFlight", || enter_twice_then_shed(|| gate.try_enter()));
    allocates_nothing("InFlight owned", || {
        enter_twice_then_shed(|| gate.try_enter_owned())
    });
    assert_eq!(
        (gate.shed(), std::sync::Arc::strong_count(&gate)),
        (20_000, 1)
    );
}

/// 10 000 rounds of two admissions into a gate of 2 and a third shed, through `enter`.
fn enter_twice_then_shed<P>(enter: impl Fn() -> Option<P>) {
    for _ in 0..10_000 {
        let a = enter();
        let b = enter();
        assert!(enter().is_none());
        drop((a, b));
    }
}

fn semaphore_allocates_nothing_once_its_queue_has_grown(s: Semaphore) {
    // The first wait ever grows the waiter queue to its first capacity (it keeps it). A wait of
    // 1 ns joins the line; a zero timeout would not.
    let held = s.acquire(2).unwrap();
    assert!(s.acquire_timeout(1, Duration::from_nanos(1)).is_err());
    drop(held);
    allocates_nothing(
        &format!("Semaphore uncontended, {:?}", s.fairness()),
        || {
            for _ in 0..10_000 {
                let p = s.acquire(1).unwrap();
                let q = s.try_acquire(1).unwrap();
                assert!(s.try_acquire(1).is_err());
                assert!(s.acquire_timeout(2, Duration::ZERO).is_err());
                drop((p, q));
            }
        },
    );
    // Two threads taking the whole semaphore in turn, each holding it until the other waits in
    // line and then letting it go until the other has it (or is done): every acquire but the
    // last waits (released at once instead, one thread's loop may end before the other's
    // starts, and nothing waits). The first round grows the queue to its largest size; the second must allocate nothing.
    const ROUNDS: usize = 2_000;
    /// Counts the thread done as it leaves, by return or by unwind, so the other stops waiting.
    struct Leaving<'a>(&'a AtomicUsize);
    impl Drop for Leaving<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Relaxed);
        }
    }
    let contend = || {
        let (done, waited) = (AtomicUsize::new(0), AtomicUsize::new(0));
        // A semaphore whose line never empties (a waiter that leaves without leaving it) must
        // fail this, not hang it.
        let deadline = Instant::now() + Duration::from_secs(60);
        let patience = |what: &str| {
            std::thread::yield_now();
            assert!(
                Instant::now() < deadline,
                "{what} for a minute: waiting {}",
                s.waiting()
            );
        };
        std::thread::scope(|sc| {
            for _ in 0..2 {
                sc.spawn(|| {
                    let _leaving = Leaving(&done);
                    // As `threads_only` below: `waiting` may park on the semaphore's lock.
                    park_once();
                    for _ in 0..ROUNDS {
                        let p = s.acquire(2).unwrap();
                        loop {
                            if s.waiting() > 0 {
                                waited.fetch_add(1, Relaxed);
                                break;
                            }
                            if done.load(Relaxed) > 0 {
                                break;
                            }
                            patience("no other thread in line");
                        }
                        drop(p);
                        // Until the waiter has left the line with the permits: in the barging
                        // mode this thread's next acquire would take them back ahead of it.
                        while s.waiting() > 0 && done.load(Relaxed) == 0 {
                            patience("a waiter still in line");
                        }
                    }
                });
            }
        });
        waited.into_inner()
    };
    let waits = contend();
    assert!(
        waits >= ROUNDS,
        "{waits} of {} acquires waited in line",
        2 * ROUNDS
    );
    let before = heap();
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| {
                park_once();
            });
        }
    });
    let threads_only = heap().total_blocks - before.total_blocks;
    let before = heap();
    let waits = contend();
    let after = heap();
    assert!(
        waits >= ROUNDS,
        "{waits} of {} acquires waited in line",
        2 * ROUNDS
    );
    assert!(
        after.total_blocks - before.total_blocks <= threads_only,
        "contended Semaphore ({:?}) allocated beyond its two threads' own start-up",
        s.fairness()
    );
}

/// `Semaphore::acquire_timeout` with the permits free allocates nothing, as the docs say.
fn timed_semaphore_acquires_that_need_no_wait_allocate_nothing() {
    let s = Semaphore::new(4);
    allocates_nothing("Semaphore::acquire_timeout without a wait", || {
        for _ in 0..10_000 {
            let p = s.acquire_timeout(2, Duration::from_secs(10)).unwrap();
            let q = s.acquire_timeout(2, Duration::ZERO).unwrap();
            drop((p, q));
        }
    });
    assert_eq!(s.available(), 4);
}

/// A `Semaphore` release that wakes more than 4 waiters allocates one buffer, as its docs say.
fn a_release_that_wakes_eight_waiters_allocates_one_buffer() {
    // `waiting` may park this thread on the semaphore's lock.
    park_once();
    let s = Semaphore::new(8);
    // The first round grows the line to 8 waiters (it keeps that capacity); the second must
    // allocate only the release's buffer.
    eight_waiters_released_at_once(&s);
    let (joining, release, woken) = eight_waiters_released_at_once(&s);
    assert_eq!(
        joining, 0,
        "8 waiters joining a line that held 8 before allocated"
    );
    assert_eq!(release, 1, "the release that woke 8 waiters");
    assert_eq!(woken, 0, "8 woken waiters allocated");
    assert_eq!((s.available(), s.waiting()), (8, 0));
}

/// Eight threads each wait for 1 permit while this thread holds all 8, which it releases at once
/// when all 8 are in line; returns the blocks allocated while they joined the line, by the
/// release and by the woken waiters (read while they wait at a barrier).
fn eight_waiters_released_at_once(s: &Semaphore) -> (u64, u64, u64) {
    let gate = Barrier::new(9);
    let held = s.acquire(8).unwrap();
    std::thread::scope(|sc| {
        let threads = (0..8)
            .map(|_| {
                sc.spawn(|| {
                    // A thread's first park sets up parking_lot's per-thread data (it
                    // allocates), and the semaphore's lock may park.
                    park_once();
                    gate.wait(); // main reads `before`
                    gate.wait();
                    drop(s.acquire(1).unwrap());
                    gate.wait(); // main reads `after`
                    gate.wait();
                })
            })
            .collect();
        gate.wait();
        let before = heap();
        gate.wait();
        // Whatever the scheduling, the release comes only once all 8 are in line (or after
        // 60 s, when the assertion below fails instead of the test hanging).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while s.waiting() < 8 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let in_line = s.waiting();
        let queued = heap();
        drop(held);
        let released = heap();
        gate.wait();
        let after = heap();
        gate.wait();
        join_all(threads);
        assert_eq!(in_line, 8, "8 waiters in line within 60 s");
        (
            queued.total_blocks - before.total_blocks,
            released.total_blocks - queued.total_blocks,
            after.total_blocks - released.total_blocks,
        )
    })
}

fn owned_semaphore_permits_allocate_nothing() {
    let s = Arc::new(Semaphore::new(2));
    // As above, the first wait ever grows the waiter queue.
    let held = s.acquire_owned(2).unwrap();
    assert!(s.acquire_timeout_owned(1, Duration::from_nanos(1)).is_err());
    drop(held);
    allocates_nothing("Semaphore owned permits", || {
        for _ in 0..10_000 {
            let p = s.acquire_owned(1).unwrap();
            let q = s.try_acquire_owned(1).unwrap();
            assert!(s.try_acquire_owned(1).is_err());
            assert!(s.acquire_timeout_owned(2, Duration::ZERO).is_err());
            assert_eq!(Arc::strong_count(&s), 3);
            drop((p, q));
        }
    });
    assert_eq!(
        Arc::strong_count(&s),
        1,
        "every permit let go of its reference"
    );
    assert_eq!(s.available(), 2);
}

fn forgetting_semaphore_permits_allocates_nothing() {
    let s = Arc::new(Semaphore::new(2_000));
    allocates_nothing("Semaphore forget", || {
        for _ in 0..1_000 {
            s.acquire(1).unwrap().forget();
            s.acquire_owned(1).unwrap().forget();
        }
    });
    assert_eq!((s.total(), s.available()), (0, 0));
    assert_eq!(Arc::strong_count(&s), 1);
}

fn keyed_allocates_nothing_for_a_present_key() {
    let clock = ManualClock::new();
    let k: KeyedLimiter<String, _> = KeyedLimiter::with_clock(1000, 5, clock.clone()).unwrap();
    let clients = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    for c in clients {
        k.try_acquire(c, 1).unwrap();
    }
    allocates_nothing("KeyedLimiter on present keys", || {
        for i in 0..10_000 {
            let c = clients[i % 3];
            if let Ok(t) = k.try_acquire(c, 1) {
                if i % 7 == 0 {
                    k.refund(c, t);
                }
            }
            clock.advance(Duration::from_micros(300));
        }
    });
    assert_eq!(k.len(), 3);
}

/// `KeyedLimiter::with_hasher` allocates the new map's shard array and nothing else (the old
/// one is freed), as its docs say; and a present key allocates nothing on SipHash either.
fn keyed_with_hasher_allocates_the_new_maps_shard_array() {
    let clock = ManualClock::new();
    let plain: KeyedLimiter<String, _> = KeyedLimiter::with_clock(1000, 5, clock.clone()).unwrap();
    let sip = std::hash::RandomState::new();
    let before = heap();
    let k = plain.with_hasher(sip);
    let after = heap();
    assert_eq!(
        after.total_blocks - before.total_blocks,
        1,
        "the shard array"
    );
    assert_eq!(
        after.curr_blocks, before.curr_blocks,
        "the old shard array is freed"
    );
    k.try_acquire("10.0.0.1", 1).unwrap();
    allocates_nothing("KeyedLimiter on SipHash, present key", || {
        for _ in 0..1_000 {
            let _ = k.try_acquire("10.0.0.1", 1);
            clock.advance(Duration::from_micros(300));
        }
    });
}

/// `KeyedLimiter::try_acquire` of 0 tokens allocates nothing and inserts no key, as its docs say.
fn keyed_requests_of_zero_tokens_for_an_absent_key_allocate_nothing() {
    let clock = ManualClock::new();
    let k: KeyedLimiter<String, _> = KeyedLimiter::with_clock(10, 5, clock.clone()).unwrap();
    k.try_acquire("present", 1).unwrap();
    allocates_nothing("KeyedLimiter: 0 tokens for an absent key", || {
        for _ in 0..10_000 {
            let nothing = k.try_acquire("absent", 0).unwrap();
            // `available` reads `burst` for a key not in the map; `refund` gives nothing back
            // to a key not there.
            assert_eq!(k.available("absent"), 5);
            k.refund("absent", nothing);
            let one = k.try_acquire("present", 1).unwrap();
            k.refund("absent", one);
            clock.advance(Duration::from_millis(100));
        }
    });
    assert_eq!(k.len(), 1, "a request of 0 tokens inserted its key");
}

fn keyed_new_keys_grow_the_tables_and_shrink_to_fit_frees_them() {
    let clock = ManualClock::new();
    let k: KeyedLimiter<u64, _> = KeyedLimiter::with_clock(1000, 1, clock.clone()).unwrap();
    let empty = heap();
    for key in 0..100_000 {
        k.try_acquire(&key, 1).unwrap();
    }
    let full = heap();
    let grown = full.total_blocks - empty.total_blocks;
    assert!(
        (1..100_000 / 8).contains(&grown),
        "{grown} allocations for 100 000 new keys: the tables grow by doubling"
    );
    let held = full.curr_bytes - empty.curr_bytes;
    clock.advance(Duration::from_secs(1));
    assert_eq!(k.evict_idle(), 100_000);
    assert!(
        heap().curr_bytes - empty.curr_bytes >= held / 2,
        "evicting keeps the tables' memory"
    );
    k.shrink_to_fit();
    assert!(
        heap().curr_bytes <= empty.curr_bytes,
        "{} bytes of {held} still held after shrink_to_fit",
        heap().curr_bytes - empty.curr_bytes
    );
}

/// `ManualClock`: "Allocates one shared word (an `Arc`) when made; reading and advancing it are
/// one atomic each" (clones share the word).
fn a_manual_clock_is_one_shared_word() {
    let ((blocks, bytes), clock) = allocated(ManualClock::new);
    assert_eq!(blocks, 1, "ManualClock::new: one Arc");
    // An `Arc<AtomicU64>`: two counts and the word.
    assert_eq!(bytes, 24, "ManualClock::new: {bytes} bytes");
    allocates_nothing("ManualClock: clone, advance, set, now", || {
        for i in 0..1000u64 {
            let other = clock.clone();
            other.advance(Duration::from_nanos(3));
            clock.set(i * 10);
            assert_eq!(other.now(), clock.now());
        }
    });
}

/// The error types' "making it allocates nothing", for the refusals a limiter hands out.
fn refusals_allocate_nothing() {
    let clock = ManualClock::new();
    let bucket = TokenBucket::with_clock(10, 2, clock.clone()).unwrap();
    let gate = InFlight::new(1);
    let sem = Semaphore::new(1);
    let _entered = gate.try_enter().unwrap();
    let _held = sem.try_acquire(1).unwrap();
    allocates_nothing(
        "refusals: RateError, InsufficientCapacity, TryAcquireError",
        || {
            for _ in 0..1000 {
                let _ = bucket.try_acquire(2);
                assert!(matches!(bucket.try_acquire(2), Err(RateError::Limited(_))));
                assert!(matches!(
                    bucket.try_acquire(3),
                    Err(RateError::InsufficientCapacity(_))
                ));
                assert!(bucket.acquire(3).is_err());
                assert!(gate.try_enter().is_none());
                assert!(sem.try_acquire(1).is_err());
                assert!(sem.try_acquire(2).is_err());
                assert!(sem.acquire_timeout(1, Duration::ZERO).is_err());
                clock.advance(Duration::from_millis(1));
            }
        },
    );
}
