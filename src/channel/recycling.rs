//! [`RecyclingSender`] and [`RecyclingReceiver`]: the ends of a [`recycling`](super::recycling)
//! channel, whose slots keep their values between messages.
//!
//! A sender fills a slot's value in place (`send_with`), a receiver reads it in place
//! (`recv_with`) and the slot is [`Reset`] before it is freed, so a `String` or `Vec` keeps its
//! buffer for the next message. If a closure panics, its slot is reset and released as if the
//! operation had not happened: a panicking `send_with` sends nothing (though its slot stays
//! taken, counted in the depth, until a receiver passes over it), a panicking `recv_with` has
//! consumed its message.
//!
//! If a [`Reset`] panics, the slot may still hold what the reset should have cleared: it is
//! marked dirty, and the next `send_with` that claims it resets it again before its closure
//! runs, so no message carries an earlier one's contents.

use super::chan::{deadline, Chan, OnBusy};
use super::ring::Claim;
use super::wait::{Step, Stop};
use super::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, Stats, TryRecvError, TrySendError,
};
use crate::sync::Arc;
use crate::Reset;
use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::{Duration, Instant};

/// One recycling slot: the value, whether a panicking `send_with` left it unsent, and whether
/// its last reset panicked.
pub(super) struct Held<T> {
    pub(super) value: T,
    /// The push that claimed this slot panicked: receivers skip it.
    skip: bool,
    /// The last `reset` of `value` panicked, so it may hold an earlier message (or part of
    /// one): the next push resets it before `fill` runs. Read only on the push's way in, a
    /// byte beside the value it is about to write; set only on a panic.
    dirty: bool,
}

impl<T: Reset> Held<T> {
    /// A slot around a freshly made value, reset in case the factory left something in it.
    pub(super) fn new(mut value: T) -> Self {
        value.reset();
        Self {
            value,
            skip: false,
            dirty: false,
        }
    }

    /// Resets a value whose last reset panicked. If this one panics too, the slot stays dirty
    /// and the panic goes on (the sender's guard then gives the slot up unsent).
    #[cold]
    #[inline(never)]
    fn clean(&mut self) {
        self.value.reset();
        self.dirty = false;
    }
}

/// The sending end of a [`recycling`](super::recycling) channel. Clone it for more producers.
///
/// Use it when messages own buffers (`String`, `Vec`) that the channel should keep: `send_with`
/// fills a slot's value in place. To hand the value itself over, use a
/// [`bounded`](super::bounded) [`Sender`](super::Sender).
///
/// # Examples
/// ```
/// use std::fmt::Write;
///
/// let (tx, rx) = thrifty::channel::recycling(8, || String::with_capacity(64));
/// tx.send_with(|s| write!(s, "order {}", 42)).unwrap().unwrap();
/// assert_eq!(rx.recv_with(|s| s.clone()), Ok("order 42".to_string()));
/// ```
///
/// # Allocation and cost
/// A send allocates nothing once its slot's value has the capacity the message needs
/// (`tests/alloc_channel.rs`); otherwise only what the closure's own growth of the value
/// allocates, kept for later laps. Otherwise as a [`Sender`](super::Sender), plus a fence
/// before the waiter check and a check of the slot's "last reset panicked" mark.
pub struct RecyclingSender<T: Reset> {
    pub(super) chan: Arc<Chan<Held<T>>>,
}

