//! Waiting for a channel to change: a bounded spin, then a park in a [`WaitQueue`].
//!
//! Each channel has two queues, one for senders waiting for room and one for receivers waiting
//! for a message. This file is the channel's whole waiting strategy, behind three calls:
//! [`WaitQueue::wait`] (retry an attempt until it is done, closed or out of time),
//! [`WaitQueue::notify_one`] (after a push or pop that may let a waiter through) and
//! [`WaitQueue::notify_all`] (on disconnect). A waiter is a parked thread; async ends would add
//! a second waiter kind (a `Waker`) to [`Waiter`] and reuse the queue and its handshake.
//!
//! # How it works
//!
//! `wait` first retries the attempt a few times ([`WaitQueue::spin`]): with more than one CPU it
//! spins on `spin_loop` hints, 1, 2, 4 … 64 of them between tries (127 in all), then yields a few
//! times; with one CPU it only yields, because spinning there waits on a thread that cannot run
//! until we stop. One waiter of a side then spins on for 896 hints more when the other side has
//! waited too since (a stream that fills and empties its channel by turns; see `spin`). The
//! spins are the same length however many threads the process has. Each try of the spin
//! first asks a cheap `ready` hint (the channel's `recv_ready` or `send_ready`: its own index, one
//! slot's stamp and the disconnect count, no fence) and runs the attempt only when it says yes, or
//! once the deadline has passed: the attempt's empty or full check reads the other side's index,
//! and a receiver that polled it while waiting on a nearly empty channel made every send fetch that
//! line back (`benches/channel.rs`'s busy-producer rows measure that shape). The hint only gates
//! the spin: every retry after a registration is the full attempt, which the handshake below needs.
//! Then it parks: it registers a [`Waiter`] (its thread and a ticket) in the list, retries once
//! more, and parks only if that retry failed too (a notifier that picked it meanwhile left an
//! unpark token, so that park returns at once). After any wake-up, spurious or not, it removes its
//! entry if it is still there, retries, and if that fails starts over, spin included (as
//! crossbeam-channel's waiters do). A woken waiter often loses its change to a thread that never
//! parked (a receiver back for its next message); one that registered again at once would keep
//! the list non-empty, so that every later send paid a lock and an unpark for one more such
//! loser. Off the list while it spins, it lets the notifier's load of `waiting` find nobody.
//!
//! **No lost wake-ups.** A waiter does (1) register, (2) SeqCst fence, (3) retry. A notifier
//! does (a) change the ring (a stamp store or a disconnect count), (b) SeqCst fence, (c) read
//! `waiting`. The two fences are in one total order. If the waiter's fence comes first, the
//! notifier's read (c) sees the registration (1) and unparks it; if the notifier's comes first,
//! the waiter's retry (3) sees the change (a) and does not park. A notify that finds the waiter
//! already gone (it timed out, or its own retry succeeded) is harmless: a thread's unpark token
//! only makes its next `park` return early, and every `park` here is in a retry loop. A notify
//! is never spent without a retry: a waiter picked by a notifier retries after waking even if its
//! deadline has passed, and one whose pre-park retry had already succeeded passes the wake-up on
//! to the next waiter (otherwise that waiter would sleep beside a queued message). A waiter that
//! parked and then got what it waited for wakes the next one while more is there (a message
//! still queued, a slot still free): one wake-up may stand for several changes (`recv_many` frees
//! a batch of slots and wakes one sender), and in the recycling channel a woken receiver may find
//! the oldest slot still claimed by a sender's closure and park again, spending the wake-up of a
//! message queued behind it. `tests/loom_channel.rs` checks the handshake, and
//! `tests/wakeups_channel.rs` both of those shapes.
//!
//! **Without the notifier's fence.** The plain channel skips fence (b), which would cost every
//! message a full barrier. Its waiters never park on a slot that is claimed but unpublished (they
//! spin until it is published: one move of a `T`), so the change a waiter's retry must see is
//! the notifier's claim, a SeqCst CAS on `tail` (or `head`), not its later stamp store. The
//! notifier reads `waiting` with a SeqCst load after that CAS, and the waiter registers with a
//! SeqCst store before its fence. If the load misses the registration, it precedes the store in
//! the SeqCst total order, so the CAS precedes the waiter's fence, and the waiter's retry after
//! the fence sees the CAS (C++20 [atomics.order]: a SeqCst fence after a modification in that
//! order makes later loads see it). loom models SeqCst read-modify-writes as AcqRel, too weak
//! for this argument, so under loom the plain channel uses the fenced notify; the recycling
//! channel, whose waiters do park on claimed slots (a user's closure runs there), always does.

