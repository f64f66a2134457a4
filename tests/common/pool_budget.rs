//! The budget check the pool's thread tests end with: after a `clear`, a pool of `Vec<u8>` (a
//! `BufferPool`, or a closure-built pool that keeps empty vectors) of `capacity` takes exactly
//! `capacity` buffers and refuses the next. A unit of the budget lost (a lent buffer's ticket
//! neither redeemed nor revoked) refuses one too early; a unit given back twice keeps one too
//! many.

use thrifty::pool::{Hooks, Pool};

pub fn assert_budget_is_exact<H: Hooks<Vec<u8>>>(pool: &Pool<Vec<u8>, H>, capacity: usize) {
    pool.clear();
    assert_takes_exactly(pool, capacity);
}

/// `pool` keeps exactly `n` more empty 4 KiB buffers and refuses the next.
pub fn assert_takes_exactly<H: Hooks<Vec<u8>>>(pool: &Pool<Vec<u8>, H>, n: usize) {
    for _ in 0..n {
        assert!(
            pool.try_put(Vec::with_capacity(4096)).is_ok(),
            "a unit was lost"
        );
    }
    assert!(
        pool.try_put(Vec::with_capacity(4096)).is_err(),
        "a unit was given back twice"
    );
}
