//! `thrifty::limit` used the way services use it: sleeping `acquire`s racing on one bucket,
//! thousands of buckets and keys, weighted permits handed between threads, threads that exit
//! holding permits, a gate under more threads than its limit, and settings that cannot work.
//! Each test is one shape of real use, named for what it shows; its doc comment says what would
//! fail. Time is a `ManualClock` wherever the answer depends on it, so counts are exact; no test
//! asserts how fast anything ran. Every scenario runs on its own thread under a deadline (120 s),
//! so a lost wake-up fails the test instead of hanging it.

#![cfg(not(loom))]

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use thrifty::limit::{
    AcquireError, AcquireTimeoutError, Clock, InFlight, InsufficientCapacity, KeyedLimiter,
    LimitError, ManualClock, OwnedPermit, RateError, Semaphore, TokenBucket, TryAcquireError,
};

#[path = "common/deadline.rs"]
mod deadline;
use deadline::{within, DEADLINE};

const THREADS: usize = 8; // oversubscribed on a 2-core machine, on purpose

/// Polls `ready` until it holds, failing after 60 s (a waiter that never queues, say; half an
/// hour of Miri's clock, for the reason [`DEADLINE`] gives).
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(if cfg!(miri) { 1800 } else { 60 });
    while !ready() {
        assert!(Instant::now() < until, "never happened: {what}");
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Receives with a deadline.
fn recv<T>(rx: &mpsc::Receiver<T>, what: &str) -> T {
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|e| panic!("{what}: {e:?}"))
}

