//! dhat: what `thrifty::counter` allocates, asserted. Increments, sums, takes, sets and
//! `PerCpu::with` never allocate; compact counters never allocate, even thousands of them
//! bumped from two threads; striping allocates exactly once (2 cells) and each doubling exactly
//! once more.
//!
//! dhat's profiler is global (it sees every thread), so one `#[test]` runs every case in turn,
//! and multi-thread cases read the stats only while their threads wait at a barrier.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Barrier;
use thrifty::counter::{Counter, Gauge, PerCpu};

mod common;
use common::{allocates_nothing, heap, park_once, warm_up_threads};
#[path = "common/at_once.rs"]
mod at_once;
use at_once::Contention;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    warm_up_threads(|| Counter::with_cells(1).incr());
    compact_counter_allocates_nothing();
    local_handles_on_compact_counters_allocate_nothing();
    a_registry_bumped_from_two_threads_allocates_nothing_while_compact();
    expansion_allocates_exactly_once();
    growth_allocates_once_per_doubling();
    striped_increments_and_sums_allocate_nothing();
    per_cpu_with_allocates_nothing();
    dropping_frees_the_cells();
}

fn compact_counter_allocates_nothing() {
    let before = heap();
    let c = Counter::new();
    let g = Gauge::new();
    for i in 0..10_000 {
        c.incr();
        c.add(i);
        g.add(2);
        g.sub(1);
        if i % 100 == 0 {
            std::hint::black_box((c.sum(), g.value()));
        }
    }
    assert_eq!(c.take(), 10_000 + 9_999 * 10_000 / 2);
    g.set(3);
    c.reset();
    let after = heap();
    assert!(!c.is_striped(), "one thread never contends");
    assert_eq!(
        after.total_blocks, before.total_blocks,
        "compact path allocated"
    );
}

/// `Counter::local` and `Gauge::local` handles allocate nothing of their own, as their docs say.
fn local_handles_on_compact_counters_allocate_nothing() {
    let c = Counter::new();
    let g = Gauge::new();
    allocates_nothing("local handles on compact counters", || {
        for _ in 0..100 {
            let mut local = c.local();
            let mut level = g.local();
            for _ in 0..100 {
                local.incr();
                level.add(2);
                level.sub(1);
            }
        }
        assert_eq!((c.sum(), g.value()), (10_000, 10_000));
        assert!(
            !c.is_striped() && !g.is_striped(),
            "one thread never contends"
        );
    });
}

/// Runs `work` on two threads at once; returns the heap stats just before and just after it,
/// read while both threads wait at a barrier (they already hold slots).
fn on_two_threads(work: impl Fn() + Sync) -> (dhat::HeapStats, dhat::HeapStats) {
    on_threads(2, work)
}

/// Runs `work` on `n` threads at once, as `on_two_threads`.
fn on_threads(n: usize, work: impl Fn() + Sync) -> (dhat::HeapStats, dhat::HeapStats) {
    let gate = Barrier::new(n + 1);
    let mut stats = None;
    std::thread::scope(|s| {
        let mut threads = Vec::new();
        for _ in 0..n {
            threads.push(s.spawn(|| {
                // Take the thread's slot, and park once, before the measured span: a thread's
                // first park sets up parking_lot's per-thread data (its destructor registration
                // allocates), and PerCpu's slot locks may park.
                Counter::with_cells(1).incr();
                park_once();
                gate.wait(); // main reads `before`
                gate.wait();
                work();
                gate.wait(); // main reads `after`
                gate.wait();
            }));
        }
        gate.wait();
        let before = heap();
        gate.wait();
        gate.wait();
        let after = heap();
        gate.wait();
        stats = Some((before, after));
        common::join_all(threads);
    });
    stats.unwrap()
}

/// What each thread of `on_two_threads` runs to bump `c` until contention has expanded it (two
/// threads hammering one word soon collide), or `wait`'s patience ends.
fn until_striped<'a>(c: &'a Counter, wait: &'a Contention) -> impl Fn() + Sync + 'a {
    move || _ = wait.add_until(|| c.is_striped(), || c.incr())
}

/// A wait for two threads to stripe a counter.
fn contention() -> Contention {
    Contention::new(2, at_once::STRIPES_WITHIN)
}

/// Ten thousand compact counters, each bumped at random from two threads (the registry shape):
/// nothing allocates while they stay compact, and the few that stripe allocate one block each.
fn a_registry_bumped_from_two_threads_allocates_nothing_while_compact() {
    let registry: Vec<Counter> = (0..10_000).map(|_| Counter::new()).collect();
    let (before, after) = on_two_threads(|| {
        static SEED: AtomicU64 = AtomicU64::new(1);
        let mut x = SEED
            .fetch_add(1, Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            registry[(x % 10_000) as usize].incr();
        }
    });
    let striped = registry.iter().filter(|c| c.is_striped()).count() as u64;
    assert_eq!(
        after.total_blocks - before.total_blocks,
        striped,
        "one block per striped counter, nothing else"
    );
    assert!(striped <= 100, "{striped} of 10 000 counters striped");
    assert_eq!(registry.iter().map(Counter::sum).sum::<u64>(), 400_000);
}

fn expansion_allocates_exactly_once() {
    let mut line = 0;
    for cells in [1, 2, 8] {
        let c = Counter::with_cells(cells);
        let wait = contention();
        let (before, after) = on_two_threads(until_striped(&c, &wait));
        if !wait.reached(c.is_striped(), "alloc_counter, striping allocates once") {
            continue;
        }
        assert_eq!(
            after.total_blocks - before.total_blocks,
            1,
            "striping, cap {cells}"
        );
        assert_eq!(
            (after.total_bytes - before.total_bytes) as usize,
            c.heap_bytes(),
            "the one block is the cells"
        );
        assert_eq!(c.cells(), cells.min(2), "starts at 2 cells (or the cap)");
        if cells == 1 {
            line = c.heap_bytes();
            assert!(line >= 64 && line % 64 == 0, "a cell is whole cache lines");
        }
        assert_eq!(c.heap_bytes(), c.cells() * line);
    }
}

