//! What every dhat test binary needs: heap snapshots, and the one-time allocations of std's and
//! parking_lot's thread machinery made before anything is measured, so a count sees only the
//! primitive under test.
#![allow(dead_code)] // each binary uses what it needs

use std::time::Duration;

/// The heap as dhat sees it now.
pub fn heap() -> dhat::HeapStats {
    dhat::HeapStats::get()
}

/// The blocks and bytes `work` allocates, and what it returns.
pub fn allocated<R>(work: impl FnOnce() -> R) -> ((u64, u64), R) {
    let before = heap();
    let r = work();
    let after = heap();
    (
        (
            after.total_blocks - before.total_blocks,
            after.total_bytes - before.total_bytes,
        ),
        r,
    )
}

/// Asserts that `work` allocates nothing; `what` names it in the failure.
#[track_caller]
pub fn allocates_nothing(what: &str, work: impl FnOnce()) {
    let ((blocks, bytes), ()) = allocated(work);
    assert_eq!(blocks, 0, "{what} allocated ({bytes} bytes)");
}

/// Warms up what threads allocate the first few times they come and go: `take_slot` runs on
/// short-lived threads (so thrifty's slot registry grows its free list), then parking_lot's
/// global table of parked threads is grown for far more threads than any case runs (it keeps
/// outgrown tables forever, two blocks per growth, at a moment that depends on scheduling).
pub fn warm_up_threads(take_slot: impl Fn() + Sync) {
    for _ in 0..2 {
        std::thread::scope(|s| join_all((0..3).map(|_| s.spawn(&take_slot)).collect()));
    }
    let gate = parking_lot::Mutex::new(());
    let held = gate.lock();
    std::thread::scope(|s| {
        let threads = (0..32).map(|_| s.spawn(|| drop(gate.lock()))).collect();
        // Long enough for every thread to give up spinning and park.
        std::thread::sleep(Duration::from_millis(200));
        drop(held);
        join_all(threads);
    });
}

/// Joins scoped threads by hand, so that their thread-local destructors (which free memory and
/// give back slot claims) have run when it returns: `scope` itself returns as soon as the
/// threads' closures have, and their teardown may still free blocks into the next count.
pub fn join_all<T>(threads: Vec<std::thread::ScopedJoinHandle<'_, T>>) -> Vec<T> {
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Parks the calling thread once, with a timed wait that always parks: a thread's first park
/// sets up parking_lot's per-thread data, whose destructor registration allocates.
pub fn park_once() {
    let lock = parking_lot::Mutex::new(());
    let mut guard = lock.lock();
    parking_lot::Condvar::new().wait_for(&mut guard, Duration::from_millis(1));
}

/// Heap stats once `done` holds or nothing was allocated or freed for `quiet` (at most 10 s):
/// exited threads free their thread-locals a little after `join`/`scope` returns.
pub fn settled(quiet: Duration, done: impl Fn(&dhat::HeapStats) -> bool) -> dhat::HeapStats {
    let mut last = heap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if done(&last) {
            return last;
        }
        std::thread::sleep(quiet);
        let now = heap();
        if (now.curr_blocks, now.total_blocks) == (last.curr_blocks, last.total_blocks) {
            return now;
        }
        last = now;
    }
    last
}
