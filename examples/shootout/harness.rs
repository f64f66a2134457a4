//! The shootout's measuring machinery: timing loop, rounds, interleaving, allocation counts and
//! table printing. Module files add workloads only (see `demo.rs` for the shape).
//!
//! How a workload is measured:
//! 1. Calibrate, per candidate: find the op count per thread that makes that candidate's round
//!    last about `round` (10 ms; 1 ms with `--quick`). Every candidate is timed for about the
//!    same wall time, not the same work, so a late start (a thread the host preempted, or one of
//!    more threads than cores) stays a small share of every round, the fastest candidate's
//!    included. ns/op divides each round by its candidate's own op count.
//! 2. Time: one warm-up round, discarded, that also grows the op count of any candidate whose
//!    round came out shorter than `round`; then `rounds` rounds. Each round runs every candidate
//!    once, starting from a different candidate each time (A B C, B C A, …), so drift in machine
//!    load spreads over all of them. Counting is paused meanwhile, so allocating candidates do
//!    not pay for the counter. Threads, one thread included, are spawned for each round (never
//!    the main thread, whose malloc arena no worker gets) and wait at a spinning start line
//!    (`examples/common/start_line.rs`: a sleeping waiter can wake milliseconds late); the
//!    round's wall time runs from the first thread's start to the last thread's end, thread
//!    spawning excluded.
//! 3. Count: one more run per candidate with counting on; each thread counts only its own
//!    allocations between the start line and its end, so thread spawning is not charged.
//!
//! A table may also ask for each candidate's CPU time (`Table::cpu_time`): each thread reads
//! its CPU clock (`CLOCK_THREAD_CPUTIME_ID`, Linux only) just outside its timed span, and the
//! timed rounds' sums, per item, go in a line under the table. It shows what a candidate that
//! spins where others sleep spends for its speed.
//!
//! With `--tails`, a last pass per candidate (after the counting run, as long as one round)
//! times each thread's ops in batches of [`TAIL_BATCH`], one clock read per batch, and a line
//! under the table gives the p50, p99, p99.9 and longest batch, per op: the rounds' medians hide
//! a stall that one op in a thousand takes, a batch's time shows it (diluted by the batch, but
//! not averaged over a round). The clock reads and the call are in each batch's time.

use crate::histogram::Histogram;
use crate::report::{cpu_model, fmt_ns, render, today, Row};
use crate::start_line::StartLine;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use thrifty::measure;

/// Ops per timed batch in the `--tails` pass.
pub const TAIL_BATCH: u64 = 64;

/// The body of a candidate: called on each thread with (thread index, ops to run).
type Body = Box<dyn Fn(usize, u64) + Send + Sync>;

/// One slot per measuring thread (by index), for state a candidate keeps across rounds, as a
/// thread-local would (a bound's reused buffers, a kept arena): made by the thread on its
/// first round and moved onto its stack for each round.
pub fn per_thread<A>(threads: usize) -> Vec<Mutex<Option<A>>> {
    (0..threads).map(|_| Mutex::new(None)).collect()
}

/// Set while the rounds the table's medians come from run (not calibration, the warm-up or the
/// counting run); the spawning and joining of each round's threads order it.
static TIMED: AtomicBool = AtomicBool::new(false);

/// Whether the round this thread runs is one of the timed rounds whose ns/op the table reports:
/// for a candidate that records something of its own per round (a tail, a share of the work)
/// and keeps only what those rounds saw. Read it once per call, outside the op loop.
pub fn timed_round() -> bool {
    TIMED.load(Relaxed)
}

/// One contender in a workload.
pub struct Candidate {
    name: String,
    baseline: bool,
    body: Body,
}

impl Candidate {
    /// The std alternative: ratios in its workload are computed against it.
    pub fn std(name: &str, body: impl Fn(usize, u64) + Send + Sync + 'static) -> Self {
        Self {
            name: name.to_owned(),
            baseline: true,
            body: Box::new(body),
        }
    }

    /// Any other contender: thrifty or a peer crate.
    pub fn new(name: &str, body: impl Fn(usize, u64) + Send + Sync + 'static) -> Self {
        Self {
            name: name.to_owned(),
            baseline: false,
            body: Box::new(body),
        }
    }
}

