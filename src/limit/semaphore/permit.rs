//! The permits a [`Semaphore`] grants: RAII values that give their weight back on drop.
//! [`Permit`] borrows the semaphore; [`OwnedPermit`] holds an `Arc` to it and is made from a
//! `Permit` without releasing in between, so both come from the same acquire code.

use super::Semaphore;
use crate::sync::Arc;
use std::fmt;
use std::mem;

/// Permits held from a [`Semaphore`]; they go back when this is dropped.
///
/// From [`acquire`](Semaphore::acquire), [`try_acquire`](Semaphore::try_acquire) or
/// [`acquire_timeout`](Semaphore::acquire_timeout). Dropping it takes the semaphore's lock once,
/// and wakes the waiters if any; no allocation.
///
/// # Examples
/// ```
/// let sem = thrifty::limit::Semaphore::new(3);
/// let permit = sem.try_acquire(2).unwrap();
/// assert_eq!((permit.weight(), sem.available()), (2, 1));
/// drop(permit);
/// assert_eq!(sem.available(), 3);
/// ```
#[must_use = "the permits go back as soon as the Permit is dropped"]
pub struct Permit<'a> {
    semaphore: &'a Semaphore,
    weight: u32,
}

impl<'a> Permit<'a> {
    /// A permit for `weight` permits just taken from `semaphore`.
    pub(super) fn new(semaphore: &'a Semaphore, weight: u32) -> Self {
        Self { semaphore, weight }
    }

    /// The same permits, held from now on by an [`OwnedPermit`] on `semaphore`, the `Arc` this
    /// permit's semaphore lives in. Nothing is released in between, so no waiter can take them.
    pub(super) fn into_owned(self, semaphore: &Arc<Semaphore>) -> OwnedPermit {
        debug_assert!(
            std::ptr::eq(self.semaphore, &**semaphore),
            "another semaphore"
        );
        let weight = self.weight;
        // Not dropped: its drop would release the weight, which the owned permit now holds.
        mem::forget(self);
        OwnedPermit {
            semaphore: Arc::clone(semaphore),
            weight,
        }
    }

    /// How many permits this holds.
    pub fn weight(&self) -> u32 {
        self.weight
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.semaphore.release(self.weight);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("weight", &self.weight)
            .finish()
    }
}

/// Permits held from an `Arc`'d [`Semaphore`], with a reference to it; they go back when this
/// is dropped.
///
/// From [`acquire_owned`](Semaphore::acquire_owned),
/// [`try_acquire_owned`](Semaphore::try_acquire_owned) or
/// [`acquire_timeout_owned`](Semaphore::acquire_timeout_owned). It borrows nothing (it is
/// `'static`, `Send` and `Sync`), and keeps the semaphore alive until it is dropped, even if
/// every other `Arc` to the semaphore is gone.
///
/// # When to use
/// When the permit must outlive the scope that took it: moved into `std::thread::spawn` or a
/// thread pool's job, stored in a struct beside the buffer or connection it pays for, sent
/// down a channel with the work.
/// # When not to use
/// When the permit is dropped in the scope that took it, scoped threads
/// (`std::thread::scope`) included: the borrowing [`Permit`] is enough and skips the `Arc`'s
/// count.
/// # Cost
/// A [`Permit`]'s, plus one atomic increment of the `Arc`'s count on acquire and one decrement
/// on drop: an acquire and release cost about 1.5x a borrowed one's, alone or with two threads
/// on the semaphore (`cargo bench --bench limit -- 'limit/semaphore'`). No allocation
/// (`tests/alloc_limit.rs`); the drop that lets go of the last `Arc` also frees the semaphore.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use thrifty::limit::Semaphore;
///
/// let sem = Arc::new(Semaphore::new(3));
/// let permit = sem.acquire_owned(2).unwrap();
/// assert_eq!(sem.available(), 1);
/// let worker = std::thread::spawn(move || {
///     // ... the work, holding the permits ...
///     permit.weight()
/// }); // the permits go back when the thread drops them
/// assert_eq!(worker.join().unwrap(), 2);
/// assert_eq!(sem.available(), 3);
/// ```
#[must_use = "the permits go back as soon as the OwnedPermit is dropped"]
pub struct OwnedPermit {
    semaphore: Arc<Semaphore>,
    weight: u32,
}

impl OwnedPermit {
    /// How many permits this holds.
    pub fn weight(&self) -> u32 {
        self.weight
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        // Released before the `Arc` field drops: the semaphore is alive here.
        self.semaphore.release(self.weight);
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("weight", &self.weight)
            .finish()
    }
}
