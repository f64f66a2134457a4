//! Where a token bucket reads the time: [`Clock`], the monotonic [`MonotonicClock`] every
//! limiter uses by default, and [`ManualClock`] for deterministic tests.

use crate::sync::{Arc, AtomicU64, Ordering};
use std::fmt;
use std::time::{Duration, Instant};

/// A source of monotonic time in nanoseconds, for [`TokenBucket`](super::TokenBucket) and
/// [`KeyedLimiter`](super::KeyedLimiter).
///
/// # When to use
/// Implement it to drive a limiter from a clock you already have (a cached coarse clock, a
/// simulation's time). Most code uses the default [`MonotonicClock`]; tests use
/// [`ManualClock`].
///
/// # Examples
/// ```
/// use thrifty::limit::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_millis(5));
/// assert_eq!(clock.now(), 5_000_000);
/// ```
///
/// # Cost
/// A limiter reads the clock once per request, and on most machines the read is the dearest
/// part of it: in the shootout's limit table
/// (`cargo run --release --example shootout -- --only limit`) a `try_acquire` on std's
/// `Instant` (the default) took about 3.2x its time on quanta's TSC clock (31.2 against
/// 9.6 ns on one thread, the README's run), the rest of the bucket unchanged. On the same
/// clock `TokenBucket` ties governor or beats it (the same table and
/// `cargo bench --bench limit`, which run governor on both clocks too); governor is faster by
/// default only because its default clock is the TSC.
///
/// std's clock stays the default on purpose. A TSC that is not synchronised across cores runs
/// backwards when a thread moves to another core, and governor's users have seen that refuse
/// requests before the burst was spent (boinkor-net/governor#299). A service that trusts its
/// machines' TSC can plug one in, as below. Whatever the clock, it must never run ahead of real
/// time, or the limiter admits more than its rate.
///
/// ```
/// use thrifty::limit::{Clock, TokenBucket};
///
/// struct Tsc(quanta::Clock, quanta::Instant);
///
/// impl Clock for Tsc {
///     fn now(&self) -> u64 {
///         self.0.now().duration_since(self.1).as_nanos() as u64
///     }
/// }
///
/// let q = quanta::Clock::new();
/// let start = q.now();
/// let bucket = TokenBucket::with_clock(1000, 10, Tsc(q, start)).unwrap();
/// assert!(bucket.try_acquire(1).is_ok());
/// ```
///
/// # Contract
/// `now` never goes backwards on one thread. Threads may read slightly different values; a
/// limiter handed an older time than another thread's only refuses more, never admits more.
pub trait Clock {
    /// Nanoseconds since this clock's own epoch.
    fn now(&self) -> u64;

    /// Blocks until `now() >= deadline`. The default sleeps the thread; [`ManualClock`] moves
    /// its time forward instead, so blocking calls finish at once in tests.
    fn sleep_until(&self, deadline: u64) {
        loop {
            let now = self.now();
            if now >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_nanos(deadline - now));
        }
    }
}

/// The default clock: [`Instant`] as nanoseconds since the clock was made.
///
/// Every limiter uses it unless told otherwise; it is monotonic on every platform std supports.
/// Replace it (see [`Clock`]) only when a profile shows the clock read matters and the
/// machine's TSC is trusted; in tests use [`ManualClock`].
///
/// # Examples
/// ```
/// use thrifty::limit::{Clock, MonotonicClock};
///
/// let clock = MonotonicClock::new();
/// let before = clock.now();
/// std::thread::sleep(std::time::Duration::from_millis(1));
/// assert!(clock.now() >= before + 1_000_000);
/// ```
///
/// # Allocation and cost
/// One `Instant::now()` per reading (a vDSO call on Linux: most of a `try_acquire`'s time,
/// see [`Clock`]'s cost); no allocation.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    epoch: Instant,
}

impl MonotonicClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> u64 {
        let d = self.epoch.elapsed();
        // Whole seconds and nanoseconds in u64 arithmetic (no u128): 584 years of nanoseconds
        // fit; saturate rather than wrap past that.
        d.as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos()))
    }
}

/// A clock that moves only when told to: for deterministic tests of rate limits.
///
/// Clones share one time, so a test keeps a clone and advances the clock the limiter reads.
/// [`Clock::sleep_until`] moves the time forward to the deadline instead of blocking.
///
/// Use it in tests of code that takes a [`Clock`], so a rate limit is checked without sleeping;
/// never in production, where time would stand still.
///
/// # Examples
/// ```
/// use thrifty::limit::{ManualClock, TokenBucket};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let bucket = TokenBucket::with_clock(10, 1, clock.clone()).unwrap(); // 10/s, burst 1
/// assert!(bucket.try_acquire(1).is_ok());
/// assert!(bucket.try_acquire(1).is_err());
/// clock.advance(Duration::from_millis(100));
/// assert!(bucket.try_acquire(1).is_ok());
/// ```
///
/// # Allocation and cost
/// Allocates one shared word (an `Arc`) when made; reading and advancing it are one atomic
/// each.
#[derive(Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the time forward by `d` (saturating at `u64::MAX` nanoseconds).
    pub fn advance(&self, d: Duration) {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: the time is the only data; readers order nothing else by it.
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(d))
            });
    }

    /// Moves the time forward to `nanos`; a time in the past is ignored (the clock is
    /// monotonic).
    pub fn set(&self, nanos: u64) {
        // Relaxed: as in `advance`.
        self.nanos.fetch_max(nanos, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> u64 {
        // Relaxed: as in `advance`.
        self.nanos.load(Ordering::Relaxed)
    }

    fn sleep_until(&self, deadline: u64) {
        self.set(deadline);
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("nanos", &self.now())
            .finish()
    }
}
