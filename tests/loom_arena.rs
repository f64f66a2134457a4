//! loom models of `thrifty::arena`: arenas taken and returned across threads, and an owned
//! guard that outlives the pool. The pooling itself is `pool::Pool`'s, modelled in
//! `loom_pool.rs`; these check what the arena adds (settling on return, reset on get, the
//! counts) in the interleavings of its users.
//!
//! loom sees none of an arena's own memory (bumpalo's chunks, the arena's plain cells), and a
//! request makes no loom-visible operation between its allocations and its reads, so two
//! holders of one arena would not interleave there: these models cannot see one arena held by
//! two guards at once. What they check of the hand-over is that an arena comes reset
//! (`handed out dirty`), and the pool's counts.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom_arena`
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use thrifty::arena::{ArenaGuard, ArenaGuardOwned, ArenaPool};

#[path = "common/loom.rs"]
mod loom_model;

fn model(f: impl Fn() + Sync + Send + 'static) {
    loom_model::model(f);
}

fn pool(capacity: usize) -> Arc<ArenaPool> {
    Arc::new(
        ArenaPool::builder()
            .capacity(capacity)
            .chunk_bytes(256)
            .retain_bytes(4096)
            .limit_bytes(8192)
            .build(),
    )
}

/// One request: the arena comes reset, holds what was written, and spills past its first chunk
/// when `spill` (so its return rebuilds it).
fn request(arena: &ArenaGuard<'_>, tag: u64, spill: bool) {
    assert_eq!(arena.stats().allocated_bytes, 0, "handed out dirty");
    let n = if spill { 64 } else { 4 };
    let values: Vec<&u64> = (0..n).map(|i| &*arena.alloc(tag + i)).collect();
    for (i, v) in values.iter().enumerate() {
        // Within this request only (see the module doc): no two allocations overlap, also
        // across the spill into a new chunk.
        assert_eq!(**v, tag + i as u64, "one allocation overwrote another");
    }
}

fn owned_request(arena: &ArenaGuardOwned, tag: u64) {
    assert_eq!(arena.stats().allocated_bytes, 0, "handed out dirty");
    let v = arena.alloc(tag);
    assert_eq!(*arena.alloc_str("x"), *"x");
    assert_eq!(*v, tag);
}

/// Every arena made is retained, on loan, or counted as dropped: none lost, none twice.
fn check_counts(arenas: &ArenaPool, gets: u64) {
    let s = arenas.stats();
    assert_eq!(s.created + s.reused, gets, "{s:?}");
    assert_eq!(s.retained as u64, s.created - s.dropped, "{s:?}");
    assert!(s.retained <= arenas.capacity(), "{s:?}");
    assert!(s.retained_bytes <= arenas.capacity() * 4096, "{s:?}");
}

#[test]
fn loom_arenas_taken_and_returned_across_threads() {
    model(|| {
        let arenas = pool(2);
        let a = arenas.clone();
        let t = thread::spawn(move || {
            request(&a.get(), 100, true);
            request(&a.get(), 200, false);
        });
        request(&arenas.get(), 300, false);
        t.join().unwrap();
        check_counts(&arenas, 3);
    });
}

#[test]
fn loom_two_arenas_held_while_another_thread_returns() {
    model(|| {
        let arenas = pool(1);
        let a = arenas.clone();
        let t = thread::spawn(move || request(&a.get(), 10, true));
        {
            let x = arenas.get();
            let y = arenas.get();
            request(&x, 20, false);
            request(&y, 30, false);
        } // two returns to a pool of one: one is dropped
        t.join().unwrap();
        check_counts(&arenas, 3);
    });
}

#[test]
fn loom_owned_guard_returned_on_another_thread() {
    model(|| {
        let arenas = pool(2);
        let g = ArenaPool::get_owned(&arenas);
        let t = thread::spawn(move || owned_request(&g, 1));
        request(&arenas.get(), 2, false);
        t.join().unwrap();
        check_counts(&arenas, 2);
    });
}

#[test]
fn loom_owned_guard_outlives_the_pool() {
    model(|| {
        let arenas = pool(1);
        let g = ArenaPool::get_owned(&arenas);
        let t = thread::spawn(move || {
            owned_request(&g, 7);
            drop(g);
        });
        drop(arenas);
        // Whichever side lets go last drops the pool. What this checks is loom's own: the
        // pool's `Arc` is freed once, in every interleaving (a leak or a second free fails the
        // model). The arena inside it is plain memory that loom does not track.
        t.join().unwrap();
    });
}
