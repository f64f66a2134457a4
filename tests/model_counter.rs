//! proptest: `Counter`, `Gauge` and `PerCpu` against plain integers over random op sequences.
//!
//! A `Burst` op runs adds on two fresh threads at once. A fresh thread first probes for
//! contention after thousands of adds, more than a `Burst` makes, so Bursts never stripe by
//! themselves: a `Grow` op stripes and grows, running twice as many threads as cells until the
//! cells double (compact to 2, then upward to the cap), and the Bursts after it run on the
//! striped paths, with takes, resets and sets in between; each test checks that some case ran a
//! Burst on a striped counter or gauge. `Compact` folds the cells back. After every op the
//! counter's memory is checked against its cell count, and no op but `Compact` may lower the
//! count.

#![cfg(not(loom))]

use proptest::prelude::*;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use thrifty::counter::{Counter, Gauge, PerCpu};

#[path = "common/at_once.rs"]
mod at_once;

/// Held by each test that runs many threads at once, so the step-by-step growth test never runs
/// beside a case's `Grow` op (up to 32 threads): its probes need its own threads to run at once.
static MANY_THREADS: Mutex<()> = Mutex::new(());

fn many_threads() -> MutexGuard<'static, ()> {
    MANY_THREADS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Clone)]
enum Op {
    Add(u64),
    Incr,
    /// Two threads add `n` each, `reps` times, at once.
    Burst(u64, u16),
    /// As `Burst`, each thread through its own `LocalCounter`.
    LocalBurst(u64, u16),
    Take,
    Reset,
    Sum,
    /// Threads add until the counter has more cells than before (or is at its cap).
    Grow,
    /// `compact(&mut self)`.
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..1 << 40).prop_map(Op::Add),
        3 => Just(Op::Incr),
        2 => (0u64..1000, 1u16..300).prop_map(|(n, r)| Op::Burst(n, r)),
        1 => Just(Op::Take),
        1 => Just(Op::Reset),
        2 => Just(Op::Sum),
        2 => (0u64..1000, 1u16..300).prop_map(|(n, r)| Op::LocalBurst(n, r)),
        1 => Just(Op::Grow),
        1 => Just(Op::Compact),
    ]
}

/// Runs twice as many threads as `c` has cells (at least two), adding `n` until `c` has more
/// cells than before (striped from compact, or doubled) or sits at its cap; returns how many
/// adds they made in all. (As many threads as cells each own one and never make it grow.)
fn grow(c: &Counter, n: u64) -> u64 {
    grow_bounded(
        || c.cells(),
        c.max_cells(),
        || c.add(n),
        &COUNTER_GROWS_AT_ONCE,
    )
}

/// [`grow`] for a gauge.
fn grow_gauge(g: &Gauge, n: i64) -> u64 {
    grow_bounded(
        || g.cells(),
        g.max_cells(),
        || g.add(n),
        &GAUGE_GROWS_AT_ONCE,
    )
}

/// [`grow_within`] for the proptest's `Grow` ops: each thread stops after 20 000 000 adds (2 000
/// under Miri, which runs some thousand times slower), or 200 000 once such calls have spent
/// [`at_once::PATIENCE`] in all with their threads apart ([`APART_NANOS`]). Counts the call in
/// `at_once` if it grew the engine or its threads ran at once for [`GROW_AT_ONCE`] looks: a call
/// that could make it grow.
fn grow_bounded(
    cells: impl Fn() -> usize + Sync,
    max: usize,
    add: impl Fn() + Sync,
    at_once: &AtomicUsize,
) -> u64 {
    let apart = Duration::from_nanos(APART_NANOS.load(Relaxed));
    let adds = match () {
        _ if cfg!(miri) => 2_000,
        _ if apart >= at_once::PATIENCE => 200_000,
        _ => 20_000_000,
    };
    let (before, began) = (cells(), Instant::now());
    let run = grow_within(&cells, max, add, Bound::adds(adds));
    if cells() > before || run.at_once >= GROW_AT_ONCE {
        at_once.fetch_add(1, Relaxed);
    } else {
        let took = u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX);
        APART_NANOS.fetch_add(took, Relaxed);
    }
    run.adds
}

