//! The generic cell rate algorithm (GCRA) as pure functions over one `u64`, shared by
//! [`TokenBucket`](super::TokenBucket) (which keeps the word in an atomic) and
//! [`KeyedLimiter`](super::KeyedLimiter) (which keeps one per key in a map).
//!
//! GCRA comes from ATM networks (ITU-T I.371, the "virtual scheduling" form). The whole state
//! is the *theoretical arrival time* `tat`: the instant at which the bucket would be full again
//! if nothing more were taken. With `interval` nanoseconds per token and `tau = burst *
//! interval`:
//!
//! | state | meaning |
//! | --- | --- |
//! | `tat <= now` | the bucket is full: `burst` tokens available |
//! | `now < tat <= now + tau` | `(tau - (tat - now)) / interval` tokens available |
//! | `now + tau < tat` | none; sleeping `acquire` calls hold turns up to `tat - tau` |
//!
//! Taking `n` tokens moves `tat` to `max(tat, now) + n * interval`, allowed only if that is at
//! most `now + tau`. Refunding `n` moves it back by `n * interval`, but never below `now`: a
//! bucket never holds more than `burst`. A refund while `tat > now + tau` changes nothing: the
//! last reservation's caller sleeps until `tat - tau` and will pass then whatever `tat` becomes,
//! so any step back would give a new request a turn closer to that sleeper's than the rate allows.
//!
//! [`Rate::take_in`] and [`Rate::refund_in`] apply those steps to an atomic word by
//! compare-exchange, for both limiters.

use super::{InsufficientCapacity, LimitError, RateError, RateLimited, Tokens};
use crate::sync::{AtomicU64, Ordering};
use std::time::Duration;

/// A validated rate: nanoseconds per token and the burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    /// Nanoseconds between tokens; at least 1.
    pub(crate) interval: u64,
    /// `burst * interval`: how far ahead of `now` the arrival time may run. At most
    /// `MAX_TAU`, so `now + tau + interval` never overflows in 2^63 ns (292 years) of uptime.
    pub(crate) tau: u64,
    /// The most tokens one request may take, and what a full bucket holds.
    pub(crate) burst: u32,
}

/// The largest `tau` accepted: a quarter of the `u64` range, leaving room for `now`.
const MAX_TAU: u64 = u64::MAX / 4;

impl Rate {
    /// `rate` tokens per second. The interval is rounded *up* to whole nanoseconds, so the
    /// effective rate is at most the one asked for (exact when `rate` divides 10^9; as little
    /// as half of it above 5 × 10^8, as `TokenBucket::new` documents).
    pub(crate) fn per_second(rate: u64, burst: u32) -> Result<Self, LimitError> {
        if rate == 0 {
            return Err(LimitError::ZeroRate);
        }
        if rate > 1_000_000_000 {
            return Err(LimitError::RateTooHigh { rate });
        }
        // With `interval <= 10^9` and `burst < 2^32`, `tau < 2^62`: this never overflows.
        Self::from_interval_nanos(1_000_000_000u64.div_ceil(rate), burst)
    }

    /// One token every `interval`.
    pub(crate) fn every(interval: Duration, burst: u32) -> Result<Self, LimitError> {
        if interval.is_zero() {
            return Err(LimitError::ZeroInterval);
        }
        let too_long = LimitError::IntervalTooLong { interval, burst };
        let nanos = u64::try_from(interval.as_nanos()).map_err(|_| too_long)?;
        match Self::from_interval_nanos(nanos, burst) {
            Err(LimitError::IntervalTooLong { .. }) => Err(too_long),
            other => other,
        }
    }

    fn from_interval_nanos(interval: u64, burst: u32) -> Result<Self, LimitError> {
        if burst == 0 {
            return Err(LimitError::ZeroBurst);
        }
        match interval.checked_mul(u64::from(burst)) {
            Some(tau) if tau <= MAX_TAU => Ok(Self {
                interval,
                tau,
                burst,
            }),
            _ => Err(LimitError::IntervalTooLong {
                interval: Duration::from_nanos(interval),
                burst,
            }),
        }
    }

    /// The arrival time after taking `n <= burst` tokens at `now`, or the nanoseconds to wait.
    #[inline(always)]
    pub(crate) fn take(&self, tat: u64, now: u64, n: u32) -> Result<u64, u64> {
        // `n <= burst`, so `cost <= tau <= MAX_TAU`. A stored `tat` runs ahead of `now` by at
        // most `tau` plus the reservations of sleeping `acquire` calls (each at most `tau`, and
        // any number of them), and a clock may read near `u64::MAX` (a `ManualClock` set
        // there): the sum saturates, an arrival time past the clock's range.
        let cost = u64::from(n) * self.interval;
        let new = tat.max(now).saturating_add(cost);
        if new - now <= self.tau {
            Ok(new)
        } else {
            // Passes once `new - later <= tau`; `new - now > tau`, so the wait is at least 1.
            Err(new - now - self.tau)
        }
    }

