//! The channel's slot ring: Vyukov's bounded MPMC queue, split into claim and publish steps.
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue
//! (<https://www.1024cores.net/home/lock-free-algorithms/queues/bounded-mpmc-queue>), as the
//! pool's ring (`src/pool/ring.rs`) has it, with three changes the channel needs:
//!
//! - **Claim, then publish.** A push or pop is two calls: [`Ring::start_push`] /
//!   [`Ring::start_pop`] claim a position with one CAS and hand back a [`Claim`]; the caller
//!   touches the slot's value through [`Ring::with_claimed`], then [`Ring::finish_push`] /
//!   [`Ring::finish_pop`] publish it. The recycling channel runs the user's closure between the
//!   two, on the value in place (crossbeam-channel's `start_send`/`write` split has this shape).
//! - **The value type is the caller's.** A slot holds an `S`: `MaybeUninit<T>` for a plain
//!   channel (initialised only while full), a value that lives as long as the ring for a
//!   recycling one. The ring never reads or writes an `S` itself, and drops them only with
//!   itself (its boxed slots); [`Ring::for_each_queued`] lets the owner drop what is queued.
//! - **An exact capacity, and no waiting.** The capacity is what the user asked for (a
//!   backpressure bound), not a power of two; and where the pool's ring would spin on a slot
//!   another thread has claimed but not yet published, this one answers [`Refusal::Busy`] and lets
//!   the caller decide: a plain channel spins (the window is one move of a `T`), a recycling
//!   channel waits like on a full or empty ring (the window runs a user's closure).
//!
//! Neither call allocates or takes a lock; the slots are allocated once, by [`Ring::new`].
//!
//! # How it works
//!
//! `head` and `tail` are positions `lap | index`: the index (`< cap`) in the low bits, the lap
//! in multiples of `one_lap`, twice `mark`, the smallest power of two above `cap` (crossbeam's
//! layout, which keeps the capacity exact). `tail` also carries the `mark` bit: set once by
//! [`Ring::close_pushes`] when the last receiver goes, it makes every later push fail (its CAS
//! on `tail` fails, and the reload sees the mark), so no send succeeds after the disconnect.
//! Position `p` lives in slot `index(p)`; after index `cap - 1` comes index 0 of the next lap.
//! A slot's `stamp` says what the slot awaits:
//!
//! | stamp         | the slot is                              | next to act              |
//! | ------------- | ---------------------------------------- | ------------------------ |
//! | `p`           | empty, awaiting the push of position `p` | the push that claims `p` |
//! | `p + 1`       | full, holding the message pushed at `p`  | the pop that claims `p`  |
//! | `p + one_lap` | empty, awaiting the push one lap later   | the next lap's push      |
//!
//! `p + 1` has index at most `cap < one_lap`, so it never equals a position of the next lap.
//! A push reads `tail = p`; on stamp `p` it claims `p` by a CAS of `tail` to the next position,
//! and `finish_push` stores `p + 1`. A pop reads `head = p`; on stamp `p + 1` it claims `p` by a
//! CAS of `head`, and `finish_pop` stores `p + one_lap`. **Invariant:** from its CAS until its
//! finish, a claim's holder alone may touch the slot's value; every `unsafe` access rests on it.
//!
//! A stamp *behind* the expected one is ambiguous: a push that finds its slot still on the
//! previous lap sees a full ring or a pop between claim and finish; a pop that finds its slot
//! unfilled sees an empty ring or a push between claim and finish. Both re-read the other index
//! after a SeqCst fence: `head + one_lap == tail` is [`Refusal::Full`], `tail == head` is
//! [`Refusal::Empty`], anything else [`Refusal::Busy`]. One pop does not ask:
//! [`Ring::start_pop_published`], a receiver's first try before it waits, answers
//! [`Refusal::Unpublished`] at once (its wait decides later).
//!
//! A claim that loses its CAS (or finds its position taken) pauses before it retries, 1, 2, 4
//! … 64 spin hints as it keeps losing ([`contention_pause`]): with several senders or several
//! receivers on separate cores, retrying at once keeps the index's cache line moving between
//! them and every claim slows down. crossbeam-channel backs off the same way.
//!
//! # Orderings
//! The stamp publishes the value: its Release store in `finish_*` follows the caller's access,
//! and the Acquire stamp load in `start_*` precedes the next holder's. `head` and `tail` carry
//! only claims; their CASes are SeqCst so that they and the SeqCst fence before a full/empty
//! re-read are in one total order (crossbeam's argument that "full" and "empty" are
//! linearizable answers; see `src/pool/ring.rs`, "Orderings", for what loom checks of it).

