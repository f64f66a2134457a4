//! [`Sender`] and [`Receiver`]: the plain bounded channel's ends, from [`bounded`](super::bounded).

use super::chan::{busy_wait, deadline, Chan, OnBusy};
use super::ring::Refusal;
use super::wait::{Step, Stop};
use super::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, Stats, TryRecvError, TrySendError,
};
use crate::drop_each::drop_each;
use crate::sync::Arc;
use std::fmt;
use std::iter::FusedIterator;
use std::mem::MaybeUninit;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::{Duration, Instant};

/// The plain channel's state: slots hold a message only while full.
pub(super) struct Plain<T> {
    pub(super) chan: Chan<MaybeUninit<T>>,
}

impl<T> Drop for Plain<T> {
    fn drop(&mut self) {
        // SAFETY: every queued position was published full and never popped, so its value is
        // initialised; `for_each_queued` visits each once, so each is dropped once.
        self.chan
            .ring
            .for_each_queued(|v| unsafe { v.assume_init_drop() });
    }
}

/// The sending end of a [`bounded`](super::bounded) channel. Clone it for more producers.
///
/// Dropping the last `Sender` disconnects the channel: receivers take what is queued, then get
/// `Disconnected`.
///
/// Use it to hand owned values to consumers with backpressure; when the values own buffers
/// worth keeping, a [`recycling`](super::recycling) channel's
/// [`RecyclingSender`](super::RecyclingSender) fills a slot in place instead.
///
/// # Examples
/// ```
/// let (tx, rx) = thrifty::channel::bounded(16);
/// let tx2 = tx.clone();
/// std::thread::spawn(move || tx2.send("from a thread").unwrap());
/// tx.send("from main").unwrap();
/// drop(tx);
/// let mut got: Vec<_> = rx.iter().collect();
/// got.sort();
/// assert_eq!(got, ["from a thread", "from main"]);
/// ```
///
/// # Allocation and cost
/// Sending allocates nothing (`tests/alloc_channel.rs`) but for the rare waits the [module
/// docs](super#cost) list: one CAS on the senders' index, a stamp load and store and a load of
/// the receivers' waiter count; a send that waits spins briefly, then parks. Cloning is two
/// atomic increments (the handle count and the `Arc`'s), no allocation.
pub struct Sender<T> {
    pub(super) shared: Arc<Plain<T>>,
}

/// The receiving end of a [`bounded`](super::bounded) channel. Clone it for more consumers;
/// each message goes to exactly one of them.
///
/// Dropping the last `Receiver` disconnects the channel: senders get their message back, and
/// the messages still queued are dropped.
///
/// Use it to take owned values out; when messages own buffers the senders could reuse, a
/// [`recycling`](super::recycling) channel reads them in place instead.
///
/// # Examples
/// ```
/// let (tx, rx) = thrifty::channel::bounded(4);
/// tx.send(1).unwrap();
/// assert_eq!(rx.recv(), Ok(1));
/// assert!(rx.try_recv().unwrap_err().is_empty());
/// ```
///
/// # Allocation and cost
/// Receiving allocates nothing (`tests/alloc_channel.rs`) but for the rare waits the [module
/// docs](super#cost) list: one CAS on the receivers' index, a stamp load and store and a load of
/// the senders' waiter count; a receive that waits spins briefly, then parks.
///
/// # Panics
/// Dropping the last `Receiver` panics if a queued message's `Drop` panics: it drops every
/// other queued message first, as a `Vec`'s drop does, then lets that panic go on. A second
/// message whose `Drop` panics while the first panic unwinds aborts the process, as in std's
/// collections.
pub struct Receiver<T> {
    pub(super) shared: Arc<Plain<T>>,
}

// A panic leaves the channel consistent: it runs no user code while it holds a slot (a value
// moves in or out whole, and a message's `Drop` runs after the slot is let go), so a caller may
// use an end across `catch_unwind`, as std's and crossbeam's ends allow.
impl<T> UnwindSafe for Sender<T> {}
impl<T> RefUnwindSafe for Sender<T> {}
impl<T> UnwindSafe for Receiver<T> {}
impl<T> RefUnwindSafe for Receiver<T> {}

impl<T> Sender<T> {
    fn chan(&self) -> &Chan<MaybeUninit<T>> {
        &self.shared.chan
    }

    /// Writes `value` into a claimed slot and publishes it.
    #[inline(always)]
    fn fill(&self, claim: super::ring::Claim, value: T) {
        // SAFETY: the claim is ours and unfinished; a slot claimed for a push holds no value
        // (its last pop moved it out), so writing does not leak or double-drop.
        unsafe {
            self.chan().ring.with_claimed(&claim, |v| (*v).write(value));
        }
        self.chan().publish_send(claim, OnBusy::Spin);
    }