/// Settings read from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub only: Option<String>,
    pub threads: Option<Vec<usize>>,
    pub quick: bool,
    pub markdown: bool,
    /// Whether to add the batch-time tails under each table (`--tails`).
    pub tails: bool,
}

impl Settings {
    fn rounds(&self) -> usize {
        if self.quick {
            3
        } else {
            11
        }
    }

    /// What the header says about rounds.
    fn mode(&self) -> String {
        let (rounds, ms) = (self.rounds(), self.round().as_millis());
        if self.quick {
            format!("--quick ({rounds} rounds of {ms} ms per candidate: proves it runs, not for quoting)")
        } else {
            format!("{rounds} rounds of {ms} ms per candidate per workload")
        }
    }

    /// The wall time that calibration sizes every candidate's round to.
    fn round(&self) -> Duration {
        Duration::from_millis(if self.quick { 1 } else { 10 })
    }
}

/// A candidate's CPU time over its timed rounds, with what it is measured against.
#[derive(Clone, Copy)]
struct CpuSum {
    /// CPU time, all threads together; `None` once a round could not say.
    used: Option<Duration>,
    /// Wall time of the rounds.
    wall: Duration,
    /// Ops per thread in the rounds.
    ops: u64,
}

impl Default for CpuSum {
    fn default() -> Self {
        Self {
            used: Some(Duration::ZERO),
            wall: Duration::ZERO,
            ops: 0,
        }
    }
}

impl CpuSum {
    fn add(&mut self, used: Option<Duration>, wall: Duration, ops: u64) {
        self.used = self.used.zip(used).map(|(a, b)| a + b);
        self.wall += wall;
        self.ops += ops;
    }
}

/// Runs tables and prints them.
pub struct Harness {
    pub settings: Settings,
    cores: usize,
}

impl Harness {
    pub fn new(settings: Settings) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { settings, cores }
    }

    /// Starts a table; it prints when dropped.
    pub fn table(&mut self, module: &str, title: &str) -> Table<'_> {
        Table {
            h: self,
            module: module.to_owned(),
            title: title.to_owned(),
            rows: Vec::new(),
            notes: Vec::new(),
            cpu: None,
            cpu_notes: Vec::new(),
            tail_notes: Vec::new(),
            no_tails: None,
            ops_per_item: 1,
            background: 0,
        }
    }

    fn emit(&self, text: &str) {
        print!("{text}");
    }

    pub fn header(&mut self) {
        let profile = if cfg!(debug_assertions) {
            "debug (numbers meaningless: use --release)"
        } else {
            "release"
        };
        let text = format!(
            "thrifty shootout — {date}\nmachine: {cores} cores, {cpu}\nbuild: {profile}; {mode}\n\n",
            date = today(),
            cores = self.cores,
            cpu = cpu_model(),
            mode = self.settings.mode(),
        );
        self.emit(&text);
    }

    pub fn footer(&mut self) {
        let (cores, ms) = (self.cores, self.settings.round().as_millis());
        let text = format!(
            "How to read:\n\
             - ns/op: wall time per operation per thread, median of the rounds; each candidate runs\n  \
             as many ops as fill a round of about {ms} ms. Mops/s: all threads together (the\n  \
             channel table: messages, each a send and a receive).\n\
             - spread: the interquartile range of the rounds' ns/op as a share of the median (4%:\n  \
             the middle half of the rounds lay in a band 4% of ns/op wide). Rows whose ns/op\n  \
             differ by less than their spreads are a tie.\n\
             - ratio: ns/op / the [std] row's ns/op in the same workload; below 1.00 is faster.\n  \
             Quote ratios, not absolute times: the machine is shared and noisy.\n\
             - allocs/op: alloc + realloc calls per op, per message in the channel table\n  \
             (thrifty::measure); bytes/op: bytes they asked for.\n\
             - \"(over)\": more threads than the {cores} cores here (counting a workload's own\n  \
             background threads, such as a writer); oversubscribed, for scaling shape only.\n"
        );
        self.emit(&text);
    }
}

