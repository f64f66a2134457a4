//! The limit table: one shared rate limiter asked by every thread, every request admitted (the
//! limit is far above the load), so the rows compare the cost of saying yes, after a first
//! workload that times one reading of each clock (the read is most of a request): thrifty's
//! `TokenBucket` (GCRA, one CAS, its default clock: the TSC where the kernel keeps time on it,
//! else std's `Instant`), `governor` (GCRA, one CAS, quanta's TSC clock), each also on std's
//! `Instant` ("std clock": thrifty's `MonotonicClock::std_instant`, governor's
//! `MonotonicClock`), governor on its `QuantaUpkeepClock` (a cached time, one atomic load,
//! refreshed every 1 ms by an upkeep thread; it can lag and refuse, so the table notes its
//! refusals), thrifty on quanta's clock through `limit::Clock`, and a `Mutex` around a
//! textbook bucket. Then one permit taken
//! and given back on a semaphore shared by every thread, against a `Mutex` + `Condvar`
//! semaphore: with a permit for every thread (nobody waits), and with permits for half of them
//! (half the threads wait; thrifty hands a freed permit to the longest waiter, the `Condvar`
//! semaphore lets whoever asks first take it).

use crate::harness::{Candidate, Harness};
use governor::clock::{MonotonicClock as StdClock, QuantaUpkeepClock};
use governor::{Quota, RateLimiter};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use thrifty::limit::{Clock, MonotonicClock, Semaphore, TokenBucket};

/// governor's TSC clock behind thrifty's `Clock`: the same algorithm with governor's clock.
struct QuantaClock(quanta::Clock, quanta::Instant);

impl Clock for QuantaClock {
    fn now(&self) -> u64 {
        self.0.now().duration_since(self.1).as_nanos() as u64
    }
}

const RATE: u32 = 1_000_000_000;
const BURST: u32 = 1_000_000;

pub fn run(h: &mut Harness) {
    let mut t = h.table(
        "limit",
        "one shared limiter, every thread asks (all admitted)",
    );
    clock_reads(&mut t);
    for threads in t.threads(&[1, 2]) {
        let bucket = Arc::new(TokenBucket::new(u64::from(RATE), BURST).unwrap());
        let bucket_std = Arc::new(
            TokenBucket::with_clock(u64::from(RATE), BURST, MonotonicClock::std_instant()).unwrap(),
        );
        let quota = Quota::per_second(NonZeroU32::new(RATE).unwrap())
            .allow_burst(NonZeroU32::new(BURST).unwrap());
        let governor = Arc::new(RateLimiter::direct(quota));
        let governor_std = Arc::new(RateLimiter::direct_with_clock(quota, StdClock));
        // governor's documented fast clock: one atomic load, refreshed by an upkeep thread
        // (quanta allows one at a time: the last workload's is stopped when its rows drop).
        let upkeep = QuantaUpkeepClock::from_interval(Duration::from_millis(1))
            .expect("quanta's upkeep thread");
        let governor_upkeep = Arc::new(RateLimiter::direct_with_clock(quota, upkeep));
        // Requests it refused, and requests asked, over every round: a clock that lags (an
        // upkeep thread waiting for a core) can refuse where the others admit.
        let upkeep_counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let counts = Arc::clone(&upkeep_counts);
        let q = quanta::Clock::new();
        let start = q.now();
        let quanta = Arc::new(
            TokenBucket::with_clock(u64::from(RATE), BURST, QuantaClock(q, start)).unwrap(),
        );
        let mutex = Arc::new(Mutex::new((f64::from(BURST), Instant::now())));
        t.workload(
            "try_acquire(1)",
            threads,
            vec![
                Candidate::std("Mutex<bucket>", move |_, ops| {
                    for _ in 0..ops {
                        let now = Instant::now();
                        let mut s = mutex.lock().unwrap();
                        let tokens = (s.0
                            + now.duration_since(s.1).as_secs_f64() * f64::from(RATE))
                        .min(f64::from(BURST));
                        let ok = tokens >= 1.0;
                        *s = (if ok { tokens - 1.0 } else { tokens }, now);
                        black_box(ok);
                    }
                }),
                Candidate::new("governor direct", move |_, ops| {
                    for _ in 0..ops {
                        black_box(governor.check().is_ok());
                    }
                }),
                Candidate::new("governor direct, std clock", move |_, ops| {
                    for _ in 0..ops {
                        black_box(governor_std.check().is_ok());
                    }
                }),
                Candidate::new("governor direct, QuantaUpkeepClock 1 ms", move |_, ops| {
                    let mut refused = 0u64;
                    for _ in 0..ops {
                        refused += u64::from(!black_box(governor_upkeep.check().is_ok()));
                    }
                    counts[0].fetch_add(refused, Relaxed);
                    counts[1].fetch_add(ops, Relaxed);
                }),
                Candidate::new("thrifty TokenBucket", move |_, ops| {
                    for _ in 0..ops {
                        black_box(bucket.try_acquire(black_box(1)).is_ok());
                    }
                }),
                Candidate::new("thrifty TokenBucket, std clock", move |_, ops| {
                    for _ in 0..ops {
                        black_box(bucket_std.try_acquire(black_box(1)).is_ok());
                    }
                }),
                Candidate::new("thrifty TokenBucket, quanta clock", move |_, ops| {
                    for _ in 0..ops {
                        black_box(quanta.try_acquire(black_box(1)).is_ok());
                    }
                }),
            ],
        );
        t.note(format!(
            "  try_acquire(1), {threads} thread(s): governor on QuantaUpkeepClock refused {} of \
             {} requests",
            upkeep_counts[0].load(Relaxed),
            upkeep_counts[1].load(Relaxed)
        ));
        // Permits for every thread (nobody waits), then for half of them (half wait).
        semaphore(&mut t, threads, threads, "semaphore acquire+release");
        if threads > 1 {
            let label = "semaphore, permits for half";
            semaphore(&mut t, threads, threads / 2, label);
        }
    }
}

