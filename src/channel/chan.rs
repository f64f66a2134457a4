//! The state both channel kinds share: the ring, the handle counts, the two wait queues and
//! the metrics, with the claim-and-publish steps every operation is built from.
//!
//! An operation is: [`Chan::claim_send`] / [`Chan::claim_recv`] (one try, which knows about
//! disconnection), optionally [`WaitQueue::wait`] retrying that try, then the caller's access to
//! the claimed slot, then [`Chan::publish_send`] / [`Chan::publish_recv`], which finish the
//! claim and wake the other side.

use super::ring::{Claim, Refusal, Ring};
use super::wait::{Step, Stop, WaitQueue};
use super::Stats;
use crate::sync::{backoff, spin_loop, yield_now, AtomicU64, AtomicUsize, CachePadded, Ordering};
use std::fmt;
use std::time::{Duration, Instant};

/// What `Busy` means to a caller of `claim_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnBusy {
    /// Spin until the other thread finishes: it is moving one value (a plain channel).
    Spin,
    /// Treat it as full or empty: the other thread runs a user's closure (recycling).
    Wait,
}

/// The shared state of one channel, behind every handle's `Arc`.
pub(super) struct Chan<S> {
    /// The messages.
    pub(super) ring: Ring<S>,
    /// Live `Sender`s; 0 is final (no handle is left to clone).
    senders: AtomicUsize,
    /// Live `Receiver`s; 0 is final.
    receivers: AtomicUsize,
    /// Senders waiting for room.
    send_waiters: WaitQueue,
    /// Receivers waiting for a message.
    recv_waiters: WaitQueue,
    /// The deepest the queue has been, as sampled (`ring::DEPTH_SAMPLE`) and whenever a send
    /// finds it full. Written only when it rises (at most `capacity` times), so its own line
    /// stays shared in every core's cache.
    high_water: CachePadded<AtomicUsize>,
    /// Sends that found the channel full; written only on that slow path.
    full_sends: AtomicU64,
}

impl<S> Chan<S> {
    /// A channel of `capacity` slots, slot `i` holding `init(i)`, with one sender and one
    /// receiver counted.
    #[track_caller]
    pub(super) fn new(capacity: usize, init: impl FnMut(usize) -> S) -> Self {
        Self {
            ring: Ring::new(capacity, init),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            send_waiters: WaitQueue::new(),
            recv_waiters: WaitQueue::new(),
            high_water: CachePadded::new(AtomicUsize::new(0)),
            full_sends: AtomicU64::new(0),
        }
    }

    /// Whether every receiver is gone.
    #[inline]
    pub(super) fn receivers_gone(&self) -> bool {
        // Acquire: pairs with the AcqRel decrement in `drop_receiver`.
        self.receivers.load(Ordering::Acquire) == 0
    }

    /// Whether every sender is gone.
    #[inline]
    pub(super) fn senders_gone(&self) -> bool {
        // Acquire: pairs with the AcqRel decrement in `drop_sender`, so every push the last
        // senders finished is visible to the pop that follows.
        self.senders.load(Ordering::Acquire) == 0
    }

    /// Counts a cloned sender.
    pub(super) fn add_sender(&self) {
        // Relaxed: the clone is made from a live sender, so the count is not 0 and cannot reach
        // 0 before this increment; nothing is published through it.
        self.senders.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a cloned receiver.
    pub(super) fn add_receiver(&self) {
        // Relaxed: as in `add_sender`.
        self.receivers.fetch_add(1, Ordering::Relaxed);
    }

    /// Uncounts a sender; the last one wakes every receiver to see the disconnect.
    pub(super) fn drop_sender(&self) {
        // AcqRel: Release publishes this sender's pushes to `senders_gone`'s Acquire; Acquire
        // makes the last decrement see the other senders' pushes too.
        if self.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.recv_waiters.notify_all();
        }
    }

    /// Uncounts a receiver; `true` for the last one, which has woken every sender.
    pub(super) fn drop_receiver(&self) -> bool {
        // AcqRel: as in `drop_sender`.
        let last = self.receivers.fetch_sub(1, Ordering::AcqRel) == 1;
        if last {
            self.ring.close_pushes();
            self.send_waiters.notify_all();
        }
        last
    }

