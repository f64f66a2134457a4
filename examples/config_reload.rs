//! A service reads its configuration on every request while a reloader swaps in new settings
//! every millisecond. Two request threads per run; each request reads three settings. The
//! table compares `RwLock<HashMap>` (parking_lot) with `thrifty::map::CowMap`, read through a
//! per-thread `Reader`: requests per second and request latency percentiles (batches of 32
//! requests timed, divided by 32), each the median of 3 rounds of 400 ms in alternating order,
//! with the range. Last, how many old versions the `CowMap` kept alive while the readers ran.
//!
//! `cargo run --release --example config_reload` (`-- --quick` for a short run)

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Barrier;
use std::time::{Duration, Instant};
use thrifty::map::CowMap;

const SETTINGS: usize = 200;
const BATCH: u32 = 32;

/// The configuration as the reloader produces it: `generation` tags every value, so a request
/// can tell a half-applied reload (settings from two generations) from a whole one.
fn config(generation: u64) -> HashMap<String, String> {
    (0..SETTINGS)
        .map(|i| (format!("setting.{i}"), format!("{generation}:{i}")))
        .collect()
}

/// A request's read of three settings: their generations and total length.
trait View: FnMut(&[String; 3]) -> ([u64; 3], usize) {}
impl<F: FnMut(&[String; 3]) -> ([u64; 3], usize)> View for F {}

/// The generation a value was written by (its prefix up to `:`).
fn generation(value: &str) -> u64 {
    value.split(':').next().unwrap().parse().unwrap()
}

/// One request: `view` reads three settings from one view of the configuration and returns
/// their generations and total length; check they come from one reload (a reload is one
/// write: under the lock, or one `CowMap::update`).
fn handle(view: &mut dyn View, keys: &[String; 3]) -> usize {
    let (generations, len) = view(keys);
    assert!(
        generations.iter().all(|&g| g == generations[0]),
        "torn reload: {generations:?}"
    );
    len
}

/// Runs the request threads against `get` (one per thread, made by `reader`) while `reload`
/// runs every millisecond; returns millions of requests per second and the p50, p99 and p99.9
/// request latencies in ns.
fn run<R: View>(
    run_for: Duration,
    reader: &(dyn Fn() -> R + Sync),
    reload: &(dyn Fn(u64) + Sync),
) -> [f64; 4] {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(3);
    let keys: Vec<[String; 3]> = (0..64)
        .map(|i| [0, 7, 13].map(|o| format!("setting.{}", (i * 31 + o) % SETTINGS)))
        .collect();
    let (rate, mut times) = std::thread::scope(|s| {
        s.spawn(|| {
            start.wait();
            let mut generation = 1;
            // Also stops by itself, so a failed request thread cannot leave it running.
            let deadline = Instant::now() + run_for * 2 + Duration::from_secs(1);
            while !stop.load(Relaxed) && Instant::now() < deadline {
                reload(generation);
                generation += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut get = reader();
                    // Two batches a microsecond: four times what a 2-core box did; a machine that
                    // fills it stops early, with no reallocation while the reloader runs.
                    let mut times = Vec::with_capacity(run_for.as_micros() as usize * 2);
                    let (mut requests, mut sum) = (0u64, 0usize);
                    start.wait();
                    let began = Instant::now();
                    while began.elapsed() < run_for {
                        let t0 = Instant::now();
                        for i in 0..BATCH {
                            sum += handle(&mut get, &keys[(requests as usize + i as usize) % 64]);
                        }
                        times.push(t0.elapsed().as_nanos() as f64 / f64::from(BATCH));
                        requests += u64::from(BATCH);
                        if times.len() == times.capacity() {
                            break;
                        }
                    }
                    black_box(sum);
                    (requests as f64 / began.elapsed().as_secs_f64(), times)
                })
            })
            .collect();
        let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        stop.store(true, Relaxed);
        let rate: f64 = results.iter().map(|r| r.0).sum();
        let times: Vec<f64> = results.into_iter().flat_map(|r| r.1).collect();
        (rate, times)
    });
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    [rate / 1e6, pct(0.5), pct(0.99), pct(0.999)]
}

#[path = "common/summary.rs"]
mod summary;
use summary::{in_turn, summary};

/// Rounds of the two, the order alternating: on a shared machine one run proves little.
const ROUNDS: usize = 3;

/// A table cell: the median of `xs` and its range, to `places` decimal places.
fn cell(mut xs: Vec<f64>, places: usize) -> String {
    let (median, lo, hi) = summary(&mut xs);
    format!("{median:.places$} ({lo:.places$}-{hi:.places$})")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let run_for = Duration::from_millis(if quick { 20 } else { 400 });

    let lock = parking_lot::RwLock::new(config(0));
    let locked = || {
        run(
            run_for,
            &|| {
                |keys: &[String; 3]| {
                    let config = lock.read(); // one guard per request: a consistent view
                    let values = keys.each_ref().map(|k| config[k].as_str());
                    (values.map(generation), values.iter().map(|v| v.len()).sum())
                }
            },
            &|g| {
                let next = config(g);
                let old = std::mem::replace(&mut *lock.write(), next);
                drop(old); // after the write lock is released, as `CowMap` does
            },
        )
    };

    let cow = CowMap::from_map(config(0));
    let most_retired = AtomicUsize::new(0);
    let copied = || {
        run(
            run_for,
            &|| {
                let mut reader = cow.reader();
                move |keys: &[String; 3]| {
                    let config = reader.map(); // one version per request: a consistent view
                    let values = keys.each_ref().map(|k| config[k].as_str());
                    (values.map(generation), values.iter().map(|v| v.len()).sum())
                }
            },
            &|g| {
                let next = config(g);
                // One batch: every setting replaced in one copy, published at once.
                cow.update(|m| m.extend(next));
                most_retired.fetch_max(cow.retired_versions(), Relaxed);
            },
        )
    };

    let (mut rounds_locked, mut rounds_copied) = (vec![], vec![]);
    for round in 0..ROUNDS {
        let (l, c) = in_turn(round, locked, copied);
        rounds_locked.push(l);
        rounds_copied.push(c);
    }

    println!("config reload: 2 request threads, 3 settings read per request, reload every 1 ms");
    println!("median (range) of {ROUNDS} rounds of {run_for:?} each, in alternating order:");
    println!("| map | M requests/s | p50 ns | p99 ns | p99.9 ns |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, rounds) in [
        ("parking_lot RwLock<HashMap>", rounds_locked),
        ("thrifty CowMap + Reader", rounds_copied),
    ] {
        let column = |i: usize, places| cell(rounds.iter().map(|r| r[i]).collect(), places);
        println!(
            "| {name} | {} | {} | {} | {} |",
            column(0, 2),
            column(1, 0),
            column(2, 0),
            column(3, 0),
        );
    }
    println!(
        "old versions alive just after a reload, while the readers ran: at most {} (each one a \
         version a reader had not yet let go of, or a spare the next write reuses)",
        most_retired.into_inner()
    );
}
