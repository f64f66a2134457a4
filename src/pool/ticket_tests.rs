//! Tests of tickets (`ticket.rs`): the budget unit an object from the shared store keeps while
//! it is lent out, redeemed on return, revoked when the pool needs the room. Sized for Miri.

use super::ticket::PAUSE;
use super::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A pool of `capacity` 4 KiB buffers, all in the shared store.
fn prefilled(capacity: usize) -> Arc<BufferPool> {
    let pool = Arc::new(BufferPool::builder().capacity(capacity).build());
    assert_eq!(pool.prefill(capacity), capacity);
    pool
}

#[test]
fn a_buffer_handed_to_another_thread_keeps_its_unit_until_it_is_back() {
    let pool = prefilled(4);
    let buf = pool.get_owned();
    assert!(pool.tickets_out(), "taken from the store with its unit");
    assert_eq!(pool.budget_used(), (4, 4 * 4096), "no unit given back");
    let s = pool.stats();
    assert_eq!(
        (s.retained, s.retained_bytes),
        (3, 3 * 4096),
        "the lent buffer is not retained"
    );
    std::thread::spawn(move || drop(buf)).join().unwrap();
    assert!(!pool.tickets_out(), "redeemed by the consumer");
    assert_eq!(pool.budget_used(), (4, 4 * 4096));
    assert_eq!(pool.stats().retained, 4);
    assert_eq!(pool.stats().discarded, 0);
}

#[test]
fn a_ticket_given_back_on_the_getting_thread_becomes_its_cache_reservation() {
    let pool = prefilled(1);
    drop(pool.get());
    assert!(!pool.tickets_out());
    assert_eq!(
        pool.shared.len(),
        0,
        "kept in this thread's cache, not the store"
    );
    assert_eq!(pool.budget_used(), (1, 4096));
    drop(pool.get());
    let s = pool.stats();
    assert_eq!((s.hits, s.misses, s.retained), (2, 0, 1), "{s:?}");
    assert_eq!(pool.budget_used(), (1, 4096), "the same unit, not a second");
}

#[test]
fn into_inner_gives_the_ticket_back() {
    let pool = prefilled(1);
    let kept = PooledOwned::into_inner(pool.get_owned());
    assert!(!pool.tickets_out());
    assert_eq!(pool.budget_used(), (0, 0));
    assert!(pool.try_put(kept).is_ok(), "the room is free again");
}

#[test]
#[cfg_attr(miri, ignore = "leaks the forgotten buffer on purpose")]
fn a_forgotten_ticket_never_makes_a_put_refuse_a_value() {
    let pool = prefilled(1);
    std::mem::forget(pool.get());
    assert!(pool.tickets_out());
    assert!(
        pool.try_put(Vec::with_capacity(4096)).is_ok(),
        "the put revoked it"
    );
    assert!(!pool.tickets_out());
    assert_eq!(pool.budget_used(), (1, 4096));
    assert_eq!(pool.stats().retained, 1);
}

#[test]
fn a_revoked_ticket_comes_back_like_any_object() {
    let pool = prefilled(2);
    let (a, b) = (pool.get_owned(), pool.get_owned());
    pool.clear(); // revokes both
    assert!(!pool.tickets_out());
    assert_eq!(pool.budget_used(), (0, 0));
    assert!(pool.try_put(Vec::with_capacity(4096)).is_ok());
    drop((a, b)); // one fits, one does not
    let s = pool.stats();
    assert_eq!((s.retained, s.discarded), (2, 1), "{s:?}");
    assert_eq!(pool.budget_used(), (2, 2 * 4096));
}

#[test]
fn a_buffer_that_grew_is_redeemed_at_its_new_weight() {
    let pool = Arc::new(
        BufferPool::builder()
            .capacity(1)
            .buffer_capacity(1024)
            .max_buffer_capacity(8192)
            .build(),
    );
    pool.prefill(1);
    let mut buf = pool.get_owned();
    buf.reserve_exact(4096);
    let grown = buf.capacity();
    std::thread::spawn(move || drop(buf)).join().unwrap();
    assert!(!pool.tickets_out());
    assert_eq!(pool.budget_used(), (1, grown));
    assert_eq!(pool.stats().retained_bytes, grown);
}

