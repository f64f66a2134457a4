//! Unit tests of the semaphore: arrival order, refusals, timeouts, close and forgotten
//! permits, for borrowed and owned permits, and the spin of a waiter in line. The hooks below
//! tell which waiter has spun and parked (`spun`), hold a waiter in its spin (`hold_spin`) and
//! hold one whose spin took permits (`hold_taken`). The concurrent shapes are in
//! `tests/stress_limit.rs` and `tests/loom_limit.rs`.
#![cfg(not(loom))]

use crate::limit::{
    AcquireError, AcquireTimeoutError, InsufficientCapacity, OwnedPermit, Semaphore,
    TryAcquireError,
};
use crate::sync::Ordering::SeqCst;
use crate::sync::{yield_now, Arc};
use std::sync::mpsc;
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

/// How long a test waits for a waiter to reach a point, or to finish, before it fails.
pub(super) const DEADLINE: Duration = Duration::from_secs(30);

/// Waits until `reached`, failing after `DEADLINE`.
#[track_caller]
pub(super) fn wait_until(what: &str, mut reached: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !reached() {
        assert!(Instant::now() < deadline, "not within {DEADLINE:?}: {what}");
        yield_now();
    }
}

/// Waits until `n` requests are queued on `sem`.
#[track_caller]
pub(super) fn queued(sem: &Semaphore, n: usize) {
    wait_until(&format!("{n} waiters queued"), || sem.waiting() >= n);
}