    /// Sends `value`, waiting while the channel is full.
    ///
    /// # Errors
    /// [`SendError`] with the value if every receiver is gone (then or while waiting).
    ///
    /// # Cost
    /// With room: one CAS, a write and a few loads; no allocation. While full: a short spin, then
    /// the thread parks until a receiver makes room.
    #[inline]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let claim = match self.chan().claim_send(OnBusy::Spin) {
            Step::Done(claim) => claim,
            Step::Closed => return Err(SendError(value)),
            Step::NotReady => match self.chan().claim_send_slow(OnBusy::Spin, None) {
                Ok(claim) => claim,
                Err(_) => return Err(SendError(value)),
            },
        };
        self.fill(claim, value);
        Ok(())
    }

    /// Sends `value` if there is room now; never waits for room. Where another thread is still
    /// moving a message out of the slot it needs (a copy of one value), it spins, then yields,
    /// until that thread is done, rather than report a full channel that is not.
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Disconnected`], each with the value.
    #[inline]
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        match self.chan().claim_send(OnBusy::Spin) {
            Step::Done(claim) => {
                self.fill(claim, value);
                Ok(())
            }
            Step::Closed => Err(TrySendError::Disconnected(value)),
            Step::NotReady => {
                self.chan().note_full();
                Err(TrySendError::Full(value))
            }
        }
    }

    /// Sends `value`, waiting at most `timeout` for room. As in
    /// [`try_send`](Sender::try_send), a slot another thread is still moving a message out of
    /// is waited for, past the timeout if that thread was preempted there. A zero `timeout`
    /// makes one try; one past the clock's range (`Duration::MAX`) waits without limit, as
    /// [`send`](Sender::send) does.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Disconnected`], each with the value.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(value, deadline(timeout))
    }

    /// [`send_timeout`](Sender::send_timeout) until the instant `deadline`: the same wait
    /// for a number of sends that share one deadline.
    ///
    /// # Errors
    /// As [`send_timeout`](Sender::send_timeout).
    pub fn send_deadline(&self, value: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_until(value, Some(deadline))
    }

    /// Whether this sender and `other` belong to the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// The send with a deadline: `None` waits for ever.
    fn send_until(&self, value: T, end: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let claim = match self.chan().claim_send(OnBusy::Spin) {
            Step::Done(claim) => claim,
            Step::Closed => return Err(SendTimeoutError::Disconnected(value)),
            Step::NotReady => match self.chan().claim_send_slow(OnBusy::Spin, end) {
                Ok(claim) => claim,
                Err(Stop::Closed) => return Err(SendTimeoutError::Disconnected(value)),
                Err(Stop::TimedOut) => return Err(SendTimeoutError::Timeout(value)),
            },
        };
        self.fill(claim, value);
        Ok(())
    }

    /// Messages queued now (a snapshot).
    pub fn len(&self) -> usize {
        self.chan().ring.len()
    }

    /// Whether no message is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every slot holds a message now.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// The most messages the channel holds: the `capacity` it was made with.
    pub fn capacity(&self) -> usize {
        self.chan().ring.capacity()
    }

    /// Whether every receiver is gone: a send now would fail.
    pub fn is_disconnected(&self) -> bool {
        self.chan().receivers_gone()
    }

    /// Depth, high-water mark and full-count; see [`Stats`].
    pub fn stats(&self) -> Stats {
        self.chan().stats()
    }
}

impl<T> Receiver<T> {
    fn chan(&self) -> &Chan<MaybeUninit<T>> {
        &self.shared.chan
    }

    /// Moves the message out of a claimed slot and frees the slot.
    #[inline(always)]
    fn take(&self, claim: super::ring::Claim) -> T {
        // SAFETY: the claim is ours and unfinished, and a slot claimed for a pop holds the
        // message its push wrote; we move it out once and free the slot just below.
        let value = unsafe {
            self.chan()
                .ring
                .with_claimed(&claim, |v| (*v).assume_init_read())
        };
        self.chan().publish_recv(claim, OnBusy::Spin);
        value
    }

    /// Receives the oldest message, waiting while the channel is empty.
    ///
    /// # Errors
    /// [`RecvError`] once the channel is empty and every sender is gone.
    ///
    /// # Cost
    /// With a message queued: one CAS, a read and a load; no allocation. While empty: a short
    /// spin, then the thread parks until a sender sends.
    #[inline]
    pub fn recv(&self) -> Result<T, RecvError> {
        let claim = match self.chan().claim_recv_first() {
            Some(claim) => claim,
            None => self
                .chan()
                .claim_recv_slow(OnBusy::Spin, None)
                .map_err(|_| RecvError)?,
        };
        Ok(self.take(claim))
    }

