//! What a rate limiter's clock costs on this machine: a bare `RDTSC`, a fenced one
//! (`LFENCE; RDTSC`), `Instant::now()`, and thrifty's `MonotonicClock::now()` (which reads the
//! TSC where the kernel keeps time on it); then `TokenBucket::try_acquire` against governor's
//! `check`, in alternating pairs, when every request is admitted and when every one is refused.
//!
//! `cargo run --release --example clock_cost`
//!
//! The pairs alternate the two candidates round by round, so a slow phase of a shared machine
//! hits both; the ratio printed is thrifty's time over governor's, median of 15 pairs.

use governor::{Quota, RateLimiter};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Instant;
use thrifty::limit::{Clock, MonotonicClock, TokenBucket};

/// Reads per timed loop.
const READS: u32 = 20_000_000;

/// Nanoseconds per call of `f`, over `READS` calls, best of three.
fn per_call(mut f: impl FnMut() -> u64) -> f64 {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let mut acc = 0u64;
            for _ in 0..READS {
                acc = acc.wrapping_add(f());
            }
            black_box(acc);
            start.elapsed().as_nanos() as f64 / f64::from(READS)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_lfence, _rdtsc};
        // SAFETY: RDTSC and LFENCE are in the x86-64 baseline and touch no memory.
        let bare = per_call(|| unsafe { _rdtsc() });
        // SAFETY: as above.
        let fenced = per_call(|| unsafe {
            _mm_lfence();
            _rdtsc()
        });
        println!("bare RDTSC                 {bare:6.2} ns");
        println!("LFENCE; RDTSC              {fenced:6.2} ns");
    }
    let epoch = Instant::now();
    let instant = per_call(|| epoch.elapsed().as_nanos() as u64);
    let clock = MonotonicClock::new();
    let monotonic = per_call(|| clock.now());
    let source = if clock.uses_tsc() { "TSC" } else { "Instant" };
    println!("Instant::now()             {instant:6.2} ns");
    println!("MonotonicClock::now()      {monotonic:6.2} ns (reads the {source})");

    for (shape, rate, burst) in [("admit", 1_000_000_000u32, 1_000_000u32), ("refuse", 1, 1)] {
        let bucket = TokenBucket::new(u64::from(rate), burst).unwrap();
        let quota = Quota::per_second(NonZeroU32::new(rate).unwrap())
            .allow_burst(NonZeroU32::new(burst).unwrap());
        let governor = RateLimiter::direct(quota);
        if shape == "refuse" {
            while bucket.try_acquire(1).is_ok() {}
            while governor.check().is_ok() {}
        }
        let n = 5_000_000;
        let mut ratios: Vec<f64> = (0..15)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..n {
                    black_box(bucket.try_acquire(black_box(1)).is_ok());
                }
                let ours = start.elapsed().as_secs_f64();
                let start = Instant::now();
                for _ in 0..n {
                    black_box(governor.check().is_ok());
                }
                ours / start.elapsed().as_secs_f64()
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "try_acquire, {shape:6}: thrifty / governor {:.2}x (median of 15 pairs; {:.2}x-{:.2}x)",
            ratios[7], ratios[0], ratios[14]
        );
    }
}
