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
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

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
}

impl Together {
    /// For `threads` threads, numbered from 0.
    pub fn new(threads: usize) -> Self {
        let lines = || (0..threads).map(|_| Line(AtomicU64::new(0))).collect();
        Together {
            beats: lines(),
            looks: lines(),
        }
    }

    /// Thread `me`'s watch, which it beats after each batch of its work.
    pub fn watch(&self, me: usize) -> Watch<'_> {
        Watch {
            together: self,
            me,
            beats: 0,
            seen: vec![0; self.beats.len()],
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
    seen: Vec<u64>,
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
        let mut others_ran = false;
        for (j, beat) in t.beats.iter().enumerate().filter(|&(j, _)| j != self.me) {
            let now = beat.0.load(Relaxed);
            others_ran |= now != self.seen[j];
            self.seen[j] = now;
        }
        self.streak = if others_ran { self.streak + 1 } else { 0 };
        if self.streak >= STREAK {
            t.looks[self.me].0.fetch_add(1, Relaxed);
        }
    }
}