/// The receiving end of a [`recycling`](super::recycling) channel. Clone it for more
/// consumers; each message goes to exactly one of them.
///
/// It reads each message in place ([`recv_with`](Self::recv_with)), then the slot is reset and
/// goes back to the senders with its buffer: no allocation per message.
///
/// Use it when the receiver can do its work on a borrowed message; a message that must outlive
/// the receive is better sent through a [`bounded`](super::bounded) channel.
///
/// # Examples
/// ```
/// let (tx, rx) = thrifty::channel::recycling(2, Vec::<u8>::new);
/// tx.send_with(|v| v.extend_from_slice(b"abc")).unwrap();
/// assert_eq!(rx.recv_with(|v| v.len()), Ok(3));
/// assert!(rx.try_recv_with(|v| v.len()).unwrap_err().is_empty());
/// drop(tx);
/// assert!(rx.try_recv_with(|v| v.len()).unwrap_err().is_disconnected());
/// ```
///
/// # Allocation and cost
/// No allocation per message; the slot's [`Reset`] runs after the closure. Otherwise as a
/// [`Receiver`](super::Receiver).
pub struct RecyclingReceiver<T: Reset> {
    pub(super) chan: Arc<Chan<Held<T>>>,
}

// A closure that panics in a send or receive leaves its slot reset and published (`SendGuard`,
// `RecvGuard` below): no half-written message reaches a receiver and no slot is lost, so an end
// may be used across `catch_unwind`, as a plain channel's.
impl<T: Reset> UnwindSafe for RecyclingSender<T> {}
impl<T: Reset> RefUnwindSafe for RecyclingSender<T> {}
impl<T: Reset> UnwindSafe for RecyclingReceiver<T> {}
impl<T: Reset> RefUnwindSafe for RecyclingReceiver<T> {}

/// Releases a claimed send slot if the user's closure (or the reset of a dirty slot before it)
/// unwinds: marks it a slot to skip, resets it (marking it dirty if that reset panics) and
/// publishes it, so receivers neither wait on it for ever nor see half a message, and the next
/// push into it never starts from that half.
struct SendGuard<'a, T: Reset> {
    chan: &'a Chan<Held<T>>,
    claim: Option<Claim>,
}

impl<T: Reset> Drop for SendGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(claim) = self.claim.take() {
            // SAFETY: the claim is ours and unfinished (the guard holds it), so we alone touch
            // the slot.
            let reset = unsafe {
                self.chan.ring.with_claimed(&claim, |held| {
                    (*held).skip = true;
                    let reset = reset_caught(&mut (*held).value);
                    // Cleared only by a reset that completed (this one may follow the failed
                    // reset of a dirty slot).
                    (*held).dirty = reset.is_err();
                    reset
                })
            };
            self.chan.publish_send(claim, OnBusy::Wait);
            resume_if_alone(reset);
        }
    }
}

/// Frees a claimed receive slot whether or not the user's closure unwinds: resets it (marking it
/// dirty if that reset panics, for the next push to reset again), then publishes it empty.
struct RecvGuard<'a, T: Reset> {
    chan: &'a Chan<Held<T>>,
    claim: Option<Claim>,
}

impl<T: Reset> Drop for RecvGuard<'_, T> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl<T: Reset> RecvGuard<'_, T> {
    /// Resets and publishes the slot, once (the drop after it finds nothing to do).
    fn finish(&mut self) {
        if let Some(claim) = self.claim.take() {
            // SAFETY: the claim is ours and unfinished, so we alone touch the slot.
            let reset = unsafe {
                self.chan.ring.with_claimed(&claim, |held| {
                    let reset = reset_caught(&mut (*held).value);
                    if reset.is_err() {
                        (*held).dirty = true;
                    }
                    reset
                })
            };
            self.chan.publish_recv(claim, OnBusy::Wait);
            resume_if_alone(reset);
        }
    }
}

/// Resets `value`, catching a panic from a user's [`Reset`]: the guards must publish the slot
/// either way, or the ring would stall at its position for good.
fn reset_caught<T: Reset>(value: &mut T) -> std::thread::Result<()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| value.reset()))
}

/// Lets a `reset` panic continue once its slot is published, unless the thread is already
/// unwinding (from the user's closure): a second panic in a destructor would abort.
fn resume_if_alone(reset: std::thread::Result<()>) {
    if let Err(panic) = reset {
        if !std::thread::panicking() {
            std::panic::resume_unwind(panic);
        }
    }
}

