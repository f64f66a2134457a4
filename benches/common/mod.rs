//! The one threaded timing loop every bench uses, so thread counts mean the same thing in each
//! (and the same as in the shootout harness), and a crowd of idle threads to run it beside.
#![allow(dead_code)] // each bench binary uses what it needs

use std::sync::Barrier;
use std::time::{Duration, Instant};

#[path = "../../examples/common/start_line.rs"]
mod start_line;
pub use start_line::StartLine;

/// Runs `warm()` then, released together by a [`StartLine`], `body(iters)` on each of `threads`
/// threads. Returns the wall time from the first thread's start to the last one's end: thread
/// spawning and warm-up are outside the span.
pub fn on_threads(
    threads: usize,
    iters: u64,
    warm: &(dyn Fn() + Sync),
    body: &(dyn Fn(u64) + Sync),
) -> Duration {
    let line = StartLine::new(threads);
    // Pausing is per thread: each worker pauses itself if the caller is paused (time passes).
    let paused = thrifty::measure::is_paused();
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let _paused = paused.then(thrifty::measure::pause);
                    warm();
                    line.wait();
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
    let noun = if threads == 1 { "thread" } else { "threads" };
    if threads > cores {
        format!("{threads} {noun} (oversubscribed)")
    } else {
        format!("{threads} {noun}")
    }
}

/// Threads that run a setup closure once and then sleep, parked on a channel, until the crowd
/// is dropped: the idle workers a server keeps alive. Spawn one per benchmark (or per group),
/// never per iteration.
pub struct Idle {
    wake: Vec<std::sync::mpsc::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Idle {
    /// Spawns `n` threads, each running `setup` once; returns when every `setup` has returned.
    pub fn spawn(n: usize, setup: impl Fn() + Send + Sync + 'static) -> Self {
        let setup = std::sync::Arc::new(setup);
        let ready = std::sync::Arc::new(Barrier::new(n + 1));
        let (mut wake, mut threads) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let (setup, ready) = (setup.clone(), ready.clone());
            threads.push(std::thread::spawn(move || {
                setup();
                ready.wait();
                let _ = rx.recv(); // parked until the crowd is dropped
            }));
            wake.push(tx);
        }
        ready.wait();
        Self { wake, threads }
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        self.wake.clear(); // each thread's `recv` fails: it exits
        for t in self.threads.drain(..) {
            t.join().expect("idle thread panicked");
        }
    }
}

/// What one timed run reports to each of a bench's two passes: its wall time to the timing
/// pass, its allocator calls to the allocation pass (`thrifty::measure::Allocations`).
pub trait Pick: criterion::measurement::Measurement {
    fn pick(span: Duration, allocs: u64) -> Self::Value;
}

impl Pick for criterion::measurement::WallTime {
    fn pick(span: Duration, _: u64) -> Duration {
        span
    }
}

impl Pick for thrifty::measure::Allocations {
    fn pick(_: Duration, allocs: u64) -> u64 {
        allocs
    }
}
