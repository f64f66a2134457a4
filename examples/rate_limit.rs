//! A shared rate limit in front of a simulated downstream, and a per-client limit under a flood
//! of distinct client keys.
//!
//! `cargo run --release --example rate_limit`
//!
//! Part 1: four threads call a downstream that can take 2,000 calls per second. One shared
//! `TokenBucket` holds them to that rate (burst 50); the classic mistake, a bucket per thread,
//! lets four times the rate through. An `InFlight` gate of 3 sheds requests beyond what the
//! downstream's 2 connections (a `Semaphore`) and one waiter can hold.
//!
//! Part 2: 200,000 distinct client keys in one simulated second (as from spoofed addresses),
//! each limited to 5 per second with a burst of 2. The `KeyedLimiter` forgets clients whose
//! bucket has refilled, so the map stays within about twice the number of clients seen in the
//! last 400 ms.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use thrifty::limit::{InFlight, KeyedLimiter, ManualClock, Semaphore, TokenBucket};

const THREADS: usize = 4;
const RATE: u64 = 2_000;
const RUN: Duration = Duration::from_millis(500);

fn main() {
    shared_limit();
    keyed_flood();
}

fn shared_limit() {
    let shared = TokenBucket::new(RATE, 50).unwrap();
    let gate = InFlight::new(3);
    let connections = Semaphore::new(2);
    let (served, limited) = (AtomicU64::new(0), AtomicU64::new(0));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                while start.elapsed() < RUN {
                    // 1. rate, 2. shed, 3. wait for a connection (see `thrifty::limit`).
                    if shared.try_acquire(1).is_err() {
                        limited.fetch_add(1, Relaxed);
                        std::thread::sleep(Duration::from_micros(50));
                        continue;
                    }
                    let Some(_admitted) = gate.try_enter() else {
                        continue; // shed: a real service answers 503 here
                    };
                    let Ok(_conn) = connections.acquire_timeout(1, Duration::from_millis(5)) else {
                        continue;
                    };
                    std::thread::sleep(Duration::from_micros(100)); // the downstream call
                    served.fetch_add(1, Relaxed);
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let served = served.load(Relaxed);
    println!("shared TokenBucket({RATE}/s, burst 50), {THREADS} threads, {secs:.2} s:");
    println!(
        "  served {served} ({:.0}/s; the bound burst + rate x elapsed is {:.0}), \
         refused {} times, shed {}",
        served as f64 / secs,
        50.0 + RATE as f64 * secs,
        limited.load(Relaxed),
        gate.shed()
    );
    assert!(served as f64 <= 50.0 + RATE as f64 * secs);

    // The mistake: one bucket per thread (per handler) multiplies the limit.
    let through = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let mine = TokenBucket::new(RATE, 50).unwrap();
                while start.elapsed() < RUN {
                    if mine.try_acquire(1).is_ok() {
                        through.fetch_add(1, Relaxed);
                    } else {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "a bucket per thread instead: {:.0}/s reach the downstream, {:.1}x the intended rate",
        through.load(Relaxed) as f64 / secs,
        through.load(Relaxed) as f64 / secs / RATE as f64
    );
}

fn keyed_flood() {
    let clock = ManualClock::new();
    let per_client: KeyedLimiter<u64, _> = KeyedLimiter::with_clock(5, 2, clock.clone()).unwrap();
    let (mut most, mut refused) = (0, 0u64);
    for ms in 0..1_000u64 {
        for i in 0..200u64 {
            let client = ms * 200 + i;
            // Each new client sends two requests at once and a third 1 ms later.
            for _ in 0..2 {
                per_client.try_acquire(&client, 1).unwrap();
            }
            if ms > 0 && per_client.try_acquire(&(client - 200), 1).is_err() {
                refused += 1;
            }
        }
        most = most.max(per_client.len());
        clock.advance(Duration::from_millis(1));
    }
    let live = 200 * 400; // clients whose bucket is still refilling (burst / rate = 400 ms)
    println!(
        "KeyedLimiter(5/s, burst 2), 200,000 distinct clients in 1 simulated second: \
         at most {most} keys held ({:.2}x the {live} still refilling), \
         {refused} third requests refused",
        most as f64 / live as f64
    );
    assert!(most <= 2 * live + 200);
    clock.advance(Duration::from_secs(1));
    println!(
        "after 1 s of quiet, evict_idle removes {} keys, leaving {}",
        per_client.evict_idle(),
        per_client.len()
    );
}
