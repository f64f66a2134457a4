//! What a map's call still holds while it drops what it freed after its lock (a spare key, a
//! removed key, an unused closure, what a write replaced): if one of those `Drop`s panics, each
//! held value is dropped as the panic unwinds, and a panic from its own `Drop` is caught there
//! and let go (the panic hook still runs for it, as for any panic). Escaping, that second panic
//! would abort the process (a panic while unwinding), where the first reaches the caller as it
//! would from a `HashMap`'s call.

use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Holds a value that a call returns (or drops next) while the call drops something before it;
/// dropped with the value still in it only by that drop's panic, as it unwinds (so the value's
/// `Drop` sees a panic in progress, as it would have in the caller: a `MutexGuard` in it is
/// poisoned). Nothing is caught on the normal path: [`into_inner`](Self::into_inner) takes the
/// value back out.
pub(super) struct DroppedQuietly<T>(ManuallyDrop<T>);

impl<T> DroppedQuietly<T> {
    /// Holds `value`.
    #[inline(always)]
    pub(super) fn new(value: T) -> Self {
        DroppedQuietly(ManuallyDrop::new(value))
    }

    /// The value, now the caller's again.
    #[inline(always)]
    pub(super) fn into_inner(self) -> T {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped (nor used again), so the value is taken once and
        // never dropped here.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl<T> Drop for DroppedQuietly<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: a guard is dropped only where `into_inner` did not take its value (that
        // forgets the guard), once.
        let value = unsafe { ManuallyDrop::take(&mut self.0) };
        let _ = catch_unwind(AssertUnwindSafe(|| drop(value)));
    }
}

/// Drops `spare`, then returns `result`: if `spare`'s `Drop` panics, `result` is dropped quietly
/// ([`DroppedQuietly`]) as the panic unwinds.
#[inline(always)]
pub(super) fn drop_then<D, R>(spare: D, result: R) -> R {
    let held = DroppedQuietly::new(result);
    drop(spare);
    held.into_inner()
}

/// Drops `first`, then `second`, then returns `result`: if a `Drop` panics, what was still to
/// come is dropped quietly as it unwinds.
#[inline(always)]
pub(super) fn drop_two_then<A, B, R>(first: A, second: B, result: R) -> R {
    let held = DroppedQuietly::new(result);
    drop(drop_then(first, second));
    held.into_inner()
}
