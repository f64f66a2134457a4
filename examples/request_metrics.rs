//! Request metrics for a small service: a `Counter` per endpoint, a `Gauge` of requests in
//! flight and a `PerCpu` latency histogram, under two threads of simulated load while a scraper
//! takes the deltas every 5 ms, the way a Prometheus exporter would.
//!
//! `cargo run --release --example request_metrics`
//!
//! It prints the first run's scraped totals, merged latency histogram and what the counters and
//! the gauge cost in memory (compact until contended: how many the run striped, and their
//! cells' bytes), then the load's time against std's shared atomics and a `Mutex` histogram:
//! median and range of 3 rounds each, the order alternating.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use thrifty::counter::{Counter, Gauge, PerCpu};

const ENDPOINTS: [&str; 4] = ["GET /", "POST /login", "GET /search", "GET /api/items"];
/// Latency buckets: upper bounds in microseconds, the last one open.
const BUCKETS_US: [u64; 6] = [100, 250, 500, 1_000, 5_000, u64::MAX];
const REQUESTS_PER_THREAD: u64 = 2_000_000;

struct Metrics {
    requests: [Counter; 4],
    errors: Counter,
    in_flight: Gauge,
    latency: PerCpu<[u64; 6]>,
}

/// A fake request: which endpoint, how long it took, whether it failed (xorshift, no deps).
fn next_request(state: &mut u64) -> (usize, u64, bool) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    let endpoint = (*state % 4) as usize;
    let latency_us = (*state >> 8) % 2_000 + 50 * endpoint as u64;
    (endpoint, latency_us, (*state >> 40) % 100 == 0)
}

fn serve(m: &Metrics, seed: u64) {
    let mut state = seed;
    for _ in 0..REQUESTS_PER_THREAD {
        let (endpoint, latency_us, failed) = next_request(&mut state);
        m.in_flight.add(1);
        m.requests[endpoint].incr();
        if failed {
            m.errors.incr();
        }
        let bucket = BUCKETS_US.iter().position(|&b| latency_us <= b).unwrap();
        m.latency.with(|h| h[bucket] += 1);
        m.in_flight.sub(1);
    }
}

/// The std way: shared atomics, one locked histogram.
#[derive(Default)]
struct StdMetrics {
    requests: [AtomicU64; 4],
    errors: AtomicU64,
    in_flight: AtomicI64,
    latency: Mutex<[u64; 6]>,
}

fn serve_std(m: &StdMetrics, seed: u64) {
    let mut state = seed;
    for _ in 0..REQUESTS_PER_THREAD {
        let (endpoint, latency_us, failed) = next_request(&mut state);
        m.in_flight.fetch_add(1, Relaxed);
        m.requests[endpoint].fetch_add(1, Relaxed);
        if failed {
            m.errors.fetch_add(1, Relaxed);
        }
        let bucket = BUCKETS_US.iter().position(|&b| latency_us <= b).unwrap();
        m.latency.lock().unwrap()[bucket] += 1;
        m.in_flight.fetch_sub(1, Relaxed);
    }
}

const SEEDS: [u64; 2] = [0x9E37_79B9_7F4A_7C15, 0xD1B5_4A32_D192_ED03];
/// Rounds of each side, the order alternating: on a shared machine one run proves little.
const ROUNDS: usize = 3;

#[path = "common/summary.rs"]
mod summary;
use summary::{in_turn, summary};

/// One run of the thrifty metrics: what was scraped and how long the load took.
struct Run {
    m: Metrics,
    scraped: [u64; 4],
    scrapes: u32,
    ms: f64,
}

