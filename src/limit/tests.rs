//! Unit tests of the limit module (the semaphore's are in `semaphore/tests.rs`); the concurrent
//! shapes are in `tests/stress_limit.rs` and `tests/loom_limit.rs`.
#![cfg(not(loom))]
// The module's only `unsafe` is the TSC read in `tsc.rs`, compiled out under Miri; these tests
// run under Miri too (the miri step in `.ci/run`).

use super::*;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

fn manual(rate: u64, burst: u32) -> (TokenBucket<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    (
        TokenBucket::with_clock(rate, burst, clock.clone()).unwrap(),
        clock,
    )
}

#[test]
fn a_new_bucket_starts_full_then_refills_at_the_rate() {
    let (b, clock) = manual(1000, 5); // one token per ms
    for _ in 0..5 {
        b.try_acquire(1).unwrap();
    }
    let err = b.try_acquire(1).unwrap_err();
    assert_eq!(err.retry_after(), Some(MS));
    clock.advance(MS / 2);
    // Half a token is not one; and a refusal takes nothing, so a second one says the same.
    assert_eq!(b.try_acquire(1).unwrap_err().retry_after(), Some(MS / 2));
    assert_eq!(b.try_acquire(1).unwrap_err().retry_after(), Some(MS / 2));
    clock.advance(MS / 2);
    b.try_acquire(1).unwrap();
    clock.advance(MS * 100);
    assert_eq!(b.available(), 5, "never more than the burst");
}

#[test]
fn over_the_burst_is_refused_at_once_not_waited_for() {
    let (b, _) = manual(1, 3);
    assert_eq!(
        b.try_acquire(4).unwrap_err(),
        RateError::InsufficientCapacity(InsufficientCapacity {
            requested: 4,
            capacity: 3
        })
    );
    assert!(b.acquire(4).is_err());
    assert_eq!(b.try_acquire(0).unwrap().count(), 0);
}

#[test]
fn refund_is_exact_and_capped_at_the_burst() {
    let (b, clock) = manual(1000, 10);
    let t = b.try_acquire(4).unwrap();
    let _u = b.try_acquire(3).unwrap();
    assert_eq!(b.available(), 3);
    b.refund(t);
    assert_eq!(b.available(), 7);
    // Tokens taken long ago have refilled: a late refund adds nothing past the burst.
    let late = b.try_acquire(2).unwrap();
    clock.advance(MS * 50);
    b.refund(late);
    assert_eq!(b.available(), 10);
}

#[test]
fn acquire_sleeps_until_its_reservation_is_due() {
    let (b, clock) = manual(1000, 2);
    b.acquire(2).unwrap();
    assert_eq!(clock.now(), 0);
    b.acquire(1).unwrap(); // a manual clock "sleeps" by moving to the due time
    assert_eq!(clock.now(), 1_000_000);
    b.acquire(2).unwrap();
    assert_eq!(clock.now(), 3_000_000);
}

#[test]
fn every_supports_rates_under_one_per_second() {
    let clock = ManualClock::new();
    let b = TokenBucket::every_with_clock(Duration::from_secs(60), 1, clock.clone()).unwrap();
    b.try_acquire(1).unwrap();
    assert_eq!(
        b.try_acquire(1).unwrap_err().retry_after(),
        Some(Duration::from_secs(60))
    );
    clock.advance(Duration::from_secs(60));
    b.try_acquire(1).unwrap();
}

#[test]
fn the_monotonic_bucket_admits_its_burst() {
    let b = TokenBucket::new(1, 3).unwrap();
    for _ in 0..3 {
        b.try_acquire(1).unwrap();
    }
    assert!(b.try_acquire(1).is_err());
    assert!(format!("{b:?}").contains("burst: 3"));
}

#[test]
fn in_flight_counts_admitted_and_shed() {
    let gate = InFlight::new(1);
    let p = gate.try_enter().unwrap();
    assert!(gate.try_enter().is_none());
    assert_eq!(gate.in_flight(), 1);
    drop(p);
    assert_eq!(gate.in_flight(), 0);
    assert_eq!((gate.admitted(), gate.shed()), (1, 1));
    assert_eq!(InFlight::try_new(0).unwrap_err(), LimitError::ZeroPermits);
}

