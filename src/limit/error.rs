//! The limit module's errors: one per operation, each with a lowercase `Display`.
//!
//! [`LimitError`] refuses settings that cannot work. The token bucket's [`RateError`] is
//! [`RateLimited`] (wait and retry) or [`InsufficientCapacity`] (never, at any wait). The
//! semaphore's [`AcquireError`], [`TryAcquireError`] and [`AcquireTimeoutError`] add `Closed`,
//! `NoPermits` and `Timeout`.

use std::fmt;
use std::time::Duration;

/// Settings a limiter refuses at construction, with the values that cannot work.
///
/// Match on it where rates and bursts come from outside the program (a config file); with
/// constants, `unwrap` states that they are valid.
///
/// # Examples
/// ```
/// use thrifty::limit::{LimitError, TokenBucket};
///
/// assert_eq!(TokenBucket::new(0, 10).unwrap_err(), LimitError::ZeroRate);
/// assert_eq!(TokenBucket::new(10, 0).unwrap_err(), LimitError::ZeroBurst);
/// ```
///
/// # Allocation and cost
/// None: a plain value of a few words; making it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitError {
    /// A rate of 0 tokens per second: nothing would be admitted after the first burst, ever.
    ZeroRate,
    /// A refill interval of zero: an unlimited rate, which needs no limiter.
    ZeroInterval,
    /// A burst of 0: no request, not even of one token, could ever pass.
    ZeroBurst,
    /// The rate is over one token per nanosecond, the clock's resolution. (Rates below that are
    /// rounded to a whole-nanosecond interval: see [`TokenBucket::new`](super::TokenBucket::new).)
    RateTooHigh {
        /// The tokens per second asked for.
        rate: u64,
    },
    /// The refill interval, or `burst` intervals, do not fit the 64-bit nanosecond clock (over
    /// about 146 years).
    IntervalTooLong {
        /// The interval asked for.
        interval: Duration,
        /// The burst asked for.
        burst: u32,
    },
    /// A semaphore or in-flight gate with no permits would refuse everything.
    ZeroPermits,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroRate => f.write_str("a rate of 0 tokens per second admits nothing"),
            Self::ZeroInterval => f.write_str("a refill interval of zero is an unlimited rate"),
            Self::ZeroBurst => f.write_str("a burst of 0 admits no request"),
            Self::RateTooHigh { rate } => write!(
                f,
                "a rate of {rate} tokens per second is over one per nanosecond, the clock's resolution"
            ),
            Self::IntervalTooLong { interval, burst } => write!(
                f,
                "a burst of {burst} tokens at one per {interval:?} does not fit the 64-bit nanosecond clock"
            ),
            Self::ZeroPermits => f.write_str("a limit of 0 permits admits nothing"),
        }
    }
}

impl std::error::Error for LimitError {}

/// A token bucket refused a request for now: it can pass after [`retry_after`](Self::retry_after).
///
/// Inside [`RateError::Limited`], from
/// [`TokenBucket::try_acquire`](super::TokenBucket::try_acquire) and
/// [`KeyedLimiter::try_acquire`](super::KeyedLimiter::try_acquire).
///
/// Use [`retry_after`](Self::retry_after) to tell a client when to come back (an HTTP
/// `Retry-After`), or to schedule a retry; to wait in place, call
/// [`TokenBucket::acquire`](super::TokenBucket::acquire) instead.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use thrifty::limit::{ManualClock, RateError, TokenBucket};
///
/// let bucket = TokenBucket::with_clock(10, 1, ManualClock::new()).unwrap(); // one per 100 ms
/// bucket.try_acquire(1).unwrap();
/// let Err(RateError::Limited(limited)) = bucket.try_acquire(1) else { panic!() };
/// assert_eq!(limited.retry_after(), Duration::from_millis(100));
/// ```
///
/// # Allocation and cost
/// None: a plain value of a few words; making it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub(crate) retry_after: Duration,
}

impl RateLimited {
    /// How long until the same request would pass, if nothing else takes tokens meanwhile.
    /// Never zero.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate limited: retry after {:?}", self.retry_after)
    }
}

impl std::error::Error for RateLimited {}

/// A request larger than the limiter could ever grant (tokens over the burst, a weight over
/// the semaphore's permits): refused at once, since no wait would help.
///
/// Treat it as a bad request, not a busy limiter: retrying cannot help; split the request or
/// raise the limit.
///
/// # Examples
/// ```
/// use thrifty::limit::{InsufficientCapacity, TokenBucket};
///
/// let bucket = TokenBucket::new(100, 10).unwrap();
/// let err = bucket.acquire(11).unwrap_err(); // at once: no sleep
/// assert_eq!(err, InsufficientCapacity { requested: 11, capacity: 10 });
/// ```
///
/// # Allocation and cost
/// None: a plain value of a few words; making it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsufficientCapacity {
    /// What the request asked for.
    pub requested: u32,
    /// The most the limiter can ever grant at once.
    pub capacity: u32,
}

impl fmt::Display for InsufficientCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a request for {} is over the capacity of {}: it can never pass",
            self.requested, self.capacity
        )
    }
}

impl std::error::Error for InsufficientCapacity {}