/// Joins `waiters`, failing if they are not all done within `DEADLINE`. Past it they are
/// unparked until they are done, so that a waiter whose wake-up was lost finishes and the test
/// fails instead of hanging in its scope.
#[track_caller]
pub(super) fn join_all<T>(waiters: Vec<ScopedJoinHandle<'_, T>>) -> Vec<T> {
    let deadline = Instant::now() + DEADLINE;
    let mut late = false;
    while !waiters.iter().all(ScopedJoinHandle::is_finished) {
        if Instant::now() >= deadline {
            late = true;
            waiters.iter().for_each(|w| w.thread().unpark());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    assert!(!late, "waiters still waiting after {DEADLINE:?}");
    waiters.into_iter().map(|w| w.join().unwrap()).collect()
}

/// [`join_all`] for one waiter.
#[track_caller]
pub(super) fn join<T>(waiter: ScopedJoinHandle<'_, T>) -> T {
    join_all(vec![waiter]).pop().expect("one result")
}

#[test]
fn semaphore_grants_in_arrival_order_and_refuses_barging() {
    let s = Semaphore::new(4);
    let held = s.acquire(3).unwrap();
    std::thread::scope(|scope| {
        let big = scope.spawn(|| s.acquire(4).map(|p| p.weight()));
        queued(&s, 1);
        // One permit is free, but a queued request is ahead: a small one may not barge in.
        assert_eq!(s.try_acquire(1).unwrap_err(), TryAcquireError::NoPermits);
        drop(held);
        assert_eq!(join(big), Ok(4));
    });
    assert_eq!(s.available(), 4);
}

#[test]
fn semaphore_refuses_what_it_could_never_grant() {
    let s = Semaphore::new(2);
    let cap = InsufficientCapacity {
        requested: 3,
        capacity: 2,
    };
    assert_eq!(
        s.acquire(3).unwrap_err(),
        AcquireError::InsufficientCapacity(cap)
    );
    assert_eq!(
        s.acquire_timeout(3, MS).unwrap_err(),
        AcquireTimeoutError::InsufficientCapacity(cap)
    );
    assert!(Semaphore::try_new(0).is_err());
    assert!(std::panic::catch_unwind(|| Semaphore::new(0)).is_err());
}

/// A waiter that times out at the front of the line leaves it to the one behind, which the free
/// permit fits: its departure grants that one (while `one` stays held, so nothing else can).
/// The first is held in its spin until the second has parked behind it and the first's
/// deadline has passed.
#[test]
fn a_timed_out_waiter_leaves_the_line_for_those_behind() {
    let s = Semaphore::new(2);
    let one = s.acquire(1).unwrap();
    hold_spin(&s, 0);
    std::thread::scope(|scope| {
        let _let_go = LetGo(&s);
        let first = scope.spawn(|| s.acquire_timeout(2, MS * 5).map(drop));
        held_in_spin(&s);
        // The second's own timeout ends its wait if nothing grants it.
        let second = scope.spawn(|| s.acquire_timeout(1, DEADLINE).map(|p| p.weight()));
        spun(&s, 1);
        std::thread::sleep(MS * 5); // the first's deadline passes
        let_go_spin(&s);
        assert_eq!(join(first), Err(AcquireTimeoutError::Timeout));
        assert_eq!(
            join(second),
            Ok(1),
            "the departure granted the waiter behind"
        );
    });
    assert_eq!((s.waiting(), s.available()), (0, 1));
    assert_eq!(s.try_acquire(1).unwrap().weight(), 1);
    drop(one);
}

/// `close` wakes every waiter with an error: each has spun and parked before the close, so only
/// the close's wake-up ends its wait.
#[test]
fn close_wakes_waiters_with_an_error_and_keeps_held_permits_valid() {
    let s = Semaphore::new(1);
    let held = s.acquire(1).unwrap();
    std::thread::scope(|scope| {
        let waiters: Vec<_> = (0..3)
            .map(|ticket| {
                let waiter = scope.spawn(|| s.acquire(1).map(drop));
                spun(&s, ticket);
                waiter
            })
            .collect();
        s.close();
        assert_eq!(join_all(waiters), [Err(AcquireError::Closed); 3]);
    });
    assert_eq!(s.try_acquire(1).unwrap_err(), TryAcquireError::Closed);
    drop(held);
    assert_eq!(s.available(), 1);
    assert!(s.is_closed());
}

#[test]
fn a_closed_semaphore_answers_closed_to_a_request_over_its_total() {
    let s = Semaphore::new(2);
    s.close();
    assert_eq!(s.try_acquire(3).unwrap_err(), TryAcquireError::Closed);
    assert_eq!(s.acquire(3).unwrap_err(), AcquireError::Closed);
    assert_eq!(
        s.acquire_timeout(3, Duration::from_millis(1)).unwrap_err(),
        AcquireTimeoutError::Closed
    );
    assert_eq!(
        s.acquire_timeout(3, Duration::ZERO).unwrap_err(),
        AcquireTimeoutError::Closed
    );
}

#[test]
fn an_owned_permit_moves_to_a_spawned_thread_and_returns_on_drop() {
    let s = Arc::new(Semaphore::new(3));
    let permit = s.acquire_owned(2).unwrap();
    let (go, wait) = mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        wait.recv().unwrap();
        permit.weight()
    });
    // Held on the other thread until it is told to finish.
    assert_eq!(s.available(), 1);
    assert_eq!(s.try_acquire(2).unwrap_err(), TryAcquireError::NoPermits);
    go.send(()).unwrap();
    assert_eq!(worker.join().unwrap(), 2);
    assert_eq!(s.available(), 3);
}

#[test]
fn an_owned_permit_keeps_its_semaphore_alive_after_every_other_owner_drops_it() {
    let s = Arc::new(Semaphore::new(2));
    let permit = s.try_acquire_owned(1).unwrap();
    let weak = Arc::downgrade(&s);
    drop(s);
    let alive = weak
        .upgrade()
        .expect("the permit keeps the semaphore alive");
    assert_eq!(alive.available(), 1);
    drop(alive);
    // The last owner lets go on another thread: the release runs, then the semaphore is freed.
    std::thread::spawn(move || drop(permit)).join().unwrap();
    assert!(
        weak.upgrade().is_none(),
        "the permit's drop freed the semaphore"
    );
}