/// What one reading of each clock costs, on one thread: std's `Instant`, quanta's (governor's
/// default), thrifty's `MonotonicClock`, and on x86-64 the bare and fenced `RDTSC` the TSC
/// clocks are built on (the fenced one is what thrifty does *not* do, see `src/limit/tsc.rs`).
fn clock_reads(t: &mut crate::harness::Table<'_>) {
    let epoch = Instant::now();
    let q = quanta::Clock::new();
    let clock = MonotonicClock::new();
    let source = if clock.uses_tsc() {
        "the TSC"
    } else {
        "std's Instant"
    };
    t.note(format!("thrifty MonotonicClock here reads {source}"));
    let mut candidates = vec![
        Candidate::std("Instant::now()", move |_, ops| {
            for _ in 0..ops {
                black_box(epoch.elapsed());
            }
        }),
        Candidate::new("quanta Clock::now()", move |_, ops| {
            for _ in 0..ops {
                black_box(q.now());
            }
        }),
        Candidate::new("thrifty MonotonicClock::now()", move |_, ops| {
            for _ in 0..ops {
                black_box(clock.now());
            }
        }),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_lfence, _rdtsc};
        candidates.push(Candidate::new("RDTSC, bare", |_, ops| {
            for _ in 0..ops {
                // SAFETY: RDTSC is in the x86-64 baseline and touches no memory.
                black_box(unsafe { _rdtsc() });
            }
        }));
        candidates.push(Candidate::new("LFENCE; RDTSC", |_, ops| {
            for _ in 0..ops {
                // SAFETY: LFENCE and RDTSC are in the x86-64 baseline; neither touches memory.
                black_box(unsafe {
                    _mm_lfence();
                    _rdtsc()
                });
            }
        }));
    }
    t.workload("clock read", 1, candidates);
}

/// One permit taken and given back by every thread, `permits` shared among `threads`.
fn semaphore(t: &mut crate::harness::Table<'_>, threads: usize, permits: usize, label: &str) {
    let sem = Arc::new(Semaphore::new(permits as u32));
    // (free permits, waiting threads): notify only when someone waits, since std's
    // `notify_one` makes a system call even with no waiter.
    let std_sem = Arc::new((Mutex::new((permits as u32, 0u32)), Condvar::new()));
    t.workload(
        label,
        threads,
        vec![
            Candidate::std("Mutex+Condvar", move |_, ops| {
                let (lock, freed) = &*std_sem;
                for _ in 0..ops {
                    let mut s = lock.lock().unwrap();
                    while s.0 == 0 {
                        s.1 += 1;
                        s = freed.wait(s).unwrap();
                        s.1 -= 1;
                    }
                    s.0 -= 1;
                    drop(s);
                    let mut s = lock.lock().unwrap();
                    s.0 += 1;
                    let waiting = s.1 > 0;
                    drop(s);
                    if waiting {
                        freed.notify_one();
                    }
                }
            }),
            Candidate::new("thrifty Semaphore", move |_, ops| {
                for _ in 0..ops {
                    drop(black_box(sem.acquire(black_box(1)).unwrap()));
                }
            }),
        ],
    );
}
