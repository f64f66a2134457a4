//! The semaphore's two halves: the permit word that the fast paths change with one
//! compare-and-swap, and the line behind the lock where waiters queue, each parked on its own,
//! and are handed their permits in arrival order.
//!
//! # The permit word
//! `permits` holds the free permits in its low 32 bits and flags above them: `QUEUED`
//! (someone waits in line) and `CLOSED`, and in the barging mode `HANDOFF` and `NUDGED`
//! (`fairness.rs`). An acquire takes permits with one CAS while neither `QUEUED` nor `CLOSED`
//! is set and enough are free; a release adds them back with one `fetch_add`. Neither takes
//! the lock. Once `QUEUED` is set, acquires go to the lock and queue behind the waiters
//! (no barging), and a release that saw the flag takes the lock to hand the permits on.
//!
//! # Invariants
//! Under the lock:
//! - `QUEUED` is set exactly when the line is not empty; it is set and cleared only under the
//!   lock (a waiter sets it as it joins, the grant or departure that empties the line clears
//!   it), so a lock-free acquire never takes permits while anyone waits;
//! - tickets increase in arrival order and the line is sorted by ticket; only the front is
//!   granted, and a granted waiter is removed from the line by its granter, any other only by
//!   itself. So a waiter with ticket `t` still waiting has been granted exactly when the line's
//!   front ticket is past `t` (or the line is empty): one comparison, no per-waiter flag.
//!   `served` mirrors that front ticket (the next ticket when the line is empty) for waiters
//!   that spin before they park; it only grows;
//! - `total` only shrinks (a forgotten permit); free permits plus the weights held is `total`.
//!
//! No lost wake-up: a waiter joins the line and sets `QUEUED` with a CAS on the permit word
//! while holding the lock. A release's `fetch_add` on that word comes before or after that CAS.
//! Before: the joining waiter's CAS fails or sees the permits and takes them instead of
//! queueing. After: the release sees `QUEUED`, takes the lock (after the waiter has joined) and
//! grants. A waiter parks only after releasing the lock, and a grant unparks it after the
//! grant: an unpark that comes first leaves a token, so the park returns at once.

use super::{Fairness, Semaphore};
use crate::limit::InsufficientCapacity;
use crate::sync::{
    backoff, backoff_even, current_thread, park, park_timeout, spin, spin_on, Ordering, Thread,
};
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::time::Instant;

/// Bits of the permit word above the free permits.
pub(super) const QUEUED: u64 = 1 << 32;
pub(super) const CLOSED: u64 = 1 << 33;
/// Barging mode only (`fairness.rs`): the front has waited its patience, so the fast path
/// refuses and releases grant in arrival order, as `QUEUED` makes them in the strict mode.
pub(super) const HANDOFF: u64 = 1 << 34;
/// Barging mode only (`fairness.rs`): a waiter marked `nudged` has yet to take the lock for its
/// try. Set and cleared under the lock to match [`State::nudged`]; a release that finds it set
/// (and `HANDOFF` clear) takes no lock, since the last such waiter reads the permit word after
/// it clears the flag, and serves the line with what it finds.
pub(super) const NUDGED: u64 = 1 << 35;
const FREE: u64 = u32::MAX as u64;

/// The free permits in a permit word.
pub(super) fn free(word: u64) -> u32 {
    (word & FREE) as u32
}

/// A queued request.
pub(super) struct Waiter {
    ticket: u64,
    pub(super) weight: u32,
    pub(super) thread: Thread,
    /// Barging mode: when it joined the line (its patience counts from here). `None` in the
    /// strict mode, which never reads it, so its waits take no clock read for it.
    since: Option<Instant>,
    /// Barging mode: woken to try for free permits and not yet run (`fairness.rs`).
    pub(super) nudged: bool,
}

/// Waiters to unpark once the lock is released; one grant usually wakes one.
pub(super) type Woken = SmallVec<[Thread; 4]>;

