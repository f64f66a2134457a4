//! [`TokenBucket`]: a lock-free rate limiter, GCRA in one `AtomicU64` (see `gcra.rs`).

use super::clock::{Clock, MonotonicClock};
use super::gcra::Rate;
use super::{InsufficientCapacity, LimitError, RateError};
use crate::sync::{AtomicU64, CachePadded, Ordering};
use std::fmt;
use std::time::Duration;

/// A shared, lock-free token bucket: at most `burst` tokens at once, refilled at `rate` per
/// second.
///
/// A new bucket starts **full**: `burst` tokens may pass at once, then `rate` per second. Over
/// any span from the first request, the tokens that pass, less those
/// [refunded](TokenBucket::refund) in it, number at most `burst + rate × elapsed` (proptest:
/// `tests/model_limit.rs`), so there is no start-up overshoot beyond the burst itself; pick a
/// burst of 1 for an evenly spaced rate.
///
/// # When to use
/// Cap the rate of something every thread does (calls to a downstream, log lines, retries): one
/// bucket, shared by reference or in an `Arc`, never one per handler (fifty buckets admit fifty
/// times the rate). For one bucket per client, use [`KeyedLimiter`](super::KeyedLimiter).
///
/// # When not to use
/// To cap how much work runs *at once*, use [`Semaphore`](super::Semaphore) or
/// [`InFlight`](super::InFlight): a rate limit does not bound concurrency when calls are slow.
///
/// # Examples
/// ```
/// use thrifty::limit::TokenBucket;
///
/// let bucket = TokenBucket::new(1, 10).unwrap(); // 1 per second, bursts of up to 10
/// for _ in 0..10 {
///     assert!(bucket.try_acquire(1).is_ok()); // a new bucket starts full
/// }
/// let err = bucket.try_acquire(1).unwrap_err();
/// assert!(err.retry_after().unwrap() <= std::time::Duration::from_secs(1));
/// assert!(bucket.try_acquire(11).unwrap_err().is_insufficient_capacity()); // never
/// ```
///
/// # Allocation
/// None: the bucket is one padded atomic word, the rate and the clock; `try_acquire`, `acquire`
/// and `refund` never allocate (`tests/alloc_limit.rs`). The process's first [`MonotonicClock`]
/// (made by the first `new` or `every`) reads one `/sys` file into a short-lived buffer, and, on
/// the TSC, sleeps 1 ms to calibrate it: see [`MonotonicClock`].
///
/// # Cost
/// `try_acquire` reads the clock and does one compare-and-swap on success (a refusal does no
/// write). Under contention the CAS retries. `cargo bench --bench limit -- try_acquire`
/// compares it with `governor` and a `Mutex`; the clock read is a large part of it (about 40%
/// on the TSC, over two thirds on std's `Instant`: see [`Clock`]'s cost).
pub struct TokenBucket<C: Clock = MonotonicClock> {
    /// The theoretical arrival time in nanoseconds of `clock` (see `gcra.rs` for the state
    /// table): the instant the bucket will be full again. Padded: it is the one contended word.
    tat: CachePadded<AtomicU64>,
    rate: Rate,
    clock: C,
}

/// Tokens taken from a [`TokenBucket`] or a [`KeyedLimiter`](super::KeyedLimiter): the receipt
/// that [`refund`](TokenBucket::refund) takes back.
///
/// It cannot be made or copied outside this crate, so a refund can never return more than a
/// request took; dropping it keeps the tokens spent. A plain count (one `u32`). Keep it while
/// the work it paid for may still be cancelled, to refund; otherwise drop it.
///
/// # Examples
/// ```
/// use thrifty::limit::{ManualClock, TokenBucket};
///
/// let bucket = TokenBucket::with_clock(10, 5, ManualClock::new()).unwrap();
/// let tokens = bucket.try_acquire(2).unwrap();
/// assert_eq!(tokens.count(), 2);
/// drop(tokens); // still spent
/// assert_eq!(bucket.available(), 3);
/// ```
///
/// # Allocation and cost
/// None: a `u32` on the stack; dropping it does nothing.
#[derive(Debug, PartialEq, Eq)]
pub struct Tokens {
    pub(crate) n: u32,
}

impl Tokens {
    /// How many tokens this receipt holds.
    pub fn count(&self) -> u32 {
        self.n
    }
}

