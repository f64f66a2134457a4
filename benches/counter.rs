//! `thrifty::counter` against a shared `AtomicU64`, a `Mutex<u64>` and the physical upper bound
//! (a thread-local variable flushed once at the end), at 1 and 2 threads, and 4 and 8 threads
//! labelled "oversubscribed" where they outnumber the cores; plus the cost of `sum` by cell count,
//! the memory per counter idle and expanded, and allocations per increment (both printed).
//!
//! One iteration is one increment on every thread; criterion's throughput is increments per
//! second over all threads together. Threads are spawned outside the timed span: each waits at a
//! barrier, and the span runs from the first thread's start to the last one's end.
//!
//! `counter/registry` is the metrics-registry shape: 1 000, 10 000 and 100 000 counters, each
//! increment on a random one (a xorshift sequence per thread, the same for every candidate), at
//! 1 and 2 threads; `counter/mixed` is 100 cold counters and 1 hot one, at 2 threads. The share
//! of thrifty counters striped and the bytes per counter at the end are printed after the group.
//! The registry also runs an `AtomicU64` padded to 16 bytes, a compact `Counter`'s size, to show
//! what the size alone costs, and an `AtomicU64` bumped by a load and a compare-exchange: the
//! least a counter that keeps its count and its striped form in one word must do. Last,
//! `Counter` bumped by threads that each added to a striped counter first (outside the timed
//! span), so their memo of striped counters is not empty, as in a server whose threads all bump
//! a hot counter; and `Counter` bumped by threads that first made 20 000 untimed adds to a
//! counter of their own. Each sample's threads are fresh, and a thread reads a counter's state
//! word after each of its first 1 024 adds but not after them while it uses no striped counter
//! (the counter module's How it works), so the plain row includes a fresh thread's first adds
//! and the long-lived row is a server thread's.
//!
//! `cargo bench --bench counter -- --warm-up-time 1 --measurement-time 2`

use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
mod common;
use common::{label, on_threads};
#[path = "../examples/common/stripe.rs"]
mod stripe;
use stripe::stripe;
#[path = "../examples/common/local_bound.rs"]
mod local_bound;
use local_bound::local_adds;
use thrifty::counter::{Counter, Gauge};
use thrifty::measure::{self, CountingAlloc};

thread_local! {
    static LOCAL: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

fn increment(c: &mut Criterion) {
    let _paused = measure::pause();
    let mut g = c.benchmark_group("counter/increment");
    for threads in [1usize, 2, 4, 8] {
        g.throughput(Throughput::Elements(threads as u64));
        let id = |name: &str| BenchmarkId::new(name, label(threads));

        let atomic = AtomicU64::new(0);
        g.bench_function(id("AtomicU64::fetch_add"), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &|| {}, &|n| {
                    for _ in 0..n {
                        atomic.fetch_add(black_box(1), Relaxed);
                    }
                })
            })
        });

        let mutex = Mutex::new(0u64);
        g.bench_function(id("Mutex<u64>"), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &|| {}, &|n| {
                    for _ in 0..n {
                        *mutex.lock().unwrap() += black_box(1);
                    }
                })
            })
        });

        let flushed = AtomicU64::new(0);
        g.bench_function(id("thread-local, flushed at end"), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &|| {}, &|n| {
                    flushed.fetch_add(local_adds(n), Relaxed);
                })
            })
        });

        // What a hand-rolled per-thread counter costs: a `thread_local!` cell bumped in memory
        // each time (the "plain thread-local add"), flushed at the end.
        let tls_flushed = AtomicU64::new(0);
        g.bench_function(id("thread_local! Cell<u64>"), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &|| {}, &|n| {
                    for _ in 0..n {
                        LOCAL.with(|c| c.set(c.get() + black_box(1)));
                    }
                    tls_flushed.fetch_add(LOCAL.with(|c| c.replace(0)), Relaxed);
                })
            })
        });

        // The steady state of a counter several threads bump: striped (by lasting contention).
        // Striped beforehand only where the timed threads would stripe it anyway (2 and more);
        // on one thread it stays compact, as in a single-threaded program.
        let counter = Counter::new();
        if threads > 1 {
            _ = stripe(&counter);
        }
        g.bench_function(id("thrifty Counter"), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &|| {}, &|n| {
                    for _ in 0..n {
                        counter.add(black_box(1));
                    }
                })
            })
        });
        // The handle: the thread's cell looked up once per thread, not once per add.
        g.bench_function(id("thrifty Counter::local"), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &|| {}, &|n| {
                    let mut local = counter.local();
                    for _ in 0..n {
                        local.add(black_box(1));
                    }
                })
            })
        });
        black_box((atomic, mutex, flushed, tls_flushed, counter));
    }
    g.finish();

    // The never-contended case on the calling thread: compact form against an uncontended
    // atomic, no threads involved.
    let mut g = c.benchmark_group("counter/uncontended");
    g.throughput(Throughput::Elements(1));
    let atomic = AtomicU64::new(0);
    g.bench_function("AtomicU64::fetch_add", |b| {
        b.iter(|| atomic.fetch_add(black_box(1), Relaxed))
    });
    let compact = Counter::new();
    g.bench_function("thrifty Counter (compact)", |b| {
        b.iter(|| compact.add(black_box(1)))
    });
    assert!(!compact.is_striped());
    let gauge = Gauge::new();
    g.bench_function("thrifty Gauge (compact)", |b| {
        b.iter(|| gauge.add(black_box(1)))
    });
    g.finish();
}