/// Runs `call(t, i)` for `i` in `0..calls` on each of [`THREADS`] scoped threads `t` at once,
/// and returns all the results, thread by thread, each thread's in its order.
fn on_each_thread<R: Send>(calls: usize, call: impl Fn(usize, usize) -> R + Sync) -> Vec<R> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let call = &call;
                s.spawn(move || (0..calls).map(|i| call(t, i)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// Eight threads call the sleeping `acquire` (1–3 tokens) on one bucket of 1 000/s, burst 10,
/// on a manual clock: each call reserves its tokens and "sleeps" by moving the clock to their
/// turn. Every call returns; the clock ends exactly at `(tokens − burst) × interval`, so the
/// tokens granted are exactly `burst + rate × elapsed` and never more at any earlier moment
/// (GCRA's bound). A reservation lost to a racing CAS, or a call that returned before its turn,
/// would leave the clock short of that; a lost wake-up would trip the deadline.
#[test]
fn sleeping_acquires_from_eight_threads_never_beat_the_gcra_bound() {
    within("acquire on a manual clock", || {
        let (rate, burst) = (1_000u64, 10u32);
        let interval = 1_000_000u64; // ns per token
        let clock = ManualClock::new();
        let bucket = TokenBucket::with_clock(rate, burst, clock.clone()).unwrap();
        let mut log: Vec<(u64, u32)> = on_each_thread(200, |t, i| {
            let n = 1 + ((t + i) % 3) as u32;
            let tokens = bucket.acquire(n).unwrap();
            assert_eq!(tokens.count(), n);
            // Read after the call returned: at or after the tokens' turn.
            (clock.now(), n)
        });
        assert_eq!(log.len(), THREADS * 200, "every caller returns");
        let total: u64 = log.iter().map(|&(_, n)| u64::from(n)).sum();
        let elapsed = clock.now();
        assert!(
            total * interval <= u64::from(burst) * interval + elapsed,
            "{total} tokens in {elapsed} ns at {rate}/s, burst {burst}: over-admitted"
        );
        assert_eq!(
            elapsed,
            (total - u64::from(burst)) * interval,
            "the reservations did not stack exactly ({total} tokens)"
        );
        // At every moment, the tokens returned so far are within the bound.
        log.sort_unstable();
        let mut so_far = 0u64;
        for (at, n) in log {
            so_far += u64::from(n);
            assert!(
                so_far * interval <= u64::from(burst) * interval + at,
                "{so_far} tokens returned by {at} ns"
            );
        }
        assert_eq!(bucket.available(), 0);
    });
}

/// The same on the real monotonic clock at 200 000/s, burst 20: eight threads, 100 sleeping
/// `acquire(1)` each. Every call returns, and by any moment the calls that have returned hold
/// at most `burst + rate × (time since the bucket was made)` tokens. A call that woke early (a
/// sleep computed short, a clock running ahead of real time) breaks it. Only a lower bound on
/// time is checked, never speed.
#[test]
fn sleeping_acquires_on_the_real_clock_never_beat_the_gcra_bound() {
    within("acquire on the real clock", || {
        let (rate, burst) = (200_000u64, 20u32);
        let start = Instant::now(); // before the bucket exists
        let bucket = TokenBucket::new(rate, burst).unwrap();
        let interval = bucket.interval().as_nanos() as u64;
        let mut returned: Vec<u64> = on_each_thread(100, |_, _| {
            bucket.acquire(1).unwrap();
            start.elapsed().as_nanos() as u64
        });
        assert_eq!(returned.len(), THREADS * 100, "every caller returns");
        returned.sort_unstable();
        for (i, at) in returned.into_iter().enumerate() {
            let so_far = i as u64 + 1;
            assert!(
                so_far * interval <= u64::from(burst) * interval + at,
                "{so_far} tokens returned {at} ns after the start, at {rate}/s, burst {burst}"
            );
        }
    });
}

/// Two threads walk the indices of `admitted`, one up and one down, each calling
/// `try_acquire(i)` `tries` times at each index `i` and counting a pass in `admitted[i]`; any
/// error but `Limited` fails.
fn hit_both_ways<P>(
    tries: usize,
    admitted: &[AtomicU32],
    try_acquire: impl Fn(usize) -> Result<P, RateError> + Sync,
) {
    let n = admitted.len();
    std::thread::scope(|s| {
        for t in 0..2 {
            let try_acquire = &try_acquire;
            s.spawn(move || {
                for j in 0..n {
                    let i = if t == 0 { j } else { n - 1 - j };
                    for _ in 0..tries {
                        match try_acquire(i) {
                            Ok(_) => {
                                admitted[i].fetch_add(1, SeqCst);
                            }
                            Err(RateError::Limited(_)) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
}

/// 5 000 buckets sharing one frozen manual clock (burst 3), each hit 4 times by each of two
/// threads walking them in opposite orders: exactly 3 pass per bucket, neither more (a CAS
/// that lost an update) nor fewer. After one interval, exactly one more passes per bucket.
#[test]
fn five_thousand_buckets_each_admit_exactly_their_burst() {
    within("5 000 buckets", || {
        // 500 under Miri, which runs some thousand times slower.
        const BUCKETS: usize = if cfg!(miri) { 500 } else { 5_000 };
        let clock = ManualClock::new();
        let buckets: Vec<TokenBucket<ManualClock>> = (0..BUCKETS)
            .map(|_| TokenBucket::with_clock(10, 3, clock.clone()).unwrap())
            .collect();
        let admitted: Vec<AtomicU32> = (0..BUCKETS).map(|_| AtomicU32::new(0)).collect();
        let hit = |tries: usize| hit_both_ways(tries, &admitted, |i| buckets[i].try_acquire(1));
        hit(4);
        for (i, a) in admitted.iter().enumerate() {
            assert_eq!(a.load(SeqCst), 3, "bucket {i}");
            assert_eq!(buckets[i].available(), 0);
        }
        clock.advance(Duration::from_millis(100)); // one interval: one token each
        hit(2);
        for (i, a) in admitted.iter().enumerate() {
            assert_eq!(a.load(SeqCst), 4, "bucket {i} after one interval");
        }
    });
}

/// A per-client limiter with 5 000 keys (10/s, burst 2) on a frozen manual clock, each key hit
/// 3 times by each of two threads: exactly 2 pass per key, and the map holds 5 000 keys (none
/// is idle, so no sweep may drop one). Once they go idle (the clock moves `burst / rate`), new
/// keys arriving trigger a sweep before the map reaches twice what the previous sweep left, as
/// the docs promise, and that sweep removes every idle key and no active one; `evict_idle`
/// empties the rest once they idle too. A sweep that dropped an active key would re-admit its
/// burst; one that never ran would let memory grow with every new key.
#[test]
fn five_thousand_keys_admit_their_burst_and_idle_ones_are_swept() {
    within("5 000 keys", || {
        // 1 500 under Miri, which runs some thousand times slower: still past the 1 024 keys
        // at which the first sweep is due.
        const KEYS: u64 = if cfg!(miri) { 1_500 } else { 5_000 };
        let clock = ManualClock::new();
        let keyed: KeyedLimiter<u64, _> = KeyedLimiter::with_clock(10, 2, clock.clone()).unwrap();
        let admitted: Vec<AtomicU32> = (0..KEYS).map(|_| AtomicU32::new(0)).collect();
        hit_both_ways(3, &admitted, |key| keyed.try_acquire(&(key as u64), 1));
        for (key, a) in admitted.iter().enumerate() {
            assert_eq!(a.load(SeqCst), 2, "key {key}");
        }
        assert_eq!(keyed.len(), KEYS as usize, "an active key was swept");

        // Every old key is full again: idle.
        clock.advance(Duration::from_millis(200));
        let mut new = 0u64;
        loop {
            let before = keyed.len();
            keyed.try_acquire(&(KEYS + new), 1).unwrap(); // a new key always passes
            new += 1;
            if keyed.len() <= before {
                break; // swept
            }
            assert!(
                keyed.len() <= 2 * KEYS as usize,
                "{} keys and no sweep, after {new} new keys",
                keyed.len()
            );
        }
        assert_eq!(
            keyed.len(),
            new as usize,
            "the sweep must drop every idle key and keep the {new} active ones"
        );
        // The active keys kept their state: each has spent one token.
        assert_eq!(keyed.available(&KEYS), 1);
        assert_eq!(keyed.available(&0), 2, "an idle key comes back full");

        clock.advance(Duration::from_millis(200));
        assert_eq!(keyed.evict_idle(), new as usize);
        assert!(keyed.is_empty());
    });
}

/// "5 a minute per user": a keyed limiter under one token per second (`every`), on a manual
/// clock. Each key admits its burst of 5, then one more per 12 s; an idle key is swept once a
/// whole window (a minute) has passed, and not before.
#[test]
fn a_keyed_limiter_under_one_per_second_refills_per_interval() {
    let clock = ManualClock::new();
    let per_user: KeyedLimiter<String, _> =
        KeyedLimiter::every_with_clock(Duration::from_secs(12), 5, clock.clone()).unwrap();
    for user in ["ada", "bob"] {
        assert_eq!(
            (0..10)
                .filter(|_| per_user.try_acquire(user, 1).is_ok())
                .count(),
            5
        );
    }
    clock.advance(Duration::from_secs(11));
    assert!(
        per_user.try_acquire("ada", 1).is_err(),
        "11 s: no token yet"
    );
    clock.advance(Duration::from_secs(1));
    assert!(per_user.try_acquire("ada", 1).is_ok(), "12 s: one token");
    assert!(per_user.try_acquire("ada", 1).is_err());
    clock.advance(Duration::from_secs(47));
    assert_eq!(per_user.evict_idle(), 0, "59 s: bob is not full yet");
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        per_user.evict_idle(),
        1,
        "bob, idle for a minute, goes; ada does not"
    );
    assert_eq!(per_user.available("ada"), 4);
    assert!(KeyedLimiter::<u8>::every(Duration::ZERO, 5).is_err());
}

thread_local! {
    /// Armed on a thread, the next [`PausingKey`] hash there reports on the first channel and
    /// waits on the second.
    static PAUSE_IN_HASH: RefCell<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>> =
        const { RefCell::new(None) };
}

/// A key whose hash can hold a request between its clock read and its shard lookup, where a
/// real request waits for a shard lock that an insert or a sweep holds.
#[derive(Clone, PartialEq, Eq)]
struct PausingKey(u64);

impl Hash for PausingKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if let Some((reached, go_on)) = PAUSE_IN_HASH.with(|p| p.borrow_mut().take()) {
            reached.send(()).unwrap();
            go_on.recv().unwrap();
        }
        self.0.hash(state);
    }
}

/// A request that read the clock, then waited while a sweep evicted its key (full by the
/// sweep's time), is decided at the time it gets the lock, not at its earlier reading: at 1 a
/// second with a burst of 1, it and a request at the sweep's time cannot both pass. (Stepped at
/// the earlier reading, the new bucket let both through: two tokens at t = 2 s.)
#[test]
fn a_request_whose_key_is_evicted_while_it_waits_still_keeps_to_the_burst() {
    within("evicted while waiting", || {
        let clock = ManualClock::new();
        let limiter: KeyedLimiter<PausingKey, _> =
            KeyedLimiter::with_clock(1, 1, clock.clone()).unwrap();
        let key = PausingKey(7);
        limiter.try_acquire(&key, 1).unwrap(); // t = 0: the burst spent, full again at 1 s
        clock.set(500_000_000);
        let (reached_tx, reached) = mpsc::channel();
        let (go_on, go_on_rx) = mpsc::channel();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                PAUSE_IN_HASH.with(|p| *p.borrow_mut() = Some((reached_tx, go_on_rx)));
                limiter.try_acquire(&key, 1).is_ok() // reads t = 0.5 s, then pauses
            });
            recv(&reached, "the request reading the clock");
            clock.set(2_000_000_000);
            assert_eq!(limiter.evict_idle(), 1, "t = 2 s: the key is full and goes");
            go_on.send(()).unwrap();
            assert!(
                waiter.join().unwrap(),
                "the waiting request passes, at t = 2 s"
            );
            assert!(
                limiter.try_acquire(&key, 1).is_err(),
                "a second request at t = 2 s would be past the burst of 1"
            );
        });
    });
}

/// An owned permit taken on one thread, moved to a second and dropped there, wakes a waiter
/// parked on a third: the release does not depend on the thread that acquired.
#[test]
fn an_owned_permit_dropped_on_another_thread_wakes_a_waiter_on_a_third() {
    within("owned permit across threads", || {
        let sem = Arc::new(Semaphore::new(5));
        let (to_dropper, permits) = mpsc::channel::<OwnedPermit>();
        let taker = {
            let sem = Arc::clone(&sem);
            std::thread::spawn(move || to_dropper.send(sem.acquire_owned(5).unwrap()).unwrap())
        };
        taker.join().unwrap(); // the thread that acquired is gone
        let waiter = {
            let sem = Arc::clone(&sem);
            std::thread::spawn(move || sem.acquire(3).map(|p| p.weight()))
        };
        wait_until("the waiter queues", || sem.waiting() == 1);
        let permit = recv(&permits, "the permit");
        assert_eq!((permit.weight(), sem.available()), (5, 0));
        std::thread::spawn(move || drop(permit)).join().unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(3));
        assert_eq!((sem.available(), sem.waiting()), (5, 0));
        assert_eq!(Arc::strong_count(&sem), 1, "a permit kept its reference");
    });
}

/// Eight threads take weights 1–4 from a semaphore of 5 (borrowed, owned, with and without a
/// timeout) and hand each owned permit to a dropper thread that releases it. The weights held,
/// counted up after each grant and down before each release, never pass 5, and `available`
/// never reads over 5; at the end every permit is back and nobody waits. An over-grant, or a
/// release counted twice, breaks one of these.
#[test]
fn weighted_permits_held_across_threads_never_exceed_the_total() {
    within("weighted churn", || {
        const TOTAL: u32 = 5;
        let sem = Arc::new(Semaphore::new(TOTAL));
        let held = Arc::new(AtomicUsize::new(0));
        let granted = Arc::new(AtomicU64::new(0));
        let (to_dropper, permits) = mpsc::channel::<(u32, OwnedPermit)>();
        let dropper = {
            let held = Arc::clone(&held);
            std::thread::spawn(move || {
                for (w, permit) in permits {
                    assert_eq!(permit.weight(), w);
                    held.fetch_sub(w as usize, SeqCst);
                    drop(permit);
                }
            })
        };
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (sem, held, granted, to_dropper) = (&sem, &held, &granted, to_dropper.clone());
                s.spawn(move || {
                    for i in 0..300usize {
                        let w = 1 + ((t + i) % 4) as u32;
                        let check = |now: usize| {
                            assert!(now <= TOTAL as usize, "{now} permits held of {TOTAL}");
                            assert!(sem.available() <= TOTAL, "{sem:?}");
                            granted.fetch_add(1, SeqCst);
                        };
                        match i % 3 {
                            // Borrowed, released on this thread.
                            0 => {
                                let p = sem.acquire(w).unwrap();
                                check(held.fetch_add(w as usize, SeqCst) + w as usize);
                                held.fetch_sub(w as usize, SeqCst);
                                drop(p);
                            }
                            // Owned, released on the dropper thread.
                            1 => {
                                let p = sem.acquire_owned(w).unwrap();
                                check(held.fetch_add(w as usize, SeqCst) + w as usize);
                                to_dropper.send((w, p)).unwrap();
                            }
                            _ => match sem.acquire_timeout_owned(w, Duration::from_micros(200)) {
                                Ok(p) => {
                                    check(held.fetch_add(w as usize, SeqCst) + w as usize);
                                    to_dropper.send((w, p)).unwrap();
                                }
                                Err(AcquireTimeoutError::Timeout) => {}
                                Err(e) => panic!("{e}"),
                            },
                        }
                    }
                });
            }
        });
        drop(to_dropper);
        dropper.join().unwrap();
        assert!(granted.load(SeqCst) >= (THREADS * 200) as u64);
        assert_eq!(held.load(SeqCst), 0);
        assert_eq!(
            (sem.total(), sem.available(), sem.waiting()),
            (TOTAL, TOTAL, 0),
            "a permit was lost"
        );
        assert_eq!(Arc::strong_count(&sem), 1, "a permit kept its reference");
    });
}

