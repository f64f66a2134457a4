//! A thread's scratch words for per-thread hints: the counter module's add tick, its hot entry
//! (the striped counter whose cell the thread found last), its memo of the cells the thread owns
//! in striped counters and its filter of the counters it saw striped (`counter/adapt.rs` gives
//! them their meaning). Here because every thread-local lives behind the `sync` door (the shim
//! rule in `.ci/run`). One word, the hot entry's state, is registered in `hot.rs`'s table, where
//! other threads may void it.

use super::hot::HotWord;
use super::thread_local;
use std::cell::Cell;

/// How many slots of four words a thread's memo holds.
pub(crate) const MEMO_SLOTS: usize = 16;

/// How many 64-bit words a thread's filter holds (512 bits).
pub(crate) const SEEN_WORDS: usize = 8;

/// A thread's hint words. Plain cells: only their thread touches them.
pub(crate) struct ThreadHints {
    /// The user's hot entry's key; 0 for no entry, where it starts.
    pub(crate) hot_key: Cell<u64>,
    /// The hot entry's check word: the only word here other threads write (an atomic, in the
    /// table of `hot.rs` once registered), to void the entry. Starts 0.
    pub(crate) hot_state: HotWord,
    /// Whether `hot_state` is registered. Starts false.
    pub(crate) hot_registered: Cell<bool>,
    /// Set while its user may skip `seen` and `memo` for any key but `hot_key`'s: set when the
    /// user found `seen` empty and `memo` empty or holding that key's entry only, cleared when it
    /// writes either otherwise. Starts false, though both start empty: the user's choice (the
    /// counter: a fresh thread reads after its adds until its first 1 024 adds end).
    pub(crate) skip: Cell<bool>,
    /// The hot entry's value, a pointer (with its provenance) to a word of its user's; starts
    /// null.
    pub(crate) hot_cell: Cell<*const super::AtomicU64>,
    /// A wrapping tick; starts at its user's [`FIRST_TICK`](crate::counter::FIRST_TICK).
    pub(crate) tick: Cell<u32>,
    /// A random state for the tick's user; in the tick's padding. Starts at [`SEED`].
    pub(crate) seed: Cell<u32>,
    /// A bit filter its user sets and clears; each bit starts 0.
    pub(crate) seen: [Cell<u64>; SEEN_WORDS],
    /// Four words per slot, direct-mapped by their user; each starts 0.
    /// `u64` on every target: the counter keeps a 64-bit claim token in one of them.
    pub(crate) memo: [[Cell<u64>; 4]; MEMO_SLOTS],
}

/// Where each thread's `seed` starts (a Weyl sequence: any start will do; its user tells a
/// thread that has not drawn yet by it).
pub(crate) const SEED: u32 = 0x9e37_79b9;

#[cfg(not(loom))]
thread_local! {
    // `const`, no destructor: readable during thread teardown, no lazy-init check per access.
    static HINTS: ThreadHints = const {
        ThreadHints {
            hot_key: Cell::new(0),
            hot_state: HotWord::new(0),
            hot_registered: Cell::new(false),
            skip: Cell::new(false),
            hot_cell: Cell::new(std::ptr::null()),
            tick: Cell::new(crate::counter::FIRST_TICK),
            seed: Cell::new(SEED),
            seen: [const { Cell::new(0) }; SEEN_WORDS],
            memo: [const { [const { Cell::new(0) }; 4] }; MEMO_SLOTS],
        }
    };
}

#[cfg(loom)]
thread_local! {
    static HINTS: ThreadHints = ThreadHints {
        hot_key: Cell::new(0),
        hot_state: HotWord::new(super::AtomicU64::new(0)),
        hot_registered: Cell::new(false),
        skip: Cell::new(false),
        hot_cell: Cell::new(std::ptr::null()),
        tick: Cell::new(crate::counter::FIRST_TICK),
        seed: Cell::new(SEED),
        seen: std::array::from_fn(|_| Cell::new(0)),
        memo: std::array::from_fn(|_| std::array::from_fn(|_| Cell::new(0))),
    };
}

/// Runs `f` on the calling thread's hints; `None` once they are torn down (loom only: std's are
/// `const` without a destructor and stay readable).
#[inline(always)]
pub(crate) fn with_thread_hints<R>(f: impl FnOnce(&ThreadHints) -> R) -> Option<R> {
    HINTS.try_with(f).ok()
}

/// Zeroes the calling thread's memo: its user's "nothing remembered". The thread's slot claim
/// calls it when it ends, since the counter's memo holds the claim's token.
pub(crate) fn forget_memo() {
    let _ = with_thread_hints(|l| {
        l.memo.iter().flatten().for_each(|w| w.set(0));
        l.hot_key.set(0);
        l.hot_registered.set(false);
        l.skip.set(false);
    });
}

// The counter module's docs give a thread's hint words as 616 bytes.
#[cfg(all(not(loom), target_pointer_width = "64"))]
const _: () = assert!(std::mem::size_of::<ThreadHints>() == 616);

#[cfg(all(test, not(loom)))]
thread_local! {
    static HOT_ADD_PAUSE: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        const { std::cell::RefCell::new(None) };
}

/// Sets what the calling thread's next hot add runs between its read of the hot entry and its
/// load of the counter's state word (unit tests only: a window another thread acts in).
#[cfg(all(test, not(loom)))]
pub(crate) fn set_hot_add_pause(pause: Box<dyn FnOnce()>) {
    HOT_ADD_PAUSE.with(|p| *p.borrow_mut() = Some(pause));
}

/// Runs (once) the pause [`set_hot_add_pause`] set on this thread, if any.
#[cfg(all(test, not(loom)))]
pub(crate) fn hot_add_pause() {
    // `try_with`: a hot add from another thread-local's destructor may run after this one's.
    if let Some(pause) = HOT_ADD_PAUSE
        .try_with(|p| p.borrow_mut().take())
        .ok()
        .flatten()
    {
        pause();
    }
}
