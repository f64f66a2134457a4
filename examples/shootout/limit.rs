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
//! semaphore lets whoever asks first take it). Throughput alone favours the second by
//! construction (the thread that just released takes the permit straight back, no wake-up), so
//! the half-permits workload runs once more with every acquire timed, and the table's notes
//! give what FIFO is for: the tail of one acquire's wait, and each thread's share of the
//! acquisitions. Past 2 threads, one permit for all of them: a line always forms there, and
//! each FIFO hand-over waits until the scheduler runs the waiter it went to (with more threads
//! than CPUs, a switch). The last lines give each semaphore's CPU time per acquire (and its
//! release): a waiter that spins spends it where one that sleeps does not.

#[path = "../common/condvar_semaphore.rs"]
mod condvar_semaphore;
use crate::harness::{timed_round, Candidate, Harness, Table};
use crate::histogram::{fmt_us, Histogram};
use condvar_semaphore::CondvarSemaphore;
use governor::clock::{MonotonicClock as StdClock, QuantaUpkeepClock};
use governor::{Quota, RateLimiter};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thrifty::limit::{Clock, Fairness, MonotonicClock, Semaphore, TokenBucket};

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
        "one shared limiter, every thread asks (all admitted, but for the refusals noted for \
         governor on its cached clock)",
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
        // Permits for every thread (nobody waits), then for half of them (half wait), then one
        // for all past 2 threads (a line forms: each hand-over goes to the longest waiter, who
        // must be scheduled to take it). Their waits spin or sleep: the CPU-time lines show what
        // each spends.
        t.cpu_time("acquire");
        semaphore(&mut t, threads, threads, "semaphore acquire+release");
        if threads > 1 {
            let label = "semaphore, permits for half";
            semaphore(&mut t, threads, threads / 2, label);
            semaphore_timed(&mut t, threads, threads / 2);
        }
        if threads > 2 {
            semaphore(&mut t, threads, 1, "semaphore, one permit");
        }
        t.cpu_time_off();
    }
}

