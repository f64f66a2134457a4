//! A three-stage log pipeline: parse → transform → write, joined by two bounded channels, run
//! both ways: with plain `bounded` channels carrying a fresh `String` per record, and with
//! `recycling` channels whose slots keep their buffers. Prints throughput, each channel's
//! high-water mark and full-count (the backpressure a user would watch), and allocator calls per
//! record, for 3 rounds of the two in alternating order, then the median throughput ratio and
//! its range.
//!
//! Run: `cargo run --release --example pipeline`

use std::fmt::Write as _;
use std::hint::black_box;
use std::thread;
use std::time::Instant;
use thrifty::channel::{bounded, recycling, Stats};
use thrifty::measure::{self, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

const RECORDS: u64 = 200_000;
const CAPACITY: usize = 64;

/// The "parse" stage's output for record `i`: a log line.
fn parse(i: u64, out: &mut String) {
    write!(out, "{i} GET /api/items/{} 200 {}us", i % 997, 100 + i % 50).unwrap();
}

/// The "transform" stage: upper-cases the method and appends a tag.
fn transform(line: &str, out: &mut String) {
    out.push_str(line);
    out.make_ascii_uppercase();
    out.push_str(" [ok]");
}

/// The "write" stage: a checksum stands in for the output file.
fn write(line: &str, sum: &mut u64) {
    *sum = sum.wrapping_add(line.len() as u64);
}

struct Report {
    secs: f64,
    allocs: u64,
    stages: [Stats; 2],
    sum: u64,
}

fn plain() -> Report {
    let (parsed_tx, parsed_rx) = bounded::<String>(CAPACITY);
    let (done_tx, done_rx) = bounded::<String>(CAPACITY);
    let before = measure::total_stats();
    let start = Instant::now();
    let sum = thread::scope(|s| {
        let parser = s.spawn(move || {
            for i in 0..RECORDS {
                let mut line = String::new();
                parse(i, &mut line);
                parsed_tx.send(line).unwrap();
            }
        });
        let rx = parsed_rx.clone();
        let transformer = s.spawn(move || {
            for line in rx {
                let mut out = String::new();
                transform(&line, &mut out);
                done_tx.send(out).unwrap();
            }
        });
        let mut sum = 0;
        for line in &done_rx {
            write(&line, &mut sum);
        }
        join_both(parser, transformer);
        sum
    });
    let secs = start.elapsed().as_secs_f64();
    let allocs = (measure::total_stats() - before).allocs;
    Report {
        secs,
        allocs,
        stages: [parsed_rx.stats(), done_rx.stats()],
        sum,
    }
}

/// Joins the stage threads before the count is read: a join waits for a thread's exit (its
/// frees included), where the end of `thread::scope` waits only for the closures.
fn join_both(a: thread::ScopedJoinHandle<'_, ()>, b: thread::ScopedJoinHandle<'_, ()>) {
    a.join().unwrap();
    b.join().unwrap();
}

fn recycled() -> Report {
    let (parsed_tx, parsed_rx) = recycling(CAPACITY, || String::with_capacity(64));
    let (done_tx, done_rx) = recycling(CAPACITY, || String::with_capacity(64));
    let before = measure::total_stats();
    let start = Instant::now();
    let sum = thread::scope(|s| {
        let parser = s.spawn(move || {
            for i in 0..RECORDS {
                parsed_tx.send_with(|line| parse(i, line)).unwrap();
            }
        });
        let rx = parsed_rx.clone();
        let transformer = s.spawn(move || {
            // Read in place from one slot, write in place into the next stage's slot.
            while rx
                .recv_with(|line| done_tx.send_with(|out| transform(line, out)).unwrap())
                .is_ok()
            {}
        });
        let mut sum = 0;
        while done_rx.recv_with(|line| write(line, &mut sum)).is_ok() {}
        join_both(parser, transformer);
        sum
    });
    let secs = start.elapsed().as_secs_f64();
    let allocs = (measure::total_stats() - before).allocs;
    Report {
        secs,
        allocs,
        stages: [parsed_rx.stats(), done_rx.stats()],
        sum,
    }
}

fn print(name: &str, r: &Report) {
    let [a, b] = &r.stages;
    println!(
        "{name:10} {:>6.2} M records/s  {:>6.3} allocs/record  \
         parse→transform: peak {:>2}/{} full {:>6}  transform→write: peak {:>2}/{} full {:>6}",
        RECORDS as f64 / r.secs / 1e6,
        r.allocs as f64 / RECORDS as f64,
        a.high_water,
        a.capacity,
        a.full_sends,
        b.high_water,
        b.capacity,
        b.full_sends,
    );
}

#[path = "common/summary.rs"]
mod summary;
use summary::{in_turn, summary};

/// Rounds of the two, the order alternating: on a shared machine one run proves little.
const ROUNDS: usize = 3;

fn main() {
    println!("{RECORDS} log records through parse → transform → write, channels of {CAPACITY}:");
    let (mut ratios, mut fewer) = (vec![], u64::MAX);
    for round in 0..ROUNDS {
        let (a, b) = in_turn(round, plain, recycled);
        assert_eq!(a.sum, b.sum, "both pipelines wrote the same bytes");
        black_box((a.sum, b.sum));
        print("bounded", &a);
        print("recycling", &b);
        ratios.push(a.secs / b.secs);
        fewer = fewer.min(a.allocs.saturating_sub(b.allocs));
    }
    let (r, r_min, r_max) = summary(&mut ratios);
    println!(
        "recycling: {r:.2}x the throughput (median of {ROUNDS} rounds in alternating order, \
         {r_min:.2}-{r_max:.2}), at least {fewer} fewer allocations a run"
    );
}
