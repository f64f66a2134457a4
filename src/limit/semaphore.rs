//! [`Semaphore`]: weighted permits with a FIFO queue of waiters, and its RAII [`Permit`].

use super::{AcquireError, AcquireTimeoutError, InsufficientCapacity, LimitError, TryAcquireError};
use crate::sync::{Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

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

/// Everything behind the lock.
struct State {
    /// Permits not held by anyone.
    available: u32,
    closed: bool,
    /// The tickets of queued waiters, oldest first; only the front one may take permits.
    queue: VecDeque<u64>,
    /// The next ticket to hand out.
    next_ticket: u64,
}

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
            state: Mutex::new(State {
                available: permits,
                closed: false,
                queue: VecDeque::new(),
                next_ticket: 0,
            }),
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
        if state.queue.is_empty() && state.available >= weight {
            state.available -= weight;
            return Ok(self.permit(weight));
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
            Ok(permit) => Ok(permit),
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

    fn permit(&self, weight: u32) -> Permit<'_> {
        Permit {
            semaphore: self,
            weight,
        }
    }

    fn acquire_until(&self, weight: u32, deadline: Option<Instant>) -> Result<Permit<'_>, Stop> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(Stop::Closed);
        }
        if state.queue.is_empty() && state.available >= weight {
            state.available -= weight;
            return Ok(self.permit(weight));
        }
        self.wait_in_line(state, weight, deadline)
    }

    /// Queues a ticket and waits until it is at the front with enough permits free.
    #[cold]
    #[inline(never)]
    fn wait_in_line<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        weight: u32,
        deadline: Option<Instant>,
    ) -> Result<Permit<'a>, Stop> {
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push_back(ticket);
        let mut timed_out = false;
        loop {
            if state.closed {
                self.leave(&mut state, ticket);
                return Err(Stop::Closed);
            }
            // Checked before the timeout: permits are granted only under this lock, so a
            // timeout that races a release still takes the permits it was woken for.
            if state.queue.front() == Some(&ticket) && state.available >= weight {
                state.queue.pop_front();
                state.available -= weight;
                // The next in line may fit in what is left.
                if !state.queue.is_empty() && state.available > 0 {
                    self.wake.notify_all();
                }
                return Ok(self.permit(weight));
            }
            if timed_out {
                self.leave(&mut state, ticket);
                return Err(Stop::Timeout);
            }
            (state, timed_out) = match deadline {
                None => (self.wake.wait(state), false),
                Some(deadline) => self.wake.wait_until(state, deadline),
            };
        }
    }

    /// Removes `ticket` from the queue; if it was the front, the next waiter may now fit.
    fn leave(&self, state: &mut State, ticket: u64) {
        let was_front = state.queue.front() == Some(&ticket);
        state.queue.retain(|&t| t != ticket);
        if was_front && !state.queue.is_empty() {
            self.wake.notify_all();
        }
    }

    fn release(&self, weight: u32) {
        let mut state = self.state.lock();
        state.available += weight;
        let someone_waits = !state.queue.is_empty();
        drop(state);
        if someone_waits {
            self.wake.notify_all();
        }
    }
}

/// Why a wait in line ended without permits.
enum Stop {
    Closed,
    Timeout,
}

impl Permit<'_> {
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