use crate::sync::{contention_pause, fence, AtomicUsize, CachePadded, Ordering, UnsafeCell};
use std::{fmt, mem};

/// `finish_push` reads the depth on one push in this many (the pushes whose message number,
/// `lap × capacity + index`, is a multiple of it), not on every push: reading `head` pulls the
/// receivers' cache line to the sender, and the receiver's next pop pulls it back, which costs
/// more than the rest of a send; read on every 16th push, it still made a 1p1c channel nearly
/// twice as slow on one machine (the channel entries of the repository's JOURNAL.md have the
/// figures). Sampled, the high-water mark can read up to `DEPTH_SAMPLE - 1` below the true peak,
/// since at most that many pushes separate a peak from the last sample before it; and a receiver
/// may take the sampled message before the send reads `head`, so the sample can read lower still (0
/// at capacity 1): `Stats::high_water` says so.
pub(super) const DEPTH_SAMPLE: usize = 256;

/// One slot: a stamp and the caller's value.
struct Slot<S> {
    /// The position this slot awaits, and whether it is full (see the module doc's table).
    stamp: AtomicUsize,
    /// Touched only by a claim's holder (the module doc's invariant).
    value: UnsafeCell<S>,
}

/// A claimed position: the right to touch one slot's value until it is finished.
///
/// Only the ring makes one, and finishing consumes it, so a claim is finished at most once.
#[derive(Debug)]
#[must_use = "a claim must be finished, or the ring stalls at its position"]
pub(super) struct Claim {
    /// The claimed position (`lap | index`).
    pos: usize,
}

/// Why a `start_*` call claimed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// `start_push` only: every slot holds a message.
    Full,
    /// `start_pop` only: no slot holds a message.
    Empty,
    /// The next slot is claimed by another thread that has not finished yet.
    Busy,
    /// `start_push` only: pushes are closed (every receiver is gone).
    Closed,
    /// `start_pop_published` only: `head`'s slot holds no message yet (empty, or a push in
    /// flight: not asked).
    Unpublished,
}

/// A bounded MPMC ring of `S` slots with an exact capacity; see the module doc.
pub(super) struct Ring<S> {
    /// The next position to pop. Padded, like `tail`, so pops and pushes write different lines.
    head: CachePadded<AtomicUsize>,
    /// The next position to push, with [`Ring::mark`] set once pushes are closed.
    tail: CachePadded<AtomicUsize>,
    /// The bit of `tail` that closes it: the smallest power of two above the capacity, so it
    /// sits just above every index.
    mark: usize,
    /// What a position adds per lap: `2 * mark`.
    one_lap: usize,
    /// `capacity` slots.
    slots: Box<[Slot<S>]>,
}

