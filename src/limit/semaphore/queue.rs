//! The semaphore's line: the state behind its lock, the FIFO queue of waiter tickets, the wait
//! in line, and the release that wakes the line.
//!
//! Invariants, all under the lock:
//! - permits are granted only under the lock, to a request that found the queue empty, or to
//!   the ticket at the front of the queue;
//! - a ticket leaves the queue exactly once: granted, timed out or closed;
//! - whoever changes what the front ticket sees (a release, a departure from the front, a
//!   grant that leaves permits free, close) wakes the waiters, so the front never sleeps
//!   through permits that fit it.

use super::Semaphore;
use crate::sync::MutexGuard;
use std::collections::VecDeque;
use std::time::Instant;

/// Everything behind the semaphore's lock.
pub(super) struct State {
    /// Permits not held by anyone.
    pub(super) available: u32,
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
            closed: false,
            queue: VecDeque::new(),
            next_ticket: 0,
        }
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
}

impl Semaphore {
    /// Takes `weight` permits (already checked against the total), at once or by waiting in
    /// line until `deadline` (`None`: for ever).
    pub(super) fn acquire_until(&self, weight: u32, deadline: Option<Instant>) -> Result<(), Stop> {
        let mut state = self.state.lock();
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

    /// Gives `weight` permits back and wakes the line if anyone waits.
    pub(super) fn release(&self, weight: u32) {
        let mut state = self.state.lock();
        state.available += weight;
        let someone_waits = !state.queue.is_empty();
        drop(state);
        if someone_waits {
            self.wake.notify_all();
        }
    }
}
