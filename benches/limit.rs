//! `thrifty::limit` against `governor` (direct and keyed) and the std alternatives (a
//! `Mutex`-protected token bucket, a `Mutex` + `Condvar` semaphore), at 1 and 2 threads, with
//! allocations per operation printed at the end.
//!
//! Groups:
//! - `limit/try_acquire/admit`: a bucket fast enough that every request passes (the CAS path).
//! - `limit/try_acquire/refuse`: an empty bucket that refuses every request (the read path,
//!   what a limiter does under attack).
//! - `limit/keyed`: 1,000 keys, every request passes. Every map hashes with thrifty's
//!   `FastRandomState` (foldhash), as `KeyedLimiter` does; one more governor row keeps its
//!   default hasher (std's SipHash), as `RateLimiter::keyed` builds it. Every thread walks the
//!   same key sequence from its start, so 2 threads hit the same key at about the same moment:
//!   the most contention per key, the same for every candidate. governor runs on dashmap's
//!   default shard count (4 x CPUs) and on `KeyedLimiter`'s (64 x CPUs, at most 1 024).
//! - `limit/keyed_new_keys`: every request brings a key never seen before (a flood from new
//!   client addresses); the peers are bounded as their users would bound them, and each row
//!   prints the entries it holds at the end. governor on both shard counts, as above.
//! - `limit/semaphore`: acquire then release of one permit; 2 threads share 2 permits (the
//!   lock is contended, the permits are not) or 1 permit (threads wait for each other). The
//!   "owned" row takes an `OwnedPermit` from the same `Arc`'d semaphore (the cost of the `Arc`
//!   count); the "Eventual(1ms)" row is the barging semaphore (`Fairness::Eventual`). The
//!   8-thread row, one permit, is oversubscribed on a 2-core machine: there each strict
//!   hand-over waits for the scheduler.
//!
//! Each crate runs on its default clock and on std's `Instant` ("std clock" rows), and thrifty
//! also on quanta's clock, governor's default ("quanta clock"); `limit/keyed_new_keys` runs the
//! default clocks only. thrifty's default reads the TSC
//! where the kernel keeps time on it (x86-64 Linux, clocksource `tsc`) and `Instant` elsewhere;
//! the benchmark prints which at the start.
//!
//! One iteration is one request on every thread; throughput counts requests over all threads.
//!
//! `cargo bench --bench limit -- --warm-up-time 1 --measurement-time 2`

use criterion::{criterion_group, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use governor::clock::{DefaultClock, MonotonicClock as StdClock};
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thrifty::limit::{Clock, Fairness, KeyedLimiter, MonotonicClock, Semaphore, TokenBucket};
use thrifty::map::FastRandomState;
use thrifty::measure::{self, CountingAlloc};
mod common;
use common::{label, on_threads};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// The textbook locked bucket: fractional tokens refilled from the elapsed time.
struct MutexBucket {
    state: Mutex<(f64, Instant)>,
    rate: f64,
    burst: f64,
}

impl MutexBucket {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            state: Mutex::new((burst, Instant::now())),
            rate,
            burst,
        }
    }
    fn try_acquire(&self) -> bool {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap();
        let (tokens, last) = *s;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        let ok = tokens >= 1.0;
        *s = (if ok { tokens - 1.0 } else { tokens }, now);
        ok
    }
    /// Whether the bucket has refilled by `now` (a new one would start the same).
    fn full(&mut self, now: Instant) -> bool {
        let (tokens, last) = *self.state.get_mut().unwrap();
        tokens + now.saturating_duration_since(last).as_secs_f64() * self.rate >= self.burst
    }
}

#[path = "../examples/common/condvar_semaphore.rs"]
mod condvar_semaphore;
use condvar_semaphore::CondvarSemaphore;

/// governor's clock (TSC-based), plugged into thrifty through `Clock`: the same algorithm with
/// the same clock as governor, to show how much of the difference is the clock read.
struct QuantaClock {
    clock: quanta::Clock,
    start: quanta::Instant,
}

impl QuantaClock {
    fn new() -> Self {
        let clock = quanta::Clock::new();
        let start = clock.now();
        Self { clock, start }
    }
}