/// What one reading of each clock costs, on one thread: std's `Instant` (`elapsed`), quanta's
/// (governor's default), thrifty's `MonotonicClock`, and on x86-64 the bare and fenced `RDTSC`
/// the TSC clocks are built on (the fenced one is what thrifty does *not* do, see
/// `src/limit/tsc.rs`).
fn clock_reads(t: &mut Table<'_>) {
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
        // std's form of thrifty's `now()` (the time since an epoch): `Instant::now()` and a
        // subtraction.
        Candidate::std("Instant::elapsed()", move |_, ops| {
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

/// The barging semaphore's patience in these tables: a waiter is overtaken for about 1 ms at
/// most.
const PATIENCE: Duration = Duration::from_millis(1);

/// One permit taken and given back by every thread, `permits` shared among `threads`.
fn semaphore(t: &mut Table<'_>, threads: usize, permits: usize, label: &str) {
    let sem = Arc::new(Semaphore::new(permits as u32));
    let barging = Arc::new(Semaphore::with_fairness(
        permits as u32,
        Fairness::Eventual(PATIENCE),
    ));
    let std_sem = Arc::new(CondvarSemaphore::new(permits as u32));
    t.workload(
        label,
        threads,
        vec![
            Candidate::std("Mutex+Condvar", move |_, ops| {
                for _ in 0..ops {
                    std_sem.acquire();
                    std_sem.release();
                }
            }),
            Candidate::new("thrifty Semaphore", move |_, ops| {
                for _ in 0..ops {
                    drop(black_box(sem.acquire(black_box(1)).unwrap()));
                }
            }),
            Candidate::new("thrifty Eventual(1ms)", move |_, ops| {
                for _ in 0..ops {
                    drop(black_box(barging.acquire(black_box(1)).unwrap()));
                }
            }),
        ],
    );
}

/// The half-permits workload again, each acquire timed (`Instant::now()` before the call and
/// once the permit is held, on both candidates alike: two clock reads more per op, so its ns/op
/// sits above the untimed rows'), and notes under the table: the p50, p99 and longest wait of
/// one acquire, and each timed round's fewest acquisitions of a thread over its most, counted
/// while every thread was in its loop. The histogram is on the stack and merged under a lock
/// once per thread per timed round; the one allocation (a round's share pushed onto a `Vec`)
/// comes in timed rounds only, where counting is paused, so the allocation columns see none.
fn semaphore_timed(t: &mut Table<'_>, threads: usize, permits: usize) {
    let label = "semaphore, permits for half, waits timed";
    let sem = Arc::new(Semaphore::new(permits as u32));
    let barging = Arc::new(Semaphore::with_fairness(
        permits as u32,
        Fairness::Eventual(PATIENCE),
    ));
    let std_sem = Arc::new(CondvarSemaphore::new(permits as u32));
    let std_tally = Arc::new(Tally::new(threads));
    let thrifty_tally = Arc::new(Tally::new(threads));
    let barging_tally = Arc::new(Tally::new(threads));
    let tallies = [
        ("Mutex+Condvar", Arc::clone(&std_tally)),
        ("thrifty Semaphore", Arc::clone(&thrifty_tally)),
        ("thrifty Eventual(1ms)", Arc::clone(&barging_tally)),
    ];
    t.workload(
        label,
        threads,
        vec![
            Candidate::std("Mutex+Condvar", move |i, ops| {
                let mut round = std_tally.begin();
                for _ in 0..ops {
                    let asked = Instant::now();
                    std_sem.acquire();
                    let waited = asked.elapsed();
                    std_sem.release();
                    round.acquired(&std_tally, black_box(waited));
                }
                std_tally.end(i, round);
            }),
            Candidate::new("thrifty Semaphore", move |i, ops| {
                let mut round = thrifty_tally.begin();
                for _ in 0..ops {
                    let asked = Instant::now();
                    let permit = black_box(sem.acquire(black_box(1)).unwrap());
                    let waited = asked.elapsed();
                    drop(permit);
                    round.acquired(&thrifty_tally, black_box(waited));
                }
                thrifty_tally.end(i, round);
            }),
            Candidate::new("thrifty Eventual(1ms)", move |i, ops| {
                let mut round = barging_tally.begin();
                for _ in 0..ops {
                    let asked = Instant::now();
                    let permit = black_box(barging.acquire(black_box(1)).unwrap());
                    let waited = asked.elapsed();
                    drop(permit);
                    round.acquired(&barging_tally, black_box(waited));
                }
                barging_tally.end(i, round);
            }),
        ],
    );
    t.note(format!(
        "  {label}, {threads} thread(s), {permits} permit(s), timed rounds only. wait: one \
         acquire, from the call to holding the permit (p50 and p99 within 1/32, about 3%)."
    ));
    t.note(
        "    share: per round, while every thread was in its loop, the fewest acquisitions of a \
         thread / the most (1.00 is even; median and worst over the rounds with such a window)"
            .to_owned(),
    );
    for (name, tally) in tallies {
        let kept = tally.kept.lock().unwrap();
        let mut shares = kept.shares.clone();
        shares.sort_by(f64::total_cmp);
        let share = if shares.is_empty() {
            format!("no window in {} rounds", kept.rounds)
        } else {
            format!(
                "share median {:.2}, worst {:.2} ({} of {} rounds)",
                shares[shares.len() / 2],
                shares[0],
                shares.len(),
                kept.rounds
            )
        };
        t.note(format!(
            "    {name:<21} wait p50 {}, p99 {}, max {} ({} acquires); {share}",
            fmt_us(kept.waits.quantile(0.5)),
            fmt_us(kept.waits.quantile(0.99)),
            fmt_us(kept.waits.max),
            kept.waits.total
        ));
    }
}

/// High bit of `Tally::gate`: a thread has finished this round, so not every thread is asking.
const ENDED: usize = 1 << (usize::BITS - 1);

/// What one candidate of the timed semaphore workload keeps: its waits and shares over the
/// timed rounds (`harness::timed_round`), and the current round's bookkeeping.
struct Tally {
    threads: usize,
    /// Threads that have begun this round, with `ENDED` set once one has run all its ops: an
    /// acquire counts toward the share while this equals `threads`.
    gate: AtomicUsize,
    /// Threads done with this round; the last one closes it and resets `gate`.
    done: AtomicUsize,
    /// Each thread's acquisitions this round while every thread was asking.
    counts: Vec<AtomicU64>,
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    waits: Histogram,
    /// Per timed round with every thread asking at some point: fewest / most acquisitions.
    shares: Vec<f64>,
    /// Timed rounds closed, with or without such a window.
    rounds: usize,
}

/// One thread's round in progress.
struct Round {
    timed: bool,
    waits: Histogram,
    while_all: u64,
}

impl Tally {
    fn new(threads: usize) -> Self {
        Self {
            threads,
            gate: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            counts: (0..threads).map(|_| AtomicU64::new(0)).collect(),
            kept: Mutex::new(Kept::default()),
        }
    }

    fn begin(&self) -> Round {
        self.gate.fetch_add(1, Ordering::AcqRel);
        Round {
            timed: timed_round(),
            waits: Histogram::default(),
            while_all: 0,
        }
    }

    fn end(&self, thread: usize, round: Round) {
        self.gate.fetch_or(ENDED, Ordering::AcqRel);
        self.counts[thread].store(round.while_all, Relaxed);
        if round.timed {
            self.kept.lock().unwrap().waits.merge(&round.waits);
        }
        if self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            let counts = self.counts.iter().map(|c| c.load(Relaxed));
            let (min, max) = counts.fold((u64::MAX, 0), |(lo, hi), c| (lo.min(c), hi.max(c)));
            if round.timed {
                let mut kept = self.kept.lock().unwrap();
                kept.rounds += 1;
                if max > 0 {
                    kept.shares.push(min as f64 / max as f64);
                }
            }
            self.done.store(0, Relaxed);
            self.gate.store(0, Ordering::Release);
        }
    }
}

impl Round {
    /// Records one acquire, after the permit went back.
    #[inline]
    fn acquired(&mut self, tally: &Tally, waited: Duration) {
        self.waits.record(waited.as_nanos() as u64);
        self.while_all += u64::from(tally.gate.load(Relaxed) == tally.threads);
    }
}
