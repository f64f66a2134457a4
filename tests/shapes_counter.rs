//! `Counter` used the way programs use it, one test per shape: a registry of thousands bumped
//! at random from two threads and far more threads than cores (threads that exit or go idle
//! holding cells: `shapes_counter_exit.rs`), a handler that makes the same few adds per request,
//! and a worker that adds blind after a registry and then joins a hot striped counter. Each
//! checks the count and the memory, never timings.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Barrier;
use std::time::Instant;
use thrifty::counter::Counter;

#[path = "common/at_once.rs"]
mod at_once;

/// Looks ([`at_once::LOOK`], counted past a [`at_once::STREAK`]) in which both threads of a test
/// that waits for contention must have run at once with the other before the test fails: 0.4 s
/// of running at once, in which two threads making the same few adds per request probe a counter
/// they share a few thousand times (a thread probes about every 4 096th add), where striping
/// takes four hits in eight probes.
const AT_ONCE: u64 = at_once::STRIPES_WITHIN;

/// xorshift64 mapped onto `0..n`.
fn next(x: &mut u64, n: usize) -> usize {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    (((*x >> 32) * n as u64) >> 32) as usize
}

#[test]
fn a_registry_of_ten_thousand_bumped_at_random_stays_compact() {
    // Under Miri, 1 000 counters and 20 adds each (natively 200 each).
    const N: usize = if cfg!(miri) { 1_000 } else { 10_000 };
    const ADDS: u64 = if cfg!(miri) { 20_000 } else { 2_000_000 };
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
    const ADDS: u64 = if cfg!(miri) { 400 } else { 20_000 };
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

/// A request handler that makes the same 8 adds per request: one to a counter every thread
/// shares (requests served), seven to counters of its own. The shared counter sits at each place
/// of the sequence in turn. A thread samples its adds for contention; if the samples fell on
/// the same place of every request (a sample every 4096th add exactly: 8 divides 4096), the
/// shared counter would be sampled at one place only and, anywhere else, never stripe.
///
/// Striping needs the two threads to run at once, and the scheduler decides when they do
/// ([`at_once`]): the test fails if a place never stripes once both threads ran at once for
/// [`AT_ONCE`] looks, and ends untested if a deadline for the whole test (all places) comes
/// first. Under Miri, whose clock moves with the code it runs, three places took 300 s (seed 1),
/// so the deadline is an hour there.
#[test]
fn a_hot_counter_in_a_repeating_sequence_of_adds_stripes_wherever_it_sits() {
    const ADDS_PER_REQUEST: usize = 8;
    /// Requests between two beats of a thread's watch.
    const BATCH: usize = 8;
    let deadline = Instant::now() + at_once::PATIENCE;
    for place in 0..ADDS_PER_REQUEST {
        let hot = Counter::new();
        let (striped, start) = (AtomicBool::new(false), Barrier::new(2));
        let together = at_once::Together::new(2);
        let requests: u64 = std::thread::scope(|s| {
            let workers: Vec<_> = (0..2)
                .map(|i| {
                    let (hot, striped, start, together) = (&hot, &striped, &start, &together);
                    s.spawn(move || {
                        let own: Vec<Counter> =
                            (1..ADDS_PER_REQUEST).map(|_| Counter::new()).collect();
                        together.spread(i);
                        let mut watch = together.watch(i);
                        start.wait();
                        let mut requests = 0u64;
                        while !striped.load(Relaxed)
                            && together.at_once() < AT_ONCE
                            && Instant::now() < deadline
                        {
                            for _ in 0..1024 / BATCH {
                                for _ in 0..BATCH {
                                    for k in 0..ADDS_PER_REQUEST {
                                        match k.cmp(&place) {
                                            std::cmp::Ordering::Equal => hot.incr(),
                                            std::cmp::Ordering::Less => own[k].incr(),
                                            std::cmp::Ordering::Greater => own[k - 1].incr(),
                                        }
                                    }
                                }
                                watch.beat();
                            }
                            requests += 1024;
                            if hot.is_striped() {
                                striped.store(true, Relaxed);
                            }
                        }
                        assert!(own.iter().all(|c| c.sum() == requests && !c.is_striped()));
                        requests
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!(hot.sum(), requests);
        let looks = together.at_once();
        if !hot.is_striped() && looks < AT_ONCE {
            at_once::not_tested(&format!(
                "shapes_counter, a hot counter in a repeating sequence: the two threads ran at \
                 once for {looks} looks before the deadline; places {place} to {}",
                ADDS_PER_REQUEST - 1
            ));
            return;
        }
        assert!(
            hot.is_striped(),
            "the shared counter at place {place} of {ADDS_PER_REQUEST} never striped \
             ({requests} requests, {looks} looks at once)"
        );
    }
}

#[test]
fn a_worker_that_adds_blind_finds_its_cell_in_a_hot_counter_within_an_interval() {
    // A worker bumps a registry of compact counters long enough that it adds blind (no read of
    // a counter's state word after its add): past a fresh thread's first 1 024 adds, which end
    // with no striped counter seen, and past its first probes, as a server's worker is. Then
    // it joins a counter two other threads striped. Its adds there go to the counter's own total
    // until its next probe, which comes within one interval (6 143 adds at most) and lands
    // there, since all its ticking adds do; from then on it owns a cell.
    let (worker_ages, hot_adds) = if cfg!(miri) {
        ([40, 80], 20)
    } else {
        ([1_500, 20_000], 7_000)
    };
    let hot = Counter::with_cells(4);
    let Some(striping) = at_once::stripe(
        || hot.is_striped(),
        || hot.incr(),
        "shapes_counter, a worker that adds blind",
    ) else {
        return;
    };
    let registry: Vec<Counter> = (0..1000).map(|_| Counter::new()).collect();
    for registry_adds in worker_ages {
        let owns = std::thread::scope(|s| {
            s.spawn(|| {
                let mut x = 0x9e37_79b9_7f4a_7c15u64;
                (0..registry_adds).for_each(|_| registry[next(&mut x, 1000)].incr());
                (0..hot_adds).for_each(|_| hot.incr());
                format!("{:?}", hot.local()).contains("owns_cell: true")
            })
            .join()
            .unwrap()
        });
        assert!(
            owns,
            "a worker after {registry_adds} adds never found a cell of its own"
        );
    }
    assert_eq!(hot.sum(), striping + 2 * hot_adds);
    assert_eq!(
        registry.iter().map(Counter::sum).sum::<u64>(),
        worker_ages.iter().sum::<u64>()
    );
    assert!(registry.iter().all(|c| !c.is_striped()));
}
