//! A `LocalCounter` kept in a thread-local whose destructor runs after the thread's slot claim
//! has been given back: the cell it remembers may belong to another thread by then, so its adds
//! must take the counter's shared path, and none may be lost.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use thrifty::counter::{Counter, LocalCounter};

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

#[test]
fn local_handle_used_after_the_claim_ended_loses_nothing() {
    // Striped first: two threads add until one meets the other.
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    while !C.is_striped() {
                        C.incr();
                    }
                })
            })
            .collect();
        // By hand: `scope` returns before the threads' destructors give back their cells, and
        // the thread below must find one free.
        threads.into_iter().for_each(|t| t.join().unwrap());
    });
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
