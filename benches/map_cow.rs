//! `thrifty::map::CowMap` against the read-mostly maps users pick today: `RwLock<HashMap>`
//! (parking_lot), `ArcSwap<HashMap>` (`load()` per read, and the per-thread `arc_swap::Cache`),
//! `papaya::HashMap` (pinned per read, and a per-thread guard refreshed every 64 reads, the
//! guard reuse papaya's docs encourage) and `evmap` (left-right), with thrifty's plain `read` and
//! its per-thread `Reader`.
//!
//! Every candidate holds the same `u64 -> u64` entries (1 k and 100 k) with the same hasher,
//! thrifty's default `FastRandomState` (foldhash); 2 reader threads look up keys from one
//! pseudo-random sequence of hits, through `black_box`. A writer thread overwrites one entry:
//! never, every 1 ms, or every 100 µs (a copy-on-write candidate copies the whole map per write;
//! at 100 k entries a copy takes longer than 100 µs, so that writer runs back to back). Two
//! readers and a writer on 2 cores are oversubscribed: the labels say so.
//!
//! Three parts:
//! - criterion group `map_cow/reader refresh`: a `Reader`'s read when nothing changed, and its
//!   first read after a write (the write is setup, untimed), at both sizes.
//! - criterion group `map_cow/read`: reads per second over both readers (one iteration is one
//!   read on each reader thread). Each reader thread makes its per-thread handle (a `Reader`,
//!   an `arc_swap::Cache`, a papaya guard, an evmap `ReadHandle`, which allocates) inside the
//!   timed span, once per sample: amortised over the sample's reads, and the same for every
//!   candidate with a handle.
//! - a latency table printed after it, for 1 reader thread (with the writer, not more threads
//!   than 2 cores) and for 2: per candidate and writer rate, read throughput, read latency
//!   p50/p99/p99.9 (of batches of 64 reads timed, divided by 64, sampled over the whole run:
//!   one slow read shows as a 64th of its delay), the writer's median write time, and
//!   allocations per read on the reader threads.
//!
//! `cargo bench --bench map_cow -- --warm-up-time 0.5 --measurement-time 1`
//! (the table alone: `cargo bench --bench map_cow -- table`; `MAP_COW_READERS=1,2,4,8` sets
//! its reader-thread counts, 1 and 2 by default)

use arc_swap::{ArcSwap, Cache};
use criterion::{BenchmarkId, Criterion, Throughput};
use std::collections::HashMap as StdHashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use thrifty::map::{CowMap, FastRandomState};

/// Every candidate's hasher.
type Hasher = FastRandomState;
/// Every candidate's map, or its contents.
type HashMap<K, V> = StdHashMap<K, V, Hasher>;
use thrifty::measure::{self, CountingAlloc};

mod common;
use common::on_threads;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// A map under test: shared state, a per-thread read handle, a write.
trait Subject: Send + Sync + 'static {
    type Handle<'a>;
    const NAME: &'static str;
    fn build(entries: u64) -> Self;
    fn handle(&self) -> Self::Handle<'_>;
    fn read(&self, h: &mut Self::Handle<'_>, key: u64) -> u64;
    fn write(&self, key: u64, value: u64);
}

fn contents(entries: u64) -> HashMap<u64, u64> {
    (0..entries).map(|k| (k, k)).collect()
}

struct RwLockMap(parking_lot::RwLock<HashMap<u64, u64>>);
impl Subject for RwLockMap {
    type Handle<'a> = ();
    const NAME: &'static str = "RwLock<HashMap> (parking_lot)";
    fn build(entries: u64) -> Self {
        Self(parking_lot::RwLock::new(contents(entries)))
    }
    fn handle(&self) {}
    #[inline]
    fn read(&self, _: &mut (), key: u64) -> u64 {
        self.0.read().get(&key).copied().unwrap_or(0)
    }
    fn write(&self, key: u64, value: u64) {
        self.0.write().insert(key, value);
    }
}

