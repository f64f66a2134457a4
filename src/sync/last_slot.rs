//! A thread's memory of the last slot it claimed in a registry of slots (the `CowMap`'s hazard
//! slots, `map/cow/hazard.rs`): the registry's id and the slot's address. A registry tries that
//! slot first, so threads that read one map each come back to a slot of their own instead of all
//! racing for the first free one, whose line would then pass between their cores on every claim.
//!
//! A hint, never a claim: the slot may be taken by another thread meanwhile (its claim then
//! fails and the registry looks on), and the registry it names may be gone. Its user compares
//! the id with its own before it reads through the address, and ids are unique for the
//! process's life ([`unique_id`]), so an address is only read while its registry is alive.
//! One pair per thread, whatever the number of registries: a thread that reads two maps by turns
//! finds the other map's slot named and looks as it would without the hint. It holds nothing
//! (no slot is kept for the thread), so there is nothing to clear; `const`-initialised, with no
//! destructor: reading it never allocates and works during thread teardown.

use super::thread_local;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// No registry has this id.
const NONE: (u64, *const ()) = (0, std::ptr::null());

#[cfg(not(loom))]
thread_local! {
    static LAST: Cell<(u64, *const ())> = const { Cell::new(NONE) };
}

#[cfg(loom)]
thread_local! {
    static LAST: Cell<(u64, *const ())> = Cell::new(NONE);
}

/// The calling thread's last slot: the id of the registry it was claimed in (0 for none, and
/// during teardown) and its address.
#[inline(always)]
pub(crate) fn last_slot() -> (u64, *const ()) {
    LAST.try_with(Cell::get).unwrap_or(NONE)
}

/// Remembers `slot` as the calling thread's last slot, in the registry `id`.
#[inline(always)]
pub(crate) fn set_last_slot(id: u64, slot: *const ()) {
    let _ = LAST.try_with(|l| l.set((id, slot)));
}

/// An id no other call returns in this process (never 0): for a registry to name itself in
/// [`set_last_slot`]. A plain relaxed atomic, even under loom: ids need only be unique, and
/// nothing is published through them.
pub(crate) fn unique_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
