//! `measure` counts exactly: known workloads produce known allocator calls, on this thread only,
//! while other tests of this binary allocate on their own threads in parallel.

#![cfg(not(loom))]

use std::collections::HashMap;
use std::hint::black_box;
use thrifty::measure::{self, AllocStats, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// Also the proof that the counter itself never allocates: if recording an allocation
/// allocated, this span would show more than one call (or recurse without end).
#[test]
fn with_capacity_is_one_allocation_of_the_exact_size() {
    let (v, stats) = measure::count(|| Vec::<u32>::with_capacity(black_box(10)));
    assert_eq!(
        stats,
        AllocStats {
            allocs: 1,
            bytes_allocated: 40,
            ..AllocStats::default()
        },
        "{stats}"
    );
    let ((), freed) = measure::count(|| drop(v));
    assert_eq!(
        freed,
        AllocStats {
            deallocs: 1,
            bytes_deallocated: 40,
            ..AllocStats::default()
        }
    );
}

#[test]
fn string_grown_by_doubling_shows_its_reallocations() {
    // String doubles from 8 bytes: 8, 16, 32, 64, 128 for 100 bytes: one alloc, four reallocs.
    let mut s = String::new();
    let ((), stats) = measure::count(|| {
        for _ in 0..100 {
            s.push(black_box('x'));
        }
    });
    assert_eq!(stats.allocs, 1, "{stats}");
    assert_eq!(stats.reallocs, 4, "{stats}");
    assert_eq!(stats.bytes_allocated, 8 + 16 + 32 + 64 + 128, "{stats}");
    assert_eq!(
        stats.bytes_deallocated,
        8 + 16 + 32 + 64,
        "the old blocks, via realloc"
    );
    assert_eq!(stats.net_bytes(), s.capacity() as i64);
    assert_eq!(stats.calls(), 5);
}

#[test]
fn reuse_without_growth_counts_nothing() {
    let mut buf = Vec::<u8>::with_capacity(4096);
    let ((), stats) = measure::count(|| {
        for round in 0..100u8 {
            buf.clear();
            buf.extend(std::iter::repeat_n(round, 4000));
        }
    });
    assert!(stats.is_zero(), "{stats}");
}

#[test]
fn box_and_zeroed_allocations_count_once_each() {
    let ((a, b), stats) = measure::count(|| (Box::new(black_box(7u64)), vec![0u8; black_box(256)]));
    assert_eq!(stats.allocs, 2, "{stats}");
    assert_eq!(stats.bytes_allocated, 8 + 256);
    drop((a, b));
}

#[test]
fn other_threads_are_not_counted_but_are_in_the_totals() {
    let before_total = measure::total_stats();
    let (handle_result, stats) = measure::count(|| {
        // The spawned thread allocates 1000 boxes; none of that is ours.
        std::thread::spawn(|| {
            for i in 0..1000u64 {
                black_box(Box::new(i));
            }
        })
    });
    handle_result.join().unwrap();
    // Spawning allocates a little on this thread (thread handle, packet); never 1000.
    assert!(stats.allocs < 20, "{stats}");
    let total = measure::total_stats() - before_total;
    assert!(total.allocs >= 1000, "the totals see every thread: {total}");
}

/// More threads than the totals have stripes (16), each allocating and freeing 1 000 boxes of
/// 8 bytes (50 under Miri, where 1 000 each did not finish in a 10-minute run): the totals see
/// every call, whichever stripe each thread was dealt.
#[test]
fn the_totals_see_every_thread_past_the_stripes() {
    const BOXES: u64 = if cfg!(miri) { 50 } else { 1000 };
    let before = measure::total_stats();
    let threads: Vec<_> = (0..40)
        .map(|_| {
            std::thread::spawn(|| {
                for i in 0..BOXES {
                    drop(black_box(Box::new(i)));
                }
            })
        })
        .collect();
    // Joined one by one: a join waits for the thread's exit, its frees included.
    threads.into_iter().for_each(|t| t.join().unwrap());
    let total = measure::total_stats() - before;
    assert!(total.allocs >= 40 * BOXES, "{total}");
    assert!(total.deallocs >= 40 * BOXES, "{total}");
    assert!(total.bytes_allocated >= 40 * BOXES * 8, "{total}");
}

#[test]
fn counts_stay_exact_while_other_threads_allocate_heavily() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let noise: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut m = HashMap::new();
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    m.insert(i % 512, vec![0u8; (i % 300) as usize]);
                    i += 1;
                }
            })
        })
        .collect();
    for n in 1..50usize {
        let (v, stats) = measure::count(|| (0..n).map(Box::new).collect::<Vec<_>>());
        // n boxes plus the Vec, which `collect` sizes exactly from the range's length.
        assert_eq!(stats.allocs, n as u64 + 1, "n={n}: {stats}");
        assert_eq!(stats.reallocs, 0, "n={n}: {stats}");
        drop(v);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    noise.into_iter().for_each(|t| t.join().unwrap());
}

#[test]
fn spans_subtract_and_nest() {
    let outer_before = measure::thread_stats();
    let (_inner, inner) = measure::count(|| Box::new(black_box(1u8)));
    let _extra = black_box(Box::new(2u16));
    let outer = measure::thread_stats() - outer_before;
    assert_eq!(inner.allocs, 1);
    assert_eq!(outer.allocs, 2, "{outer}");
}

#[test]
fn installed_reports_the_global_allocator() {
    assert!(measure::installed());
}