/// An `AtomicU64` that takes as much room as a compact `Counter` (16 bytes, aligned to 16).
#[repr(align(16))]
struct Padded(AtomicU64);

/// Adds `n` as a one-word counter that reads its word to choose its path would: a relaxed load,
/// then a compare-exchange from what it read (retried with what it finds).
#[inline(always)]
fn load_and_cas(word: &AtomicU64, n: u64) {
    let mut seen = word.load(Relaxed);
    while let Err(now) = word.compare_exchange_weak(seen, seen.wrapping_add(n), Relaxed, Relaxed) {
        seen = now;
    }
}

/// A thread's registry index sequence: xorshift64 mapped onto `0..n` by a multiply and shift.
/// Seeds come from a shared counter, so each thread of a sample walks its own sequence and every
/// candidate gets the same seeds in the same order (the counter restarts per sample).
struct Indices {
    x: u64,
    n: u64,
}

impl Indices {
    fn new(seed: u64, n: usize) -> Self {
        Self {
            x: (seed + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            n: n as u64,
        }
    }

    #[inline(always)]
    fn next(&mut self) -> usize {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        (((self.x >> 32) * self.n) >> 32) as usize
    }
}

/// One registry candidate: `threads` threads, each running `warm` (untimed) and then walking its
/// own index sequence over `n` counters and calling `bump` on each index (generic, so each
/// candidate's loop is its own).
fn bump_at_random(
    g: &mut BenchmarkGroup<'_, WallTime>,
    (id, seed, warm): (BenchmarkId, &AtomicU64, &(dyn Fn() + Sync)),
    threads: usize,
    n: usize,
    bump: impl Fn(usize) + Sync,
) {
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            seed.store(0, Relaxed);
            on_threads(threads, iters, warm, &|ops| {
                let mut at = Indices::new(seed.fetch_add(1, Relaxed), n);
                for _ in 0..ops {
                    bump(at.next());
                }
            })
        })
    });
}