/// Everything behind the semaphore's lock.
pub(super) struct State {
    /// Queued waiters, oldest first; only the front one may be granted.
    line: VecDeque<Waiter>,
    /// The next ticket to hand out.
    next_ticket: u64,
    /// Barging mode: how many waiters in `line` are marked `nudged` (`NUDGED` is set exactly
    /// while this is not 0, under the lock).
    pub(super) nudged: usize,
}

impl State {
    pub(super) fn new() -> Self {
        Self {
            line: VecDeque::new(),
            next_ticket: 0,
            nudged: 0,
        }
    }

    /// Requests queued now.
    pub(super) fn waiting(&self) -> usize {
        self.line.len()
    }

    /// Whether the waiter holding `ticket` was granted (see the invariants).
    fn granted(&self, ticket: u64) -> bool {
        self.line
            .front()
            .map_or(true, |front| front.ticket > ticket)
    }

    /// When the front waiter joined the line, if anyone waits.
    pub(super) fn front_since(&self) -> Option<Instant> {
        self.line.front().and_then(|front| front.since)
    }

    /// The waiters, oldest first.
    pub(super) fn waiters_mut(&mut self) -> impl Iterator<Item = &mut Waiter> {
        self.line.iter_mut()
    }

    /// Where the waiter holding the ungranted `ticket` stands in the line.
    fn position(&self, ticket: u64) -> usize {
        self.line
            .binary_search_by_key(&ticket, |w| w.ticket)
            .expect("an ungranted waiter is in the line")
    }
}

/// Why a wait in line ended without permits.
pub(super) enum Stop {
    Closed,
    Timeout,
    /// The weight is over the total: at once, or after permits were forgotten.
    OverTotal(InsufficientCapacity),
}

/// What the lock-free attempt found.
pub(super) enum Fast {
    Taken,
    /// The permit word that refused: not enough free, someone queued, or closed.
    Refused(u64),
}

impl Semaphore {
    /// Takes `weight` permits with one CAS if the semaphore is open, they are free and nobody
    /// is queued (in the barging mode: unless the line is being handed over to).
    #[inline]
    pub(super) fn take_fast(&self, weight: u32) -> Fast {
        // Acquire (on the load and the CAS): the permits' previous holder released them with a
        // Release `fetch_add`, so what it did while holding them happens before our use.
        let mut word = self.permits.load(Ordering::Acquire);
        loop {
            if word & self.blocks != 0 || free(word) < weight {
                return Fast::Refused(word);
            }
            match self.permits.compare_exchange_weak(
                word,
                word - u64::from(weight),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Fast::Taken,
                Err(now) => word = now,
            }
        }
    }

    /// Under the lock: takes `weight` permits if the line is empty, the semaphore open and they
    /// are free, else returns the word that refused (to tell closed from busy). That is
    /// [`take_fast`](Self::take_fast): under the lock its `QUEUED` test means "the line is not
    /// empty" (the first invariant; checked in debug builds).
    fn take_locked(&self, state: &State, weight: u32) -> Result<(), u64> {
        // Relaxed: `QUEUED` changes only under the lock we hold.
        let queued = self.permits.load(Ordering::Relaxed) & QUEUED != 0;
        debug_assert_eq!(
            queued,
            !state.line.is_empty(),
            "QUEUED is the line's emptiness"
        );
        match self.take_fast(weight) {
            Fast::Taken => Ok(()),
            Fast::Refused(word) => Err(word),
        }
    }

    /// Refuses a weight no wait could grant.
    pub(super) fn check(&self, weight: u32) -> Result<(), InsufficientCapacity> {
        let total = self.total();
        if weight > total {
            return Err(InsufficientCapacity {
                requested: weight,
                capacity: total,
            });
        }
        Ok(())
    }

