//! The pool's documented panics that no other test drives: `put` and `prefill` with a return
//! hook that panics, `prefill` with a factory that panics part-way, `try_get` with a `reset`
//! that panics, and `get_owned` "As `get`". Each checks what the docs promise after the panic:
//! the value dropped (exactly once), the objects made so far kept, the pool usable.

#![cfg(not(loom))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use thrifty::pool::Pool;

#[path = "common/panics.rs"]
mod panics;

/// A value that counts the live ones, with a mark the hooks below panic on.
struct Tracked {
    mark: u32,
    live: Arc<AtomicUsize>,
}

impl Tracked {
    fn new(live: &Arc<AtomicUsize>, mark: u32) -> Self {
        live.fetch_add(1, SeqCst);
        Tracked {
            mark,
            live: live.clone(),
        }
    }
}

/// The default reset (`ByReset`) needs one; the mark stays, so hooks can still see it.
impl thrifty::Reset for Tracked {
    fn reset(&mut self) {}
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.fetch_sub(1, SeqCst);
    }
}

const BAD: u32 = 13;

fn quiet() {
    panics::quiet_panics_containing("expected:");
}

/// `Pool::put`: "If `reset` (on return), `keep_if` or `weigh` panics; `value` is dropped." (And
/// `Stats::discarded` counts it.)
#[test]
fn put_drops_the_value_when_keep_if_or_reset_on_return_panics() {
    quiet();
    let live = Arc::new(AtomicUsize::new(0));
    let keep_if = Pool::builder()
        .keep_if(|t: &Tracked| {
            assert!(t.mark != BAD, "expected: keep_if refused by panicking");
            true
        })
        .build({
            let live = live.clone();
            move || Tracked::new(&live, 0)
        });
    let reset = Pool::builder()
        .reset(|t: &mut Tracked| {
            assert!(t.mark != BAD, "expected: reset failed");
            t.mark = 0;
        })
        .reset_on_return(true)
        .build({
            let live = live.clone();
            move || Tracked::new(&live, 0)
        });
    for (name, pool) in [("keep_if", &keep_if), ("reset on return", &reset)] {
        let before = live.load(SeqCst);
        let put = catch_unwind(AssertUnwindSafe(|| pool.put(Tracked::new(&live, BAD))));
        assert!(put.is_err(), "{name}: the hook's panic propagates");
        assert_eq!(live.load(SeqCst), before, "{name}: the value is dropped");
        assert_eq!(pool.len(), 0, "{name}: nothing kept");
        assert_eq!(pool.stats().discarded, 1, "{name}: counted as discarded");
        pool.put(Tracked::new(&live, 1));
        assert_eq!(pool.len(), 1, "{name}: usable after the panic");
    }
    drop((keep_if, reset));
    assert_eq!(live.load(SeqCst), 0);
}

/// `Pool::prefill`: "If the factory ... panics; the objects made so far stay in the pool."
#[test]
fn prefill_keeps_what_it_made_when_the_factory_panics() {
    quiet();
    let live = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let pool = Pool::builder().capacity(8).build({
        let (live, calls) = (live.clone(), calls.clone());
        move || {
            assert!(calls.fetch_add(1, SeqCst) != 3, "expected: factory failed");
            Tracked::new(&live, 0)
        }
    });
    let filled = catch_unwind(AssertUnwindSafe(|| pool.prefill(6)));
    assert!(filled.is_err(), "the factory's panic propagates");
    assert_eq!(pool.len(), 3, "the three made before the panic stay");
    assert_eq!(live.load(SeqCst), 3);
    assert_eq!(pool.prefill(6), 5, "usable: fills up to the capacity");
    drop(pool);
    assert_eq!(live.load(SeqCst), 0);
}

/// `Pool::prefill`: "If ... a return hook (`keep_if`, `reset` on return, `weigh`), panics; the
/// objects made so far stay in the pool." The object the hook panicked on is dropped.
#[test]
fn prefill_keeps_what_it_made_when_a_return_hook_panics() {
    quiet();
    let made = |live: &Arc<AtomicUsize>| {
        let (live, n) = (live.clone(), AtomicUsize::new(0));
        move || Tracked::new(&live, n.fetch_add(1, SeqCst) as u32 + 10)
    };
    // Objects are marked 10, 11, 12, ...: each hook panics on the fourth (13 = BAD).
    let live = Arc::new(AtomicUsize::new(0));
    let pools: Vec<(&str, Pool<Tracked>)> = vec![
        (
            "keep_if",
            Pool::builder()
                .capacity(8)
                .keep_if(|t: &Tracked| {
                    assert!(t.mark != BAD, "expected: keep_if panicked");
                    true
                })
                .build(made(&live)),
        ),
        (
            "reset on return",
            Pool::builder()
                .capacity(8)
                .reset(|t: &mut Tracked| assert!(t.mark != BAD, "expected: reset panicked"))
                .reset_on_return(true)
                .build(made(&live)),
        ),
        (
            "weigh",
            Pool::builder()
                .capacity(8)
                .weigh(|t: &Tracked| {
                    assert!(t.mark != BAD, "expected: weigh panicked");
                    1
                })
                .build(made(&live)),
        ),
    ];
    for (name, pool) in &pools {
        let before = live.load(SeqCst);
        let filled = catch_unwind(AssertUnwindSafe(|| pool.prefill(6)));
        assert!(filled.is_err(), "{name}: the hook's panic propagates");
        assert_eq!(
            pool.len(),
            3,
            "{name}: the three made before the panic stay"
        );
        assert_eq!(
            live.load(SeqCst) - before,
            3,
            "{name}: the object the hook panicked on is dropped"
        );
        // `Stats::discarded`: "a return's `reset`, `keep_if` or `weigh` panicked on it".
        assert_eq!(pool.stats().discarded, 1, "{name}: counted as discarded");
        assert_eq!(pool.prefill(6), 5, "{name}: usable after the panic");
    }
    drop(pools);
    assert_eq!(live.load(SeqCst), 0);
}

