//! Randomised churn of [`Semaphore`], with an [`InFlight`] gate in front of some requests, in the
//! shapes a server has, round after round on fresh threads: 8 threads, or in half the rounds 32
//! (more threads than CPUs on most test machines, the shape that matters), on one semaphore
//! of 3 to 5 permits. Each thread is driven by its own xorshift generator, seeded by
//! round and thread, through every acquire form (`try_acquire`, `acquire`, `acquire_timeout` with
//! zero, very short and `Duration::MAX` timeouts, and the owned form of each), weights 0 to 4
//! and over the total, permits held across further requests, moved to a dropper thread over
//! `std::sync::mpsc` and dropped or forgotten there, or forgotten where they were taken; in the
//! strict mode and in the barging one with patience from zero to `Duration::MAX`; and half the
//! rounds closed while requests race.
//!
//! Checked, on every call: the weight held (counted up after each grant, down before each
//! release or forget) never passes the permits made with less those forgotten; a grant is of the
//! weight asked for; every refusal is one the docs allow for that form at that moment (`Closed`
//! for every request made once the semaphore reads closed, and only in rounds that close;
//! `InsufficientCapacity` with the request's figures and a capacity between the lowest total
//! the round can reach and the permits made with, and always for a weight over those; `Timeout`
//! only with a finite timeout); `total()` never grows and `available()` never reads over the
//! permits made with; the gate never admits more than its cap. At the end of each round: every
//! permit is back (`available() == total()`, which is the permits made with less those
//! forgotten), nobody waits, the whole remaining weight is granted at once by `try_acquire` (or
//! refused as closed), the gate is empty and has counted every request, and no permit kept a
//! reference to either. Each round runs under a deadline (`tests/common/deadline.rs`), so a lost
//! wake-up or a waiter never served fails the test instead of hanging it; nothing asserts how
//! long anything took (timeouts are inputs).
//!
//! `tests/stress_limit.rs`, `tests/shapes_limit.rs` and `tests/shapes_semaphore_barging.rs` check
//! these one shape at a time, on fixed schedules; this file mixes them, with `forget` and
//! `close` racing the acquirers in both fairness modes.

#![cfg(not(loom))]

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;
use thrifty::limit::{
    AcquireError, AcquireTimeoutError, Fairness, InFlight, InFlightPermit, InsufficientCapacity,
    OwnedInFlightPermit, OwnedPermit, Permit, Semaphore, TryAcquireError,
};

#[path = "common/deadline.rs"]
mod deadline;
use deadline::within;
#[path = "common/rng.rs"]
mod rng;
use rng::XorShift;

/// Rounds, each on fresh threads; 48 cover every fairness, with and without a close, with few
/// and with many threads, twice (Miri's six, every fairness once, with few).
const ROUNDS: u64 = if cfg!(miri) { 6 } else { 48 };
/// Steps each thread takes in a round (an acquire, a let-go or a look).
const STEPS: usize = if cfg!(miri) { 12 } else { 100 };
/// Threads in half the rounds (under Miri, in all six): oversubscribed on 2 cores already.
const FEW: usize = if cfg!(miri) { 3 } else { 8 };
/// Threads in the other rounds (12 to 23, 36 to 47): far more than the cores, where a hand-over
/// waits for the scheduler.
const MANY: usize = if cfg!(miri) { 5 } else { 32 };
/// The most permits a thread holds at once.
const HAND: usize = 3;

/// The fairness modes the rounds cycle through: strict, and barging with patience from none
/// (hand-overs from the first wait) through short and long to never.
const FAIRNESS: [Fairness; 6] = [
    Fairness::Strict,
    Fairness::Eventual(Duration::ZERO),
    Fairness::Eventual(Duration::from_micros(1)),
    Fairness::Eventual(Duration::from_micros(100)),
    Fairness::Eventual(Duration::from_millis(2)),
    Fairness::Eventual(Duration::MAX),
];

/// The finite timeouts a timed request picks from: zero (answered as `try_acquire` is) and very
/// short ones.
const TIMEOUTS: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_micros(1),
    Duration::from_micros(20),
    Duration::from_micros(200),
];

/// The shared xorshift generator ([`XorShift`]), with the draws this test makes.
struct Rng(XorShift);