    /// Receives the oldest message if one is queued; never waits for one. Where another thread
    /// is still moving the next message in (a copy of one value), it spins, then yields, until
    /// that thread is done, rather than report an empty channel that is not.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] once the channel is empty and
    /// every sender is gone.
    #[inline]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        match self.chan().claim_recv(OnBusy::Spin) {
            Step::Done(claim) => Ok(self.take(claim)),
            Step::Closed => Err(TryRecvError::Disconnected),
            Step::NotReady => Err(TryRecvError::Empty),
        }
    }

    /// Receives the oldest message, waiting at most `timeout` for one. As in
    /// [`try_recv`](Receiver::try_recv), a message another thread is still moving in is waited
    /// for, past the timeout if that thread was preempted there. A zero `timeout` makes one
    /// try; one past the clock's range (`Duration::MAX`) waits without limit, as
    /// [`recv`](Receiver::recv) does.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or [`RecvTimeoutError::Disconnected`] once the channel
    /// is empty and every sender is gone.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(deadline(timeout))
    }

    /// [`recv_timeout`](Receiver::recv_timeout) until the instant `deadline`: the same wait
    /// for a number of receives that share one deadline (a batch that must go out by then).
    ///
    /// # Errors
    /// As [`recv_timeout`](Receiver::recv_timeout).
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    /// The receive with a deadline: `None` waits for ever.
    fn recv_until(&self, end: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let claim = match self.chan().claim_recv_first() {
            Some(claim) => claim,
            None => self
                .chan()
                .claim_recv_slow(OnBusy::Spin, end)
                .map_err(|stop| match stop {
                    Stop::Closed => RecvTimeoutError::Disconnected,
                    Stop::TimedOut => RecvTimeoutError::Timeout,
                })?,
        };
        Ok(self.take(claim))
    }

    /// Waits for a message, then moves it and up to `max - 1` more already queued into `out`,
    /// oldest first; returns how many it moved: at most the channel's
    /// [`capacity`](Self::capacity), what it can hold queued, even while senders keep it full.
    ///
    /// Returns 0 only if `max` is 0 or the channel is empty and every sender is gone. It allocates
    /// nothing itself (`out` may, to grow), and wakes at most two waiting senders per batch (one
    /// for its first message, one when the batch ends) rather than one per message; each sender
    /// that then gets a slot wakes the next while slots are free.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = thrifty::channel::bounded(8);
    /// for i in 0..5 {
    ///     tx.send(i).unwrap();
    /// }
    /// let mut batch = Vec::with_capacity(4);
    /// assert_eq!(rx.recv_many(&mut batch, 4), 4);
    /// assert_eq!(batch, [0, 1, 2, 3]);
    /// ```
    pub fn recv_many(&self, out: &mut impl Extend<T>, max: usize) -> usize {
        if max == 0 {
            return 0;
        }
        let Ok(first) = self.recv() else { return 0 };
        out.extend(Some(first));
        let mut batch = Batch {
            rx: self,
            left: (max - 1).min(self.capacity() - 1),
            taken: 0,
        };
        out.extend(&mut batch);
        batch.taken + 1
    }

    /// A blocking iterator: each `next` is a [`recv`](Self::recv); it ends once the channel is
    /// empty and every sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over the messages queued now: each `next` is a
    /// [`try_recv`](Self::try_recv).
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Messages queued now (a snapshot).
    pub fn len(&self) -> usize {
        self.chan().ring.len()
    }

    /// Whether no message is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every slot holds a message now.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// The most messages the channel holds.
    pub fn capacity(&self) -> usize {
        self.chan().ring.capacity()
    }

    /// Whether this receiver and `other` belong to the same channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Whether every sender is gone (messages may still be queued).
    pub fn is_disconnected(&self) -> bool {
        self.chan().senders_gone()
    }

    /// Depth, high-water mark and full-count; see [`Stats`].
    pub fn stats(&self) -> Stats {
        self.chan().stats()
    }
}

/// `recv_many`'s batch: pops without waking senders one by one; its `Drop` wakes one, even if
/// the caller's `extend` panicked, and that one wakes the next while slots are free (a sender
/// must not sleep beside a freed slot).
struct Batch<'a, T> {
    rx: &'a Receiver<T>,
    left: usize,
    taken: usize,
}