#[test]
fn keyed_limits_each_key_and_evicts_only_full_buckets() {
    let clock = ManualClock::new();
    let k: KeyedLimiter<u64, _> = KeyedLimiter::with_clock(1000, 2, clock.clone()).unwrap();
    k.try_acquire(&1, 2).unwrap();
    assert!(k.try_acquire(&1, 1).is_err());
    k.try_acquire(&2, 1).unwrap();
    assert_eq!(k.evict_idle(), 0, "both are refilling");
    clock.advance(MS);
    assert_eq!(k.evict_idle(), 1, "key 2 is full again");
    assert_eq!(k.available(&1), 1);
    assert_eq!(k.available(&2), 2);
    let t = k.try_acquire(&1, 1).unwrap();
    k.refund(&1, t);
    assert_eq!(k.available(&1), 1);
    assert!(k.try_acquire(&1, 3).unwrap_err().is_insufficient_capacity());
}

#[test]
fn a_keyed_limiter_takes_another_hasher_before_its_first_request_only() {
    let clock = ManualClock::new();
    let sip = KeyedLimiter::<String, _>::with_clock(1000, 2, clock.clone())
        .unwrap()
        .with_hasher(std::hash::RandomState::new());
    sip.try_acquire("a", 2).unwrap();
    assert!(
        sip.try_acquire("a", 1).is_err(),
        "the same limit, whatever the hasher"
    );
    assert_eq!(sip.available("b"), 2);
    clock.advance(2 * MS);
    assert_eq!(sip.evict_idle(), 1, "full again after 2 ms");
    let used = KeyedLimiter::<u64, _>::with_clock(1, 1, clock).unwrap();
    used.try_acquire(&7, 1).unwrap();
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        used.with_hasher(std::hash::RandomState::new())
    }));
    let message = *refused.unwrap_err().downcast::<&str>().unwrap();
    assert!(
        message.contains("with_hasher` on a limiter that holds keys"),
        "{message}"
    );
}

#[test]
fn errors_read_well() {
    assert_eq!(
        LimitError::ZeroRate.to_string(),
        "a rate of 0 tokens per second admits nothing"
    );
    assert_eq!(AcquireError::Closed.to_string(), "semaphore closed");
    assert!(AcquireTimeoutError::Closed.is_closed());
    let e = RateLimited { retry_after: MS };
    assert_eq!(e.to_string(), "rate limited: retry after 1ms");
}

#[test]
fn send_and_sync_as_sound() {
    fn both<T: Send + Sync>() {}
    both::<TokenBucket>();
    both::<TokenBucket<ManualClock>>();
    both::<Semaphore>();
    both::<InFlight>();
    both::<KeyedLimiter<String>>();
    both::<KeyedLimiter<String, MonotonicClock, std::hash::RandomState>>();
    both::<Permit<'static>>();
    both::<InFlightPermit<'static>>();
    both::<OwnedInFlightPermit>();
    both::<Tokens>();
}

#[test]
fn limiters_without_user_state_are_unwind_safe() {
    use std::panic::{RefUnwindSafe, UnwindSafe};
    fn both<T: UnwindSafe + RefUnwindSafe>() {}
    both::<TokenBucket>();
    both::<Semaphore>();
    both::<InFlight>();
    both::<Permit<'static>>();
    both::<OwnedPermit>();
}

#[test]
fn a_keyed_limiter_is_unwind_safe_where_its_keys_clock_and_hasher_are() {
    use std::panic::{RefUnwindSafe, UnwindSafe};
    fn both<T: UnwindSafe + RefUnwindSafe>() {}
    both::<KeyedLimiter<String>>();
    both::<KeyedLimiter<u64, ManualClock>>();
    both::<KeyedLimiter<Box<str>, MonotonicClock, std::hash::RandomState>>();
    // Usable inside `catch_unwind` without `AssertUnwindSafe`, and whole after a panic there.
    // A clock that stands still: no token comes back while the panic unwinds, however long.
    let limiter = KeyedLimiter::<u32, _>::with_clock(1, 1, ManualClock::new()).unwrap();
    let caught = std::panic::catch_unwind(|| {
        assert!(limiter.try_acquire(&7, 1).is_ok());
        panic!("the handler fails after taking its token");
    });
    assert!(caught.is_err());
    assert!(
        limiter.try_acquire(&7, 1).is_err(),
        "the token taken before the panic stays taken"
    );
    assert!(limiter.try_acquire(&8, 1).is_ok());
}