impl TokenBucket<MonotonicClock> {
    /// A bucket of `burst` tokens refilled at `rate` tokens per second, on the monotonic clock
    /// (the process's first [`MonotonicClock::new`] may sleep 1 ms to calibrate the TSC).
    ///
    /// The refill interval is `10^9 / rate` whole nanoseconds, rounded up, so the effective rate
    /// is `10^9 / ceil(10^9 / rate)`: exact when `rate` divides 10^9, within 1% of `rate` up to
    /// 10^7 per second, and as little as half of it above 5 × 10^8 (999 999 999 per second
    /// runs at 500 000 000: a 2 ns interval). [`interval`](TokenBucket::interval) tells what
    /// a bucket got. For a precise rate that high, let each token stand for a batch of `k`
    /// requests in a bucket of `rate / k` per second.
    ///
    /// # Errors
    /// [`LimitError::ZeroRate`], [`LimitError::ZeroBurst`], or [`LimitError::RateTooHigh`]
    /// for more than one token per nanosecond.
    pub fn new(rate: u64, burst: u32) -> Result<Self, LimitError> {
        Self::with_clock(rate, burst, MonotonicClock::new())
    }

    /// A bucket of `burst` tokens refilled with one token every `interval` (for rates under one
    /// per second: `Duration::from_secs(60)` is one a minute).
    ///
    /// # Errors
    /// [`LimitError::ZeroInterval`], [`LimitError::ZeroBurst`], or
    /// [`LimitError::IntervalTooLong`] if `burst` intervals overflow the nanosecond clock.
    pub fn every(interval: Duration, burst: u32) -> Result<Self, LimitError> {
        Self::every_with_clock(interval, burst, MonotonicClock::new())
    }
}

impl<C: Clock> TokenBucket<C> {
    /// As [`new`](TokenBucket::new), reading time from `clock`.
    ///
    /// # Errors
    /// As [`new`](TokenBucket::new).
    pub fn with_clock(rate: u64, burst: u32, clock: C) -> Result<Self, LimitError> {
        Ok(Self::from_rate(Rate::per_second(rate, burst)?, clock))
    }

    /// As [`every`](TokenBucket::every), reading time from `clock`.
    ///
    /// # Errors
    /// As [`every`](TokenBucket::every).
    pub fn every_with_clock(interval: Duration, burst: u32, clock: C) -> Result<Self, LimitError> {
        Ok(Self::from_rate(Rate::every(interval, burst)?, clock))
    }

    fn from_rate(rate: Rate, clock: C) -> Self {
        // Full at creation: the bucket is full whenever `tat <= now`.
        let tat = clock.now();
        Self {
            tat: CachePadded::new(AtomicU64::new(tat)),
            rate,
            clock,
        }
    }

    /// Takes `n` tokens if they are there now; never blocks.
    ///
    /// `n == 0` always succeeds, even while sleeping [`acquire`](Self::acquire) calls hold
    /// reservations.
    ///
    /// # Errors
    /// [`RateError::Limited`] with the wait after which the same request would pass;
    /// [`RateError::InsufficientCapacity`] if `n > burst`, which no wait can satisfy.
    ///
    /// # Examples
    /// ```
    /// let bucket = thrifty::limit::TokenBucket::new(1, 2).unwrap();
    /// let tokens = bucket.try_acquire(2).unwrap();
    /// assert_eq!(tokens.count(), 2);
    /// assert!(bucket.try_acquire(1).is_err());
    /// ```
    #[inline]
    pub fn try_acquire(&self, n: u32) -> Result<Tokens, RateError> {
        // Nothing to take; `Rate::take` would refuse it while reservations run more than `tau`
        // ahead of `now`.
        if n == 0 {
            return Ok(Tokens { n });
        }
        if n > self.rate.burst {
            return Err(self.rate.too_large(n));
        }
        self.rate.take_in(&self.tat, self.clock.now(), n)
    }

