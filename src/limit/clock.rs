//! Where a token bucket reads the time: [`Clock`], the monotonic [`MonotonicClock`] every
//! limiter uses by default (the TSC where the kernel keeps time on it, see `tsc.rs`), and
//! [`ManualClock`] for deterministic tests.

use super::tsc::Tsc;
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
/// # When not to use
/// Not over the wall clock (`SystemTime`), which NTP or an operator can step: a step back makes
/// a limiter refuse until the clock catches up, a step forward refills its tokens early.
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
/// A limiter reads the clock once per request, and the read is a large part of it: in `cargo
/// bench --bench limit -- try_acquire` (an admitted request, one thread, a 2-core Intel Xeon VM), a
/// `try_acquire` on [`MonotonicClock`] reading the TSC takes about two thirds of its time on
/// std's `Instant` ([`MonotonicClock::std_instant`]), the rest of the bucket unchanged. One
/// reading takes about 8-9 ns from a bare `RDTSC` and 20-24 ns from `Instant::elapsed()`
/// (`now()` and a subtraction: the "clock read" rows of `cargo run --release --example shootout
/// -- --only limit`, which the README's table quotes): about 40% of the request on the TSC, over
/// two thirds on `Instant`. A clock of your own must be as cheap.
///
/// Whatever the clock, it must never run ahead of real time, or the limiter admits more than
/// its rate. A clock you trust more than the kernel does (a TSC on a machine where Linux chose
/// another clocksource) plugs in like this:
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
/// # Allocation
/// The trait allocates nothing, and neither does the default `sleep_until` (a thread sleep). A
/// limiter calls `now` on every request, refund and `available`: a clock whose `now` allocates
/// makes each of them allocate.
///
/// # Contract
/// `now` does not go backwards on one thread by more than a few nanoseconds, and threads may
/// read slightly different values. A limiter tolerates both: a reading older than another
/// thread's makes it refuse more, and lets through at most the tokens the difference is worth
/// at its rate (less than one token for a difference of 10 ns at any rate below 10^8 per
/// second, or of 2 µs below 500 000 per second). [`MonotonicClock`] on the TSC may read up to
/// about 2 µs older than a reading its thread has just seen from another thread (its section
/// "Why the TSC is safe here").
pub trait Clock {
    /// The latest time a limiter's arithmetic is made for: 2^63 − 1 ns, 292 years from the
    /// clock's epoch. Readings past it may make a limiter admit more than its rate (its arrival
    /// times saturate at `u64::MAX`), and so may `acquire` calls whose turn falls past it on a
    /// clock that stops there: their sleep ends at once. Once such calls have reserved past it,
    /// a clock stopped there never reaches the `retry_after` a refusal names, so the limiter
    /// refuses for good. [`MonotonicClock`] counts from its creation and [`ManualClock`] stops
    /// here.
    const MAX_NANOS: u64 = i64::MAX as u64;