struct ArcSwapLoad(ArcSwap<HashMap<u64, u64>>);
impl Subject for ArcSwapLoad {
    type Handle<'a> = ();
    const NAME: &'static str = "ArcSwap<HashMap> load()";
    fn build(entries: u64) -> Self {
        Self(ArcSwap::from_pointee(contents(entries)))
    }
    fn handle(&self) {}
    #[inline]
    fn read(&self, _: &mut (), key: u64) -> u64 {
        self.0.load().get(&key).copied().unwrap_or(0)
    }
    fn write(&self, key: u64, value: u64) {
        // One writer: a plain copy and store (what `rcu` does without its retry loop).
        let mut copy = HashMap::clone(&self.0.load());
        copy.insert(key, value);
        self.0.store(Arc::new(copy));
    }
}

struct ArcSwapCache(ArcSwap<HashMap<u64, u64>>);
impl Subject for ArcSwapCache {
    type Handle<'a> = Cache<&'a ArcSwap<HashMap<u64, u64>>, Arc<HashMap<u64, u64>>>;
    const NAME: &'static str = "ArcSwap<HashMap> + arc_swap::Cache";
    fn build(entries: u64) -> Self {
        Self(ArcSwap::from_pointee(contents(entries)))
    }
    fn handle(&self) -> Self::Handle<'_> {
        Cache::new(&self.0)
    }
    #[inline]
    fn read(&self, h: &mut Self::Handle<'_>, key: u64) -> u64 {
        h.load().get(&key).copied().unwrap_or(0)
    }
    fn write(&self, key: u64, value: u64) {
        let mut copy = HashMap::clone(&self.0.load());
        copy.insert(key, value);
        self.0.store(Arc::new(copy));
    }
}

struct Papaya(papaya::HashMap<u64, u64, Hasher>);
impl Subject for Papaya {
    type Handle<'a> = ();
    const NAME: &'static str = "papaya::HashMap (pin per read)";
    fn build(entries: u64) -> Self {
        Self(contents(entries).into_iter().collect())
    }
    fn handle(&self) {}
    #[inline]
    fn read(&self, _: &mut (), key: u64) -> u64 {
        self.0.pin().get(&key).copied().unwrap_or(0)
    }
    fn write(&self, key: u64, value: u64) {
        self.0.pin().insert(key, value);
    }
}

/// papaya with a guard each reader thread keeps, refreshed (unpinned and pinned again) every
/// [`PAPAYA_REFRESH`] reads: papaya's docs encourage guard reuse "within reason", since a held
/// guard delays reclamation.
struct PapayaGuard(papaya::HashMap<u64, u64, Hasher>);
impl Subject for PapayaGuard {
    type Handle<'a> = (papaya::LocalGuard<'a>, u32);
    const NAME: &'static str = "papaya::HashMap (guard per 64 reads)";
    fn build(entries: u64) -> Self {
        Self(contents(entries).into_iter().collect())
    }
    fn handle(&self) -> Self::Handle<'_> {
        (self.0.guard(), 0)
    }
    #[inline]
    fn read(&self, h: &mut Self::Handle<'_>, key: u64) -> u64 {
        h.1 += 1;
        if h.1 == PAPAYA_REFRESH {
            h.1 = 0;
            papaya::Guard::refresh(&mut h.0);
        }
        self.0.get(&key, &h.0).copied().unwrap_or(0)
    }
    fn write(&self, key: u64, value: u64) {
        self.0.pin().insert(key, value);
    }
}

/// Reads per papaya guard in [`PapayaGuard`]: the latency table's batch.
const PAPAYA_REFRESH: u32 = BATCH as u32;

struct Evmap {
    reads: evmap::ReadHandleFactory<u64, u64, (), Hasher>,
    write: Mutex<evmap::WriteHandle<u64, u64, (), Hasher>>,
}
impl Subject for Evmap {
    type Handle<'a> = evmap::ReadHandle<u64, u64, (), Hasher>;
    const NAME: &'static str = "evmap (left-right)";
    fn build(entries: u64) -> Self {
        let (r, mut w) = evmap::Options::default()
            .with_hasher(Hasher::default())
            .construct();
        for k in 0..entries {
            w.insert(k, k);
        }
        w.refresh();
        Self {
            reads: r.factory(),
            write: Mutex::new(w),
        }
    }
    fn handle(&self) -> Self::Handle<'_> {
        self.reads.handle()
    }
    #[inline]
    fn read(&self, h: &mut Self::Handle<'_>, key: u64) -> u64 {
        h.get_one(&key).map_or(0, |v| *v)
    }
    fn write(&self, key: u64, value: u64) {
        // `refresh` waits until every reader has left the old side.
        self.write.lock().unwrap().update(key, value).refresh();
    }
}

