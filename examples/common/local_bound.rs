//! The thread-local bound of the counter tables in the shootout and `benches/counter.rs`
//! (`#[path]`-included by both: not an example of its own).

use std::hint::black_box;

/// `ops` adds of `black_box(1)` to a local, four to an iteration; returns the local, for the
/// caller to flush. Each add waits for the one before, a cycle apart; unrolled, the loop's own
/// branch and its placement do not set the pace (a loop of one add took 0.3 or 0.4-0.5 ns an add
/// from build to build on an Intel Xeon VM, as its four instructions fell within one 32-byte
/// block or across two).
pub fn local_adds(ops: u64) -> u64 {
    let mut local = 0u64;
    for _ in 0..ops / 4 {
        local += black_box(1);
        local += black_box(1);
        local += black_box(1);
        local += black_box(1);
    }
    for _ in 0..ops % 4 {
        local += black_box(1);
    }
    local
}