impl<T: Reset> RecyclingSender<T> {
    /// Runs `fill` on a claimed slot, first resetting it if its last reset panicked, then
    /// publishes it.
    #[inline]
    fn fill<R>(&self, claim: Claim, fill: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = SendGuard {
            chan: &self.chan,
            claim: Some(claim),
        };
        let claim_ref = guard.claim.as_ref().expect("just set");
        // SAFETY: the claim is ours and unfinished, so we alone touch the slot; the `&mut`s
        // live only while `clean` and `fill` run, before the guard finishes the claim.
        let out = unsafe {
            self.chan.ring.with_claimed(claim_ref, |held| {
                if (*held).dirty {
                    Held::clean(&mut *held);
                }
                fill(&mut (*held).value)
            })
        };
        let claim = guard.claim.take().expect("still held");
        self.chan.publish_send(claim, OnBusy::Wait);
        out
    }

    /// Sends a message by filling a slot in place: `fill` gets the slot's value, already
    /// reset, and what it writes is the message. Waits while the channel is full. Returns what
    /// `fill` returns.
    ///
    /// If the slot's last [`Reset`] panicked (after a receive, or after a failed send), the
    /// slot is reset again here, before `fill` runs.
    ///
    /// `fill` runs while the slot is claimed: receivers wait for it (they do not spin), so keep
    /// it short, and never block in it on this same channel.
    ///
    /// # Errors
    /// [`SendError`] holding `fill`, not run, if every receiver is gone. A `fill` that borrows
    /// (`|buf| buf.extend_from_slice(data)`) makes the error borrow too, so `?` cannot turn it
    /// into a `Box<dyn Error>` or an `anyhow::Error`, which must be `'static`: drop the closure
    /// first.
    /// ```
    /// use std::error::Error;
    /// use thrifty::channel::{RecyclingSender, SendError};
    ///
    /// fn forward(tx: &RecyclingSender<Vec<u8>>, data: &[u8]) -> Result<(), Box<dyn Error>> {
    ///     tx.send_with(|buf| buf.extend_from_slice(data)).map_err(|_| SendError(()))?;
    ///     Ok(())
    /// }
    /// let (tx, rx) = thrifty::channel::recycling(2, Vec::new);
    /// forward(&tx, b"abc").unwrap();
    /// drop(rx);
    /// assert_eq!(forward(&tx, b"d").unwrap_err().to_string(), SendError(()).to_string());
    /// ```
    ///
    /// # Panics
    /// If `fill` panics the panic propagates; the slot is reset and nothing is sent. If the
    /// slot's [`Reset`] panics then, that second panic is dropped (the first one goes on) and
    /// the slot is reset again before the next `fill` that gets it. If the reset of a slot
    /// whose last reset panicked panics again, that panic propagates, `fill` is dropped unrun
    /// and nothing is sent, as if `fill` had panicked.
    ///
    /// A failed send still holds its slot until a receiver passes over it: the slot counts in
    /// [`len`](Self::len), [`is_full`](Self::is_full) and [`Stats::high_water`] and later sends
    /// wait for it like for any queued message (with capacity 1, a retry waits for a receive).
    ///
    /// # Cost
    /// As [`Sender::send`](super::Sender::send), plus `fill`. Allocates only what `fill` makes
    /// the value grow by: nothing, once the slots' values are as large as the messages.
    pub fn send_with<R, F: FnOnce(&mut T) -> R>(&self, fill: F) -> Result<R, SendError<F>> {
        let claim = match self.chan.claim_send(OnBusy::Wait) {
            Step::Done(claim) => claim,
            Step::Closed => return Err(SendError(fill)),
            Step::NotReady => match self.chan.claim_send_slow(OnBusy::Wait, None) {
                Ok(claim) => claim,
                Err(_) => return Err(SendError(fill)),
            },
        };
        Ok(self.fill(claim, fill))
    }

