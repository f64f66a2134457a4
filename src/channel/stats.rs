//! [`Stats`]: a channel's depth, high-water mark and full-count.

/// A snapshot of a channel's metrics, from `stats()` on any of its ends.
///
/// Use it to watch whether consumers keep up: a `high_water` near the capacity or a growing
/// `full_sends` says they do not (see [Choosing a capacity](super#choosing-a-capacity)).
/// Read it from a metrics scrape, not per message.
///
/// # Examples
/// ```
/// let (tx, rx) = thrifty::channel::bounded(2);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert!(tx.try_send(3).is_err()); // full: counted, and the mark reaches the capacity
/// rx.recv().unwrap();
/// let stats = rx.stats();
/// assert_eq!((stats.len, stats.capacity, stats.high_water, stats.full_sends), (1, 2, 2, 1));
/// ```
///
/// # Allocation and cost
/// No allocation. Keeping them costs one send in 256 a load of the receivers' index and of the
/// high-water word (written only when the mark rises, at most `capacity` times), and a send
/// that finds the channel full one relaxed add; a receive pays nothing. Reading them is three
/// loads and a snapshot of the depth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Messages queued now (a snapshot while other threads work). A recycling channel counts
    /// a slot whose `send_with` fill panicked until a receiver passes it.
    pub len: usize,
    /// The most messages the channel holds.
    pub capacity: usize,
    /// The most messages it has held at once, sampled: one send in 256 (every 256th message)
    /// reads the depth after publishing, and a send that finds the channel full records
    /// `capacity`. So the mark is exact once a send has found every slot holding a message (a
    /// recycling send refused because its slot was inside a `recv_with` counts in `full_sends`
    /// but does not raise the mark), and otherwise
    /// may read up to 255 below the true peak (and never more than `capacity - 1` below it,
    /// unless receivers race the sampling send: one that takes its message before the send
    /// reads the depth makes that sample read less), even when the channel filled up without
    /// a send finding it so (16 sends into a fresh channel of 16 read 1); never above
    /// `capacity`. The sample is sparse because reading the depth pulls the receivers' cache line
    /// to the sender, which costs more than the rest of a send (the repository's JOURNAL.md has the
    /// figures). For the depth now, read [`len`](Self::len).
    pub high_water: usize,
    /// Sends that found the channel full: each `try_send` refused as full, and each blocking or
    /// timed send that had to wait for room (counted once per call, not per retry). A
    /// recycling channel's send that finds its next slot still inside a `recv_with` closure
    /// counts too.
    pub full_sends: u64,
}