/// Three threads on a counter capped at 4 cells: it stripes to 2 (one block), and the thread
/// that must share a cell makes it double to 4 (one more block): two blocks in all.
fn growth_allocates_once_per_doubling() {
    let what = "alloc_counter, growth allocates once per doubling";
    let line = {
        let (one, wait) = (Counter::with_cells(1), contention());
        on_two_threads(until_striped(&one, &wait));
        if !wait.reached(one.is_striped(), what) {
            return;
        }
        one.heap_bytes()
    };
    // Patience only: the counter doubles once the thread that shares a cell runs at the same
    // moment as that cell's owner, and the witness sees only that each thread ran beside some
    // other (on 2 CPUs, the pair may share one while the third runs on the other, for seconds).
    // `model_counter` fails a counter that never grows.
    let (c, wait) = (Counter::with_cells(4), Contention::new(3, u64::MAX));
    let (before, after) = on_threads(3, || _ = wait.add_until(|| c.cells() == 4, || c.incr()));
    if !wait.reached(c.cells() == 4, what) {
        return;
    }
    assert_eq!(
        after.total_blocks - before.total_blocks,
        2,
        "one block to stripe, one to double"
    );
    assert_eq!(
        (after.total_bytes - before.total_bytes) as usize,
        c.heap_bytes(),
        "the blocks are the cells"
    );
    assert_eq!(
        c.heap_bytes(),
        (2 + 4) * line,
        "2 cells, then 4; the 2 are kept"
    );
}

fn striped_increments_and_sums_allocate_nothing() {
    // One cell: one thread owns it, the other adds to its shared word; 8 cells: both own one.
    for cells in [1, 8] {
        let c = Counter::with_cells(cells);
        let g = Gauge::with_cells(cells);
        let what = "alloc_counter, striped adds allocate nothing";
        let wait = contention();
        on_two_threads(until_striped(&c, &wait));
        if !wait.reached(c.is_striped(), what) {
            return;
        }
        let wait = contention();
        on_two_threads(|| _ = wait.add_until(|| g.is_striped(), || g.add(1)));
        if !wait.reached(g.is_striped(), what) {
            return;
        }
        let before_sum = c.sum();
        let (before, after) = on_two_threads(|| {
            for i in 0..100_000u64 {
                c.incr();
                g.add(1);
                if i % 1000 == 0 {
                    std::hint::black_box((c.sum(), g.value()));
                }
            }
        });
        assert_eq!(
            after.total_blocks, before.total_blocks,
            "striped adds allocated ({cells} cells)"
        );
        assert_eq!(c.sum(), before_sum + 200_000);
        let (before, after) = on_two_threads(|| {
            let mut local = c.local();
            let mut level = g.local();
            for _ in 0..100_000u64 {
                local.incr();
                level.sub(1);
            }
        });
        assert_eq!(
            after.total_blocks, before.total_blocks,
            "handle adds allocated ({cells} cells)"
        );
        let before_sum = before_sum + 200_000;
        assert_eq!(c.sum(), before_sum + 200_000);
        let before = heap();
        assert_eq!(c.take(), before_sum + 200_000);
        g.set(-5);
        c.reset();
        assert_eq!(
            heap().total_blocks,
            before.total_blocks,
            "take/set allocated"
        );
    }
}

fn per_cpu_with_allocates_nothing() {
    // Its memory, as its docs give it: `len()` slots of `size_of::<Mutex<T>>()` (`T` and a
    // lock byte) rounded up to a multiple of 128 bytes (8 bytes take 128, 128 take 256, 320 take
    // 384).
    let before = heap();
    let small = PerCpu::with_slots(4, || 0u64);
    let line = PerCpu::with_slots(4, || [0u64; 16]);
    let big = PerCpu::with_slots(4, || [0u64; 40]);
    let bytes = heap().curr_bytes - before.curr_bytes;
    if cfg!(target_arch = "x86_64") {
        assert_eq!(bytes, 4 * 128 + 4 * 256 + 4 * 384, "PerCpu's slots");
    }
    drop((small, line, big));
    let p = PerCpu::with_slots(2, || [0u64; 8]);
    let (before, after) = on_two_threads(|| {
        for i in 0..100_000usize {
            p.with(|h| h[i % 8] += 1);
        }
        std::hint::black_box(p.fold(0, |a, h| a + h.iter().sum::<u64>()));
    });
    assert_eq!(
        after.total_blocks, before.total_blocks,
        "PerCpu::with allocated"
    );
    assert_eq!(p.fold(0, |a, h| a + h.iter().sum::<u64>()), 200_000);
}

fn dropping_frees_the_cells() {
    let (c, wait) = (Counter::with_cells(4), contention());
    on_two_threads(until_striped(&c, &wait));
    if !wait.reached(c.is_striped(), "alloc_counter, dropping frees the cells") {
        return;
    }
    let cells = c.heap_bytes() as u64;
    let before = heap(); // the threads were joined, their destructors have run
    drop(c);
    let after = heap();
    assert_eq!(
        before.curr_bytes - after.curr_bytes,
        cells as usize,
        "cells not freed"
    );
    assert_eq!(before.curr_blocks - after.curr_blocks, 1);
}