/// `Pool::try_get`: "If `reset` panics (the object is dropped)."
#[test]
fn try_get_drops_the_object_when_reset_panics() {
    quiet();
    let live = Arc::new(AtomicUsize::new(0));
    let pool = Pool::builder()
        .reset(|t: &mut Tracked| {
            assert!(t.mark != BAD, "expected: reset failed");
        })
        .build({
            let live = live.clone();
            move || Tracked::new(&live, 0)
        });
    pool.put(Tracked::new(&live, BAD));
    assert_eq!((pool.len(), live.load(SeqCst)), (1, 1));
    let got = catch_unwind(AssertUnwindSafe(|| pool.try_get().map(|g| g.mark)));
    assert!(got.is_err(), "reset's panic propagates");
    assert_eq!(live.load(SeqCst), 0, "the object is dropped");
    assert_eq!(pool.len(), 0);
    assert!(pool.try_get().is_none(), "the pool has nothing left");
    pool.put(Tracked::new(&live, 1));
    assert_eq!(pool.try_get().map(|g| g.mark), Some(1), "usable");
    drop(pool);
    assert_eq!(live.load(SeqCst), 0);
}

/// `Pool::get_owned`, "As `get`": "If the factory or `reset` panics; the pool stays consistent
/// and usable, and the object being reset is dropped."
#[test]
fn get_owned_panics_as_get_does() {
    quiet();
    let live = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let pool = Arc::new(
        Pool::builder()
            .reset(|t: &mut Tracked| {
                assert!(t.mark != BAD, "expected: reset failed");
            })
            .build({
                let (live, calls) = (live.clone(), calls.clone());
                move || {
                    assert!(calls.fetch_add(1, SeqCst) != 0, "expected: factory failed");
                    Tracked::new(&live, 0)
                }
            }),
    );
    let first = catch_unwind(AssertUnwindSafe(|| pool.get_owned().mark));
    assert!(first.is_err(), "the factory's panic propagates");
    assert_eq!((live.load(SeqCst), pool.len()), (0, 0));
    assert_eq!(pool.get_owned().mark, 0, "usable after the factory's panic");
    assert_eq!(pool.len(), 1);
    pool.get_owned().mark = BAD;
    let second = catch_unwind(AssertUnwindSafe(|| pool.get_owned().mark));
    assert!(second.is_err(), "reset's panic propagates");
    assert_eq!(pool.len(), 0);
    assert_eq!(live.load(SeqCst), 0, "the object being reset is dropped");
    assert_eq!(pool.get_owned().mark, 0, "usable after reset's panic");
    assert_eq!(Arc::strong_count(&pool), 1, "no guard kept the pool");
    drop(pool);
    assert_eq!(live.load(SeqCst), 0);
}

/// The module docs: `Pool` is `RefUnwindSafe` because an object a panic left half-changed is
/// reset before a get hands it out again. A closure that borrows the pool crosses
/// `catch_unwind` without `AssertUnwindSafe`, panics while it holds a changed object, and the
/// next get gets that object back (a hit, not a new one), empty.
#[test]
fn an_object_a_panic_left_half_changed_comes_back_reset() {
    panics::quiet_panics_containing("expected:");
    let pool: Pool<Vec<u8>> = Pool::new(Vec::new);
    let unwound = catch_unwind(|| {
        let mut v = pool.get();
        v.extend_from_slice(b"half a record");
        panic!("expected: mid-change");
    });
    assert!(unwound.is_err());
    let stats = pool.stats();
    assert_eq!(
        (stats.misses, stats.returned),
        (1, 1),
        "the unwind returned the object"
    );
    let v = pool.get();
    assert!(v.is_empty(), "reset before it was handed out again");
    assert!(v.capacity() >= 13, "the same buffer, not a new one");
    assert_eq!(pool.stats().hits, 1);
}