impl<T> Iterator for Batch<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.left == 0 {
            return None;
        }
        let chan = self.rx.chan();
        let Step::Done(claim) = chan.claim_recv(OnBusy::Spin) else {
            return None;
        };
        // SAFETY: as in `Receiver::take`: our unfinished claim on a full slot.
        let value = unsafe { chan.ring.with_claimed(&claim, |v| (*v).assume_init_read()) };
        chan.ring.finish_pop(claim);
        self.left -= 1;
        self.taken += 1;
        Some(value)
    }
}

impl<T> Drop for Batch<'_, T> {
    fn drop(&mut self) {
        self.rx.chan().wake_sender();
    }
}

/// A blocking iterator over a [`Receiver`]'s messages, from [`Receiver::iter`] or
/// `for msg in &rx`.
///
/// Each `next` is a [`recv`](Receiver::recv): it waits for a message, and ends once the channel
/// is empty and every sender is gone. No allocation.
///
/// Use it for a consumer loop that ends when every sender is gone; [`TryIter`] drains only what
/// is queued now.
///
/// # Examples
/// ```
/// let (tx, rx) = thrifty::channel::bounded(4);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// drop(tx); // without this, the iterator would wait for a third message
/// assert_eq!(rx.iter().collect::<Vec<i32>>(), [1, 2]);
/// ```
///
/// # Allocation and cost
/// No allocation; each `next` is a [`Receiver::recv`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

// Its first `None` is the channel empty with every sender gone, which lasts: no sender can be
// made again.
impl<T> FusedIterator for Iter<'_, T> {}

/// A non-blocking iterator over the messages queued now, from [`Receiver::try_iter`].
///
/// Each `next` is a [`try_recv`](Receiver::try_recv): it ends at the first moment the channel
/// is empty, even while senders remain. No allocation.
///
/// Use it to drain a batch without blocking; [`Iter`] waits for more.
///
/// # Examples
/// ```
/// let (tx, rx) = thrifty::channel::bounded(4);
/// tx.send("a").unwrap();
/// tx.send("b").unwrap();
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["a", "b"]);
/// assert_eq!(rx.try_iter().next(), None); // empty now, though `tx` is still alive
/// ```
///
/// # Allocation and cost
/// None beyond each `next`'s [`Receiver::try_recv`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// A blocking iterator that owns its [`Receiver`], from `IntoIterator` (`for msg in rx`).
///
/// As [`Iter`], but it can move to another thread; dropping it drops the receiver. No
/// allocation.
///
/// Use it when the consumer loop owns the receiver (`for msg in rx` on a worker thread);
/// otherwise [`Iter`] borrows it.
///
/// # Examples
/// ```
/// let (tx, rx) = thrifty::channel::bounded(4);
/// let consumer = std::thread::spawn(move || rx.into_iter().sum::<u32>());
/// for i in 1..=3 {
///     tx.send(i).unwrap();
/// }
/// drop(tx); // ends the consumer's loop
/// assert_eq!(consumer.join().unwrap(), 6);
/// ```
///
/// # Allocation and cost
/// None beyond each `next`'s [`Receiver::recv`].
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

// As `Iter`'s.
impl<T> FusedIterator for IntoIter<T> {}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan().add_sender();
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan().add_receiver();
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan().drop_sender();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if !self.chan().drop_receiver() {
            return;
        }
        // The last receiver: nobody can take what is queued, so drop it now rather than when
        // the last sender goes. `drop_receiver` closed pushes first, so every push that will
        // ever land has claimed its slot already. A slot a sender is still filling (`Busy`) is
        // waited for, not stopped at: the sender only moves its value in, no user code runs
        // there, so it finishes, and the messages queued behind it are dropped here too. The
        // ring is left empty. (Under loom `busy_wait` gives up after two rounds, and what is
        // left waits for `Plain`'s drop.)
        //
        // Each message leaves its slot, and the slot is freed, before the message is dropped,
        // so a message whose `Drop` panics leaves the ring as it should be; `drop_each` then
        // goes on with the rest before that panic does. Every message is taken, with or
        // without drop glue, so the ring is left empty either way.
        let chan = self.chan();
        let mut busy = 0;
        drop_each(std::iter::from_fn(|| loop {
            match chan.ring.start_pop() {
                Ok(claim) => {
                    busy = 0;
                    // SAFETY: as in `take`: our unfinished claim on a full slot; we move the
                    // message out once and free the slot just below.
                    let value =
                        unsafe { chan.ring.with_claimed(&claim, |v| (*v).assume_init_read()) };
                    chan.ring.finish_pop(claim);
                    return Some(value);
                }
                Err(Refusal::Busy) if busy_wait(&mut busy) => {}
                Err(_) => return None,
            }
        }));
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("chan", self.chan()).finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("chan", self.chan())
            .finish()
    }
}
