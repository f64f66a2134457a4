//! The system allocator refusing an arena's chunk: the error says so, and blames `limit_bytes`
//! only where the limit can have refused; a first chunk larger than it serves is halved until
//! it is served.
//!
//! A global allocator that refuses the calling thread's blocks above a size while that thread
//! asks it to stands in for a machine out of memory.

#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use thrifty::arena::{ArenaFull, ArenaPool};

thread_local! {
    /// The largest block the allocator serves this thread (`usize::MAX`: all). A `const`
    /// thread-local without `Drop`: reading it allocates nothing.
    static SERVES_UP_TO: Cell<usize> = const { Cell::new(usize::MAX) };
    /// How many blocks the allocator refused this thread.
    static REFUSED: Cell<usize> = const { Cell::new(0) };
}

/// `System`, refusing blocks larger than this thread's [`SERVES_UP_TO`].
struct Refusing;

// SAFETY: every method forwards to `System`'s, with the caller's arguments, or returns null,
// which `GlobalAlloc` allows for any allocation it cannot serve.
unsafe impl GlobalAlloc for Refusing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > SERVES_UP_TO.with(Cell::get) {
            REFUSED.with(|n| n.set(n.get() + 1));
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on: `ptr` came from `System.alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Refusing = Refusing;

/// Runs `f` while the allocator refuses this thread's blocks over 64 KiB.
fn refusing<R>(f: impl FnOnce() -> R) -> R {
    SERVES_UP_TO.with(|c| c.set(64 << 10));
    let r = f();
    SERVES_UP_TO.with(|c| c.set(usize::MAX));
    r
}

#[test]
fn a_chunk_the_system_refuses_is_not_blamed_on_the_limit() {
    let src = vec![7u8; 1 << 20];
    // No limit to blame: the message names the system allocator alone.
    let arenas = ArenaPool::builder().limit_bytes(usize::MAX).build();
    let arena = arenas.get();
    let err = refusing(|| arena.try_alloc_slice_copy(&src)).unwrap_err();
    assert_eq!(
        err,
        ArenaFull {
            requested: 1 << 20,
            limit: usize::MAX
        }
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("arena full: an allocation of 1048576 bytes"),
        "{msg}"
    );
    assert!(msg.contains("system allocator refused"), "{msg}");
    assert!(!msg.contains("does not fit"), "{msg}");
    // The panicking form panics with it and the advice. Silently: the default hook's backtrace
    // (under `RUST_BACKTRACE`) would need blocks the allocator refuses.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let panic = refusing(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            arena.alloc_slice_copy(&src);
        }))
    });
    std::panic::set_hook(hook);
    let panic = panic.unwrap_err();
    let advised = format!("{msg} (use the try_ form to handle it)");
    assert_eq!(panic.downcast_ref::<String>(), Some(&advised));
    // The refusal changed nothing: with the allocator serving again, the same request fits.
    assert_eq!(
        arena.try_alloc_slice_copy(&src).map(|s| s.len()),
        Ok(1 << 20)
    );
    drop(arena);

    // Under a limit the request fits below, either may have refused: the message names both.
    let arenas = ArenaPool::builder().limit_bytes(64 << 20).build();
    let arena = arenas.get();
    let msg = refusing(|| arena.try_alloc_slice_copy(&src))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("limit_bytes (67108864)"), "{msg}");
    assert!(msg.contains("system allocator refused"), "{msg}");

    // A request over the limit is the limit's alone: the allocator was never asked.
    let arenas = ArenaPool::builder().limit_bytes(512 << 10).build();
    let arena = arenas.get();
    let before = REFUSED.with(Cell::get);
    let msg = refusing(|| arena.try_alloc_slice_copy(&src))
        .unwrap_err()
        .to_string();
    assert_eq!(REFUSED.with(Cell::get), before, "the allocator was asked");
    assert_eq!(
        msg,
        "arena full: an allocation of 1048576 bytes does not fit under the arena's limit_bytes \
         (524288)"
    );
}

/// `chunk_bytes(usize::MAX)` (with the limit and retain lifted so `build` accepts it) asks for
/// a first chunk no allocator serves: as `chunk_bytes` documents, the arena halves it until one
/// is served, so the first `get` returns a chunk about as large as the allocator serves (here
/// 64 KiB), and an allocation fits in it: no hang, no panic. The refusals are bounded: halvings
/// down to 64 pages (under 50 from `usize::MAX`), then fine steps of 1/64 (about 90 from 64
/// pages to 16; 133 refusals in all when written).
#[test]
fn a_chunk_of_usize_max_is_halved_until_the_allocator_serves_it() {
    let arenas = ArenaPool::builder()
        .chunk_bytes(usize::MAX)
        .limit_bytes(usize::MAX)
        .retain_bytes(usize::MAX)
        .build();
    REFUSED.with(|n| n.set(0));
    let (held, value) = refusing(|| {
        let arena = arenas.get();
        let value = *arena.alloc(42u64);
        (arena.allocated_bytes(), value)
    });
    let refused = REFUSED.with(Cell::get);
    assert_eq!(value, 42);
    assert!(
        (60 << 10..=64 << 10).contains(&held),
        "a chunk of {held} bytes"
    );
    assert!(
        (1..=150).contains(&refused),
        "{refused} refused allocations"
    );
}
