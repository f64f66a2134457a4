//! The table of threads' hot words: one word per tracked slot that its thread's hints hold
//! (`hints.rs`), which another thread may overwrite. The counter keeps in it the state word of
//! the striped counter a thread last found its cell in, and a counter that frees its blocks
//! (`compact`, drop) voids every word naming one of them, so no thread takes a block allocated
//! later at the same address for the one it remembered (`counter/adapt.rs`).
//!
//! A thread registers its word under its slot the first time it fills it, and its slot claim
//! takes it out when it ends (`slot.rs`), before the thread's locals are freed; the table's lock
//! is held by both and by every walk, so a walk never reaches a word whose thread is gone.
//! Under loom a word is a share (`std::sync::Arc`) that the table holds too: loom takes a
//! thread's locals out and drops them in an order of its own, so the hints can be gone before
//! the claim's destructor runs.

use super::{AtomicU64, Mutex, Ordering, TRACKED_SLOTS};

/// A thread's hot word as its hints hold it: inline, or under loom a share (see the module doc).
#[cfg(not(loom))]
pub(crate) type HotWord = AtomicU64;
/// A thread's hot word as its hints hold it: inline, or under loom a share (see the module doc).
#[cfg(loom)]
pub(crate) type HotWord = std::sync::Arc<AtomicU64>;

/// What the table holds for one slot: the registered word, if any.
#[cfg(not(loom))]
struct Entry(Option<std::ptr::NonNull<AtomicU64>>);

// SAFETY: the pointer is only dereferenced under the table's lock, while the thread it belongs to
// is registered and so alive (its claim takes the entry out, under the lock, before the thread's
// locals are freed); the word it names is an atomic, shared between threads by design.
#[cfg(not(loom))]
unsafe impl Send for Entry {}

/// What the table holds for one slot: the registered word, if any.
#[cfg(loom)]
struct Entry(Option<HotWord>);

/// The words of the registered slots, and how many slots from 0 a walk must look at.
struct Table {
    words: [Entry; TRACKED_SLOTS],
    len: usize,
}

/// The table: one per process (in `slot.rs`'s shared state).
pub(crate) struct HotWords {
    table: Mutex<Table>,
}

impl std::fmt::Debug for HotWords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotWords").finish_non_exhaustive()
    }
}

impl HotWords {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            table: Mutex::new(Table {
                words: [const { Entry(None) }; TRACKED_SLOTS],
                len: 0,
            }),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            table: Mutex::new(Table {
                words: std::array::from_fn(|_| Entry(None)),
                len: 0,
            }),
        }
    }

    /// Registers `word` as the hot word of the thread holding the tracked `slot`.
    pub(crate) fn register(&self, slot: usize, word: &HotWord) {
        let mut t = self.table.lock();
        #[cfg(not(loom))]
        let entry = Entry(Some(std::ptr::NonNull::from(word)));
        #[cfg(loom)]
        let entry = Entry(Some(std::sync::Arc::clone(word)));
        t.words[slot] = entry;
        t.len = t.len.max(slot + 1);
    }

    /// Takes out the word registered under `slot`, if any (its claim is ending).
    pub(crate) fn unregister(&self, slot: usize) {
        if slot < TRACKED_SLOTS {
            self.table.lock().words[slot] = Entry(None);
        }
    }

    /// How many slots that `which` accepts have a word registered (under the lock).
    #[cfg(test)]
    pub(crate) fn registered(&self, which: impl Fn(usize) -> bool) -> usize {
        let t = self.table.lock();
        (0..t.len)
            .filter(|&slot| t.words[slot].0.is_some() && which(slot))
            .count()
    }

    /// Sets every registered word whose value `stale` accepts to `to`.
    pub(crate) fn void(&self, stale: impl Fn(u64) -> bool, to: u64) {
        let t = self.table.lock();
        for entry in &t.words[..t.len] {
            let Some(word) = &entry.0 else { continue };
            // SAFETY: registered, so its thread is alive while we hold the lock (module doc).
            #[cfg(not(loom))]
            let word: &AtomicU64 = unsafe { word.as_ref() };
            // Relaxed: the caller's exclusive access to what it frees orders this before any
            // later use of the word's value by its thread (the counter module's `compact`).
            let v = word.load(Ordering::Relaxed);
            if stale(v) {
                // A failure: the thread refilled its word meanwhile, with a value of its own.
                let _ = word.compare_exchange(v, to, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
    }
}