impl Clock for QuantaClock {
    #[inline]
    fn now(&self) -> u64 {
        self.clock.now().duration_since(self.start).as_nanos() as u64
    }
}

/// The admit shape: 10^9 per second with a burst of 10^6, so no thread ever waits.
const FAST: u32 = 1_000_000_000;

fn quota(rate: u32, burst: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(rate).unwrap()).allow_burst(NonZeroU32::new(burst).unwrap())
}
const FAST_BURST: u32 = 1_000_000;

/// governor's keyed store, a `DashMap`, on `KeyedLimiter`'s shard count (its `ShardedMap`'s
/// default: 64 x CPUs, at most 1 024, a power of two) instead of dashmap's 4 x CPUs: the
/// setting the two defaults differ in, so a row can show the design apart from the default (as
/// the map benches' `dashmap (thrifty's shard count)` row does).
type GovernorStore = governor::state::keyed::DashMapStateStore<u64, FastRandomState>;

fn governor_on_thrifty_shards(quota: Quota) -> RateLimiter<u64, GovernorStore, DefaultClock> {
    // dashmap needs a power of two above 1; thrifty's count is a power of two.
    let shards = thrifty::map::ShardedMap::<u64, u64>::new()
        .shard_count()
        .max(2);
    let store = GovernorStore::with_hasher_and_shard_amount(FastRandomState::default(), shards);
    RateLimiter::new(quota, store, DefaultClock::default())
}

fn run(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    threads: usize,
    op: &(dyn Fn() -> bool + Sync),
) {
    g.bench_function(BenchmarkId::new(name, label(threads)), |b| {
        b.iter_custom(|iters| {
            on_threads(threads, iters, &|| {}, &|n| {
                for _ in 0..n {
                    black_box(op());
                }
            })
        })
    });
}

fn try_acquire(c: &mut Criterion) {
    let _paused = measure::pause();
    let source = if MonotonicClock::new().uses_tsc() {
        "the TSC"
    } else {
        "std's Instant"
    };
    println!("thrifty's default clock here reads {source}");
    for (shape, rate, burst) in [("admit", FAST, FAST_BURST), ("refuse", 1, 1)] {
        let mut g = c.benchmark_group(format!("limit/try_acquire/{shape}"));
        for threads in [1usize, 2] {
            g.throughput(Throughput::Elements(threads as u64));
            let thrifty = TokenBucket::new(u64::from(rate), burst).unwrap();
            let thrifty_std =
                TokenBucket::with_clock(u64::from(rate), burst, MonotonicClock::std_instant())
                    .unwrap();
            let quanta =
                TokenBucket::with_clock(u64::from(rate), burst, QuantaClock::new()).unwrap();
            let governor = RateLimiter::direct(quota(rate, burst));
            let governor_std = RateLimiter::direct_with_clock(quota(rate, burst), StdClock);
            let mutex = MutexBucket::new(f64::from(rate), f64::from(burst));
            if shape == "refuse" {
                // Drain each so every timed request is refused.
                while thrifty.try_acquire(1).is_ok() {}
                while thrifty_std.try_acquire(1).is_ok() {}
                while quanta.try_acquire(1).is_ok() {}
                while governor.check().is_ok() {}
                while governor_std.check().is_ok() {}
                while mutex.try_acquire() {}
            }
            run(&mut g, "thrifty TokenBucket", threads, &|| {
                thrifty.try_acquire(black_box(1)).is_ok()
            });
            run(&mut g, "thrifty TokenBucket, std clock", threads, &|| {
                thrifty_std.try_acquire(black_box(1)).is_ok()
            });
            run(
                &mut g,
                "thrifty TokenBucket, quanta clock",
                threads,
                &|| quanta.try_acquire(black_box(1)).is_ok(),
            );
            run(&mut g, "governor direct", threads, &|| {
                governor.check().is_ok()
            });
            run(&mut g, "governor direct, std clock", threads, &|| {
                governor_std.check().is_ok()
            });
            run(&mut g, "Mutex bucket", threads, &|| mutex.try_acquire());
        }
        g.finish();
    }
}