/// A clock whose `sleep_until` returns at once without moving time: every `acquire` on it
/// reserves on top of the last, as callers asleep at once would.
struct Frozen(u64);

impl Clock for Frozen {
    fn now(&self) -> u64 {
        self.0
    }
    fn sleep_until(&self, _deadline: u64) {}
}

#[test]
fn reservations_stacked_past_the_clock_range_saturate() {
    // Each reservation is a quarter of the `u64` range: the fifth would pass it.
    let b =
        TokenBucket::every_with_clock(Duration::from_nanos(u64::MAX / 4), 1, Frozen(0)).unwrap();
    for _ in 0..8 {
        b.acquire(1).unwrap();
    }
    assert_eq!(b.available(), 0);
    assert!(
        b.try_acquire(1).is_err(),
        "a saturated bucket admits nothing"
    );
}

#[test]
fn a_clock_at_the_end_of_its_range_does_not_overflow() {
    let (b, clock) = manual(1000, 5);
    clock.set(u64::MAX);
    assert_eq!(
        clock.now(),
        <ManualClock as Clock>::MAX_NANOS,
        "a manual clock stops there"
    );
    clock.advance(Duration::MAX);
    assert_eq!(clock.now(), <ManualClock as Clock>::MAX_NANOS);
    b.try_acquire(5).unwrap();
    assert!(b.try_acquire(1).is_err());
    b.acquire(0).unwrap();
}

/// A clock stopped at the end of its range, with the default (sleeping) `sleep_until`; it
/// panics if read more than 1 000 times, as a sleep that never ends would.
#[derive(Default)]
struct StoppedAtTheEnd(crate::sync::AtomicU64);

impl Clock for StoppedAtTheEnd {
    fn now(&self) -> u64 {
        // Relaxed: the test's one thread.
        let reads = self.0.fetch_add(1, crate::sync::Ordering::Relaxed);
        assert!(reads < 1_000, "a sleep past the clock's range never ends");
        Self::MAX_NANOS
    }
}

#[test]
fn an_acquire_whose_turn_is_past_the_clock_range_ends_at_once() {
    let b = TokenBucket::every_with_clock(Duration::from_nanos(1), 1, StoppedAtTheEnd::default())
        .unwrap();
    b.acquire(1).unwrap(); // the burst
    b.acquire(1).unwrap(); // its turn is 1 ns past `MAX_NANOS`: the sleep ends at once
    b.acquire(1).unwrap();
}

#[test]
fn a_refund_of_another_buckets_receipt_never_overflows_or_overfills() {
    // Receipts of a million tokens; at about 3 × 10^18 ns per token they are worth far more
    // than 2^64 ns to the buckets they are refunded into.
    let (big, clock) = manual(1_000_000_000, 1_000_000);
    let first = big.try_acquire(1_000_000).unwrap();
    clock.advance(Duration::from_secs(1));
    let second = big.try_acquire(1_000_000).unwrap();
    let per_token = Duration::from_nanos(3_000_000_000_000_000_000);
    let slow = TokenBucket::every_with_clock(per_token, 1, ManualClock::new()).unwrap();
    slow.try_acquire(1).unwrap();
    slow.refund(first);
    assert_eq!(slow.available(), 1, "filled to its burst, not past it");
    let keyed = KeyedLimiter::with_clock(1, 1, ManualClock::new()).unwrap();
    keyed.try_acquire("k", 1).unwrap();
    assert_eq!(keyed.available("k"), 0);
    keyed.refund("k", second);
    assert_eq!(keyed.available("k"), 1);
}