struct ThriftyRead(CowMap<u64, u64>);
impl Subject for ThriftyRead {
    type Handle<'a> = ();
    const NAME: &'static str = "thrifty CowMap::read";
    fn build(entries: u64) -> Self {
        Self(CowMap::from_map(contents(entries)))
    }
    fn handle(&self) {}
    #[inline]
    fn read(&self, _: &mut (), key: u64) -> u64 {
        self.0.read(&key, |v| *v).unwrap_or(0)
    }
    fn write(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
}

struct ThriftyReader(CowMap<u64, u64>);
impl Subject for ThriftyReader {
    type Handle<'a> = thrifty::map::Reader<u64, u64>;
    const NAME: &'static str = "thrifty CowMap Reader";
    fn build(entries: u64) -> Self {
        Self(CowMap::from_map(contents(entries)))
    }
    fn handle(&self) -> Self::Handle<'_> {
        self.0.reader()
    }
    #[inline]
    fn read(&self, h: &mut Self::Handle<'_>, key: u64) -> u64 {
        h.read(&key, |v| *v).unwrap_or(0)
    }
    fn write(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
}

/// The i-th key a reader looks up: a cheap scramble of `i`, always a hit.
#[inline(always)]
fn key(i: u64, entries: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) % entries
}

/// A background writer overwriting one entry every `every`, until dropped; records each
/// write's time.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<Duration>>>,
}

impl Writer {
    fn start<M: Subject>(map: &Arc<M>, entries: u64, every: Option<Duration>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = every.map(|every| {
            let (map, stop) = (map.clone(), stop.clone());
            std::thread::spawn(move || {
                let _paused = measure::pause();
                let mut times = Vec::with_capacity(1 << 16);
                let mut next = Instant::now();
                let mut i = 0u64;
                while !stop.load(Relaxed) {
                    let start = Instant::now();
                    map.write(black_box(i % entries), black_box(i));
                    times.push(start.elapsed());
                    i += 1;
                    next += every;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        next = now; // a write took longer than the period: no catch-up burst
                    }
                }
                times
            })
        });
        Self { stop, thread }
    }

    fn finish(mut self) -> Vec<Duration> {
        self.stop.store(true, Relaxed);
        self.thread
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default()
    }
}

const SIZES: [u64; 2] = [1_000, 100_000];
const WRITERS: [(&str, Option<Duration>); 3] = [
    ("no writer", None),
    ("writer every 1 ms", Some(Duration::from_millis(1))),
    ("writer every 100 µs", Some(Duration::from_micros(100))),
];
const READERS: usize = 2;

fn throughput_one<M: Subject>(c: &mut Criterion) {
    let _paused = measure::pause();
    for entries in SIZES {
        let mut g = c.benchmark_group(format!("map_cow/read/{entries} entries"));
        g.throughput(Throughput::Elements(READERS as u64));
        for (label, every) in WRITERS {
            let map = Arc::new(M::build(entries));
            let writer = Writer::start(&map, entries, every);
            // Readers and the writer together: oversubscribed only past the cores.
            let label = match every {
                Some(_)
                    if READERS + 1
                        > std::thread::available_parallelism().map_or(1, |n| n.get()) =>
                {
                    format!("2 readers, {label} (oversubscribed)")
                }
                _ => format!("2 readers, {label}"),
            };
            g.bench_function(BenchmarkId::new(M::NAME, label), |b| {
                b.iter_custom(|iters| {
                    on_threads(READERS, iters, &|| {}, &|n| {
                        let mut h = map.handle();
                        let mut sum = 0u64;
                        for i in 0..n {
                            sum = sum.wrapping_add(map.read(&mut h, black_box(key(i, entries))));
                        }
                        black_box(sum);
                    })
                })
            });
            writer.finish();
        }
        g.finish();
    }
}

