//! The barging semaphore (`Fairness::Eventual`) used the way a server uses it: many more
//! threads than CPUs taking short holds of mixed weights, a heavy request among a stream of
//! light ones, requests that time out, try, ask for nothing or give up their permits on other
//! threads, and a close while the line is long. Each test names what it shows; its doc comment
//! says what would fail. Every scenario runs under a deadline (120 s), so a lost wake-up fails
//! the test instead of hanging it; no test asserts how fast anything ran.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use thrifty::limit::{AcquireError, AcquireTimeoutError, Fairness, Semaphore};

#[path = "common/deadline.rs"]
mod deadline;
use deadline::within;

/// A server's worker count on a small machine: oversubscribed on 2 cores, on purpose.
const THREADS: usize = if cfg!(miri) { 6 } else { 50 };
const ROUNDS: usize = if cfg!(miri) { 10 } else { 400 };

/// Counts the permits held at once and fails if they ever exceed the total; counts the grants
/// that left every permit held (`full`), the moments an over-grant would show.
struct Held {
    now: AtomicU64,
    total: u64,
    full: AtomicU64,
}

impl Held {
    fn take(&self, weight: u32) {
        let now = self.now.fetch_add(u64::from(weight), SeqCst) + u64::from(weight);
        assert!(now <= self.total, "{now} permits held of {}", self.total);
        if now == self.total {
            self.full.fetch_add(1, SeqCst);
        }
    }

    fn give(&self, weight: u32) {
        self.now.fetch_sub(u64::from(weight), SeqCst);
    }
}

/// 50 threads on 2 CPUs, each taking permits of weight 1 to 3 (and now and then 0) out of 4 for
/// a moment, by `acquire`, `acquire_timeout` or `try_acquire`: never more held than the total,
/// every blocking acquire served (a lost wake-up would hang it past the deadline), and at the
/// end every permit back and nobody in line. Each hold yields its CPU once, so that holders
/// overlap and the semaphore is often full, the moments an over-grant would show; the test
/// checks that it was.
#[test]
fn fifty_threads_with_short_mixed_holds_never_over_grant_and_all_finish() {
    let (served, timed_out) = within("fifty threads", || {
        let sem = Semaphore::with_fairness(4, Fairness::Eventual(Duration::from_micros(500)));
        let held = Held {
            now: AtomicU64::new(0),
            total: 4,
            full: AtomicU64::new(0),
        };
        let (served, timed_out) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (sem, held, served, timed_out) = (&sem, &held, &served, &timed_out);
                s.spawn(move || {
                    for i in 0..ROUNDS {
                        let weight = [1, 2, 3, 1, 0, 2, 1][(t + i) % 7];
                        let permit = match (t + i) % 5 {
                            0 => sem.try_acquire(weight).ok(),
                            1 => match sem.acquire_timeout(weight, Duration::from_micros(50)) {
                                Ok(p) => Some(p),
                                Err(AcquireTimeoutError::Timeout) => {
                                    timed_out.fetch_add(1, SeqCst);
                                    None
                                }
                                Err(e) => panic!("{e:?}"),
                            },
                            _ => Some(sem.acquire(weight).unwrap()),
                        };
                        if let Some(permit) = permit {
                            held.take(weight);
                            // Holders overlap: others run (and take what is left) meanwhile.
                            std::thread::yield_now();
                            held.give(weight);
                            drop(permit);
                            served.fetch_add(1, SeqCst);
                        }
                    }
                });
            }
        });
        assert_eq!((sem.available(), sem.waiting()), (4, 0));
        let full = held.full.into_inner();
        eprintln!("all 4 permits held at once after {full} grants");
        // Premise: the check above had moments to fail at (one full semaphore in a hundred
        // grants; it is far more). Under Miri, a handful of threads and rounds: not asked.
        assert!(
            cfg!(miri) || full as usize >= THREADS * ROUNDS / 100,
            "the semaphore was full after only {full} grants: the holds do not overlap"
        );
        (served.into_inner(), timed_out.into_inner())
    });
    // Three of every five calls block until served.
    assert!(served >= THREADS * ROUNDS * 3 / 5, "{served} served");
    assert!(served + timed_out <= THREADS * ROUNDS);
}