/// FIFO: a request for 4 of 5 permits queues while all 5 are held, then six threads stream
/// requests for 1 behind it. As the held permits come back one by one, none goes to a small
/// request (a `try_acquire(1)` is refused while 1–3 are free: no barging), and the big request
/// is granted before any small one; then the small ones all finish. A semaphore that let small
/// requests take free permits past a queued big one would starve it (here: trip the deadline or
/// the count).
#[test]
fn a_big_request_is_not_starved_by_a_stream_of_small_ones() {
    within("big behind small", || {
        let sem = Arc::new(Semaphore::new(5));
        let mut mine: Vec<OwnedPermit> =
            (0..5).map(|_| sem.try_acquire_owned(1).unwrap()).collect();
        let small_grants = Arc::new(AtomicUsize::new(0));
        let (big_granted, big_rx) = mpsc::channel();
        let (big_release, release_rx) = mpsc::channel::<()>();
        let big = {
            let (sem, small_grants) = (Arc::clone(&sem), Arc::clone(&small_grants));
            std::thread::spawn(move || {
                let p = sem.acquire(4).unwrap();
                big_granted.send(small_grants.load(SeqCst)).unwrap();
                recv(&release_rx, "the release signal");
                drop(p);
            })
        };
        wait_until("the big request queues", || sem.waiting() == 1);
        let smalls: Vec<_> = (0..6)
            .map(|_| {
                let (sem, small_grants) = (Arc::clone(&sem), Arc::clone(&small_grants));
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let p = sem.acquire(1).unwrap();
                        small_grants.fetch_add(1, SeqCst);
                        drop(p);
                    }
                })
            })
            .collect();
        wait_until("the small requests queue behind it", || sem.waiting() == 7);
        for freed in 1..=3 {
            drop(mine.pop());
            assert_eq!(sem.available(), freed);
            assert_eq!(
                sem.try_acquire(1).unwrap_err(),
                TryAcquireError::NoPermits,
                "barged past the queued big request"
            );
            assert_eq!(small_grants.load(SeqCst), 0, "a small request barged");
        }
        drop(mine.pop()); // 4 free: the big request's turn
        let smalls_before_big = recv(&big_rx, "the big request's grant");
        assert_eq!(smalls_before_big, 0, "small requests went first");
        assert_eq!(sem.available(), 0);
        drop(mine.pop());
        big_release.send(()).unwrap();
        big.join().unwrap();
        for small in smalls {
            small.join().unwrap();
        }
        assert_eq!(small_grants.load(SeqCst), 6 * 200);
        assert_eq!((sem.available(), sem.waiting()), (5, 0));
    });
}

