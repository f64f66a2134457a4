//! Whether threads ran at the same moment, for tests that wait for contention: a counter stripes
//! or grows only while two threads add to it at once, and the scheduler may keep two threads
//! apart for as long as it likes (on one CPU always; on two, beside a busy process, for minutes).
//! Such a test fails only once its threads have run at once for long enough that what it waits
//! for is certain, and if a deadline comes first it says that it tested nothing ([`not_tested`]).
//! Included with `#[path = "common/at_once.rs"] mod at_once;`.
//!
//! Every atomic here is Relaxed: progress marks compared for change and counts, through which
//! nothing else is read.
#![allow(dead_code)] // each binary uses what it needs

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[path = "../../examples/common/pin.rs"]
mod pin;

/// Says that a test tested nothing, and why: on standard error (which the test harness shows
/// only with `--nocapture`), and as a line appended to the file that `THRIFTY_NOT_TESTED` names,
/// if set (`.ci/run` sets it and prints the file in its summary).
pub fn not_tested(what: &str) {
    eprintln!("not tested: {what}");
    let Some(path) = std::env::var_os("THRIFTY_NOT_TESTED") else {
        return;
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Err(e) = file.and_then(|mut f| writeln!(f, "{what}")) {
        eprintln!("THRIFTY_NOT_TESTED: cannot append: {e}");
    }
}

/// How often a thread looks at the other threads' progress. Long enough that a thread that runs
/// finishes a batch in it (a batch of adds that meet another thread's on one line takes a few
/// microseconds), far shorter than a time slice.
pub const LOOK: Duration = Duration::from_micros(20);

/// Looks in a row in which another thread made progress before a thread counts them as run at
/// once with others. Threads that the scheduler takes turns with on one CPU pass that test at
/// most once per switch, never 8 times in a row: another thread progresses during a look only
/// when the looking one was switched out in it, and then runs alone for a whole slice.
pub const STREAK: u32 = 8;

/// A count on a line of its own, so that the threads' looks at it do not slow the work they
/// watch.
#[repr(align(128))]
struct Line(AtomicU64);

/// The progress marks of a set of threads, and each one's count of looks in which it ran at once
/// with another.
pub struct Together {
    beats: Vec<Line>,
    looks: Vec<Line>,
    /// Where this set's threads start counting CPUs ([`Together::spread`]): sets made one after
    /// another in a process take CPUs one after another, so that two tests running side by side
    /// on a machine of four or more CPUs do not pin their pairs to the same two.
    first_cpu: usize,
}

/// The next set's [`Together::first_cpu`].
static NEXT_CPU: AtomicUsize = AtomicUsize::new(0);

impl Together {
    /// For `threads` threads, numbered from 0.
    pub fn new(threads: usize) -> Self {
        let lines = || (0..threads).map(|_| Line(AtomicU64::new(0))).collect();
        Together {
            beats: lines(),
            looks: lines(),
            first_cpu: NEXT_CPU.fetch_add(threads, Relaxed),
        }
    }

    /// Pins the calling thread, thread `me` of the set, to a CPU of its own among those it may
    /// run on (the set's `me`-th, counted round), so that threads that must run at once do. Where
    /// another process keeps a CPU busy, the scheduler may otherwise place a test's threads
    /// together on the other one for minutes (threads spawned afresh are placed anew each time),
    /// and they then take turns, never at once. Does nothing where the thread may use one CPU
    /// only or the calls fail, off Linux, or under Miri (which runs every thread on one).
    pub fn spread(&self, me: usize) {
        pin::pin_to_nth_cpu(self.first_cpu.wrapping_add(me));
    }

    /// Thread `me`'s watch, which it beats after each batch of its work.
    pub fn watch(&self, me: usize) -> Watch<'_> {
        Watch {
            together: self,
            me,
            beats: 0,
            others: 0,
            streak: 0,
            looked: Instant::now(),
        }
    }

    /// The least, over the threads, of the looks ([`LOOK`], counted past a [`STREAK`]) in which a
    /// thread ran at once with another: how long the thread that ran with others least did so.
    pub fn at_once(&self) -> u64 {
        self.looks
            .iter()
            .map(|l| l.0.load(Relaxed))
            .min()
            .unwrap_or(0)
    }
}

/// One thread's view of the others ([`Together::watch`]).
pub struct Watch<'a> {
    together: &'a Together,
    me: usize,
    beats: u64,
    /// The sum of the other threads' marks at the last look: marks only grow, so it changes
    /// exactly when one of them progressed (a sum, not a list, so that a watch never allocates:
    /// the dhat tests wait for contention inside the span they measure).
    others: u64,
    streak: u32,
    looked: Instant,
}

