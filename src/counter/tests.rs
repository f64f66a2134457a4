//! Unit tests of the public types (the engine's own are in `cells.rs`).

use super::{Counter, Gauge, PerCpu};
use std::sync::Barrier;

use crate::at_once;

const ADDS: u64 = if cfg!(miri) { 20 } else { 10_000 };

#[test]
fn types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Counter>();
    check::<Gauge>();
    check::<PerCpu<Vec<u8>>>();
    // `Cell<u8>` is Send but not Sync; the lock makes the PerCpu Sync anyway.
    check::<PerCpu<std::cell::Cell<u8>>>();
}

#[test]
fn counter_adds_takes_and_resets() {
    let c = Counter::new();
    c.incr();
    c.add(9);
    assert_eq!(c.sum(), 10);
    assert_eq!(c.take(), 10);
    assert_eq!(c.sum(), 0);
    c.add(3);
    c.reset();
    assert_eq!(c.sum(), 0);
    assert_eq!(c.take(), 0);
}

#[test]
fn counter_cells_round_up() {
    assert_eq!(Counter::with_cells(1).max_cells(), 1);
    assert_eq!(Counter::with_cells(5).max_cells(), 8);
    assert!(Counter::new().max_cells().is_power_of_two());
    assert_eq!(Counter::new().cells(), 0, "compact");
}

#[test]
#[should_panic(expected = "Counter::with_cells needs 1 to 65536 cells, not 0")]
fn zero_cells_panics() {
    let _ = Counter::with_cells(0);
}

#[test]
#[should_panic(expected = "Gauge::with_cells needs 1 to 65536 cells, not 65537")]
fn a_gauge_with_too_many_cells_panics_naming_the_gauge() {
    let _ = Gauge::with_cells(65_537);
}

#[test]
fn counter_in_a_static() {
    static HITS: Counter = Counter::new();
    HITS.add(2);
    assert_eq!(HITS.sum(), 2);
}

#[test]
fn takes_add_up_to_every_increment() {
    // Adders and a taker race; the takes plus what is left equal the adds.
    let c = Counter::with_cells(2);
    let threads = 2;
    let barrier = Barrier::new(threads + 1);
    let taken = std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..ADDS {
                    c.incr();
                }
            });
        }
        barrier.wait();
        let mut taken = 0;
        for _ in 0..ADDS / 10 {
            taken += c.take();
        }
        taken
    });
    assert_eq!(taken + c.take(), threads as u64 * ADDS);
}

#[test]
fn gauge_moves_and_sets() {
    let g = Gauge::with_cells(2);
    g.add(5);
    g.sub(8);
    assert_eq!(g.value(), -3);
    g.set(100);
    assert_eq!(g.value(), 100);
    g.sub(1);
    assert_eq!(g.value(), 99);
    g.add(i64::MAX);
    g.add(2);
    assert_eq!(g.value(), i64::MIN + 100, "wraps at the i64 bounds");
}

#[test]
fn gauge_balances_under_threads() {
    let g = Gauge::new();
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..ADDS {
                    g.add(1);
                    g.sub(1);
                }
                g.add(2);
            });
        }
    });
    assert_eq!(g.value(), 6);
}

#[test]
fn debug_shows_the_value() {
    let c = Counter::new();
    c.add(42);
    assert!(format!("{c:?}").contains("sum: 42"));
    let g = Gauge::new();
    g.sub(4);
    assert!(format!("{g:?}").contains("value: -4"));
    let p = PerCpu::with_slots(2, || 1u8);
    assert_eq!(format!("{p:?}"), "[1, 1]");
}

#[test]
#[cfg_attr(miri, ignore)] // threads may block on a slot's lock: see the next test
fn per_cpu_with_and_fold() {
    let p = PerCpu::with_slots(4, || 0u64);
    assert_eq!(p.len(), 4);
    assert!(!p.is_empty());
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..ADDS {
                    p.with(|n| *n += 1);
                }
            });
        }
    });
    assert_eq!(p.fold(0, |a, n| a + n), 3 * ADDS);
    p.for_each(|n| *n = 0);
    assert_eq!(p.fold(0, |a, n| a + n), 0);
}

#[test]
fn per_cpu_busy_slot_borrows_another() {
    // Nested `with` on a two-slot PerCpu: the inner call finds its own slot locked by the outer
    // one and runs on the other slot instead of deadlocking.
    let p = PerCpu::with_slots(2, || 0u32);
    p.with(|outer| {
        *outer += 1;
        p.with(|inner| *inner += 10);
    });
    let mut values = p.into_vec();
    values.sort();
    assert_eq!(values, [1, 10]);
}