#[test]
#[cfg_attr(miri, ignore)] // a race that needs many rounds to land
fn inserts_racing_evictions_keep_the_entry_count() {
    // The evicting thread moves the clock a whole interval before each eviction, so a key is
    // idle as soon as it is in: an eviction racing its insert may remove it at once. The count
    // must never fall below the map's length, or the automatic sweeps would stop.
    let clock = ManualClock::new();
    let keyed = KeyedLimiter::with_clock(1, 1, clock.clone()).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..50_000u32 {
                let _ = keyed.try_acquire(&i, 1);
            }
        });
        s.spawn(|| {
            for _ in 0..2_000 {
                clock.advance(Duration::from_secs(1));
                keyed.evict_idle();
            }
        });
    });
    assert_eq!(keyed.entry_count(), keyed.len());
}

/// A frozen clock that counts the sleeps asked of it.
#[derive(Default)]
struct CountsSleeps(crate::sync::AtomicU64);

impl Clock for CountsSleeps {
    fn now(&self) -> u64 {
        0
    }
    fn sleep_until(&self, _deadline: u64) {
        // Relaxed: read by the same thread.
        self.0.fetch_add(1, crate::sync::Ordering::Relaxed);
    }
}

#[test]
fn zero_tokens_pass_at_once_behind_sleeping_reservations() {
    // On a frozen clock `acquire` reserves and returns at once, as a caller asleep would: the
    // second reservation runs a whole interval past `now + tau`.
    let b = TokenBucket::with_clock(1, 1, CountsSleeps::default()).unwrap();
    b.acquire(1).unwrap();
    b.acquire(1).unwrap();
    let wait = b.try_acquire(1).unwrap_err().retry_after();
    assert_eq!(
        b.try_acquire(0).unwrap().count(),
        0,
        "n == 0 always succeeds"
    );
    let slept = b.clock().0.load(crate::sync::Ordering::Relaxed);
    assert_eq!(b.acquire(0).unwrap().count(), 0);
    assert_eq!(
        b.clock().0.load(crate::sync::Ordering::Relaxed),
        slept,
        "acquire(0) waits behind no reservation"
    );
    assert_eq!(
        b.try_acquire(1).unwrap_err().retry_after(),
        wait,
        "and takes no turn"
    );
}

/// Set to make key 7's next drop panic (see [`Touchy`]).
static DROP_PANICS: crate::sync::AtomicBool = crate::sync::AtomicBool::new(false);

/// A key whose drop panics once when [`DROP_PANICS`] is set and the key is 7.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Touchy(u32);

impl Drop for Touchy {
    fn drop(&mut self) {
        // Relaxed: set and read by the test's one thread.
        if self.0 == 7 && DROP_PANICS.swap(false, crate::sync::Ordering::Relaxed) {
            panic!("key 7's drop panics");
        }
    }
}

#[test]
fn a_key_drop_that_panics_in_a_sweep_stops_neither_the_sweeps_nor_the_count() {
    let clock = ManualClock::new();
    let keyed = KeyedLimiter::with_clock(1000, 1, clock.clone()).unwrap();
    for i in 0..1023 {
        keyed.try_acquire(&Touchy(i), 1).unwrap();
    }
    clock.advance(MS); // every bucket is full again: the 1 024th insert's sweep removes them
    DROP_PANICS.store(true, crate::sync::Ordering::Relaxed);
    let swept = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        keyed.try_acquire(&Touchy(5000), 1)
    }));
    assert!(swept.is_err(), "key 7's drop panicked in the sweep");
    assert_eq!(
        keyed.entry_count(),
        keyed.len(),
        "removed keys left the count"
    );
    // Keys that go idle 1 ms after their one request: later sweeps keep the map near 1 024.
    for i in 10_000..13_000 {
        keyed.try_acquire(&Touchy(i), 1).unwrap();
        clock.advance(MS);
    }
    assert!(
        keyed.len() < 2048,
        "sweeps stopped: {} keys kept",
        keyed.len()
    );
    assert_eq!(keyed.entry_count(), keyed.len());
}