/// A table of workloads for one module.
pub struct Table<'h> {
    h: &'h mut Harness,
    module: String,
    title: String,
    rows: Vec<Row>,
    /// Lines printed under the table (what a workload left behind: memory, striping).
    notes: Vec<String>,
    /// Thread ops per item that the Mops/s and allocation columns count (see `per_item`).
    ops_per_item: u64,
    /// Threads the workloads keep running besides the measuring ones (see `background`).
    background: usize,
    /// What an item is called, while workloads report their candidates' CPU time per item
    /// (see `cpu_time`).
    cpu: Option<&'static str>,
    /// The CPU-time lines, printed after the notes under a line that says what they hold.
    cpu_notes: Vec<String>,
    /// The `--tails` lines, printed last, likewise.
    tail_notes: Vec<String>,
    /// Why `--tails` does not measure this table (see `no_tails`).
    no_tails: Option<&'static str>,
}

impl Table<'_> {
    /// The thread counts to run: `defaults`, or the `--threads` list if one was given; in
    /// increasing order, each once.
    pub fn threads(&self, defaults: &[usize]) -> Vec<usize> {
        let mut counts = self
            .h
            .settings
            .threads
            .clone()
            .unwrap_or_else(|| defaults.to_vec());
        counts.sort_unstable();
        counts.dedup();
        counts
    }

    /// Makes the Mops/s, allocs/op and bytes/op columns count items that take `ops` thread ops
    /// each (a message: one send and one receive), rather than each thread op.
    pub fn per_item(&mut self, ops: u64) {
        assert!(ops > 0);
        self.ops_per_item = ops;
    }

    /// Says that the workloads added from now on run `threads` threads of their own besides the
    /// measuring ones (a background writer), so a row is marked `(over)` when the two together
    /// outnumber the cores. The threads column and Mops/s still count the measuring threads.
    pub fn background(&mut self, threads: usize) {
        self.background = threads;
    }

    /// Makes the workloads added from now on note, under the table, each candidate's CPU time
    /// per item (called `item` there) over its timed rounds, all its threads together, beside
    /// the share of its threads' wall time that this is. Linux only: elsewhere no line is
    /// printed.
    pub fn cpu_time(&mut self, item: &'static str) {
        self.cpu = Some(item);
    }

    /// Keeps `--tails` off this table, for workloads whose body does per-call work that a batch
    /// of [`TAIL_BATCH`] ops would pay each time (`why` is printed instead).
    pub fn no_tails(&mut self, why: &'static str) {
        self.no_tails = Some(why);
    }

    /// Stops the CPU-time lines for the workloads added from now on.
    pub fn cpu_time_off(&mut self) {
        self.cpu = None;
    }

    /// Adds a line to print under the table.
    pub fn note(&mut self, line: String) {
        self.notes.push(line);
    }

    /// Measures `candidates` side by side on `threads` threads and adds their rows.
    pub fn workload(&mut self, name: &str, threads: usize, candidates: Vec<Candidate>) {
        assert!(threads > 0 && !candidates.is_empty());
        let s = &self.h.settings;
        let target = s.round();
        let mut ops: Vec<u64> = candidates
            .iter()
            .map(|c| calibrate(c, threads, target))
            .collect();
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); candidates.len()];
        let mut cpu = vec![CpuSum::default(); candidates.len()];
        for round in 0..=s.rounds() {
            for k in 0..candidates.len() {
                let at = (round + k) % candidates.len();
                TIMED.store(round > 0, Relaxed);
                let (wall, _, used) = run_round(&candidates[at], threads, ops[at], false);
                TIMED.store(false, Relaxed);
                if round > 0 {
                    cpu[at].add(used, wall, ops[at]);
                }
                if round == 0 {
                    // The warm-up round: calibration ran cold, one candidate at a time, so
                    // a round that still falls short is grown to the target.
                    if wall < target {
                        ops[at] = scale(ops[at], wall, target);
                    }
                } else {
                    samples[at].push(wall.as_nanos() as f64 / ops[at] as f64);
                }
            }
        }
        let group = self.rows.last().map_or(0, |r| r.group + 1);
        let ops_used = ops.clone();
        for ((c, mut ns), ops) in candidates.iter().zip(samples).zip(ops) {
            ns.sort_by(f64::total_cmp);
            let (_, allocs, _) = run_round(c, threads, ops, true);
            let items = (ops * threads as u64 / self.ops_per_item).max(1);
            self.rows.push(Row {
                group,
                workload: name.to_owned(),
                threads,
                ops_per_item: self.ops_per_item,
                background: self.background,
                candidate: c.name.clone(),
                baseline: c.baseline,
                median_ns: quantile(&ns, 0.5),
                q1_ns: quantile(&ns, 0.25),
                q3_ns: quantile(&ns, 0.75),
                allocs_per_op: allocs.calls_per(items),
                bytes_per_op: allocs.bytes_per(items),
            });
        }
        self.note_cpu(name, threads, &candidates, &cpu);
        if self.h.settings.tails && self.no_tails.is_none() {
            let tails: Vec<Histogram> = candidates
                .iter()
                .zip(&ops_used)
                .map(|(c, &ops)| tails_round(c, threads, ops))
                .collect();
            self.note_tails(name, threads, &candidates, &tails);
        }
    }

    /// Adds the `--tails` line of workload `name`: each candidate's batch times, per op.
    fn note_tails(
        &mut self,
        name: &str,
        threads: usize,
        candidates: &[Candidate],
        tails: &[Histogram],
    ) {
        if self.tail_notes.is_empty() {
            self.tail_notes.push(format!(
                "Batch time per op, {TAIL_BATCH} ops a batch, each thread's batches (--tails): \
                 p50 / p99 / p99.9 / longest (\"-\": fewer than 10 batches beyond it):"
            ));
        }
        let per_op = |ns: u64| fmt_ns(ns as f64 / TAIL_BATCH as f64);
        // A quantile is printed only where at least 10 batches lie beyond it: from fewer it is
        // the longest batch or next to it, not a tail (a slow row's pass, as long as one round,
        // can hold a handful of batches).
        let tail = |h: &Histogram, q: f64| {
            if (h.total as f64 * (1.0 - q)) >= 10.0 {
                per_op(h.quantile(q))
            } else {
                "-".to_owned()
            }
        };
        let each: Vec<String> = candidates
            .iter()
            .zip(tails)
            .map(|(c, h)| {
                format!(
                    "{} {} / {} / {} / {} ({} batches)",
                    c.name,
                    per_op(h.quantile(0.5)),
                    tail(h, 0.99),
                    tail(h, 0.999),
                    per_op(h.max),
                    h.total
                )
            })
            .collect();
        let s = if threads == 1 { "" } else { "s" };
        self.tail_notes.push(format!(
            "  {name}, {threads} thread{s}: {}",
            each.join(", ")
        ));
    }

    /// Adds the CPU-time line of workload `name` (see `cpu_time`), if the table asked for one
    /// and every candidate's time was measured.
    fn note_cpu(&mut self, name: &str, threads: usize, candidates: &[Candidate], cpu: &[CpuSum]) {
        let Some(item) = self.cpu else {
            return;
        };
        let Some(used) = cpu.iter().map(|c| c.used).collect::<Option<Vec<_>>>() else {
            return;
        };
        if self.cpu_notes.is_empty() {
            self.cpu_notes.push(format!(
                "CPU time per {item} in ns, as the table prints a time, the threads together, \
                 over the timed rounds (in brackets: its share of the threads' wall time):"
            ));
        }
        let each: Vec<String> = candidates
            .iter()
            .zip(cpu.iter().zip(used))
            .map(|(c, (sum, used))| {
                let used = used.as_nanos() as f64;
                let items = (sum.ops * threads as u64 / self.ops_per_item).max(1) as f64;
                let share = used / (sum.wall.as_nanos() as f64 * threads as f64).max(1.0);
                format!(
                    "{} {} ({:.0}%)",
                    c.name,
                    fmt_ns(used / items),
                    share * 100.0
                )
            })
            .collect();
        let s = if threads == 1 { "" } else { "s" };
        self.cpu_notes.push(format!(
            "  {name}, {threads} thread{s}: {}",
            each.join(", ")
        ));
    }
}

