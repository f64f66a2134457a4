//! The one threaded timing loop every bench uses, so thread counts mean the same thing in each
//! (and the same as in the shootout harness).
#![allow(dead_code)] // each bench binary uses what it needs

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Runs `warm()` then, released together by a barrier, `body(iters)` on each of `threads`
/// threads. Returns the wall time from the first thread's start to the last one's end: thread
/// spawning and warm-up are outside the span.
pub fn on_threads(
    threads: usize,
    iters: u64,
    warm: &(dyn Fn() + Sync),
    body: &(dyn Fn(u64) + Sync),
) -> Duration {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    warm();
                    barrier.wait();
                    let start = Instant::now();
                    body(iters);
                    (start, Instant::now())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    end - start
}

/// A benchmark id's thread label, marking counts above the cores as oversubscribed.
pub fn label(threads: usize) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads > cores {
        format!("{threads} threads (oversubscribed)")
    } else {
        format!("{threads} threads")
    }
}