#[test]
fn the_owned_forms_fail_as_the_borrowed_ones_do() {
    let s = Arc::new(Semaphore::new(2));
    let cap = InsufficientCapacity {
        requested: 3,
        capacity: 2,
    };
    assert_eq!(
        s.try_acquire_owned(3).unwrap_err(),
        TryAcquireError::InsufficientCapacity(cap)
    );
    assert_eq!(
        s.acquire_owned(3).unwrap_err(),
        AcquireError::InsufficientCapacity(cap)
    );
    let held = s.acquire_timeout_owned(2, MS).unwrap();
    assert_eq!(
        s.acquire_timeout_owned(1, MS * 5).unwrap_err(),
        AcquireTimeoutError::Timeout
    );
    assert_eq!(s.waiting(), 0, "the timed-out request left the line");
    assert_eq!(
        s.try_acquire_owned(1).unwrap_err(),
        TryAcquireError::NoPermits
    );
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| s.acquire_owned(1).map(drop));
        queued(&s, 1);
        s.close();
        assert_eq!(join(waiter), Err(AcquireError::Closed));
    });
    assert_eq!(s.try_acquire_owned(1).unwrap_err(), TryAcquireError::Closed);
    assert_eq!(s.acquire_owned(1).unwrap_err(), AcquireError::Closed);
    assert_eq!(
        s.acquire_timeout_owned(1, MS).unwrap_err(),
        AcquireTimeoutError::Closed
    );
    assert_eq!(format!("{held:?}"), "OwnedPermit { weight: 2 }");
    drop(held);
    assert_eq!(
        s.available(),
        2,
        "a permit held across close still goes back"
    );
}