#[test]
fn a_ticket_of_a_buffer_the_pool_refuses_is_given_back() {
    let pool = Arc::new(
        BufferPool::builder()
            .capacity(1)
            .buffer_capacity(1024)
            .max_buffer_capacity(2048)
            .build(),
    );
    pool.prefill(1);
    let mut buf = pool.get_owned();
    buf.reserve_exact(1 << 20); // too heavy to keep
    std::thread::spawn(move || drop(buf)).join().unwrap();
    assert!(!pool.tickets_out());
    assert_eq!(pool.budget_used(), (0, 0));
    assert_eq!(pool.stats().discarded, 1);
}

#[test]
fn a_reset_that_panics_gives_the_ticket_back() {
    let pool = Pool::builder()
        .capacity(1)
        .reset(|v: &mut Vec<u8>| {
            assert!(v.is_empty(), "dirty");
        })
        .build(Vec::new);
    pool.put(vec![1]);
    assert!(catch_unwind(AssertUnwindSafe(|| drop(pool.get()))).is_err());
    assert!(!pool.tickets_out());
    assert_eq!(pool.budget_used(), (0, 0));
    assert_eq!(pool.stats().discarded, 1);
}

/// A pool whose only ticket a put revoked for want of room (which moves the pause epoch).
fn revoked_for_room() -> Arc<BufferPool> {
    let pool = prefilled(1);
    let lent = pool.get();
    assert!(pool.tickets_out());
    assert!(
        pool.try_put(Vec::with_capacity(4096)).is_ok(),
        "revoked for room"
    );
    drop(lent); // its ticket was revoked and the pool is full: dropped
    assert_eq!(pool.stats().discarded, 1);
    pool
}

/// On the calling thread: its gets from the store issue no ticket for `PAUSE` pops, then do.
fn pauses_then_issues(pool: &BufferPool) {
    for _ in 0..PAUSE {
        pool.trim(1); // to the store (no ticket out, so no revocation)
        let buf = pool.get();
        assert!(!pool.tickets_out(), "paused");
        drop(buf);
    }
    pool.trim(1);
    let _buf = pool.get();
    assert!(pool.tickets_out(), "issuing again");
}

#[test]
#[cfg_attr(miri, ignore = "a thousand reclaims")]
fn after_a_put_revokes_tickets_for_room_a_thread_pauses_before_it_issues_again() {
    pauses_then_issues(&revoked_for_room());
}

/// The pause is the cache's: a thread whose cache had not been used when the epoch moved
/// pauses on its first get as well (`ticket.rs`).
#[test]
#[cfg_attr(miri, ignore = "a thousand reclaims")]
fn a_thread_that_starts_after_a_revocation_for_room_pauses_too() {
    let pool = revoked_for_room();
    std::thread::scope(|s| s.spawn(|| pauses_then_issues(&pool)).join().unwrap());
}

#[test]
fn clear_revokes_tickets_without_pausing_them() {
    let pool = prefilled(1);
    let lent = pool.get();
    pool.clear(); // revokes the ticket: the pool is not short of room, so no pause
    drop(lent);
    pool.trim(1); // to the store
    let _buf = pool.get();
    assert!(pool.tickets_out(), "issued at once");
}

#[test]
#[cfg(target_arch = "x86_64")]
fn an_object_of_up_to_112_bytes_and_its_ticket_take_one_line() {
    use std::mem::size_of;
    assert_eq!(size_of::<CachePadded<Held<Vec<u8>>>>(), 128);
    assert_eq!(size_of::<CachePadded<Held<[u8; 112]>>>(), 128);
    assert_eq!(size_of::<CachePadded<Held<[u8; 113]>>>(), 256);
}
