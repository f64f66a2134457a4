//! The registry tables: thousands of counters, each increment on a random one (a metrics
//! registry: requests per route, errors per code), and the mixed shape of 100 cold counters
//! and 1 hot one. Every candidate walks the same xorshift index sequence (seeded by the thread
//! index), so they bump the same counters in the same order, each in a registry of its own (the
//! candidates' rounds alternate, and one that followed a round on the same counters would start
//! with them in its cache where the others start cold). Under each table: how many thrifty
//! counters striped during the workload and the bytes per counter at its end. The registry also
//! runs an `AtomicU64` padded to 16 bytes, a compact `Counter`'s size: what the size alone costs
//! where twice the memory holds the same counters (fewer of them fit in each cache level). And
//! an `AtomicU64` bumped by a load and a compare-exchange: the least an 8-byte counter must do
//! that keeps its count and its striped form in one word (it reads the word to choose its path),
//! so the row bounds what such a design could reach. Last, thrifty's `Counter` bumped by threads
//! that each added to a striped counter first (a server's threads all bump its hot request
//! counter): their memo of striped counters is then not empty, and each add reads it.

use crate::counter::striped_counter;
use crate::harness::{Candidate, Harness};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use thrifty::counter::Counter;

/// An `AtomicU64` that takes as much room as a compact `Counter` (16 bytes, aligned to 16).
#[repr(align(16))]
struct Padded(AtomicU64);

/// Adds `n` as a one-word counter that reads its word first would: a relaxed load, then a
/// compare-exchange from what it read (retried with what it finds).
#[inline(always)]
fn load_and_cas(word: &AtomicU64, n: u64) {
    let mut seen = word.load(Relaxed);
    while let Err(now) = word.compare_exchange_weak(seen, seen.wrapping_add(n), Relaxed, Relaxed) {
        seen = now;
    }
}

/// A thread's index sequence: xorshift64, mapped onto `0..n` by a multiply and a shift.
struct Indices {
    x: u64,
    n: u64,
}

impl Indices {
    fn new(thread: usize, n: usize) -> Self {
        Self {
            x: (thread as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
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

/// A registry candidate's body: each thread walks its own index sequence over `n` counters and
/// bumps each index (generic, so each candidate's loop is compiled for its own `bump`).
fn at_random(
    n: usize,
    bump: impl Fn(usize) + Send + Sync + 'static,
) -> impl Fn(usize, u64) + Send + Sync + 'static {
    move |t, ops| {
        let mut at = Indices::new(t, n);
        for _ in 0..ops {
            bump(at.next());
        }
    }
}

/// What a thrifty registry left behind: share striped, bytes per counter (inline + heap).
fn footprint(counters: &[Counter]) -> (f64, f64) {
    let striped = counters.iter().filter(|c| c.is_striped()).count();
    let heap: usize = counters.iter().map(Counter::heap_bytes).sum();
    let bytes = std::mem::size_of_val(counters) + heap;
    (
        100.0 * striped as f64 / counters.len() as f64,
        bytes as f64 / counters.len() as f64,
    )
}

pub fn run(h: &mut Harness) {
    let mut t = h.table(
        "counter",
        "a registry: increment a random counter of n, from every thread",
    );
    // The counter each thread of the registry's last row adds to first.
    let hot = striped_counter();
    for n in [1_000usize, 10_000, 100_000] {
        for threads in t.threads(&[1, 2]) {
            let atomics: Arc<Vec<AtomicU64>> =
                Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
            let padded: Arc<Vec<Padded>> =
                Arc::new((0..n).map(|_| Padded(AtomicU64::new(0))).collect());
            let loaded: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
            let mutexes: Arc<Vec<Mutex<u64>>> = Arc::new((0..n).map(|_| Mutex::new(0)).collect());
            let counters: Arc<Vec<Counter>> = Arc::new((0..n).map(|_| Counter::new()).collect());
            let kept = Arc::clone(&counters);
            // A registry of its own, as every candidate has (the module doc says why).
            let after_hot: Arc<Vec<Counter>> = Arc::new((0..n).map(|_| Counter::new()).collect());
            let after_kept = Arc::clone(&after_hot);
            let hot = Arc::clone(&hot);
            t.workload(
                &format!("{n} counters"),
                threads,
                vec![
                    Candidate::std(
                        "AtomicU64::fetch_add",
                        at_random(n, move |i| {
                            atomics[i].fetch_add(black_box(1), Relaxed);
                        }),
                    ),
                    Candidate::new(
                        "AtomicU64 in 16 B",
                        at_random(n, move |i| {
                            padded[i].0.fetch_add(black_box(1), Relaxed);
                        }),
                    ),
                    Candidate::new(
                        "AtomicU64, load + CAS",
                        at_random(n, move |i| load_and_cas(&loaded[i], black_box(1))),
                    ),
                    Candidate::new(
                        "Mutex<u64>",
                        at_random(n, move |i| *mutexes[i].lock().unwrap() += black_box(1)),
                    ),
                    Candidate::new(
                        "thrifty Counter",
                        at_random(n, move |i| counters[i].add(black_box(1))),
                    ),
                    Candidate::new("thrifty Counter, after a striped one", {
                        let bump = at_random(n, move |i| after_hot[i].add(black_box(1)));
                        move |t, ops| {
                            // Two adds: the first strays and finds the thread's cell, the
                            // second goes to it; the thread's memo now holds the counter.
                            hot.add(black_box(1));
                            hot.add(black_box(1));
                            bump(t, ops)
                        }
                    }),
                ],
            );
            let (striped, bytes) = footprint(&kept);
            let (after_striped, after_bytes) = footprint(&after_kept);
            t.note(format!(
                "  {n} counters, {threads} thread(s): thrifty Counter {striped:.2}% striped, \
                 {bytes:.1} B per counter (after a striped one: {after_striped:.2}%, \
                 {after_bytes:.1} B; AtomicU64 {} B, Mutex<u64> {} B)",
                std::mem::size_of::<AtomicU64>(),
                std::mem::size_of::<Mutex<u64>>()
            ));
        }
    }
    drop(t);

    let mut t = h.table(
        "counter",
        "mixed: 100 cold counters and 1 hot one; every other increment is the hot one",
    );
    for threads in t.threads(&[2]) {
        let atomics: Arc<Vec<AtomicU64>> = Arc::new((0..101).map(|_| AtomicU64::new(0)).collect());
        let counters: Arc<Vec<Counter>> = Arc::new((0..101).map(|_| Counter::new()).collect());
        let kept = Arc::clone(&counters);
        // Index 100 is the hot counter.
        let pick = |at: &mut Indices| {
            let i = at.next();
            if i % 2 == 0 {
                100
            } else {
                i / 2
            }
        };
        t.workload(
            "100 cold + 1 hot",
            threads,
            vec![
                Candidate::std("AtomicU64::fetch_add", move |t, ops| {
                    let mut at = Indices::new(t, 200);
                    for _ in 0..ops {
                        atomics[pick(&mut at)].fetch_add(black_box(1), Relaxed);
                    }
                }),
                Candidate::new("thrifty Counter", move |t, ops| {
                    let mut at = Indices::new(t, 200);
                    for _ in 0..ops {
                        counters[pick(&mut at)].add(black_box(1));
                    }
                }),
            ],
        );
        let (striped, bytes) = footprint(&kept);
        t.note(format!(
            "  {threads} thread(s): thrifty Counter {striped:.1}% of {} striped (hot one: {}), \
             {bytes:.1} B per counter",
            kept.len(),
            if kept[100].is_striped() { "yes" } else { "no" }
        ));
    }
}
