//! [`Fairness`]: whether a running thread may take freed permits ahead of the line, and the
//! barging mode's two moves: waking waiters that free permits could serve (they then compete
//! for them as any caller does), and, once the front waiter has waited its patience, handing
//! over in arrival order as the strict mode always does.
//!
//! # Barging (`Fairness::Eventual`)
//! The fast path ignores `QUEUED`: a caller takes free permits with its CAS while others wait.
//! A release that finds `QUEUED` takes the lock and *nudges*: it unparks, from the front, the
//! waiters that the free permits could serve (each marked, so that its share is not offered
//! twice), and grants nothing. A nudged waiter takes the lock and tries the same CAS; it leaves
//! the line if it wins (and serves the line again, as any departure does). If a running thread
//! won, it unmarks itself, serves the line again and parks: the thread may have taken only part
//! of its share (one of the two permits a waiter of weight 2 was woken for), and the rest may
//! fit a lighter waiter behind it that its mark kept from being woken, with no release to come
//! while the thread and the other holders keep theirs. A release comes after any permits are
//! taken, so every free permit is either offered to a marked waiter or wanted by nobody in line:
//! no permit sits free while a waiter it fits sleeps.
//!
//! Two shortcuts keep the lock out of most releases and tries, where threads outnumber CPUs
//! and a woken waiter may wait milliseconds to run:
//! - **A release that finds a marked waiter yet to try takes no lock.** The permit word's
//!   `NUDGED` flag is set, under the lock, exactly while some waiter in line is marked (counted
//!   in `State::nudged`). A release whose `fetch_add` finds it set, and `HANDOFF` clear, stops
//!   there: the last marked waiter to try clears the flag (an atomic change of the same word,
//!   under the lock) before it reads the word again to serve the line, so it sees every permit
//!   those releases added. Neither the permits nor the flag change order: one word holds both,
//!   so no fence is needed. That waiter also checks the patience, which those releases skip.
//! - **A spinning waiter takes free permits as any caller does**: when two tries of its spin
//!   in a row see permits that fit it, it tries the fast path's CAS without the lock (a lost
//!   race spins on), and only then takes the lock to leave the line, serving it as any
//!   departure does. Not at the first sight: a permit freed a moment ago is most often being
//!   taken back by the thread that freed it, and the waiter's CAS would only move it between
//!   cores and the line twice under the lock (JOURNAL.md has the runs). A hand-over may have
//!   granted it permits as well meanwhile (`HANDOFF` set after its CAS, while it stood at the
//!   front): it keeps the grant and releases the permits its CAS took.
//!
//! Once the front waiter has waited `patience` since it joined, the next release that takes the
//! lock, departure, woken waiter's try or request that joins the line sets `HANDOFF` (a release
//! that finds a marked waiter yet to try leaves the check to that waiter's try): the fast path
//! refuses again, and releases grant in arrival order as in the strict mode, until the front is
//! a waiter that has not waited that long. So once one of those has seen the front overdue, no
//! request is served before it; until then a caller may still take free permits ahead of it
//! (those the release that will see it frees included, before that release takes the lock).

use super::queue::{free, State, Woken, CLOSED, HANDOFF};
use super::Semaphore;
use crate::limit::LimitError;
use crate::sync::Ordering;
use std::time::Duration;