/// Nanoseconds that `Grow` ops spent without growing their engine or running their threads at
/// once. Where the scheduler keeps threads apart (one CPU; two beside a busy process), a `Grow`
/// op adds until its bound, and at 20 000 000 adds a thread the proptests took 562 s on one CPU
/// (well under a minute on two CPUs): past [`at_once::PATIENCE`] of that, the ops add a
/// hundredth as long.
static APART_NANOS: AtomicU64 = AtomicU64::new(0);

/// Looks at once ([`at_once::Together::at_once`]) that make a `Grow` op count as one whose
/// threads ran at once: about 40 ms, in which two threads on one counter probe it dozens of
/// times each.
const GROW_AT_ONCE: u64 = 2048;

/// `Grow` ops that grew or whose threads ran at once ([`grow_bounded`]) that each of
/// `counter_matches_a_u64` and `gauge_matches_an_i64` needs before it asserts that some case ran
/// a Burst on a striped counter or gauge: a scheduler that keeps threads apart (one CPU, or two
/// beside a busy process) leaves every `Grow` compact, and then no Burst can find it striped.
const GROWS_AT_ONCE: usize = 8;

/// When [`grow_within`]'s threads stop adding if the engine has not grown.
struct Bound {
    /// Adds per thread.
    adds: u64,
    /// Once every thread has run at once with another for this many looks ([`Growth::at_once`]).
    at_once: u64,
    /// At this moment, whatever else.
    until: Instant,
}

impl Bound {
    /// At most `adds` adds per thread, and no other limit.
    fn adds(adds: u64) -> Self {
        Bound {
            adds,
            at_once: u64::MAX,
            until: Instant::now() + Duration::from_secs(24 * 3600),
        }
    }
}

/// What one [`grow_within`] call saw.
struct Growth {
    /// Adds its threads made in all.
    adds: u64,
    /// Its threads' [`at_once::Together::at_once`]: how long the thread that ran with others
    /// least did so.
    at_once: u64,
}

/// Adds a thread makes between two beats of its watch ([`at_once::Watch::beat`]).
const BATCH: u64 = 64;

