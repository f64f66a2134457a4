//! Bounded multi-producer multi-consumer channels with backpressure, visible depth and, with
//! [`recycling`], message slots that keep their buffers.
//!
//! [`bounded`] makes a channel of a fixed number of slots: when consumers fall behind,
//! [`Sender::send`] waits and [`Sender::try_send`] says [`TrySendError::Full`], instead of the
//! queue eating memory. [`recycling`] makes one whose slots hold values for ever: senders fill a
//! slot in place, receivers read it in place, and the slot is [`Reset`] between
//! messages, so a stream of `String` or `Vec` messages allocates nothing. Every end reports the
//! channel's [`Stats`]: depth, high-water mark and how many sends found it full.
//!
//! # When to use
//! - Producers must slow down when consumers lag (a pipeline stage, a work queue).
//! - Several consumers share the work (MPMC), which `std::sync::mpsc` does not offer.
//! - Messages are heap-backed (`String`, `Vec`, a request struct): [`recycling`] keeps their
//!   buffers.
//!
//! # When not to use
//! - You need an unbounded queue, a rendezvous (capacity 0), `select!` over several channels
//!   or async ends: use crossbeam-channel, flume or tokio's channels.
//! - One producer and one consumer on one thread: a `VecDeque` is all you need.
//!
//! # Choosing a capacity
//! The capacity is a promise about memory and latency: at most `capacity` messages wait, and a
//! message waits behind at most `capacity - 1` others. Prefer a small buffer you watch over a
//! large one that hides a slow consumer: a few times the largest burst you expect, and a
//! [`Stats::high_water`] near the capacity (or a growing [`Stats::full_sends`]) tells you the
//! consumers are the bottleneck. A larger buffer absorbs bursts but only delays backpressure; it
//! never raises throughput once the queue is full. Capacity 0 panics: a zero-slot channel would
//! be a rendezvous channel (each send waits for a receiver), a different algorithm this module
//! does not provide; capacity 1 is the closest hand-off.
//!
//! # Examples
//! ```
//! use std::thread;
//!
//! let (tx, rx) = thrifty::channel::bounded::<u64>(64);
//! let producers: Vec<_> = (0..2)
//!     .map(|p| {
//!         let tx = tx.clone();
//!         thread::spawn(move || (0..1000).for_each(|i| tx.send(p * 1000 + i).unwrap()))
//!     })
//!     .collect();
//! drop(tx); // the receivers see `Disconnected` once the producers are done
//! let sum: u64 = rx.iter().sum();
//! producers.into_iter().for_each(|p| p.join().unwrap());
//! assert_eq!(sum, (0..2000u64).sum::<u64>());
//! ```
//!
//! # Disconnection
//! When every sender is gone, receivers take what is queued, then get `Disconnected`. When every
//! receiver is gone, sends fail and hand their message back; the messages still queued are
//! dropped by the last receiver, which waits for any slot a sender is still moving a message
//! into (pushes close before it drains, so none lands after it). If a queued message's `Drop`
//! panics, the last receiver still drops every other queued message, then that panic goes on
//! out of its drop (a second such panic, while the first unwinds, aborts the process, as in
//! std's collections). A [`recycling`] channel's messages are its slots' values, so they are
//! not dropped then: they stay in their slots, unread, until every handle of both sides is gone
//! and the channel is dropped with all its slots' values. Every message is dropped exactly once.
//! A thread blocked in `send` or `recv` wakes on disconnect.
//!
//! # Cost
//! - **Creation** makes two allocations: the ring, `capacity × size_of::<(usize, T)>()` bytes (a
//!   stamp and a value per slot; a [`recycling`] slot also holds two flags beside the value,
//!   `size_of::<(usize, (T, bool, bool))>()`: 8 bytes more for a `String`, 16 for a `u128`, a
//!   whole alignment step for an over-aligned `T`), and the shared state, a fixed 896 bytes on
//!   x86-64 (indices, handle counts, wait queues and statistics; the two indices and the high-water
//!   mark each fill a 128-byte line of their own). It writes every slot's stamp, so it is
//!   O(capacity): a channel of a million `u64` costs a 16 MB allocation and its page faults, one of
//!   capacity 1 takes 912 bytes in all. [`recycling`] also calls the factory `capacity` times. Keep
//!   capacities small; see `cargo bench --bench channel -- create` for times beside the peers'.
//! - **Send and receive** allocate nothing (`tests/alloc_channel.rs`), except: the first wait in
//!   the process (a send that finds the channel full, a receive that finds it empty) asks the OS
//!   for the number of CPUs unless something in the process asked before (a `ShardedMap` with the
//!   default shard count, a `KeyedLimiter` or a `PerCpu` made first, or a semaphore's wait; the
//!   crate asks once: `std::thread::available_parallelism`, which allocates); a wait
//!   queue holding more than 4 parked threads at once moves to the heap and grows by doubling (8,
//!   16, 32: three allocations for 32 parked threads), keeping its largest buffer; and a
//!   disconnect that wakes more than 4 gathers them in a heap buffer. Each is one CAS on its
//!   side's index, a stamp load and store, and a load of the other side's waiter count (a recycling
//!   channel adds a fence before it); one send in 256 also reads the receivers' index and the
//!   high-water mark for [`Stats`].
//! - **Waiting** spins briefly (127 spin hints in all; not at all with one CPU), yields a few
//!   times, then parks the thread; the other side unparks it. A parked thread costs a futex wake,
//!   and on a VM a wait for the host to schedule its vCPU again: tens of microseconds. So where
//!   both sides wait by turns (a stream whose channel fills and empties, as a small one does
//!   between two threads at about the same speed), one waiter of a side spins on for 896 hints more
//!   (about 8 µs) before it parks: each side's next change serves the other. A side whose waits the
//!   other never answers with a wait of its own (a consumer of a producer that does real work per
//!   message) parks after the short spin and is woken for a batch; but where each gap is shorter
//!   than that spin (about 1 µs) it polls through every gap and never parks, spending CPU where a
//!   sleeping consumer would not (the shootout's busy-producer row: both threads busy about 80-90%
//!   of the wall time, against about 50% for std's, kanal's and flume's, at 0.6x std's time, under
//!   half flume's and about kanal's); in exchange a message waits about 0.2-0.3 µs from its send to
//!   its receive at the median, where a consumer that sleeps (std's, kanal's, flume's) makes it
//!   wait about 50-80 µs (the README's runs). A sender that finds a channel of 32 slots or more
//!   full first spends one such spin waiting for a sixteenth of the capacity (at most 64 slots) to
//!   be free, not one slot, then waits as above (so up to 254 hints before it parks, 1 150 with
//!   the 896 more of a side that waits by turns): refilling each slot the moment it is freed keeps both sides
//!   on the same cache lines and makes every message pay for a line crossing between cores. It
//!   takes the first free slot once the spin is over, so a slow receiver delays it no more than
//!   before. `cargo run --release --example channel_pairs` prints how many sends found the channel
//!   full.
//!
//! # How it works
//!
//! The slots form a ring (`ring.rs`): Vyukov's bounded MPMC queue, where a stamp per slot says
//! which position it awaits, and a send or receive claims a position with one CAS, touches the
//! slot, then publishes the slot's next stamp. The plain channel's slots are `MaybeUninit<T>`,
//! initialised only while full; the recycling channel's hold a live `T`. `chan.rs` adds the
//! handle counts (a count of 0 is the disconnect), the metrics and the two wait queues; the
//! waiting strategy is `wait.rs`, which explains why no wake-up is lost.
//!
//! While a `send_with` or `recv_with` closure runs its slot is claimed. Other threads treat that
//! slot as "not yet" and wait for it like for a full or empty channel (they are woken when the
//! closure's operation publishes), rather than spinning on it; dropping the last handle never
//! waits for it. A closure that panics still publishes its slot: a failed `send_with` marks it
//! for receivers to skip, a failed `recv_with` frees it, both after resetting the value. A reset
//! that panics marks the slot dirty instead, and the next `send_with` that claims it resets it
//! before its closure runs (a send whose reset panics again fails and sends nothing). A failed
//! `send_with`'s slot stays in the queue, counted in the depth, until a receiver passes over it.

