//! Saying no early: token buckets cap a rate, semaphores cap concurrency, an in-flight gate
//! sheds load, all shared between threads and allocation-free per request, but for the few
//! exceptions under "Allocation" below.
//!
//! | type | caps | a refused caller | cost per request |
//! | --- | --- | --- | --- |
//! | [`TokenBucket`] | tokens per second, with a burst | is told when to retry ([`RateLimited`]), or sleeps ([`acquire`](TokenBucket::acquire)) | a clock read and one CAS, lock-free |
//! | [`KeyedLimiter`] | the same, per key | is told when to retry ([`RateLimited`]); no sleeping `acquire` | a hash and one shard lock |
//! | [`InFlight`] | requests in progress | is refused at once (load shedding) | one CAS |
//! | [`Semaphore`] | weighted permits held at once | waits in a FIFO line (or, [`Fairness::Eventual`], barging until a waiter has waited a set time), or times out | one CAS; a lock only while someone waits |
//!
//! Time comes from a [`Clock`]: [`MonotonicClock`] by default, [`ManualClock`] in tests. Tokens
//! taken and not used go back with [`TokenBucket::refund`], which takes the [`Tokens`] receipt the
//! request got, so it can never return more tokens than were taken nor fill a bucket past its burst
//! (a receipt does not name its key: give it back to the key it came from); while `acquire` calls
//! sleep on reserved tokens it gives nothing back (its docs say why).
//!
//! Constructors: a rate ([`TokenBucket::new`], [`every`](TokenBucket::every),
//! [`KeyedLimiter::new`]) comes back as a `Result`, since it often comes from configuration and
//! can be wrong in several ways ([`LimitError`]: zero, too fast or too slow for the clock);
//! a count of permits ([`Semaphore::new`], [`InFlight::new`]) is usually a constant, so `new`
//! panics on 0 and `try_new` returns the error.
//!
//! # Composing them: rate, then shed, then wait
//!
//! Make each limiter **once** and share it (a limiter per handler multiplies the limit by the
//! number of handlers). Put them in this order in front of the work:
//!
//! 1. **Rate limit** (per client with [`KeyedLimiter`], or global with [`TokenBucket`]): the
//!    cheapest refusal, and it keeps one client from using everybody's capacity.
//! 2. **Shed** with [`InFlight`]: if too many requests are already in the system, answer
//!    "overloaded" now. This must come *before* any queue: a concurrency limit placed first
//!    queues exactly the requests that should have been shed.
//! 3. **Limit concurrency** with a [`Semaphore`]: admitted requests wait, fairly and for a
//!    bounded time, for the resource (connections, memory) that the work holds. The wait is
//!    bounded because `InFlight` bounds how many can be waiting.
//!
//! Acquire before spawning or starting the work, never after. To move the admission into the
//! spawned thread, share the limiters in an `Arc` and take owned permits
//! ([`InFlight::try_enter_owned`], [`Semaphore::acquire_owned`]).
//!
//! ```
//! use std::time::Duration;
//! use thrifty::limit::{InFlight, KeyedLimiter, Semaphore};
//!
//! struct Limits {
//!     per_client: KeyedLimiter<u32>, // 1. rate per client
//!     in_flight: InFlight,           // 2. shed beyond 64 in the system
//!     db: Semaphore,                 // 3. 8 database connections
//! }
//!
//! #[derive(Debug, PartialEq)]
//! enum Reply { Done, TooManyRequests(Duration), Overloaded, Timeout }
//!
//! fn handle(limits: &Limits, client: u32) -> Reply {
//!     let tokens = match limits.per_client.try_acquire(&client, 1) {
//!         Ok(tokens) => tokens,
//!         Err(e) => return Reply::TooManyRequests(e.retry_after().unwrap_or(Duration::MAX)),
//!     };
//!     let Some(_admitted) = limits.in_flight.try_enter() else {
//!         limits.per_client.refund(&client, tokens); // not served: give the token back
//!         return Reply::Overloaded;
//!     };
//!     match limits.db.acquire_timeout(1, Duration::from_millis(50)) {
//!         Ok(_connection) => Reply::Done, // ... the work, holding both permits ...
//!         Err(_) => Reply::Timeout,
//!     }
//! }
//!
//! let limits = Limits {
//!     per_client: KeyedLimiter::new(1, 5).unwrap(), // 1 a second, bursts of 5
//!     in_flight: InFlight::new(64),
//!     db: Semaphore::new(8),
//! };
//! for _ in 0..5 {
//!     assert_eq!(handle(&limits, 7), Reply::Done);
//! }
//! assert!(matches!(handle(&limits, 7), Reply::TooManyRequests(_)));
//! assert_eq!(handle(&limits, 8), Reply::Done);
//! ```
//!
//! # Allocation
//!
//! `TokenBucket::try_acquire`/`acquire`/`refund`, `InFlight::try_enter`, and `Semaphore`
//! acquire and release, with borrowed or owned permits, allocate nothing, with three exceptions
//! in the semaphore: its first wait asks the OS for the number of CPUs if nothing in the process
//! has yet (a `ShardedMap` with the default shard count, a `KeyedLimiter` or a `PerCpu` made first
//! already did; the crate asks once:
//! `std::thread::available_parallelism`, which allocates); its waiter queue grows when more
//! threads wait at once than ever before; and a release (or a timed-out waiter leaving the
//! front of the line) that wakes more than 4 waiters at once gathers them in a heap buffer for
//! that call. `KeyedLimiter::try_acquire`
//! allocates nothing for a key already present or for 0 tokens; a new key is cloned into the
//! map and may grow its shard's table (by doubling), whose memory stays until
//! [`KeyedLimiter::shrink_to_fit`]. `tests/alloc_limit.rs` asserts the rest.
//!
//! # How it works
//!
//! **Token buckets** run the generic cell rate algorithm (GCRA, ITU-T I.371's virtual
//! scheduling; `gcra.rs` has the state table). The whole state is one `u64`, the *theoretical
//! arrival time*: the clock time at which the bucket will be full again. A request for `n`
//! tokens moves it to `max(tat, now) + n × interval` if that is at most `now + burst ×
//! interval`; [`TokenBucket`] does this with one compare-and-swap on an `AtomicU64`, so a
//! refusal writes nothing and concurrent requests never over-admit (`tests/loom_limit.rs`).
//! A new bucket's arrival time is its creation time, so it starts full. `acquire` reserves its
//! tokens in the same word (the arrival time may then run past `now + tau`) and sleeps until
//! they are due, which serves sleepers in call order. A refund moves the arrival time back by
//! the receipt's tokens, never below `now`, and not at all while it runs past `now + tau`: a
//! sleeper's turn lies ahead then, and it keeps it. The keyed limiter keeps the same word per
//! key, as an `AtomicU64` in a [`ShardedMap`](crate::map::ShardedMap), and steps it with a CAS
//! under the shard's shared lock (inserts and sweeps take it exclusively); a key whose arrival
//! time has passed is full and is dropped by the next sweep.
//!
//! **The keyed limiter's sweeps** (`keyed.rs`) keep its memory bounded. A *window* is
//! `burst / rate`, the time an emptied bucket takes to refill: a key with no request for a window
//! is full and can go. An insert sweeps out every full key when the map reaches twice the keys the
//! last sweep kept (and at least 1 024), or when 1 024 keys have been inserted since that sweep and
//! every key it kept would be full by now had it taken no token since (at most a window after the
//! sweep; `1 / rate` if each had taken one token). So while new keys keep arriving, the map holds
//! at most `max(1024, 2 × k)` entries, `k` being the keys the last sweep kept (those whose bucket
//! was not full), and at most `k + 1024` once those have refilled, plus the keys other threads
//! insert while a sweep runs (one thread sweeps at a time, and the others insert meanwhile). Those
//! are held to the same doubling: an insert that brings the map to twice the count that makes a
//! sweep due (`2 × max(1024, 2k)`) while another thread sweeps clears the full keys out of the
//! shard it inserted into (one of 64 per CPU, up to 1 024) if that shard's table is at least a
//! quarter full (a table a past flood grew takes more keys without allocating, and is left for the
//! sweep), so a flood of distinct keys from more threads than CPUs, where the sweeping thread may
//! wait a while to run again, comes back within that as its inserts reach the shards that hold
//! full keys (plus a key per thread in the middle of an insert, and the keys not yet refilled;
//! `tests/stress_limit.rs` floods from 64 threads). The idle keys of a past flood go at the first
//! insert 1 024 new keys after the last sweep once every key that sweep kept has refilled: within
//! two windows of the flood going idle, sooner when the keys refill sooner (a second after, for
//! keys that took one token each at 1 per second with nothing else kept). Sweeps run only on
//! inserts: after a flood of distinct keys stops, its idle keys stay until new keys come or an
//! [`evict_idle`](KeyedLimiter::evict_idle) call. Neither gives the tables' memory back: they keep
//! the size of the most keys the map has held until
//! [`shrink_to_fit`](KeyedLimiter::shrink_to_fit).
//!
//! What the sweeps cost: the limiter keeps its count of entries in one shared atomic, which
//! every thread inserting new keys writes (a cache line that, under a flood from several cores,
//! moves between cores on every insert); the exact bound on entries rests on it. A sweep walks
//! every shard's table, `O(entries + table slots)`, in the inserting thread, with a clock read
//! every 64 keys. A sweep that doubling triggers is paid by the inserts since the last (as many as
//! the keys it keeps); one that time triggers comes after 1 024 inserts and only once the keys the
//! last sweep kept have refilled, so it keeps only keys with a request since that sweep. So sweeps
//! cost `O(1)` per insert and per request, amortised, plus the walk of the empty slots a past
//! flood left in the tables (until `shrink_to_fit`), which, with keys that refill fast, can recur
//! every 1 024 inserts. The per-shard clearing above, by an insert that finds the map at twice the
//! threshold while another thread sweeps, walks that shard's table under its exclusive lock:
//! `O(shard entries)` on every such insert, not amortised like the sweeps. A key swept while full
//! that comes back is inserted again (its shard's exclusive lock, a clone).
//!
//! **The semaphore** keeps its free permits and two flags (someone queued, closed) in one
//! `AtomicU64`, and its line of waiters behind a lock. While nobody waits, an acquire is one CAS
//! on that word and a release one `fetch_add`: no lock, however many threads share it. A
//! request that does not fit takes the lock, joins the line and sets the queued flag in the same
//! word; from then on new requests queue behind it instead of taking permits (no barging),
//! and a release that sees the flag takes the lock and hands what is free to the front of the
//! line, in arrival order, unparking exactly the waiters it granted. A departure from the front
//! (a timeout) hands on the same way; close wakes every waiter to fail. A forgotten permit
//! lowers the total instead of raising the free count, and wakes the waiters it made too heavy,
//! so they fail instead of waiting for ever. `semaphore/queue.rs` states the invariants and
//! why no wake-up is lost; `tests/loom_limit.rs` checks them. An [`OwnedPermit`] is a borrowed
//! [`Permit`] handed over to a clone of the semaphore's `Arc` without releasing in between, so
//! both kinds come from the same acquire code.
//!
//! **The semaphore's hand-overs** have a price when permits are scarce: a freed permit goes to
//! the longest waiter rather than to a thread that asks again at once, so every hand-over passes
//! the permit between threads (the line's lock and a cache line each way), where a `Mutex` +
//! `Condvar` semaphore lets the releasing thread take it back. So that a hand-over does not also
//! wait for a wake-up, a waiter spins before it parks: 127 spin hints and a few yields, and the
//! one at the front of the line, whom the next release serves, 896 hints more (some 1 000 in
//! all, about 9 µs where a hint takes 9 ns; no spin with one CPU), trying every 8 hints from the
//! start, so that it sees a release within about 70 ns. A thread that releases and asks again at
//! once so waits at the front, awake, for the permit to come back; only the front waiter spins
//! that long, however many threads wait; a waiter further back than the semaphore's total
//! permits, which only releases by waiters now ahead of it can serve, spins without the yields
//! (with more threads than CPUs they would hand the CPU to other waiters rather than to the
//! thread that must run next). That spin and the hand-overs are CPU time. A hand-over
//! to a waiter that has parked (behind others, or after a hold longer than the spin) costs a
//! wake-up, tens of microseconds on a VM, whose idle vCPU the host must schedule again. The
//! granter unparks the waiter whether or not it parked yet, so one granted while it spins keeps
//! that wake-up. A waiter that leaves the line from behind others is taken out of its place,
//! which moves the waiters on the nearer side of it (40 bytes each on 64-bit Linux): up to
//! half the line, under the lock.
//!
//! **The barging semaphore** ([`Fairness::Eventual`]) keeps the same word, line and lock, with
//! a third flag in place of the queued one's veto: its fast path takes free permits whether or
//! not anyone waits, and refuses only while the line is *handed over to*. A release that finds
//! waiters grants nothing: it wakes, from the front, the waiters its free permits fit, marking
//! each so that a second release does not offer the same permits to the same waiter, and each
//! woken waiter tries the same CAS as any caller, leaving the line if it wins and parking again
//! if a running thread was first, after offering what is left of its share to those behind it
//! (the thread may have taken only part of it). While a woken waiter has yet to try, releases
//! take no lock (a fourth flag says so; that waiter serves the line after its try and sees
//! their permits), and a waiter whose spin sees free permits at two tries in a row takes them
//! with the same CAS, without the lock, which it takes only to leave the line. Once the front
//! waiter has waited its patience, a release that takes the lock, a woken waiter's try or a
//! request that joins the line sets the hand-over flag: new requests queue, and releases grant
//! in arrival order as the strict mode's do, until the front is a waiter that has not waited
//! that long. `semaphore/fairness.rs` says why no permit stays free while a waiter it fits
//! sleeps; `tests/loom_semaphore_barging.rs` checks it.
//!
//! **The in-flight gate** is one counter raised by a CAS that refuses at `max` and lowered
//! when the permit drops.

mod bucket;
mod clock;
mod error;
mod gcra;
mod inflight;
mod keyed;
mod semaphore;
mod tsc;

pub use bucket::{TokenBucket, Tokens};
pub use clock::{Clock, ManualClock, MonotonicClock};
pub use error::{
    AcquireError, AcquireTimeoutError, InsufficientCapacity, LimitError, RateError, RateLimited,
    TryAcquireError,
};
pub use inflight::{InFlight, InFlightPermit, OwnedInFlightPermit};
pub use keyed::KeyedLimiter;
pub use semaphore::{Fairness, OwnedPermit, Permit, Semaphore};

#[cfg(test)]
mod tests;