    /// Takes `weight` permits if they are free now and nobody is queued, else tells why not
    /// (closed before all else), all without the lock: from the permit word that refused and
    /// the total (which only shrinks, and only under the lock, so a refusal that races a
    /// `forget` answers as it would have a moment earlier). `None`: not free, or earlier
    /// requests queued.
    pub(super) fn try_take(&self, weight: u32) -> Result<(), Option<Stop>> {
        match self.take_fast(weight) {
            Fast::Taken => Ok(()),
            Fast::Refused(word) if word & CLOSED != 0 => Err(Some(Stop::Closed)),
            Fast::Refused(_) => {
                self.check(weight).map_err(|e| Some(Stop::OverTotal(e)))?;
                Err(None)
            }
        }
    }

    /// Takes `weight` permits, at once or by waiting in line until `deadline` (`None`: for
    /// ever).
    pub(super) fn acquire_until(&self, weight: u32, deadline: Option<Instant>) -> Result<(), Stop> {
        if let Fast::Taken = self.take_fast(weight) {
            return Ok(());
        }
        self.wait_in_line(weight, deadline)
    }

    /// The slow path: take the permits under the lock if nobody waits, else join the line and
    /// park until granted, closed, too heavy for a shrunk total, or out of time.
    #[cold]
    #[inline(never)]
    fn wait_in_line(&self, weight: u32, deadline: Option<Instant>) -> Result<(), Stop> {
        let mut state = self.state.lock();
        // Closed first: a closed semaphore answers `Closed` to every request, however heavy.
        if self.permits.load(Ordering::Acquire) & CLOSED != 0 {
            return Err(Stop::Closed);
        }
        self.check(weight).map_err(Stop::OverTotal)?;
        // Barging mode: a front waiter past its patience stops this request from taking
        // permits ahead of it (with zero patience, anyone waiting does).
        let mut woken = Woken::new();
        if let Fairness::Eventual(patience) = self.fairness {
            self.hand_off_if_overdue(&mut state, &mut woken, patience);
        }
        // Join: take the permits if they are free and nobody waits; else set QUEUED with a CAS
        // that fails if a release added permits meanwhile (then look again).
        let took = |state, woken: Woken| {
            drop(state);
            woken.iter().for_each(Thread::unpark);
            Ok(())
        };
        let mut word = match self.take_locked(&state, weight) {
            Ok(()) => return took(state, woken),
            Err(word) => word,
        };
        loop {
            if word & CLOSED != 0 {
                return Err(Stop::Closed);
            }
            if word & self.blocks == 0 && free(word) >= weight {
                // A release freed enough meanwhile (and in the strict mode the line is empty).
                match self.take_locked(&state, weight) {
                    Ok(()) => return took(state, woken),
                    Err(now) => word = now,
                }
                continue;
            }
            if word & QUEUED != 0 {
                break;
            }
            match self.permits.compare_exchange_weak(
                word,
                word | QUEUED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.line.push_back(Waiter {
            ticket,
            weight,
            thread: current_thread(),
            since: (self.fairness != Fairness::Strict).then(Instant::now),
            nudged: false,
        });
        self.publish_front(&state);
        if let Fairness::Eventual(patience) = self.fairness {
            // A front that is overdue from the start (zero patience): hand over from now on.
            self.hand_off_if_overdue(&mut state, &mut woken, patience);
        }
        loop {
            drop(state);
            // Those the hand-over above granted, or a nudged waiter's serving below woke
            // (outside the lock; mostly empty).
            woken.drain(..).for_each(|t| t.unpark());
            // A grant, a close or the deadline often comes within the spin: no park, and the
            // granter's unpark finds us awake, which costs it no system call. The front waiter,
            // whom the next release serves, tries at an even pace (`backoff_even`: where permits
            // are scarce, a thread that releases and asks again waits at the front for the one it
            // handed its permit to, whose release often comes within a few hundred nanoseconds),
            // then spins on (`spin_on`): if it parked, every hand-off would wait for a wake-up.
            // Only one waiter is at the front, however many wait; one behind that reaches the
            // front during its short spin spins on too.
            #[cfg(all(test, not(loom)))]
            let tries = std::cell::Cell::new(0);
            // Barging: whether our spin took permits with the fast path's CAS (we still stand in
            // the line, and leave it below), and whether its last try saw permits that fit us.
            let took = std::cell::Cell::new(false);
            let seen_free = std::cell::Cell::new(false);
            let mut settled = || {
                #[cfg(all(test, not(loom)))]
                {
                    tries.set(tries.get() + 1);
                    self.hold_in_spin(ticket);
                }
                let word = self.permits.load(Ordering::Relaxed);
                // Granted: checked first, so that a waiter that was granted does not go on to
                // take a second share of permits freed since. We stand in line until granted, and
                // `QUEUED` is set while anyone does, so with it clear the grant that emptied the
                // line came (read in the same word as the permits it left free: no window).
                // Else `served` tells; a grant that lands between these two loads, with others
                // still in line, can still let us take a share, which `leave_with_permits` gives
                // back.
                let granted = word & QUEUED == 0 || self.served.load(Ordering::Relaxed) > ticket;
                // The barging mode's chance (never the strict mode's, where `QUEUED` is set while
                // we wait ungranted): free permits that fit us, which we take as any running
                // caller does, without the lock, once two tries in a row have seen them. A permit
                // freed a moment ago is most often being taken back by the thread that freed it
                // (the barge this mode is for), and our CAS would then only move it between
                // cores, and the line twice under the lock; one still free a try later is not
                // (its holder was descheduled, or asks no more). Under loom, at first sight: a
                // model's waiter tries once. A lost race spins on; a nudge that woke us stays
                // ours (`NUDGED`) until we take the lock below.
                if !granted && word & self.blocks == 0 && free(word) >= weight {
                    if !seen_free.replace(true) && !cfg!(loom) {
                        return None;
                    }
                    if let Fast::Taken = self.take_fast(weight) {
                        took.set(true);
                        return Some(());
                    }
                    return None;
                }
                seen_free.set(false);
                (granted || word & CLOSED != 0 || deadline.is_some_and(|d| Instant::now() >= d))
                    .then_some(())
            };
            // Under loom the spins below make no tries: one here, so models reach the take.
            #[cfg(loom)]
            let first = settled();
            #[cfg(not(loom))]
            let first = None;
            // Relaxed: hints for how long to spin; the grant is checked with Acquire below.
            let served = self.served.load(Ordering::Relaxed);
            let front = || self.served.load(Ordering::Relaxed) == ticket;
            // A waiter further back than the total permits waits for releases by waiters now
            // ahead of it, each of whom must be granted and run first: it spins without the
            // yields, which with more threads than CPUs hand the CPU to other waiters rather
            // than to the thread that holds or is about to take the permits.
            let far = served + u64::from(self.total()) < ticket;
            let done = if first.is_some() {
                first
            } else if front() {
                backoff_even(&mut settled)
            } else if far {
                spin(&mut settled)
            } else {
                backoff(&mut settled)
            };
            let done = done.or_else(|| front().then(|| spin_on(settled))?);
            if done.is_none() {
                #[cfg(all(test, not(loom)))]
                self.record_spin(ticket, tries.get());
                match deadline {
                    None => park(),
                    Some(d) => park_timeout(d.saturating_duration_since(Instant::now())),
                }
            }
            if took.get() {
                #[cfg(all(test, not(loom)))]
                self.hold_after_take();
                self.leave_with_permits(ticket, weight);
                return Ok(());
            }
            // Acquire: pairs with the granter's Release store, after it moved our permits.
            if self.served.load(Ordering::Acquire) > ticket {
                return Ok(());
            }
            state = self.state.lock();
            // Checked first: a grant that raced the deadline or a close still stands.
            if state.granted(ticket) {
                return Ok(());
            }
            let mut was_nudged = false;
            if let Fairness::Eventual(_) = self.fairness {
                // Nudged, or free permits seen while spinning: try for them as any caller does.
                // (`HANDOFF` refuses here too: then only a grant serves us.)
                let at = state.position(ticket);
                if let Fast::Taken = self.take_fast(weight) {
                    let woken = self.depart(&mut state, at);
                    drop(state);
                    woken.iter().for_each(Thread::unpark);
                    return Ok(());
                }
                // A running thread took them first: wait to be nudged again.
                let me = state.waiters_mut().nth(at).expect("in the line");
                was_nudged = std::mem::take(&mut me.nudged);
                if was_nudged {
                    // Cleared before anything below reads the permit word (`NUDGED`).
                    state.nudged -= 1;
                    self.publish_nudged(&state);
                }
            }
            let stop = if self.permits.load(Ordering::Acquire) & CLOSED != 0 {
                Stop::Closed
            } else if let Err(e) = self.check(weight) {
                Stop::OverTotal(e)
            } else if deadline.is_some_and(|d| Instant::now() >= d) {
                Stop::Timeout
            } else {
                if was_nudged {
                    // Our mark reserved our weight: a running thread may have taken only part
                    // of it, and what is left may fit a waiter the mark kept from being nudged
                    // (a light one behind us), with no release to come. Serve the line again,
                    // as a departure does (`leave` below); whom it wakes (maybe us, if a release
                    // came since our try) is unparked at the top of the loop, before we park.
                    self.serve(&mut state, &mut woken);
                }
                continue; // spurious, or woken for another reason
            };
            let woken = self.leave(&mut state, ticket);
            drop(state);
            woken.iter().for_each(Thread::unpark);
            return Err(stop);
        }
    }

    /// Barging: a waiter whose spin took its `weight` permits with the fast path's CAS leaves
    /// the line. A hand-over may have granted it permits as well meanwhile (`HANDOFF` set after
    /// the CAS, and it was the front): it keeps the grant and gives the spin's permits back.
    #[cold]
    #[inline(never)]
    fn leave_with_permits(&self, ticket: u64, weight: u32) {
        let mut state = self.state.lock();
        if state.granted(ticket) {
            drop(state);
            return self.release(weight);
        }
        let woken = self.leave(&mut state, ticket);
        drop(state);
        woken.iter().for_each(Thread::unpark);
    }

    /// Removes the ungranted `ticket` from the line; if it was the front, those behind may fit
    /// now. Returns whom to unpark.
    fn leave(&self, state: &mut State, ticket: u64) -> Woken {
        let at = state.position(ticket);
        self.depart(state, at)
    }

    /// Removes the ungranted waiter at `at` from the line (leaving without permits, or in the
    /// barging mode with permits it took itself); those behind may be served now. Returns whom
    /// to unpark.
    fn depart(&self, state: &mut State, at: usize) -> Woken {
        let gone = state
            .line
            .remove(at)
            .expect("the departing waiter is in the line");
        state.nudged -= usize::from(gone.nudged);
        self.publish_front(state);
        let mut woken = Woken::new();
        if state.line.is_empty() {
            debug_assert_eq!(state.nudged, 0, "nudged waiters are in the line");
            // Release: pairs with the Acquire loads of lock-free acquires.
            self.permits
                .fetch_and(!(QUEUED | HANDOFF | NUDGED), Ordering::Release);
        } else if at == 0 || self.fairness != Fairness::Strict {
            // Strict: only a new front may fit. Barging: the leaver may have been offered
            // permits (nudged), which must be offered on, with any a release left to it
            // (`NUDGED`, cleared before `serve` reads the word).
            self.publish_nudged(state);
            self.serve(state, &mut woken);
        }
        woken
    }

    /// Under the lock: sets or clears `NUDGED` to say whether any waiter in the line is marked
    /// nudged and has yet to try ([`State::nudged`]). A clear comes before its caller's next
    /// read of the permit word, which so sees every release that found the flag set.
    pub(super) fn publish_nudged(&self, state: &State) {
        debug_assert_eq!(
            state.nudged,
            state.line.iter().filter(|w| w.nudged).count(),
            "State::nudged counts the marked waiters"
        );
        // Relaxed: `NUDGED` changes only under the lock we hold.
        let set = self.permits.load(Ordering::Relaxed) & NUDGED != 0;
        if state.nudged > 0 && !set {
            // AcqRel: an exchange of the word's flags under the lock, as `HANDOFF`'s. What
            // matters is the order of these changes with the releases' adds on the one word.
            self.permits.fetch_or(NUDGED, Ordering::AcqRel);
        } else if state.nudged == 0 && set {
            self.permits.fetch_and(!NUDGED, Ordering::AcqRel);
        }
    }

    /// Under the lock: hands free permits to the front of the line while they fit, clearing
    /// `QUEUED` with the grant that empties the line. A closed semaphore grants nothing: its
    /// waiters leave with an error.
    pub(super) fn grant(&self, state: &mut State, woken: &mut Woken) {
        let before = woken.len();
        let mut word = self.permits.load(Ordering::Acquire);
        while let Some(front) = state.line.front() {
            if word & CLOSED != 0 || free(word) < front.weight {
                break;
            }
            // The grant that empties the line clears its flags.
            let last = if state.line.len() == 1 {
                word & (QUEUED | HANDOFF | NUDGED)
            } else {
                0
            };
            let after = word - u64::from(front.weight) - last;
            match self.permits.compare_exchange_weak(
                word,
                after,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    word = after;
                    let granted = state.line.pop_front().expect("the front was there");
                    state.nudged -= usize::from(granted.nudged);
                    woken.push(granted.thread);
                }
                Err(now) => word = now,
            }
        }
        if woken.len() > before {
            self.publish_front(state);
            self.publish_nudged(state);
        }
    }

    /// Under the lock: stores the front's ticket (the next ticket if the line is empty) where
    /// waiters can read it without the lock. It only grows, so a stale read never claims a
    /// grant that has not happened.
    fn publish_front(&self, state: &State) {
        let front = state.line.front().map_or(state.next_ticket, |w| w.ticket);
        // Release: a waiter that reads past its ticket with Acquire sees its permits moved.
        self.served.store(front, Ordering::Release);
    }

    /// Gives `weight` held permits back: one `fetch_add`, and the lock only if someone waits.
    pub(super) fn release(&self, weight: u32) {
        if weight == 0 {
            return;
        }
        // Release: what the holder did happens before the next acquire of these permits. No
        // acquire half: the `QUEUED` test reads this add's own result, and `hand_on` takes the
        // lock, which orders it with the waiters.
        let before = self.permits.fetch_add(u64::from(weight), Ordering::Release);
        // Barging, with a nudged waiter yet to try and no hand-over on: that waiter serves the
        // line after its try and will see these permits (`NUDGED`), so no lock is needed here.
        if before & QUEUED != 0 && before & (NUDGED | HANDOFF) != NUDGED {
            self.hand_on();
        }
    }

    /// A release found waiters: grant what fits, then unpark them outside the lock.
    #[cold]
    #[inline(never)]
    fn hand_on(&self) {
        let mut woken = Woken::new();
        let mut state = self.state.lock();
        self.serve(&mut state, &mut woken);
        drop(state);
        woken.iter().for_each(Thread::unpark);
    }

    /// Removes `weight` held permits for good: the total shrinks, nothing is freed. Waiters now
    /// heavier than the total are woken to fail instead of waiting for ever.
    pub(super) fn forget_permits(&self, weight: u32) {
        if weight == 0 {
            return;
        }
        let state = self.state.lock();
        let total = self.total() - weight;
        // Relaxed: written only under the lock, which orders it for the lock's other holders;
        // lock-free readers take it as a snapshot (`check`).
        self.total.store(u64::from(total), Ordering::Relaxed);
        // Unparked under the lock: rare, and it saves collecting them.
        state
            .line
            .iter()
            .filter(|w| w.weight > total)
            .for_each(|w| w.thread.unpark());
    }

    /// Sets `CLOSED` and wakes every waiter, to leave with an error.
    pub(super) fn close_line(&self) {
        let state = self.state.lock();
        self.permits.fetch_or(CLOSED, Ordering::AcqRel);
        state.line.iter().for_each(|w| w.thread.unpark());
    }
}
