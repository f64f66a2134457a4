//! Without `CountingAlloc` as the global allocator, reading counts panics with a clear message
//! rather than report a silent, vacuous zero, and the panic points at the caller's line.

#![cfg(not(loom))]

use std::panic::catch_unwind;
use thrifty::measure;

#[test]
fn reading_counts_without_the_allocator_panics_clearly() {
    assert!(!measure::installed());
    let err = catch_unwind(|| measure::count(|| Vec::<u8>::with_capacity(8)))
        .expect_err("count must refuse without CountingAlloc");
    let msg = err.downcast_ref::<String>().expect("a formatted message");
    assert!(
        msg.contains("#[global_allocator]"),
        "unhelpful message: {msg}"
    );
    for (what, refused) in [
        (
            "thread_stats",
            catch_unwind(|| measure::thread_stats().allocs),
        ),
        (
            "total_stats",
            catch_unwind(|| measure::total_stats().allocs),
        ),
    ] {
        let msg = *refused
            .expect_err("snapshots refuse too: every span would read zero")
            .downcast::<String>()
            .unwrap();
        assert!(
            msg.contains(what) && msg.contains("#[global_allocator]"),
            "{msg}"
        );
    }
}

/// Issue #12: `count` and the snapshots are `#[track_caller]`, so the panic names the line
/// that called them, not a line inside `measure`.
#[test]
fn the_panic_points_at_the_callers_line() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().expect("panics carry a location");
        LOCATION.set(Some((at.file().to_owned(), at.line())));
    }));
    let mut seen = Vec::new();
    let line = line!() + 1;
    let _ = catch_unwind(|| measure::count(|| ()));
    seen.push(("count", line, LOCATION.take()));
    let line = line!() + 1;
    let _ = catch_unwind(|| measure::thread_stats().allocs);
    seen.push(("thread_stats", line, LOCATION.take()));
    let line = line!() + 1;
    let _ = catch_unwind(|| measure::total_stats().allocs);
    seen.push(("total_stats", line, LOCATION.take()));
    std::panic::set_hook(hook);
    for (what, line, at) in seen {
        assert_eq!(at, Some((file!().to_owned(), line)), "{what}");
    }
}

std::thread_local! {
    /// Where this thread last panicked. The hook is process-wide but writes the panicking
    /// thread's own cell, so a panic in a parallel test never lands here.
    static LOCATION: std::cell::RefCell<Option<(String, u32)>> =
        const { std::cell::RefCell::new(None) };
}