/// How a [`Semaphore`] orders the requests that compete for its permits; see
/// [`Semaphore::with_fairness`].
///
/// # When to use which
/// [`Strict`](Fairness::Strict), the default, where a request must never be overtaken (a heavy
/// one behind a stream of light ones) and waits are rare or holds long.
/// [`Eventual`](Fairness::Eventual) where permits are held briefly and threads can outnumber
/// CPUs (a server's worker threads on a small machine): there every strict hand-over waits until
/// the scheduler runs the waiter it went to, tens or hundreds of times the cost of a `Mutex` +
/// `Condvar` semaphore, which lets the running thread take the permit back; barging does the
/// same (the shootout's "semaphore, one permit" rows, `--threads 8,32`, compare the three).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use thrifty::limit::{Fairness, Semaphore};
///
/// // Short holds on a busy server: let the running thread take a freed permit, but serve
/// // anyone who has waited 1 ms in arrival order.
/// let sem = Semaphore::with_fairness(4, Fairness::Eventual(Duration::from_millis(1)));
/// drop(sem.acquire(1).unwrap());
/// assert_eq!(sem.fairness(), Fairness::Eventual(Duration::from_millis(1)));
/// ```
///
/// # Cost
/// Barging costs what the strict mode does while nobody waits (one CAS to acquire, one atomic
/// add to release). While anyone waits, a release takes the line's lock, reads the clock once
/// and wakes the waiters the freed permits fit, who then try for them (a woken waiter that a
/// running thread beat parks again: a wake-up spent); a release that finds a woken waiter yet
/// to try leaves the line to it and takes no lock, and a spinning waiter takes permits it sees
/// free at two tries in a row with the fast path's CAS, taking the lock only to leave the line.
/// With one permit and 8 or 32 threads on 2 cores (the shootout's "semaphore, one permit"
/// rows) that is about a sixth of a `Mutex` + `Condvar` semaphore's time and a tenth of its CPU
/// per acquire; with one permit for 2 threads about half its time, and about its time when
/// every acquire also reads the clock (the limit table's timed row), where the waits' p99 is
/// longer (4-5 µs against under 1 µs: a running thread that asks again takes the permit back
/// until the waiter sees it free twice). A waiter's wait is unbounded by order but bounded by
/// the patience: once the front has waited that long, the next request that joins the line,
/// departure, woken waiter's try or release that takes the lock switches to hand-overs (each
/// one a switch where threads outnumber CPUs) until the front is a waiter that has not. So pick
/// a patience well above the time a hand-over takes times the waiters that queue at once (a
/// switch is some microseconds, tens on a VM): below it, waiters that joined during one round
/// of hand-overs are overdue by its end, and the semaphore stays in hand-overs at the strict
/// mode's cost. At several microseconds a hand-over, 1 ms suits on the order of a hundred
/// waiters.
///
/// # Allocation
/// As the strict mode's: none per acquire or release, but the line's growth and a wake of more
/// than 4 waiters at once ([`Semaphore`]'s Allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Fairness {
    /// First come, first served (the default, [`Semaphore::new`]): a request that arrives while
    /// others wait queues behind them, and every freed permit goes to the longest waiter. No
    /// request is overtaken, a large one included.
    #[default]
    Strict,
    /// Barging with a bound: a running thread may take freed permits ahead of the waiters (who
    /// are woken to compete for them) until the front waiter has waited this long since it
    /// joined the line; from the next release that takes the line's lock (one that finds a
    /// woken waiter yet to try leaves this to that waiter), woken waiter's try, or request that
    /// has to queue, on, permits go to waiters in arrival order until the front is one that has
    /// not waited this long (until then a caller may still take free permits, those releases'
    /// included). `Duration::ZERO` serves in arrival order as
    /// [`Strict`](Fairness::Strict) does, at a little more cost per wait;
    /// `Duration::MAX` never hands over, so a heavy request can wait for ever behind a stream of
    /// light ones.
    Eventual(Duration),
}

impl Semaphore {
    /// A semaphore with `permits` permits that orders competing requests as `fairness` says:
    /// [`Fairness::Strict`] is [`new`](Semaphore::new)'s first come, first served;
    /// [`Fairness::Eventual`] lets a running thread take freed permits ahead of the line until
    /// a waiter has waited the given time.
    ///
    /// # When to use
    /// `Fairness::Eventual` where permits are held briefly and threads can outnumber CPUs (a
    /// server's worker threads on a small machine): there the strict order hands each freed
    /// permit to a waiter that must first be scheduled, where barging lets the running thread
    /// take it back at once. Keep the strict order where holds are long, waits are rare or a
    /// heavy request must never be overtaken.
    ///
    /// # Panics
    /// If `permits == 0`; [`try_with_fairness`](Semaphore::try_with_fairness) returns the
    /// error instead.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use thrifty::limit::{Fairness, Semaphore};
    ///
    /// let sem = Semaphore::with_fairness(8, Fairness::Eventual(Duration::from_millis(1)));
    /// std::thread::scope(|s| {
    ///     for _ in 0..32 {
    ///         s.spawn(|| {
    ///             for _ in 0..100 {
    ///                 let _permit = sem.acquire(1).unwrap(); // a short hold
    ///             }
    ///         });
    ///     }
    /// });
    /// assert_eq!(sem.available(), 8);
    /// ```
    #[track_caller]
    pub fn with_fairness(permits: u32, fairness: Fairness) -> Self {
        match Self::try_with_fairness(permits, fairness) {
            Ok(semaphore) => semaphore,
            Err(e) => panic!("Semaphore::with_fairness({permits}, {fairness:?}): {e}"),
        }
    }