    /// The arrival time after giving `n` tokens back at `now`: never below `now`, so the bucket
    /// never holds more than `burst`; a full bucket stays as it is, and so does one whose
    /// arrival time runs past `now + tau` (a sleeping `acquire` holds a turn there).
    #[inline(always)]
    pub(crate) fn refund(&self, tat: u64, now: u64, n: u32) -> u64 {
        // `tat - now > tau`: the reservation that moved `tat` last sleeps until `tat - tau`,
        // after `now`, and keeps that turn. Moving `tat` back by any `d > 0` would let the next
        // request of `cost` pass at `tat - d + cost - tau`, `cost - d` after that sleeper, where
        // the rate allows `cost` at the soonest. So the refund gives nothing back.
        if tat <= now || tat - now > self.tau {
            return tat;
        }
        // `n` may come from another bucket's receipt (up to `u32::MAX` tokens), so the product
        // may pass `u64::MAX`: it saturates, and the refund stops at `now` as ever.
        tat.saturating_sub(u64::from(n).saturating_mul(self.interval))
            .max(now)
    }

    /// Whole tokens available at `now`.
    #[inline]
    pub(crate) fn available(&self, tat: u64, now: u64) -> u32 {
        let debt = tat.saturating_sub(now).min(self.tau);
        // At most `burst`, so the cast is exact.
        ((self.tau - debt) / self.interval) as u32
    }

    /// Takes `n <= burst` tokens from the arrival time in `word` at `now`, or says how long to
    /// wait.
    #[inline(always)]
    pub(crate) fn take_in(&self, word: &AtomicU64, now: u64, n: u32) -> Result<Tokens, RateError> {
        // Relaxed throughout: `word` is the bucket's only state and publishes nothing else.
        // Every update is a compare-exchange on it, so updates are totally ordered and none is
        // lost.
        let mut tat = word.load(Ordering::Relaxed);
        loop {
            match self.take(tat, now, n) {
                Ok(new) => {
                    match word.compare_exchange_weak(tat, new, Ordering::Relaxed, Ordering::Relaxed)
                    {
                        Ok(_) => return Ok(Tokens { n }),
                        // Another request or refund moved it: decide again on its value.
                        Err(seen) => tat = seen,
                    }
                }
                Err(wait) => {
                    return Err(RateError::Limited(RateLimited {
                        retry_after: Duration::from_nanos(wait),
                    }))
                }
            }
        }
    }

    /// Gives `n` tokens back to the arrival time in `word` at `now`; writes nothing when the
    /// refund changes nothing (a full bucket, or one a sleeping `acquire` holds a turn in).
    #[inline]
    pub(crate) fn refund_in(&self, word: &AtomicU64, now: u64, n: u32) {
        // Relaxed: as in `take_in`.
        let mut tat = word.load(Ordering::Relaxed);
        loop {
            let new = self.refund(tat, now, n);
            if new == tat {
                return;
            }
            match word.compare_exchange_weak(tat, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => tat = seen,
            }
        }
    }

    /// The refusal of a request for more than the burst, which no wait can satisfy.
    #[cold]
    #[inline(never)]
    pub(crate) fn too_large(&self, n: u32) -> RateError {
        RateError::InsufficientCapacity(InsufficientCapacity {
            requested: n,
            capacity: self.burst,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_refund_and_available_agree() {
        let r = Rate::per_second(10, 3).unwrap(); // 100 ms per token
        assert_eq!(r.interval, 100_000_000);
        let mut tat = 0;
        for _ in 0..3 {
            tat = r.take(tat, 0, 1).unwrap();
        }
        assert_eq!(r.available(tat, 0), 0);
        assert_eq!(r.take(tat, 0, 1), Err(100_000_000));
        tat = r.refund(tat, 0, 2);
        assert_eq!(r.available(tat, 0), 2);
        // A refund never fills past the burst.
        assert_eq!(r.available(r.refund(tat, 0, 3), 0), 3);
    }

    #[test]
    fn a_refund_past_the_reservations_of_sleepers_changes_nothing() {
        let r = Rate::per_second(10, 2).unwrap(); // tau = 200 ms
        let ms = 1_000_000;
        // A reservation runs to 250 ms: its caller sleeps until 50 ms.
        assert_eq!(r.refund(250 * ms, 0, 1), 250 * ms);
        assert_eq!(r.refund(250 * ms, 49 * ms, 2), 250 * ms);
        // From 50 ms on, no turn lies ahead: the refund gives its tokens back.
        assert_eq!(r.refund(250 * ms, 50 * ms, 1), 150 * ms);
        assert_eq!(r.refund(250 * ms, 50 * ms, 3), 50 * ms);
    }

    #[test]
    fn interval_rounds_up_so_the_rate_never_exceeds_the_request() {
        let r = Rate::per_second(3, 1).unwrap();
        assert_eq!(r.interval, 333_333_334);
        assert!(r.interval * 3 >= 1_000_000_000);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert_eq!(Rate::per_second(0, 1), Err(LimitError::ZeroRate));
        assert_eq!(Rate::per_second(1, 0), Err(LimitError::ZeroBurst));
        assert_eq!(
            Rate::per_second(2_000_000_000, 1),
            Err(LimitError::RateTooHigh {
                rate: 2_000_000_000
            })
        );
        assert_eq!(
            Rate::every(Duration::ZERO, 1),
            Err(LimitError::ZeroInterval)
        );
        assert!(matches!(
            Rate::every(Duration::from_secs(u64::MAX), 1),
            Err(LimitError::IntervalTooLong { .. })
        ));
        assert!(matches!(
            Rate::every(Duration::from_secs(1 << 40), u32::MAX),
            Err(LimitError::IntervalTooLong { .. })
        ));
    }
}
