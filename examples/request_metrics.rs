//! Request metrics for a small service: a `Counter` per endpoint, a `Gauge` of requests in
//! flight and a `PerCpu` latency histogram, under two threads of simulated load while a scraper
//! takes the deltas every 5 ms, the way a Prometheus exporter would.
//!
//! `cargo run --release --example request_metrics`
//!
//! It prints the scraped totals, the merged latency histogram, what the counters cost in memory
//! (compact until contended), and the same load timed with std's shared atomics and a `Mutex`
//! histogram.

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

fn main() {
    let m = Metrics {
        requests: Default::default(),
        errors: Counter::new(),
        in_flight: Gauge::new(),
        latency: PerCpu::new(|| [0u64; 6]),
    };
    let idle_bytes: usize = std::mem::size_of_val(&m.requests) + std::mem::size_of_val(&m.errors);

    // Two threads of load; the main thread scrapes deltas every 5 ms meanwhile.
    let done = AtomicBool::new(false);
    let mut scraped = [0u64; 4];
    let mut scrapes = 0;
    let started = Instant::now();
    std::thread::scope(|s| {
        let load: Vec<_> = SEEDS
            .into_iter()
            .map(|seed| {
                let m = &m;
                s.spawn(move || serve(m, seed))
            })
            .collect();
        s.spawn(|| {
            for h in load {
                h.join().unwrap();
            }
            done.store(true, Relaxed);
        });
        while !done.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
            for (total, c) in scraped.iter_mut().zip(&m.requests) {
                *total += c.take();
            }
            scrapes += 1;
        }
    });
    let thrifty_time = started.elapsed();
    for (total, c) in scraped.iter_mut().zip(&m.requests) {
        *total += c.take(); // the last delta
    }

    println!(
        "{scrapes} scrapes while 2 threads served {} requests:",
        2 * REQUESTS_PER_THREAD
    );
    for (name, n) in ENDPOINTS.iter().zip(scraped) {
        println!("  {name:<16} {n:>9}");
    }
    assert_eq!(
        scraped.iter().sum::<u64>(),
        2 * REQUESTS_PER_THREAD,
        "a take lost or doubled a request"
    );
    assert_eq!(m.in_flight.value(), 0);
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

    let heap: usize =
        m.requests.iter().map(Counter::heap_bytes).sum::<usize>() + m.errors.heap_bytes();
    println!(
        "memory: 5 counters take {idle_bytes} bytes while idle; the contended ones expanded \
         once, {heap} bytes of cells in all"
    );

    // The same load through the std equivalents: a shared atomic per counter and one
    // `Mutex`-guarded histogram.
    let std_metrics = StdMetrics::default();
    let started = Instant::now();
    std::thread::scope(|s| {
        for seed in SEEDS {
            let m = &std_metrics;
            s.spawn(move || serve_std(m, seed));
        }
    });
    let std_time = started.elapsed();
    black_box(&std_metrics);
    println!(
        "the same load, 2 threads: thrifty counters + PerCpu histogram {:.1} ms (while being \
         scraped), shared AtomicU64s + Mutex histogram {:.1} ms",
        thrifty_time.as_secs_f64() * 1e3,
        std_time.as_secs_f64() * 1e3
    );
}