/// Two threads of load; the main thread scrapes deltas every 5 ms meanwhile.
fn run_thrifty() -> Run {
    let m = Metrics {
        requests: Default::default(),
        errors: Counter::new(),
        in_flight: Gauge::new(),
        latency: PerCpu::new(|| [0u64; 6]),
    };
    let done = AtomicBool::new(false);
    let mut scraped = [0u64; 4];
    let mut scrapes = 0;
    let started = Instant::now();
    let load_time = std::thread::scope(|s| {
        let load: Vec<_> = SEEDS
            .into_iter()
            .map(|seed| {
                let m = &m;
                s.spawn(move || serve(m, seed))
            })
            .collect();
        let joiner = s.spawn(|| {
            for h in load {
                h.join().unwrap();
            }
            // Timed here, not after the scope: the scraper may be in its sleep.
            let load_time = started.elapsed();
            done.store(true, Relaxed);
            load_time
        });
        while !done.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
            for (total, c) in scraped.iter_mut().zip(&m.requests) {
                *total += c.take();
            }
            scrapes += 1;
        }
        joiner.join().unwrap()
    });
    for (total, c) in scraped.iter_mut().zip(&m.requests) {
        *total += c.take(); // the last delta
    }
    assert_eq!(
        scraped.iter().sum::<u64>(),
        2 * REQUESTS_PER_THREAD,
        "a take lost or doubled a request"
    );
    assert_eq!(m.in_flight.value(), 0);
    let ms = load_time.as_secs_f64() * 1e3;
    Run {
        m,
        scraped,
        scrapes,
        ms,
    }
}

/// The same load through the std equivalents: a shared atomic per counter and one
/// `Mutex`-guarded histogram. Milliseconds.
fn run_std() -> f64 {
    let std_metrics = StdMetrics::default();
    let started = Instant::now();
    std::thread::scope(|s| {
        for seed in SEEDS {
            let m = &std_metrics;
            s.spawn(move || serve_std(m, seed));
        }
    });
    let ms = started.elapsed().as_secs_f64() * 1e3;
    black_box(&std_metrics);
    ms
}

fn main() {
    let (mut runs, mut std_ms) = (vec![], vec![]);
    for round in 0..ROUNDS {
        let (t, s) = in_turn(round, run_thrifty, run_std);
        runs.push(t);
        std_ms.push(s);
    }

    let Run {
        m,
        scraped,
        scrapes,
        ..
    } = &runs[0];
    println!(
        "first run: {scrapes} scrapes while 2 threads served {} requests:",
        2 * REQUESTS_PER_THREAD
    );
    for (name, n) in ENDPOINTS.iter().zip(scraped) {
        println!("  {name:<16} {n:>9}");
    }
    println!("  errors           {:>9}", m.errors.sum());

    let hist = m.latency.fold([0u64; 6], |mut acc, h| {
        acc.iter_mut().zip(h).for_each(|(a, b)| *a += b);
        acc
    });
    println!("latency histogram (merged from {} slots):", m.latency.len());
    for (bound, n) in BUCKETS_US.iter().zip(hist) {
        let label = if *bound == u64::MAX {
            "+Inf".to_string()
        } else {
            format!("<= {bound} µs")
        };
        println!("  {label:<12} {n:>9}");
    }

    // The 4 request counters, `errors` and the `in_flight` gauge: which of them the contention
    // striped, and the bytes of cells those took.
    let idle_bytes = std::mem::size_of_val(&m.requests)
        + std::mem::size_of_val(&m.errors)
        + std::mem::size_of_val(&m.in_flight);
    let counters = m.requests.iter().chain([&m.errors]);
    let striped =
        counters.clone().filter(|c| c.is_striped()).count() + usize::from(m.in_flight.is_striped());
    let heap = counters.map(Counter::heap_bytes).sum::<usize>() + m.in_flight.heap_bytes();
    println!(
        "memory: 5 counters and a gauge take {idle_bytes} bytes while idle; this run striped \
         {striped} of the 6, {heap} bytes of cells in all"
    );

    let mut ours: Vec<f64> = runs.iter().map(|r| r.ms).collect();
    let (t, t_min, t_max) = summary(&mut ours);
    let (a, a_min, a_max) = summary(&mut std_ms);
    println!(
        "the same load, 2 threads, median (range) of {ROUNDS} rounds in alternating order: \
         thrifty counters + PerCpu histogram {t:.1} ms ({t_min:.1}-{t_max:.1}, while being \
         scraped), shared AtomicU64s + Mutex histogram {a:.1} ms ({a_min:.1}-{a_max:.1})"
    );
}