use crate::sync::{
    backoff, current_thread, fence, park, park_timeout, AtomicUsize, Mutex, Ordering, Thread,
};
#[cfg(not(loom))]
use crate::sync::{spin_on, AtomicBool};
use smallvec::SmallVec;
use std::fmt;
use std::time::Instant;

/// What one attempt at an operation found.
pub(super) enum Step<R> {
    /// It happened.
    Done(R),
    /// Not now: the ring is full (a send) or empty (a receive).
    NotReady,
    /// Never: the other side has disconnected.
    Closed,
}

/// Why [`WaitQueue::wait`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The other side disconnected.
    Closed,
    /// The deadline passed.
    TimedOut,
}

/// A parked operation, as the list holds it.
struct Waiter {
    /// Tells this entry from the same thread's earlier ones.
    ticket: u64,
    /// What to unpark.
    thread: Thread,
}

/// The list behind the lock.
#[derive(Default)]
struct List {
    /// Waiters in arrival order; four inline, so a usual channel never allocates for them. A
    /// longer list moves to the heap and grows by doubling (8, 16, 32 …), keeping its largest
    /// buffer.
    waiters: SmallVec<[Waiter; 4]>,
    /// The next ticket to hand out.
    next_ticket: u64,
}

/// Threads parked until a channel changes; see the module doc.
pub(super) struct WaitQueue {
    /// How many waiters the list holds: read without the lock by notifiers, so a channel with
    /// nobody waiting pays a load per operation (and a fence first, where the change needs one:
    /// `notify_one`), not a lock.
    waiting: AtomicUsize,
    /// The waiters.
    list: Mutex<List>,
    /// Set when a thread of this side starts a wait, taken (cleared) by the waiter of the other
    /// side that spins on for it: whether this side has waited since (see [`WaitQueue::spin`]).
    #[cfg(not(loom))]
    waited: AtomicBool,
}

impl WaitQueue {
    /// An empty queue; allocates nothing.
    pub(super) fn new() -> Self {
        Self {
            waiting: AtomicUsize::new(0),
            list: Mutex::new(List::default()),
            #[cfg(not(loom))]
            waited: AtomicBool::new(false),
        }
    }

    /// Wakes the longest-waiting waiter, if any. Call after a change that may let one through.
    #[inline]
    pub(super) fn notify_one(&self) {
        // SeqCst: the notifier's fence of the handshake (module doc); it orders the caller's
        // change before the read of `waiting` below.
        fence(Ordering::SeqCst);
        // Relaxed: the fence above orders it; the lock in `notify_slow` protects the list.
        if self.waiting.load(Ordering::Relaxed) != 0 {
            self.notify_slow(false);
        }
    }

    /// [`notify_one`](Self::notify_one) for a caller whose change was a SeqCst read-modify-write
    /// that a waiter's retry reads (a claim on `head` or `tail`): that RMW and the SeqCst load
    /// here stand in for the notifier's fence (module doc, "Without the notifier's fence").
    #[inline]
    pub(super) fn notify_one_after_seqcst(&self) {
        #[cfg(loom)]
        {
            // loom models SeqCst read-modify-writes as AcqRel, which is too weak for the
            // argument; it checks the fenced handshake instead.
            self.notify_one();
        }
        #[cfg(not(loom))]
        {
            // SeqCst: in one total order with the caller's SeqCst claim and with the waiter's
            // registration and fence (module doc).
            if self.waiting.load(Ordering::SeqCst) != 0 {
                self.notify_slow(false);
            }
        }
    }