    /// Nanoseconds since this clock's own epoch; at most [`MAX_NANOS`](Clock::MAX_NANOS).
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

/// The default clock: nanoseconds since the clock was made, read from the CPU's time-stamp
/// counter (TSC) where the kernel keeps its own time on it, else from std's [`Instant`].
///
/// Every limiter uses it unless told otherwise. On x86-64 Linux whose clocksource is `tsc`
/// (most bare-metal servers and many VMs: `cat
/// /sys/devices/system/clocksource/clocksource0/current_clocksource`), it reads the TSC
/// directly, about 2.5x cheaper than `Instant::now()`, which reads the same counter through the
/// vDSO. Everywhere else, and where that file cannot be read, it reads `Instant`.
/// [`uses_tsc`](MonotonicClock::uses_tsc) says which.
///
/// # When to use
/// Always, unless a test needs [`ManualClock`]. Use [`std_instant`](MonotonicClock::std_instant)
/// if you distrust the TSC even where the kernel trusts it.
///
/// # Why the TSC is safe here, and what it costs in accuracy
/// A TSC is a clock only if it ticks at a constant rate and agrees across cores. Linux checks
/// both before it keeps time on the TSC and switches away if its watchdog sees the TSC drift;
/// an unconditional TSC clock is what made governor refuse requests before the burst was spent
/// on machines whose TSC was not synchronised (boinkor-net/governor#299).
///
/// The scale is measured once per process, by the first clock made (it sleeps 1 ms), against
/// `Instant` and against the kernel's unslewed raw clock, and rounded so the clock never runs
/// ahead of either: it runs up to about 0.2% slower, so a bucket admits its rate or up to 0.2%
/// less, and a `retry_after` it reports may be up to 0.2% short. The read is not fenced, since
/// `LFENCE; RDTSC` takes 13.4 ns against 7.6 ns (the shootout's "clock read" rows), so it may
/// run ahead of a slow load before it: a thread that loads another thread's reading can then
/// read a time up to about 2 µs older (1.7 µs at most measured on a 2-core VM, under
/// contention; see `tsc.rs`). A bucket then admits up to the tokens that is worth at its rate:
/// under one below 500 000 per second. `std_instant` reads are fenced by the kernel.
///
/// When the calibration is refused (its measurements leave more than 0.1% of doubt, or NTP was
/// slewing the clock fast at that moment), every clock of the process reads `Instant`, as on a
/// machine without a usable TSC; [`uses_tsc`](MonotonicClock::uses_tsc) tells. The choice is
/// made once: if the kernel later demotes the TSC (its watchdog saw it drift), every clock of
/// the process, including those made later, keeps reading it. Firmware may also reset the TSC
/// when a machine sleeps (ACPI S3): a reading well below a clock's start (by over 2^20 ticks)
/// is taken as a reset, and every clock of the process reads `Instant` from then on, but a
/// reset to a value still above the start is not seen, and the clock jumps back (a limiter
/// then refuses, and `acquire` sleeps, for about the jump). Restart the process after a
/// demotion or such a reset, or use `std_instant` on machines where they happen (laptops,
/// desktops).
///
/// # Examples
/// ```
/// use thrifty::limit::{Clock, MonotonicClock};
///
/// let clock = MonotonicClock::new();
/// let before = clock.now();
/// std::thread::sleep(std::time::Duration::from_millis(10));
/// let slept = clock.now() - before;
/// assert!(slept >= 9_900_000); // 10 ms, less at most 0.2% when on the TSC
/// ```
///
/// # Allocation and cost
/// No allocation, except that the first clock of a process reads one `/sys` file (a short-lived
/// `String`; `tests/alloc_limit.rs` checks that later clocks and all readings allocate nothing).
/// A reading is one `RDTSC`, a multiply and a shift on the TSC (about 8 ns), or one
/// `Instant::now()` (20-24 ns for `Instant::elapsed()`, a reading and a subtraction); a whole `try_acquire` took 20.8 ns and 31.7 ns on them
/// ([`Clock`]'s Cost has the runs).
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    epoch: Instant,
    /// The TSC, where the kernel keeps time on it (see `tsc.rs`); else `epoch.elapsed()`.
    tsc: Option<Tsc>,
}

impl MonotonicClock {
    /// A clock whose epoch is now, on the TSC where the kernel keeps its time on it (x86-64
    /// Linux with `tsc` as the clocksource), else on [`Instant`].
    ///
    /// The first clock of a process where the kernel keeps time on the TSC calibrates it: it
    /// sleeps 1 ms, once.
    pub fn new() -> Self {
        // The TSC first: its first start calibrates (1 ms), and the epoch must be the TSC's
        // start, since a reading below that start falls back to `epoch.elapsed()`.
        let tsc = Tsc::start();
        Self {
            epoch: Instant::now(),
            tsc,
        }
    }

    /// A clock whose epoch is now, always on [`Instant`]: for a machine whose TSC you do not
    /// trust even when the kernel does, or to compare the two.
    pub fn std_instant() -> Self {
        Self {
            epoch: Instant::now(),
            tsc: None,
        }
    }

    /// Whether this clock reads the TSC (else [`Instant`]): false from the moment any clock of
    /// the process has seen the counter reset (above), for clocks made before too.
    pub fn uses_tsc(&self) -> bool {
        self.tsc.is_some() && Tsc::trusted()
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
        if let Some(ns) = self.tsc.as_ref().and_then(Tsc::nanos) {
            return ns;
        }
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

    /// Moves the time forward by `d`, stopping at [`Clock::MAX_NANOS`] (292 years).
    pub fn advance(&self, d: Duration) {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: the time is the only data; readers order nothing else by it.
        // `fetch_update` is `try_update` from Rust 1.95 on, and deprecated on nightly: the
        // crate builds with 1.80.
        #[allow(deprecated)]
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(d).min(<Self as Clock>::MAX_NANOS))
            });
    }

    /// Moves the time forward to `nanos` (at most [`Clock::MAX_NANOS`]); a time in the past is
    /// ignored (the clock is monotonic).
    pub fn set(&self, nanos: u64) {
        // Relaxed: as in `advance`.
        self.nanos
            .fetch_max(nanos.min(<Self as Clock>::MAX_NANOS), Ordering::Relaxed);
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
