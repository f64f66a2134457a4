//! A thread's memory of the last slot it claimed in each of the last few registries of slots it
//! used (the `CowMap`'s hazard slots, `map/cow/hazard.rs`): the registry's id and the slot's
//! address, in a small table indexed by the id. A registry tries that slot first, so threads that
//! read the same maps each come back to a slot of their own instead of all racing for the first
//! free one, whose line would then pass between their cores on every claim.
//!
//! A hint, never a claim: the slot may be taken by another thread meanwhile (its claim then
//! fails and the registry looks on), and the registry it names may be gone. Its user asks by its
//! own id and reads through the address only if the entry holds that id; ids are unique for the
//! process's life ([`unique_id`]), so an address is only read while its registry is alive.
//! [`WAYS`] entries per thread, whatever the number of registries: a thread that uses more, or
//! two whose ids share an entry, by turns, finds another registry named there and looks as it
//! would without the hint. It holds nothing (no slot is kept for the thread), so there is nothing
//! to clear; `const`-initialised, with no destructor: reading it never allocates and works during
//! thread teardown.

use super::thread_local;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many registries a thread's hints hold, each in the entry its id picks (ids are handed out
/// in turn, so that many registries made one after another never share an entry).
pub(crate) const WAYS: usize = 8;

/// An entry that names no registry (no registry has id 0).
const NONE: (u64, *const ()) = (0, std::ptr::null());

type Entries = [Cell<(u64, *const ())>; WAYS];

#[cfg(not(loom))]
thread_local! {
    static LAST: Entries = const { [const { Cell::new(NONE) }; WAYS] };
}

#[cfg(loom)]
thread_local! {
    static LAST: Entries = std::array::from_fn(|_| Cell::new(NONE));
}

/// The entry of the registry `id`.
fn entry(entries: &Entries, id: u64) -> &Cell<(u64, *const ())> {
    // The remainder is below `WAYS`, so the cast loses nothing.
    &entries[(id % WAYS as u64) as usize]
}

/// The slot the calling thread claimed last in the registry `id`, if its entry still names that
/// registry (none during teardown).
#[inline(always)]
pub(crate) fn last_slot(id: u64) -> Option<*const ()> {
    let (named, slot) = LAST.try_with(|l| entry(l, id).get()).unwrap_or(NONE);
    (named == id).then_some(slot)
}

/// Remembers `slot` as the calling thread's last slot in the registry `id`, in place of whatever
/// registry its entry named.
#[inline(always)]
pub(crate) fn set_last_slot(id: u64, slot: *const ()) {
    let _ = LAST.try_with(|l| entry(l, id).set((id, slot)));
}

/// An id no other call returns in this process (never 0): for a registry to name itself in
/// [`set_last_slot`]. A plain relaxed atomic, even under loom: ids need only be unique, and
/// nothing is published through them.
pub(crate) fn unique_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