#[test]
fn arrival_order_holds_across_owned_and_borrowed_waiters() {
    let s = Arc::new(Semaphore::new(2));
    let held = s.try_acquire_owned(2).unwrap();
    let (granted, order) = mpsc::channel();
    std::thread::scope(|scope| {
        // Queued in this order: owned, borrowed, owned. Each takes the whole semaphore and
        // reports while it holds it, so the channel sees the grants in grant order.
        let mut waiters = Vec::new();
        for (i, owned) in [true, false, true].into_iter().enumerate() {
            let (s, granted) = (&s, granted.clone());
            waiters.push(scope.spawn(move || {
                if owned {
                    let permit = s.acquire_owned(2).unwrap();
                    granted.send(i).unwrap();
                    drop(permit);
                } else {
                    let permit = s.acquire(2).unwrap();
                    granted.send(i).unwrap();
                    drop(permit);
                }
            }));
            queued(s, i + 1);
        }
        // Neither form may barge past the line.
        assert_eq!(s.try_acquire(1).unwrap_err(), TryAcquireError::NoPermits);
        assert_eq!(
            s.try_acquire_owned(1).unwrap_err(),
            TryAcquireError::NoPermits
        );
        drop(held);
        join_all(waiters);
    });
    drop(granted);
    assert_eq!(order.iter().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(s.available(), 2);
}

#[test]
fn owned_permits_are_send_sync_and_static() {
    fn owned<T: Send + Sync + 'static>() {}
    owned::<OwnedPermit>();
}

#[test]
fn a_forgotten_permit_shrinks_the_total_and_frees_nothing() {
    let s = Arc::new(Semaphore::new(4));
    let (a, b) = (s.acquire(1).unwrap(), s.acquire_owned(2).unwrap());
    a.forget();
    assert_eq!((s.total(), s.available()), (3, 1));
    b.forget();
    assert_eq!((s.total(), s.available()), (1, 1));
    assert_eq!(
        Arc::strong_count(&s),
        1,
        "the forgotten owned permit let go of the Arc"
    );
    let cap = InsufficientCapacity {
        requested: 2,
        capacity: 1,
    };
    assert_eq!(
        s.try_acquire_owned(2).unwrap_err(),
        TryAcquireError::InsufficientCapacity(cap)
    );
    assert_eq!(
        s.acquire_timeout(2, MS).unwrap_err(),
        AcquireTimeoutError::InsufficientCapacity(cap)
    );
    // Down to nothing: only a request of weight 0 can pass.
    s.acquire(1).unwrap().forget();
    assert_eq!((s.total(), s.available()), (0, 0));
    let none_left = InsufficientCapacity {
        requested: 1,
        capacity: 0,
    };
    assert_eq!(
        s.acquire(1).unwrap_err(),
        AcquireError::InsufficientCapacity(none_left)
    );
    assert_eq!(s.try_acquire(0).unwrap().weight(), 0);
    assert!(format!("{s:?}").contains("total: 0"));
}

#[test]
fn a_forget_fails_the_waiters_it_makes_too_heavy_and_keeps_the_others_in_line() {
    let s = Semaphore::new(4);
    let (one, three) = (s.acquire(1).unwrap(), s.acquire(3).unwrap());
    std::thread::scope(|scope| {
        let heavy = scope.spawn(|| s.acquire(4).map(|p| p.weight()));
        queued(&s, 1);
        let light = scope.spawn(|| s.acquire(3).map(|p| p.weight()));
        queued(&s, 2);
        // The total drops to 3: the heavy request at the front could never pass, so it fails
        // rather than wait for ever, and the one behind it moves up.
        one.forget();
        let cap = InsufficientCapacity {
            requested: 4,
            capacity: 3,
        };
        assert_eq!(join(heavy), Err(AcquireError::InsufficientCapacity(cap)));
        assert_eq!(
            s.waiting(),
            1,
            "the lighter request still waits for its permits"
        );
        drop(three);
        assert_eq!(join(light), Ok(3));
    });
    assert_eq!((s.total(), s.available(), s.waiting()), (3, 3, 0));
}

/// `try_acquire`, granted or refused, and `acquire_timeout` with a zero timeout take no lock:
/// with the semaphore's lock held by another thread they answer at once. (A zero timeout that
/// joined the line would, while there, turn away other threads' requests with permits free.)
#[test]
fn refusals_and_zero_timeouts_take_no_lock() {
    let s = Semaphore::new(2);
    let _held = s.try_acquire(1).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let lock = s.state.lock();
        scope.spawn(|| {
            let answers = (
                s.try_acquire(2).map(drop),
                s.try_acquire(3).map(drop),
                s.acquire_timeout(2, Duration::ZERO).map(drop),
                s.acquire_timeout(3, Duration::ZERO).map(drop),
                s.try_acquire(1).map(drop),
            );
            tx.send(answers).unwrap();
        });
        let answers = rx.recv_timeout(Duration::from_secs(60));
        drop(lock);
        let over = InsufficientCapacity {
            requested: 3,
            capacity: 2,
        };
        assert_eq!(
            answers.expect("blocked on the semaphore's lock"),
            (
                Err(TryAcquireError::NoPermits),
                Err(TryAcquireError::InsufficientCapacity(over)),
                Err(AcquireTimeoutError::Timeout),
                Err(AcquireTimeoutError::InsufficientCapacity(over)),
                Ok(()),
            )
        );
    });
    let closed = Semaphore::new(1);
    closed.close();
    assert_eq!(
        closed.acquire_timeout(1, Duration::ZERO).map(drop),
        Err(AcquireTimeoutError::Closed)
    );
}

/// Formatting the semaphore holds no lock while the formatter writes: a sink that reads the
/// semaphore back (a metrics or log sink) does not deadlock, and a slow one holds up no one.
#[test]
fn debug_into_a_sink_that_reads_the_semaphore_does_not_deadlock() {
    struct Sink(Arc<Semaphore>, String);
    impl std::fmt::Write for Sink {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.1.push_str(s);
            std::hint::black_box(self.0.waiting()); // takes the semaphore's lock
            Ok(())
        }
    }
    let s = Arc::new(Semaphore::new(2));
    let (tx, rx) = mpsc::channel();
    let sink = Sink(s.clone(), String::new());
    // Not scoped: if it deadlocks, the test fails instead of hanging on the join.
    std::thread::spawn(move || {
        let (mut sink, sem) = (sink, s);
        std::fmt::Write::write_fmt(&mut sink, format_args!("{sem:?}")).unwrap();
        tx.send(sink.1).unwrap();
    });
    let text = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("formatting the semaphore deadlocked");
    assert_eq!(
        text,
        "Semaphore { total: 2, available: 2, waiting: 0, closed: false, fairness: Strict }"
    );
}

