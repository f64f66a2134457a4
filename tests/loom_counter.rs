//! loom models of `thrifty::counter`: the adaptive rule (contending once stays compact,
//! lasting contention stripes), concurrent adds, striping racing adds, `sum` and `take`, and
//! `set` racing adds (one add per thread, so the gauge stays compact); no increment is ever
//! lost or counted twice. (Growth racing an owner's add and a sum is modelled in
//! `src/counter/cells.rs`, which can force a doubling.) The models whose case is striping count
//! the executions that striped and fail if none did.
//!
//! Under loom every add probes (`adapt::SAMPLE` is 1), a probe is one load, and 2 hits stripe:
//! one add per thread can hit at most once, so the first two models bracket the rule.
//!
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom_counter`
//!
//! Under loom the slot registry is the real one: a thread takes a slot on its first striped add
//! and gives it back when it exits, and the next thread to claim gets the lowest free index. A
//! thread spawned after another exited may so inherit its slot, and with it a cell whose owner
//! is dead, which it takes over. Counters here have two cells, so with three threads alive two
//! slots meet on a cell, and all the paths (compact `fetch_add` and probe, owned load + store,
//! takeover, shared `fetch_add`) meet in these models.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use thrifty::counter::{Counter, Gauge, PerCpu};

#[path = "common/loom.rs"]
mod loom_model;

fn model(f: impl Fn() + Sync + Send + 'static) {
    loom_model::model(f);
}

#[test]
fn loom_concurrent_adds_lose_nothing() {
    model(|| {
        let c = Arc::new(Counter::with_cells(2));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || {
                    c.add(1);
                    c.add(10);
                })
            })
            .collect();
        c.add(100);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(c.sum(), 122);
    });
}

#[test]
fn loom_expansion_races_adds_and_sum() {
    // Executions where the counter striped, so the sums raced the expansion.
    static STRIPED: AtomicUsize = AtomicUsize::new(0);
    model(|| {
        let c = Arc::new(Counter::with_cells(2));
        // The main thread's add completes before any sum below starts.
        c.add(1);
        let adders: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || {
                    c.add(2);
                    c.add(2);
                })
            })
            .collect();
        let first = c.sum();
        let second = c.sum();
        assert!((1..=9).contains(&first), "sum {first} outside [done, all]");
        assert!(second >= first, "sum went backwards: {first} then {second}");
        for h in adders {
            h.join().unwrap();
        }
        assert_eq!(c.sum(), 9, "exact once quiescent");
        if c.is_striped() {
            STRIPED.fetch_add(1, SeqCst);
        }
    });
    assert!(
        STRIPED.load(SeqCst) > 0,
        "the counter never striped: the model did not reach its case"
    );
}

#[test]
fn loom_local_handles_race_expansion_and_sum() {
    // Executions where the counter striped, so the handles raced the expansion.
    static STRIPED: AtomicUsize = AtomicUsize::new(0);
    model(|| {
        let c = Arc::new(Counter::with_cells(2));
        let adders: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || {
                    // Made while the counter may still be compact: the handle must find its cell
                    // after the expansion, or keep taking the shared path, and lose nothing.
                    let mut local = c.local();
                    local.add(1);
                    local.add(2);
                    local.add(4);
                })
            })
            .collect();
        let mut local = c.local();
        local.add(100);
        let seen = c.sum();
        assert!(
            (100..=114).contains(&seen),
            "sum {seen} outside [done, all]"
        );
        for h in adders {
            h.join().unwrap();
        }
        local.add(1000);
        assert_eq!(c.sum(), 1114, "exact once quiescent");
        if c.is_striped() {
            STRIPED.fetch_add(1, SeqCst);
        }
    });
    assert!(
        STRIPED.load(SeqCst) > 0,
        "the counter never striped: the model did not reach its case"
    );
}

#[test]
fn loom_take_counts_each_add_exactly_once() {
    model(|| {
        let c = Arc::new(Counter::with_cells(2));
        let adder = {
            let c = c.clone();
            thread::spawn(move || {
                c.add(1);
                c.add(2);
            })
        };
        let other = {
            let c = c.clone();
            thread::spawn(move || c.add(4))
        };
        let taken = c.take();
        assert!(taken <= 7);
        let after = c.sum();
        assert!(
            after <= 7 - taken,
            "sum {after} counts some of take's {taken} again"
        );
        adder.join().unwrap();
        other.join().unwrap();
        assert_eq!(taken + c.take(), 7);
        assert_eq!(c.sum(), 0);
    });
}

#[test]
fn loom_gauge_set_is_all_or_nothing_per_add() {
    model(|| {
        let g = Arc::new(Gauge::with_cells(2));
        let adders: Vec<_> = [1i64, 2]
            .into_iter()
            .map(|n| {
                let g = g.clone();
                thread::spawn(move || g.add(n))
            })
            .collect();
        g.set(10);
        for h in adders {
            h.join().unwrap();
        }
        // Each add lands wholly before the set (overwritten) or wholly after (kept).
        let v = g.value();
        assert!([10, 11, 12, 13].contains(&v), "value {v}");
    });
}

#[test]
fn loom_per_cpu_shared_slot_takes_turns() {
    model(|| {
        let p = Arc::new(PerCpu::with_slots(1, || 0u32));
        let other = {
            let p = p.clone();
            thread::spawn(move || p.with(|n| *n += 1))
        };
        p.with(|n| *n += 2);
        other.join().unwrap();
        assert_eq!(p.fold(0, |a, n| a + n), 3);
    });
}

/// A thread owns a cell and exits; the next thread spawned takes its slot and, finding the
/// owner's claim ended, takes the cell over and goes on from the value left in it, while the
/// main thread adds too (claiming a slot, if its first add did not): the sum is exact.
///
/// The counter stripes only when contention lasts, so the model starts with three adds on each
/// of two threads; the schedules where it did not stripe stop there (and the test checks that
/// some did stripe).
#[test]
fn loom_a_dead_owners_cell_is_taken_over() {
    static STRIPED: AtomicUsize = AtomicUsize::new(0);
    model(|| {
        let c = Arc::new(Counter::with_cells(2));
        let a = {
            let c = c.clone();
            // Owns its home cell from its first add after the counter stripes.
            thread::spawn(move || (0..3).for_each(|_| c.add(1)))
        };
        (0..3).for_each(|_| c.add(10));
        a.join().unwrap();
        if !c.is_striped() {
            assert_eq!(c.sum(), 33);
            return;
        }
        STRIPED.fetch_add(1, SeqCst);
        let b = {
            let c = c.clone();
            thread::spawn(move || {
                c.add(100);
                c.add(200);
            })
        };
        c.add(400);
        b.join().unwrap();
        assert_eq!(c.sum(), 733);
    });
    assert!(
        STRIPED.load(SeqCst) > 0,
        "the counter never striped: the model did not reach its case"
    );
}

/// The adaptive rule, first half: two threads that contend once (one add each, both probing
/// under loom) never stripe the counter, in any interleaving, and the sum is exact.
#[test]
fn loom_contending_once_stays_compact() {
    model(|| {
        let c = Arc::new(Counter::new());
        let other = {
            let c = c.clone();
            thread::spawn(move || c.add(1))
        };
        c.add(2);
        other.join().unwrap();
        assert!(!c.is_striped(), "one collision striped the counter");
        assert_eq!(c.heap_bytes(), 0);
        assert_eq!(c.sum(), 3);
    });
}

/// The adaptive rule, second half: when contention lasts (three adds each), some interleavings
/// stripe the counter; in every one the sum is exact, including the adds that raced the
/// striping.
#[test]
fn loom_lasting_contention_stripes_and_loses_nothing() {
    static STRIPED: AtomicUsize = AtomicUsize::new(0);
    model(|| {
        let c = Arc::new(Counter::new());
        let other = {
            let c = c.clone();
            thread::spawn(move || (0..3).for_each(|_| c.add(1)))
        };
        (0..3).for_each(|_| c.add(10));
        other.join().unwrap();
        if c.is_striped() {
            STRIPED.fetch_add(1, SeqCst);
            assert_eq!(c.cells(), 2, "stripes to 2 cells");
        }
        assert_eq!(c.sum(), 33);
    });
    assert!(
        STRIPED.load(SeqCst) > 0,
        "lasting contention never striped the counter"
    );
}
