//! `measure::pause` stops counting, and `count` refuses to run while paused rather than report
//! zeros. A binary of its own: pausing is process-wide and would disturb parallel tests.

use std::hint::black_box;
use thrifty::measure::{self, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

#[test]
fn pause_stops_counting_and_count_refuses_while_paused() {
    let before = measure::thread_stats();
    {
        let _outer = measure::pause();
        let _inner = measure::pause();
        drop(_inner);
        assert!(
            measure::is_paused(),
            "guards nest: the outer one still pauses"
        );
        black_box(Box::new(1u64));
        let refused = std::panic::catch_unwind(|| measure::count(|| ()));
        assert!(refused.is_err(), "count must panic while paused");
    }
    assert!(!measure::is_paused());
    assert_eq!(
        (measure::thread_stats() - before).allocs,
        0,
        "nothing counted while paused"
    );
    let (_b, stats) = measure::count(|| Box::new(black_box(2u64)));
    assert_eq!(stats.allocs, 1, "counting resumes after the last guard");
}