    /// Wakes every waiter. Call after a disconnect.
    pub(super) fn notify_all(&self) {
        // SeqCst and Relaxed: as in `notify_one`.
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) != 0 {
            self.notify_slow(true);
        }
    }

    #[cold]
    #[inline(never)]
    fn notify_slow(&self, all: bool) {
        let mut list = self.list.lock();
        let woken: SmallVec<[Waiter; 4]> = if all {
            list.waiters.drain(..).collect()
        } else if list.waiters.is_empty() {
            SmallVec::new()
        } else {
            std::iter::once(list.waiters.remove(0)).collect()
        };
        // Relaxed: readers load it after a SeqCst fence, under the lock, or with a SeqCst load
        // (`notify_one_after_seqcst`). This store happens before any later registration (the
        // lock), so a SeqCst load that reads it still comes before that registration's store in
        // the SeqCst order.
        self.waiting.store(list.waiters.len(), Ordering::Relaxed);
        drop(list);
        // Unpark outside the lock, so the woken thread does not block on it at once.
        for waiter in woken {
            waiter.thread.unpark();
        }
    }

    /// Puts the calling thread in the list; returns its ticket.
    fn register(&self) -> u64 {
        let mut list = self.list.lock();
        let ticket = list.next_ticket;
        list.next_ticket += 1;
        list.waiters.push(Waiter {
            ticket,
            thread: current_thread(),
        });
        // SeqCst: in one total order with `notify_one_after_seqcst`'s load (module doc); the
        // fence in `wait` then orders it before the retry.
        self.waiting.store(list.waiters.len(), Ordering::SeqCst);
        ticket
    }

    /// Whether `ticket` is still in the list (no notifier has picked it).
    fn is_registered(&self, ticket: u64) -> bool {
        self.list.lock().waiters.iter().any(|w| w.ticket == ticket)
    }

    /// Takes `ticket` out of the list; `true` if a notifier had already taken it (the waiter
    /// was notified).
    fn deregister(&self, ticket: u64) -> bool {
        let mut list = self.list.lock();
        match list.waiters.iter().position(|w| w.ticket == ticket) {
            Some(i) => {
                list.waiters.remove(i);
                // Relaxed: as in `notify_slow`.
                self.waiting.store(list.waiters.len(), Ordering::Relaxed);
                false
            }
            None => true,
        }
    }

    /// Retries `attempt` until it is done or closed, or `deadline` passes: a short spin, then
    /// parked between tries (module doc). The caller has already tried once and failed.
    ///
    /// `ready` is a hint that the attempt may succeed: the spin runs the attempt only when it holds
    /// (it must also hold once the channel is closed, or the spin runs to its end before seeing
    /// that). `more` says whether what the waiter waited for is still there after its own success
    /// (a message still queued, a slot still free). A waiter that parked and then succeeded wakes
    /// the next one while `more` holds: one wake-up can stand for several changes (a batch of pops
    /// wakes one sender), and a woken waiter may spend its wake-up on a slot still claimed by
    /// another thread (the recycling channel) while a later message waits behind it.
    pub(super) fn wait<R>(
        &self,
        other: &WaitQueue,
        deadline: Option<Instant>,
        mut attempt: impl FnMut() -> Step<R>,
        ready: impl Fn() -> bool,
        more: impl Fn() -> bool,
    ) -> Result<R, Stop> {
        #[cfg(not(loom))]
        if !self.waited.load(Ordering::Relaxed) {
            // Relaxed: a hint (`spin`); stored only when clear, so a side that waits often
            // does not write the line at every wait.
            self.waited.store(true, Ordering::Relaxed);
        }
        if let Some(end) = self.spin(other, deadline, &mut attempt, &ready) {
            return end;
        }
        loop {
            let ticket = self.register();
            // SeqCst: the waiter's fence of the handshake (module doc): the retry below sees
            // any change whose notifier missed our registration.
            fence(Ordering::SeqCst);
            let ended = match attempt() {
                Step::Done(r) => Ok(r),
                Step::Closed => Err(Stop::Closed),
                Step::NotReady => Err(Stop::TimedOut),
            };
            if let Ok(_) | Err(Stop::Closed) = ended {
                if self.deregister(ticket) {
                    // A notifier picked us after our retry had already succeeded: that wake-up
                    // was meant for a change we did not take. Pass it on.
                    self.notify_one();
                }
                return ended;
            }
            // A notifier may have picked us while we retried. Its unpark left a token that makes
            // `park` return at once (std's documented semantics), so a normal build just parks.
            // loom drops a token that arrives while the thread is yielding (in a spin hint), so
            // under loom we look in the list first, which is what the token tells std.
            let out_of_time = match deadline {
                _ if cfg!(loom) && !self.is_registered(ticket) => false,
                None => {
                    park();
                    false
                }
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => {
                        park_timeout(left);
                        false
                    }
                    _ => true,
                },
            };
            // A notified waiter spends its wake-up on the retry below, even past its deadline,
            // so the change it was woken for is never left behind with others asleep.
            if !self.deregister(ticket) && out_of_time {
                return Err(Stop::TimedOut);
            }
            // A success after a park wakes the next waiter while `more` holds (see above).
            let woken_end = |end: Result<R, Stop>| {
                if end.is_ok() && more() {
                    self.notify_one();
                }
                end
            };
            match attempt() {
                Step::Done(r) => return woken_end(Ok(r)),
                Step::Closed => return Err(Stop::Closed),
                Step::NotReady if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Err(Stop::TimedOut)
                }
                Step::NotReady => {
                    // A woken waiter that lost its change to a running thread spins before it
                    // registers again (module doc); a success there follows a park too.
                    if let Some(end) = self.spin(other, deadline, &mut attempt, &ready) {
                        return woken_end(end);
                    }
                }
            }
        }
    }
}

