//! `thrifty::map::ShardedMap` against `Mutex<HashMap>` (std), `RwLock<HashMap>` (parking_lot),
//! dashmap (at its default 4 x CPUs shards, and at thrifty's default shard count), scc's
//! `HashMap` and papaya (pinned per operation, and with a per-thread guard refreshed every 64
//! operations, the guard reuse papaya's docs encourage), all hashing with foldhash (the same
//! hash function thrifty's default uses), `u64` keys and values.
//!
//! Groups, each at 1 and 2 threads (plus 4 and 8, labelled oversubscribed, in the full run):
//! - `map_sharded/time/mix/<reads>-<writes>/<keys>/<uniform|zipf>`: read-heavy 95/5, mixed 50/50
//!   and write-heavy 10/90 over a map prefilled with every key; a read is a lookup that copies
//!   the value out, a write an insert that replaces it. Keys are uniform or Zipf (s = 1.0, rank
//!   0 hottest, hot keys scattered over the key space); each thread replays its own precomputed
//!   sequence, generated outside the timed loop.
//! - `map_sharded/time/aggregate`: the metrics-aggregator shape, an increment of a per-key count
//!   (`get_or_insert_with`/`entry`) over Zipf keys.
//! - `map_sharded/time/churn`: sessions coming and going, an insert of a fresh key and the remove
//!   of the key inserted 1,000 operations earlier.
//! - `map_sharded/time/fill_presized`: inserting n fresh keys into a map made with capacity n.
//! - the same groups under `map_sharded/allocs/...`: allocator calls per operation
//!   (`thrifty::measure::Allocations`), one thread.
//!
//! One iteration is one operation on every thread; criterion's throughput is operations per
//! second over all threads.
//!
//! `cargo bench --bench map_sharded` runs 100 k keys at 1 and 2 threads (a few minutes);
//! `THRIFTY_BENCH_FULL=1 cargo bench --bench map_sharded` adds 1 k and 1 M keys and 4 and 8
//! threads. Filter as usual: `cargo bench --bench map_sharded -- 'mix/50-50/100000/uniform'`.

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use std::cell::Cell;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use thrifty::map::ShardedMap;
use thrifty::measure::{self, Allocations, CountingAlloc};
mod common;
use common::{label, on_threads, Pick};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

type H = foldhash::fast::RandomState;

