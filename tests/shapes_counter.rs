//! `Counter` used the way programs use it, one test per shape: a registry of thousands bumped
//! at random from two threads and far more threads than cores (threads that exit or go idle
//! holding cells: `shapes_counter_exit.rs`). Each checks the count and the memory, never timings.

use std::sync::Barrier;
use thrifty::counter::Counter;

/// xorshift64 mapped onto `0..n`.
fn next(x: &mut u64, n: usize) -> usize {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    (((*x >> 32) * n as u64) >> 32) as usize
}

#[test]
fn a_registry_of_ten_thousand_bumped_at_random_stays_compact() {
    const N: usize = 10_000;
    const ADDS: u64 = 2_000_000;
    let registry: Vec<Counter> = (0..N).map(|_| Counter::new()).collect();
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (registry, start) = (&registry, &start);
            s.spawn(move || {
                let mut x = (t + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                start.wait();
                for _ in 0..ADDS {
                    registry[next(&mut x, N)].incr();
                }
            });
        }
    });
    let striped = registry.iter().filter(|c| c.is_striped()).count();
    assert!(striped * 100 <= N, "{striped} of {N} striped (over 1%)");
    let bytes = std::mem::size_of_val(&registry[..])
        + registry.iter().map(Counter::heap_bytes).sum::<usize>();
    assert!(bytes <= 32 * N, "{} bytes per counter", bytes / N);
    assert_eq!(registry.iter().map(Counter::sum).sum::<u64>(), 2 * ADDS);
}

#[test]
fn fifty_threads_on_two_cores_lose_nothing_and_stay_bounded() {
    const THREADS: u64 = 50;
    const ADDS: u64 = 20_000;
    let c = Counter::new();
    let start = Barrier::new(THREADS as usize);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (c, start) = (&c, &start);
            s.spawn(move || {
                start.wait();
                (0..ADDS).for_each(|_| c.add(t));
            });
        }
    });
    assert_eq!(c.sum(), ADDS * (0..THREADS).sum::<u64>());
    // Never more cells than a power of two covering the threads' slots (dense: below ~51).
    assert!(c.cells() <= 64, "{} cells", c.cells());
    if c.cells() >= 2 {
        let line = c.heap_bytes() / (2 * c.cells() - 2);
        assert_eq!(c.heap_bytes(), (2 * c.cells() - 2) * line);
    }
}