/// The CPU time the calling thread has run, to the nanosecond, where the system says it.
#[cfg(target_os = "linux")]
fn thread_cpu() -> Option<Duration> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable `timespec` for the call's duration.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0;
    ok.then(|| Duration::new(t.tv_sec as u64, t.tv_nsec as u32))
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu() -> Option<Duration> {
    None
}

impl Drop for Table<'_> {
    fn drop(&mut self) {
        let text = render(
            &self.module,
            &self.title,
            &self.rows,
            self.h.cores,
            self.h.settings.markdown,
        );
        self.h.emit(&text);
        if let (true, Some(why)) = (self.h.settings.tails, self.no_tails) {
            self.tail_notes
                .push(format!("--tails: not measured here: {why}"));
        }
        for line in self
            .notes
            .iter()
            .chain(&self.cpu_notes)
            .chain(&self.tail_notes)
        {
            self.h.emit(&format!("{line}\n"));
        }
        if !self.notes.is_empty() || !self.cpu_notes.is_empty() || !self.tail_notes.is_empty() {
            self.h.emit("\n");
        }
    }
}

/// Ops per thread that make `c`'s round last about `target`: grows a trial run fourfold until
/// it lasts a quarter of `target`, then scales it.
fn calibrate(c: &Candidate, threads: usize, target: Duration) -> u64 {
    let mut n = 16u64;
    loop {
        let (wall, _, _) = run_round(c, threads, n, false);
        if wall >= target / 4 || n >= 1 << 30 {
            return scale(n, wall, target);
        }
        n *= 4;
    }
}

