//! Without `CountingAlloc` as the global allocator, `count` panics with a clear message rather
//! than report a silent, vacuous zero.

use thrifty::measure;

#[test]
fn count_without_the_allocator_panics_clearly() {
    assert!(!measure::installed());
    let err = std::panic::catch_unwind(|| measure::count(|| Vec::<u8>::with_capacity(8)))
        .expect_err("count must refuse without CountingAlloc");
    let msg = err.downcast_ref::<String>().expect("a formatted message");
    assert!(
        msg.contains("#[global_allocator]"),
        "unhelpful message: {msg}"
    );
    assert!(measure::thread_stats().is_zero());
}
