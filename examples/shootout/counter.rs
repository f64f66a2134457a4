//! The counter table: one hot counter bumped by every thread. A shared `AtomicU64` drags its
//! cache line between cores; `thrifty::counter::Counter` stripes over owner-written cells; the
//! thread-local row is the physical upper bound (a plain add, flushed once at the end). The
//! `local` handle row looks the thread's cell up once per thread instead of once per add.
//! The second workload bumps two hot counters in turn, 8 apart in one `Vec` (128 bytes: the
//! same entry of a thread's table of striped counters, which must hold both).

use crate::harness::{Candidate, Harness};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use thrifty::counter::Counter;

pub fn run(h: &mut Harness) {
    let mut t = h.table("counter", "increment one shared counter from every thread");
    for threads in t.threads(&[1, 2, 4]) {
        let atomic = Arc::new(AtomicU64::new(0));
        let mutex = Arc::new(Mutex::new(0u64));
        let flushed = Arc::new(AtomicU64::new(0));
        let counter = Arc::new(Counter::new());
        let handled = Arc::new(Counter::new());
        t.workload(
            "incr",
            threads,
            vec![
                Candidate::std("AtomicU64::fetch_add", move |_, ops| {
                    for _ in 0..ops {
                        atomic.fetch_add(black_box(1), Relaxed);
                    }
                }),
                Candidate::new("Mutex<u64>", move |_, ops| {
                    for _ in 0..ops {
                        *mutex.lock().unwrap() += black_box(1);
                    }
                }),
                Candidate::new("thread-local, flushed (bound)", move |_, ops| {
                    let mut local = 0u64;
                    for _ in 0..ops {
                        local += black_box(1);
                    }
                    flushed.fetch_add(local, Relaxed);
                }),
                Candidate::new("thrifty Counter", move |_, ops| {
                    for _ in 0..ops {
                        counter.add(black_box(1));
                    }
                }),
                Candidate::new("thrifty Counter::local handle", move |_, ops| {
                    let mut local = handled.local();
                    for _ in 0..ops {
                        local.add(black_box(1));
                    }
                }),
            ],
        );
        let atomics: Arc<Vec<AtomicU64>> = Arc::new((0..=8).map(|_| AtomicU64::new(0)).collect());
        let counters: Arc<Vec<Counter>> = Arc::new((0..=8).map(|_| Counter::new()).collect());
        t.workload(
            "incr 2 hot, 8 apart",
            threads,
            vec![
                Candidate::std("AtomicU64::fetch_add", move |_, ops| {
                    for i in 0..ops as usize {
                        atomics[(i & 1) * 8].fetch_add(black_box(1), Relaxed);
                    }
                }),
                Candidate::new("thrifty Counter", move |_, ops| {
                    for i in 0..ops as usize {
                        counters[(i & 1) * 8].add(black_box(1));
                    }
                }),
            ],
        );
    }
}
