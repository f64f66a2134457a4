//! Unit tests of the barging mode (`Fairness::Eventual`): a running thread takes permits ahead
//! of a waiter they do not fit, the patience turns barging into hand-overs, free permits reach
//! the waiters they fit, and the strict mode's waiters far back in line spin without yields.
#![cfg(not(loom))]

use super::tests::{
    held_in_spin, hold_spin, join, let_go_spin, queued, spun, wait_until, LetGo, ARMED,
};
use crate::limit::{
    AcquireError, AcquireTimeoutError, Fairness, Permit, Semaphore, TryAcquireError,
};
use crate::sync::yield_now;
use crate::sync::Ordering::SeqCst;
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

const FOREVER: Fairness = Fairness::Eventual(Duration::MAX);
const LONG: Duration = Duration::from_secs(30);

/// A waiter's permit, or why it got none, and how long it waited.
type Timed<'a> = (Result<Permit<'a>, AcquireTimeoutError>, Duration);

/// `acquire_timeout(weight, LONG)`'s permit and how long it took. A barging waiter that times
/// out still takes what is free (so a waiter left asleep beside a free permit answers `Ok` once
/// its timeout ends): the time tells whether a release reached it, not the result.
fn timed_acquire(sem: &Semaphore, weight: u32) -> Timed<'_> {
    let asked = Instant::now();
    let got = sem.acquire_timeout(weight, LONG);
    (got, asked.elapsed())
}

/// The permit of `weight` that `waiter` got; fails unless it got it well before its timeout
/// (`timed_acquire`).
#[track_caller]
fn served_in_time<'a>(
    waiter: ScopedJoinHandle<'_, Timed<'a>>,
    weight: u32,
    what: &str,
) -> Permit<'a> {
    let (got, waited) = waiter.join().unwrap();
    assert!(
        waited < LONG / 2,
        "{what}: asleep beside its fit for {waited:?}"
    );
    let permit = got.unwrap_or_else(|e| panic!("{what}: {e:?}"));
    assert_eq!(permit.weight(), weight, "{what}");
    permit
}

#[test]
fn a_running_thread_takes_permits_a_waiter_cannot_use_yet() {
    let sem = Semaphore::with_fairness(2, FOREVER);
    let (a, b) = (sem.acquire(1).unwrap(), sem.acquire(1).unwrap());
    std::thread::scope(|s| {
        let heavy = s.spawn(|| sem.acquire_timeout(2, LONG).map(|p| p.weight()));
        queued(&sem, 1);
        drop(a);
        // The strict mode refuses this (`semaphore_grants_in_arrival_order_and_refuses_barging`).
        let barged = sem
            .try_acquire(1)
            .expect("a free permit, taken ahead of the line");
        assert_eq!(sem.waiting(), 1);
        drop((barged, b));
        assert_eq!(heavy.join().unwrap(), Ok(2));
    });
    assert_eq!((sem.available(), sem.waiting()), (2, 0));
}

#[test]
fn a_waiter_past_its_patience_is_served_in_order() {
    // A patience far above how long this thread takes from the waiter's arrival to its barge,
    // even stalled on a busy machine.
    let patience = Duration::from_millis(500);
    let sem = Semaphore::with_fairness(2, Fairness::Eventual(patience));
    let (a, b) = (sem.acquire(1).unwrap(), sem.acquire(1).unwrap());
    std::thread::scope(|s| {
        let heavy = s.spawn(|| sem.acquire_timeout(2, LONG).map(|p| p.weight()));
        queued(&sem, 1);
        drop(a);
        let barged = sem.try_acquire(1).expect("within the patience, barging");
        std::thread::sleep(patience + Duration::from_millis(10));
        // This release finds the front overdue: from now on permits wait for it.
        drop(barged);
        assert_eq!(sem.try_acquire(1).unwrap_err(), TryAcquireError::NoPermits);
        assert_eq!(sem.available(), 1);
        drop(b);
        assert_eq!(heavy.join().unwrap(), Ok(2));
    });
    // The line emptied: barging again.
    assert_eq!((sem.available(), sem.waiting()), (2, 0));
    assert!(sem.try_acquire(2).is_ok());
}

