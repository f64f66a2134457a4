//! Unit tests of the semaphore: arrival order, refusals, timeouts and close. The concurrent
//! shapes are in `tests/stress_limit.rs` and `tests/loom_limit.rs`.
#![cfg(not(loom))]

use crate::limit::{
    AcquireError, AcquireTimeoutError, InsufficientCapacity, Semaphore, TryAcquireError,
};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

#[test]
fn semaphore_grants_in_arrival_order_and_refuses_barging() {
    let s = Semaphore::new(4);
    let held = s.acquire(3).unwrap();
    std::thread::scope(|scope| {
        let big = scope.spawn(|| s.acquire(4).map(|p| p.weight()));
        while s.waiting() == 0 {
            crate::sync::yield_now();
        }
        // One permit is free, but a queued request is ahead: a small one may not barge in.
        assert_eq!(s.try_acquire(1).unwrap_err(), TryAcquireError::NoPermits);
        drop(held);
        assert_eq!(big.join().unwrap(), Ok(4));
    });
    assert_eq!(s.available(), 4);
}

#[test]
fn semaphore_refuses_what_it_could_never_grant() {
    let s = Semaphore::new(2);
    let cap = InsufficientCapacity {
        requested: 3,
        capacity: 2,
    };
    assert_eq!(
        s.acquire(3).unwrap_err(),
        AcquireError::InsufficientCapacity(cap)
    );
    assert_eq!(
        s.acquire_timeout(3, MS).unwrap_err(),
        AcquireTimeoutError::InsufficientCapacity(cap)
    );
    assert!(Semaphore::try_new(0).is_err());
    assert!(std::panic::catch_unwind(|| Semaphore::new(0)).is_err());
}

#[test]
fn a_timed_out_waiter_leaves_the_line_for_those_behind() {
    let s = Semaphore::new(2);
    let one = s.acquire(1).unwrap();
    assert_eq!(
        s.acquire_timeout(2, MS * 5).unwrap_err(),
        AcquireTimeoutError::Timeout
    );
    assert_eq!(s.waiting(), 0);
    assert_eq!(s.try_acquire(1).unwrap().weight(), 1);
    drop(one);
}

#[test]
fn close_wakes_waiters_with_an_error_and_keeps_held_permits_valid() {
    let s = Semaphore::new(1);
    let held = s.acquire(1).unwrap();
    std::thread::scope(|scope| {
        let waiters: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| s.acquire(1).map(|_| ())))
            .collect();
        while s.waiting() < 3 {
            crate::sync::yield_now();
        }
        s.close();
        for w in waiters {
            assert_eq!(w.join().unwrap(), Err(AcquireError::Closed));
        }
    });
    assert_eq!(s.try_acquire(1).unwrap_err(), TryAcquireError::Closed);
    drop(held);
    assert_eq!(s.available(), 1);
    assert!(s.is_closed());
}