/// [`grow`] for any engine, given its cell count, its cap and one add; its threads stop once it
/// grew (or is at its cap) or at the first `bound` they meet.
///
/// The threads make their first add in a random order. A thread takes its slot (the lowest
/// free one) on its first add to a striped counter, and the slot picks its home cell, so the
/// order decides which threads share a cell, while the scheduler decides which share a CPU; two
/// threads that take turns on one CPU never contend. In spawn order, the pairing would follow
/// wherever the scheduler puts threads spawned in turn, perhaps the same bad way on every call;
/// drawn at random, each call's threads are paired afresh, whatever the scheduler does.
///
/// Each thread also watches the others, so the caller can tell whether its threads ran at once.
/// Every atomic here but the engine's is Relaxed: progress marks compared for change, counts
/// and a stop flag, through which nothing else is read.
fn grow_within(
    cells: impl Fn() -> usize + Sync,
    max: usize,
    add: impl Fn() + Sync,
    bound: Bound,
) -> Growth {
    let before = cells();
    let n = 2 * before.max(1);
    // Set when a bound is met, so that no thread is left adding alone.
    let stop = AtomicBool::new(false);
    let done = || cells() > before || cells() == max || stop.load(Relaxed);
    let together = at_once::Together::new(n);
    let adds = std::thread::scope(|s| {
        let workers: Vec<_> = (0..n)
            .map(|i| {
                let (done, stop, together) = (&done, &stop, &together);
                let add = &add;
                s.spawn(move || {
                    let random = RandomState::new().hash_one(i);
                    std::thread::sleep(Duration::from_micros(random % 1000));
                    let mut adds = 0u64;
                    let mut watch = together.watch(i);
                    while !done() {
                        for _ in 0..BATCH {
                            add();
                        }
                        adds += BATCH;
                        if adds >= bound.adds {
                            stop.store(true, Relaxed);
                        }
                        watch.beat();
                    }
                    adds
                })
            })
            .collect();
        // The calling thread keeps the bounds that need every thread's view; it sleeps between
        // checks, so it takes no CPU from the adders.
        while !workers.iter().all(|w| w.is_finished()) {
            if together.at_once() >= bound.at_once || Instant::now() >= bound.until {
                stop.store(true, Relaxed);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // Joined by hand: a join waits for the thread's locals to be destroyed (its slot claim
        // ended, so the next call's threads can take over its cells), where the end of a scope
        // only waits for the closure to return.
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    Growth {
        adds,
        at_once: together.at_once(),
    }
}

/// Cache lines a counter with `cells` cells holds: none while compact; one block of 2 (or the
/// cap of 1), then each doubling keeps the blocks it outgrew: 2 + 4 + ... + cells.
fn lines_held(cells: usize, max: usize) -> usize {
    match (cells, max) {
        (0, _) => 0,
        (1, 1) => 1,
        (c, _) => 2 * c - 2,
    }
}

#[derive(Debug, Clone)]
enum GaugeOp {
    Add(i64),
    Sub(i64),
    Set(i64),
    Burst(i64, u16),
    Value,
    /// Threads add `n` until the gauge has more cells than before (or is at its cap).
    Grow(i64),
}

fn gauge_op() -> impl Strategy<Value = GaugeOp> {
    prop_oneof![
        3 => any::<i64>().prop_map(GaugeOp::Add),
        3 => any::<i64>().prop_map(GaugeOp::Sub),
        1 => any::<i64>().prop_map(GaugeOp::Set),
        2 => (-1000i64..1000, 1u16..300).prop_map(|(n, r)| GaugeOp::Burst(n, r)),
        2 => Just(GaugeOp::Value),
        1 => (-1000i64..1000).prop_map(GaugeOp::Grow),
    ]
}

/// Bursts that ran on a striped counter, and on a striped gauge, over all cases: the striped
/// paths the module doc promises.
static COUNTER_BURSTS_STRIPED: AtomicUsize = AtomicUsize::new(0);
static GAUGE_BURSTS_STRIPED: AtomicUsize = AtomicUsize::new(0);
/// `Grow` ops on a counter, and on a gauge, that grew it or ran their threads at once
/// ([`grow_bounded`]).
static COUNTER_GROWS_AT_ONCE: AtomicUsize = AtomicUsize::new(0);
static GAUGE_GROWS_AT_ONCE: AtomicUsize = AtomicUsize::new(0);

/// Asserts that some case ran a Burst on a striped `what`, unless too few `Grow` ops ran their
/// threads at once to stripe it ([`GROWS_AT_ONCE`]; under Miri, whose scheduler switches threads
/// within a probe, always).
fn assert_bursts_striped(what: &str, bursts: &AtomicUsize, grows: &AtomicUsize) {
    let grows = grows.load(Relaxed);
    if grows < GROWS_AT_ONCE && !cfg!(miri) {
        at_once::not_tested(&format!(
            "model_counter, Bursts on a striped {what}: {grows} Grow ops grew it or ran their \
             threads at once"
        ));
        return;
    }
    assert!(
        bursts.load(Relaxed) > 0,
        "no case ran a Burst on a striped {what} ({grows} Grow ops grew it or ran their threads \
         at once)"
    );
}

fn burst(reps: u16, add: impl Fn() + Sync) {
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| (0..reps).for_each(|_| add()));
        }
    });
}

