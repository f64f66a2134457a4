//! dhat: allocation claims of `thrifty::limit`'s docs that `tests/alloc_limit.rs` does not
//! assert. `ManualClock`: "Allocates one shared word (an `Arc`) when made; reading and
//! advancing it are one atomic each" (clones share the word); the error types' "making it
//! allocates nothing", for the refusals a limiter hands out.
//!
//! dhat's profiler is global, so one `#[test]` runs every case in turn.

use std::time::Duration;
use thrifty::limit::{Clock, InFlight, ManualClock, RateError, Semaphore, TokenBucket};

mod common;
use common::{allocated, allocates_nothing, park_once, warm_up_threads};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    // The harness's and std's one-time thread allocations, before anything is counted.
    warm_up_threads(park_once);
    a_manual_clock_is_one_shared_word();
    refusals_allocate_nothing();
}

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
