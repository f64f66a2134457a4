//! [`KeyedLimiter`]: one GCRA token bucket per key, in a [`ShardedMap`], with idle keys
//! evicted so memory stays bounded under a flood of distinct keys.

use super::clock::{Clock, MonotonicClock};
use super::gcra::Rate;
use super::{LimitError, RateError, Tokens};
use crate::map::{FastRandomState, ShardedMap};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::Duration;

/// The fewest keys inserted between two automatic sweeps (the map's size at the first).
const MIN_SWEEP_AT: usize = 1024;

/// The count at which the map has doubled since a sweep that kept `kept` keys, and sweeps
/// again: `max(MIN_SWEEP_AT, 2 × kept)`.
#[inline]
fn doubled(kept: usize) -> usize {
    MIN_SWEEP_AT.max(kept.saturating_mul(2))
}

/// A token bucket per key (a client address, a user id, an API key), all with the same rate and
/// burst, that forgets keys whose bucket has refilled.
///
/// Each key behaves exactly as its own [`TokenBucket`](super::TokenBucket)'s `try_acquire`,
/// `refund` and `available`, starting full. A key whose bucket is full again holds no
/// information (a new bucket would start the same), so evicting it changes no decision (a
/// request that was waiting for the key's shard meanwhile is decided at the time it gets in):
/// the limiter sweeps such keys out as new keys arrive (see "Allocation"), and
/// [`evict_idle`](KeyedLimiter::evict_idle) does it on demand.
///
/// There is no sleeping `acquire`: a server thread asleep on one client's limit is a thread
/// that serves no one, so a refusal ([`RateError`]) carries
/// [`retry_after`](RateError::retry_after) for the caller to answer with (an HTTP 429 and its
/// `Retry-After`) or to sleep on itself.
///
/// Keys are hashed with [`FastRandomState`] (foldhash) unless
/// [`with_hasher`](KeyedLimiter::with_hasher) sets another: for keys an attacker chooses (the
/// addresses and user names of a public service), std's SipHash resists HashDoS. Lookups take
/// the key's borrowed form (`&str` for `String` keys); a limiter keyed by `&'static str` is
/// asked with `&"name"`, one keyed by `Arc<str>` with `&Arc<str>`.
///
/// # When to use
/// Per-client limits in a server, where clients come and go and an attacker may send each
/// request from a new address (hash such keys with SipHash: see above).
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
/// - **Making one**: its map's array of shards (one allocation; 16 KiB on 2 CPUs at the default
///   shard count, see [`ShardedMap`](crate::map::ShardedMap)); the process's first also asks the
///   OS for the CPU count and its first clock reads one `/sys` file (see [`MonotonicClock`]),
///   each once.
/// - **A key already present, or a request of 0 tokens** (which inserts nothing): none
///   (`tests/alloc_limit.rs`).
/// - **A new key**: its clone (`K::clone` may allocate), and now and then its shard's table,
///   which doubles when full: about `log2(keys per shard)` allocations per shard in all, far
///   fewer than one per new key.
/// - **Entries retained**: keys whose bucket is full again (no request for a *window*,
///   `burst / rate`) are swept out as new keys arrive. While they keep arriving, the map holds at
///   most `max(1024, 2 × k)` entries, `k` the keys the last sweep kept, and at most `k + 1024`
///   once those have refilled, plus the keys other threads insert while a sweep runs (held to
///   the same doubling). The idle keys of a past flood go within two windows of it going idle,
///   at the first insert 1 024 new keys after the last sweep; with no new keys they stay until
///   [`evict_idle`](Self::evict_idle). Neither gives the tables' memory back: call both it and
///   [`shrink_to_fit`](Self::shrink_to_fit) now and then to bound memory through quiet periods.
///   `tests/stress_limit.rs` checks the bound; the module doc's "How it works" gives the sweep
///   rules.
///
/// # Cost
/// - **A request**: a clock read, one hash, a shared shard lock and one CAS.
/// - **A new key**: its shard's exclusive lock, a clone, and one add to a count of entries shared
///   by every inserting thread (under a flood from several cores, a cache line that moves
///   between cores on every insert). Now and then a sweep, run by the inserting thread: a walk of
///   every shard's table, `O(entries + table slots)`, `O(1)` per insert and per request
///   amortised, plus the walk of the empty slots a past flood left in the tables (until
///   `shrink_to_fit`), which, with keys that refill fast, can recur every 1 024 inserts.
/// - **An insert that finds the map at twice the threshold while another thread sweeps**: a walk
///   of its own shard's table, if at least a quarter full, `O(shard entries)`, not amortised.
/// - **A key swept while full that comes back** is inserted again, as a new key.
///
/// # Panics
/// Its methods take a lock of the [`ShardedMap`] that holds the keys, so that map's re-entrancy
/// check applies: a call made inside the closures of 8 maps at once on one thread panics, naming
/// `ShardedMap` (the ninth map would be the limiter's own). A key's `Eq`, `Drop` and `to_owned`
/// (its `Clone`, for a sized key), and its `Hash` when a table grows, run under that lock (a sweep
/// drops evicted keys there), so one that calls the same limiter may panic with the map's
/// re-entrancy message, except that a key's `Hash` that panics while a table grows or rehashes,
/// for that or any reason, aborts the process, as in the map ([`ShardedMap`]'s Panics). A key's
/// `Drop` that panics in a sweep surfaces in whichever call ran the sweep: `evict_idle`, or the
/// request for a new key that triggered it (its tokens already taken).
///
/// None of these panics leaves the limiter inconsistent: it changes no key, and each key's
/// state is an atomic stepped whole. So it is `RefUnwindSafe` and `UnwindSafe` where its keys,
/// clock and hasher are, and may be used across `catch_unwind` (its inner [`ShardedMap`] is not,
/// since a closure of the map's user can panic part-way through changing a value).
pub struct KeyedLimiter<K, C: Clock = MonotonicClock, S = FastRandomState> {
    /// Each key's theoretical arrival time (see `gcra.rs`). Atomic, so requests step it under
    /// the shard's *shared* lock and requests for keys in one shard run in parallel; only
    /// inserts and sweeps take the exclusive lock.
    buckets: ShardedMap<K, AtomicU64, S>,
    rate: Rate,
    clock: C,
    /// Keys inserted less keys removed: the map's length, kept here so that an insert need
    /// not walk every shard to learn it (`ShardedMap::len` reads a line per shard).
    entries: AtomicUsize,
    /// The entries the last sweep kept: the next insert that brings the count to twice this
    /// (and at least `MIN_SWEEP_AT`) sweeps.
    kept: AtomicUsize,
    /// The clock time when every key the last sweep kept is full if it made no request since
    /// (the latest arrival time it kept, at most a window after the sweep): from then on, the
    /// insert that brings the count `MIN_SWEEP_AT` past `kept` sweeps too.
    window_ends: AtomicU64,
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

