//! The loop `scripts/counter_instructions.sh` counts under callgrind: `n` increments of random
//! counters in a registry of 10 000 on one thread, from `AtomicU64` or thrifty's `Counter`.
//!
//! `cargo run --release --example counter_loop -- <atomic|counter> <n> [threads]` (threads
//! other than 1 are for timing by hand: each runs its own index sequence on the same registry).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use thrifty::counter::Counter;

/// Registry size.
const N: u64 = 10_000;

/// xorshift64 mapped onto `0..N`, as the shootout's registry table does.
#[inline(always)]
fn next(x: &mut u64) -> usize {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    (((*x >> 32) * N) >> 32) as usize
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "counter".into());
    let n: u64 = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("an increment count"));
    let threads: u64 = args
        .next()
        .map_or(1, |t| t.parse().expect("a thread count"));
    let atomics: Vec<AtomicU64> = (0..N).map(|_| AtomicU64::new(0)).collect();
    let counters: Vec<Counter> = (0..N).map(|_| Counter::new()).collect();
    let run = |t: u64| {
        let mut x = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(t + 1);
        match which.as_str() {
            "atomic" => (0..n).for_each(|_| {
                atomics[next(&mut x)].fetch_add(black_box(1), Relaxed);
            }),
            "counter" => (0..n).for_each(|_| counters[next(&mut x)].add(black_box(1))),
            other => panic!("unknown candidate {other:?}: atomic or counter"),
        }
    };
    let start = std::time::Instant::now();
    if threads == 1 {
        run(0);
    } else {
        std::thread::scope(|s| (0..threads).for_each(|t| drop(s.spawn(move || run(t)))));
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    let striped = counters.iter().filter(|c| c.is_striped()).count();
    // Only `counter` uses the `Counter`s: the atomics have no striped state to report.
    let striped = match which.as_str() {
        "counter" => format!("; {striped} of {N} striped"),
        _ => String::new(),
    };
    eprintln!("{which}, {threads} thread(s): {ns:.2} ns per increment per thread{striped}");
}