proptest! {
    // Under Miri, a handful of cases: each takes minutes there.
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 64 }))]

    /// The cases of `counter_matches_a_u64`.
    fn counter_cases(cells in 1usize..17, ops in proptest::collection::vec(op(), 1..60)) {
        let _many = many_threads();
        let mut c = Counter::with_cells(cells);
        let mut model = 0u64;
        for op in ops {
            let before = c.cells();
            let compacting = matches!(op, Op::Compact);
            if matches!(op, Op::Burst(..) | Op::LocalBurst(..)) && c.is_striped() {
                COUNTER_BURSTS_STRIPED.fetch_add(1, Relaxed);
            }
            match op {
                Op::Add(n) => { c.add(n); model = model.wrapping_add(n); }
                Op::Incr => { c.incr(); model = model.wrapping_add(1); }
                Op::Burst(n, reps) => {
                    burst(reps, || c.add(n));
                    model = model.wrapping_add(2 * n * u64::from(reps));
                }
                Op::LocalBurst(n, reps) => {
                    std::thread::scope(|s| {
                        for _ in 0..2 {
                            s.spawn(|| {
                                let mut local = c.local();
                                (0..reps).for_each(|_| local.add(n));
                            });
                        }
                    });
                    model = model.wrapping_add(2 * n * u64::from(reps));
                }
                Op::Take => { prop_assert_eq!(c.take(), model); model = 0; }
                Op::Reset => { c.reset(); model = 0; }
                Op::Sum => prop_assert_eq!(c.sum(), model),
                Op::Grow => {
                    let adds = grow(&c, 3);
                    model = model.wrapping_add(3 * adds);
                    // Whether it grew depends on the scheduler (threads must run at once for a
                    // probe to see contention): growth itself is asserted deterministically in
                    // `cells_tests.rs` and `alloc_counter.rs`. Here: exact sums whatever happened,
                    // and (below) a counter never shrinks by itself.
                }
                Op::Compact => {
                    c.compact();
                    prop_assert_eq!((c.cells(), c.heap_bytes()), (0, 0));
                }
            }
            let cells = c.cells();
            // `cells()` is 0 while compact, so this also catches a return to compact.
            prop_assert!(compacting || cells >= before, "shrank from {} to {} cells", before, cells);
            prop_assert!(cells == 0 || (cells.is_power_of_two() && cells <= c.max_cells()));
            let lines = lines_held(cells, c.max_cells());
            prop_assert_eq!(c.heap_bytes() == 0, lines == 0);
            if let Some(line) = c.heap_bytes().checked_div(lines) {
                prop_assert_eq!(c.heap_bytes(), line * lines, "{} cells", cells);
                prop_assert!(line >= 32 && line.is_power_of_two(), "line {}", line);
            }
        }
        prop_assert_eq!(c.sum(), model);
        prop_assert_eq!(c.heap_bytes() > 0, c.is_striped());
    }

    /// The cases of `gauge_matches_an_i64`.
    fn gauge_cases(cells in 1usize..9, ops in proptest::collection::vec(gauge_op(), 1..60)) {
        let _many = many_threads();
        let g = Gauge::with_cells(cells);
        let mut model = 0i64;
        for op in ops {
            let before = g.cells();
            match op {
                GaugeOp::Add(n) => { g.add(n); model = model.wrapping_add(n); }
                GaugeOp::Sub(n) => { g.sub(n); model = model.wrapping_sub(n); }
                GaugeOp::Set(v) => { g.set(v); model = v; }
                GaugeOp::Burst(n, reps) => {
                    if g.is_striped() {
                        GAUGE_BURSTS_STRIPED.fetch_add(1, Relaxed);
                    }
                    burst(reps, || g.add(n));
                    model = model.wrapping_add(2 * n * i64::from(reps));
                }
                GaugeOp::Value => prop_assert_eq!(g.value(), model),
                GaugeOp::Grow(n) => {
                    // As the counter's `Grow`: whether it grew depends on the scheduler.
                    let adds = grow_gauge(&g, n) as i64;
                    model = model.wrapping_add(n.wrapping_mul(adds));
                }
            }
            prop_assert!(g.cells() >= before, "shrank from {} to {} cells", before, g.cells());
        }
        prop_assert_eq!(g.value(), model);
    }

    #[test]
    fn per_cpu_fold_matches_a_sum(slots in 1usize..9, adds in proptest::collection::vec(0u64..1000, 1..100)) {
        let p = PerCpu::with_slots(slots, || 0u64);
        let half = adds.len() / 2;
        std::thread::scope(|s| {
            for part in [&adds[..half], &adds[half..]] {
                let p = &p;
                s.spawn(move || part.iter().for_each(|&n| p.with(|v| *v += n)));
            }
        });
        prop_assert_eq!(p.fold(0, |a, v| a + v), adds.iter().sum::<u64>());
    }
}