impl Rng {
    /// A generator for `stream` (a thread, the dropper, the closer) in round `round`.
    fn new(round: u64, stream: u64) -> Self {
        Self(XorShift::new(round << 32 ^ stream))
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0.next() % n
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `choices`.
    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len() as u64) as usize]
    }
}

/// One round's settings, all derived from its index.
#[derive(Clone, Copy, Debug)]
struct Round {
    index: u64,
    threads: usize,
    /// The permits the semaphore is made with.
    permits: u32,
    fairness: Fairness,
    /// The most weight the round's threads may forget between them: the total never falls
    /// below `permits - forget_budget`, which is at least 1.
    forget_budget: u32,
    /// Whether a closer thread closes the semaphore while the workers run.
    close: bool,
    /// The in-flight gate's cap.
    gate: usize,
}

impl Round {
    fn new(index: u64) -> Self {
        let mut rng = Rng::new(index, u64::from(u32::MAX));
        let threads = if (index / 12) % 2 == 1 { MANY } else { FEW };
        let permits = rng.pick(&[3, 4, 4, 5]);
        Self {
            index,
            threads,
            permits,
            fairness: FAIRNESS[(index % 6) as usize],
            forget_budget: rng.below(u64::from(permits)) as u32,
            close: (index / 2) % 2 == 1,
            gate: threads / 2 + 1,
        }
    }

    /// The lowest total the round can reach.
    fn floor(&self) -> u32 {
        self.permits - self.forget_budget
    }
}

/// What a round's calls came to, summed over its threads (and over the rounds at the end).
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    granted: u64,
    no_permits: u64,
    timed_out: u64,
    closed: u64,
    /// `Closed` returned to an untimed request made while the semaphore was open: one that the
    /// close most likely woke from its wait.
    closed_while_waiting: u64,
    over_total: u64,
    forgotten: u64,
    sent: u64,
    shed: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.granted += other.granted;
        self.no_permits += other.no_permits;
        self.timed_out += other.timed_out;
        self.closed += other.closed;
        self.closed_while_waiting += other.closed_while_waiting;
        self.over_total += other.over_total;
        self.forgotten += other.forgotten;
        self.sent += other.sent;
        self.shed += other.shed;
    }
}

/// How a request asks: at once, waiting without a deadline, or waiting at most a timeout.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    Try,
    Wait,
    Within(Duration),
}

impl Form {
    /// Whether the call can wait without end (for permits others hold): made only by a thread
    /// that holds none, so that it never waits for itself.
    fn unbounded(self) -> bool {
        matches!(self, Form::Wait | Form::Within(Duration::MAX))
    }
}

/// Any of the three error types, for one set of checks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Refusal {
    NoPermits,
    Timeout,
    Closed,
    OverTotal(InsufficientCapacity),
}

impl From<TryAcquireError> for Refusal {
    fn from(e: TryAcquireError) -> Self {
        match e {
            TryAcquireError::NoPermits => Refusal::NoPermits,
            TryAcquireError::Closed => Refusal::Closed,
            TryAcquireError::InsufficientCapacity(e) => Refusal::OverTotal(e),
        }
    }
}

impl From<AcquireError> for Refusal {
    fn from(e: AcquireError) -> Self {
        match e {
            AcquireError::Closed => Refusal::Closed,
            AcquireError::InsufficientCapacity(e) => Refusal::OverTotal(e),
        }
    }
}

impl From<AcquireTimeoutError> for Refusal {
    fn from(e: AcquireTimeoutError) -> Self {
        match e {
            AcquireTimeoutError::Timeout => Refusal::Timeout,
            AcquireTimeoutError::Closed => Refusal::Closed,
            AcquireTimeoutError::InsufficientCapacity(e) => Refusal::OverTotal(e),
        }
    }
}

/// A grant, borrowed or owned.
enum Permits<'a> {
    Borrowed(Permit<'a>),
    Owned(OwnedPermit),
}

/// An admission through the gate, borrowed or owned.
enum Entry<'a> {
    Borrowed(InFlightPermit<'a>),
    Owned(OwnedInFlightPermit),
}

/// Permits held, with the gate admission taken for them, if any.
struct Held<'a> {
    weight: u32,
    permits: Permits<'a>,
    entry: Option<Entry<'a>>,
}