    /// [`send_with`](Self::send_with) if a slot is free now; never waits.
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Disconnected`], each holding `fill`, not run.
    /// `Full` also while the next slot in line is still inside a receiver's `recv_with`
    /// closure, even if other slots are free: the ring hands out its slots in order. It
    /// counts in [`Stats::full_sends`](super::Stats::full_sends).
    pub fn try_send_with<R, F: FnOnce(&mut T) -> R>(&self, fill: F) -> Result<R, TrySendError<F>> {
        match self.chan.claim_send(OnBusy::Wait) {
            Step::Done(claim) => Ok(self.fill(claim, fill)),
            Step::Closed => Err(TrySendError::Disconnected(fill)),
            Step::NotReady => {
                self.chan.note_full();
                Err(TrySendError::Full(fill))
            }
        }
    }

    /// [`send_with`](Self::send_with), waiting at most `timeout` for a free slot (a zero
    /// `timeout` makes one try; `Duration::MAX` waits without limit).
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Disconnected`], holding `fill`.
    pub fn send_with_timeout<R, F: FnOnce(&mut T) -> R>(
        &self,
        fill: F,
        timeout: Duration,
    ) -> Result<R, SendTimeoutError<F>> {
        self.send_with_until(fill, deadline(timeout))
    }

    /// [`send_with_timeout`](Self::send_with_timeout) until the instant `deadline`: one
    /// deadline shared by several sends.
    ///
    /// # Errors
    /// As [`send_with_timeout`](Self::send_with_timeout).
    pub fn send_with_deadline<R, F: FnOnce(&mut T) -> R>(
        &self,
        fill: F,
        deadline: Instant,
    ) -> Result<R, SendTimeoutError<F>> {
        self.send_with_until(fill, Some(deadline))
    }

    /// The send with a deadline: `None` waits for ever.
    fn send_with_until<R, F: FnOnce(&mut T) -> R>(
        &self,
        fill: F,
        end: Option<Instant>,
    ) -> Result<R, SendTimeoutError<F>> {
        let claim = match self.chan.claim_send(OnBusy::Wait) {
            Step::Done(claim) => claim,
            Step::Closed => return Err(SendTimeoutError::Disconnected(fill)),
            Step::NotReady => match self.chan.claim_send_slow(OnBusy::Wait, end) {
                Ok(claim) => claim,
                Err(Stop::Closed) => return Err(SendTimeoutError::Disconnected(fill)),
                Err(Stop::TimedOut) => return Err(SendTimeoutError::Timeout(fill)),
            },
        };
        Ok(self.fill(claim, fill))
    }

    /// Messages queued now (a snapshot), counting a slot whose `send_with` fill panicked until
    /// a receiver passes over it.
    pub fn len(&self) -> usize {
        self.chan.ring.len()
    }

    /// Whether no message is queued now; like [`len`](Self::len), a slot whose `send_with`
    /// fill panicked counts until a receiver passes over it.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every slot holds a message now (counting as [`len`](Self::len) does).
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.chan.ring.capacity()
    }

    /// Whether this sender and `other` belong to the same channel.
    pub fn same_channel(&self, other: &RecyclingSender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    /// Whether every receiver is gone.
    pub fn is_disconnected(&self) -> bool {
        self.chan.receivers_gone()
    }

    /// Depth, high-water mark and full-count; see [`Stats`].
    pub fn stats(&self) -> Stats {
        self.chan.stats()
    }
}

impl<T: Reset> RecyclingReceiver<T> {
    /// One try at claiming a message, passing over slots a panicking sender gave up.
    fn try_claim(&self) -> Step<Claim> {
        loop {
            match self.chan.claim_recv(OnBusy::Wait) {
                Step::Done(claim) => {
                    if let Some(claim) = self.unless_given_up(claim) {
                        return Step::Done(claim);
                    }
                }
                other => return other,
            }
        }
    }

