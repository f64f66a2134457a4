//! A `LocalCounter` kept in a thread-local whose destructor runs after the thread's slot claim
//! has been given back: the cell it remembers may belong to another thread by then, so its adds
//! must take the counter's shared path, and none may be lost.

#![cfg(not(loom))]

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};
use thrifty::counter::{Counter, LocalCounter};

#[path = "common/at_once.rs"]
mod at_once;

static C: Counter = Counter::new();
/// Whether the handle owned a cell while the thread ran, and had lost it in the destructor.
static OWNED_THEN_GONE: AtomicBool = AtomicBool::new(false);

struct Late(RefCell<Option<LocalCounter<'static>>>);

impl Drop for Late {
    fn drop(&mut self) {
        if let Some(local) = self.0.borrow_mut().as_mut() {
            (0..1000).for_each(|_| local.incr());
            OWNED_THEN_GONE.fetch_and(format!("{local:?}").contains("owns_cell: false"), Relaxed);
        }
    }
}

thread_local! {
    static LATE: Late = const { Late(RefCell::new(None)) };
}

/// Held by each test while it runs: striping needs two threads running at once, and two tests
/// striping side by side put four spinning threads on a 2-core machine, where one run in ten
/// then took seconds (once 24 s) instead of milliseconds.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Two threads add to `c` until it stripes ([`at_once::stripe`]); false (the test tested
/// nothing) if they were kept from running at once until the wait's patience ran out.
fn stripe(c: &Counter, test: &str) -> bool {
    at_once::stripe(|| c.is_striped(), || c.incr(), test).is_some()
}

#[test]
fn local_handle_used_after_the_claim_ended_loses_nothing() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !stripe(&C, "teardown_counter, a handle used after its claim ended") {
        return;
    }
    let before = C.sum();
    std::thread::spawn(|| {
        // Register `LATE`'s destructor before the slot claim's (made by the first add), so it
        // runs after the claim has been given back (destructors run in reverse order of
        // registration on Linux).
        LATE.with(|_| {});
        C.incr();
        LATE.with(|late| {
            let mut local = C.local();
            local.incr();
            OWNED_THEN_GONE.store(format!("{local:?}").contains("owns_cell: true"), Relaxed);
            *late.0.borrow_mut() = Some(local);
        });
    })
    .join()
    .unwrap();
    assert_eq!(C.sum(), before + 1002);
    assert!(
        OWNED_THEN_GONE.load(Relaxed),
        "the handle did not own a cell, or still owned it in the destructor: the test did not \
         reach its case"
    );
}

/// A counter of one cell, for `adds_after_the_claim_ended_race_the_cells_next_owner`.
static ONE: OnceLock<Counter> = OnceLock::new();
/// Set by the exiting thread's late destructor once its claim has ended.
static TEARING_DOWN: AtomicBool = AtomicBool::new(false);
/// Set once the taker has made its adds: the late destructor stops adding.
static STOP: AtomicBool = AtomicBool::new(false);
/// How many adds the late destructor made.
static LATE_COUNT: AtomicU64 = AtomicU64::new(0);

struct LateAdds;

impl Drop for LateAdds {
    fn drop(&mut self) {
        let one = ONE.get().unwrap();
        TEARING_DOWN.store(true, SeqCst);
        let mut n = 0;
        while !STOP.load(Relaxed) {
            one.incr();
            n += 1;
        }
        LATE_COUNT.store(n, SeqCst);
    }
}

thread_local! {
    static LATE_ADDS: LateAdds = const { LateAdds };
}

#[test]
fn adds_after_the_claim_ended_race_the_cells_next_owner() {
    // A thread owns the only cell of a striped counter and exits; a destructor that runs after
    // its slot claim has ended keeps adding through `Counter::add` while another thread takes
    // the cell over (its owner's claim has ended) and adds too. Had the exiting thread kept
    // writing the cell it remembers, an add of one could land between the other's load and
    // store of the same word and be lost: with its claim, a thread forgets the cells it owned.
    // One take-over is a narrow window, so the test makes many.
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let one = ONE.get_or_init(|| Counter::with_cells(1));
    if !stripe(
        one,
        "teardown_counter, late adds race the cell's next owner",
    ) {
        return;
    }
    let rounds = if cfg!(miri) { 2 } else { 200 };
    let (mut late, mut taken) = (0, 0);
    for _ in 0..rounds {
        TEARING_DOWN.store(false, SeqCst);
        STOP.store(false, SeqCst);
        let before = one.sum();
        let exiting = std::thread::spawn(move || {
            LATE_ADDS.with(|_| {});
            // Takes the cell over from the last round's taker (joined, so gone), then adds
            // through the thread's memo of it.
            (0..2).for_each(|_| one.incr());
        });
        let taker = std::thread::spawn(move || {
            while !TEARING_DOWN.load(SeqCst) {
                std::hint::spin_loop();
            }
            // The exiting thread's claim has ended: the first add takes its cell over.
            (0..1000).for_each(|_| one.incr());
            let owns = format!("{:?}", one.local()).contains("owns_cell: true");
            STOP.store(true, SeqCst);
            owns
        });
        taken += u32::from(taker.join().unwrap());
        exiting.join().unwrap();
        let n = LATE_COUNT.load(SeqCst);
        late += n;
        assert_eq!(one.sum(), before + 2 + 1000 + n, "adds were lost");
    }
    assert_eq!(one.cells(), 1);
    assert!(
        taken * 2 > rounds && late > 0,
        "the cell was taken over in {taken} of {rounds} rounds, {late} late adds: the test did \
         not reach its case"
    );
}