#[test]
fn zero_patience_hands_over_as_the_strict_mode_does() {
    let sem = Semaphore::with_fairness(2, Fairness::Eventual(Duration::ZERO));
    let (a, b) = (sem.acquire(1).unwrap(), sem.acquire(1).unwrap());
    std::thread::scope(|s| {
        let heavy = s.spawn(|| sem.acquire_timeout(2, LONG).map(|p| p.weight()));
        queued(&sem, 1);
        drop(a);
        assert_eq!(sem.try_acquire(1).unwrap_err(), TryAcquireError::NoPermits);
        drop(b);
        assert_eq!(heavy.join().unwrap(), Ok(2));
    });
    assert_eq!(sem.available(), 2);
}

/// A freed permit goes to a light waiter behind a heavy one it does not fit: barging order, so
/// nobody sleeps while a permit they could use is free.
#[test]
fn a_freed_permit_reaches_a_light_waiter_behind_a_heavy_one() {
    let sem = Semaphore::with_fairness(2, FOREVER);
    let (a, b) = (sem.acquire(1).unwrap(), sem.acquire(1).unwrap());
    std::thread::scope(|s| {
        let heavy = s.spawn(|| sem.acquire_timeout(2, LONG).map(|p| p.weight()));
        spun(&sem, 0);
        let light = s.spawn(|| timed_acquire(&sem, 1));
        // Parked (its spin would take the permit itself): only the release can reach it.
        spun(&sem, 1);
        drop(a);
        drop(served_in_time(light, 1, "the light waiter"));
        assert_eq!(sem.waiting(), 1, "the heavy one still waits");
        drop(b);
        assert_eq!(heavy.join().unwrap(), Ok(2));
    });
    assert_eq!((sem.available(), sem.waiting()), (2, 0));
}

/// Two permits freed back to back reach two waiters. The first release wakes the front waiter
/// (held in its spin here, so it has yet to take its permit); the second finds that waiter yet
/// to try and leaves its permit to it (`NUDGED`), so the front waiter, leaving the line with
/// its own, must offer that one on to the waiter parked behind it. Both keep their permits
/// until both are served: neither's release can serve the other. (Each waiter's timeout is a
/// long backstop: a waiter left asleep beside a free permit takes it when its timeout ends, so
/// the time tells, and a lost permit fails the test instead of hanging it.)
#[test]
fn permits_freed_together_reach_as_many_waiters() {
    let sem = Semaphore::with_fairness(2, FOREVER);
    let (a, b) = (sem.acquire(1).unwrap(), sem.acquire(1).unwrap());
    hold_spin(&sem, 0);
    std::thread::scope(|s| {
        let _let_go = LetGo(&sem);
        let front = s.spawn(|| timed_acquire(&sem, 1));
        held_in_spin(&sem);
        let behind = s.spawn(|| timed_acquire(&sem, 1));
        spun(&sem, 1);
        drop(a); // marks the front waiter for it
        drop(b); // takes no lock: the front waiter is marked and yet to try
        let_go_spin(&sem);
        let served = [
            served_in_time(front, 1, "the front waiter"),
            served_in_time(behind, 1, "the waiter behind"),
        ];
        assert_eq!((sem.available(), sem.waiting()), (0, 0));
        drop(served);
    });
    assert_eq!((sem.available(), sem.waiting()), (2, 0));
}