fn keyed(c: &mut Criterion) {
    let _paused = measure::pause();
    let mut g = c.benchmark_group("limit/keyed");
    const KEYS: u64 = 1000;
    for threads in [1usize, 2] {
        g.throughput(Throughput::Elements(threads as u64));
        let thrifty: KeyedLimiter<u64> = KeyedLimiter::new(u64::from(FAST), FAST_BURST).unwrap();
        let thrifty_std: KeyedLimiter<u64, _> =
            KeyedLimiter::with_clock(u64::from(FAST), FAST_BURST, MonotonicClock::std_instant())
                .unwrap();
        let quanta: KeyedLimiter<u64, _> =
            KeyedLimiter::with_clock(u64::from(FAST), FAST_BURST, QuantaClock::new()).unwrap();
        // governor's maps hash with thrifty's hasher (`ShardedMap`'s default), so the rows
        // compare the limiters, not SipHash with foldhash; one row keeps governor's default.
        let governor = RateLimiter::dashmap_with_clock_and_hasher(
            quota(FAST, FAST_BURST),
            DefaultClock::default(),
            FastRandomState::default(),
        );
        let governor_std = RateLimiter::dashmap_with_clock_and_hasher(
            quota(FAST, FAST_BURST),
            StdClock,
            FastRandomState::default(),
        );
        let governor_shards = governor_on_thrifty_shards(quota(FAST, FAST_BURST));
        let governor_sip = RateLimiter::keyed(quota(FAST, FAST_BURST));
        let mutex: Mutex<HashMap<u64, MutexBucket, FastRandomState>> = Mutex::new(
            (0..KEYS)
                .map(|k| (k, MutexBucket::new(f64::from(FAST), f64::from(FAST_BURST))))
                .collect(),
        );
        for k in 0..KEYS {
            thrifty.try_acquire(&k, 1).unwrap();
            thrifty_std.try_acquire(&k, 1).unwrap();
            quanta.try_acquire(&k, 1).unwrap();
            governor.check_key(&k).unwrap();
            governor_std.check_key(&k).unwrap();
            governor_shards.check_key(&k).unwrap();
            governor_sip.check_key(&k).unwrap();
        }
        let key = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % KEYS;
        let bench =
            |g: &mut BenchmarkGroup<'_, _>, name: &str, op: &(dyn Fn(u64) -> bool + Sync)| {
                g.bench_function(BenchmarkId::new(name, label(threads)), |b| {
                    b.iter_custom(|iters| {
                        on_threads(threads, iters, &|| {}, &|n| {
                            for i in 0..n {
                                black_box(op(black_box(key(i))));
                            }
                        })
                    })
                });
            };
        bench(&mut g, "thrifty KeyedLimiter", &|k| {
            thrifty.try_acquire(&k, 1).is_ok()
        });
        bench(&mut g, "thrifty KeyedLimiter, std clock", &|k| {
            thrifty_std.try_acquire(&k, 1).is_ok()
        });
        bench(&mut g, "thrifty KeyedLimiter, quanta clock", &|k| {
            quanta.try_acquire(&k, 1).is_ok()
        });
        bench(&mut g, "governor keyed (DashMap)", &|k| {
            governor.check_key(&k).is_ok()
        });
        bench(&mut g, "governor keyed (DashMap), std clock", &|k| {
            governor_std.check_key(&k).is_ok()
        });
        bench(
            &mut g,
            "governor keyed (DashMap, thrifty's shard count)",
            &|k| governor_shards.check_key(&k).is_ok(),
        );
        bench(
            &mut g,
            "governor keyed (DashMap), its default SipHash",
            &|k| governor_sip.check_key(&k).is_ok(),
        );
        bench(&mut g, "Mutex<HashMap<_, bucket>>", &|k| {
            mutex.lock().unwrap().get(&k).unwrap().try_acquire()
        });
    }
    g.finish();
}

