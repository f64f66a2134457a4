//! Threads that exit or go idle while holding a `Counter`'s cells. Alone in its own test binary
//! (its own process) because cells follow process-wide thread slots: a test running beside it
//! that holds slots 0 and 1 would push these threads to slots 2 and 3, and the counter, rightly,
//! to four cells.

use std::sync::Barrier;
use thrifty::counter::Counter;

#[test]
fn exiting_threads_hand_their_cells_on_and_idle_ones_keep_theirs() {
    let c = Counter::new();
    let mut total = 0;
    // Waves of two threads hammer the counter and exit; the next wave's threads take the same
    // slots and the cells their predecessors left, so the cell count stays at 2.
    let start = Barrier::new(2);
    // Until it stripes (at least 5 waves): on a loaded machine two threads may not run at the
    // same moment, and then they do not contend (one busy process beside this test kept them
    // apart for over a minute), so the bound is time, not waves.
    let mut waves = 0;
    let began = std::time::Instant::now();
    while waves < 5 || !c.is_striped() {
        waves += 1;
        let waited = began.elapsed().as_secs();
        assert!(
            waited < 600,
            "two hammering threads never striped it in {waited} s"
        );
        // Joined by hand: a join waits for the thread's locals to be destroyed (its slot given
        // back), where the end of a scope only waits for the closure to return.
        std::thread::scope(|s| {
            let hammer = || {
                start.wait();
                (0..200_000).for_each(|_| c.incr());
            };
            let threads = [s.spawn(hammer), s.spawn(hammer)];
            for t in threads {
                t.join().unwrap();
            }
        });
        total += 400_000;
        assert_eq!(c.sum(), total);
    }
    assert_eq!(c.cells(), 2, "exited threads' cells were not reused");
    // An idle thread: bumps once, then waits while two others hammer. Exact throughout.
    let (parked, done) = (Barrier::new(2), Barrier::new(2));
    std::thread::scope(|s| {
        s.spawn(|| {
            c.incr();
            parked.wait();
            done.wait();
        });
        parked.wait();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| (0..200_000).for_each(|_| c.incr()));
            }
        });
        done.wait();
    });
    total += 400_001;
    assert_eq!(c.sum(), total);
    assert!(c.cells() <= c.max_cells());
}
