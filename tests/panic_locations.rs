//! A bad setting given to a constructor panics with the caller's line as its location (every
//! constructor that documents such a panic is `#[track_caller]` down to the panic), and so does
//! an allocation an arena has no room for, so the message points at the call to fix, not into
//! the crate. One test: the panic hook it swaps is process-wide.

#![cfg(not(loom))]

use std::hash::RandomState;
use std::panic::{self, UnwindSafe};
use std::sync::{Arc, Mutex};
use thrifty::arena::ArenaPool;
use thrifty::channel;
use thrifty::counter::{Counter, Gauge, PerCpu};
use thrifty::limit::{InFlight, Semaphore};
use thrifty::map::ShardedMap;
use thrifty::pool::{BufferPool, Pool};

/// The file `f`'s panic reports as its location.
fn panic_file(f: impl FnOnce() + UnwindSafe) -> String {
    let seen = Arc::new(Mutex::new(None));
    let into = Arc::clone(&seen);
    let old = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        *into.lock().unwrap() = info.location().map(|l| l.file().to_string());
    }));
    let caught = panic::catch_unwind(f);
    panic::set_hook(old);
    assert!(caught.is_err(), "no panic");
    let file = seen.lock().unwrap().take();
    file.expect("a location")
}

/// An arena pool whose arenas refuse a request of more than 4 KiB.
fn small_arenas() -> ArenaPool {
    ArenaPool::builder()
        .chunk_bytes(1024)
        .limit_bytes(4096)
        .build()
}

/// `(the call, the file its panic reports)` for each call.
macro_rules! located {
    ($($call:expr),* $(,)?) => {
        vec![$((stringify!($call), panic_file(|| {
            let _ = $call;
        }))),*]
    };
}

#[test]
fn documented_panics_point_at_the_callers_line() {
    let cases = located![
        channel::bounded::<u8>(usize::MAX),
        channel::recycling(usize::MAX, Vec::<u8>::new),
        channel::bounded::<u8>(0),
        channel::recycling(0, Vec::<u8>::new),
        Counter::with_cells(0),
        Gauge::with_cells(0),
        PerCpu::with_slots(0, || 0u8),
        InFlight::new(0),
        Semaphore::new(0),
        ShardedMap::<u64, u64>::with_shards(0),
        ShardedMap::<u64, u64>::with_capacity(usize::MAX),
        ShardedMap::<u64, u64, _>::with_capacity_and_hasher(usize::MAX, RandomState::new()),
        // The upper bounds.
        Counter::with_cells(65_537),
        Gauge::with_cells(65_537),
        PerCpu::with_slots(65_537, || 0u8),
        ShardedMap::<u64, u64>::with_shards(65_537),
        // The builders, on settings their `try_build` refuses.
        Pool::builder().byte_budget(1).build(Vec::<u8>::new),
        BufferPool::builder()
            .buffer_capacity(2)
            .max_buffer_capacity(1)
            .build(),
        ArenaPool::builder()
            .chunk_bytes(1 << 20)
            .limit_bytes(1 << 16)
            .build(),
        ShardedMap::<u64, u64>::builder().shards(0).build(),
        // Allocations an arena refuses (`ArenaFull`).
        small_arenas().get().alloc([0u8; 8192]),
        small_arenas().get().alloc_str(&"x".repeat(8192)),
        small_arenas().get().alloc_slice_copy(&[0u8; 8192]),
    ];
    let elsewhere: Vec<_> = cases.iter().filter(|(_, file)| file != file!()).collect();
    assert!(elsewhere.is_empty(), "located in the crate: {elsewhere:?}");
    // And the message `PerCpu::with_slots` documents.
    let message = panic::catch_unwind(|| PerCpu::with_slots(65_537, || 0u8))
        .err()
        .and_then(|p| p.downcast_ref::<String>().cloned());
    assert_eq!(
        message.as_deref(),
        Some("PerCpu needs 1 to 65536 slots, not 65537")
    );
}