#[test]
fn counter_matches_a_u64() {
    counter_cases();
    assert_bursts_striped("counter", &COUNTER_BURSTS_STRIPED, &COUNTER_GROWS_AT_ONCE);
}

#[test]
fn gauge_matches_an_i64() {
    gauge_cases();
    assert_bursts_striped("gauge", &GAUGE_BURSTS_STRIPED, &GAUGE_GROWS_AT_ONCE);
}

/// The growth path the `Grow` op relies on, step by step: compact, 2 cells, 4, 8 (the cap), and
/// the blocks it outgrew kept and counted.
///
/// The counter grows only under contention: a probe hits when another thread writes the line it
/// watches at that moment, so a cell's sharer must run at once with another thread adding to
/// that cell. The scheduler may keep them apart for as long as it likes: on one CPU no two
/// threads run at once, and on two the threads of each cell may take turns on one CPU until the
/// scheduler moves one (seconds; a bound in adds, which owners make at a nanosecond each, can
/// run out first). So each step runs waves of fresh threads ([`WAVE`] each), each wave's threads
/// sharing cells in a new order, until the counter grows; it fails once [`CONTENDED`] waves in
/// which every thread ran at once with another did not make it grow. Waves whose threads hardly
/// ran at once prove nothing either way: if only those come before the deadline, the test says
/// so and ends.
#[test]
#[cfg_attr(miri, ignore = "waves of real threads against a wall-clock deadline")]
fn lasting_contention_grows_from_two_cells_to_the_cap() {
    /// Looks ([`at_once::LOOK`], counted past a [`at_once::STREAK`]) in which each thread of a
    /// wave must have run at once with another for the wave to count: about 40 ms each, in which
    /// a sharer that runs beside the owner of its cell probes dozens of times.
    const AT_ONCE: u64 = 2048;
    /// How long a wave runs at most.
    const WAVE: Duration = Duration::from_millis(500);
    /// Waves that ran at once without growth before a step fails. Such a wave is one where
    /// every sharer took turns on one CPU with the other threads of its cell: about one wave in
    /// three from 2 cells (in 200 runs, a quarter had one such wave or more, none more than 5),
    /// so 40 in one step means growth is broken, not the draw.
    const CONTENDED: u32 = 40;
    let _many = many_threads();
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        at_once::not_tested("model_counter, growth step by step: one CPU");
        return;
    }
    let deadline = Instant::now() + at_once::PATIENCE;
    let c = Counter::with_cells(8);
    let mut total = 0;
    for cells in [2, 4, 8] {
        let before = c.cells();
        let mut contended = 0;
        while c.cells() == before && contended < CONTENDED && Instant::now() < deadline {
            let bound = Bound {
                adds: u64::MAX,
                at_once: AT_ONCE,
                until: deadline.min(Instant::now() + WAVE),
            };
            let run = grow_within(|| c.cells(), c.max_cells(), || c.add(1), bound);
            total += run.adds;
            assert_eq!(c.sum(), total);
            if c.cells() == before && run.at_once >= AT_ONCE {
                contended += 1;
            }
        }
        if c.cells() == before {
            assert!(
                contended < CONTENDED,
                "{contended} waves of {} threads ran at once and the counter did not grow from \
                 {before} cells",
                2 * before.max(1),
            );
            at_once::not_tested(&format!(
                "model_counter, growth step by step: the threads hardly ran at once before the \
                 deadline; growth from {before} cells"
            ));
            return;
        }
        assert_eq!(c.cells(), cells);
    }
    let line = c.heap_bytes() / lines_held(8, 8);
    assert_eq!(c.heap_bytes(), (2 + 4 + 8) * line);
    total += grow(&c, 1); // at the cap: its threads stop at once
    assert_eq!((c.cells(), c.sum()), (8, total));
}