    /// A limiter giving each key `burst` tokens refilled with one token every `interval`, for
    /// rates under one per second per key. `every(12 s, 5)` is 5 a minute per user on average,
    /// in bursts of up to 5: a new key may pass 9 in its first minute (the burst, then one every
    /// 12 s); `every(12 s, 1)` never passes more than 5 in any minute.
    ///
    /// # Errors
    /// As [`TokenBucket::every`](super::TokenBucket::every).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use thrifty::limit::KeyedLimiter;
    ///
    /// let per_user = KeyedLimiter::every(Duration::from_secs(12), 5).unwrap();
    /// for _ in 0..5 {
    ///     assert!(per_user.try_acquire("ada", 1).is_ok());
    /// }
    /// assert!(per_user.try_acquire("ada", 1).is_err(), "the sixth at once waits");
    /// assert!(per_user.try_acquire("bob", 1).is_ok(), "each key has its own bucket");
    /// ```
    pub fn every(interval: Duration, burst: u32) -> Result<Self, LimitError> {
        Self::every_with_clock(interval, burst, MonotonicClock::new())
    }
}

impl<K: Hash + Eq, C: Clock> KeyedLimiter<K, C> {
    /// As [`new`](KeyedLimiter::new), reading time from `clock`.
    ///
    /// # Errors
    /// As [`TokenBucket::new`](super::TokenBucket::new).
    pub fn with_clock(rate: u64, burst: u32, clock: C) -> Result<Self, LimitError> {
        Ok(Self::from_rate(Rate::per_second(rate, burst)?, clock))
    }

    /// As [`every`](KeyedLimiter::every), reading time from `clock`.
    ///
    /// # Errors
    /// As [`every`](KeyedLimiter::every).
    pub fn every_with_clock(interval: Duration, burst: u32, clock: C) -> Result<Self, LimitError> {
        Ok(Self::from_rate(Rate::every(interval, burst)?, clock))
    }

    fn from_rate(rate: Rate, clock: C) -> Self {
        KeyedLimiter::from_parts(rate, clock, ShardedMap::new())
    }