    /// Claims a message, waiting until `end` (`None`: for ever) and passing over slots a
    /// panicking sender gave up. The first try skips the empty check
    /// ([`Chan::claim_recv_first`](super::chan::Chan::claim_recv_first)).
    fn claim(&self, end: Option<Instant>) -> Result<Claim, Stop> {
        loop {
            let claim = match self.chan.claim_recv_first() {
                Some(claim) => claim,
                None => self.chan.claim_recv_slow(OnBusy::Wait, end)?,
            };
            if let Some(claim) = self.unless_given_up(claim) {
                return Ok(claim);
            }
        }
    }

    /// `claim`, unless its slot is one a panicking sender gave up: the sender's guard reset it,
    /// or marked it dirty for the next push to reset, so it is freed (`None`) for the caller
    /// to look again.
    fn unless_given_up(&self, claim: Claim) -> Option<Claim> {
        // SAFETY: the claim is ours and unfinished.
        let skip = unsafe {
            self.chan
                .ring
                .with_claimed(&claim, |held| std::mem::take(&mut (*held).skip))
        };
        if skip {
            self.chan.publish_recv(claim, OnBusy::Wait);
            return None;
        }
        Some(claim)
    }

    /// Runs `read` on a claimed message, then resets and frees the slot.
    #[inline]
    fn read<R>(&self, claim: Claim, read: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = RecvGuard {
            chan: &self.chan,
            claim: Some(claim),
        };
        let claim_ref = guard.claim.as_ref().expect("just set");
        // SAFETY: the claim is ours and unfinished; `&mut` lives only while `read` runs, before
        // the guard resets and frees the slot.
        let out = unsafe {
            self.chan
                .ring
                .with_claimed(claim_ref, |held| read(&mut (*held).value))
        };
        // Finished here, while `out` is a local: if the reset panics, the unwind drops `out`. A
        // guard dropped at the end of the scope, after `out` moved to the return place, would
        // leak it (rust-lang/rust#47949). By `&mut`, not moved into `drop`: a move copies it.
        guard.finish();
        out
    }

    /// Receives the oldest message by reading it in place: `read` gets the slot's value (it may
    /// take parts of it, e.g. `std::mem::take`, at the cost of the buffer). The slot is reset
    /// and freed after `read` returns. Waits while the channel is empty.
    ///
    /// `read` runs while the slot is claimed, so never block in it on sending to this same
    /// channel: slots are handed out in ring order, and when the ring was full as the read
    /// began, the send's slot is this one, which frees only after `read` returns (a blocking
    /// send then waits for ever, a timed one times out, even with the channel empty). Nor on
    /// receiving from it: the next message may need a slot that a read in progress holds (at
    /// capacity 1 always), so a read that waits for a second message (a header's body) waits
    /// for ever; take what the first message says and receive the next after `read` returns.
    ///
    /// # Errors
    /// [`RecvError`] once the channel is empty and every sender is gone (`read` not run).
    ///
    /// # Panics
    /// If `read` panics the panic propagates; the message is consumed and its slot freed. If
    /// the slot's [`Reset`] panics, the slot is freed all the same, holding whatever `reset`
    /// left in it, what `read` returned is dropped, and that panic propagates (unless the
    /// thread is already unwinding: `read` panicked, or the receive runs in a destructor during
    /// an unwind); the next `send_with` into that slot resets it again before its `fill` runs.
    pub fn recv_with<R>(&self, read: impl FnOnce(&mut T) -> R) -> Result<R, RecvError> {
        let claim = self.claim(None).map_err(|_| RecvError)?;
        Ok(self.read(claim, read))
    }