fn registry(c: &mut Criterion) {
    let _paused = measure::pause();
    let mut g = c.benchmark_group("counter/registry");
    let mut notes = Vec::new();
    let hot = Counter::new();
    _ = stripe(&hot);
    for n in [1_000usize, 10_000, 100_000] {
        for threads in [1usize, 2] {
            g.throughput(Throughput::Elements(threads as u64));
            let id =
                |name: &str| BenchmarkId::new(name, format!("{n} counters/{}", label(threads)));
            let seed = AtomicU64::new(0);
            let none = || {};
            let atomics: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
            bump_at_random(
                &mut g,
                (id("AtomicU64::fetch_add"), &seed, &none),
                threads,
                n,
                |i| {
                    atomics[i].fetch_add(black_box(1), Relaxed);
                },
            );
            let padded: Vec<Padded> = (0..n).map(|_| Padded(AtomicU64::new(0))).collect();
            bump_at_random(
                &mut g,
                (id("AtomicU64 in 16 B"), &seed, &none),
                threads,
                n,
                |i| {
                    padded[i].0.fetch_add(black_box(1), Relaxed);
                },
            );
            let loaded: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
            bump_at_random(
                &mut g,
                (id("AtomicU64, load + CAS"), &seed, &none),
                threads,
                n,
                |i| {
                    load_and_cas(&loaded[i], black_box(1));
                },
            );
            let mutexes: Vec<Mutex<u64>> = (0..n).map(|_| Mutex::new(0)).collect();
            bump_at_random(&mut g, (id("Mutex<u64>"), &seed, &none), threads, n, |i| {
                *mutexes[i].lock().unwrap() += black_box(1);
            });
            let counters: Vec<Counter> = (0..n).map(|_| Counter::new()).collect();
            bump_at_random(
                &mut g,
                (id("thrifty Counter"), &seed, &none),
                threads,
                n,
                |i| {
                    counters[i].add(black_box(1));
                },
            );
            // A registry of its own, as every row has: on the previous row's counters it would
            // start from whatever that row's contention left striped, and the note below would
            // mix the two rows.
            let after_hot: Vec<Counter> = (0..n).map(|_| Counter::new()).collect();
            // Two adds: the first strays and finds the thread's cell, the second goes to it.
            let touch = || (0..2).for_each(|_| hot.add(black_box(1)));
            bump_at_random(
                &mut g,
                (id("thrifty Counter, after a striped one"), &seed, &touch),
                threads,
                n,
                |i| after_hot[i].add(black_box(1)),
            );
            // A server's threads are long past their first 1 024 adds, after each of which a
            // thread reads a counter's state word, and past their first probes; each sample's
            // threads are fresh, so this row's first make 20 000 untimed adds to a counter of
            // their own.
            let long_lived: Vec<Counter> = (0..n).map(|_| Counter::new()).collect();
            let past_first_interval = || {
                let own = Counter::new();
                (0..20_000).for_each(|_| own.add(black_box(1)));
            };
            bump_at_random(
                &mut g,
                (
                    id("thrifty Counter, long-lived thread"),
                    &seed,
                    &past_first_interval,
                ),
                threads,
                n,
                |i| long_lived[i].add(black_box(1)),
            );
            let footprint = |counters: &[Counter]| {
                let striped = counters.iter().filter(|c| c.is_striped()).count();
                let bytes = std::mem::size_of_val(counters)
                    + counters.iter().map(Counter::heap_bytes).sum::<usize>();
                (100.0 * striped as f64 / n as f64, bytes as f64 / n as f64)
            };
            let ((striped, bytes), (after_striped, after_bytes), (long_striped, long_bytes)) = (
                footprint(&counters),
                footprint(&after_hot),
                footprint(&long_lived),
            );
            notes.push(format!(
                "  {n} counters, {threads} thread(s): {striped:.2}% striped, {bytes:.1} B per \
                 counter (after a striped one: {after_striped:.2}%, {after_bytes:.1} B; \
                 long-lived: {long_striped:.2}%, {long_bytes:.1} B)"
            ));
            black_box((
                atomics, padded, loaded, mutexes, counters, after_hot, long_lived,
            ));
        }
    }
    g.finish();
    println!(
        "counter/registry: thrifty Counter at the end of each workload (AtomicU64: {} B)",
        std::mem::size_of::<AtomicU64>()
    );
    notes.iter().for_each(|line| println!("{line}"));

    // 100 cold counters and 1 hot one; every other increment is the hot one. 2 threads only.
    let mut g = c.benchmark_group("counter/mixed");
    g.throughput(Throughput::Elements(2));
    let pick = |at: &mut Indices| match at.next() {
        i if i % 2 == 0 => 100,
        i => i / 2,
    };
    let seed = AtomicU64::new(0);
    let atomics: Vec<AtomicU64> = (0..101).map(|_| AtomicU64::new(0)).collect();
    let id = |name: &str| format!("100 cold + 1 hot/{name}/{}", label(2));
    g.bench_function(id("AtomicU64::fetch_add"), |b| {
        b.iter_custom(|iters| {
            seed.store(0, Relaxed);
            on_threads(2, iters, &|| {}, &|ops| {
                let mut at = Indices::new(seed.fetch_add(1, Relaxed), 200);
                for _ in 0..ops {
                    atomics[pick(&mut at)].fetch_add(black_box(1), Relaxed);
                }
            })
        })
    });
    let counters: Vec<Counter> = (0..101).map(|_| Counter::new()).collect();
    g.bench_function(id("thrifty Counter"), |b| {
        b.iter_custom(|iters| {
            seed.store(0, Relaxed);
            on_threads(2, iters, &|| {}, &|ops| {
                let mut at = Indices::new(seed.fetch_add(1, Relaxed), 200);
                for _ in 0..ops {
                    counters[pick(&mut at)].add(black_box(1));
                }
            })
        })
    });
    g.finish();
    println!(
        "counter/mixed: {} of {} thrifty counters striped (the hot one: {})",
        counters.iter().filter(|c| c.is_striped()).count(),
        counters.len(),
        counters[100].is_striped()
    );
    black_box((atomics, counters));
}

