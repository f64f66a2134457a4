//! `Counter`s that move while threads use them, as a program's table of counters does: a `Vec`
//! that moves into a new buffer (every counter moves), entries swapped, compacted, replaced and dropped, and the
//! whole table made again (new counters at the freed addresses), each under a write lock between
//! two workers' bursts of adds and `take`s under the read lock. The workers' thread-local hints
//! (hot entry, memo, filter) then name addresses that now hold another counter, or a freed
//! block's address that a new block took. Every total must stay exact.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::RwLock;
use std::time::{Duration, Instant};
use thrifty::counter::Counter;

#[path = "common/at_once.rs"]
mod at_once;

/// The table: counters and, beside each, the id its expected total is kept under (an id moves
/// with its counter; a new counter takes a new id).
struct Table {
    counters: Vec<Counter>,
    ids: Vec<usize>,
}

/// Ids ever handed out: enough for every round's new counters (600 rounds take at most 4 300,
/// [`ROUNDS_MAX`] about 26 000).
const IDS: usize = 40_000;

/// The most rounds a run makes while it waits to have moved [`STRIPED_ENOUGH`] striped counters.
const ROUNDS_MAX: usize = 6_000;

/// Striped counters, summed over the rounds, that a run waits to have moved and checked; it
/// says that it tested only compact ones if fewer come (the workers may have run apart).
const STRIPED_ENOUGH: usize = 100;

/// xorshift64.
fn next(x: &mut u64) -> usize {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x as usize
}

#[test]
fn counters_moved_swapped_compacted_and_remade_under_adds_keep_exact_totals() {
    let (rounds, burst, pause) = if cfg!(miri) {
        (12, 30, Duration::from_micros(1))
    } else {
        (600, 40_000, Duration::from_micros(300))
    };
    // What each id was given and what `take` removed from it.
    let added: Vec<AtomicU64> = (0..IDS).map(|_| AtomicU64::new(0)).collect();
    let taken: Vec<AtomicU64> = (0..IDS).map(|_| AtomicU64::new(0)).collect();
    let mut fresh = 8..IDS;
    let table = RwLock::new(Table {
        counters: (0..8).map(|_| Counter::new()).collect(),
        ids: (0..8).collect(),
    });
    let stop = AtomicBool::new(false);
    let mut striped = 0;
    let together = at_once::Together::new(2);
    let started = Instant::now();
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let (table, added, taken, stop, together) = (&table, &added, &taken, &stop, &together);
            s.spawn(move || {
                // On CPUs of their own, so that their adds meet and the hot counters stripe.
                together.spread(w as usize);
                let mut x = 0x1234_5678 ^ (w + 1) << 32;
                while !stop.load(Relaxed) {
                    let t = table.read().unwrap();
                    let n = t.counters.len();
                    for k in 0..burst {
                        // The first 4 take most adds (they stripe); one add in 8 goes anywhere.
                        let i = next(&mut x) % if k % 8 == 0 { n } else { 4 };
                        t.counters[i].incr();
                        added[t.ids[i]].fetch_add(1, Relaxed);
                        if w == 1 && k % 5_000 == 4_999 {
                            taken[t.ids[i]].fetch_add(t.counters[i].take(), Relaxed);
                        }
                    }
                }
            });
        }
        let want = |id: usize| added[id].load(Relaxed) - taken[id].load(Relaxed);
        let mut x = 0x9e37_79b9_7f4a_7c15;
        for r in 0..ROUNDS_MAX {
            // Past the set rounds, only until enough striped counters were moved (or 60 s).
            if r >= rounds
                && (striped >= STRIPED_ENOUGH || started.elapsed() > Duration::from_secs(60))
            {
                break;
            }
            std::thread::sleep(pause);
            let mut t = table.write().unwrap();
            let t = &mut *t;
            striped += t.counters.iter().filter(|c| c.is_striped()).count();
            for (c, &id) in t.counters.iter().zip(&t.ids) {
                assert_eq!(c.sum(), want(id), "round {r}, id {id}");
            }
            let n = t.counters.len();
            match r % 6 {
                // Into a new buffer while the old one is still allocated: every counter moves.
                0 => {
                    let mut moved = Vec::with_capacity(n + 1);
                    moved.append(&mut t.counters);
                    moved.push(Counter::new());
                    t.counters = moved;
                    t.ids.push(fresh.next().unwrap());
                }
                1 => {
                    let (a, b) = (next(&mut x) % 4, next(&mut x) % n);
                    t.counters.swap(a, b);
                    t.ids.swap(a, b);
                }
                2 => t.counters.iter_mut().take(4).for_each(Counter::compact),
                // A hot counter replaced by a new one at its address; the old one dropped.
                3 => {
                    let a = next(&mut x) % 4;
                    let old = std::mem::replace(&mut t.counters[a], Counter::new());
                    assert_eq!(old.sum(), want(t.ids[a]), "round {r}, replaced");
                    t.ids[a] = fresh.next().unwrap();
                }
                // The table made again: its counters dropped, new ones at (maybe) their addresses.
                4 => {
                    drop(std::mem::take(&mut t.counters));
                    t.counters = (0..n).map(|_| Counter::new()).collect();
                    t.ids.iter_mut().for_each(|id| *id = fresh.next().unwrap());
                }
                _ => {
                    let (front, back) = t.counters.split_at_mut(2);
                    std::mem::swap(&mut front[0], &mut back[0]);
                    t.ids.swap(0, 2);
                }
            }
            if t.counters.len() > 40 {
                t.counters.truncate(8);
                t.ids.truncate(8);
            }
        }
        stop.store(true, Relaxed);
    });
    let t = table.into_inner().unwrap();
    for (c, &id) in t.counters.iter().zip(&t.ids) {
        assert_eq!(
            c.sum(),
            added[id].load(Relaxed) - taken[id].load(Relaxed),
            "at the end"
        );
    }
    // Exact either way; but the moves were meant to meet striped counters.
    if striped < STRIPED_ENOUGH {
        at_once::not_tested(&format!(
            "counters moved while striped: {striped} striped counters met in the rounds"
        ));
    }
}