    /// [`recv_with`](Self::recv_with) if a message is queued now; never waits.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] once the channel is empty and
    /// every sender is gone. `Empty` also while the next message in line is still inside a
    /// sender's `send_with` closure, even if later ones are ready: they are received in order.
    pub fn try_recv_with<R>(&self, read: impl FnOnce(&mut T) -> R) -> Result<R, TryRecvError> {
        match self.try_claim() {
            Step::Done(claim) => Ok(self.read(claim, read)),
            Step::Closed => Err(TryRecvError::Disconnected),
            Step::NotReady => Err(TryRecvError::Empty),
        }
    }

    /// [`recv_with`](Self::recv_with), waiting at most `timeout` for a message (a zero
    /// `timeout` makes one try; `Duration::MAX` waits without limit).
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or [`RecvTimeoutError::Disconnected`].
    pub fn recv_with_timeout<R>(
        &self,
        read: impl FnOnce(&mut T) -> R,
        timeout: Duration,
    ) -> Result<R, RecvTimeoutError> {
        self.recv_with_until(read, deadline(timeout))
    }

    /// [`recv_with_timeout`](Self::recv_with_timeout) until the instant `deadline`: one
    /// deadline shared by several receives.
    ///
    /// # Errors
    /// As [`recv_with_timeout`](Self::recv_with_timeout).
    pub fn recv_with_deadline<R>(
        &self,
        read: impl FnOnce(&mut T) -> R,
        deadline: Instant,
    ) -> Result<R, RecvTimeoutError> {
        self.recv_with_until(read, Some(deadline))
    }

    /// The receive with a deadline: `None` waits for ever.
    fn recv_with_until<R>(
        &self,
        read: impl FnOnce(&mut T) -> R,
        end: Option<Instant>,
    ) -> Result<R, RecvTimeoutError> {
        let claim = self.claim(end).map_err(|stop| match stop {
            Stop::Closed => RecvTimeoutError::Disconnected,
            Stop::TimedOut => RecvTimeoutError::Timeout,
        })?;
        Ok(self.read(claim, read))
    }

    /// Messages queued now (a snapshot), counting a slot whose `send_with` fill panicked until
    /// a receiver passes over it.
    pub fn len(&self) -> usize {
        self.chan.ring.len()
    }

    /// Whether no message is queued now; like [`len`](Self::len), a slot whose `send_with`
    /// fill panicked counts until a receiver passes over it, so drain with
    /// [`try_recv_with`](Self::try_recv_with) until it answers `Empty`, not `while
    /// !rx.is_empty() { rx.recv_with(..) }`, which then waits for a message nobody sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every slot holds a message now (counting as [`len`](Self::len) does).
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.chan.ring.capacity()
    }

    /// Whether this receiver and `other` belong to the same channel.
    pub fn same_channel(&self, other: &RecyclingReceiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    /// Whether every sender is gone (messages may still be queued).
    pub fn is_disconnected(&self) -> bool {
        self.chan.senders_gone()
    }

    /// Depth, high-water mark and full-count; see [`Stats`].
    pub fn stats(&self) -> Stats {
        self.chan.stats()
    }
}

impl<T: Reset> Clone for RecyclingSender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Self {
            chan: self.chan.clone(),
        }
    }
}

impl<T: Reset> Clone for RecyclingReceiver<T> {
    fn clone(&self) -> Self {
        self.chan.add_receiver();
        Self {
            chan: self.chan.clone(),
        }
    }
}

impl<T: Reset> Drop for RecyclingSender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T: Reset> Drop for RecyclingReceiver<T> {
    fn drop(&mut self) {
        // Queued messages stay in their slots (they are the slots' values) and are dropped
        // with the channel.
        self.chan.drop_receiver();
    }
}

impl<T: Reset> fmt::Debug for RecyclingSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecyclingSender")
            .field("chan", &self.chan)
            .finish()
    }
}

impl<T: Reset> fmt::Debug for RecyclingReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecyclingReceiver")
            .field("chan", &self.chan)
            .finish()
    }
}