/// The test's own books for one round, shared by its threads.
struct Books {
    /// Weight held now: raised after each grant, lowered before each release or forget, so it
    /// never counts a permit that is not held.
    held: AtomicU64,
    /// Weight forgotten: raised after each forget, so it never counts one that is not done.
    forgotten: AtomicU64,
    /// Weight the round may still forget.
    budget: AtomicU32,
    /// Admissions through the gate now, counted as `held` is.
    inside: AtomicUsize,
    /// Gate attempts made.
    gate_tries: AtomicU64,
    /// Steps done by all workers, and workers finished (panicked ones included): the closer's
    /// clock.
    steps: AtomicUsize,
    finished: AtomicUsize,
}

/// What every thread of a round shares.
struct Ctx<'a> {
    round: Round,
    sem: &'a Arc<Semaphore>,
    gate: &'a Arc<InFlight>,
    books: &'a Books,
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} on {:?}", self.round, self.sem)
    }
}

/// Counts a worker finished when dropped, so that a worker that panics still lets the closer
/// stop waiting for it.
struct Finished<'a>(&'a AtomicUsize);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl<'a> Ctx<'a> {
    /// Counts a grant of `weight` into the books and checks the bound. The cap is read before
    /// the count goes up: permits forgotten later were counted in `held` until just before
    /// their forget, so a cap read after could be below what was really held when counted.
    fn took(&self, weight: u32) {
        let cap = u64::from(self.round.permits) - self.books.forgotten.load(SeqCst);
        let now = self.books.held.fetch_add(u64::from(weight), SeqCst) + u64::from(weight);
        assert!(
            now <= cap,
            "{now} permits held of {cap} (weight {weight}): {self:?}"
        );
    }

    /// Takes `weight` out of the books before its permits go back or are forgotten.
    fn giving(&self, weight: u32) {
        self.books.held.fetch_sub(u64::from(weight), SeqCst);
    }

    /// Whether `weight` more may be forgotten in this round (and, if so, takes it out of the
    /// budget). A weight of 0 always may: its forget changes nothing.
    fn may_forget(&self, weight: u32) -> bool {
        self.books
            .budget
            .fetch_update(SeqCst, SeqCst, |left| left.checked_sub(weight))
            .is_ok()
    }

