//! [`Semaphore`]: weighted permits with a FIFO queue of waiters, and its RAII [`Permit`].
//!
//! This file holds the type and its API; `queue.rs` the ticket queue that waiters wait in and
//! the release that wakes them; `permit.rs` the permit that gives its weight back on drop.

use super::{AcquireError, AcquireTimeoutError, InsufficientCapacity, LimitError, TryAcquireError};
use crate::sync::{Condvar, Mutex};
use queue::{State, Stop};
use std::fmt;
use std::time::{Duration, Instant};

mod permit;
mod queue;

pub use permit::Permit;

/// A counting semaphore with weighted requests, served first come, first served.
///
/// Waiters queue in arrival order, and a request that arrives while others wait queues behind
/// them even if permits are free: a large request is never starved by a stream of small ones.
/// [`close`](Semaphore::close) wakes every waiter with an error and refuses new requests;
/// permits already granted stay valid and are returned as usual.
///
/// # When to use
/// Cap the work running at once (connections to a database, jobs holding memory) when callers
/// should *wait* for room, fairly. Weights let a job hold as many permits as it uses (bytes,
/// rows).
/// # When not to use
/// If callers should be refused rather than queue, use [`InFlight`](super::InFlight) (a single
/// atomic, no lock). For a rate over time, use [`TokenBucket`](super::TokenBucket).
/// # Cost
/// One uncontended `parking_lot` lock per acquire and per release; no allocation
/// (`tests/alloc_limit.rs`), except that the waiter queue grows when more threads wait at once
/// than ever before, and keeps that capacity. A release with waiters wakes them all and the
/// head takes its permits; the others sleep again, so many waiters cost `O(waiters)` wake-ups
/// per release. `cargo bench --bench limit -- semaphore` compares it with `Mutex` + `Condvar`.
///
/// # Examples
/// ```
/// use thrifty::limit::Semaphore;
///
/// let connections = Semaphore::new(4);
/// std::thread::scope(|s| {
///     for _ in 0..8 {
///         s.spawn(|| {
///             let _permit = connections.acquire(1).unwrap(); // at most 4 run here at once
///             assert!(connections.available() <= 3);
///         }); // the permit goes back when dropped
///     }
/// });
/// assert_eq!(connections.available(), 4);
/// ```
pub struct Semaphore {
    state: Mutex<State>,
    /// Waiters wait here; notified on every release while someone waits, and on close.
    wake: Condvar,
    /// The permits the semaphore was made with.
    total: u32,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    ///
    /// # Panics
    /// If `permits == 0` (it would refuse everything); [`try_new`](Semaphore::try_new) returns
    /// the error instead.
    pub fn new(permits: u32) -> Self {
        Self::try_new(permits).unwrap_or_else(|e| panic!("Semaphore::new({permits}): {e}"))
    }

    /// A semaphore with `permits` permits.
    ///
    /// # Errors
    /// [`LimitError::ZeroPermits`] if `permits == 0`.
    pub fn try_new(permits: u32) -> Result<Self, LimitError> {
        if permits == 0 {
            return Err(LimitError::ZeroPermits);
        }
        Ok(Self {
            state: Mutex::new(State::new(permits)),
            wake: Condvar::new(),
            total: permits,
        })
    }

    /// Takes `weight` permits if they are free now and nobody is queued; never blocks.
    ///
    /// # Errors
    /// [`TryAcquireError::NoPermits`] if they are not free or earlier waiters are queued;
    /// [`TryAcquireError::Closed`]; [`TryAcquireError::InsufficientCapacity`] if `weight`
    /// is over the semaphore's permits.
    pub fn try_acquire(&self, weight: u32) -> Result<Permit<'_>, TryAcquireError> {
        self.check(weight)
            .map_err(TryAcquireError::InsufficientCapacity)?;
        let mut state = self.state.lock();
        if state.closed {
            return Err(TryAcquireError::Closed);
        }
        if state.take_now(weight) {
            return Ok(Permit::new(self, weight));
        }
        Err(TryAcquireError::NoPermits)
    }

    /// Takes `weight` permits, waiting in line for them.
    ///
    /// # Errors
    /// [`AcquireError::Closed`] if the semaphore is or becomes closed first;
    /// [`AcquireError::InsufficientCapacity`] at once if `weight` is over the semaphore's
    /// permits (it could never be granted).
    pub fn acquire(&self, weight: u32) -> Result<Permit<'_>, AcquireError> {
        self.check(weight)
            .map_err(AcquireError::InsufficientCapacity)?;
        match self.acquire_until(weight, None) {
            Ok(()) => Ok(Permit::new(self, weight)),
            Err(Stop::Closed) => Err(AcquireError::Closed),
            Err(Stop::Timeout) => unreachable!("no deadline"),
        }
    }

    /// Takes `weight` permits, waiting in line for them at most `timeout`.
    ///
    /// # Errors
    /// [`AcquireTimeoutError::Timeout`] if they were not granted in time (the request leaves
    /// the queue, and those behind it move up); otherwise as [`acquire`](Semaphore::acquire).
    pub fn acquire_timeout(
        &self,
        weight: u32,
        timeout: Duration,
    ) -> Result<Permit<'_>, AcquireTimeoutError> {
        self.check(weight)
            .map_err(AcquireTimeoutError::InsufficientCapacity)?;
        // A timeout too large for `Instant` waits without one.
        let deadline = Instant::now().checked_add(timeout);
        self.acquire_until(weight, deadline)
            .map(|()| Permit::new(self, weight))
            .map_err(|stop| match stop {
                Stop::Closed => AcquireTimeoutError::Closed,
                Stop::Timeout => AcquireTimeoutError::Timeout,
            })
    }

    /// Closes the semaphore: every waiter wakes with an error, and later requests fail.
    /// Permits already held stay valid and still come back when dropped.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.wake.notify_all();
    }

    /// Whether [`close`](Semaphore::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Permits free now (a snapshot).
    pub fn available(&self) -> u32 {
        self.state.lock().available
    }

    /// Requests queued now (a snapshot).
    pub fn waiting(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// The permits this semaphore was made with.
    pub fn total(&self) -> u32 {
        self.total
    }

    fn check(&self, weight: u32) -> Result<(), InsufficientCapacity> {
        if weight > self.total {
            return Err(InsufficientCapacity {
                requested: weight,
                capacity: self.total,
            });
        }
        Ok(())
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Semaphore")
            .field("total", &self.total)
            .field("available", &state.available)
            .field("waiting", &state.queue.len())
            .field("closed", &state.closed)
            .finish()
    }
}

#[cfg(test)]
mod tests;