#[test]
fn per_cpu_one_slot_shared_by_threads() {
    // Every thread maps to the single slot: the lock makes them take turns.
    let p = PerCpu::with_slots(1, Vec::new);
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let p = &p;
            s.spawn(move || {
                for i in 0..ADDS {
                    p.with(|v| v.push(t * ADDS + i));
                }
            });
        }
    });
    let mut all = p.into_vec().pop().unwrap();
    all.sort();
    assert!(all.iter().copied().eq(0..3 * ADDS));
}

#[test]
fn per_cpu_iter_mut_sees_every_slot() {
    let mut p = PerCpu::with_slots(3, || 1u8);
    assert_eq!(p.len(), 4);
    for v in p.iter_mut() {
        *v += 1;
    }
    assert_eq!(p.fold(0u32, |a, v| a + u32::from(*v)), 8);
}

/// Held by the unit tests whose threads add until a counter stripes. Striping needs a test's
/// two threads to run at once; two such tests side by side make four busy threads on a 2-core
/// machine, and the scheduler then rarely runs a test's pair together (waits of tens of
/// seconds).
pub(super) static STRIPING: crate::sync::Mutex<()> = crate::sync::Mutex::new(());

/// Makes `c` striped by adding from two threads until one add meets the other's; false (and a
/// "not tested" line naming `test`) if the threads were kept from running at once until the
/// wait's patience ran out.
fn expand(c: &Counter, test: &str) -> bool {
    let _alone = STRIPING.lock();
    at_once::stripe(|| c.is_striped(), || c.incr(), test).is_some()
}

/// A gauge driven below zero until contention stripes it (its cells then hold negative
/// shares, in wrapping arithmetic) compacts to the same level with no cells and no heap, and
/// counts on from there. A `compact` that dropped a cell's share, or kept a block, fails.
#[test]
fn a_striped_gauge_compacts_to_its_negative_level() {
    let mut g = Gauge::with_cells(2);
    let _alone = STRIPING.lock();
    // After the lock, which another test may hold for minutes: the wait's patience starts here.
    let wait = at_once::Contention::new(2, at_once::STRIPES_WITHIN);
    let subs: u64 = {
        std::thread::scope(|s| {
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let subs = wait.add_until(|| g.is_striped(), || g.decr());
                        (0..ADDS).for_each(|_| g.sub(3)); // into the cells, if striped
                        subs + 3 * ADDS
                    })
                })
                .collect();
            // By hand, as in `expand`.
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        })
    };
    if !wait.reached(g.is_striped(), "counter::tests, a striped gauge compacts") {
        return;
    }
    let level = -(subs as i64);
    assert_eq!((g.value(), g.cells()), (level, 2));
    assert!(g.heap_bytes() > 0);
    g.compact();
    assert_eq!((g.value(), g.cells(), g.heap_bytes()), (level, 0, 0));
    assert!(!g.is_striped());
    g.add(5);
    assert_eq!(g.value(), level + 5, "compact again, from the same level");
}

#[test]
fn local_handle_finds_its_cell_after_expansion() {
    let c = Counter::with_cells(8);
    let mut local = c.local();
    local.add(5); // compact: the shared path
    assert!(format!("{local:?}").contains("owns_cell: false"));
    if !expand(&c, "counter::tests, a local handle finds its cell") {
        return;
    }
    let before = c.sum();
    // Striped: the counter's path claims a cell; the handle looks for it within `LOOK_EVERY`
    // adds and then holds it.
    let adds = u64::from(super::local::LOOK_EVERY);
    (0..adds).for_each(|_| local.add(1));
    assert!(format!("{local:?}").contains("owns_cell: true"));
    assert_eq!(c.sum(), before + adds);
    assert_eq!(c.take(), before + adds);
    local.incr();
    assert_eq!(
        c.sum(),
        1,
        "a handle's adds after a take land on top of zero"
    );
}

#[test]
fn local_handles_on_many_threads_lose_nothing() {
    let c = Counter::with_cells(2);
    let g = Gauge::with_cells(2);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let mut local = c.local();
                let mut level = g.local();
                for _ in 0..ADDS {
                    local.incr();
                    c.add(2);
                    level.add(3);
                    level.sub(1);
                }
            });
        }
    });
    assert_eq!(c.sum(), 4 * 3 * ADDS);
    assert_eq!(g.value(), 4 * 2 * ADDS as i64);
}
