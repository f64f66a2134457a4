//! `ArenaPool::trim` and `clear`: "Drops retained arenas until at most `keep` remain, reaching
//! every thread's cache" / "Drops every retained arena, reaching every thread's cache", with the
//! arenas retained in the caches of other threads that are still alive (the unit test retains
//! them on one thread only).

#![cfg(not(loom))]

use std::sync::Barrier;
use thrifty::arena::ArenaPool;

const THREADS: usize = 4;

#[test]
fn trim_and_clear_reach_the_caches_of_live_threads() {
    let arenas = ArenaPool::builder().capacity(16).build();
    let got = Barrier::new(THREADS);
    let (filled, checked) = (Barrier::new(THREADS + 1), Barrier::new(THREADS + 1));
    let (filled, trimmed, cleared) = std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                // Two arenas at once, so one sits in the hot slot and one in the stack.
                let (a, b) = (arenas.get(), arenas.get());
                a.alloc_str("held");
                b.alloc_slice_copy(&[1u8; 100]);
                got.wait(); // every thread holds two distinct arenas
                drop((a, b));
                filled.wait();
                checked.wait(); // alive while the main thread trims and clears
            });
        }
        filled.wait();
        // Read under the barrier, asserted after it: a failed assert must not leave the
        // threads waiting.
        let filled = arenas.stats();
        arenas.trim(3);
        let trimmed = arenas.stats();
        arenas.clear();
        let cleared = arenas.stats();
        checked.wait();
        (filled, trimmed, cleared)
    });
    assert_eq!(
        (filled.created, filled.retained),
        (2 * THREADS as u64, 2 * THREADS),
        "{filled:?}"
    );
    assert!(trimmed.retained <= 3, "trim(3) left {trimmed:?}");
    assert_eq!(
        (cleared.retained, cleared.retained_bytes),
        (0, 0),
        "clear left {cleared:?}"
    );
}
