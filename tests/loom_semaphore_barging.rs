//! loom models of the semaphore's barging mode (`Fairness::Eventual`): two permits freed back to back reach two
//! waiters (the second release does not offer its permit to the waiter the first one woke); a
//! caller that barges past a woken waiter leaves that waiter to be woken again, not stranded; a
//! light waiter behind a heavy one gets the permit the heavy one cannot use; a woken waiter that
//! times out passes its offer on; a heavy waiter that a caller beat to part of its offer passes the rest on
//! to a light one behind it; a forget racing a woken waiter strands nobody; with zero patience a
//! freed permit is kept for a heavy waiter, refused to a barger; releases that find a woken
//! waiter yet to try (and take no lock) strand neither it nor the waiter behind it. (Permits
//! never over the total, arrival order with zero patience and close are `tests/loom_limit.rs`'s
//! strict models, run on a barging semaphore too.) Those models reach both of the mode's
//! lock-free shortcuts (`src/limit/semaphore/fairness.rs`): the release that finds a woken
//! waiter yet to try, and the waiter that takes free permits with the fast path's CAS (under
//! loom a waiter looks once before it parks, where it would spin).
//!
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_semaphore_barging -- loom`
//!
//! A patience of `Duration::MAX` never hands over and `Duration::ZERO` always does, so neither
//! depends on the clock loom does not model.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;
use thrifty::limit::{AcquireError, AcquireTimeoutError, Fairness, Semaphore, TryAcquireError};

#[path = "common/loom.rs"]
mod loom_model;

const BARGING: Fairness = Fairness::Eventual(Duration::MAX);

fn model(f: impl Fn() + Sync + Send + 'static) {
    loom_model::model(f);
}

/// A waiter's thread: its request's outcome, the permits dropped.
type Waiting = thread::JoinHandle<Result<(), AcquireError>>;

/// Queues a request for 2 permits, then one for 1 behind it, each on a thread of its own, and
/// returns the two threads once both wait.
fn heavy_then_light(s: &Arc<Semaphore>) -> (Waiting, Waiting) {
    let s1 = s.clone();
    let heavy = thread::spawn(move || s1.acquire(2).map(drop));
    wait_for_waiters(s, 1);
    let s2 = s.clone();
    let light = thread::spawn(move || s2.acquire(1).map(drop));
    wait_for_waiters(s, 2);
    (heavy, light)
}

fn wait_for_waiters(s: &Semaphore, n: usize) {
    while s.waiting() < n {
        thread::yield_now();
    }
}

#[test]
fn loom_barging_two_releases_reach_two_waiters() {
    model(|| {
        let s = Arc::new(Semaphore::with_fairness(2, BARGING));
        let (a, b) = (s.try_acquire(1).unwrap(), s.try_acquire(1).unwrap());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || s.acquire(1).map(drop))
            })
            .collect();
        wait_for_waiters(&s, 2);
        drop(a);
        drop(b);
        for w in waiters {
            assert_eq!(w.join().unwrap(), Ok(()));
        }
        assert_eq!((s.available(), s.waiting()), (2, 0));
    });
}

#[test]
fn loom_a_barger_racing_a_woken_waiter_strands_nobody() {
    model(|| {
        let s = Arc::new(Semaphore::with_fairness(1, BARGING));
        let held = Semaphore::try_acquire_owned(&s, 1).unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let s1 = s.clone();
        let i1 = inside.clone();
        let waiter = thread::spawn(move || {
            let p = s1.acquire(1).unwrap();
            assert_eq!(i1.fetch_add(1, SeqCst), 0, "two holders of one permit");
            i1.fetch_sub(1, SeqCst);
            drop(p);
        });
        wait_for_waiters(&s, 1);
        let s2 = s.clone();
        let i2 = inside.clone();
        let barger = thread::spawn(move || {
            let p = s2.acquire(1).unwrap();
            assert_eq!(i2.fetch_add(1, SeqCst), 0, "two holders of one permit");
            i2.fetch_sub(1, SeqCst);
            drop(p);
        });
        drop(held);
        waiter.join().unwrap();
        barger.join().unwrap();
        assert_eq!((s.available(), s.waiting()), (1, 0));
    });
}

#[test]
fn loom_barging_a_light_waiter_gets_what_a_heavy_one_cannot_use() {
    model(|| {
        let s = Arc::new(Semaphore::with_fairness(2, BARGING));
        let (a, b) = (s.try_acquire(1).unwrap(), s.try_acquire(1).unwrap());
        let (heavy, light) = heavy_then_light(&s);
        drop(a);
        // The light one must get the freed permit while `b` is still held.
        assert_eq!(light.join().unwrap(), Ok(()));
        drop(b);
        assert_eq!(heavy.join().unwrap(), Ok(()));
        assert_eq!((s.available(), s.waiting()), (2, 0));
    });
}

/// A hasty waiter (a 1 ns timeout: under loom a timed park is a spurious wake-up, and 1 ns is
/// over at once) and a patient one behind it, then the permit freed. With `barge`, this thread
/// takes the freed permit ahead of the line and holds it until the hasty waiter has its answer.
/// Either way the hasty waiter gets the permit or times out, the patient one is served, and the
/// semaphore ends whole.
fn hasty_then_patient(barge: bool) {
    model(move || {
        let s = Arc::new(Semaphore::with_fairness(1, BARGING));
        let held = s.try_acquire(1).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let (s1, d1) = (s.clone(), done.clone());
        let hasty = thread::spawn(move || {
            let got = s1.acquire_timeout(1, Duration::from_nanos(1)).map(drop);
            d1.store(1, SeqCst);
            got
        });
        let s2 = s.clone();
        let patient = thread::spawn(move || s2.acquire(1).map(drop));
        drop(held);
        let barged = if barge { s.try_acquire(1).ok() } else { None };
        if barged.is_some() {
            while done.load(SeqCst) == 0 {
                thread::yield_now();
            }
        }
        drop(barged);
        let hasty = hasty.join().unwrap();
        assert!(
            matches!(hasty, Ok(()) | Err(AcquireTimeoutError::Timeout)),
            "{hasty:?}"
        );
        assert_eq!(patient.join().unwrap(), Ok(()));
        assert_eq!((s.available(), s.waiting()), (1, 0));
    });
}

/// A waiter that times out before a release reaches it leaves the line to the one behind it.
/// (Once woken with the permit free it takes it: it tries before it looks at its deadline, so
/// here no woken waiter times out; the model below makes one.)
#[test]
fn loom_barging_a_waiter_that_times_out_passes_its_place_on() {
    hasty_then_patient(false);
}

/// A woken waiter beaten to its offer by a barging thread times out, and its departure must
/// leave the line (and the patient waiter behind it) for the barger's release to serve.
#[test]
fn loom_barging_a_woken_waiter_beaten_to_its_offer_times_out_and_strands_nobody() {
    hasty_then_patient(true);
}

#[test]
fn loom_barging_a_heavy_waiter_beaten_to_part_of_its_offer_passes_the_rest_on() {
    model(|| {
        let s = Arc::new(Semaphore::with_fairness(3, BARGING));
        let kept = s.try_acquire(1).unwrap();
        let pair = s.try_acquire(2).unwrap();
        let (heavy, light) = heavy_then_light(&s);
        drop(pair);
        // Barge: taken ahead of the woken heavy waiter, or refused if it already took both.
        let barged = s.try_acquire(1).ok();
        // With `kept` and `barged` held, the light waiter must still get the permit left free.
        assert_eq!(light.join().unwrap(), Ok(()));
        drop((barged, kept));
        assert_eq!(heavy.join().unwrap(), Ok(()));
        assert_eq!((s.available(), s.waiting()), (3, 0));
    });
}

/// A barger takes one of the two permits a heavy waiter was woken for and forgets it: the heavy
/// waiter, now over the total, fails (or it took both first and succeeded), and the light waiter
/// behind it gets the permit left free; nothing is lost or left queued.
#[test]
fn loom_barging_a_forget_racing_a_woken_waiter_strands_nobody() {
    model(|| {
        let s = Arc::new(Semaphore::with_fairness(2, BARGING));
        let pair = s.try_acquire(2).unwrap();
        let (heavy, light) = heavy_then_light(&s);
        drop(pair);
        let forgot = match s.try_acquire(1) {
            Ok(barged) => {
                barged.forget();
                true
            }
            Err(e) => {
                assert_eq!(e, TryAcquireError::NoPermits);
                false
            }
        };
        assert_eq!(light.join().unwrap(), Ok(()));
        match heavy.join().unwrap() {
            Ok(()) => {}
            Err(AcquireError::InsufficientCapacity(e)) => {
                assert!(forgot, "over a total nobody shrank");
                assert_eq!((e.requested, e.capacity), (2, 1));
            }
            Err(e) => panic!("{e:?}"),
        }
        let total = if forgot { 1 } else { 2 };
        assert_eq!((s.total(), s.available(), s.waiting()), (total, total, 0));
    });
}

/// With zero patience a heavy waiter is overdue as it joins: a permit freed while it waits is
/// kept for it, refused to a caller that would barge and to a later waiter, who is served after
/// it.
#[test]
fn loom_zero_patience_keeps_a_freed_permit_for_a_heavy_waiter() {
    model(|| {
        let s = Arc::new(Semaphore::with_fairness(
            2,
            Fairness::Eventual(Duration::ZERO),
        ));
        let (a, b) = (s.try_acquire(1).unwrap(), s.try_acquire(1).unwrap());
        let order = Arc::new(AtomicUsize::new(0));
        let (s1, o1) = (s.clone(), order.clone());
        let heavy = thread::spawn(move || {
            let _p = s1.acquire(2).unwrap();
            o1.fetch_add(1, SeqCst)
        });
        wait_for_waiters(&s, 1);
        let (s2, o2) = (s.clone(), order.clone());
        let later = thread::spawn(move || {
            let _p = s2.acquire(1).unwrap();
            o2.fetch_add(1, SeqCst)
        });
        drop(a);
        assert_eq!(s.try_acquire(1).unwrap_err(), TryAcquireError::NoPermits);
        drop(b);
        assert_eq!(
            heavy.join().unwrap(),
            0,
            "the later, lighter request went first"
        );
        assert_eq!(later.join().unwrap(), 1);
        assert_eq!((s.available(), s.waiting()), (2, 0));
    });
}

/// One permit, two waiters and a caller that barges while the first waiter is woken: the
/// barger's release finds that waiter yet to try and takes no lock; whoever wins, every request
/// is served once, one at a time, and nothing is left queued.
#[test]
fn loom_releases_past_a_woken_waiter_strand_nobody() {
    model(|| {
        let s = Arc::new(Semaphore::with_fairness(1, BARGING));
        let held = s.try_acquire(1).unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let take = |s: Arc<Semaphore>, inside: Arc<AtomicUsize>| {
            move || {
                let p = s.acquire(1).unwrap();
                assert_eq!(inside.fetch_add(1, SeqCst), 0, "two holders of one permit");
                inside.fetch_sub(1, SeqCst);
                drop(p);
            }
        };
        let first = thread::spawn(take(s.clone(), inside.clone()));
        wait_for_waiters(&s, 1);
        let second = thread::spawn(take(s.clone(), inside.clone()));
        wait_for_waiters(&s, 2);
        let barger = thread::spawn(take(s.clone(), inside.clone()));
        drop(held);
        first.join().unwrap();
        second.join().unwrap();
        barger.join().unwrap();
        assert_eq!((s.available(), s.waiting()), (1, 0));
    });
}