    /// One try at claiming a slot to send into.
    #[inline]
    pub(super) fn claim_send(&self, on_busy: OnBusy) -> Step<Claim> {
        if self.receivers_gone() {
            return Step::Closed;
        }
        let mut busy = 0;
        loop {
            match self.ring.start_push() {
                Ok(claim) => return Step::Done(claim),
                Err(Refusal::Busy) if on_busy == OnBusy::Spin && busy_wait(&mut busy) => {}
                Err(Refusal::Closed) => return Step::Closed,
                // Every slot holds a message: the deepest the channel can be. (A `Busy` slot,
                // still inside a receive, is not: the channel may hold far fewer.)
                Err(Refusal::Full) => {
                    self.note_depth(self.ring.capacity());
                    return Step::NotReady;
                }
                Err(_) => return Step::NotReady,
            }
        }
    }

    /// One try at claiming a message to receive.
    #[inline]
    pub(super) fn claim_recv(&self, on_busy: OnBusy) -> Step<Claim> {
        let mut busy = 0;
        loop {
            match self.ring.start_pop() {
                Ok(claim) => return Step::Done(claim),
                Err(Refusal::Busy) if on_busy == OnBusy::Spin && busy_wait(&mut busy) => {}
                Err(Refusal::Busy) => return Step::NotReady,
                Err(_) if !self.senders_gone() => return Step::NotReady,
                // Every sender is gone, and `senders_gone` made their last pushes visible: one
                // more try finds any that landed after ours above.
                Err(_) => {
                    return match self.ring.start_pop() {
                        Ok(claim) => Step::Done(claim),
                        Err(_) => Step::Closed,
                    }
                }
            }
        }
    }

    /// Claims a slot to send into, waiting for room until `deadline` (`None`: for ever).
    ///
    /// A sender that found the channel full first waits, within the bounded spin, until a
    /// batch of slots is free ([`refill_batch`](Self::refill_batch)) rather than one: taking
    /// each slot the moment a receiver frees it keeps the two sides on the same cache lines, and
    /// every message then pays a line moving between cores (the channel stays full, the slow
    /// regime `examples/channel_pairs.rs` shows). It watches the stamp of the batch's last slot
    /// (`push_ready(batch - 1)`), not the channel's length, whose read of `head` would pull the
    /// receivers' line on every poll. A sender that finds its batch is not free by the end of
    /// the spin claims the next free slot as usual.
    #[cold]
    #[inline(never)]
    pub(super) fn claim_send_slow(
        &self,
        on_busy: OnBusy,
        deadline: Option<Instant>,
    ) -> Result<Claim, Stop> {
        self.note_full();
        let batch = self.refill_batch();
        if batch > 1 {
            let _ = backoff(|| {
                let room = self.ring.push_ready(batch - 1);
                (room || deadline.is_some_and(|d| Instant::now() >= d)).then_some(())
            });
        }
        // Our claim counts in `len`, so room remains while it is below the capacity.
        self.send_waiters.wait(
            &self.recv_waiters,
            deadline,
            || self.claim_send(on_busy),
            || self.send_ready(),
            || self.ring.len() < self.ring.capacity(),
        )
    }

    /// Free slots a sender that found the channel full waits for before it refills: a
    /// sixteenth of the capacity, at most 64 (1 below 32 slots: no batching).
    fn refill_batch(&self) -> usize {
        (self.ring.capacity() / 16).clamp(1, 64)
    }

    /// The hint a waiting receiver's spin polls: the next message is published, or every
    /// sender is gone (so the attempt it gates answers `Closed` without waiting out the spin).
    pub(super) fn recv_ready(&self) -> bool {
        self.ring.pop_ready() || self.senders_gone()
    }

    /// The hint a waiting sender's spin polls: `tail`'s slot is free, or pushes are closed, or
    /// every receiver is gone.
    pub(super) fn send_ready(&self) -> bool {
        self.ring.push_ready(0) || self.receivers_gone()
    }

    /// The first try of a receive that waits if it finds nothing: a claim if `head`'s slot
    /// holds its message, else `None` at once, without [`claim_recv`](Self::claim_recv)'s empty
    /// and closed checks ([`Ring::start_pop_published`]). That check reads `tail`, the senders'
    /// line, so a receiver that keeps up with its sender would pull that line once a message;
    /// the wait that follows polls only the slot ([`recv_ready`](Self::recv_ready)), and its
    /// last try before parking is the full claim, which finds the channel closed.
    #[inline]
    pub(super) fn claim_recv_first(&self) -> Option<Claim> {
        self.ring.start_pop_published().ok()
    }