/// A `Reader`'s first read after a write (its slow path: its own hazard slot moved to the new
/// version, a fence and a re-load; the old version stays for the next write), against its read
/// when nothing changed. The write before each timed read is setup, outside the timing. Timed
/// one iteration at a time, each read pays criterion's two clock reads: the `floor` row times
/// an empty routine after the same write, and the read's own cost is the difference.
fn refresh(c: &mut Criterion) {
    let _paused = measure::pause();
    let mut g = c.benchmark_group("map_cow/reader refresh");
    for entries in SIZES {
        let map = CowMap::from_map(contents(entries));
        let mut reader = map.reader();
        g.bench_function(BenchmarkId::new("read, no write since", entries), |b| {
            b.iter(|| reader.read(&black_box(1), |v| *v))
        });
        let mut i = 0;
        g.bench_function(BenchmarkId::new("first read after a write", entries), |b| {
            b.iter_batched(
                || {
                    i += 1;
                    map.insert(0, i);
                },
                |()| reader.read(&black_box(1), |v| *v),
                criterion::BatchSize::PerIteration,
            )
        });
        g.bench_function(
            BenchmarkId::new("floor: the same write, then nothing", entries),
            |b| {
                b.iter_batched(
                    || {
                        i += 1;
                        map.insert(0, i);
                    },
                    |()| black_box(()),
                    criterion::BatchSize::PerIteration,
                )
            },
        );
    }
    g.finish();
}

fn throughput(c: &mut Criterion) {
    throughput_one::<RwLockMap>(c);
    throughput_one::<ArcSwapLoad>(c);
    throughput_one::<ArcSwapCache>(c);
    throughput_one::<Papaya>(c);
    throughput_one::<PapayaGuard>(c);
    throughput_one::<Evmap>(c);
    throughput_one::<ThriftyRead>(c);
    throughput_one::<ThriftyReader>(c);
}

/// Reads timed per batch (one read alone takes less than a clock read), so a percentile is of
/// the time of 64 reads, divided by 64: one read slower by `d` shows as `d / 64` in its
/// batch, and the ratio of two percentiles is that of the batches' times.
const BATCH: u64 = 64;

/// Batch times a reader keeps: a uniform sample of its whole run, whatever its speed.
const SAMPLES: usize = 1 << 16;

/// Keeps a uniform sample of at most [`SAMPLES`] of the values pushed, over all of them:
/// every `stride`-th value, the stride doubling (and every other kept value dropped) whenever
/// the buffer fills. Allocates only when made.
struct Sample {
    kept: Vec<u32>,
    stride: u64,
    seen: u64,
}

impl Sample {
    fn new() -> Self {
        Sample {
            kept: Vec::with_capacity(SAMPLES),
            stride: 1,
            seen: 0,
        }
    }