    /// Takes `n` tokens, sleeping (through the clock's [`Clock::sleep_until`]) until they are
    /// there.
    ///
    /// The tokens are reserved at once and the call sleeps exactly until their turn, so callers
    /// are served in the order they call, and `try_acquire` callers see the reservation.
    /// `n == 0` returns at once, without waiting behind the reservations. While a reservation's
    /// turn lies ahead, [`refund`](Self::refund) gives nothing back.
    ///
    /// # Errors
    /// [`InsufficientCapacity`] at once if `n > burst`: no wait could satisfy it.
    ///
    /// # Examples
    /// ```
    /// use thrifty::limit::{ManualClock, TokenBucket};
    /// let clock = ManualClock::new();
    /// let bucket = TokenBucket::with_clock(1000, 1, clock.clone()).unwrap();
    /// bucket.acquire(1).unwrap();
    /// bucket.acquire(1).unwrap(); // a manual clock "sleeps" by moving forward 1 ms
    /// assert_eq!(clock.now(), 1_000_000);
    /// # use thrifty::limit::Clock;
    /// ```
    pub fn acquire(&self, n: u32) -> Result<Tokens, InsufficientCapacity> {
        if n == 0 {
            return Ok(Tokens { n });
        }
        if n > self.rate.burst {
            return Err(InsufficientCapacity {
                requested: n,
                capacity: self.rate.burst,
            });
        }
        let now = self.clock.now();
        let cost = u64::from(n) * self.rate.interval;
        // Relaxed: as in `try_acquire`.
        let mut tat = self.tat.load(Ordering::Relaxed);
        let new = loop {
            // Reserve unconditionally: the arrival time may run ahead of `now + tau`; the
            // reservation is ours once the CAS lands, and passes at `new - tau`. Saturating:
            // every sleeping caller's reservation stacks on the last (`Rate::take`).
            let new = tat.max(now).saturating_add(cost);
            match self
                .tat
                .compare_exchange_weak(tat, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break new,
                Err(seen) => tat = seen,
            }
        };
        let ready = new.saturating_sub(self.rate.tau);
        if ready > now {
            // A turn past the clock's range ends when the clock gets there (`Clock::MAX_NANOS`):
            // a clock that stops there would never reach a later one.
            self.clock.sleep_until(ready.min(C::MAX_NANOS));
        }
        Ok(Tokens { n })
    }

    /// Gives back tokens that were taken and not used: the bucket regains `tokens.count()`
    /// tokens, or fewer if it would otherwise hold more than `burst`, or none while
    /// [`acquire`](Self::acquire) calls sleep on tokens they reserved.
    ///
    /// The rule, on the bucket's arrival time `tat` (the instant it is full again) with `tau =
    /// burst × interval`: a refund at `now` moves `tat` back by `tokens.count() × interval`,
    /// but not below `now`, when `now < tat <= now + tau`, and leaves it as it is otherwise.
    /// `tat` runs past `now + tau` only while `acquire` calls sleep on reservations, the last
    /// until `tat - tau`; each keeps its turn whatever the bucket does, so a token given back
    /// then would let a new request pass too close to one of them, past the burst. Once the
    /// last turn has come, refunds give tokens back again.
    ///
    /// The bucket does not know when the tokens were taken: a refund adds them back (up to the
    /// burst) even if their room has refilled since and other requests have used it, so refund
    /// as soon as the work is cancelled. The bound `burst + rate × elapsed` counts a refund as
    /// tokens returned when it is made: over any span, the tokens that pass, less those
    /// refunded, stay within it (`tests/model_limit.rs`, sleeping callers included).
    ///
    /// The receipt should come from this bucket; one from another bucket still never fills
    /// this one past its burst.
    ///
    /// # Examples
    /// ```
    /// let bucket = thrifty::limit::TokenBucket::new(1, 3).unwrap();
    /// let tokens = bucket.try_acquire(3).unwrap();
    /// assert_eq!(bucket.available(), 0);
    /// bucket.refund(tokens); // the request was cancelled before it used them
    /// assert_eq!(bucket.available(), 3);
    /// ```
    pub fn refund(&self, tokens: Tokens) {
        self.rate.refund_in(&self.tat, self.clock.now(), tokens.n);
    }

    /// Whole tokens available now (a snapshot: other threads may take them first).
    pub fn available(&self) -> u32 {
        // Relaxed: a snapshot for display and tests.
        self.rate
            .available(self.tat.load(Ordering::Relaxed), self.clock.now())
    }

    /// The burst: what a full bucket holds and the most one request may take.
    pub fn burst(&self) -> u32 {
        self.rate.burst
    }

    /// The time between tokens: the interval given to [`every`](TokenBucket::every), or
    /// `10^9 / rate` nanoseconds, rounded up, for a per-second rate.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.rate.interval)
    }

    /// The clock this bucket reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }
}

impl<C: Clock> fmt::Debug for TokenBucket<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBucket")
            .field("burst", &self.rate.burst)
            .field("interval", &self.interval())
            .field("available", &self.available())
            .finish()
    }
}
