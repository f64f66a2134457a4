//! [`KeyedLimiter`]: one GCRA token bucket per key, in a [`ShardedMap`], with idle keys
//! evicted so memory stays bounded under a flood of distinct keys.

use super::clock::{Clock, MonotonicClock};
use super::gcra::Rate;
use super::{InsufficientCapacity, LimitError, RateError, RateLimited, Tokens};
use crate::map::ShardedMap;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::time::Duration;

/// The fewest keys at which the limiter sweeps idle keys out.
const MIN_SWEEP_AT: usize = 1024;

/// A token bucket per key (a client address, a user id, an API key), all with the same rate and
/// burst, that forgets keys whose bucket has refilled.
///
/// Each key behaves exactly as its own [`TokenBucket`](super::TokenBucket), starting full. A
/// key whose bucket is full again holds no information (a new bucket would start the same), so
/// evicting it changes no decision: the limiter does so whenever the map has doubled since the
/// last sweep, and [`evict_idle`](KeyedLimiter::evict_idle) does it on demand.
///
/// # When to use
/// Per-client limits in a server, where clients come and go and an attacker may send each
/// request from a new address.
///
/// # When not to use
/// One global limit: a [`TokenBucket`](super::TokenBucket) is one atomic, no hashing, no lock.
///
/// # Examples
/// ```
/// use thrifty::limit::KeyedLimiter;
///
/// let per_client: KeyedLimiter<String> = KeyedLimiter::new(1, 2).unwrap(); // 1/s, bursts of 2
/// assert!(per_client.try_acquire("10.0.0.1", 1).is_ok());
/// assert!(per_client.try_acquire("10.0.0.1", 1).is_ok());
/// assert!(per_client.try_acquire("10.0.0.1", 1).is_err()); // this client's burst is spent
/// assert!(per_client.try_acquire("10.0.0.2", 1).is_ok()); // others are unaffected
/// ```
///
/// # Allocation
/// While new keys keep arriving, entries at most about `max(1024, 2 × keys active within the
/// last burst / rate)`: an insert that finds the map at twice the size the previous sweep left
/// (at least 1 024) sweeps out every key whose bucket is full (idle for `burst / rate` or more).
/// Sweeps run only on inserts: after a flood of distinct keys stops, its idle keys stay until
/// the next sweep or an [`evict_idle`](Self::evict_idle) call (call it now and then to bound
/// memory through quiet periods too). `tests/stress_limit.rs` checks the bound under a flood of
/// distinct keys.
///
/// # Cost
/// A clock read, one hash, a shared shard lock and one CAS per request; no allocation for a
/// key already present
/// (`tests/alloc_limit.rs`). A new key is cloned into the map (`K::clone` may allocate), adds
/// one to a shared count of entries, and may trigger a sweep, `O(entries)` once per doubling.
pub struct KeyedLimiter<K, C: Clock = MonotonicClock> {
    /// Each key's theoretical arrival time (see `gcra.rs`). Atomic, so requests step it under
    /// the shard's *shared* lock and requests for keys in one shard run in parallel; only
    /// inserts and sweeps take the exclusive lock.
    buckets: ShardedMap<K, AtomicU64>,
    rate: Rate,
    clock: C,
    /// Keys inserted less keys removed: the map's length, kept here so that an insert need
    /// not walk every shard to learn it (`ShardedMap::len` reads a line per shard).
    entries: AtomicUsize,
    /// The entry count at which the next insert sweeps idle keys out.
    sweep_at: AtomicUsize,
    /// Set while one thread sweeps, so others do not sweep the same map at once.
    sweeping: AtomicBool,
}

impl<K: Hash + Eq> KeyedLimiter<K, MonotonicClock> {
    /// A limiter giving each key `burst` tokens refilled at `rate` per second.
    ///
    /// # Errors
    /// As [`TokenBucket::new`](super::TokenBucket::new).
    pub fn new(rate: u64, burst: u32) -> Result<Self, LimitError> {
        Self::with_clock(rate, burst, MonotonicClock::new())
    }
}

impl<K: Hash + Eq, C: Clock> KeyedLimiter<K, C> {
    /// As [`new`](KeyedLimiter::new), reading time from `clock`.
    ///
    /// # Errors
    /// As [`TokenBucket::new`](super::TokenBucket::new).
    pub fn with_clock(rate: u64, burst: u32, clock: C) -> Result<Self, LimitError> {
        Ok(Self {
            buckets: ShardedMap::new(),
            rate: Rate::per_second(rate, burst)?,
            clock,
            entries: AtomicUsize::new(0),
            sweep_at: AtomicUsize::new(MIN_SWEEP_AT),
            sweeping: AtomicBool::new(false),
        })
    }