fn sum(c: &mut Criterion) {
    let _paused = measure::pause();
    let mut g = c.benchmark_group("counter/sum");
    let atomic = AtomicU64::new(7);
    g.bench_function("AtomicU64::load", |b| {
        b.iter(|| black_box(&atomic).load(Relaxed))
    });
    let compact = Counter::new();
    compact.add(7);
    g.bench_function("compact", |b| b.iter(|| black_box(&compact).sum()));
    // Two contending threads stripe a counter to 2 cells (1 if capped at 1).
    for cells in [1usize, 2] {
        let counter = Counter::with_cells(cells);
        if !stripe(&counter) {
            continue; // said by `stripe`: no striped row to time
        }
        assert_eq!(counter.cells(), cells);
        g.bench_with_input(BenchmarkId::new("striped", cells), &counter, |b, c| {
            b.iter(|| black_box(c).sum())
        });
    }
    g.finish();
}

/// Allocator calls per increment, `sum` and `take`, compact and striped: counted exactly with
/// `measure::count` and printed: zero is the expected answer here (`tests/alloc_counter.rs`
/// asserts it), and for a bench that allocates nothing criterion's change verdict follows the
/// timing, not the count (see `measure::Allocations`), so a printed count is the clearer report.
fn allocations() {
    let compact = Counter::new();
    let striped = Counter::new();
    _ = stripe(&striped);
    const N: u64 = 1_000_000;
    let ((), incr_compact) = measure::count(|| (0..N).for_each(|_| compact.incr()));
    let ((), incr_striped) = measure::count(|| (0..N).for_each(|_| striped.incr()));
    let ((), incr_local) = measure::count(|| {
        let mut local = striped.local();
        (0..N).for_each(|_| local.incr())
    });
    let ((), reads) = measure::count(|| {
        for _ in 0..N / 100 {
            black_box(striped.sum());
            black_box(striped.take());
        }
    });
    println!("counter/allocs: allocator calls per op (exact, this thread)");
    println!("  incr, compact   {}", incr_compact.calls_per(N));
    println!("  incr, striped   {}", incr_striped.calls_per(N));
    println!("  incr, handle    {}", incr_local.calls_per(N));
    println!("  sum + take      {}", reads.calls_per(N / 100));
}

/// Memory per counter: printed once, as it is a size and not a rate.
fn memory() {
    let idle = std::mem::size_of::<Counter>();
    println!("counter/memory: bytes per counter (inline + heap)");
    println!(
        "  AtomicU64                           {:>6}",
        std::mem::size_of::<AtomicU64>()
    );
    println!(
        "  CachePadded<AtomicU64>              {:>6}",
        std::mem::size_of::<crossbeam_utils::CachePadded<AtomicU64>>()
    );
    println!("  Counter, idle (compact)             {idle:>6}");
    println!(
        "  10 000 idle Counters                {:>6} KiB",
        10_000 * idle / 1024
    );
    let c = Counter::new();
    _ = stripe(&c);
    println!(
        "  Counter, 2 threads contended ({} cells) {:>6}",
        c.cells(),
        idle + c.heap_bytes()
    );
}

criterion_group!(timing, increment, registry, sum);

fn main() {
    memory();
    timing();
    // Last: counting on the main thread gives it a slot, which would shift the timed threads'.
    allocations();
    Criterion::default().configure_from_args().final_summary();
}