/// The operations every candidate offers, in its own idiom.
trait Candidate: Send + Sync + 'static {
    /// What a thread keeps across its operations: papaya's guard in the guard row, nothing for
    /// the others. Each thread makes one per sample, inside the timed span.
    type Handle<'a>;
    const NAME: &'static str;
    fn with_capacity(n: usize) -> Self;
    fn handle(&self) -> Self::Handle<'_>;
    fn get(&self, h: &mut Self::Handle<'_>, k: u64) -> Option<u64>;
    fn put(&self, h: &mut Self::Handle<'_>, k: u64, v: u64);
    /// Adds 1 to `k`'s count, inserting 1 if absent.
    fn incr(&self, h: &mut Self::Handle<'_>, k: u64);
    fn remove(&self, h: &mut Self::Handle<'_>, k: u64) -> Option<u64>;
}

struct StdMutex(std::sync::Mutex<HashMap<u64, u64, H>>);
impl Candidate for StdMutex {
    type Handle<'a> = ();
    const NAME: &'static str = "Mutex<HashMap> (std)";
    fn with_capacity(n: usize) -> Self {
        Self(std::sync::Mutex::new(HashMap::with_capacity_and_hasher(
            n,
            H::default(),
        )))
    }
    fn handle(&self) {}
    fn get(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.lock().unwrap().get(&k).copied()
    }
    fn put(&self, _: &mut (), k: u64, v: u64) {
        self.0.lock().unwrap().insert(k, v);
    }
    fn incr(&self, _: &mut (), k: u64) {
        *self.0.lock().unwrap().entry(k).or_insert(0) += 1;
    }
    fn remove(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.lock().unwrap().remove(&k)
    }
}

struct PlRwLock(parking_lot::RwLock<HashMap<u64, u64, H>>);
impl Candidate for PlRwLock {
    type Handle<'a> = ();
    const NAME: &'static str = "RwLock<HashMap> (parking_lot)";
    fn with_capacity(n: usize) -> Self {
        Self(parking_lot::RwLock::new(HashMap::with_capacity_and_hasher(
            n,
            H::default(),
        )))
    }
    fn handle(&self) {}
    fn get(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.read().get(&k).copied()
    }
    fn put(&self, _: &mut (), k: u64, v: u64) {
        self.0.write().insert(k, v);
    }
    fn incr(&self, _: &mut (), k: u64) {
        *self.0.write().entry(k).or_insert(0) += 1;
    }
    fn remove(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.write().remove(&k)
    }
}

/// dashmap at its default shard count (4 x CPUs), or with `THRIFTY_SHARDS` on thrifty's
/// default (64 x CPUs, at most 1024, rounded up to a power of two: 128 on 2 CPUs): the setting
/// the two defaults differ in, so the rows separate design from defaults.
struct Dash<const THRIFTY_SHARDS: bool>(dashmap::DashMap<u64, u64, H>);
impl<const THRIFTY_SHARDS: bool> Candidate for Dash<THRIFTY_SHARDS> {
    type Handle<'a> = ();
    const NAME: &'static str = if THRIFTY_SHARDS {
        "dashmap (thrifty's shard count)"
    } else {
        "dashmap"
    };
    fn with_capacity(n: usize) -> Self {
        if !THRIFTY_SHARDS {
            return Self(dashmap::DashMap::with_capacity_and_hasher(n, H::default()));
        }
        static SHARDS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let shards = *SHARDS.get_or_init(|| {
            // dashmap needs a power of two above 1; thrifty's count is a power of two.
            ShardedMap::<u64, u64>::new().shard_count().max(2)
        });
        Self(dashmap::DashMap::with_capacity_and_hasher_and_shard_amount(
            n,
            H::default(),
            shards,
        ))
    }
    fn handle(&self) {}
    fn get(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.get(&k).map(|r| *r)
    }
    fn put(&self, _: &mut (), k: u64, v: u64) {
        self.0.insert(k, v);
    }
    fn incr(&self, _: &mut (), k: u64) {
        *self.0.entry(k).or_insert(0) += 1;
    }
    fn remove(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.remove(&k).map(|(_, v)| v)
    }
}

struct Scc(scc::HashMap<u64, u64, H>);
impl Candidate for Scc {
    type Handle<'a> = ();
    const NAME: &'static str = "scc::HashMap";
    fn with_capacity(n: usize) -> Self {
        Self(scc::HashMap::with_capacity_and_hasher(n, H::default()))
    }
    fn handle(&self) {}
    fn get(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.read_sync(&k, |_, v| *v)
    }
    fn put(&self, _: &mut (), k: u64, v: u64) {
        self.0.upsert_sync(k, v);
    }
    fn incr(&self, _: &mut (), k: u64) {
        *self.0.entry_sync(k).or_insert(0).get_mut() += 1;
    }
    fn remove(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.remove_sync(&k).map(|(_, v)| v)
    }
}

/// papaya, pinned per operation (what a call site without a long-lived guard does).
struct Papaya(papaya::HashMap<u64, u64, H>);
impl Candidate for Papaya {
    type Handle<'a> = ();
    const NAME: &'static str = "papaya (pin per op)";
    fn with_capacity(n: usize) -> Self {
        Self(papaya::HashMap::with_capacity_and_hasher(n, H::default()))
    }
    fn handle(&self) {}
    fn get(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.pin().get(&k).copied()
    }
    fn put(&self, _: &mut (), k: u64, v: u64) {
        self.0.pin().insert(k, v);
    }
    fn incr(&self, _: &mut (), k: u64) {
        self.0.pin().update_or_insert(k, |n| n + 1, 1);
    }
    fn remove(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.pin().remove(&k).copied()
    }
}

/// papaya with a guard each thread keeps, refreshed (unpinned and pinned again) every
/// [`PAPAYA_REFRESH`] operations: the guard reuse papaya's docs encourage "within reason", since
/// a held guard delays reclamation.
struct PapayaGuard(papaya::HashMap<u64, u64, H>);
impl PapayaGuard {
    /// Counts one operation on `h`, refreshing its guard every [`PAPAYA_REFRESH`].
    #[inline]
    fn tick<'g, 'm>(h: &'g mut (papaya::LocalGuard<'m>, u32)) -> &'g papaya::LocalGuard<'m> {
        h.1 += 1;
        if h.1 == PAPAYA_REFRESH {
            h.1 = 0;
            papaya::Guard::refresh(&mut h.0);
        }
        &h.0
    }
}
impl Candidate for PapayaGuard {
    type Handle<'a> = (papaya::LocalGuard<'a>, u32);
    const NAME: &'static str = "papaya (guard per 64 ops)";
    fn with_capacity(n: usize) -> Self {
        Self(papaya::HashMap::with_capacity_and_hasher(n, H::default()))
    }
    fn handle(&self) -> Self::Handle<'_> {
        (self.0.guard(), 0)
    }
    fn get(&self, h: &mut Self::Handle<'_>, k: u64) -> Option<u64> {
        self.0.get(&k, Self::tick(h)).copied()
    }
    fn put(&self, h: &mut Self::Handle<'_>, k: u64, v: u64) {
        self.0.insert(k, v, Self::tick(h));
    }
    fn incr(&self, h: &mut Self::Handle<'_>, k: u64) {
        self.0.update_or_insert(k, |n| n + 1, 1, Self::tick(h));
    }
    fn remove(&self, h: &mut Self::Handle<'_>, k: u64) -> Option<u64> {
        self.0.remove(&k, Self::tick(h)).copied()
    }
}

