//! Unit tests of the `Cells` engine (a child module of `cells`, so it sees private items).
use super::*;
use std::sync::Barrier;

/// Adds per thread in these tests; few under Miri, which runs threads slowly.
const ADDS: u64 = if cfg!(miri) { 20 } else { 10_000 };

#[test]
fn compact_until_contended() {
    let c = Cells::new(4);
    for _ in 0..ADDS {
        c.add(1);
    }
    assert!(!c.is_striped());
    assert_eq!(c.heap_bytes(), 0);
    assert_eq!(c.sum(), ADDS);
}

#[test]
fn expansion_keeps_the_total_and_allocates_len_cells() {
    let c = Cells::new(4);
    c.add(5);
    c.expand_slow();
    assert!(c.is_striped());
    assert_eq!(c.len(), 4);
    assert_eq!(c.heap_bytes(), 4 * std::mem::size_of::<Line>());
    c.add(7);
    assert_eq!(c.sum(), 12);
    c.expand_slow(); // a second call is a no-op
    assert_eq!(c.sum(), 12);
}

#[test]
fn default_len_is_resolved_at_expansion() {
    let c = Cells::new(0);
    c.expand_slow();
    assert_eq!(c.len(), default_len());
    assert!(c.len().is_power_of_two());
    c.add(3);
    assert_eq!(c.sum(), 3);
}

#[test]
fn owner_path_after_expansion() {
    let c = Cells::new(2);
    c.expand_slow();
    c.add(1);
    let (slot, token) = try_thread_token().unwrap();
    let s = c.stripes().unwrap();
    let k = slot & 1;
    assert_eq!(
        s.owner(k).load(Ordering::Relaxed),
        token,
        "first add claims"
    );
    c.add(2);
    assert_eq!(s.word(k, OWNED).load(Ordering::Relaxed), 3);
    assert_eq!(s.word(k, SHARED).load(Ordering::Relaxed), 0);
}

#[test]
fn threads_sharing_a_cell_use_the_shared_word() {
    // One cell, two live threads: one owns it, the other must `fetch_add` beside it.
    let c = Cells::new(1);
    c.expand_slow();
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                barrier.wait(); // both alive: distinct slots
                for _ in 0..ADDS {
                    c.add(1);
                }
                barrier.wait();
            });
        }
    });
    let s = c.stripes().unwrap();
    assert_eq!(c.sum(), 2 * ADDS);
    assert_eq!(s.word(0, OWNED).load(Ordering::Relaxed), ADDS);
    assert_eq!(s.word(0, SHARED).load(Ordering::Relaxed), ADDS);
}

#[test]
fn a_slot_inherits_its_predecessors_cell() {
    // Threads one after another: each takes the same lowest free slot and keeps adding to
    // the value the last one left. Nothing is lost and nothing needs folding back.
    let c = Cells::new(64);
    c.expand_slow();
    for _ in 0..4 {
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..ADDS {
                    c.add(1);
                }
            });
        });
    }
    assert_eq!(c.sum(), 4 * ADDS);
}

#[test]
fn colliding_slots_probe_for_a_cell_of_their_own() {
    // Four cells; another live thread owns this thread's home cell (as when slots drift and
    // two threads' slots meet modulo the cell count): this thread claims the next one.
    let c = Cells::new(4);
    c.expand_slow();
    let (slot, token) = try_thread_token().unwrap();
    let s = c.stripes().unwrap();
    let home = slot & 3;
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let (_, other) = try_thread_token().unwrap();
            s.owner(home).store(other, Ordering::Relaxed); // pose as the home cell's owner
            barrier.wait();
            barrier.wait(); // stay alive while the main thread adds
        });
        barrier.wait();
        c.add(3);
        c.add(4);
        barrier.wait();
    });
    let next = (home + 1) & 3;
    assert_eq!(
        s.owner(next).load(Ordering::Relaxed),
        token,
        "claimed the next cell"
    );
    assert_eq!(s.word(next, OWNED).load(Ordering::Relaxed), 7);
    assert_eq!(s.word(home, SHARED).load(Ordering::Relaxed), 0);
    assert_eq!(c.sum(), 7);
}

#[test]
fn a_cell_whose_owner_exited_is_taken_over() {
    // A thread owns cell 0 and exits; this thread (whatever its slot: one cell) then finds
    // the owner's claim ended, takes the cell over and continues from the value left there.
    let c = Cells::new(1);
    c.expand_slow();
    std::thread::scope(|s| {
        s.spawn(|| c.add(5));
    });
    let s = c.stripes().unwrap();
    let exited = s.owner(0).load(Ordering::Relaxed);
    assert_ne!(exited, 0);
    // `scope` waits for the thread's main, not its thread-local destructors (where the
    // claim ends): wait for those.
    while token_is_live(exited) {
        crate::sync::yield_now();
    }
    c.add(2);
    let (_, token) = try_thread_token().unwrap();
    assert_eq!(s.owner(0).load(Ordering::Relaxed), token, "taken over");
    assert_eq!(
        s.word(0, OWNED).load(Ordering::Relaxed),
        7,
        "value inherited"
    );
    assert_eq!(s.word(0, SHARED).load(Ordering::Relaxed), 0);
}

#[test]
fn contention_expands_and_loses_nothing() {
    let c = Cells::new(2);
    let threads = 3u64;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..ADDS {
                    c.add(1);
                }
            });
        }
    });
    assert_eq!(c.sum(), threads * ADDS);
}

#[test]
fn replace_returns_the_old_total_and_restarts() {
    let c = Cells::new(2);
    c.add(4);
    assert_eq!(c.replace(0), 4);
    c.expand_slow();
    c.add(6);
    assert_eq!(c.sum(), 6);
    assert_eq!(c.replace(10), 6);
    assert_eq!(c.sum(), 10);
    c.add(1);
    assert_eq!(c.replace(0), 11);
    assert_eq!(c.sum(), 0);
}

#[test]
fn wrapping_arithmetic_carries_negative_values() {
    let c = Cells::new(2);
    c.expand_slow();
    c.add(3);
    c.add(5u64.wrapping_neg());
    assert_eq!(c.sum() as i64, -2);
}

/// Tests whose point is what Miri checks (leaks, double frees, frees with the wrong layout):
/// in a normal build they would pass whatever `Drop` did. Outside Miri,
/// `tests/alloc_counter.rs` (`dropping_frees_the_cells`) asserts with dhat that dropping a
/// striped counter frees exactly its cells.
#[cfg(miri)]
mod miri {
    use super::*;

    #[test]
    fn drop_frees_the_cells_and_a_compact_one_frees_nothing() {
        // Miri reports a leak, a double free, or a free with the wrong layout if `Drop` is
        // wrong.
        let c = Cells::new(8);
        c.expand_slow();
        c.add(1);
        assert_eq!(
            c.heap_bytes(),
            8 * std::mem::size_of::<Line>(),
            "lines to free"
        );
        drop(c);
        let compact = Cells::new(8);
        assert_eq!(compact.heap_bytes(), 0, "nothing to free");
        drop(compact);
    }
}