/// A clock whose time moves only when the test sets it and whose `sleep_until` returns at
/// once, keeping the deadline: each `acquire` on it reserves as a caller going to sleep would,
/// and the test reads the turn it was given.
#[derive(Default)]
struct Sleepers {
    now: crate::sync::AtomicU64,
    /// The deadline of the last `sleep_until`.
    turn: crate::sync::AtomicU64,
}

impl Sleepers {
    fn set(&self, now: u64) {
        // Relaxed: the test's one thread.
        self.now.store(now, crate::sync::Ordering::Relaxed);
    }
}

impl Clock for Sleepers {
    fn now(&self) -> u64 {
        // Relaxed: the test's one thread.
        self.now.load(crate::sync::Ordering::Relaxed)
    }
    fn sleep_until(&self, deadline: u64) {
        // Relaxed: the test's one thread.
        self.turn.store(deadline, crate::sync::Ordering::Relaxed);
    }
}

/// The time an `acquire` on a [`Sleepers`] clock passes: its turn, or now if it did not sleep.
fn acquire_turn(b: &TokenBucket<Sleepers>, n: u32) -> u64 {
    // Relaxed: the test's one thread.
    b.clock().turn.store(0, crate::sync::Ordering::Relaxed);
    b.acquire(n).unwrap();
    b.clock()
        .turn
        .load(crate::sync::Ordering::Relaxed)
        .max(b.clock().now())
}

#[test]
fn a_refund_while_callers_sleep_on_reservations_never_shares_their_turns() {
    const T: u64 = 100_000_000; // 10 per second, burst 1
    let b = TokenBucket::with_clock(10, 1, Sleepers::default()).unwrap();
    let a = b.try_acquire(1).unwrap(); // the token due now
    assert_eq!(acquire_turn(&b, 1), T); // asleep until 100 ms
    assert_eq!(acquire_turn(&b, 1), 2 * T); // asleep until 200 ms
    b.refund(a); // cancelled before use, while two callers sleep on their reservations
    assert_eq!(
        acquire_turn(&b, 1),
        3 * T,
        "a refund gave a sleeper's turn to a new caller"
    );
    assert!(b.try_acquire(1).is_err());

    // Once no reserved turn lies ahead, refunds give tokens back again.
    b.clock().set(3 * T);
    let c = b.try_acquire(1).unwrap_err();
    assert_eq!(c.retry_after(), Some(Duration::from_nanos(T)));
    b.clock().set(4 * T);
    let d = b.try_acquire(1).unwrap();
    assert_eq!(b.available(), 0);
    b.refund(d);
    assert_eq!(b.available(), 1);
}

#[test]
fn a_refund_with_no_reservation_ahead_still_returns_its_tokens() {
    // Burst 3: a sleeper's turn comes at 100 ms; from then on nobody is queued.
    const T: u64 = 100_000_000;
    let b = TokenBucket::with_clock(10, 3, Sleepers::default()).unwrap();
    let first = b.try_acquire(3).unwrap();
    assert_eq!(acquire_turn(&b, 1), T);
    b.refund(first); // the sleeper's turn is ahead: nothing comes back
    b.clock().set(T);
    assert_eq!(b.available(), 0);
    let second = b.try_acquire(1).unwrap_err();
    assert_eq!(second.retry_after(), Some(Duration::from_nanos(T)));
    b.clock().set(2 * T);
    let t = b.try_acquire(1).unwrap();
    assert_eq!(b.available(), 0);
    b.refund(t);
    assert_eq!(b.available(), 1);
}

#[test]
fn zero_token_probes_of_new_keys_insert_nothing() {
    let clock = ManualClock::new();
    let keyed: KeyedLimiter<u64, _> = KeyedLimiter::with_clock(1, 1, clock).unwrap();
    for key in 0..1000 {
        assert_eq!(keyed.try_acquire(&key, 0).unwrap().count(), 0);
    }
    assert_eq!(keyed.len(), 0, "a probe inserted its key");
    assert_eq!(keyed.entry_count(), 0);
    keyed.try_acquire(&7, 1).unwrap();
    assert_eq!(
        keyed.try_acquire(&7, 0).unwrap().count(),
        0,
        "even when empty"
    );
    assert_eq!(keyed.available(&7), 0);
    assert_eq!(keyed.len(), 1);
}