/// A request for the whole semaphore among eight threads that keep taking one permit each for a
/// short hold: it is served (the light threads run until it is, so a request never served would
/// miss the deadline), and the semaphore ends whole. Whether it got there by barging in a quiet
/// moment or by the patience's hand-over depends on the scheduling; the unit test
/// `a_waiter_past_its_patience_is_served_in_order` shows the hand-over itself.
#[test]
fn a_heavy_request_is_served_once_it_has_waited_its_patience() {
    within("heavy among light", || {
        let sem = Arc::new(Semaphore::with_fairness(
            4,
            Fairness::Eventual(Duration::from_millis(2)),
        ));
        let done = Arc::new(AtomicBool::new(false));
        let light: Vec<_> = (0..8)
            .map(|_| {
                let (sem, done) = (Arc::clone(&sem), Arc::clone(&done));
                std::thread::spawn(move || {
                    let mut taken = 0u64;
                    while !done.load(SeqCst) {
                        let permit = sem.acquire(1).unwrap();
                        // A short hold, so that the four permits are rarely all free at once.
                        std::thread::sleep(Duration::from_micros(20));
                        drop(permit);
                        taken += 1;
                    }
                    taken
                })
            })
            .collect();
        let heavy = sem.acquire(4).unwrap();
        assert_eq!(sem.available(), 0);
        drop(heavy);
        done.store(true, SeqCst);
        for t in light {
            t.join().unwrap();
        }
        assert_eq!((sem.available(), sem.waiting()), (4, 0));
    });
}

/// Owned permits taken on one thread and dropped on others, while waiters of every weight queue:
/// each release on a thread that never asked still wakes the waiters it fits.
#[test]
fn owned_permits_dropped_on_other_threads_serve_the_waiters() {
    within("owned permits", || {
        let sem = Arc::new(Semaphore::with_fairness(
            3,
            Fairness::Eventual(Duration::from_micros(200)),
        ));
        let rounds = if cfg!(miri) { 5 } else { 200 };
        let (tx, rx) = std::sync::mpsc::channel();
        let dropper = std::thread::spawn(move || {
            for permit in rx {
                drop::<thrifty::limit::OwnedPermit>(permit);
            }
        });
        let waiters: Vec<_> = (0..4u32)
            .map(|w| {
                let sem = Arc::clone(&sem);
                std::thread::spawn(move || {
                    for _ in 0..rounds {
                        drop(sem.acquire(w % 3 + 1).unwrap());
                    }
                })
            })
            .collect();
        for _ in 0..rounds {
            tx.send(Semaphore::acquire_owned(&sem, 2).unwrap()).unwrap();
        }
        drop(tx);
        for w in waiters {
            w.join().unwrap();
        }
        dropper.join().unwrap();
        assert_eq!((sem.available(), sem.waiting()), (3, 0));
    });
}

/// Close while a long line waits: every waiter wakes with `Closed` or was served first, no
/// permit is lost, and permits held across the close still come back.
#[test]
fn close_with_a_long_line_wakes_everyone_and_loses_no_permit() {
    within("close", || {
        let sem = Arc::new(Semaphore::with_fairness(
            2,
            Fairness::Eventual(Duration::from_millis(1)),
        ));
        let held = Semaphore::try_acquire_owned(&sem, 2).unwrap();
        let waiters: Vec<_> = (0..THREADS)
            .map(|t| {
                let sem = Arc::clone(&sem);
                std::thread::spawn(move || sem.acquire(t as u32 % 2 + 1).map(|p| p.weight()))
            })
            .collect();
        while sem.waiting() < THREADS {
            std::thread::yield_now();
        }
        sem.close();
        for w in waiters {
            assert_eq!(w.join().unwrap(), Err(AcquireError::Closed));
        }
        assert_eq!(sem.available(), 0, "the held permits stay held");
        drop(held);
        assert_eq!((sem.available(), sem.waiting()), (2, 0));
    });
}