/// Every request brings a key never seen before, as in a flood from new client addresses: the
/// insert path, and the bound on memory. Keys refill one token in a nanosecond (`FAST`), so every
/// key but the newest is full and may go. `KeyedLimiter` bounds itself; governor and the `Mutex`
/// map do not, so each is given the bound its user would write: past `CAP` entries, drop the full
/// keys (`retain_recent`, `retain`). Each row prints the entries it holds at the end: a point
/// in its sweep cycle, anywhere from 0 to its bound.
fn keyed_new_keys(c: &mut Criterion) {
    let _paused = measure::pause();
    let mut g = c.benchmark_group("limit/keyed_new_keys");
    // thrifty's documented bound with no key kept (k = 0): a sweep at max(1024, 2k) = 1024
    // entries, and twice that, 2048, while another thread sweeps. The peers get the looser one.
    const CAP: usize = 2048;
    // governor's `len` read-locks every DashMap shard, so it is read every 64 requests per
    // thread, not every one: under one shard lock per request, at most 64 entries per thread
    // past `CAP`. The `Mutex` map's `len` is a field read under the lock it holds anyway: every
    // request.
    const CHECK_EVERY: u64 = 64;
    // Hands each thread of each run its own range of keys: no key ever repeats.
    static RUNS: AtomicU64 = AtomicU64::new(0);
    for threads in [1usize, 2] {
        g.throughput(Throughput::Elements(threads as u64));
        let thrifty: KeyedLimiter<u64> = KeyedLimiter::new(u64::from(FAST), FAST_BURST).unwrap();
        let governor = RateLimiter::dashmap_with_clock_and_hasher(
            quota(FAST, FAST_BURST),
            DefaultClock::default(),
            FastRandomState::default(),
        );
        let governor_shards = governor_on_thrifty_shards(quota(FAST, FAST_BURST));
        let mutex: Mutex<HashMap<u64, MutexBucket, FastRandomState>> = Mutex::default();
        let bench = |g: &mut BenchmarkGroup<'_, _>,
                     name: &str,
                     held: &dyn Fn() -> usize,
                     op: &(dyn Fn(u64, u64) -> bool + Sync)| {
            let mut ran = false; // not if the filter skipped the row
            g.bench_function(BenchmarkId::new(name, label(threads)), |b| {
                ran = true;
                b.iter_custom(|iters| {
                    on_threads(threads, iters, &|| {}, &|n| {
                        let run = RUNS.fetch_add(1, Ordering::Relaxed) << 40;
                        for i in 0..n {
                            black_box(op(black_box(run | i), i));
                        }
                    })
                })
            });
            if ran {
                eprintln!(
                    "limit/keyed_new_keys/{name}/{}: {} entries held at the end",
                    label(threads),
                    held()
                );
            }
        };
        bench(
            &mut g,
            "thrifty KeyedLimiter",
            &|| thrifty.len(),
            &|k, _| thrifty.try_acquire(&k, 1).is_ok(),
        );
        bench(
            &mut g,
            "governor keyed (DashMap), retain_recent past cap",
            &|| governor.len(),
            &|k, i| {
                if i % CHECK_EVERY == 0 && governor.len() > CAP {
                    governor.retain_recent();
                }
                governor.check_key(&k).is_ok()
            },
        );
        bench(
            &mut g,
            "governor keyed (DashMap, thrifty's shard count), retain_recent past cap",
            &|| governor_shards.len(),
            &|k, i| {
                if i % CHECK_EVERY == 0 && governor_shards.len() > CAP {
                    governor_shards.retain_recent();
                }
                governor_shards.check_key(&k).is_ok()
            },
        );
        bench(
            &mut g,
            "Mutex<HashMap<_, bucket>>, retain past cap",
            &|| mutex.lock().unwrap().len(),
            &|k, _| {
                let mut map = mutex.lock().unwrap();
                if map.len() > CAP {
                    let now = Instant::now();
                    map.retain(|_, b| !b.full(now));
                }
                map.entry(k)
                    .or_insert_with(|| MutexBucket::new(f64::from(FAST), f64::from(FAST_BURST)))
                    .try_acquire()
            },
        );
    }
    g.finish();
}

/// The barging semaphore's patience in the semaphore group.
const PATIENCE: Duration = Duration::from_millis(1);

