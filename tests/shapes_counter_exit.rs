//! Threads that exit or go idle while holding a `Counter`'s cells. Alone in its own test binary
//! (its own process) because cells follow process-wide thread slots: no other test's threads
//! take slots, own cells or spin beside these.

#![cfg(not(loom))]

use std::sync::Barrier;
use thrifty::counter::Counter;

#[path = "common/at_once.rs"]
mod at_once;

/// Whether the calling thread owns one of `c`'s cells (in its newest block), as its handle
/// reports.
fn owns_a_cell(c: &Counter) -> bool {
    format!("{:?}", c.local()).contains("owns_cell: true")
}

/// Adds per hammering thread: about 50 probes natively, 5 under Miri (a probe every
/// 4 096th add).
const HAMMER: u64 = if cfg!(miri) { 20_000 } else { 200_000 };

#[test]
fn exiting_threads_hand_their_cells_on_and_idle_ones_keep_theirs() {
    // Two cells at most, so the counter never grows past what the two threads of a wave can
    // own, and a cell an idle thread owns stays in the newest block.
    let c = Counter::with_cells(2);
    let mut total = 0;
    // Waves of two threads hammer the counter and exit. Once it has striped, the next wave's
    // threads find the cells their predecessors left, owned by claims that have ended, and take
    // them over: each owns a cell after its adds.
    let start = Barrier::new(2);
    // Until two waves have started striped (at least 5 waves in all). Two threads that never
    // run at the same moment do not contend (on a loaded machine, one busy process beside this
    // test kept them apart for over a minute), so the test fails only once the waves' threads ran
    // at once for 20 000 looks (0.4 s; the rule needs about 12 000 adds of each) while the counter
    // stayed compact, and if the wait's patience ([`at_once::PATIENCE`]) runs out first, it tests
    // nothing.
    const AT_ONCE: u64 = 20_000;
    let (mut waves, mut striped_waves, mut compact_looks) = (0, 0, 0);
    let began = std::time::Instant::now();
    while waves < 5 || striped_waves < 2 {
        waves += 1;
        let striped = c.is_striped();
        if !striped {
            assert!(
                compact_looks < AT_ONCE,
                "two hammering threads ran at once for {compact_looks} looks and never striped it"
            );
            if began.elapsed() >= at_once::PATIENCE {
                at_once::not_tested(&format!(
                    "shapes_counter_exit: the waves' threads ran at once for {compact_looks} \
                     looks in {:?}",
                    at_once::PATIENCE
                ));
                return;
            }
        }
        let together = at_once::Together::new(2);
        // Joined by hand: a join waits for the thread's locals to be destroyed (its slot given
        // back), where the end of a scope only waits for the closure to return.
        let owned = std::thread::scope(|s| {
            let hammer = |i| {
                together.spread(i);
                let mut watch = together.watch(i);
                start.wait();
                for k in 0..HAMMER {
                    c.incr();
                    if k % 64 == 63 {
                        watch.beat();
                    }
                }
                owns_a_cell(&c)
            };
            [s.spawn(move || hammer(0)), s.spawn(move || hammer(1))].map(|t| t.join().unwrap())
        });
        total += 2 * HAMMER;
        assert_eq!(c.sum(), total);
        if !c.is_striped() {
            compact_looks += together.at_once();
        }
        if striped {
            striped_waves += 1;
            assert_eq!(
                owned,
                [true, true],
                "wave {waves}: a thread did not take over a cell an exited thread left"
            );
        }
    }
    // An idle thread: claims a cell with one add, then waits while two others hammer. It keeps
    // its cell (a live thread's cell is never taken: the hammerer that finds no other shares),
    // and the sum is exact. The hammerers are alive at once, so three threads hold slots and
    // one hammerer's home cell is the idle thread's.
    let (parked, done, both) = (Barrier::new(2), Barrier::new(2), Barrier::new(2));
    std::thread::scope(|s| {
        let idle = s.spawn(|| {
            c.incr();
            let claimed = owns_a_cell(&c);
            parked.wait();
            done.wait();
            (claimed, owns_a_cell(&c))
        });
        parked.wait();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    both.wait();
                    (0..HAMMER).for_each(|_| c.incr());
                    both.wait();
                });
            }
        });
        done.wait();
        let (claimed, kept) = idle.join().unwrap();
        assert!(claimed, "the idle thread's add claimed no cell");
        assert!(kept, "a hammering thread took the idle thread's cell");
    });
    total += 2 * HAMMER + 1;
    assert_eq!(c.sum(), total);
}