thread_local! {
    /// A permit kept until the thread exits, dropped by its thread-local destructor.
    static KEPT: RefCell<Option<OwnedPermit>> = const { RefCell::new(None) };
}

/// Eight threads each take 1 or 2 of 6 permits and exit still holding them: six keep theirs in
/// a thread-local (released by its destructor at exit), two panic while holding (released by
/// the unwind). Those that must wait get their permits from threads that exited; once all have
/// been joined, every permit is back and nobody waits. A permit leaked at exit (a destructor
/// that does not release) shows as a lower `available` or a waiter left behind.
#[test]
fn threads_that_exit_holding_permits_give_them_back() {
    within("exiting holders", || {
        let sem = Arc::new(Semaphore::new(6));
        let start = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (sem, start) = (Arc::clone(&sem), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    let w = 1 + (t % 2) as u32;
                    let permit = sem.acquire_owned(w).unwrap();
                    if t % 4 == 3 {
                        let _held = permit;
                        panic!("thread {t} exits by panicking while it holds {w}");
                    }
                    KEPT.with(|kept| *kept.borrow_mut() = Some(permit));
                })
            })
            .collect();
        let panicked = handles
            .into_iter()
            .map(|h| h.join()) // a join waits for the thread's locals to be destroyed
            .filter(Result::is_err)
            .count();
        assert_eq!(panicked, 2);
        assert_eq!(
            (sem.total(), sem.available(), sem.waiting()),
            (6, 6, 0),
            "a permit was lost at thread exit"
        );
        assert_eq!(
            Arc::strong_count(&sem),
            1,
            "an exited thread kept its reference"
        );
    });
}