/// A heavy waiter woken for two free permits finds a running thread took one: it passes the
/// other on to the light waiter behind it (whom its mark kept asleep) instead of parking with it
/// free while the running thread and another holder keep theirs. The heavy waiter is held in
/// its spin until this thread has taken one of the two; the light one has parked.
#[test]
fn a_woken_waiter_beaten_to_part_of_its_share_passes_the_rest_on() {
    let sem = Semaphore::with_fairness(3, FOREVER);
    let kept = sem.acquire(1).unwrap();
    let pair = sem.acquire(2).unwrap();
    hold_spin(&sem, 0);
    std::thread::scope(|s| {
        let _let_go = LetGo(&sem);
        let heavy = s.spawn(|| sem.acquire_timeout(2, LONG).map(|p| p.weight()));
        held_in_spin(&sem);
        let light = s.spawn(|| timed_acquire(&sem, 1));
        spun(&sem, 1);
        drop(pair); // marks the heavy waiter for both
        let barged = sem
            .try_acquire(1)
            .expect("one of the two, taken ahead of the line");
        let_go_spin(&sem);
        let light = served_in_time(light, 1, "the light waiter");
        drop((light, barged, kept));
        assert_eq!(heavy.join().unwrap(), Ok(2));
    });
    assert_eq!((sem.available(), sem.waiting()), (3, 0));
}

/// A request of weight 0 queues only behind a hand-over; when the hand-over ends it must be
/// woken to take its nothing, even while the permits are all held and the new front, which has
/// not waited its patience, needs more than is free.
#[test]
fn a_weightless_request_queued_behind_a_hand_over_is_served_when_it_ends() {
    // Far above how long this thread takes from the second waiter's arrival to the releases,
    // even stalled on a busy machine: the second must not be overdue by then.
    let patience = Duration::from_millis(1000);
    let sem = Semaphore::with_fairness(2, Fairness::Eventual(patience));
    let (a, b) = (sem.acquire(1).unwrap(), sem.acquire(1).unwrap());
    std::thread::scope(|s| {
        let first = s.spawn(|| sem.acquire_timeout(2, LONG));
        queued(&sem, 1);
        std::thread::sleep(patience + Duration::from_millis(50));
        // The first waiter is overdue: this one's joining starts the hand-over.
        let second = s.spawn(|| sem.acquire_timeout(2, LONG).map(|p| p.weight()));
        queued(&sem, 2);
        assert_eq!(sem.try_acquire(0).unwrap_err(), TryAcquireError::NoPermits);
        // (A waiter that times out still takes what is free, so the time tells, not the result.)
        let weightless = s.spawn(|| timed_acquire(&sem, 0));
        // Parked (its spin would take its nothing itself once the hand-over ends).
        spun(&sem, 2);
        drop(a);
        // Grants the first waiter; the second, now in front, is not overdue: barging again.
        drop(b);
        let held = first.join().unwrap().expect("granted");
        drop(served_in_time(weightless, 0, "the weightless request"));
        drop(held);
        assert_eq!(second.join().unwrap(), Ok(2));
    });
    assert_eq!((sem.available(), sem.waiting()), (2, 0));
}

/// `close` wakes a barging waiter that has spun and parked with an error.
#[test]
fn close_wakes_barging_waiters_with_an_error() {
    let sem = Semaphore::with_fairness(1, FOREVER);
    let held = sem.acquire(1).unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| sem.acquire(1).map(|p| p.weight()));
        spun(&sem, 0);
        sem.close();
        assert_eq!(join(waiter), Err(AcquireError::Closed));
    });
    drop(held);
    assert_eq!((sem.available(), sem.waiting()), (1, 0));
}

#[test]
fn fairness_is_reported_and_a_zero_count_refused_with_its_name() {
    let sem = Semaphore::with_fairness(3, FOREVER);
    assert_eq!(sem.fairness(), FOREVER);
    assert_eq!(Semaphore::new(1).fairness(), Fairness::Strict);
    assert_eq!(Fairness::default(), Fairness::Strict);
    assert!(format!("{sem:?}").contains("fairness: Eventual("));
    assert!(Semaphore::try_with_fairness(0, FOREVER).is_err());
    let panic = std::panic::catch_unwind(|| Semaphore::with_fairness(0, FOREVER)).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.starts_with("Semaphore::with_fairness(0, Eventual("),
        "{message}"
    );
}