impl<S> Ring<S> {
    /// A ring of exactly `capacity` slots, slot `i` holding `init(i)`.
    ///
    /// # Panics
    /// If `capacity` is 0 (callers refuse it first, with their own message), so large that the
    /// lap arithmetic would overflow (over `isize::MAX / 16`: the capacity plus one, rounded up
    /// to a power of two, must be at most `isize::MAX / 8`), or if the allocator cannot give the
    /// slots' memory: a panic with the capacity and the bytes asked for, where a plain `collect`
    /// would abort the process.
    #[track_caller]
    pub(super) fn new(capacity: usize, mut init: impl FnMut(usize) -> S) -> Self {
        assert!(capacity > 0, "a ring needs at least one slot");
        let mark = match capacity
            .checked_add(1)
            .and_then(usize::checked_next_power_of_two)
        {
            Some(mark) if mark <= isize::MAX as usize / 8 => mark,
            _ => panic!("thrifty::channel: capacity {capacity} is too large"),
        };
        let mut slots = Vec::new();
        if slots.try_reserve_exact(capacity).is_err() {
            cannot_allocate(capacity, mem::size_of::<Slot<S>>());
        }
        slots.extend((0..capacity).map(|i| Slot {
            // Slot `i` first awaits position `i` (lap 0).
            stamp: AtomicUsize::new(i),
            value: UnsafeCell::new(init(i)),
        }));
        let slots = slots.into_boxed_slice();
        Self {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            mark,
            one_lap: 2 * mark,
            slots,
        }
    }

    /// The number of slots.
    #[inline]
    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The slot position `pos` lives in.
    #[inline(always)]
    fn slot(&self, pos: usize) -> &Slot<S> {
        &self.slots[pos & (self.mark - 1)]
    }

    /// The position after `pos`: the next index, or index 0 of the next lap.
    #[inline(always)]
    fn next(&self, pos: usize) -> usize {
        self.advance(pos, 1)
    }