/// `close` while eight threads wait on a fully held semaphore (borrowed, owned, and with a 60 s
/// timeout): every waiter wakes at once with `Closed`, not a grant, a timeout or a hang; later
/// requests fail with `Closed` too; and the permits held across the close still come back.
#[test]
fn close_wakes_every_waiter_with_an_error_and_held_permits_still_return() {
    within("close", || {
        let sem = Arc::new(Semaphore::new(3));
        let held: Vec<OwnedPermit> = (0..3).map(|_| sem.acquire_owned(1).unwrap()).collect();
        let waiters: Vec<_> = (0..THREADS)
            .map(|t| {
                let sem = Arc::clone(&sem);
                std::thread::spawn(move || {
                    let w = 1 + (t % 3) as u32;
                    match t % 3 {
                        0 => sem.acquire(w).map(drop).map_err(|e| e.is_closed()),
                        1 => sem.acquire_owned(w).map(drop).map_err(|e| e.is_closed()),
                        _ => sem
                            .acquire_timeout(w, Duration::from_secs(60))
                            .map(drop)
                            .map_err(|e| e == AcquireTimeoutError::Closed),
                    }
                })
            })
            .collect();
        wait_until("all eight wait", || sem.waiting() == THREADS);
        sem.close();
        for (t, waiter) in waiters.into_iter().enumerate() {
            assert_eq!(waiter.join().unwrap(), Err(true), "waiter {t}");
        }
        assert!(sem.is_closed());
        assert_eq!(sem.waiting(), 0);
        assert_eq!(sem.acquire(1).unwrap_err(), AcquireError::Closed);
        assert_eq!(sem.try_acquire(1).unwrap_err(), TryAcquireError::Closed);
        assert_eq!(
            sem.acquire_timeout(1, Duration::ZERO).unwrap_err(),
            AcquireTimeoutError::Closed
        );
        assert_eq!(sem.available(), 0);
        drop(held);
        assert_eq!((sem.total(), sem.available()), (3, 3));
    });
}

