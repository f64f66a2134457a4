//! The permits a [`Semaphore`] grants: RAII values that give their weight back on drop.

use super::Semaphore;
use std::fmt;

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
