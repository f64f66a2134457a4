//! Event counts: each cache's, written by its owner alone, and the shared store's.

use crate::sync::{AtomicU64, Ordering};

/// One statistic, written by one thread at a time.
#[derive(Debug, Default)]
pub(super) struct Tally(AtomicU64);

impl Tally {
    /// Adds one where the caller is the only writer (a cache's owner): a load and a store, no
    /// locked instruction.
    #[inline(always)]
    pub(super) fn bump_owned(&self) {
        // Relaxed: a statistic; nothing is published through it, and the owner is the only
        // writer, so no increment can be lost.
        self.0
            .store(self.0.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Adds one where any thread may write.
    #[inline]
    pub(super) fn bump(&self) {
        // Relaxed: a statistic; nothing is published through it.
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the value, where a lost update is harmless (a hint, not a statistic).
    #[inline]
    pub(super) fn set(&self, v: u64) {
        // Relaxed: a hint; nothing is published through it.
        self.0.store(v, Ordering::Relaxed);
    }

    /// The current value (a snapshot that may lag concurrent writers).
    pub(super) fn get(&self) -> u64 {
        // Relaxed: a statistic read for reporting.
        self.0.load(Ordering::Relaxed)
    }
}

/// The event counts `Pool::stats` sums (hits, misses, returned, discarded, reclaims), and the
/// pacing state kept beside them.
#[derive(Debug, Default)]
pub(super) struct Tallies {
    pub(super) hits: Tally,
    pub(super) misses: Tally,
    pub(super) returned: Tally,
    pub(super) discarded: Tally,
    /// Reclaims run; bumped under the reclaim mutex, in the shared store's tallies only.
    pub(super) reclaims: Tally,
    /// Not a statistic: gets that reached the factory while the budget was full, which pace
    /// `take.rs`'s full reclaim. Per cache, so threads that miss at once do not share a line.
    pub(super) full_misses: Tally,
    /// Not a statistic: the pacing of the owner's passes over every cache (`pace.rs`).
    pub(super) dry_looks: Tally,
    /// Not a statistic: the `misses` count from which the owner's gets may take live threads'
    /// stacks again while the budget has room (`take.rs`).
    pub(super) grown_at: Tally,
}