impl WaitQueue {
    /// The bounded spin before parking; `Some` if it ended the wait.
    ///
    /// First [`backoff`]'s short spin; then, if that found nothing, the long one ([`spin_on`],
    /// about 8 µs more where a hint takes 9 ns) when the other side has also waited since a waiter
    /// of this side last looked and nobody of this side is parked; the waiter takes the other
    /// side's mark, so each wait of the other side lets one waiter of this side spin on. That is a
    /// stream between threads that run at about the same speed, whose channel fills and empties by
    /// turns: each side's next change serves the other, and a waiter that parked would make it wait
    /// for a wake-up, tens of microseconds on a VM, whose idle vCPU the host must schedule again.
    /// Where one side is slower (a producer with real work per message), the other, which waits on
    /// every message, parks after the short spin and is woken for a batch (where its gaps outlast
    /// the short spin; shorter ones it polls through, awake): a long spin there would read the slow
    /// side's lines as it writes them. A crowd of idle receivers burns at most one long spin
    /// between them, and a wait that the short spin ends touches no flag. Under loom neither spins,
    /// and the flags are left out.
    fn spin<R>(
        &self,
        other: &WaitQueue,
        deadline: Option<Instant>,
        attempt: &mut impl FnMut() -> Step<R>,
        ready: impl Fn() -> bool,
    ) -> Option<Result<R, Stop>> {
        let mut once = || {
            // Once the deadline has passed, the full attempt runs whatever the hint says: a value
            // another thread is still moving in leaves the hint false, and the attempt waits for it
            // (as `recv_timeout` promises) before the wait answers `TimedOut`.
            let late = deadline.is_some_and(|d| Instant::now() >= d);
            match if late || ready() {
                attempt()
            } else {
                Step::NotReady
            } {
                Step::Done(r) => Some(Ok(r)),
                Step::Closed => Some(Err(Stop::Closed)),
                Step::NotReady if late => Some(Err(Stop::TimedOut)),
                Step::NotReady => None,
            }
        };
        let done = backoff(&mut once);
        #[cfg(not(loom))]
        if done.is_none()
            // Relaxed, all: hints for how long to spin, publishing nothing; a waiter that reads
            // one late spins on once more, or parks, where it might not have.
            && self.waiting.load(Ordering::Relaxed) == 0
            // Loaded first so that a clear mark costs no write; the swap gives each mark of the
            // other side to one waiter of this side.
            && other.waited.load(Ordering::Relaxed)
            && other.waited.swap(false, Ordering::Relaxed)
        {
            return spin_on(once);
        }
        #[cfg(loom)]
        let _ = other;
        done
    }
}

