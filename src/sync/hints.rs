//! A thread's scratch words for per-thread hints: the counter module's add tick and its table
//! of counters seen striped (`counter/adapt.rs` gives them their meaning). Here because every
//! thread-local lives behind the `sync` door (the shim rule in `.ci/run`).

use super::thread_local;
use std::cell::Cell;

/// How many address words a thread's hint table holds.
pub(crate) const HINT_WORDS: usize = 8;

/// A thread's hint words. Plain cells: only their thread touches them.
pub(crate) struct ThreadHints {
    /// A wrapping tick.
    pub(crate) tick: Cell<u32>,
    /// Addresses, direct-mapped by their user.
    pub(crate) words: [Cell<usize>; HINT_WORDS],
}

#[cfg(not(loom))]
thread_local! {
    // `const`, no destructor: readable during thread teardown, no lazy-init check per access.
    static HINTS: ThreadHints = const {
        ThreadHints {
            tick: Cell::new(0),
            words: [const { Cell::new(0) }; HINT_WORDS],
        }
    };
}

#[cfg(loom)]
thread_local! {
    static HINTS: ThreadHints = ThreadHints {
        tick: Cell::new(0),
        words: std::array::from_fn(|_| Cell::new(0)),
    };
}

/// Runs `f` on the calling thread's hints; `None` once they are torn down (loom only: std's are
/// `const` without a destructor and stay readable).
#[inline(always)]
pub(crate) fn with_thread_hints<R>(f: impl FnOnce(&ThreadHints) -> R) -> Option<R> {
    HINTS.try_with(f).ok()
}
