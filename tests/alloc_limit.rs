//! dhat: what `thrifty::limit` allocates, asserted. Token bucket acquires and refunds, in-flight
//! enters, semaphore acquires and releases (contended ones too, once the waiter queue has grown;
//! owned permits too, whose `Arc` count moves but nothing is allocated; forgetting a permit)
//! and keyed acquires on a key already present allocate nothing. New keys grow the keyed map's
//! tables, by doubling, and `KeyedLimiter::shrink_to_fit` gives that memory back once the keys
//! are evicted.
//!
//! dhat's profiler is global, so one `#[test]` runs every case in turn.

use std::sync::Arc;
use std::time::Duration;
use thrifty::limit::{
    Clock, InFlight, KeyedLimiter, ManualClock, MonotonicClock, Semaphore, TokenBucket,
};

mod common;
use common::{heap, park_once, warm_up_threads};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    warm_up_threads(park_once);
    bucket_acquire_and_refund_allocate_nothing();
    clocks_after_the_first_allocate_nothing();
    in_flight_allocates_nothing();
    semaphore_allocates_nothing_once_its_queue_has_grown();
    owned_semaphore_permits_allocate_nothing();
    forgetting_semaphore_permits_allocates_nothing();
    keyed_allocates_nothing_for_a_present_key();
    keyed_new_keys_grow_the_tables_and_shrink_to_fit_frees_them();
}

/// Asserts `work` made no allocation.
fn none(what: &str, work: impl FnOnce()) {
    let before = heap();
    work();
    let after = heap();
    assert_eq!(
        after.total_blocks - before.total_blocks,
        0,
        "{what} allocated"
    );
}

fn bucket_acquire_and_refund_allocate_nothing() {
    let clock = ManualClock::new();
    let bucket = TokenBucket::with_clock(1_000_000, 100, clock.clone()).unwrap();
    let real = TokenBucket::new(1_000_000_000, 1000).unwrap();
    none("TokenBucket", || {
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
    none(
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
    let gate = InFlight::new(2);
    none("InFlight", || {
        for _ in 0..10_000 {
            let a = gate.try_enter();
            let b = gate.try_enter();
            assert!(gate.try_enter().is_none());
            drop((a, b));
        }
    });
    assert_eq!(gate.shed(), 10_000);
}

fn semaphore_allocates_nothing_once_its_queue_has_grown() {
    let s = Semaphore::new(2);
    // The first wait ever grows the waiter queue to its first capacity (it keeps it). A wait of
    // 1 ns joins the line; a zero timeout would not.
    let held = s.acquire(2).unwrap();
    assert!(s.acquire_timeout(1, Duration::from_nanos(1)).is_err());
    drop(held);
    none("Semaphore uncontended", || {
        for _ in 0..10_000 {
            let p = s.acquire(1).unwrap();
            let q = s.try_acquire(1).unwrap();
            assert!(s.try_acquire(1).is_err());
            assert!(s.acquire_timeout(2, Duration::ZERO).is_err());
            drop((p, q));
        }
    });
    // Two threads taking the whole semaphore in turn: each often waits. The first round grows
    // the queue to its largest size; the second must allocate nothing.
    let contend = || {
        std::thread::scope(|sc| {
            for _ in 0..2 {
                sc.spawn(|| {
                    for _ in 0..2_000 {
                        drop(s.acquire(2).unwrap());
                    }
                });
            }
        })
    };
    contend();
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
    contend();
    let after = heap();
    assert!(
        after.total_blocks - before.total_blocks <= threads_only,
        "contended Semaphore allocated beyond its two threads' own start-up"
    );
}

fn owned_semaphore_permits_allocate_nothing() {
    let s = Arc::new(Semaphore::new(2));
    // As above, the first wait ever grows the waiter queue.
    let held = s.acquire_owned(2).unwrap();
    assert!(s.acquire_timeout_owned(1, Duration::from_nanos(1)).is_err());
    drop(held);
    none("Semaphore owned permits", || {
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
    none("Semaphore forget", || {
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
    none("KeyedLimiter on present keys", || {
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