/// Why [`TokenBucket::try_acquire`](super::TokenBucket::try_acquire) (or
/// [`KeyedLimiter::try_acquire`](super::KeyedLimiter::try_acquire)) refused.
///
/// Match on it to tell "later" (`Limited`, with a wait) from "never" (`InsufficientCapacity`);
/// [`retry_after`](Self::retry_after) gives the wait when there is one.
///
/// # Examples
/// ```
/// use thrifty::limit::{ManualClock, TokenBucket};
///
/// let bucket = TokenBucket::with_clock(10, 2, ManualClock::new()).unwrap();
/// bucket.try_acquire(2).unwrap();
/// assert!(bucket.try_acquire(1).unwrap_err().retry_after().is_some()); // wait, then retry
/// let never = bucket.try_acquire(3).unwrap_err();
/// assert!(never.is_insufficient_capacity() && never.retry_after().is_none());
/// ```
///
/// # Allocation and cost
/// None: a plain value of a few words; making it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateError {
    /// Not enough tokens now; retry later.
    Limited(RateLimited),
    /// More tokens than the burst: never possible.
    InsufficientCapacity(InsufficientCapacity),
}

impl RateError {
    /// How long to wait before retrying; `None` if no wait would help.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Limited(r) => Some(r.retry_after),
            Self::InsufficientCapacity(_) => None,
        }
    }

    /// Whether the request is larger than the burst.
    pub fn is_insufficient_capacity(&self) -> bool {
        matches!(self, Self::InsufficientCapacity(_))
    }
}

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Limited(e) => e.fmt(f),
            Self::InsufficientCapacity(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RateError {}

/// Why [`Semaphore::acquire`](super::Semaphore::acquire) failed.
///
/// Match on it to tell a closed semaphore (shutting down: stop) from a request too heavy to
/// ever fit.
///
/// # Examples
/// ```
/// use thrifty::limit::{AcquireError, Semaphore};
///
/// let sem = Semaphore::new(2);
/// assert!(matches!(sem.acquire(3), Err(AcquireError::InsufficientCapacity(_)))); // at once
/// sem.close();
/// assert_eq!(sem.acquire(1).unwrap_err(), AcquireError::Closed);
/// ```
///
/// # Allocation and cost
/// None: a plain value of a few words; making it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireError {
    /// The semaphore was closed before permits were granted.
    Closed,
    /// The weight is over the semaphore's total (its permits, less any forgotten).
    InsufficientCapacity(InsufficientCapacity),
}

/// Why [`Semaphore::try_acquire`](super::Semaphore::try_acquire) refused.
///
/// Match on it to shed or retry when permits are busy now, and to stop when the semaphore is
/// closed.
///
/// # Examples
/// ```
/// use thrifty::limit::{Semaphore, TryAcquireError};
///
/// let sem = Semaphore::new(1);
/// let _held = sem.try_acquire(1).unwrap();
/// assert_eq!(sem.try_acquire(1).unwrap_err(), TryAcquireError::NoPermits);
/// sem.close();
/// assert!(sem.try_acquire(1).unwrap_err().is_closed());
/// ```
///
/// # Allocation and cost
/// None: a plain value of a few words; making it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryAcquireError {
    /// Not enough permits free now, or earlier waiters are queued ahead (with
    /// [`Fairness::Eventual`](super::Fairness::Eventual), only while the semaphore hands permits
    /// over in order: its front waiter has waited its patience).
    NoPermits,
    /// The semaphore is closed.
    Closed,
    /// The weight is over the semaphore's total (its permits, less any forgotten).
    InsufficientCapacity(InsufficientCapacity),
}

/// Why [`Semaphore::acquire_timeout`](super::Semaphore::acquire_timeout) failed.
///
/// Use it where a caller may wait for permits, but not for ever: a timeout says to shed the
/// request.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use thrifty::limit::{AcquireTimeoutError, Semaphore};
///
/// let sem = Semaphore::new(1);
/// let _held = sem.acquire(1).unwrap();
/// let err = sem.acquire_timeout(1, Duration::from_millis(5)).unwrap_err();
/// assert_eq!(err, AcquireTimeoutError::Timeout);
/// assert_eq!(sem.waiting(), 0, "the request left the queue");
/// ```
///
/// # Allocation and cost
/// None: a plain value of a few words; making it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireTimeoutError {
    /// The permits were not granted in time.
    Timeout,
    /// The semaphore was closed before permits were granted.
    Closed,
    /// The weight is over the semaphore's total (its permits, less any forgotten).
    InsufficientCapacity(InsufficientCapacity),
}

macro_rules! semaphore_error {
    ($ty:ident { $($variant:ident => $msg:literal),* }) => {
        impl $ty {
            /// Whether the semaphore was closed.
            pub fn is_closed(&self) -> bool {
                matches!(self, Self::Closed)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(Self::$variant => f.write_str($msg),)*
                    Self::InsufficientCapacity(e) => e.fmt(f),
                }
            }
        }

        impl std::error::Error for $ty {}
    };
}

semaphore_error!(AcquireError { Closed => "semaphore closed" });
semaphore_error!(TryAcquireError {
    NoPermits => "no permits free",
    Closed => "semaphore closed"
});
semaphore_error!(AcquireTimeoutError {
    Timeout => "timed out waiting for permits",
    Closed => "semaphore closed"
});