/// Eight threads, 5 000 calls each, on a gate of 3, each holding its admission briefly: the
/// number inside (an atomic high-water mark) never passes 3, every refusal is `None`, counted
/// in `shed`, and `admitted + shed` is every call; with the gate full, all eight threads are
/// refused at once; afterwards nothing is left in flight. A lost decrement would leave the
/// count above 0 and shed everything after; an over-admission shows in the high-water mark.
#[test]
fn in_flight_sheds_beyond_its_limit_and_drains_to_zero() {
    within("in-flight gate", || {
        const MAX: usize = 3;
        const CALLS: usize = 5_000;
        let gate = InFlight::new(MAX);
        let (inside, high, ours_admitted, ours_shed) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicU64::new(0),
            AtomicU64::new(0),
        );
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for i in 0..CALLS {
                        match gate.try_enter() {
                            Some(permit) => {
                                let now = inside.fetch_add(1, SeqCst) + 1;
                                high.fetch_max(now, SeqCst);
                                assert!(now <= MAX, "{now} inside a gate of {MAX}");
                                if i % 64 == 0 {
                                    std::thread::yield_now(); // hold it across a reschedule
                                }
                                inside.fetch_sub(1, SeqCst);
                                drop(permit);
                                ours_admitted.fetch_add(1, SeqCst);
                            }
                            None => {
                                ours_shed.fetch_add(1, SeqCst);
                            }
                        }
                    }
                });
            }
        });
        assert!(high.load(SeqCst) <= MAX);
        assert_eq!(gate.admitted(), ours_admitted.load(SeqCst));
        assert_eq!(gate.shed(), ours_shed.load(SeqCst));
        assert_eq!(gate.admitted() + gate.shed(), (THREADS * CALLS) as u64);
        assert_eq!(gate.in_flight(), 0, "an admission never left");

        // Full: everyone is shed at once, and the permits leave from other threads.
        let full: Vec<_> = (0..MAX).map(|_| gate.try_enter().unwrap()).collect();
        let shed_before = gate.shed();
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| assert!(gate.try_enter().is_none(), "admitted past a full gate"));
            }
        });
        assert_eq!(gate.shed(), shed_before + THREADS as u64);
        std::thread::scope(|s| {
            s.spawn(move || drop(full));
        });
        assert_eq!(gate.in_flight(), 0);
        assert!(gate.try_enter().is_some());
    });
}

/// The shape the module's "acquire before spawning" asks for, with the gate in an `Arc`: each
/// request is admitted on the accepting thread and its owned permit moves into a spawned
/// thread, which may outlive the accept loop. Never more than `MAX` inside (the workers count
/// themselves), the ones past it shed at once, and when every worker has dropped its permit the
/// gate is empty and only the test's own `Arc` is left.
#[test]
fn in_flight_owned_permits_move_into_spawned_threads() {
    within("in-flight owned permits", || {
        const MAX: usize = 4;
        let gate = std::sync::Arc::new(InFlight::new(MAX));
        let inside = std::sync::Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        let mut shed = 0;
        for _ in 0..200 {
            let Some(admitted) = gate.try_enter_owned() else {
                shed += 1;
                std::thread::yield_now();
                continue;
            };
            let inside = std::sync::Arc::clone(&inside);
            workers.push(std::thread::spawn(move || {
                let now = inside.fetch_add(1, SeqCst) + 1;
                assert!(now <= MAX, "{now} inside a gate of {MAX}");
                std::thread::yield_now();
                inside.fetch_sub(1, SeqCst);
                drop(admitted);
            }));
        }
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(gate.shed(), shed);
        assert_eq!(gate.admitted() + gate.shed(), 200);
        assert_eq!(gate.in_flight(), 0, "a moved permit never left");
        assert_eq!(
            std::sync::Arc::strong_count(&gate),
            1,
            "a permit kept the gate"
        );
    });
}

