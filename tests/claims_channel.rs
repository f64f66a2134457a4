//! `channel::recycling`'s documented construction claims, driven: "Calls `factory` `capacity`
//! times, at once"; "each value is reset once, in case the factory left something in it"; and
//! its Panics: "if `factory` or a made value's `Reset` panics ...; the values made so far are
//! dropped".

#![cfg(not(loom))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use thrifty::channel::recycling;

#[path = "common/panics.rs"]
mod panics;

/// A slot value that counts the live ones; its `reset` panics on a value marked `bad`.
struct Slot {
    data: Vec<u8>,
    bad: bool,
    live: Arc<AtomicUsize>,
}

impl Slot {
    fn new(live: &Arc<AtomicUsize>, bad: bool) -> Self {
        live.fetch_add(1, SeqCst);
        Slot {
            data: vec![7; 3], // left by the factory: the first reset must clear it
            bad,
            live: live.clone(),
        }
    }
}

impl thrifty::Reset for Slot {
    fn reset(&mut self) {
        assert!(!self.bad, "expected: reset failed");
        self.data.clear();
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.live.fetch_sub(1, SeqCst);
    }
}

#[test]
fn the_factory_runs_capacity_times_at_once_and_each_value_is_reset() {
    let live = Arc::new(AtomicUsize::new(0));
    let calls = AtomicUsize::new(0);
    let (tx, rx) = recycling(5, || {
        calls.fetch_add(1, SeqCst);
        Slot::new(&live, false)
    });
    assert_eq!(calls.load(SeqCst), 5, "factory calls at creation");
    assert_eq!(live.load(SeqCst), 5);
    // Every slot, once round the ring: what the factory left is gone, its capacity kept.
    for _ in 0..5 {
        let seen = tx.send_with(|s| (s.data.len(), s.data.capacity())).unwrap();
        assert_eq!(seen.0, 0, "the factory's contents were not reset");
        assert!(seen.1 >= 3, "the reset dropped the factory's buffer");
        rx.recv_with(|_| ()).unwrap();
    }
    assert_eq!(calls.load(SeqCst), 5, "no factory call after creation");
    drop((tx, rx));
    assert_eq!(live.load(SeqCst), 0);
}

#[test]
fn a_factory_that_panics_drops_the_values_made_so_far() {
    panics::quiet_panics_containing("expected:");
    let live = Arc::new(AtomicUsize::new(0));
    let calls = AtomicUsize::new(0);
    let made = catch_unwind(AssertUnwindSafe(|| {
        recycling(8, || {
            assert!(calls.fetch_add(1, SeqCst) != 4, "expected: factory failed");
            Slot::new(&live, false)
        })
    }));
    assert!(made.is_err(), "the factory's panic propagates");
    assert_eq!(calls.load(SeqCst), 5, "the factory ran until it panicked");
    assert_eq!(live.load(SeqCst), 0, "the four values made were dropped");
}

#[test]
fn a_made_value_whose_reset_panics_drops_the_values_made_so_far() {
    panics::quiet_panics_containing("expected:");
    let live = Arc::new(AtomicUsize::new(0));
    let calls = AtomicUsize::new(0);
    let made = catch_unwind(AssertUnwindSafe(|| {
        recycling(8, || {
            let n = calls.fetch_add(1, SeqCst);
            Slot::new(&live, n == 2)
        })
    }));
    assert!(made.is_err(), "the reset's panic propagates");
    assert_eq!(
        calls.load(SeqCst),
        3,
        "no factory call after the reset panicked"
    );
    assert_eq!(
        live.load(SeqCst),
        0,
        "the values made, the one whose reset panicked included, were dropped"
    );
}
