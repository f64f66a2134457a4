//! The permits a [`Semaphore`] grants: RAII values that give their weight back on drop, or
//! remove it from the semaphore for good with `forget`. [`Permit`] borrows the semaphore;
//! [`OwnedPermit`] holds an `Arc` to it and is made from a `Permit` without releasing in
//! between, so both come from the same acquire code.

use super::Semaphore;
use crate::sync::Arc;
use std::fmt;
use std::mem;

/// Permits held from a [`Semaphore`]; they go back when this is dropped.
///
/// From [`acquire`](Semaphore::acquire), [`try_acquire`](Semaphore::try_acquire) or
/// [`acquire_timeout`](Semaphore::acquire_timeout).
///
/// # When to use
/// When the permit is dropped in the scope that took it, scoped threads included.
///
/// # When not to use
/// To move a permit into `std::thread::spawn` or store it beside its work, take an
/// [`OwnedPermit`] from an `Arc`'d semaphore instead.
///
/// # Examples
/// ```
/// let sem = thrifty::limit::Semaphore::new(3);
/// let permit = sem.try_acquire(2).unwrap();
/// assert_eq!((permit.weight(), sem.available()), (2, 1));
/// drop(permit);
/// assert_eq!(sem.available(), 3);
/// ```
///
/// # Allocation and cost
/// Dropping it is one atomic add, plus the semaphore's lock and a wake-up of the waiters it
/// grants if anyone waits; no allocation, unless it wakes more than 4 waiters at once (a permit
/// of 8 freeing room for eight of 1), which it gathers in a heap buffer for that call.
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

    /// Removes these permits from the semaphore for good instead of giving them back:
    /// [`total`](Semaphore::total) shrinks by [`weight`](Permit::weight) and
    /// [`available`](Semaphore::available) does not grow.
    ///
    /// # When to use
    /// To shrink a semaphore while it runs, when what a permit stood for is gone for good (a
    /// connection that will not be replaced, memory handed over elsewhere). There is no way to
    /// add permits back. Requests heavier than the new total fail with `InsufficientCapacity`,
    /// those already waiting too (they wake to fail rather than wait for ever); a total of 0
    /// grants only requests of weight 0.
    ///
    /// # Cost
    /// One lock, and a wake-up of the waiters it makes too heavy, if any; no allocation
    /// (`tests/alloc_limit.rs`).
    ///
    /// # Examples
    /// ```
    /// use thrifty::limit::{AcquireError, InsufficientCapacity, Semaphore};
    ///
    /// let connections = Semaphore::new(3);
    /// let broken = connections.acquire(1).unwrap();
    /// broken.forget(); // that connection is gone: two are left
    /// assert_eq!((connections.total(), connections.available()), (2, 2));
    /// let err = connections.acquire(3).unwrap_err(); // could never be granted now
    /// let over = InsufficientCapacity { requested: 3, capacity: 2 };
    /// assert_eq!(err, AcquireError::InsufficientCapacity(over));
    /// ```
    pub fn forget(self) {
        let (semaphore, weight) = (self.semaphore, self.weight);
        // Not dropped: its drop would give the weight back.
        mem::forget(self);
        semaphore.forget_permits(weight);
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
///
/// # When not to use
/// When the permit is dropped in the scope that took it, scoped threads
/// (`std::thread::scope`) included: the borrowing [`Permit`] is enough and skips the `Arc`'s
/// count.
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
///
/// # Allocation
/// As a [`Permit`]'s (`tests/alloc_limit.rs`); the drop that lets go of the last `Arc` also
/// frees the semaphore.
///
/// # Cost
/// A [`Permit`]'s, plus one atomic increment of the `Arc`'s count on acquire and one decrement
/// on drop (`cargo bench --bench limit -- 'limit/semaphore'` has both side by side).
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

    /// Removes these permits from the semaphore for good, as [`Permit::forget`] does, and lets
    /// go of this permit's reference to the semaphore.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use thrifty::limit::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(4));
    /// let permit = sem.acquire_owned(1).unwrap();
    /// std::thread::spawn(move || permit.forget()).join().unwrap();
    /// assert_eq!((sem.total(), sem.available(), Arc::strong_count(&sem)), (3, 3, 1));
    /// ```
    pub fn forget(mut self) {
        self.semaphore.forget_permits(self.weight);
        // Nothing left to give back: the drop below only lets go of the `Arc`.
        self.weight = 0;
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        // Released before the `Arc` field drops: the semaphore is alive here. A weight of 0
        // (a forgotten permit) releases nothing.
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