/// In the strict mode, a waiter further back than the total permits spins without the yields
/// before it parks: 7 tries (`spin`), where the one just behind the front makes 10 (`backoff`).
#[test]
fn a_strict_waiter_far_back_in_line_parks_without_yielding() {
    if crate::sync::cpus() < 2 {
        return; // with one CPU nobody spins
    }
    let sem = Semaphore::new(1);
    let held = sem.acquire(1).unwrap();
    std::thread::scope(|s| {
        let front = s.spawn(|| drop(sem.acquire(1).unwrap()));
        assert_eq!(spun(&sem, 0), 131, "the front");
        let next = s.spawn(|| drop(sem.acquire(1).unwrap()));
        assert_eq!(spun(&sem, 1), 10, "next behind the front");
        let far = s.spawn(|| drop(sem.acquire(1).unwrap()));
        assert_eq!(spun(&sem, 2), 7, "further back than the one permit");
        assert_eq!(sem.waiting(), 3);
        drop(held);
        super::tests::join_all(vec![front, next, far]);
    });
    assert_eq!(sem.available(), 1);
}

/// Many threads, short holds, a few permits: never more held than the permits, none lost (a
/// request that waits `LONG` fails the test). Each hold yields its CPU once, so that holders
/// overlap and the semaphore is often full, the moments an over-grant would show; the test
/// checks that it was.
#[test]
fn barging_under_a_crowd_never_over_grants_or_loses_a_permit() {
    use crate::sync::{AtomicU64, Ordering::SeqCst};
    let threads = if cfg!(miri) { 4 } else { 16 };
    let rounds = if cfg!(miri) { 20 } else { 2_000 };
    let sem = Semaphore::with_fairness(3, Fairness::Eventual(Duration::from_micros(200)));
    let (held, full) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        for t in 0..threads {
            let (sem, held, full) = (&sem, &held, &full);
            s.spawn(move || {
                for i in 0..rounds {
                    let weight = 1 + (t + i) as u32 % 2;
                    let permit = sem.acquire_timeout(weight, LONG).expect("a permit lost");
                    let now = held.fetch_add(u64::from(weight), SeqCst) + u64::from(weight);
                    assert!(now <= 3, "over-granted: {now} permits held of 3");
                    if now == 3 {
                        full.fetch_add(1, SeqCst);
                    }
                    // Holders overlap: others run (and take what is left) meanwhile.
                    yield_now();
                    held.fetch_sub(u64::from(weight), SeqCst);
                    drop(permit);
                }
            });
        }
    });
    assert_eq!((sem.available(), sem.waiting()), (3, 0));
    let full = full.into_inner();
    eprintln!("all 3 permits held at once after {full} grants");
    // Premise: the check above had moments to fail at (one full semaphore in a hundred grants;
    // it is far more). Under Miri, a handful of threads and rounds: not asked.
    assert!(
        cfg!(miri) || full >= (threads * rounds / 100) as u64,
        "the semaphore was full after only {full} grants: the holds do not overlap"
    );
}

/// The size the `Semaphore`'s Cost gives for a waiter that the line moves.
#[cfg(all(target_pointer_width = "64", target_os = "linux"))]
#[test]
fn a_waiter_in_line_is_40_bytes() {
    assert_eq!(std::mem::size_of::<super::queue::Waiter>(), 40);
}

/// A release that finds a woken waiter yet to try takes no lock (`NUDGED`): with the line's
/// lock held here, the release returns, where one that took the lock would wait for it. The
/// waiter is held in its spin while the first release marks it, so it is still marked when this
/// thread takes the lock; let go, it takes its permit with both free. Fails (the release waits
/// past the deadline) if a release took the lock while a waiter is marked.
#[test]
fn a_release_that_finds_a_woken_waiter_yet_to_try_takes_no_lock() {
    let sem = Semaphore::with_fairness(2, FOREVER);
    let (a, b) = (sem.acquire(1).unwrap(), sem.acquire(1).unwrap());
    hold_spin(&sem, 0);
    std::thread::scope(|s| {
        let let_go = LetGo(&sem);
        let waiter = s.spawn(|| sem.acquire_timeout(1, LONG).map(|p| p.weight()));
        held_in_spin(&sem);
        drop(a); // takes the lock, marks the waiter and unparks it
        let line = sem.state.lock();
        assert_eq!((line.nudged, line.waiting()), (1, 1), "(marked, waiting)");
        let (done, finished) = std::sync::mpsc::channel();
        s.spawn(move || {
            drop(b);
            done.send(()).unwrap();
        });
        let released = finished.recv_timeout(LONG);
        drop(line);
        assert!(released.is_ok(), "the release waited for the line's lock");
        drop(let_go);
        assert_eq!(waiter.join().unwrap(), Ok(1));
    });
    assert_eq!((sem.available(), sem.waiting()), (2, 0));
}