fn semaphore(c: &mut Criterion) {
    let _paused = measure::pause();
    let mut g = c.benchmark_group("limit/semaphore");
    for (threads, permits) in [(1usize, 1u32), (2, 2), (2, 1), (8, 1)] {
        g.throughput(Throughput::Elements(threads as u64));
        let shape = format!("{}, {permits} permit(s)", label(threads));
        let thrifty = Arc::new(Semaphore::new(permits));
        let barging = Semaphore::with_fairness(permits, Fairness::Eventual(PATIENCE));
        let std = CondvarSemaphore::new(permits);
        g.bench_function(BenchmarkId::new("thrifty Semaphore", &shape), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &|| {}, &|n| {
                    for _ in 0..n {
                        drop(black_box(thrifty.acquire(black_box(1)).unwrap()));
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("thrifty Semaphore (owned)", &shape), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &|| {}, &|n| {
                    for _ in 0..n {
                        drop(black_box(thrifty.acquire_owned(black_box(1)).unwrap()));
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("thrifty Eventual(1ms)", &shape), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &|| {}, &|n| {
                    for _ in 0..n {
                        drop(black_box(barging.acquire(black_box(1)).unwrap()));
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("Mutex+Condvar semaphore", &shape), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &|| {}, &|n| {
                    for _ in 0..n {
                        std.acquire();
                        black_box(&std);
                        std.release();
                    }
                })
            })
        });
    }
    g.finish();
}

/// Allocator calls per operation, exact, on this thread.
fn allocations() {
    const N: u64 = 100_000;
    let bucket = TokenBucket::new(u64::from(FAST), FAST_BURST).unwrap();
    let governor = RateLimiter::direct(Quota::per_second(NonZeroU32::new(FAST).unwrap()));
    let keyed: KeyedLimiter<u64> = KeyedLimiter::new(u64::from(FAST), FAST_BURST).unwrap();
    let gov_keyed = RateLimiter::keyed(Quota::per_second(NonZeroU32::new(FAST).unwrap()));
    for k in 0..100u64 {
        let _ = keyed.try_acquire(&k, 1);
        let _ = gov_keyed.check_key(&k);
    }
    let sem = Arc::new(Semaphore::new(1));
    let rows: [(&str, measure::AllocStats); 7] = [
        (
            "thrifty TokenBucket::try_acquire",
            measure::count(|| {
                (0..N).for_each(|_| {
                    black_box(bucket.try_acquire(1).is_ok());
                })
            })
            .1,
        ),
        (
            "governor direct check",
            measure::count(|| {
                (0..N).for_each(|_| {
                    black_box(governor.check().is_ok());
                })
            })
            .1,
        ),
        (
            "thrifty KeyedLimiter (present key)",
            measure::count(|| {
                (0..N).for_each(|i| {
                    black_box(keyed.try_acquire(&(i % 100), 1).is_ok());
                })
            })
            .1,
        ),
        (
            // Keys never seen, from 100 present to N + 100: the tables' growth, then none.
            "thrifty KeyedLimiter (new key)",
            measure::count(|| {
                (100..N + 100).for_each(|k| {
                    black_box(keyed.try_acquire(&k, 1).is_ok());
                })
            })
            .1,
        ),
        (
            "governor keyed (present key)",
            measure::count(|| {
                (0..N).for_each(|i| {
                    black_box(gov_keyed.check_key(&(i % 100)).is_ok());
                })
            })
            .1,
        ),
        (
            "thrifty Semaphore acquire+release",
            measure::count(|| (0..N).for_each(|_| drop(black_box(sem.acquire(1).unwrap())))).1,
        ),
        (
            "thrifty Semaphore owned acquire+release",
            measure::count(|| {
                (0..N).for_each(|_| drop(black_box(sem.acquire_owned(1).unwrap())));
            })
            .1,
        ),
    ];
    println!("limit/allocs: allocator calls per op (exact, this thread)");
    for (name, stats) in rows {
        println!("  {name:<40} {}", stats.calls_per(N));
    }
}

criterion_group!(timing, try_acquire, keyed, keyed_new_keys, semaphore);

fn main() {
    timing();
    allocations();
    Criterion::default().configure_from_args().final_summary();
}