    /// As [`with_fairness`](Semaphore::with_fairness), returning the error.
    ///
    /// # Errors
    /// [`LimitError::ZeroPermits`] if `permits == 0`.
    pub fn try_with_fairness(permits: u32, fairness: Fairness) -> Result<Self, LimitError> {
        Self::make(permits, fairness)
    }

    /// Under the lock, after permits were freed or a waiter left: serves the line as the
    /// semaphore's fairness says. Strict: grants from the front. Eventual: switches to
    /// hand-overs if the front has waited its patience, else nudges the waiters the free
    /// permits fit.
    pub(super) fn serve(&self, state: &mut State, woken: &mut Woken) {
        match self.fairness {
            Fairness::Strict => self.grant(state, woken),
            Fairness::Eventual(patience) => {
                if !self.hand_off_if_overdue(state, woken, patience) {
                    self.nudge(state, woken);
                }
            }
        }
    }

    /// Under the lock, barging mode: if the front has waited `patience`, sets `HANDOFF` (or
    /// keeps it) and grants in arrival order what fits; clears it again once the front is a
    /// waiter that has not. Returns whether hand-overs are on: then nothing may be nudged.
    pub(super) fn hand_off_if_overdue(
        &self,
        state: &mut State,
        woken: &mut Woken,
        patience: Duration,
    ) -> bool {
        let overdue = |state: &State| {
            state
                .front_since()
                .is_some_and(|since| since.elapsed() >= patience)
        };
        // Relaxed: `HANDOFF` changes only under the lock we hold.
        if self.permits.load(Ordering::Relaxed) & HANDOFF == 0 {
            if !overdue(state) {
                return false;
            }
            // Release: pairs with the Acquire of a caller's CAS that this refuses from now on.
            self.permits.fetch_or(HANDOFF, Ordering::Release);
        }
        // `grant` clears `HANDOFF` with `QUEUED` if it empties the line.
        self.grant(state, woken);
        if state.waiting() == 0 || overdue(state) {
            return true;
        }
        self.permits.fetch_and(!HANDOFF, Ordering::Release);
        // A request of weight 0 queues only while `HANDOFF` is set (else the fast path serves
        // it), and fits whatever is free, even nothing, where `nudge` stops once the free
        // permits are spoken for: wake those that queued, to take their nothing.
        let mut marked = 0;
        for waiter in state.waiters_mut() {
            if waiter.weight == 0 && !waiter.nudged {
                waiter.nudged = true;
                marked += 1;
                woken.push(waiter.thread.clone());
            }
        }
        state.nudged += marked;
        self.publish_nudged(state);
        false
    }

    /// Under the lock: marks and collects, from the front, the waiters the free permits fit,
    /// counting the shares of waiters marked before and not yet run.
    fn nudge(&self, state: &mut State, woken: &mut Woken) {
        let word = self.permits.load(Ordering::Acquire);
        if word & CLOSED != 0 {
            return;
        }
        let mut room = free(word);
        let mut marked = 0;
        for waiter in state.waiters_mut() {
            if room == 0 {
                break;
            }
            if waiter.nudged {
                room -= waiter.weight.min(room);
            } else if waiter.weight <= room {
                waiter.nudged = true;
                marked += 1;
                room -= waiter.weight;
                woken.push(waiter.thread.clone());
            }
        }
        state.nudged += marked;
        self.publish_nudged(state);
    }
}