    fn push(&mut self, v: u32) {
        // The stride is a power of two. A full buffer is found only at `seen = SAMPLES *
        // stride`, a multiple of the doubled stride too, so `v` is kept after the halving.
        if self.seen & (self.stride - 1) == 0 {
            if self.kept.len() == SAMPLES {
                let mut i = 0;
                self.kept.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
            self.kept.push(v);
        }
        self.seen += 1;
    }

    /// Several readers' samples in one, each thinned to the coarsest stride among them, so
    /// that every value kept stands for as many batches as any other.
    fn pooled(samples: Vec<Sample>) -> Vec<u32> {
        let coarsest = samples.iter().map(|s| s.stride).max().unwrap_or(1);
        samples
            .into_iter()
            .flat_map(|s| {
                let step = (coarsest / s.stride) as usize;
                s.kept.into_iter().step_by(step)
            })
            .collect()
    }
}

/// One row of the latency table.
fn latency_row<M: Subject>(
    readers: usize,
    entries: u64,
    every: Option<Duration>,
    run_for: Duration,
) -> String {
    let map = Arc::new(M::build(entries));
    let writer = Writer::start(&map, entries, every);
    let barrier = Barrier::new(readers);
    let per_thread: Vec<(u64, Sample, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..readers)
            .map(|t| {
                let (map, barrier) = (&map, &barrier);
                s.spawn(move || {
                    let mut h = map.handle();
                    let mut batches = Sample::new();
                    barrier.wait();
                    let start = Instant::now();
                    let mut i = t as u64 * 7919;
                    let (mut reads, mut sum) = (0u64, 0u64);
                    let ((), allocs) = measure::count(|| {
                        while start.elapsed() < run_for {
                            let t0 = Instant::now();
                            for _ in 0..BATCH {
                                sum =
                                    sum.wrapping_add(map.read(&mut h, black_box(key(i, entries))));
                                i += 1;
                            }
                            batches.push(t0.elapsed().as_nanos() as u32);
                            reads += BATCH;
                        }
                    });
                    black_box(sum);
                    (reads, batches, allocs.allocs)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut writes = writer.finish();
    let reads: u64 = per_thread.iter().map(|t| t.0).sum();
    let allocs: u64 = per_thread.iter().map(|t| t.2).sum();
    let mut batches = Sample::pooled(per_thread.into_iter().map(|t| t.1).collect());
    batches.sort_unstable();
    let pct = |p: f64| {
        let at = ((batches.len() as f64 * p) as usize).min(batches.len() - 1);
        batches[at] as f64 / BATCH as f64
    };
    writes.sort_unstable();
    let write = writes.get(writes.len() / 2).map_or("-".to_string(), |d| {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    });
    format!(
        "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {} ({} writes) | {:.3} |",
        M::NAME,
        reads as f64 / run_for.as_secs_f64() / 1e6,
        pct(0.5),
        pct(0.99),
        pct(0.999),
        write,
        writes.len(),
        allocs as f64 / reads as f64,
    )
}

fn latency_table(run_for: Duration) {
    let _paused = measure::pause();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // 1 reader: with the writer, no more threads than 2 cores; 2 readers: the shape.
    // `MAP_COW_READERS=1,2,4,8` widens the table on a machine with more cores.
    let readers_list: Vec<usize> = std::env::var("MAP_COW_READERS").map_or_else(
        |_| vec![1, READERS],
        |list| {
            list.split(',')
                .map(|n| {
                    n.trim()
                        .parse()
                        .expect("MAP_COW_READERS: a list such as 1,2,4")
                })
                .collect()
        },
    );
    for readers in readers_list {
        for entries in SIZES {
            for (label, every) in WRITERS {
                let threads = readers + usize::from(every.is_some());
                let over = if threads > cores {
                    " (oversubscribed)"
                } else {
                    ""
                };
                println!("\nmap_cow latency: {entries} entries, {readers} reader thread(s), {label}{over}");
                println!(concat!(
                    "| candidate | reads/s (M, all readers) | ns/read, 64-read batches: p50 ",
                    "| p99 | p99.9 | write (median) | allocs/read |"
                ));
                println!("| --- | --- | --- | --- | --- | --- | --- |");
                println!(
                    "{}",
                    latency_row::<RwLockMap>(readers, entries, every, run_for)
                );
                println!(
                    "{}",
                    latency_row::<ArcSwapLoad>(readers, entries, every, run_for)
                );
                println!(
                    "{}",
                    latency_row::<ArcSwapCache>(readers, entries, every, run_for)
                );
                println!(
                    "{}",
                    latency_row::<Papaya>(readers, entries, every, run_for)
                );
                println!(
                    "{}",
                    latency_row::<PapayaGuard>(readers, entries, every, run_for)
                );
                println!("{}", latency_row::<Evmap>(readers, entries, every, run_for));
                println!(
                    "{}",
                    latency_row::<ThriftyRead>(readers, entries, every, run_for)
                );
                println!(
                    "{}",
                    latency_row::<ThriftyReader>(readers, entries, every, run_for)
                );
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let test_mode = args.iter().any(|a| a == "--test");
    let table_only = args.iter().any(|a| a == "table");
    // A criterion filter (a bare word other than `table`) runs the matching benches only.
    let filtered = args
        .iter()
        .skip(1)
        .any(|a| !a.starts_with('-') && a != "table" && a.parse::<f64>().is_err());
    if !table_only {
        let mut c = Criterion::default().configure_from_args();
        refresh(&mut c);
        throughput(&mut c);
        c.final_summary();
    }
    if filtered && !table_only {
        return;
    }
    let run_for = if test_mode {
        Duration::from_millis(5)
    } else {
        Duration::from_millis(300)
    };
    latency_table(run_for);
}
