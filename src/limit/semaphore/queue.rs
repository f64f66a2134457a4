//! The semaphore's line: the state behind its lock, the FIFO queue of waiter tickets, the wait
//! in line, and the release (or forget) that wakes the line.
//!
//! Invariants, all under the lock:
//! - `available` plus the weights held is `total`; `total` only shrinks (a forgotten permit);
//! - permits are granted only under the lock, to a request no heavier than `total` that found
//!   the queue empty, or to the ticket at the front of the queue;
//! - a ticket leaves the queue exactly once: granted, timed out, closed, or too heavy for a
//!   total that forgotten permits shrank;
//! - whoever changes what a waiter sees (a release, a departure from the front, a grant that
//!   leaves permits free, a forget, close) wakes the waiters, so the front never sleeps through
//!   permits that fit it, and no waiter sleeps while its weight is over `total`.

use super::Semaphore;
use crate::limit::InsufficientCapacity;
use crate::sync::MutexGuard;
use std::collections::VecDeque;
use std::time::Instant;

/// Everything behind the semaphore's lock.
pub(super) struct State {
    /// Permits not held by anyone.
    pub(super) available: u32,
    /// Permits managed: those the semaphore was made with, less those forgotten.
    pub(super) total: u32,
    pub(super) closed: bool,
    /// The tickets of queued waiters, oldest first; only the front one may take permits.
    pub(super) queue: VecDeque<u64>,
    /// The next ticket to hand out.
    next_ticket: u64,
}

impl State {
    pub(super) fn new(permits: u32) -> Self {
        Self {
            available: permits,
            total: permits,
            closed: false,
            queue: VecDeque::new(),
            next_ticket: 0,
        }
    }

    /// Refuses a weight no wait could grant.
    pub(super) fn check(&self, weight: u32) -> Result<(), InsufficientCapacity> {
        if weight > self.total {
            return Err(InsufficientCapacity {
                requested: weight,
                capacity: self.total,
            });
        }
        Ok(())
    }

    /// Takes `weight` permits if nobody is queued and they are free; the fast path, which
    /// never barges past a waiter.
    pub(super) fn take_now(&mut self, weight: u32) -> bool {
        let fits = self.queue.is_empty() && self.available >= weight;
        if fits {
            self.available -= weight;
        }
        fits
    }
}

/// Why a wait in line ended without permits.
pub(super) enum Stop {
    Closed,
    Timeout,
    /// The weight is over the total: at once, or after permits were forgotten.
    OverTotal(InsufficientCapacity),
}

impl Semaphore {
    /// Takes `weight` permits, at once or by waiting in line until `deadline` (`None`: for
    /// ever).
    pub(super) fn acquire_until(&self, weight: u32, deadline: Option<Instant>) -> Result<(), Stop> {
        let mut state = self.state.lock();
        state.check(weight).map_err(Stop::OverTotal)?;
        if state.closed {
            return Err(Stop::Closed);
        }
        if state.take_now(weight) {
            return Ok(());
        }
        self.wait_in_line(state, weight, deadline)
    }

    /// Queues a ticket and waits until it is at the front with enough permits free.
    #[cold]
    #[inline(never)]
    fn wait_in_line(
        &self,
        mut state: MutexGuard<'_, State>,
        weight: u32,
        deadline: Option<Instant>,
    ) -> Result<(), Stop> {
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push_back(ticket);
        let mut timed_out = false;
        loop {
            if state.closed {
                self.leave(&mut state, ticket);
                return Err(Stop::Closed);
            }
            if let Err(e) = state.check(weight) {
                self.leave(&mut state, ticket);
                return Err(Stop::OverTotal(e));
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
                return Ok(());
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

    /// Gives `weight` held permits back and wakes the line if anyone waits.
    pub(super) fn release(&self, weight: u32) {
        self.settle(weight, |state| state.available += weight);
    }

    /// Removes `weight` held permits for good: the total shrinks, nothing is freed. Waiters
    /// wake, so any heavier than the new total fails instead of waiting for ever.
    pub(super) fn forget_permits(&self, weight: u32) {
        self.settle(weight, |state| state.total -= weight);
    }

    /// Applies `change` for a held permit of `weight` leaving, then wakes the line if anyone
    /// waits. A weight of 0 changes nothing and wakes nobody.
    fn settle(&self, weight: u32, change: impl FnOnce(&mut State)) {
        if weight == 0 {
            return;
        }
        let mut state = self.state.lock();
        change(&mut state);
        let someone_waits = !state.queue.is_empty();
        drop(state);
        if someone_waits {
            self.wake.notify_all();
        }
    }
}
