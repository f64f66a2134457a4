//! The pool's gate: closed while a reclaim holds every cache (the protocol is in `local.rs`),
//! and the tickets' epoch (`ticket.rs`).

use super::ticket::FIRST_EPOCH;
use crate::sync::{fence, AtomicU64, AtomicUsize, Ordering};

/// The pool's gate: [`Gate::CLOSED`] is set while a reclaim holds the caches, so owners stay
/// out. On its own line: every get and put reads it, a reclaim alone writes it.
#[derive(Debug)]
pub(super) struct Gate {
    /// `open`, or `open | CLOSED` while a reclaim runs.
    pub(super) closed: AtomicUsize,
    /// The value of `closed` while no reclaim runs: 0 where the owner's fast paths may use
    /// [`fence::light_fast`], else [`Gate::SLOW`], which no fast path ever sees as open, so
    /// every get and put takes its slow path, whose [`Local::enter`] takes the full fence. One
    /// load and one test then serve both questions (is a reclaim running, which fence).
    pub(super) open: usize,
    /// `sync::fence::asymmetric()`, copied when the pool was built, for the slow paths'
    /// [`fence::light_as`].
    pub(super) asymmetric: bool,
    /// The tickets' epoch (`ticket.rs`): written by a full reclaim that revokes tickets, read
    /// in sections. On this line because every section that issues or redeems one has just
    /// read `closed`.
    pub(super) epoch: AtomicU64,
    /// How many reclaims for room have run (a return found the budget full): owners that see
    /// it move pause issuing tickets and growing reservations (`ticket.rs`). A hint, written
    /// under the reclaim mutex, read in sections.
    pub(super) pause_epoch: AtomicU64,
}

impl Gate {
    /// The bit a reclaim sets.
    pub(super) const CLOSED: usize = 1;
    /// The bit that keeps owners off their fast paths for the pool's life.
    pub(super) const SLOW: usize = 2;

    pub(super) fn new() -> Self {
        let open = if fence::light_fast_suffices() {
            0
        } else {
            Self::SLOW
        };
        Self {
            closed: AtomicUsize::new(open),
            open,
            asymmetric: fence::asymmetric(),
            epoch: AtomicU64::new(FIRST_EPOCH),
            pause_epoch: AtomicU64::new(0),
        }
    }

    /// The tickets' epoch, for a section or a holder of the reclaim mutex.
    #[inline(always)]
    pub(super) fn epoch(&self) -> u64 {
        // Relaxed: the gate's Acquire load that opened the section, or the mutex, orders this
        // after the reclaim that wrote it.
        self.epoch.load(Ordering::Relaxed)
    }

    /// `pause_epoch` (a hint: Relaxed).
    #[inline(always)]
    pub(super) fn pause_epoch(&self) -> u64 {
        // Relaxed: only decides whether an owner issues tickets; any value is safe.
        self.pause_epoch.load(Ordering::Relaxed)
    }
}