    /// Enters the gate, borrowed or owned, counting the admission and checking the cap; `None`
    /// if it sheds the request.
    fn enter(&self, owned: bool) -> Option<Entry<'a>> {
        self.books.gate_tries.fetch_add(1, SeqCst);
        let entry = if owned {
            Entry::Owned(self.gate.try_enter_owned()?)
        } else {
            Entry::Borrowed(self.gate.try_enter()?)
        };
        let now = self.books.inside.fetch_add(1, SeqCst) + 1;
        assert!(
            now <= self.round.gate,
            "{now} admitted of {}",
            self.round.gate
        );
        Some(entry)
    }

    /// Leaves the gate: the count goes down before the admission does.
    fn leave(&self, entry: Option<Entry<'a>>) {
        if let Some(entry) = entry {
            self.books.inside.fetch_sub(1, SeqCst);
            match entry {
                Entry::Borrowed(entry) => drop(entry),
                Entry::Owned(entry) => drop(entry),
            }
        }
    }

    /// One request of a random weight and form (an unbounded wait only if `empty_handed`),
    /// through the gate half the time; checks what it returns and counts it into `tally`.
    fn request(&self, rng: &mut Rng, empty_handed: bool, tally: &mut Tally) -> Option<Held<'a>> {
        let (permits, floor) = (self.round.permits, self.round.floor());
        let weight = if rng.chance(4) {
            permits + 1 + rng.below(2) as u32 // over any total the round has
        } else {
            rng.pick(&[0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4])
        };
        let owned = rng.chance(50);
        let form = match rng.below(if empty_handed { 10 } else { 6 }) {
            0..=2 => Form::Try,
            3..=5 => Form::Within(rng.pick(&TIMEOUTS)),
            6 => Form::Within(Duration::MAX),
            _ => Form::Wait,
        };
        assert!(empty_handed || !form.unbounded());
        let entry = if rng.chance(50) {
            match self.enter(owned) {
                Some(entry) => Some(entry),
                None => {
                    tally.shed += 1;
                    return None;
                }
            }
        } else {
            None
        };
        let closed_before = self.sem.is_closed();
        let sem = self.sem;
        let got: Result<Permits<'a>, Refusal> = match (form, owned) {
            (Form::Try, false) => sem
                .try_acquire(weight)
                .map(Permits::Borrowed)
                .map_err(Into::into),
            (Form::Try, true) => sem
                .try_acquire_owned(weight)
                .map(Permits::Owned)
                .map_err(Into::into),
            (Form::Wait, false) => sem
                .acquire(weight)
                .map(Permits::Borrowed)
                .map_err(Into::into),
            (Form::Wait, true) => sem
                .acquire_owned(weight)
                .map(Permits::Owned)
                .map_err(Into::into),
            (Form::Within(t), false) => sem
                .acquire_timeout(weight, t)
                .map(Permits::Borrowed)
                .map_err(Into::into),
            (Form::Within(t), true) => sem
                .acquire_timeout_owned(weight, t)
                .map(Permits::Owned)
                .map_err(Into::into),
        };
        let what = format!("{form:?} (owned: {owned}) of weight {weight}");
        match got {
            Ok(got) => {
                let held = match &got {
                    Permits::Borrowed(p) => p.weight(),
                    Permits::Owned(p) => p.weight(),
                };
                assert_eq!(held, weight, "{what}: granted another weight: {self:?}");
                assert!(!closed_before, "{what}: granted after the close: {self:?}");
                self.took(weight);
                tally.granted += 1;
                Some(Held {
                    weight,
                    permits: got,
                    entry,
                })
            }
            Err(refusal) => {
                if closed_before {
                    assert_eq!(refusal, Refusal::Closed, "{what} after the close: {self:?}");
                }
                if weight > permits {
                    assert!(
                        matches!(refusal, Refusal::OverTotal(_) | Refusal::Closed),
                        "{what} over every total: {refusal:?}: {self:?}"
                    );
                }
                match refusal {
                    Refusal::NoPermits => tally.no_permits += 1,
                    Refusal::Timeout => {
                        assert!(
                            matches!(form, Form::Within(t) if t != Duration::MAX),
                            "{what}: timed out: {self:?}"
                        );
                        tally.timed_out += 1;
                    }
                    Refusal::Closed => {
                        assert!(self.round.close, "{what}: closed, never closed: {self:?}");
                        tally.closed += 1;
                        if form.unbounded() && !closed_before {
                            tally.closed_while_waiting += 1;
                        }
                    }
                    Refusal::OverTotal(e) => {
                        let fits = e.requested == weight
                            && e.capacity < weight
                            && (floor..=permits).contains(&e.capacity);
                        assert!(fits, "{what}: {e:?}, floor {floor}: {self:?}");
                        tally.over_total += 1;
                    }
                }
                self.leave(entry);
                None
            }
        }
    }

    /// Lets go of `held`: sends it to the dropper (some of the time, if `to` is given), forgets
    /// it (some of the time, within the round's budget), or drops it; the books follow.
    fn let_go(
        &self,
        rng: &mut Rng,
        held: Held<'a>,
        to: Option<&mpsc::Sender<Held<'a>>>,
        tally: &mut Tally,
    ) {
        if let Some(to) = to {
            if rng.chance(35) {
                tally.sent += 1;
                to.send(held).expect("the dropper outlives the workers");
                return;
            }
        }
        let Held {
            weight,
            permits,
            entry,
        } = held;
        if rng.chance(3) && self.may_forget(weight) {
            self.giving(weight);
            match permits {
                Permits::Borrowed(p) => p.forget(),
                Permits::Owned(p) => p.forget(),
            }
            self.books.forgotten.fetch_add(u64::from(weight), SeqCst);
            tally.forgotten += 1;
        } else {
            self.giving(weight);
            drop(permits);
        }
        self.leave(entry);
    }

    /// Reads the semaphore's snapshots: the total stays between the round's floor and the
    /// permits made with and never grows (`last_total`), the free permits never read over the
    /// permits made with; now and then `waiting()` and `Debug`, which take the line's lock.
    fn look(&self, rng: &mut Rng, last_total: &mut u32) {
        let total = self.sem.total();
        assert!(
            (self.round.floor()..=*last_total).contains(&total),
            "total {total} after {last_total}: {self:?}"
        );
        *last_total = total;
        let available = self.sem.available();
        assert!(
            available <= self.round.permits,
            "{available} free: {self:?}"
        );
        if rng.chance(20) {
            assert!(self.sem.waiting() <= self.round.threads, "{self:?}");
            assert!(format!("{:?}", self.sem).starts_with("Semaphore"));
        }
    }

    /// One worker: [`STEPS`] steps of requests, let-goes and looks, holding up to [`HAND`]
    /// grants at once; then lets go of what it still holds.
    ///
    /// Why it cannot hang: it waits without a deadline only while it holds nothing, so it never
    /// waits for itself; every other thread that holds permits only makes calls that return on
    /// their own (tries, finite timeouts) and lets them go by the end of its finite run; the
    /// dropper lets go of what it holds within a short timeout of quiet; and a waiter too heavy
    /// for a shrunk total, or on a closed semaphore, is woken to fail. So every wait ends, and a
    /// lost wake-up shows as the round's deadline passing.
    fn work(&self, t: usize, to_dropper: mpsc::Sender<Held<'a>>) -> Tally {
        let _finished = Finished(&self.books.finished);
        let mut rng = Rng::new(self.round.index, t as u64);
        let mut tally = Tally::default();
        let mut hand: Vec<Held<'a>> = Vec::with_capacity(HAND);
        let mut last_total = self.round.permits;
        for _ in 0..STEPS {
            let roll = rng.below(100);
            if roll < 5 {
                self.look(&mut rng, &mut last_total);
            } else if hand.is_empty() || (hand.len() < HAND && roll < 55) {
                if let Some(held) = self.request(&mut rng, hand.is_empty(), &mut tally) {
                    hand.push(held);
                }
            } else {
                let at = rng.below(hand.len() as u64) as usize;
                let held = hand.swap_remove(at);
                self.let_go(&mut rng, held, Some(&to_dropper), &mut tally);
            }
            // Holds of different lengths: now and then the CPU goes to another thread.
            if rng.chance(10) {
                std::thread::yield_now();
            }
            self.books.steps.fetch_add(1, SeqCst);
        }
        for held in hand {
            self.let_go(&mut rng, held, Some(&to_dropper), &mut tally);
        }
        tally
    }

    /// The dropper: keeps up to 3 of the grants sent to it for a while, lets go of the oldest
    /// beyond a random number of them (dropping or forgetting it on this thread, which never
    /// asked for it), and of all of them once no grant has come for a short timeout or every
    /// worker is gone.
    fn drop_sent(&self, from: mpsc::Receiver<Held<'a>>) -> Tally {
        let mut rng = Rng::new(self.round.index, u64::from(u16::MAX));
        let mut tally = Tally::default();
        let mut kept = VecDeque::new();
        loop {
            let keep = rng.below(4) as usize;
            while kept.len() > keep {
                let held = kept.pop_front().expect("longer than keep");
                self.let_go(&mut rng, held, None, &mut tally);
            }
            let quiet = rng.pick(&[Duration::from_micros(1), Duration::from_micros(50)]);
            match from.recv_timeout(quiet) {
                Ok(held) => kept.push_back(held),
                Err(RecvTimeoutError::Timeout) => {
                    for held in kept.drain(..) {
                        self.let_go(&mut rng, held, None, &mut tally);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        for held in kept {
            self.let_go(&mut rng, held, None, &mut tally);
        }
        tally
    }

    /// The closer, in rounds that close: waits until the workers have taken a random share
    /// (10% to 80%) of their steps and someone waits in line (or 10% more steps have passed,
    /// or every worker is done), then closes, racing whatever is in flight.
    fn close(&self) {
        let mut rng = Rng::new(self.round.index, u64::from(u16::MAX) + 1);
        let all = (self.round.threads * STEPS) as u64;
        let target = (all / 10 + rng.below(all * 7 / 10)) as usize;
        let late = target + (all / 10) as usize;
        loop {
            let steps = self.books.steps.load(SeqCst);
            if self.books.finished.load(SeqCst) == self.round.threads
                || steps >= late
                || (steps >= target && self.sem.waiting() > 0)
            {
                break;
            }
            std::thread::sleep(Duration::from_micros(10));
        }
        self.sem.close();
    }
}

/// Runs one round on fresh threads and checks its end state; returns its tally.
fn run_round(round: Round) -> Tally {
    let sem = Arc::new(Semaphore::with_fairness(round.permits, round.fairness));
    let gate = Arc::new(InFlight::new(round.gate));
    let books = Books {
        held: AtomicU64::new(0),
        forgotten: AtomicU64::new(0),
        budget: AtomicU32::new(round.forget_budget),
        inside: AtomicUsize::new(0),
        gate_tries: AtomicU64::new(0),
        steps: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
    };
    let ctx = Ctx {
        round,
        sem: &sem,
        gate: &gate,
        books: &books,
    };
    let mut tally = Tally::default();
    std::thread::scope(|s| {
        let ctx = &ctx;
        let name = |who: &str| format!("round {} {who}", round.index);
        let spawn = |who: String| std::thread::Builder::new().name(who);
        let (to_dropper, sent) = mpsc::channel();
        let dropper = spawn(name("dropper"))
            .spawn_scoped(s, move || ctx.drop_sent(sent))
            .unwrap();
        let closer = round.close.then(|| {
            spawn(name("closer"))
                .spawn_scoped(s, move || ctx.close())
                .unwrap()
        });
        let workers: Vec<_> = (0..round.threads)
            .map(|t| {
                let to_dropper = to_dropper.clone();
                spawn(name(&format!("worker {t}")))
                    .spawn_scoped(s, move || ctx.work(t, to_dropper))
                    .unwrap()
            })
            .collect();
        drop(to_dropper);
        for worker in workers {
            tally.add(&worker.join().unwrap());
        }
        tally.add(&dropper.join().unwrap());
        if let Some(closer) = closer {
            closer.join().unwrap();
        }
    });
    let forgotten = books.forgotten.load(SeqCst);
    assert_eq!(books.held.load(SeqCst), 0, "the books: {ctx:?}");
    assert!(forgotten <= u64::from(round.forget_budget));
    let total = round.permits - forgotten as u32;
    assert_eq!(sem.total(), total, "the total: {ctx:?}");
    assert_eq!(sem.available(), total, "a permit was lost: {ctx:?}");
    assert_eq!(sem.waiting(), 0, "left in line: {ctx:?}");
    assert_eq!(sem.is_closed(), round.close, "{ctx:?}");
    if round.close {
        assert_eq!(sem.try_acquire(total).unwrap_err(), TryAcquireError::Closed);
    } else {
        let all = sem
            .try_acquire(total)
            .unwrap_or_else(|e| panic!("the whole {total}: {e}: {ctx:?}"));
        assert_eq!((all.weight(), sem.available()), (total, 0));
        drop(all);
        assert_eq!(sem.available(), total);
    }
    assert_eq!(gate.in_flight(), 0, "an admission stayed: {gate:?}");
    assert_eq!(books.inside.load(SeqCst), 0);
    assert_eq!(gate.admitted() + gate.shed(), books.gate_tries.load(SeqCst));
    assert_eq!(gate.shed(), tally.shed);
    assert_eq!(Arc::strong_count(&sem), 1, "a permit kept its semaphore");
    assert_eq!(Arc::strong_count(&gate), 1, "an admission kept its gate");
    tally
}

/// [`ROUNDS`] rounds of churn, each under the deadline; then checks that the rounds between them
/// reached every outcome (natively; Miri's few short rounds may not).
#[test]
fn random_churn_keeps_the_books_in_every_mode() {
    let mut tally = Tally::default();
    for index in 0..ROUNDS {
        let round = Round::new(index);
        // Printed for a failing run (the harness shows a failed test's output).
        println!("{round:?}");
        tally.add(&within(&format!("{round:?}"), move || run_round(round)));
    }
    println!("{tally:?}");
    if !cfg!(miri) {
        let reached = [
            tally.granted,
            tally.no_permits,
            tally.timed_out,
            tally.closed,
            tally.over_total,
            tally.forgotten,
            tally.sent,
            tally.shed,
        ];
        assert!(
            reached.iter().all(|&n| n > 0),
            "an outcome never came: {tally:?}"
        );
    }
}