impl fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitQueue")
            // Relaxed: a snapshot for display.
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{Step, Stop, WaitQueue};
    use std::cell::Cell;
    use std::time::Instant;

    /// The spin runs the attempt only while the hint holds, except once past the deadline,
    /// where it runs it whatever the hint says before it answers `TimedOut`.
    #[test]
    fn the_spin_tries_only_when_ready_or_late() {
        let (queue, other) = (WaitQueue::new(), WaitQueue::new());
        let tries = Cell::new(0);
        let mut attempt = || {
            tries.set(tries.get() + 1);
            Step::<()>::NotReady
        };
        assert!(queue.spin(&other, None, &mut attempt, || false).is_none());
        assert_eq!(tries.get(), 0, "never ready, no deadline: no try");
        let late = Some(Instant::now());
        let ended = queue.spin(&other, late, &mut attempt, || false);
        assert!(matches!(ended, Some(Err(Stop::TimedOut))));
        assert_eq!(
            tries.get(),
            1,
            "past the deadline: one full try, then out of time"
        );
        let mut done = || Step::Done(7);
        assert!(matches!(
            queue.spin(&other, late, &mut done, || false),
            Some(Ok(7))
        ));
        assert!(matches!(
            queue.spin(&other, None, &mut done, || true),
            Some(Ok(7))
        ));
    }

    /// Waits on `queue` until `open` is set, counting each poll of the hint in `polls` (the
    /// hint never says ready, so only the full attempts after registering can end the wait).
    #[cfg(not(loom))]
    fn wait_for(
        queue: &super::WaitQueue,
        other: &super::WaitQueue,
        open: &crate::sync::AtomicBool,
        polls: &crate::sync::AtomicUsize,
    ) -> Result<(), Stop> {
        use crate::sync::Ordering::SeqCst;
        let attempt = || match open.load(SeqCst) {
            true => Step::Done(()),
            false => Step::NotReady,
        };
        let ready = || polls.fetch_add(1, SeqCst) == usize::MAX;
        queue.wait(other, None, attempt, ready, || false)
    }

    /// A waiter woken for a change another thread took (its retry after the wake-up fails)
    /// spins, polling the hint, before it registers again, so that notifiers meanwhile find
    /// the list empty.
    #[test]
    #[cfg(not(loom))]
    fn a_woken_waiter_whose_retry_fails_spins_before_registering_again() {
        use super::WaitQueue;
        use crate::sync::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        let (queue, other) = (WaitQueue::new(), WaitQueue::new());
        let (polls, open) = (AtomicUsize::new(0), AtomicBool::new(false));
        let registered = || {
            while queue.waiting.load(SeqCst) == 0 {
                crate::sync::yield_now();
            }
        };
        std::thread::scope(|s| {
            let waiter = s.spawn(|| wait_for(&queue, &other, &open, &polls));
            registered();
            let before = polls.load(SeqCst);
            // Takes it off the list (`waiting` 0, which this thread then reads or a later
            // value) and unparks it, with nothing for it to take.
            queue.notify_one();
            registered();
            let spun = polls.load(SeqCst) > before;
            open.store(true, SeqCst);
            queue.notify_one();
            assert!(waiter.join().unwrap().is_ok());
            assert!(spun, "registered again without spinning");
        });
    }

    /// After its short spin, a waiter spins on only if the other side has waited since a
    /// waiter of its side last looked (a stream whose channel fills and empties by turns), and
    /// clears that mark; else it parks after the short spin. Counted in polls of the hint: one
    /// per try, 10 for the short spin (7 spin steps and 3 yields), 112 more for the long one.
    /// A crowd of waiters on one side takes one long spin per wait of the other side: two
    /// waiters after one mark make 10 polls each for the short spin and 112 more between them.
    #[test]
    #[cfg(not(loom))]
    fn two_waiters_after_one_wait_of_the_other_side_make_one_long_spin() {
        use super::WaitQueue;
        use crate::sync::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        if crate::sync::cpus() < 2 {
            return; // with one CPU neither spin spins
        }
        let (queue, other) = (WaitQueue::new(), WaitQueue::new());
        other.waited.store(true, SeqCst);
        let (polls, open) = (AtomicUsize::new(0), AtomicBool::new(false));
        std::thread::scope(|s| {
            let waiters = [(); 2].map(|()| s.spawn(|| wait_for(&queue, &other, &open, &polls)));
            while queue.waiting.load(SeqCst) < 2 {
                crate::sync::yield_now();
            }
            let spun = polls.load(SeqCst);
            open.store(true, SeqCst);
            queue.notify_all();
            for w in waiters {
                assert!(w.join().unwrap().is_ok());
            }
            assert_eq!(spun, 10 + 10 + 112);
            assert!(!other.waited.load(SeqCst), "the one mark was taken");
        });
    }

    #[test]
    #[cfg(not(loom))]
    fn a_waiter_spins_long_only_after_the_other_side_waited() {
        use super::WaitQueue;
        use crate::sync::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        if crate::sync::cpus() < 2 {
            return; // with one CPU neither spin spins
        }
        for other_waited in [false, true] {
            let (queue, other) = (WaitQueue::new(), WaitQueue::new());
            other.waited.store(other_waited, SeqCst);
            let (polls, open) = (AtomicUsize::new(0), AtomicBool::new(false));
            std::thread::scope(|s| {
                let waiter = s.spawn(|| wait_for(&queue, &other, &open, &polls));
                while queue.waiting.load(SeqCst) == 0 {
                    crate::sync::yield_now();
                }
                let spun = polls.load(SeqCst);
                open.store(true, SeqCst);
                queue.notify_one();
                assert!(waiter.join().unwrap().is_ok());
                assert_eq!(
                    spun,
                    if other_waited { 122 } else { 10 },
                    "other side waited: {other_waited}"
                );
                assert!(
                    !other.waited.load(SeqCst),
                    "the mark is cleared by the long spin, or was never set"
                );
                assert!(queue.waited.load(SeqCst), "a wait marks its own side");
            });
        }
    }
}