/// Operations per papaya guard in [`PapayaGuard`].
const PAPAYA_REFRESH: u32 = 64;

struct Thrifty(ShardedMap<u64, u64>);
impl Candidate for Thrifty {
    type Handle<'a> = ();
    const NAME: &'static str = "thrifty ShardedMap";
    fn with_capacity(n: usize) -> Self {
        Self(ShardedMap::with_capacity(n))
    }
    fn handle(&self) {}
    fn get(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.read(&k, |v| *v)
    }
    fn put(&self, _: &mut (), k: u64, v: u64) {
        self.0.insert(k, v);
    }
    fn incr(&self, _: &mut (), k: u64) {
        self.0.get_or_insert_with(k, || 0, |n| *n += 1);
    }
    fn remove(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.remove(&k)
    }
}

/// Key number `i`, scattered over `u64` (an odd multiplier is a bijection), so neighbouring
/// ranks are not neighbouring keys.
fn key(i: usize) -> u64 {
    (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// splitmix64: the op sequences' random source.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Dist {
    Uniform,
    Zipf,
}

/// Operations per thread's sequence; replayed cyclically.
const SEQ: usize = 1 << 18;
/// The most threads any group runs: one sequence each.
const MAX_THREADS: usize = 8;

/// Key indices in `0..keys`, drawn from `dist`, one sequence per thread.
fn sequences(keys: usize, dist: Dist) -> Vec<Vec<u64>> {
    // Zipf(1.0): P(rank r) ∝ 1/(r+1); sampled by binary search on the cumulative weights.
    let cdf: Vec<f64> = match dist {
        Dist::Uniform => Vec::new(),
        Dist::Zipf => {
            let mut acc = 0.0;
            (0..keys)
                .map(|r| {
                    acc += 1.0 / (r + 1) as f64;
                    acc
                })
                .collect()
        }
    };
    (0..MAX_THREADS)
        .map(|t| {
            let mut rng = Rng(t as u64 * 7919 + keys as u64);
            (0..SEQ)
                .map(|_| {
                    let i = match dist {
                        Dist::Uniform => (rng.next() % keys as u64) as usize,
                        Dist::Zipf => {
                            let u = rng.unit() * cdf[keys - 1];
                            cdf.partition_point(|&c| c < u).min(keys - 1)
                        }
                    };
                    key(i)
                })
                .collect()
        })
        .collect()
}

/// Which of the `SEQ` slots are writes for a mix with `writes_pct` percent writes: the same
/// pattern for every candidate and thread.
fn write_mask(writes_pct: u64) -> Vec<bool> {
    let mut rng = Rng(42);
    (0..SEQ).map(|_| rng.next() % 100 < writes_pct).collect()
}

thread_local! {
    /// The sequence this worker replays, set by `claim` before the clock starts.
    static MINE: Cell<usize> = const { Cell::new(0) };
}

/// Gives each worker of one sample its own sequence number.
fn claim(next: &AtomicUsize) {
    MINE.with(|m| m.set(next.fetch_add(1, Relaxed) % MAX_THREADS));
}

/// Runs `op(thread's sequence, position)` `iters` times on each of `threads` threads; returns
/// the span and the allocator calls the threads made inside it.
fn run(threads: usize, iters: u64, op: &(dyn Fn(&AtomicUsize, u64) + Sync)) -> (Duration, u64) {
    let (next, allocs) = (AtomicUsize::new(0), AtomicU64::new(0));
    let span = on_threads(threads, iters, &|| claim(&next), &|n| {
        let before = measure::thread_stats().calls();
        op(&next, n);
        allocs.fetch_add(measure::thread_stats().calls() - before, Relaxed);
    });
    (span, allocs.into_inner() / threads as u64)
}

/// The settings of this run.
struct Plan {
    sizes: Vec<usize>,
    threads: Vec<usize>,
}

impl Plan {
    fn from_env() -> Self {
        if std::env::var_os("THRIFTY_BENCH_FULL").is_some() {
            Plan {
                sizes: vec![1_000, 100_000, 1_000_000],
                threads: vec![1, 2, 4, 8],
            }
        } else {
            Plan {
                sizes: vec![100_000],
                threads: vec![1, 2],
            }
        }
    }
}

/// The mix rows of one candidate: every mix, distribution and thread count at `keys` keys.
fn mix_rows<C: Candidate, M: Pick>(
    g: &mut BenchmarkGroup<'_, M>,
    keys: usize,
    seqs: &[(Dist, Arc<Vec<Vec<u64>>>)],
    threads: &[usize],
) {
    let map = Arc::new(C::with_capacity(keys));
    let mut h = map.handle();
    (0..keys).for_each(|i| map.put(&mut h, key(i), i as u64));
    drop(h);
    for (reads, writes) in [(95, 5), (50, 50), (10, 90)] {
        let mask = write_mask(writes);
        for (dist, seq) in seqs {
            let dist = if *dist == Dist::Uniform {
                "uniform"
            } else {
                "zipf"
            };
            for &t in threads {
                g.throughput(Throughput::Elements(t as u64));
                let id = format!("{reads}-{writes}/{keys}/{dist}/{}", label(t));
                g.bench_function(BenchmarkId::new(C::NAME, id), |b| {
                    b.iter_custom(|iters| {
                        let (span, allocs) = run(t, iters, &|_, n| {
                            let seq = &seq[MINE.with(Cell::get)];
                            let mut h = map.handle();
                            for i in 0..n as usize {
                                let (k, w) = (seq[i % SEQ], mask[i % SEQ]);
                                if w {
                                    map.put(&mut h, black_box(k), black_box(i as u64));
                                } else {
                                    black_box(map.get(&mut h, black_box(k)));
                                }
                            }
                        });
                        M::pick(span, allocs)
                    })
                });
            }
        }
    }
}

/// The shapes user code has: per-key counts over Zipf keys, and keys that come and go.
fn shape_rows<C: Candidate, M: Pick>(
    c: &mut Criterion<M>,
    pass: &str,
    zipf: &Arc<Vec<Vec<u64>>>,
    threads: &[usize],
) {
    let mut g = c.benchmark_group(format!("map_sharded/{pass}/aggregate"));
    let counts = Arc::new(C::with_capacity(0));
    for &t in threads {
        g.throughput(Throughput::Elements(t as u64));
        g.bench_function(
            BenchmarkId::new(C::NAME, format!("100000/zipf/{}", label(t))),
            |b| {
                b.iter_custom(|iters| {
                    let (span, allocs) = run(t, iters, &|_, n| {
                        let seq = &zipf[MINE.with(Cell::get)];
                        let mut h = counts.handle();
                        (0..n as usize).for_each(|i| counts.incr(&mut h, black_box(seq[i % SEQ])));
                    });
                    M::pick(span, allocs)
                })
            },
        );
    }
    g.finish();

    const WINDOW: u64 = 1000;
    let mut g = c.benchmark_group(format!("map_sharded/{pass}/churn"));
    let sessions = Arc::new(C::with_capacity(0));
    // Each thread's keys live in their own range, and carry on from where the last sample left
    // them, so every insert is of a fresh key.
    let cursors: Arc<Vec<AtomicU64>> =
        Arc::new((0..MAX_THREADS).map(|_| AtomicU64::new(0)).collect());
    for &t in threads {
        g.throughput(Throughput::Elements(t as u64));
        g.bench_function(
            BenchmarkId::new(C::NAME, format!("window 1000/{}", label(t))),
            |b| {
                b.iter_custom(|iters| {
                    let (span, allocs) = run(t, iters, &|_, n| {
                        let me = MINE.with(Cell::get);
                        let base = (me as u64) << 48;
                        let start = cursors[me].load(Relaxed);
                        let mut h = sessions.handle();
                        for i in start..start + n {
                            sessions.put(&mut h, black_box(key((base + i) as usize)), i);
                            if i >= WINDOW {
                                let old = key((base + i - WINDOW) as usize);
                                black_box(sessions.remove(&mut h, old));
                            }
                        }
                        cursors[me].store(start + n, Relaxed);
                    });
                    M::pick(span, allocs)
                })
            },
        );
    }
    g.finish();

    let mut g = c.benchmark_group(format!("map_sharded/{pass}/fill_presized"));
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new(C::NAME, "1 thread"), |b| {
        b.iter_custom(|iters| {
            let map = C::with_capacity(iters as usize);
            let (span, allocs) = run(1, iters, &|_, n| {
                let mut h = map.handle();
                (0..n as usize).for_each(|i| map.put(&mut h, black_box(key(i)), i as u64));
            });
            drop(map);
            M::pick(span, allocs)
        })
    });
    g.finish();
}