/// Settings that cannot work are refused with the documented typed errors, the documented
/// panics are the only panics, a request over the capacity fails at once with
/// `InsufficientCapacity` (never waits), and extreme values (u32::MAX permits and bursts, the
/// longest accepted interval, `Duration::MAX` timeouts, a manual clock at its end) neither
/// panic nor hang.
#[test]
fn bad_and_extreme_settings_are_refused_or_handled() {
    within("bad settings", || {
        // Rates and bursts.
        assert_eq!(TokenBucket::new(0, 1).unwrap_err(), LimitError::ZeroRate);
        assert_eq!(TokenBucket::new(1, 0).unwrap_err(), LimitError::ZeroBurst);
        assert_eq!(
            TokenBucket::new(u64::MAX, 1).unwrap_err(),
            LimitError::RateTooHigh { rate: u64::MAX }
        );
        assert_eq!(
            TokenBucket::every(Duration::ZERO, 1).unwrap_err(),
            LimitError::ZeroInterval
        );
        assert_eq!(
            TokenBucket::every(Duration::MAX, 1).unwrap_err(),
            LimitError::IntervalTooLong {
                interval: Duration::MAX,
                burst: 1
            }
        );
        assert!(matches!(
            TokenBucket::every(Duration::from_nanos(u64::MAX), 2),
            Err(LimitError::IntervalTooLong { burst: 2, .. })
        ));
        let keyed = KeyedLimiter::<u32, _>::with_clock(0, 1, ManualClock::new());
        assert_eq!(keyed.unwrap_err(), LimitError::ZeroRate);
        let keyed = KeyedLimiter::<u32, _>::with_clock(1, 0, ManualClock::new());
        assert_eq!(keyed.unwrap_err(), LimitError::ZeroBurst);
        // Permits.
        assert_eq!(Semaphore::try_new(0).unwrap_err(), LimitError::ZeroPermits);
        assert_eq!(InFlight::try_new(0).unwrap_err(), LimitError::ZeroPermits);
        assert!(
            std::panic::catch_unwind(|| Semaphore::new(0)).is_err(),
            "documented panic"
        );
        assert!(
            std::panic::catch_unwind(|| InFlight::new(0)).is_err(),
            "documented panic"
        );

        // Requests over the capacity: at once, typed.
        let over = InsufficientCapacity {
            requested: 6,
            capacity: 5,
        };
        let clock = ManualClock::new();
        let bucket = TokenBucket::with_clock(1, 5, clock.clone()).unwrap();
        assert_eq!(bucket.acquire(6).unwrap_err(), over);
        assert_eq!(
            bucket.try_acquire(6).unwrap_err(),
            RateError::InsufficientCapacity(over)
        );
        assert_eq!(clock.now(), 0, "a request over the burst must not sleep");
        let keyed: KeyedLimiter<u32, _> = KeyedLimiter::with_clock(1, 5, clock).unwrap();
        assert_eq!(
            keyed.try_acquire(&1, 6).unwrap_err(),
            RateError::InsufficientCapacity(over)
        );
        let sem = Arc::new(Semaphore::new(5));
        let _busy = sem.acquire(1).unwrap(); // over the total even while busy: no wait
        assert_eq!(
            sem.acquire(6).unwrap_err(),
            AcquireError::InsufficientCapacity(over)
        );
        assert_eq!(
            sem.acquire_owned(6).unwrap_err(),
            AcquireError::InsufficientCapacity(over)
        );
        assert_eq!(
            sem.try_acquire(6).unwrap_err(),
            TryAcquireError::InsufficientCapacity(over)
        );
        assert_eq!(
            sem.acquire_timeout(6, Duration::MAX).unwrap_err(),
            AcquireTimeoutError::InsufficientCapacity(over)
        );
        let all = InsufficientCapacity {
            requested: u32::MAX,
            capacity: 5,
        };
        assert_eq!(
            sem.acquire(u32::MAX).unwrap_err(),
            AcquireError::InsufficientCapacity(all)
        );

        // u32::MAX permits: the whole word, and back.
        let huge = Semaphore::new(u32::MAX);
        let everything = huge.acquire(u32::MAX).unwrap();
        assert_eq!(huge.try_acquire(1).unwrap_err(), TryAcquireError::NoPermits);
        drop(everything);
        assert_eq!((huge.available(), huge.total()), (u32::MAX, u32::MAX));
        let gate = InFlight::new(usize::MAX);
        assert!(gate.try_enter().is_some());

        // Duration::MAX timeouts: granted at once when free, and after a release when not (the
        // release waits until the second acquire is in line, so that it does wait).
        let one = Arc::new(Semaphore::new(1));
        let p = one.acquire_timeout_owned(1, Duration::MAX).unwrap();
        let releaser = std::thread::spawn({
            let one = Arc::clone(&one);
            move || {
                while one.waiting() == 0 {
                    std::thread::yield_now();
                }
                drop(p);
            }
        });
        let again = one.acquire_timeout_owned(1, Duration::MAX).unwrap();
        releaser.join().unwrap();
        assert_eq!(
            one.acquire_timeout(1, Duration::ZERO).unwrap_err(),
            AcquireTimeoutError::Timeout
        );
        drop(again);
        assert_eq!((one.available(), one.waiting()), (1, 0));

        // u32::MAX bursts: the largest rate and the slowest, both accepted, whole burst passes.
        let clock = ManualClock::new();
        let fast = TokenBucket::with_clock(1_000_000_000, u32::MAX, clock.clone()).unwrap();
        assert_eq!(fast.try_acquire(u32::MAX).unwrap().count(), u32::MAX);
        assert!(fast.try_acquire(1).is_err());
        assert_eq!(fast.acquire(u32::MAX).unwrap().count(), u32::MAX); // sleeps ~4.3 s, manually
        assert_eq!(clock.now(), u64::from(u32::MAX));
        let slow = TokenBucket::with_clock(1, u32::MAX, ManualClock::new()).unwrap();
        assert_eq!(slow.available(), u32::MAX);
        let keyed: KeyedLimiter<u8, _> =
            KeyedLimiter::with_clock(1, u32::MAX, ManualClock::new()).unwrap();
        assert!(keyed.try_acquire(&0, u32::MAX).is_ok());
        assert!(keyed.try_acquire(&0, 1).is_err());

        // The longest accepted interval (burst 1): sleeping acquires stack past the clock's
        // end without overflow or a hang; the clock stops at its end.
        let clock = ManualClock::new();
        let longest = Duration::from_nanos(u64::MAX / 4);
        let bucket = TokenBucket::every_with_clock(longest, 1, clock.clone()).unwrap();
        for _ in 0..6 {
            assert_eq!(bucket.acquire(1).unwrap().count(), 1);
        }
        assert_eq!(clock.now(), ManualClock::MAX_NANOS);
        assert!(bucket.try_acquire(1).unwrap_err().retry_after().is_some());

        // A manual clock advanced by Duration::MAX stops at its end; a bucket made there
        // still admits exactly its burst.
        let clock = ManualClock::new();
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), ManualClock::MAX_NANOS);
        let late = TokenBucket::with_clock(10, 3, clock.clone()).unwrap();
        let passed = (0..10).filter(|_| late.try_acquire(1).is_ok()).count();
        assert_eq!(passed, 3);
    });
}