    /// Takes `n` tokens from `key`'s bucket if they are there now; never waits for tokens. It
    /// may wait for the key's shard lock while another thread inserts into that shard or
    /// sweeps it, and an insert that finds the map at its sweep threshold runs the sweep itself
    /// (see "Cost" above).
    ///
    /// # Errors
    /// As [`TokenBucket::try_acquire`](super::TokenBucket::try_acquire).
    #[inline]
    pub fn try_acquire<Q>(&self, key: &Q, n: u32) -> Result<Tokens, RateError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if n > self.rate.burst {
            return Err(RateError::InsufficientCapacity(InsufficientCapacity {
                requested: n,
                capacity: self.rate.burst,
            }));
        }
        let now = self.clock.now();
        let rate = self.rate;
        let step = move |tat: &AtomicU64| {
            // Relaxed: as in `TokenBucket::try_acquire`; the word is the key's only state.
            let mut seen = tat.load(Ordering::Relaxed);
            loop {
                match rate.take(seen, now, n) {
                    Ok(new) => match tat.compare_exchange_weak(
                        seen,
                        new,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return Ok(Tokens { n }),
                        Err(current) => seen = current,
                    },
                    Err(wait) => {
                        return Err(RateError::Limited(RateLimited {
                            retry_after: Duration::from_nanos(wait),
                        }))
                    }
                }
            }
        };
        match self.buckets.read(key, step) {
            Some(result) => result,
            None => self.try_acquire_new(key, now, step),
        }
    }

    /// The first request of a key not in the map: insert a full bucket, then sweep if due.
    #[cold]
    #[inline(never)]
    fn try_acquire_new<Q>(
        &self,
        key: &Q,
        now: u64,
        step: impl FnOnce(&AtomicU64) -> Result<Tokens, RateError>,
    ) -> Result<Tokens, RateError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // Another thread may insert the key between `read` and here; `get_or_insert_with`
        // then steps the bucket it made, as it should.
        let mut inserted = None;
        let result = self.buckets.get_or_insert_with(
            key.to_owned(),
            || {
                // Counted under the shard's lock, before the entry is in the map: a sweep that
                // removes it (it takes that lock) subtracts it after this add, so the count
                // never drops below the entries (counted after the insert, a racing sweep could
                // subtract first and wrap it).
                // Relaxed: a count; the lock orders the add before the removal's subtract.
                inserted = Some(self.entries.fetch_add(1, Ordering::Relaxed) + 1);
                AtomicU64::new(now)
            },
            |tat| step(tat),
        );
        if let Some(entries) = inserted {
            // Relaxed: a threshold; a stale read only moves a sweep by one insert.
            if entries >= self.sweep_at.load(Ordering::Relaxed) {
                self.sweep(now);
            }
        }
        result
    }

    /// Gives `tokens` back to `key`'s bucket, as
    /// [`TokenBucket::refund`](super::TokenBucket::refund); nothing if the key was evicted
    /// (its bucket had refilled anyway).
    pub fn refund<Q>(&self, key: &Q, tokens: Tokens)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.clock.now();
        self.buckets.read(key, |tat| {
            // Relaxed: as in `try_acquire`.
            let _ = tat.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(self.rate.refund(t, now, tokens.n))
            });
        });
    }

    /// Whole tokens `key` has now (`burst` for a key not in the map).
    pub fn available<Q>(&self, key: &Q) -> u32
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.clock.now();
        self.buckets
            .read(key, |tat| {
                self.rate.available(tat.load(Ordering::Relaxed), now)
            })
            .unwrap_or(self.rate.burst)
    }

    /// Removes every key whose bucket is full (it would start the same if it came back);
    /// returns how many were removed.
    pub fn evict_idle(&self) -> usize {
        self.remove_full(self.clock.now())
    }

    /// Removes every key whose bucket is full at `now`; returns how many.
    ///
    /// A key's `Drop` that panics ends the walk, but the keys removed so far, the panicking one
    /// among them (the table erases an entry before dropping it), still leave the count.
    fn remove_full(&self, now: u64) -> usize {
        let mut removed = Uncount {
            entries: &self.entries,
            n: 0,
        };
        self.buckets.retain(|_, tat| {
            // Relaxed: as in `try_acquire`.
            let keep = tat.load(Ordering::Relaxed) > now;
            removed.n += usize::from(!keep);
            keep
        });
        removed.n
    }

    /// Test hook: the kept count of entries, which must match `len` when nothing runs.
    #[cfg(test)]
    pub(crate) fn entry_count(&self) -> usize {
        // Relaxed: read at quiescence.
        self.entries.load(Ordering::Relaxed)
    }

    /// Keys in the map now (a snapshot): those seen recently, plus idle ones not yet swept.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key is in the map.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The burst every key gets.
    pub fn burst(&self) -> u32 {
        self.rate.burst
    }

    #[cold]
    fn sweep(&self, now: u64) {
        // Acquire/Release: pairs with the Release store below, so the sweep that wins sees the
        // threshold the previous sweep stored.
        if self.sweeping.swap(true, Ordering::Acquire) {
            return; // another thread is sweeping
        }
        // Ends the sweep even if a key's `Drop` panics in it: otherwise every later sweep
        // would see one running, and the map would grow without bound.
        let _done = SweepDone(&self.sweeping);
        self.remove_full(now);
        // Relaxed: a count; inserts racing the sweep are in it or follow it.
        let next = (self.entries.load(Ordering::Relaxed).saturating_mul(2)).max(MIN_SWEEP_AT);
        // Relaxed: a threshold (see `try_acquire_new`); `SweepDone`'s Release publishes it too.
        self.sweep_at.store(next, Ordering::Relaxed);
    }
}

/// Takes `n` removed keys off the count of entries when dropped, on unwind too.
struct Uncount<'a> {
    entries: &'a AtomicUsize,
    n: usize,
}

impl Drop for Uncount<'_> {
    fn drop(&mut self) {
        // Relaxed: a count (see `entries`).
        self.entries.fetch_sub(self.n, Ordering::Relaxed);
    }
}

/// Clears the sweeping flag when dropped, on unwind too.
struct SweepDone<'a>(&'a AtomicBool);

impl Drop for SweepDone<'_> {
    fn drop(&mut self) {
        // Release: pairs with the next sweep's Acquire swap (see `sweep`).
        self.0.store(false, Ordering::Release);
    }
}

impl<K, C: Clock> fmt::Debug for KeyedLimiter<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("keys", &self.buckets.len())
            .field("burst", &self.rate.burst)
            .field("interval", &Duration::from_nanos(self.rate.interval))
            .finish()
    }
}