/// Waits until the waiter holding `ticket` on `sem` has given up its spin, and returns the
/// tries it made; it parks right after. Tickets go in the order waiters join the line, from 0:
/// the first waiter to queue on a new semaphore holds 0, the next 1, up to 7.
#[track_caller]
pub(super) fn spun(sem: &Semaphore, ticket: u64) -> usize {
    let slot = &sem.spun[ticket as usize];
    let mut stored = 0;
    wait_until(&format!("waiter {ticket} spins and parks"), || {
        stored = slot.swap(0, SeqCst);
        stored != 0
    });
    stored - 1
}

/// `hold_spin`'s value while it holds a waiter; armed, it holds one more than the ticket of the
/// waiter to hold, and 0 is off.
const HELD_IN_SPIN: u64 = u64::MAX;

/// Arms `hold_spin`: the waiter that will hold `ticket` on `sem` stops at the first try of its
/// spin, before it reads the permit word, until [`let_go_spin`].
pub(super) fn hold_spin(sem: &Semaphore, ticket: u64) {
    sem.hold_spin.store(ticket + 1, SeqCst);
}

/// Waits until the waiter [`hold_spin`] armed for is held.
#[track_caller]
pub(super) fn held_in_spin(sem: &Semaphore) {
    wait_until("the waiter held in its spin", || {
        sem.hold_spin.load(SeqCst) == HELD_IN_SPIN
    });
}

/// Lets the waiter held in its spin go on (or disarms the hold).
pub(super) fn let_go_spin(sem: &Semaphore) {
    sem.hold_spin.store(0, SeqCst);
}

/// `hold_taken`'s states: off, armed (the next waiter whose spin takes permits holds), and
/// held (that waiter waits for it to be set back to off).
pub(super) const ARMED: usize = 1;
pub(super) const HELD: usize = 2;

impl Semaphore {
    /// Called by the waiter holding `ticket` as its spin gives up, before it parks: records its
    /// tries for [`spun`].
    pub(super) fn record_spin(&self, ticket: u64, tries: usize) {
        if let Some(slot) = usize::try_from(ticket).ok().and_then(|t| self.spun.get(t)) {
            slot.store(tries + 1, SeqCst);
        }
    }

    /// Called at every try of a waiter's spin: if a test armed `hold_spin` for `ticket`, waits
    /// there until the test lets it go.
    pub(super) fn hold_in_spin(&self, ticket: u64) {
        let hold = &self.hold_spin;
        if hold
            .compare_exchange(ticket + 1, HELD_IN_SPIN, SeqCst, SeqCst)
            .is_ok()
        {
            while hold.load(SeqCst) == HELD_IN_SPIN {
                yield_now();
            }
        }
    }

    /// Called by a waiter whose spin took its permits, before it takes the lock to leave the
    /// line: if a test armed `hold_taken`, waits there until the test lets it go.
    pub(super) fn hold_after_take(&self) {
        let hold = &self.hold_taken;
        if hold.compare_exchange(ARMED, HELD, SeqCst, SeqCst).is_ok() {
            while hold.load(SeqCst) == HELD {
                yield_now();
            }
        }
    }
}

/// Lets held waiters go and disarms both holds when dropped, so a failed assertion fails the
/// test instead of leaving a waiter held and the test's scope waiting for it.
pub(super) struct LetGo<'a>(pub(super) &'a Semaphore);

impl Drop for LetGo<'_> {
    fn drop(&mut self) {
        let_go_spin(self.0);
        self.0.hold_taken.store(0, SeqCst);
    }
}