/// A key whose `Clone` calls the limiter it is a key of: the doc says a key's `to_owned` runs
/// under the shard lock, so the call panics with the map's re-entrancy message instead of
/// running unguarded (it ran before the lock once, so such a call silently went through), and
/// the panic leaves no count behind: the limiter holds no key and the next request is served.
#[test]
fn a_key_whose_clone_calls_its_own_limiter_panics_and_leaves_no_entry_counted() {
    use std::sync::OnceLock;
    static LIMITER: OnceLock<KeyedLimiter<Meddling>> = OnceLock::new();
    static MEDDLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    #[derive(Hash, PartialEq, Eq)]
    struct Meddling(u32);
    impl Clone for Meddling {
        fn clone(&self) -> Self {
            if MEDDLE.swap(false, SeqCst) {
                let _ = LIMITER.get().unwrap().available(&Meddling(u32::MAX));
            }
            Meddling(self.0)
        }
    }
    within("a meddling key", || {
        let limiter = LIMITER.get_or_init(|| KeyedLimiter::new(10, 1).unwrap());
        let call = std::panic::AssertUnwindSafe(|| limiter.try_acquire(&Meddling(1), 1));
        let panic = std::panic::catch_unwind(call).unwrap_err();
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or("");
        assert!(
            message.starts_with("ShardedMap:"),
            "the re-entrancy panic: {message:?}"
        );
        assert_eq!(limiter.len(), 0, "no key was inserted");
        assert!(
            limiter.try_acquire(&Meddling(1), 1).is_ok(),
            "then served as a new key"
        );
        assert_eq!(limiter.len(), 1);
    });
}