#[test]
#[cfg_attr(miri, ignore)] // 20 000 inserts
fn a_trickle_of_new_keys_after_a_spike_sweeps_the_idle_spike() {
    // 1 000 per second, burst 1: a key is idle 1 ms after its request.
    let clock = ManualClock::new();
    let keyed: KeyedLimiter<u64, _> = KeyedLimiter::with_clock(1000, 1, clock.clone()).unwrap();
    for key in 0..20_000 {
        keyed.try_acquire(&key, 1).unwrap(); // a spike: every key is active
    }
    assert_eq!(keyed.len(), 20_000);
    clock.advance(Duration::from_secs(1)); // the spike's keys are all idle
    let mut most = 0;
    for key in 0..2_000 {
        // One new key per millisecond: at most two keys are active at any time.
        keyed.try_acquire(&(1_000_000 + key), 1).unwrap();
        clock.advance(MS);
        if key >= 1_024 {
            most = most.max(keyed.len());
        }
    }
    assert!(
        most <= 1_025,
        "{most} keys held, 1 024 new keys after the spike went idle"
    );
    assert_eq!(keyed.entry_count(), keyed.len());
}

/// A flood of keys that take one token each under a large burst (a window of 100 s): they are
/// full again a second later, and the next new keys sweep them out then, not a window later.
#[test]
#[cfg_attr(miri, ignore)] // 22 000 inserts
fn a_flood_of_one_token_keys_goes_once_they_refill_not_a_window_later() {
    let clock = ManualClock::new();
    let keyed: KeyedLimiter<u64, _> = KeyedLimiter::with_clock(1, 100, clock.clone()).unwrap();
    for key in 0..20_000 {
        keyed.try_acquire(&key, 1).unwrap(); // each refills in a second
    }
    clock.advance(Duration::from_secs(2));
    for key in 0..2_000 {
        keyed.try_acquire(&(1_000_000 + key), 1).unwrap();
    }
    assert_eq!(
        keyed.len(),
        2_000,
        "the flood's keys, full for a second, must go with the first new keys"
    );
    assert_eq!(keyed.entry_count(), keyed.len());
}

/// While another thread's sweep runs (held here), inserts past twice the sweep threshold clear
/// the full keys out of the shard they insert into: the idle keys of a flood go, shard by shard,
/// until the map is back at that cap, and no key that has not refilled goes. Each insert clears
/// one shard, so how many inserts that takes grows with the shard count (64 per CPU, up to
/// 1 024): the new keys refill as the test goes, or with 1 024 shards they alone would keep the
/// map over the cap.
#[test]
#[cfg_attr(miri, ignore)] // thousands of inserts
fn inserts_past_twice_the_threshold_clear_their_shard_while_a_sweep_runs() {
    let clock = ManualClock::new();
    let keyed: KeyedLimiter<u64, _> = KeyedLimiter::with_clock(10, 1, clock.clone()).unwrap();
    keyed.hold_sweep(true);
    for key in 0..4_000 {
        keyed.try_acquire(&key, 1).unwrap(); // none full yet: nothing to clear
    }
    assert_eq!(keyed.len(), 4_000);
    clock.advance(Duration::from_millis(200)); // every key so far is full

    // A new key a simulated millisecond: each is full 100 ms after its insert.
    let mut inserted = 0;
    while keyed.len() > 2_048 {
        assert!(
            inserted < 20_000,
            "{} keys left after {inserted} inserts: the held sweep's cap is 2 048",
            keyed.len()
        );
        keyed.try_acquire(&(1_000_000 + inserted), 1).unwrap();
        inserted += 1;
        clock.advance(Duration::from_millis(1));
    }
    assert!(
        (inserted.saturating_sub(99)..inserted).all(|key| keyed.available(&(1_000_000 + key)) == 0),
        "a key not yet refilled went"
    );
    assert_eq!(keyed.entry_count(), keyed.len());
    let left = keyed.len();
    keyed.hold_sweep(false);
    clock.advance(Duration::from_millis(200));
    assert_eq!(keyed.evict_idle(), left);
    assert!(keyed.is_empty());
}