    /// The same limiter, hashing its keys with `hasher` instead of the default
    /// [`FastRandomState`] (foldhash). Keys an attacker chooses (client addresses, user names
    /// or API keys from requests, on a public service) call for std's SipHash,
    /// `std::hash::RandomState`, which resists HashDoS at a higher cost per hash; see
    /// [`FastRandomState`] for when the default is right.
    ///
    /// Allocates the new map's shard array (the old one is freed).
    ///
    /// # Panics
    /// If the limiter already holds keys ("`KeyedLimiter::with_hasher` on a limiter that
    /// holds keys"): set the hasher when the limiter is made, before its first request. (Their
    /// buckets would otherwise have to be dropped, handing those keys a fresh burst.)
    ///
    /// # Examples
    /// ```
    /// use std::hash::RandomState;
    /// use thrifty::limit::KeyedLimiter;
    ///
    /// let per_client: KeyedLimiter<String, _, RandomState> =
    ///     KeyedLimiter::new(1, 2).unwrap().with_hasher(RandomState::new());
    /// assert!(per_client.try_acquire("203.0.113.9", 2).is_ok());
    /// assert!(per_client.try_acquire("203.0.113.9", 1).is_err());
    /// ```
    #[track_caller]
    pub fn with_hasher<S: BuildHasher>(self, hasher: S) -> KeyedLimiter<K, C, S> {
        assert!(
            self.buckets.is_empty(),
            "`KeyedLimiter::with_hasher` on a limiter that holds keys: set the hasher when the \
             limiter is made, before its first request"
        );
        KeyedLimiter::from_parts(self.rate, self.clock, ShardedMap::with_hasher(hasher))
    }
}

impl<K: Hash + Eq, C: Clock, S: BuildHasher> KeyedLimiter<K, C, S> {
    /// An empty limiter over `buckets`, no sweep yet.
    fn from_parts(rate: Rate, clock: C, buckets: ShardedMap<K, AtomicU64, S>) -> Self {
        Self {
            buckets,
            rate,
            clock,
            entries: AtomicUsize::new(0),
            kept: AtomicUsize::new(0),
            window_ends: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
        }
    }