    /// Claims a message to receive, waiting until `deadline` (`None`: for ever).
    #[cold]
    #[inline(never)]
    pub(super) fn claim_recv_slow(
        &self,
        on_busy: OnBusy,
        deadline: Option<Instant>,
    ) -> Result<Claim, Stop> {
        // Our claim no longer counts in `len`, so a message remains while it is above 0.
        self.recv_waiters.wait(
            &self.send_waiters,
            deadline,
            || self.claim_recv(on_busy),
            || self.recv_ready(),
            || self.ring.len() > 0,
        )
    }

    /// Finishes a send: publishes the message, records the depth, wakes a receiver.
    ///
    /// `on_busy` is the one the channel's receivers claim with: receivers that spin on a
    /// claimed slot (`Spin`) saw our SeqCst claim and never park for it, so the claim stands in
    /// for the notifier's fence; receivers that wait on it (`Wait`) need the fenced notify
    /// after this store (`wait.rs`, "No lost wake-ups").
    #[inline]
    pub(super) fn publish_send(&self, claim: Claim, on_busy: OnBusy) {
        if let Some(depth) = self.ring.finish_push(claim) {
            self.note_depth(depth);
        }
        match on_busy {
            OnBusy::Spin => self.recv_waiters.notify_one_after_seqcst(),
            OnBusy::Wait => self.recv_waiters.notify_one(),
        }
    }

    /// Finishes a receive: frees the slot, wakes a sender (`on_busy` as in `publish_send`).
    #[inline]
    pub(super) fn publish_recv(&self, claim: Claim, on_busy: OnBusy) {
        self.ring.finish_pop(claim);
        match on_busy {
            OnBusy::Spin => self.send_waiters.notify_one_after_seqcst(),
            OnBusy::Wait => self.send_waiters.notify_one(),
        }
    }

    /// Wakes a sender without finishing a pop here (after a batch of pops).
    pub(super) fn wake_sender(&self) {
        self.send_waiters.notify_one();
    }

    /// Raises the high-water mark to `depth` if it is higher.
    #[inline]
    fn note_depth(&self, depth: usize) {
        // Relaxed (both): a statistic, published through nothing. The load keeps the line
        // shared: it is written only when the mark rises.
        if depth > self.high_water.load(Ordering::Relaxed) {
            self.high_water.fetch_max(depth, Ordering::Relaxed);
        }
    }

    /// Counts a send that found no slot to claim: the channel full, or its next slot still
    /// inside a receive (`claim_send` records the depth of a full one).
    pub(super) fn note_full(&self) {
        // Relaxed: a statistic.
        self.full_sends.fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics now.
    pub(super) fn stats(&self) -> Stats {
        Stats {
            len: self.ring.len(),
            capacity: self.ring.capacity(),
            // Relaxed (both): statistics.
            high_water: self.high_water.load(Ordering::Relaxed),
            full_sends: self.full_sends.load(Ordering::Relaxed),
        }
    }
}

/// One pause while another thread finishes a claim on the slot we need: a spin hint for the
/// first few, then a yield, so a claim holder that was preempted between its CAS and its
/// publish (likely with more threads than cores) gets the CPU back instead of waiting out our
/// time slice. Returns whether to try again; in a normal build always, as the holder is one
/// move of a `T` from publishing.
///
/// Under loom it gives up after a few rounds and the caller reports `NotReady` (it then parks,
/// and loom's build uses the fenced notify, which covers a waiter parked on a claimed slot):
/// loom does not make a Relaxed load eventually see the latest store, so a spin on a `Busy`
/// that came from a stale `tail` (or `head`) would never end in the model.
#[inline]
pub(super) fn busy_wait(rounds: &mut u32) -> bool {
    if cfg!(loom) && *rounds >= 2 {
        return false;
    }
    if *rounds < 16 {
        spin_loop();
    } else {
        yield_now();
    }
    *rounds = rounds.saturating_add(1);
    true
}

/// The deadline `timeout` from now; `None` (never) if that is past the clock's range.
pub(super) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

impl<S> fmt::Debug for Chan<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chan")
            .field("stats", &self.stats())
            // Relaxed (both): a snapshot for display.
            .field("senders", &self.senders.load(Ordering::Relaxed))
            .field("receivers", &self.receivers.load(Ordering::Relaxed))
            .finish()
    }
}