/// A waiter whose grant empties the line (clearing `QUEUED`) and leaves permits free goes on
/// with its grant: its spin sees the grant before the free permits, and takes no second share
/// with the fast path's CAS (which it would hold until it gave it back under the lock, while
/// `try_acquire` failed for want of it). The waiter is held in its spin while the release
/// grants it one of three permits, so every try after that finds two free; `hold_taken` catches
/// a spin that took some, and `spun` one that missed the grant and parked.
#[test]
fn a_granted_waiter_takes_no_second_share_of_the_permits_left_free() {
    let sem = Semaphore::new(3);
    let all = sem.acquire(3).unwrap();
    sem.hold_taken.store(ARMED, SeqCst);
    hold_spin(&sem, 0);
    std::thread::scope(|s| {
        let _let_go = LetGo(&sem);
        let waiter = s.spawn(|| sem.acquire(1).map(|p| p.weight()));
        held_in_spin(&sem);
        drop(all); // grants the waiter one, empties the line, leaves two free
        let_go_spin(&sem);
        wait_until("the granted waiter returns or holds", || {
            waiter.is_finished() || sem.hold_taken.load(SeqCst) != ARMED
        });
        assert_eq!(
            sem.hold_taken.load(SeqCst),
            ARMED,
            "a granted waiter took a second share"
        );
        assert_eq!(join(waiter), Ok(1));
        assert_eq!(sem.spun[0].load(SeqCst), 0, "the spin missed the grant");
    });
    assert_eq!((sem.available(), sem.waiting()), (3, 0));
}

/// Only the front waiter, whom the next release serves, spins at an even pace and then on: 10
/// tries for a waiter behind it (`backoff`: 7 spin steps and 3 yields), 131 for the front one
/// (`backoff_even`: 16 rounds and 3 yields; `spin_on`: 112 rounds).
#[test]
fn only_the_front_waiter_spins_long_before_it_parks() {
    if crate::sync::cpus() < 2 {
        return; // with one CPU neither spins
    }
    let sem = Semaphore::new(1);
    let held = sem.acquire(1).unwrap();
    std::thread::scope(|s| {
        let front = s.spawn(|| drop(sem.acquire(1).unwrap()));
        let front_tries = spun(&sem, 0);
        let behind = s.spawn(|| drop(sem.acquire(1).unwrap()));
        let behind_tries = spun(&sem, 1);
        assert_eq!(sem.waiting(), 2);
        drop(held);
        join_all(vec![front, behind]);
        assert_eq!((front_tries, behind_tries), (131, 10), "(front, behind)");
    });
    assert_eq!(sem.available(), 1);
}

/// A waiter behind that reaches the front during its short spin spins on too: 10 tries of
/// `backoff` and 112 of `spin_on` before it parks, where one that stays behind parks after 10.
/// The second waiter is held at the first try of its short spin while the release grants the
/// first (which keeps the permit until the second has parked), so it is at the front when it
/// goes on.
#[test]
fn a_waiter_that_reaches_the_front_during_its_short_spin_spins_on() {
    if crate::sync::cpus() < 2 {
        return; // with one CPU neither spins
    }
    let sem = Semaphore::new(1);
    let held = sem.acquire(1).unwrap();
    std::thread::scope(|s| {
        let _let_go = LetGo(&sem);
        let sem = &sem;
        // Dropped if the test fails, which lets the first go.
        let (go, hold) = mpsc::channel::<()>();
        let first = s.spawn(move || {
            let _permit = sem.acquire(1).unwrap();
            hold.recv().ok(); // holds the permit until the second has parked
        });
        assert_eq!(
            spun(sem, 0),
            131,
            "the first waiter, at the front from the start"
        );
        hold_spin(sem, 1);
        let second = s.spawn(|| drop(sem.acquire(1).unwrap()));
        held_in_spin(sem);
        drop(held); // grants the first: the second is at the front now
        let_go_spin(sem);
        let tries = spun(sem, 1);
        go.send(()).unwrap();
        join_all(vec![first, second]);
        assert_eq!(tries, 122, "tries of the second waiter's spin");
    });
    assert_eq!(sem.available(), 1);
}