/// The op count that takes `target` at the rate of `ops` in `wall`.
fn scale(ops: u64, wall: Duration, target: Duration) -> u64 {
    let scaled = ops as f64 * target.as_secs_f64() / wall.as_secs_f64().max(1e-9);
    scaled.max(1.0) as u64
}

/// Runs `c` once on `threads` threads with `ops` ops each; returns the wall time, if `count`
/// the allocations the threads made inside the timed span, and the CPU time the threads spent
/// there (`None` where the system does not say).
fn run_round(
    c: &Candidate,
    threads: usize,
    ops: u64,
    count: bool,
) -> (Duration, measure::AllocStats, Option<Duration>) {
    let one = |t: usize, line: &StartLine| {
        // Pausing is per thread: each thread that runs timed code pauses itself.
        let _paused = (!count).then(measure::pause);
        line.wait();
        let cpu_before = if count { None } else { thread_cpu() };
        let before = measure::thread_stats();
        let start = Instant::now();
        (c.body)(black_box(t), black_box(ops));
        let end = Instant::now();
        let allocs = if count {
            measure::thread_stats() - before
        } else {
            measure::AllocStats::default()
        };
        let cpu = cpu_before.and_then(|b| Some(thread_cpu()? - b));
        (start, end, allocs, cpu)
    };
    let results = on_threads(threads, one);
    let start = results.iter().map(|r| r.0).min().unwrap();
    let end = results.iter().map(|r| r.1).max().unwrap();
    let allocs = results.iter().map(|r| r.2).sum();
    let cpu = results.iter().map(|r| r.3).sum();
    (end - start, allocs, cpu)
}

/// Runs `one(thread index, start line)` on `threads` spawned threads at once and returns what
/// each returned, in thread order. One thread runs on a spawned thread too, as several do, so
/// rows differ only in the thread count: the main thread is in a state no worker is in (glibc's
/// main malloc arena is its alone), whatever that costs or saves on a given machine.
fn on_threads<R: Send>(threads: usize, one: impl Fn(usize, &StartLine) -> R + Sync) -> Vec<R> {
    let line = StartLine::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn({
                    let (one, line) = (&one, &line);
                    move || one(t, line)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("candidate panicked"))
            .collect()
    })
}

/// The `--tails` pass: `c` on `threads` threads, each running its `ops` in batches of
/// [`TAIL_BATCH`] (at least one), every batch timed; the batch times of all threads.
fn tails_round(c: &Candidate, threads: usize, ops: u64) -> Histogram {
    let batches = (ops / TAIL_BATCH).max(1);
    let histograms = on_threads(threads, |t, line| {
        let _paused = measure::pause();
        let mut batch_ns = Box::<Histogram>::default();
        line.wait();
        for _ in 0..batches {
            let start = Instant::now();
            (c.body)(black_box(t), black_box(TAIL_BATCH));
            batch_ns.record(start.elapsed().as_nanos() as u64);
        }
        batch_ns
    });
    histograms.iter().fold(Histogram::default(), |mut all, h| {
        all.merge(h);
        all
    })
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}