/// A waiter whose spin took its permit with the fast path's CAS, and which a hand-over then
/// granted before it could take the lock to leave the line, keeps the grant and gives the
/// permit its CAS took back (`leave_with_permits`): it holds one permit, not two, and a heavy
/// waiter behind it gets both once it is done. Fails with a panic (the granted waiter is not in
/// the line to leave) or with the heavy waiter's timeout (a permit lost) if that path does not
/// check for the grant. The waiter is held in its spin while a permit is freed, so that its spin
/// sees the permit free at two tries and takes it. A round is tried again only if the release
/// found the waiter past its patience and granted it instead (this thread stalled that long).
#[test]
fn a_waiter_granted_after_its_spin_took_permits_keeps_one_share() {
    let patience = Duration::from_millis(100);
    for round in 1.. {
        assert!(round <= 20, "stalled past the patience in every round");
        let sem = Semaphore::with_fairness(2, Fairness::Eventual(patience));
        let (a, b) = (sem.acquire(1).unwrap(), sem.acquire(1).unwrap());
        sem.hold_taken.store(ARMED, SeqCst);
        hold_spin(&sem, 0);
        let asked = Instant::now();
        let took = std::thread::scope(|s| {
            let let_go = LetGo(&sem);
            let waiter = s.spawn(|| sem.acquire_timeout(1, LONG));
            held_in_spin(&sem);
            drop(a); // marks the waiter (past the patience, grants it)
            let_go_spin(&sem); // its spin sees the permit free at two tries, and takes it
            wait_until("the waiter takes the permit or returns", || {
                sem.hold_taken.load(SeqCst) != ARMED || waiter.is_finished()
            });
            if sem.hold_taken.load(SeqCst) == ARMED {
                // Only a grant (or a wake-up) served it, which a waiter within its patience
                // does not get: the release marks it, and its spin takes the permit first.
                assert!(
                    asked.elapsed() >= patience,
                    "the waiter's spin did not take the permit it saw free"
                );
                assert_eq!(waiter.join().unwrap().map(|p| p.weight()), Ok(1));
                drop(b);
                return false;
            }
            // The waiter's CAS took the permit (none is free) and it is still in line.
            assert_eq!((sem.available(), sem.waiting()), (0, 1));
            std::thread::sleep(patience + Duration::from_millis(5));
            // The waiter is overdue now, and still marked by the release above: this release
            // leaves the line to it and takes no lock.
            drop(b);
            // A heavy request queues: behind the waiter, whose patience is past, so it hands
            // the waiter the free permit.
            let heavy = s.spawn(|| sem.acquire_timeout(2, LONG).map(|p| p.weight()));
            wait_until("the heavy request at the front", || {
                sem.state.lock().waiters_mut().next().map(|w| w.weight) == Some(2)
            });
            assert_eq!(
                sem.available(),
                0,
                "a hand-over granted the waiter its permit"
            );
            drop(let_go); // the waiter leaves the line, and finds itself granted
            let permit = waiter.join().unwrap().expect("granted");
            assert_eq!(permit.weight(), 1);
            assert_eq!(
                (sem.available(), sem.waiting()),
                (1, 1),
                "one share held, not two"
            );
            drop(permit);
            assert_eq!(heavy.join().unwrap(), Ok(2));
            true
        });
        assert_eq!((sem.available(), sem.waiting()), (2, 0));
        if took {
            eprintln!("the waiter's spin took the permit in round {round}");
            break;
        }
    }
}