    /// Claims the tail position for a push.
    #[inline]
    pub(super) fn start_push(&self) -> Result<Claim, Refusal> {
        // Relaxed: a guess at the position, checked by the stamp and the CAS below.
        let mut tail = self.tail.load(Ordering::Relaxed);
        let mut step = 0u32;
        loop {
            if tail & self.mark != 0 {
                return Err(Refusal::Closed);
            }
            // Acquire: pairs with the Release store in `finish_pop`, so the last lap's access
            // to the value happens before ours.
            let stamp = self.slot(tail).stamp.load(Ordering::Acquire);
            // Stamps and the positions that reach them differ by about a lap, far below
            // `isize::MAX` (see `new`), so the wrapped difference has the right sign.
            let ahead = stamp.wrapping_sub(tail) as isize;
            if ahead == 0 {
                // Empty and awaiting `tail`: claim it. SeqCst: the total order with the fence
                // in `start_pop`'s empty check. Relaxed on failure: we only retry.
                match self.tail.compare_exchange_weak(
                    tail,
                    self.next(tail),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(Claim { pos: tail }),
                    Err(now) => {
                        tail = now;
                        contention_pause(&mut step);
                    }
                }
            } else if ahead < 0 {
                // Still on the previous lap: full, or a pop has claimed it and not finished.
                // SeqCst: orders this re-read after every `head` CAS before it.
                fence(Ordering::SeqCst);
                // Relaxed: the fence gives the ordering; nothing is read through it.
                let head = self.head.load(Ordering::Relaxed);
                return Err(if head.wrapping_add(self.one_lap) == tail {
                    Refusal::Full
                } else {
                    Refusal::Busy
                });
            } else {
                // Another push claimed `tail` first.
                contention_pause(&mut step);
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Claims the head position for a pop (oldest first).
    #[inline]
    pub(super) fn start_pop(&self) -> Result<Claim, Refusal> {
        self.pop_claim::<true>()
    }

    /// [`start_pop`](Self::start_pop) for a receiver that waits when nothing is published: if
    /// `head`'s slot holds no message yet it answers [`Refusal::Unpublished`] at once, without
    /// the empty check, whose fence and read of `tail` (the senders' line) a receiver that
    /// keeps up with its sender would otherwise pay once a message.
    #[inline]
    pub(super) fn start_pop_published(&self) -> Result<Claim, Refusal> {
        self.pop_claim::<false>()
    }

    /// `start_pop`'s loop; `DECIDE`: tell an empty ring from a push in flight when the slot is
    /// behind (else answer `Unpublished`).
    #[inline(always)]
    fn pop_claim<const DECIDE: bool>(&self) -> Result<Claim, Refusal> {
        // Relaxed: a guess at the position, checked by the stamp and the CAS below.
        let mut head = self.head.load(Ordering::Relaxed);
        let mut step = 0u32;
        loop {
            // Acquire: pairs with the Release store in `finish_push`, so we see its value.
            let stamp = self.slot(head).stamp.load(Ordering::Acquire);
            // Signed as in `start_push`.
            let ahead = stamp.wrapping_sub(head.wrapping_add(1)) as isize;
            if ahead == 0 {
                // Full with the message pushed at `head`: claim it. SeqCst: the total order
                // with the fence in `start_push`'s full check. Relaxed on failure: we retry.
                match self.head.compare_exchange_weak(
                    head,
                    self.next(head),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(Claim { pos: head }),
                    Err(now) => {
                        head = now;
                        contention_pause(&mut step);
                    }
                }
            } else if ahead < 0 {
                // Not filled for `head` yet: empty, or a push has claimed it and not finished.
                if !DECIDE {
                    return Err(Refusal::Unpublished);
                }
                // SeqCst: orders this re-read after every `tail` CAS before it.
                fence(Ordering::SeqCst);
                // Relaxed: the fence gives the ordering; nothing is read through it.
                let tail = self.tail.load(Ordering::Relaxed) & !self.mark;
                return Err(if tail == head {
                    Refusal::Empty
                } else {
                    Refusal::Busy
                });
            } else {
                // Another pop claimed `head` first.
                contention_pause(&mut step);
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Runs `f` on the claimed slot's value.
    ///
    /// # Safety
    /// `claim` must come from this ring's `start_*` and not be finished yet: then the caller
    /// alone may touch the value (the module doc's invariant) for as long as `f` runs.
    #[inline(always)]
    pub(super) unsafe fn with_claimed<R>(&self, claim: &Claim, f: impl FnOnce(*mut S) -> R) -> R {
        self.slot(claim.pos).value.with_mut(f)
    }

    /// Publishes a claimed push: the slot now holds a message for the pop of its position.
    /// On every [`DEPTH_SAMPLE`]th message, returns the depth seen just after (a statistic).
    #[inline]
    pub(super) fn finish_push(&self, claim: Claim) -> Option<usize> {
        // Release: pairs with the Acquire stamp load in `start_pop`, which then sees the value.
        self.slot(claim.pos)
            .stamp
            .store(claim.pos.wrapping_add(1), Ordering::Release);
        // The message's number: laps before it times the capacity, plus its index. `one_lap`
        // is a power of two, so the lap is a shift.
        let lap = claim.pos >> self.one_lap.trailing_zeros();
        let number = lap
            .wrapping_mul(self.capacity())
            .wrapping_add(claim.pos & (self.mark - 1));
        if number % DEPTH_SAMPLE != 0 {
            return None;
        }
        // Relaxed: a statistic. It is at least the head that freed our slot (our Acquire load
        // of its stamp came after that pop's `head` CAS), so the depth is at most `cap`.
        let head = self.head.load(Ordering::Relaxed);
        self.depth_after(head, claim.pos)
    }

    /// The depth just after the push of `pos`, given a `head` read after it; `None` if `head` is
    /// already past that push's next position (other threads pushed and popped in between, so
    /// nothing says how deep the queue was).
    fn depth_after(&self, head: usize, pos: usize) -> Option<usize> {
        let next = self.next(pos);
        // Positions grow across laps (`one_lap` > `cap`), so their wrapping difference is
        // negative exactly when `head` is ahead.
        ((next.wrapping_sub(head) as isize) >= 0).then(|| self.distance(head, next))
    }

    /// Publishes a claimed pop: the slot is free for the push one lap later.
    #[inline]
    pub(super) fn finish_pop(&self, claim: Claim) {
        // Release: pairs with the Acquire stamp load in `start_push`, so our access to the
        // value happens before the next lap's.
        self.slot(claim.pos)
            .stamp
            .store(claim.pos.wrapping_add(self.one_lap), Ordering::Release);
    }

    /// Closes the ring to pushes: every later `start_push` answers [`Refusal::Closed`], and one
    /// in flight has either claimed its position already or fails its CAS and sees the mark.
    pub(super) fn close_pushes(&self) {
        // SeqCst: in the total order with the claims' CASes, so a push is either before the
        // close (and queued) or after it (and refused).
        self.tail.fetch_or(self.mark, Ordering::SeqCst);
    }

    /// Messages between `head` and `tail` (unmarked), at most the capacity.
    fn distance(&self, head: usize, tail: usize) -> usize {
        let (h, t) = (head & (self.mark - 1), tail & (self.mark - 1));
        match h.cmp(&t) {
            std::cmp::Ordering::Less => t - h,
            std::cmp::Ordering::Greater => self.capacity() - h + t,
            std::cmp::Ordering::Equal if head == tail => 0,
            std::cmp::Ordering::Equal => self.capacity(),
        }
    }

    /// Whether `head`'s slot holds its message: a pop would likely claim now. A hint for a
    /// waiter's spin, read without a fence or a look at `tail`, so that a receiver waiting on an
    /// empty ring polls only the line the next push writes anyway (`start_pop`'s empty check
    /// reads `tail`, and each such read makes the sender's next claim fetch that line back).
    /// Never a decision: the claim that follows it checks everything.
    #[inline]
    pub(super) fn pop_ready(&self) -> bool {
        // Relaxed (both): a hint; `start_pop` rereads both with the orderings a claim needs.
        let head = self.head.load(Ordering::Relaxed);
        self.slot(head).stamp.load(Ordering::Relaxed) == head.wrapping_add(1)
    }

    /// Whether the slot `ahead` positions past `tail` is free for its push (0: `tail`'s own, so
    /// a push would likely claim now), or pushes are closed (a push would finish, refused). The
    /// sender's counterpart of [`pop_ready`](Self::pop_ready); with `ahead` > 0, a sender that
    /// found the ring full waits for a batch of free slots (receivers pop in order, so the
    /// slot `ahead` past `tail` is about the last of the batch to free) without reading `head`,
    /// which every pop writes.
    #[inline]
    pub(super) fn push_ready(&self, ahead: usize) -> bool {
        // Relaxed (both): as in `pop_ready`.
        let tail = self.tail.load(Ordering::Relaxed);
        if tail & self.mark != 0 {
            return true;
        }
        let pos = self.advance(tail, ahead);
        self.slot(pos).stamp.load(Ordering::Relaxed) == pos
    }

    /// The position `k` after `pos`: `k` indices on, across one lap's end if it comes first.
    /// `k` must be at most the capacity and `pos` a position (no `mark` bit).
    #[inline(always)]
    fn advance(&self, pos: usize, k: usize) -> usize {
        debug_assert!(k <= self.capacity() && pos & self.mark == 0);
        let index = (pos & (self.mark - 1)) + k;
        match index.checked_sub(self.capacity()) {
            None => pos + k,
            Some(past) => (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap) + past,
        }
    }

    /// Messages claimed for a push and not yet claimed by a pop: a snapshot.
    pub(super) fn len(&self) -> usize {
        loop {
            // SeqCst (all three): one total order with the index CASes, so reading `tail`
            // twice around `head` yields a pair that held at one instant.
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) == tail {
                return self.distance(head, tail & !self.mark);
            }
        }
    }

    /// Runs `f` on the value of every position between `head` and `tail`, oldest first: the
    /// queued messages, once no operation is in flight (`&mut self` proves it).
    ///
    /// If `f` panics, the walk goes on with the next position as the panic unwinds, as a
    /// `Vec`'s drop goes on past an element whose drop panics (a second panic aborts, as there).
    pub(super) fn for_each_queued(&mut self, mut f: impl FnMut(&mut S)) {
        // Relaxed: `&mut self` means every claim is finished, and whatever handed us the ring
        // (a join, the last `Arc` drop) ordered those finishes before us.
        let tail = self.tail.load(Ordering::Relaxed) & !self.mark;
        let pos = self.head.load(Ordering::Relaxed);
        let mut walk = Queued {
            ring: self,
            pos,
            tail,
            f: &mut f,
        };
        walk.rest();
    }
}

/// [`Ring::for_each_queued`]'s walk from `pos` to `tail`; dropped during a panic in `f`, it
/// walks the rest.
struct Queued<'a, S, F: FnMut(&mut S)> {
    ring: &'a Ring<S>,
    pos: usize,
    tail: usize,
    f: &'a mut F,
}

impl<S, F: FnMut(&mut S)> Queued<'_, S, F> {
    fn rest(&mut self) {
        while self.pos != self.tail {
            let pos = self.pos;
            // Past `pos` before `f` runs on it: a panic in `f` resumes with the next.
            self.pos = self.ring.next(pos);
            // SAFETY: no claim is in flight (`for_each_queued` holds `&mut Ring`), so nothing
            // else touches the value, and each position is visited once.
            self.ring
                .slot(pos)
                .value
                .with_mut(|v| (self.f)(unsafe { &mut *v }));
        }
    }
}

impl<S, F: FnMut(&mut S)> Drop for Queued<'_, S, F> {
    fn drop(&mut self) {
        // Only left to do if `f` panicked.
        self.rest();
    }
}

/// The slots' allocation failed: a panic that names the request (the global allocator's failure
/// handler would abort the process).
#[cold]
#[inline(never)]
#[track_caller]
fn cannot_allocate(capacity: usize, slot_bytes: usize) -> ! {
    panic!(
        "thrifty::channel: cannot allocate {capacity} slots of {slot_bytes} bytes (capacity too \
         large for this machine's memory)"
    )
}

// SAFETY: a `Ring<S>` owns its `S`s; sending the ring sends them, which `S: Send` allows.
unsafe impl<S: Send> Send for Ring<S> {}
// SAFETY: through `&Ring<S>` a thread touches a slot's value only while it holds the claim (the
// module doc's invariant), one thread at a time, so sharing the ring only hands `S`s between
// threads, which `S: Send` allows.
unsafe impl<S: Send> Sync for Ring<S> {}

impl<S> fmt::Debug for Ring<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn a_head_already_past_the_push_gives_no_depth() {
        let ring = Ring::new(32, |_| ());
        // Just after the push of position 0: one message, or none if popped meanwhile.
        assert_eq!(ring.depth_after(0, 0), Some(1));
        assert_eq!(ring.depth_after(1, 0), Some(0));
        // Others pushed 1..=3 and popped 0..=3 before this push's thread read `head`: the
        // distance from 4 round to 1 would read 29 of 32 slots full.
        assert_eq!(ring.depth_after(4, 0), None);
        // Across a lap: pushed the last index of lap 0, head at index 20 of lap 0, or past it.
        let last = 31;
        assert_eq!(ring.depth_after(20, last), Some(12));
        assert_eq!(ring.depth_after(ring.next(last) + 2, last), None);
        // A full ring: head one lap behind the next position.
        assert_eq!(ring.depth_after(0, last), Some(32));
    }

    /// The spin's hints follow the slot the next claim needs: `pop_ready` only while `head`'s
    /// slot is published (not while a push holds it claimed), `push_ready` only while `tail`'s
    /// slot is free, and once pushes are closed; both across the lap's wrap.
    #[test]
    fn the_ready_hints_follow_the_next_claims_slot() {
        let ring = Ring::new(2, |_| ());
        assert!(!ring.pop_ready() && ring.push_ready(0), "empty");
        for _lap in 0..3 {
            let push = ring.start_push().expect("room");
            assert!(!ring.pop_ready(), "a claimed push is not published yet");
            ring.finish_push(push);
            assert!(
                ring.pop_ready() && ring.push_ready(0),
                "one of two slots full"
            );
            let second = ring.start_push().expect("room");
            ring.finish_push(second);
            assert!(!ring.push_ready(0), "full");
            let pop = ring.start_pop().expect("a message");
            assert!(!ring.push_ready(0), "tail's slot still inside a pop");
            ring.finish_pop(pop);
            assert!(ring.push_ready(0) && ring.pop_ready(), "one left");
            ring.finish_pop(ring.start_pop().expect("a message"));
            assert!(!ring.pop_ready(), "empty again");
        }
        ring.close_pushes();
        assert!(ring.push_ready(0), "closed: a push would finish, refused");
    }

    /// `start_pop_published` claims a published message as `start_pop` does, and answers
    /// `Unpublished` for an empty ring and for a push still in flight alike (which `start_pop`
    /// tells apart).
    #[test]
    fn start_pop_published_leaves_empty_and_in_flight_undecided() {
        use super::Refusal;
        let ring = Ring::new(4, |_| ());
        assert_eq!(ring.start_pop().unwrap_err(), Refusal::Empty);
        assert_eq!(
            ring.start_pop_published().unwrap_err(),
            Refusal::Unpublished
        );
        let push = ring.start_push().expect("room");
        assert_eq!(ring.start_pop().unwrap_err(), Refusal::Busy);
        assert_eq!(
            ring.start_pop_published().unwrap_err(),
            Refusal::Unpublished
        );
        ring.finish_push(push);
        let pop = ring.start_pop_published().expect("a published message");
        ring.finish_pop(pop);
        assert_eq!(
            ring.start_pop_published().unwrap_err(),
            Refusal::Unpublished
        );
    }

    /// `push_ready(k)` looks `k` slots past `tail`, across a lap's end, on a capacity that is
    /// not a power of two: it holds once the oldest `k + 1` messages have been popped.
    #[test]
    fn push_ready_ahead_waits_for_the_batch_across_laps() {
        let ring = Ring::new(3, |_| ());
        for _lap in 0..4 {
            for _ in 0..3 {
                ring.finish_push(ring.start_push().expect("room"));
            }
            assert!(!ring.push_ready(0) && !ring.push_ready(2), "full");
            ring.finish_pop(ring.start_pop().expect("a message"));
            assert!(ring.push_ready(0) && !ring.push_ready(1), "one free");
            ring.finish_pop(ring.start_pop().expect("a message"));
            assert!(ring.push_ready(1) && !ring.push_ready(2), "two free");
            ring.finish_pop(ring.start_pop().expect("a message"));
            assert!(ring.push_ready(2), "all free");
            // Move `tail` one on, so each lap starts the batch at another index.
            ring.finish_push(ring.start_push().expect("room"));
            ring.finish_pop(ring.start_pop().expect("a message"));
        }
    }

    /// A capacity the allocator cannot serve panics with the request, where collecting the
    /// slots would abort the whole process (16 bytes a slot: 2^58 slots are 4 EiB, past any
    /// address space, so no overcommit setting grants them).
    #[test]
    #[cfg(target_pointer_width = "64")] // 2^58 slots: no such `usize` below 64 bits
    #[cfg_attr(miri, ignore = "Miri reports an allocation this large as unsupported")]
    fn a_capacity_beyond_memory_panics_instead_of_aborting() {
        let made = std::panic::catch_unwind(|| Ring::new(1 << 58, |_| 0u64));
        let panic = made.expect_err("no machine has 4 EiB to give");
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(
            message.contains("cannot allocate 288230376151711744 slots"),
            "{message}"
        );
    }

    /// A message that counts its drops in `drops[id]`, and panics in its `Drop` if `panics`.
    struct Counted<'a> {
        id: usize,
        panics: bool,
        drops: &'a [std::cell::Cell<u32>],
    }

    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.drops[self.id].set(self.drops[self.id].get() + 1);
            if self.panics {
                panic!("expected: a queued message's drop panics");
            }
        }
    }

    /// Pushes `value` into `ring`, which must have room.
    fn push<'a>(ring: &Ring<std::mem::MaybeUninit<Counted<'a>>>, value: Counted<'a>) {
        let claim = ring.start_push().expect("room");
        // SAFETY: our unfinished claim on an empty slot (its last pop moved its value out).
        unsafe { ring.with_claimed(&claim, |v| (*v).write(value)) };
        ring.finish_push(claim);
    }

    /// `for_each_queued` visits every queued message once, oldest first, across a lap's end,
    /// and goes on past a closure that panics (here on the 2nd message, whose `Drop` panics, as
    /// `Plain`'s drop runs it), whose panic then reaches the caller. Native builds reach this
    /// walk only under loom (the last `Receiver` drains the ring first), so it is tested here,
    /// and under Miri for the `MaybeUninit` reads and drops. Fails if the walk stops at the
    /// panic (the 3rd message leaks), revisits a position, or starts at the wrong one.
    #[test]
    fn for_each_queued_drops_each_message_once_past_a_panicking_drop() {
        use std::cell::Cell;
        use std::mem::MaybeUninit;
        use std::panic::{catch_unwind, AssertUnwindSafe};

        let drops: Vec<Cell<u32>> = (0..5).map(|_| Cell::new(0)).collect();
        let mut ring = Ring::new(3, |_| MaybeUninit::<Counted<'_>>::uninit());
        // Two messages pushed and popped first, so the three queued ones sit at indices 2, 0
        // and 1: the walk crosses the lap's end after the first.
        for id in 3..5 {
            push(
                &ring,
                Counted {
                    id,
                    panics: false,
                    drops: &drops,
                },
            );
            let claim = ring.start_pop().expect("a message");
            // SAFETY: our unfinished claim on a full slot; the value is moved out once.
            drop(unsafe { ring.with_claimed(&claim, |v| (*v).assume_init_read()) });
            ring.finish_pop(claim);
        }
        for id in 0..3 {
            push(
                &ring,
                Counted {
                    id,
                    panics: id == 1,
                    drops: &drops,
                },
            );
        }
        assert_eq!(ring.len(), 3);
        let visited = Cell::new(Vec::new());
        let walk = catch_unwind(AssertUnwindSafe(|| {
            ring.for_each_queued(|v| {
                // SAFETY: every queued slot holds a value pushed above and not popped.
                let id = unsafe { v.assume_init_ref() }.id;
                let mut seen = visited.take();
                seen.push(id);
                visited.set(seen);
                // SAFETY: as above; each position is visited once, so dropped once.
                unsafe { v.assume_init_drop() };
            })
        }));
        let panic = walk.expect_err("the 2nd message's drop panic reaches the caller");
        assert_eq!(
            panic.downcast_ref::<&str>(),
            Some(&"expected: a queued message's drop panics")
        );
        assert_eq!(visited.take(), [0, 1, 2], "each visited once, oldest first");
        let counts: Vec<u32> = drops.iter().map(Cell::get).collect();
        assert_eq!(
            counts, [1; 5],
            "each dropped once, the one after the panic too"
        );
    }

    /// Capacities past the lap arithmetic's range panic with the crate's message, `usize::MAX`
    /// included (whose `+ 1` overflowed first).
    #[test]
    fn a_capacity_past_the_lap_range_panics_with_its_message() {
        for capacity in [usize::MAX, usize::MAX / 2, isize::MAX as usize / 8] {
            let panic = std::panic::catch_unwind(|| Ring::new(capacity, |_| ()))
                .expect_err("no ring of that many slots");
            let message = panic.downcast_ref::<String>().expect("a formatted message");
            assert!(message.contains("is too large"), "{capacity}: {message}");
        }
    }
}