mod bounded;
mod chan;
mod error;
mod recycling;
mod ring;
mod stats;
mod wait;

pub use bounded::{IntoIter, Iter, Receiver, Sender, TryIter};
pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use recycling::{RecyclingReceiver, RecyclingSender};
pub use stats::Stats;

use crate::sync::Arc;
use crate::Reset;
use chan::Chan;
use std::mem::MaybeUninit;

/// Makes a bounded MPMC channel of `capacity` slots; returns its first sender and receiver.
///
/// # When to use
/// Handing values between threads with backpressure; see the [module docs](self) for choosing
/// a capacity and for when another channel fits better.
///
/// # Examples
/// ```
/// let (tx, rx) = thrifty::channel::bounded(2);
/// tx.send("a").unwrap();
/// tx.send("b").unwrap();
/// assert!(tx.try_send("c").unwrap_err().is_full());
/// assert_eq!(rx.recv(), Ok("a"));
/// ```
///
/// # Allocation and cost
/// Allocates `capacity` slots at once (O(capacity) time and memory); sends and receives
/// allocate nothing (`tests/alloc_channel.rs`) but for the rare waits the [module
/// docs](self#cost) list (the process's first wait; more than 4 threads parked at once), where
/// the per-operation costs are too.
///
/// # Panics
/// If `capacity` is 0 (this module has no rendezvous mode; see the module docs), or so large
/// that the ring cannot be allocated. A system that overcommits memory may grant a ring larger
/// than it can back, and creation writes every slot's stamp (every page of the ring, for slots
/// of up to a page), so the process can be killed for memory then, or later as messages fill
/// the slots, instead of panicking.
#[track_caller]
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    check_capacity(capacity);
    let shared = Arc::new(bounded::Plain {
        chan: Chan::new(capacity, |_| MaybeUninit::uninit()),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// Makes a bounded MPMC channel of `capacity` slots, each holding a value made by `factory`
/// that is kept between messages: send with [`RecyclingSender::send_with`], receive with
/// [`RecyclingReceiver::recv_with`].
///
/// # When to use
/// Messages that own heap memory (`String`, `Vec`, structs of them): after the first lap each
/// slot's value has the capacity its messages need, and sending allocates nothing. Build the
/// values with that capacity in `factory` to start warm.
///
/// # When not to use
/// Messages that must outlive the receive (the receiver would have to clone or `take` them,
/// which gives up the buffer): use [`bounded`] and a `pool::Pool` for the buffers.
///
/// # Examples
/// ```
/// let (tx, rx) = thrifty::channel::recycling(4, || Vec::<u8>::with_capacity(256));
/// tx.send_with(|buf| buf.extend_from_slice(b"payload")).unwrap();
/// let n = rx.recv_with(|buf| buf.len()).unwrap();
/// assert_eq!(n, 7);
/// ```
///
/// # Allocation and cost
/// Calls `factory` `capacity` times, at once, and allocates the slots. Each slot keeps the
/// largest buffer any of its messages grew it to, until the channel is dropped; once every slot
/// is warm, sends and receives allocate nothing (`tests/alloc_channel.rs`).
///
/// So what the channel keeps is `capacity` times the largest message, and one outsized message
/// keeps its buffer in its slot for good. To put a ceiling on it, give an outsized buffer up in
/// the receive's closure (the pool's `max_object_bytes` does the same for pooled objects):
/// ```
/// const KEEP: usize = 4096;
/// let (tx, rx) = thrifty::channel::recycling(1, || Vec::<u8>::with_capacity(256));
/// tx.send_with(|buf| buf.resize(1 << 20, 7)).unwrap(); // one 1 MiB message
/// rx.recv_with(|buf| {
///     let sum: u64 = buf.iter().map(|&b| u64::from(b)).sum(); // the work, on the borrow
///     if buf.capacity() > KEEP {
///         *buf = Vec::with_capacity(256); // the 1 MiB buffer is freed here
///     }
///     sum
/// })
/// .unwrap();
/// assert_eq!(tx.send_with(|buf| buf.capacity()).unwrap(), 256);
/// ```
///
/// # Panics
/// As [`bounded`], and if `factory` or a made value's [`Reset`] panics (each value is reset
/// once, in case the factory left something in it); the values made so far are dropped.
#[track_caller]
pub fn recycling<T: Reset>(
    capacity: usize,
    mut factory: impl FnMut() -> T,
) -> (RecyclingSender<T>, RecyclingReceiver<T>) {
    check_capacity(capacity);
    let chan = Arc::new(Chan::new(capacity, |_| recycling::Held::new(factory())));
    (
        RecyclingSender { chan: chan.clone() },
        RecyclingReceiver { chan },
    )
}

/// Refuses capacity 0 with the reason.
#[track_caller]
fn check_capacity(capacity: usize) {
    if capacity == 0 {
        zero_capacity();
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn zero_capacity() -> ! {
    panic!(
        "thrifty::channel: capacity must be at least 1 (a 0-slot channel would be a rendezvous \
         channel, which this module does not provide; capacity 1 is the closest hand-off)"
    )
}

#[cfg(test)]
mod tests;
