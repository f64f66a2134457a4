//! A metrics aggregator over Zipf-skewed keys: worker threads record events (a metric name and
//! a value) into one shared map of per-name statistics, the way a StatsD-style collector or a
//! per-route latency table does. A few names take a large share of the events (Zipf, s = 1.0,
//! over 50,000 names: the hottest alone about 9%, the top 10 about a quarter), so the hot
//! names' shards see far more than their share of the writes.
//!
//! `cargo run --release --example hot_keys [threads]`
//!
//! It runs the same events through `Mutex<HashMap<String, Stats>>` and
//! `ShardedMap<String, Stats>` (both hashing with foldhash), each on a fresh map, for 3 rounds
//! in alternating order, and prints the median throughput of each with its range, the
//! allocations per event (none after the first sight of a name: lookups borrow the `&str`),
//! and the hottest names.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;
use thrifty::map::{FastRandomState, ShardedMap};
use thrifty::measure::{self, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

const NAMES: usize = 50_000;
const EVENTS_PER_THREAD: usize = 1_000_000;

/// What the aggregator keeps per metric name.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Stats {
    count: u64,
    sum: u64,
    max: u64,
}

impl Stats {
    fn record(&mut self, value: u64) {
        self.count += 1;
        self.sum += value;
        self.max = self.max.max(value);
    }
}

/// Each thread's events: indices into the name table drawn from Zipf(1.0), and values.
fn events(thread: usize) -> Vec<(usize, u64)> {
    let cdf: Vec<f64> = (1..=NAMES)
        .scan(0.0, |acc, r| {
            *acc += 1.0 / r as f64;
            Some(*acc)
        })
        .collect();
    let mut state = 0x2545_F491_4F6C_DD1D ^ (thread as u64 + 1);
    (0..EVENTS_PER_THREAD)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64 * cdf[NAMES - 1];
            let rank = cdf.partition_point(|&c| c < u).min(NAMES - 1);
            (rank, state % 1000)
        })
        .collect()
}

/// Runs every thread's events through `record`; returns events per second and the allocator
/// calls per event.
fn drive(
    names: &[String],
    load: &[Vec<(usize, u64)>],
    record: impl Fn(&str, u64) + Sync,
) -> (f64, f64) {
    let start = Instant::now();
    let calls: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = load
            .iter()
            .map(|events| {
                let record = &record;
                s.spawn(move || {
                    let ((), stats) = measure::count(|| {
                        for &(name, value) in events {
                            record(&names[name], value);
                        }
                    });
                    stats.calls()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let events = (load.len() * EVENTS_PER_THREAD) as f64;
    (
        events / start.elapsed().as_secs_f64(),
        calls as f64 / events,
    )
}

type Locked = Mutex<HashMap<String, Stats, FastRandomState>>;

/// One run on a fresh `Mutex<HashMap>`: events per second, allocator calls per event, the table.
fn run_locked(
    names: &[String],
    load: &[Vec<(usize, u64)>],
) -> (f64, f64, HashMap<String, Stats, FastRandomState>) {
    // The same hasher for both (foldhash): the comparison is of the locking, not the hash.
    let locked: Locked = Mutex::new(HashMap::with_hasher(FastRandomState::new()));
    let (rate, allocs) = drive(names, load, |name, value| {
        let mut map = locked.lock().unwrap();
        match map.get_mut(name) {
            Some(stats) => stats.record(value),
            None => map.entry(name.to_owned()).or_default().record(value),
        }
    });
    (rate, allocs, locked.into_inner().unwrap())
}

/// One run on a fresh `ShardedMap`: events per second, allocator calls per event, the table.
fn run_sharded(
    names: &[String],
    load: &[Vec<(usize, u64)>],
) -> (f64, f64, ShardedMap<String, Stats>) {
    let sharded: ShardedMap<String, Stats> = ShardedMap::new();
    let (rate, allocs) = drive(names, load, |name, value| {
        // A borrowed key: a `String` is made only the first time a name is seen.
        sharded.get_or_insert_with_ref(name, Stats::default, |s| s.record(value));
    });
    (rate, allocs, sharded)
}

#[path = "common/summary.rs"]
mod summary;
use summary::{in_turn, summary};

/// Rounds of the two, the order alternating: on a shared machine one run proves little.
const ROUNDS: usize = 3;

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .map(|t| t.parse().expect("threads: a number"))
        .unwrap_or(2);
    let names: Vec<String> = (0..NAMES)
        .map(|i| format!("service.route{i}.latency_ms"))
        .collect();
    let load: Vec<_> = (0..threads).map(events).collect();

    let (mut locked_rates, mut sharded_rates) = (vec![], vec![]);
    let mut last = None;
    for round in 0..ROUNDS {
        let (l, s) = in_turn(
            round,
            || run_locked(&names, &load),
            || run_sharded(&names, &load),
        );
        locked_rates.push(l.0 / 1e6);
        sharded_rates.push(s.0 / 1e6);
        last = Some((l, s));
    }
    let ((_, locked_allocs, locked), (_, sharded_allocs, sharded)) = last.unwrap();

    // Both saw the same events: the tables must agree.
    assert_eq!(locked.len(), sharded.len());
    for (name, stats) in &locked {
        assert_eq!(sharded.get_cloned(name.as_str()), Some(*stats), "{name}");
    }

    println!(
        "{threads} threads x {EVENTS_PER_THREAD} events over {NAMES} Zipf(1.0) names ({} seen)",
        locked.len()
    );
    let (l, l_min, l_max) = summary(&mut locked_rates);
    let (s, s_min, s_max) = summary(&mut sharded_rates);
    println!("  M events/s: median of {ROUNDS} rounds in alternating order (range)");
    println!(
        "  Mutex<HashMap>   {l:>6.1} ({l_min:.1}-{l_max:.1}) M events/s   \
         {locked_allocs:.4} allocs/event"
    );
    println!(
        "  ShardedMap       {s:>6.1} ({s_min:.1}-{s_max:.1}) M events/s   \
         {sharded_allocs:.4} allocs/event   ({:.2}x the Mutex median, {} shards)",
        s / l,
        sharded.shard_count()
    );
    let mut hottest: Vec<_> = locked.iter().collect();
    hottest.sort_by_key(|(_, stats)| std::cmp::Reverse(stats.count));
    for (name, stats) in hottest.iter().take(3) {
        let share = 100.0 * stats.count as f64 / (threads * EVENTS_PER_THREAD) as f64;
        println!(
            "  {name:<32} {:>8} events ({share:.1}%)  max {}",
            stats.count, stats.max
        );
    }
    println!(
        "One name is one key and one key is one shard: the hottest name alone sends {:.0}% of \
         all writes to a single shard.",
        100.0 * hottest[0].1.count as f64 / (threads * EVENTS_PER_THREAD) as f64
    );
}