    /// Takes `n` tokens from `key`'s bucket if they are there now; never waits for tokens. It
    /// may wait for the key's shard lock while another thread inserts into that shard or
    /// sweeps it, and an insert that finds a sweep due runs the sweep itself (see "Cost"
    /// above). `n == 0` always succeeds and looks nothing up: a key not in the map stays out.
    ///
    /// # Errors
    /// As [`TokenBucket::try_acquire`](super::TokenBucket::try_acquire).
    #[inline]
    pub fn try_acquire<Q>(&self, key: &Q, n: u32) -> Result<Tokens, RateError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // Nothing to take, as `TokenBucket::try_acquire`; and no entry for a key never charged.
        if n == 0 {
            return Ok(Tokens { n });
        }
        if n > self.rate.burst {
            return Err(self.rate.too_large(n));
        }
        let now = self.clock.now();
        let rate = self.rate;
        let step = move |tat: &AtomicU64, now: u64| rate.take_in(tat, now, n);
        match self.buckets.read(key, |tat| step(tat, now)) {
            Some(result) => result,
            None => self.try_acquire_new(key, now, step),
        }
    }

    /// The first request of a key not in the map: insert a full bucket, then sweep if due.
    ///
    /// The bucket is stepped with the clock read again under the shard's exclusive lock, not
    /// with the caller's `now`: a sweep may have evicted the key (full at its later time)
    /// while this request waited for the lock, and a new bucket stepped at the earlier time
    /// would let the next request at the later one pass as well, past the burst.
    #[cold]
    #[inline(never)]
    fn try_acquire_new<Q>(
        &self,
        key: &Q,
        now: u64,
        step: impl FnOnce(&AtomicU64, u64) -> Result<Tokens, RateError>,
    ) -> Result<Tokens, RateError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // Another thread may insert the key between `read` and here; `get_or_insert_with_ref`
        // then steps the bucket it made, as it should, and makes no owned key.
        let mut inserted = None;
        let result = self.buckets.get_or_insert_with_ref(
            key,
            || {
                // Counted under the shard's lock, before the entry is in the map: a sweep that
                // removes it (it takes that lock) subtracts it after this add, so the count
                // never drops below the entries (counted after the insert, a racing sweep could
                // subtract first and wrap it).
                // Relaxed: a count; the lock orders the add before the removal's subtract.
                inserted = Some(self.entries.fetch_add(1, Ordering::Relaxed) + 1);
                AtomicU64::new(now)
            },
            // `max`: a clock that steps back between the two readings (a user's) reads as still.
            |tat| step(tat, self.clock.now().max(now)),
        );
        if let Some(entries) = inserted {
            if self.sweep_due(entries, now) && !self.sweep(now) && self.over_cap(entries) {
                // Another thread sweeps, and the map has doubled past the threshold meanwhile
                // (that thread waits to run, or the walk is long): clear the full keys out of
                // the shard this insert went to, so a flood cannot outrun one sweeper.
                self.remove_full(now, Some(key));
            }
        }
        result
    }

    /// Whether `entries` is twice the count that makes a sweep due by doubling, the count past
    /// which inserts clear their own shard while another thread sweeps.
    #[inline]
    fn over_cap(&self, entries: usize) -> bool {
        // Relaxed: as in `sweep_due`.
        entries >= doubled(self.kept.load(Ordering::Relaxed)).saturating_mul(2)
    }

    /// Whether an insert that brought the count to `entries` at `now` should sweep: the map
    /// has doubled since the last sweep, or every key it kept has refilled (`window_ends`) and
    /// `MIN_SWEEP_AT` keys have been inserted.
    #[inline]
    fn sweep_due(&self, entries: usize, now: u64) -> bool {
        // Relaxed: thresholds; a stale read only moves a sweep by a few inserts.
        let kept = self.kept.load(Ordering::Relaxed);
        entries >= doubled(kept)
            || (entries.saturating_sub(kept) >= MIN_SWEEP_AT
                && now >= self.window_ends.load(Ordering::Relaxed))
    }

    /// Gives `tokens` back to `key`'s bucket, as
    /// [`TokenBucket::refund`](super::TokenBucket::refund); nothing if the key was evicted
    /// (its bucket had refilled anyway).
    ///
    /// Pass the key the tokens were taken from: a receipt does not name its key, and given to
    /// another it fills that key's bucket (never past its burst) while its own stays spent.
    pub fn refund<Q>(&self, key: &Q, tokens: Tokens)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if tokens.n == 0 {
            return;
        }
        let now = self.clock.now();
        self.buckets
            .read(key, |tat| self.rate.refund_in(tat, now, tokens.n));
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
    /// returns how many were removed. It counts as a sweep: the next automatic one comes when
    /// the keys it kept have doubled, or once they have refilled, at most a window later (the
    /// sweep rules are in the module doc's "How it works").
    ///
    /// The tables keep their size: [`shrink_to_fit`](Self::shrink_to_fit) gives it back.
    pub fn evict_idle(&self) -> usize {
        let now = self.clock.now();
        let (removed, kept, refilled) = self.remove_full(now, None::<&K>);
        self.swept(now, kept, refilled);
        removed
    }

    /// Shrinks every shard's table to fit the keys left in it, and frees the tables of empty
    /// shards: the memory of keys that sweeps and [`evict_idle`](Self::evict_idle) removed,
    /// which they keep for the keys to come.
    ///
    /// # When to use
    /// After a flood of distinct keys has gone idle, in a quiet period: call `evict_idle`,
    /// then this. New keys grow the tables again, by doubling.
    ///
    /// # Cost
    /// Each shard in turn is rehashed into a new table under its exclusive lock (requests for
    /// its keys wait): `O(entries + table slots)` and an allocation per shard left with keys.
    /// Not for every request.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use thrifty::limit::{KeyedLimiter, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let per_client: KeyedLimiter<u64, _> =
    ///     KeyedLimiter::with_clock(10, 1, clock.clone()).unwrap(); // 10/s, burst 1
    /// for client in 0..10_000 {
    ///     per_client.try_acquire(&client, 1).unwrap(); // a flood of new clients
    /// }
    /// clock.advance(Duration::from_millis(100)); // every bucket is full again
    /// assert_eq!(per_client.evict_idle(), 10_000); // the keys go, the tables stay
    /// per_client.shrink_to_fit(); // the tables go too
    /// assert!(per_client.is_empty());
    /// ```
    pub fn shrink_to_fit(&self) {
        self.buckets.shrink_to_fit();
    }

    /// Removes every key whose bucket is full at `now` (read again as it walks) from the whole
    /// map, or from the one shard that holds `shard_of`'s key; returns how many, how many it
    /// kept, and the latest arrival time among the keys it walked (`now` if none): when those it
    /// kept are all full, unless they take more tokens. A shard whose table is less than a
    /// quarter full is not walked (`retain_crowded_shard_of`): more keys there allocate nothing.
    ///
    /// A key's `Drop` that panics ends the walk, but the keys removed so far, the panicking one
    /// among them (the table erases an entry before dropping it), still leave the count.
    fn remove_full<Q>(&self, now: u64, shard_of: Option<&Q>) -> (usize, usize, u64)
    where
        K: Borrow<Q>,
        Q: Hash + ?Sized,
    {
        let mut removed = Uncount {
            entries: &self.entries,
            n: 0,
        };
        let (mut kept, mut refilled, mut now, mut seen) = (0, now, now, 0u32);
        let mut walk = |_: &K, tat: &mut AtomicU64| {
            // The clock again at the first key, under the first shard's lock, and every 64 keys
            // after: a walk that waits to run (or is long) would otherwise keep every key
            // inserted since its caller read `now` as not yet full. Every 64, not every key:
            // the read costs more than the rest of a key's step.
            seen = seen.wrapping_add(1);
            if seen % 64 == 1 {
                now = now.max(self.clock.now());
            }
            // Relaxed: as in `try_acquire`.
            let tat = tat.load(Ordering::Relaxed);
            let keep = tat > now;
            removed.n += usize::from(!keep);
            kept += usize::from(keep);
            refilled = refilled.max(tat);
            keep
        };
        match shard_of {
            Some(key) => {
                let _ = self.buckets.retain_crowded_shard_of(key, &mut walk);
            }
            None => self.buckets.retain(&mut walk),
        }
        (removed.n, kept, refilled)
    }

    /// Test hook: the kept count of entries, which must match `len` when nothing runs. (The
    /// tests that use it do not build under loom.)
    #[cfg(all(test, not(loom)))]
    pub(crate) fn entry_count(&self) -> usize {
        // Relaxed: read at quiescence.
        self.entries.load(Ordering::Relaxed)
    }

    /// Test hook: marks a sweep as running, as another thread's would be (`true`), or ends it.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn hold_sweep(&self, held: bool) {
        // Relaxed: the tests that use it run on one thread.
        self.sweeping.store(held, Ordering::Relaxed);
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

    /// Sweeps the whole map, unless another thread is sweeping it: then returns false.
    #[cold]
    fn sweep(&self, now: u64) -> bool {
        // Acquire/Release: pairs with the Release store below, so the sweep that wins sees the
        // threshold the previous sweep stored.
        if self.sweeping.swap(true, Ordering::Acquire) {
            return false; // another thread is sweeping
        }
        // Ends the sweep even if a key's `Drop` panics in it: otherwise every later sweep
        // would see one running, and the map would grow without bound.
        let _done = SweepDone(&self.sweeping);
        let (_, kept, refilled) = self.remove_full(now, None::<&K>);
        self.swept(now, kept, refilled);
        true
    }

    /// Records a sweep at `now`: the keys its walk kept, and when every one of them is full
    /// unless it made a request since (`refilled`, from `remove_full`; at most a window after
    /// `now`), the time from which inserts may sweep again (see `sweep_due`). Keys other
    /// threads inserted behind the walk are not among the kept: they count towards the next
    /// sweep, so a walk that inserts outran does not raise the threshold by them.
    fn swept(&self, now: u64, kept: usize, refilled: u64) {
        // Relaxed: thresholds (see `sweep_due`); `SweepDone`'s Release publishes them too.
        self.kept.store(kept, Ordering::Relaxed);
        self.window_ends.store(
            refilled.min(now.saturating_add(self.rate.tau)),
            Ordering::Relaxed,
        );
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

// The limiter's own state per key is an atomic that no user code runs beside, so a panic (a
// key's `Hash`, `Eq`, `Drop` or `to_owned`, the hasher, the clock's `now`, or the map's
// re-entrancy check) leaves it consistent: `SweepDone` and `Uncount` keep the sweep flag and
// the count of entries right on unwind, and a walk stopped part-way only leaves the sweep's
// thresholds stale.
impl<K: RefUnwindSafe, C: Clock + RefUnwindSafe, S: RefUnwindSafe> RefUnwindSafe
    for KeyedLimiter<K, C, S>
{
}
impl<K: UnwindSafe, C: Clock + UnwindSafe, S: UnwindSafe> UnwindSafe for KeyedLimiter<K, C, S> {}

impl<K, C: Clock, S> fmt::Debug for KeyedLimiter<K, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("keys", &self.buckets.len())
            .field("burst", &self.rate.burst)
            .field("interval", &Duration::from_nanos(self.rate.interval))
            .finish()
    }
}