/// Every group for every candidate, in one pass (`time` or `allocs`).
fn groups<M: Pick>(c: &mut Criterion<M>, pass: &str, plan: &Plan) {
    let mut zipf_100k = None;
    for &keys in &plan.sizes {
        let seqs: Vec<(Dist, Arc<Vec<Vec<u64>>>)> = [Dist::Uniform, Dist::Zipf]
            .into_iter()
            .map(|d| (d, Arc::new(sequences(keys, d))))
            .collect();
        if keys == 100_000 {
            zipf_100k = Some(Arc::clone(&seqs[1].1));
        }
        let mut g = c.benchmark_group(format!("map_sharded/{pass}/mix"));
        mix_rows::<StdMutex, M>(&mut g, keys, &seqs, &plan.threads);
        mix_rows::<PlRwLock, M>(&mut g, keys, &seqs, &plan.threads);
        mix_rows::<Dash<false>, M>(&mut g, keys, &seqs, &plan.threads);
        mix_rows::<Dash<true>, M>(&mut g, keys, &seqs, &plan.threads);
        mix_rows::<Scc, M>(&mut g, keys, &seqs, &plan.threads);
        mix_rows::<Papaya, M>(&mut g, keys, &seqs, &plan.threads);
        mix_rows::<PapayaGuard, M>(&mut g, keys, &seqs, &plan.threads);
        mix_rows::<Thrifty, M>(&mut g, keys, &seqs, &plan.threads);
        g.finish();
    }
    let zipf = zipf_100k.unwrap_or_else(|| Arc::new(sequences(100_000, Dist::Zipf)));
    shape_rows::<StdMutex, M>(c, pass, &zipf, &plan.threads);
    shape_rows::<PlRwLock, M>(c, pass, &zipf, &plan.threads);
    shape_rows::<Dash<false>, M>(c, pass, &zipf, &plan.threads);
    shape_rows::<Dash<true>, M>(c, pass, &zipf, &plan.threads);
    shape_rows::<Scc, M>(c, pass, &zipf, &plan.threads);
    shape_rows::<Papaya, M>(c, pass, &zipf, &plan.threads);
    shape_rows::<PapayaGuard, M>(c, pass, &zipf, &plan.threads);
    shape_rows::<Thrifty, M>(c, pass, &zipf, &plan.threads);
}

fn main() {
    let plan = Plan::from_env();
    {
        // Counting off while timing, so allocating candidates pay no counting cost.
        let _paused = measure::pause();
        let mut c = Criterion::default()
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(600))
            .sample_size(10)
            // Fewer bootstrap resamples than criterion's 100,000: the analysis, not the
            // measuring, dominated a run of this many rows.
            .nresamples(5_000)
            .configure_from_args();
        groups(&mut c, "time", &plan);
    }
    let mut c = Criterion::default()
        .with_measurement(Allocations)
        .warm_up_time(Duration::from_millis(50))
        .measurement_time(Duration::from_millis(100))
        .sample_size(10)
        .nresamples(5_000)
        .configure_from_args();
    let one = Plan {
        sizes: vec![100_000],
        threads: vec![1],
    };
    groups(&mut c, "allocs", &one);
    c.final_summary();
}
