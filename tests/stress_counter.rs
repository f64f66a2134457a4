//! Stress: many real threads, thread churn (slots handed from exiting threads to new ones),
//! concurrent takes, and adds from thread-local destructors (threads that have given their slot
//! back). Checks counts, never timings: the final totals equal the increments made.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use thrifty::counter::{Counter, Gauge, PerCpu};

#[path = "common/at_once.rs"]
mod at_once;

const THREADS: usize = 16;
const ADDS: u64 = if cfg!(miri) { 200 } else { 20_000 };

#[test]
fn many_threads_lose_nothing() {
    // Fewer cells than threads: owned cells, shared words and the compact phase all in play.
    for cells in [1, 4, 64] {
        let c = Counter::with_cells(cells);
        let g = Gauge::with_cells(cells);
        let start = Barrier::new(THREADS);
        std::thread::scope(|s| {
            for t in 0..THREADS as u64 {
                let (c, g, start) = (&c, &g, &start);
                s.spawn(move || {
                    start.wait();
                    for i in 0..ADDS {
                        c.add(t + 1);
                        g.add(if i % 2 == 0 { 3 } else { -2 });
                    }
                });
            }
        });
        let expected = ADDS * (1..=THREADS as u64).sum::<u64>();
        assert_eq!(c.sum(), expected, "{cells} cells");
        assert_eq!(g.value(), THREADS as i64 * ADDS as i64 / 2, "{cells} cells");
    }
}

#[test]
fn takes_during_adds_partition_the_total() {
    let c = Counter::new();
    let taken = AtomicU64::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut mine = 0;
                while !stop.load(Ordering::Relaxed) {
                    let got = c.take();
                    mine += got;
                    taken.fetch_add(got, Ordering::Relaxed);
                    // `sum` never counts again what this thread's takes (which happen-before it)
                    // took: at most the adds there will be, less those.
                    let sum = c.sum();
                    assert!(
                        sum <= THREADS as u64 * ADDS - mine,
                        "sum {sum} after this thread took {mine}"
                    );
                }
            });
        }
        let adders: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..ADDS {
                        c.incr();
                    }
                })
            })
            .collect();
        for a in adders {
            a.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let total = taken.load(Ordering::Relaxed) + c.take();
    assert_eq!(
        total,
        THREADS as u64 * ADDS,
        "every add in exactly one take"
    );
}

/// Whether the calling thread owns one of `c`'s cells, as its handle reports.
fn owns_a_cell(c: &Counter) -> bool {
    format!("{:?}", c.local()).contains("owns_cell: true")
}

#[test]
fn thread_churn_hands_cells_on_without_loss() {
    // Waves of short-lived threads on a striped counter: each wave reuses the slots (and so the
    // owned cells) the previous one gave back, and keeps adding to the values left there.
    let c = Counter::with_cells(4);
    let Some(striping) = at_once::stripe(
        || c.is_striped(),
        || c.incr(),
        "stress_counter, thread churn",
    ) else {
        return;
    };
    // Short-lived threads: a fresh thread first probes after 3 072 adds at the earliest, so
    // these never stripe a counter by themselves.
    let (waves, adds) = if cfg!(miri) { (3, 50) } else { (50, 1000) };
    let mut owners = 0;
    for _ in 0..waves {
        owners += std::thread::scope(|s| {
            let threads: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        for _ in 0..adds {
                            c.incr();
                        }
                        owns_a_cell(&c)
                    })
                })
                .collect();
            // By hand: a join waits for the thread's slot claim to end, so the next wave finds
            // its cell free.
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .filter(|&owned| owned)
                .count()
        });
    }
    assert_eq!(c.sum(), striping + waves * 6 * adds);
    // The waves' threads own cells, taking over those of threads that exited before them.
    assert!(
        owners >= waves as usize,
        "{owners} of {} threads owned a cell: the waves did not hand cells on",
        waves * 6
    );
}

static TEARDOWN: Counter = Counter::new();
static TEARDOWN_GAUGE: Gauge = Gauge::new();

struct AddOnDrop;

impl Drop for AddOnDrop {
    fn drop(&mut self) {
        // Runs during thread-local teardown: the thread's slot may already be given back (and
        // held by a new thread), so these adds must take the shared `base` path.
        for _ in 0..100 {
            TEARDOWN.incr();
            TEARDOWN_GAUGE.add(1);
        }
    }
}

thread_local! {
    static ON_EXIT: AddOnDrop = const { AddOnDrop };
}

#[test]
fn adds_from_thread_local_destructors_are_kept() {
    // Striped first: on a compact counter every add takes `base` anyway, and the short-lived
    // threads below never stripe it by themselves.
    let Some(counter_adds) = at_once::stripe(
        || TEARDOWN.is_striped(),
        || TEARDOWN.incr(),
        "stress_counter, adds from thread-local destructors (counter)",
    ) else {
        return;
    };
    let Some(gauge_adds) = at_once::stripe(
        || TEARDOWN_GAUGE.is_striped(),
        || TEARDOWN_GAUGE.add(1),
        "stress_counter, adds from thread-local destructors (gauge)",
    ) else {
        return;
    };
    let per_thread = PerCpu::with_slots(4, || 0u64);
    let (rounds, adds) = if cfg!(miri) { (3, 50) } else { (20, 1000) };
    for _ in 0..rounds {
        std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        ON_EXIT.with(|_| ());
                        for _ in 0..adds {
                            TEARDOWN.incr();
                            TEARDOWN_GAUGE.add(1);
                            per_thread.with(|n| *n += 1);
                        }
                    })
                })
                .collect();
            // By hand: `scope` returns when the threads' main functions have finished, a join
            // when their thread-local destructors have too.
            threads.into_iter().for_each(|t| t.join().unwrap());
        });
    }
    let expected = rounds * 4 * (adds + 100);
    assert!(TEARDOWN.is_striped() && TEARDOWN_GAUGE.is_striped());
    assert_eq!(TEARDOWN.sum(), counter_adds + expected);
    assert_eq!(TEARDOWN_GAUGE.value(), (gauge_adds + expected) as i64);
    assert_eq!(per_thread.fold(0, |a, n| a + n), rounds * 4 * adds);
}