impl Watch<'_> {
    /// Marks one more batch of this thread's work done and, once per [`LOOK`], looks whether any
    /// other thread made progress since its last look.
    pub fn beat(&mut self) {
        let t = self.together;
        self.beats += 1;
        t.beats[self.me].0.store(self.beats, Relaxed);
        if self.looked.elapsed() < LOOK {
            return;
        }
        self.looked = Instant::now();
        let others = (t.beats.iter().enumerate())
            .filter(|&(j, _)| j != self.me)
            .map(|(_, beat)| beat.0.load(Relaxed))
            .sum();
        let others_ran = others != self.others;
        self.others = others;
        self.streak = if others_ran { self.streak + 1 } else { 0 };
        if self.streak >= STREAK {
            t.looks[self.me].0.fetch_add(1, Relaxed);
        }
    }
}

/// Looks at once ([`LOOK`]) within which two threads adding to one counter certainly stripe it:
/// 0.4 s, where the rule stripes after about 12 000 adds of each.
pub const STRIPES_WITHIN: u64 = 20_000;

/// How long a [`Contention`] (or a test that waits for contention) waits before it gives up
/// untested. A test's threads that run at once reach what it waits for in milliseconds; this
/// bounds only a machine that keeps them apart. Under Miri an hour of its clock, which moves
/// with the code it runs (three places of `shapes_counter`'s hot-counter test took 300 s).
pub const PATIENCE: Duration = Duration::from_secs(if cfg!(miri) { 3600 } else { 60 });

/// A wait for contention to make a counter stripe or grow, for a test's setup: its threads add
/// until they see it happen, and the test goes on to what it tests only if it did. Without a
/// bound, such a wait runs for ever on a machine that never runs the threads at once; bounded by
/// adds or time, it fails there although nothing is wrong.
pub struct Contention {
    together: Together,
    joined: AtomicUsize,
    until: Instant,
    enough: u64,
}

impl Contention {
    /// For `threads` threads, which must see what they wait for within `enough` looks at once
    /// ([`STRIPES_WITHIN`] for a stripe; `u64::MAX` where running beside some other thread does
    /// not make it certain), and give up after [`PATIENCE`].
    pub fn new(threads: usize, enough: u64) -> Self {
        Contention {
            together: Together::new(threads),
            joined: AtomicUsize::new(0),
            until: Instant::now() + PATIENCE,
            enough,
        }
    }

    /// Called on each of the threads (at most `threads` calls): runs `add` in batches of 64 until
    /// `done()`, the threads have run at once for `enough` looks, or the wait's patience ends.
    /// Returns the number of `add` calls; allocates nothing. Two threads are pinned to different
    /// CPUs ([`Together::spread`]); more are left where the scheduler puts them (pinned, a pair
    /// that must meet could be kept on one CPU for good).
    pub fn add_until(&self, done: impl Fn() -> bool, mut add: impl FnMut()) -> u64 {
        let me = self.joined.fetch_add(1, Relaxed);
        if self.together.beats.len() == 2 {
            self.together.spread(me);
        }
        let mut watch = self.together.watch(me);
        let mut adds = 0;
        while !done() && self.together.at_once() < self.enough && Instant::now() < self.until {
            for _ in 0..64 {
                add();
            }
            adds += 64;
            watch.beat();
        }
        adds
    }

    /// Once the threads are joined: true if `done` (what they waited for happened). Otherwise
    /// panics, naming `what`, if they ran at once for `enough` looks, and says that `what` was
    /// not tested ([`not_tested`]) and returns false if patience ran out first.
    pub fn reached(&self, done: bool, what: &str) -> bool {
        let looks = self.together.at_once();
        assert!(
            done || looks < self.enough,
            "{what}: the threads ran at once for {looks} looks and it never happened"
        );
        if !done {
            not_tested(&format!(
                "{what}: the threads ran at once for {looks} looks in {PATIENCE:?}"
            ));
        }
        done
    }
}

/// A test's setup that stripes a counter, whole: two fresh threads run `add` until `striped()`
/// ([`Contention::add_until`], within [`STRIPES_WITHIN`] looks at once), joined by hand (a scope
/// returns before the threads' destructors give back their slot claims and cells, which threads
/// spawned next must find free). Their adds if `striped()` then holds; `None`, once
/// [`Contention::reached`] has said that `what` was not tested, if patience ran out first.
pub fn stripe(striped: impl Fn() -> bool + Sync, add: impl Fn() + Sync, what: &str) -> Option<u64> {
    let wait = Contention::new(2, STRIPES_WITHIN);
    let adds = std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| s.spawn(|| wait.add_until(&striped, &add)))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    wait.reached(striped(), what).then_some(adds)
}
