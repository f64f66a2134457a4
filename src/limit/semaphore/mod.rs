//! [`Semaphore`]: weighted permits with a FIFO queue of waiters, and its RAII permits: the
//! borrowing [`Permit`] and the `Arc`-owning [`OwnedPermit`].
//!
//! This file holds the type and its API; `queue.rs` the ticket queue that waiters wait in and
//! the release that wakes them; `permit.rs` the permits that give their weight back on drop.

use super::{AcquireError, AcquireTimeoutError, LimitError, TryAcquireError};
use crate::sync::{Arc, AtomicU64, Mutex, Ordering};
use queue::{free, State, Stop, CLOSED, HANDOFF, QUEUED};
use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::{Duration, Instant};

mod fairness;
mod permit;
mod queue;

pub use fairness::Fairness;
pub use permit::{OwnedPermit, Permit};

/// A counting semaphore with weighted requests, served first come, first served.
///
/// Waiters queue in arrival order, and a request that arrives while others wait queues behind
/// them even if permits are free: a large request is never starved by a stream of small ones.
/// [`with_fairness`](Semaphore::with_fairness) makes one that lets a running thread take freed
/// permits ahead of the line until someone has waited a given time ([`Fairness::Eventual`]),
/// for short holds among more threads than CPUs.
/// [`close`](Semaphore::close) wakes every waiter with an error and refuses new requests;
/// permits already granted stay valid and are returned as usual.
///
/// [`acquire`](Semaphore::acquire), [`try_acquire`](Semaphore::try_acquire) and
/// [`acquire_timeout`](Semaphore::acquire_timeout) return a [`Permit`] that borrows the
/// semaphore: enough when the permit is dropped in the scope that took it, scoped threads
/// included. On an `Arc<Semaphore>`, [`acquire_owned`](Semaphore::acquire_owned),
/// [`try_acquire_owned`](Semaphore::try_acquire_owned) and
/// [`acquire_timeout_owned`](Semaphore::acquire_timeout_owned) return an [`OwnedPermit`] that
/// holds a reference to it, to move into `std::thread::spawn` or store beside the work it
/// guards.
/// Either kind can be [forgotten](Permit::forget) instead of dropped: its permits leave the
/// semaphore for good, and [`total`](Semaphore::total) shrinks.
///
/// # When to use
/// Cap the work running at once (connections to a database, jobs holding memory) when callers
/// should *wait* for room, fairly. Weights let a job hold as many permits as it uses (bytes,
/// rows).
/// # When not to use
/// If callers should be refused rather than queue, use [`InFlight`](super::InFlight) (a single
/// atomic, no lock). For a rate over time, use [`TokenBucket`](super::TokenBucket).
///
/// # Deadlocks
/// Permits are not re-entrant: the semaphore does not know who holds them. A thread that holds
/// permits and asks the same semaphore for more waits like anyone else, and nothing detects a
/// wait that cannot end:
/// - alone, when it asks for more than `total()` less what it holds (`Semaphore::new(1)`, then
///   `acquire(1)` twice on one thread, never returns); only a request over `total()` itself
///   fails, with [`AcquireError::InsufficientCapacity`];
/// - beside others, even while enough permits are free: a request made while anyone waits
///   queues behind them, and the waiter in front may need the permits this thread holds.
///
/// Take what a task needs in one `acquire(weight)`, or make the second request with
/// [`try_acquire`](Semaphore::try_acquire) or [`acquire_timeout`](Semaphore::acquire_timeout)
/// and give back what you hold when it fails. As with locks, two semaphores taken in opposite
/// orders by two threads can deadlock.
///
/// # Examples
/// ```
/// use thrifty::limit::Semaphore;
///
/// let connections = Semaphore::new(4);
/// std::thread::scope(|s| {
///     for _ in 0..8 {
///         s.spawn(|| {
///             let _permit = connections.acquire(1).unwrap(); // at most 4 run here at once
///             assert!(connections.available() <= 3);
///         }); // the permit goes back when dropped
///     }
/// });
/// assert_eq!(connections.available(), 4);
/// ```
///
/// # Allocation
/// None per acquire or release, borrowed or owned (`tests/alloc_limit.rs`), except that the first
/// call in the process that needs the number of CPUs (a semaphore's first wait, a channel's, or
/// the making of a `ShardedMap` with the default shard count, a `KeyedLimiter` or a `PerCpu`)
/// asks the OS for it, once
/// (`std::thread::available_parallelism`, which allocates), that the line of waiters grows when
/// more threads wait at once than ever before, and keeps that capacity, and that a release which
/// wakes more than 4 waiters at once (a permit of 8 freeing room for eight of 1), or a timed-out
/// waiter leaving the front of the line that does, gathers them in a heap buffer for that call.
///
/// # Cost
/// - **While nobody waits**: an acquire is one compare-and-swap on the semaphore's permit word
///   and a release one atomic add: no lock, so it scales like any one contended atomic (the owned
///   forms add an `Arc` count increment and decrement).
/// - **A request that has to wait** takes a lock, joins the line and, before it parks, spins:
///   some 1 000 spin hints at the front of the line (about 9 µs where a hint takes 9 ns), 127 and
///   a few yields behind it, none with one CPU. A release while someone waits takes the lock and
///   unparks only the waiters it granted.
/// - **Scarce permits**: strict arrival order passes every freed permit to the longest waiter,
///   between threads, and the front waiter's spin is CPU time: with one permit for 2 threads the
///   shootout's limit table gives about 1.2x-2.4x (medians 1.5x-1.7x) the `Mutex` + `Condvar`
///   semaphore's CPU time per acquire (the README's runs). A hand-over to a waiter that has
///   parked costs a wake-up: tens of microseconds on a VM.
/// - **More threads in line than CPUs** (or a machine busy with other work): every hand-over
///   then waits until the scheduler runs the one waiter it went to, however short the hold,
///   where a `Mutex` + `Condvar` semaphore lets the running thread take the permit back. The
///   shootout's "semaphore, one permit" rows (`--threads 8,32` on 2 cores) show it: about a
///   hundred times that semaphore's time per acquire and tens of times its CPU (the README has
///   the figures). Where holds are short and threads outnumber CPUs, [`Fairness::Eventual`] lets
///   the running thread take the permit back, as the `Mutex` + `Condvar` semaphore does, or
///   [`InFlight`](super::InFlight) refuses rather than queues.
/// - **A waiter granted while it spins** keeps its wake-up: the thread's next `park` (its next
///   wait here, or one of its own) returns at once, once; every `park` must be in a loop anyway.
/// - **A waiter that leaves the line from behind others** (timed out, or its weight over a shrunk
///   total) moves up to half the line under the lock (40 bytes a waiter on 64-bit Linux); one
///   that leaves from the front, as waiters with one timeout do, moves none.
///
/// `cargo bench --bench limit -- semaphore` and the shootout's limit table
/// (`cargo run --release --example shootout -- --only limit`) compare it with `Mutex` +
/// `Condvar`, with a permit for every thread, with permits for half of them and, past 2
/// threads, with one permit for all; the module doc's "How it works" says why the hand-overs
/// and the spin cost what they do.
pub struct Semaphore {
    /// Free permits and the `QUEUED`/`CLOSED`/`HANDOFF`/`NUDGED` flags (`queue.rs`): the fast
    /// paths' one word.
    permits: AtomicU64,
    /// The flags of `permits` that send a request to the line: `CLOSED` and, strict,
    /// `QUEUED`, or, barging, `HANDOFF`.
    blocks: u64,
    fairness: Fairness,
    /// The line of waiters, for the slow paths.
    state: Mutex<State>,
    /// The permits managed: those the semaphore was made with, less those forgotten. Changed
    /// only under the lock (`forget`), read without it.
    total: AtomicU64,
    /// The ticket at the front of the line (`queue.rs`), read by waiters without the lock.
    served: AtomicU64,
    /// Unit tests only: for each of the first 8 tickets, one more than the tries its waiter's
    /// last spin made, stored as the spin gives up, before the waiter parks (`tests.rs`: `spun`).
    #[cfg(all(test, not(loom)))]
    spun: [crate::sync::AtomicUsize; 8],
    /// Unit tests only: holds a waiter at the first try of its spin (`tests.rs`: `hold_spin`).
    #[cfg(all(test, not(loom)))]
    hold_spin: crate::sync::AtomicU64,
    /// Unit tests only: holds a waiter whose spin took its permits before it takes the lock to
    /// leave the line (`tests.rs`: `hold_after_take`).
    #[cfg(all(test, not(loom)))]
    hold_taken: crate::sync::AtomicUsize,
}

// No user code runs under the lock, and a permit dropped by a panic gives its permits back: a
// panic leaves the semaphore consistent, so it may be used across `catch_unwind`.
impl UnwindSafe for Semaphore {}
impl RefUnwindSafe for Semaphore {}

impl Semaphore {
    /// A semaphore with `permits` permits.
    ///
    /// # Panics
    /// If `permits == 0` (it would refuse everything); [`try_new`](Semaphore::try_new) returns
    /// the error instead.
    #[track_caller]
    pub fn new(permits: u32) -> Self {
        match Self::try_new(permits) {
            Ok(semaphore) => semaphore,
            Err(e) => panic!("Semaphore::new({permits}): {e}"),
        }
    }

    /// A semaphore with `permits` permits.
    ///
    /// # Errors
    /// [`LimitError::ZeroPermits`] if `permits == 0`.
    pub fn try_new(permits: u32) -> Result<Self, LimitError> {
        Self::make(permits, Fairness::Strict)
    }

    /// [`try_with_fairness`](Semaphore::try_with_fairness)'s work, for both constructors.
    fn make(permits: u32, fairness: Fairness) -> Result<Self, LimitError> {
        if permits == 0 {
            return Err(LimitError::ZeroPermits);
        }
        let blocks = match fairness {
            Fairness::Strict => QUEUED | CLOSED,
            Fairness::Eventual(_) => HANDOFF | CLOSED,
        };
        Ok(Self {
            permits: AtomicU64::new(u64::from(permits)),
            blocks,
            fairness,
            state: Mutex::new(State::new()),
            total: AtomicU64::new(u64::from(permits)),
            served: AtomicU64::new(0),
            #[cfg(all(test, not(loom)))]
            spun: Default::default(),
            #[cfg(all(test, not(loom)))]
            hold_spin: AtomicU64::new(0),
            #[cfg(all(test, not(loom)))]
            hold_taken: crate::sync::AtomicUsize::new(0),
        })
    }

    /// Takes `weight` permits if they are free now and nobody is queued (with
    /// [`Fairness::Eventual`]: unless the line is being handed over to); never blocks, and
    /// takes no lock, granted or refused: one compare-and-swap, or the loads that tell why not.
    ///
    /// # Errors
    /// [`TryAcquireError::NoPermits`] if they are not free, or earlier waiters are queued (with
    /// [`Fairness::Eventual`], only while the semaphore hands permits over in order: its front
    /// waiter has waited its patience);
    /// [`TryAcquireError::Closed`]; [`TryAcquireError::InsufficientCapacity`] if `weight`
    /// is over the semaphore's [`total`](Semaphore::total).
    pub fn try_acquire(&self, weight: u32) -> Result<Permit<'_>, TryAcquireError> {
        match self.try_take(weight) {
            Ok(()) => Ok(Permit::new(self, weight)),
            Err(None) => Err(TryAcquireError::NoPermits),
            Err(Some(Stop::Closed)) => Err(TryAcquireError::Closed),
            Err(Some(Stop::OverTotal(e))) => Err(TryAcquireError::InsufficientCapacity(e)),
            Err(Some(Stop::Timeout)) => unreachable!("no wait"),
        }
    }

    /// Takes `weight` permits, waiting in line for them.
    ///
    /// # Errors
    /// [`AcquireError::Closed`] if the semaphore is or becomes closed first;
    /// [`AcquireError::InsufficientCapacity`] if `weight` is over the semaphore's
    /// [`total`](Semaphore::total), so it could never be granted: at once, or while waiting
    /// if [forgotten](Permit::forget) permits bring the total below `weight`.
    pub fn acquire(&self, weight: u32) -> Result<Permit<'_>, AcquireError> {
        match self.acquire_until(weight, None) {
            Ok(()) => Ok(Permit::new(self, weight)),
            Err(Stop::Closed) => Err(AcquireError::Closed),
            Err(Stop::OverTotal(e)) => Err(AcquireError::InsufficientCapacity(e)),
            Err(Stop::Timeout) => unreachable!("no deadline"),
        }
    }

    /// Takes `weight` permits, waiting in line for them at most `timeout`. A zero `timeout`
    /// answers as [`try_acquire`](Semaphore::try_acquire) does (`Timeout` for `NoPermits`)
    /// and never joins the line, so it cannot turn away other requests while it is there. A
    /// `timeout` too long for `Instant` (`Duration::MAX`) waits without a deadline, as
    /// [`acquire`](Semaphore::acquire) does.
    ///
    /// # Errors
    /// [`AcquireTimeoutError::Timeout`] if they were not granted in time (the request leaves
    /// the queue, and those behind it move up); otherwise as [`acquire`](Semaphore::acquire).
    pub fn acquire_timeout(
        &self,
        weight: u32,
        timeout: Duration,
    ) -> Result<Permit<'_>, AcquireTimeoutError> {
        let took = if timeout.is_zero() {
            // No time to wait: `try_acquire`'s answer, without joining the line, where even a
            // moment's stay would send every other request behind it.
            self.try_take(weight)
                .map_err(|stop| stop.unwrap_or(Stop::Timeout))
        } else {
            // A timeout too large for `Instant` waits without one.
            self.acquire_until(weight, Instant::now().checked_add(timeout))
        };
        took.map(|()| Permit::new(self, weight))
            .map_err(|stop| match stop {
                Stop::Closed => AcquireTimeoutError::Closed,
                Stop::Timeout => AcquireTimeoutError::Timeout,
                Stop::OverTotal(e) => AcquireTimeoutError::InsufficientCapacity(e),
            })
    }

    // The owned forms take `self: &Arc<Self>`. Under loom, `Arc` is loom's, which cannot be a
    // method receiver: there the same parameter is `this`, and callers write
    // `Semaphore::acquire_owned(&sem, 1)` (which works in both builds).

    /// As [`try_acquire`](Semaphore::try_acquire), for an `Arc`'d semaphore: the
    /// [`OwnedPermit`] holds a reference to the semaphore instead of borrowing it, so it can be
    /// stored or moved to another thread. See [`OwnedPermit`] for when the borrowing
    /// [`Permit`] is enough.
    ///
    /// # Cost
    /// `try_acquire`'s, plus one atomic increment of the `Arc`'s count; no allocation.
    ///
    /// # Errors
    /// As [`try_acquire`](Semaphore::try_acquire).
    ///
    /// # Examples
    /// Jobs that carry their share of a memory budget, granted only if it is free now:
    /// ```
    /// use std::sync::Arc;
    /// use thrifty::limit::{OwnedPermit, Semaphore, TryAcquireError};
    ///
    /// struct Job {
    ///     buffer: Vec<u8>,
    ///     _memory: OwnedPermit, // the budget goes back when the job is dropped
    /// }
    ///
    /// let memory = Arc::new(Semaphore::new(1024)); // bytes of buffers alive at once
    /// let mut jobs = Vec::new();
    /// for size in [512, 256, 512] {
    ///     match memory.try_acquire_owned(size) {
    ///         Ok(permit) => jobs.push(Job { buffer: vec![0; size as usize], _memory: permit }),
    ///         Err(e) => assert_eq!(e, TryAcquireError::NoPermits), // shed the third
    ///     }
    /// }
    /// assert_eq!((jobs.len(), jobs[1].buffer.len(), memory.available()), (2, 256, 256));
    /// jobs.clear();
    /// assert_eq!(memory.available(), 1024);
    /// ```
    pub fn try_acquire_owned(
        #[cfg(not(loom))] self: &Arc<Self>,
        #[cfg(loom)] this: &Arc<Self>,
        weight: u32,
    ) -> Result<OwnedPermit, TryAcquireError> {
        #[cfg(not(loom))]
        let this = self;
        this.try_acquire(weight)
            .map(|permit| permit.into_owned(this))
    }

    /// As [`acquire`](Semaphore::acquire), for an `Arc`'d semaphore: waits in the same line as
    /// the borrowing forms, and the [`OwnedPermit`] holds a reference to the semaphore, so it
    /// can move into `std::thread::spawn`. See [`OwnedPermit`] for when the borrowing
    /// [`Permit`] is enough.
    ///
    /// # Cost
    /// `acquire`'s, plus one atomic increment of the `Arc`'s count (and a decrement when the
    /// permit drops); no allocation beyond `acquire`'s (the waiter queue's growth). Where
    /// threads share the semaphore, they all write that count: one more cache line that moves
    /// between cores at each acquire and release (with one permit for 2 threads, criterion's
    /// owned row takes about twice the borrowed one's time on a 2-core VM). A semaphore that
    /// lives as long as the program (a `static`) gives [`acquire`](Semaphore::acquire)'s
    /// borrowed permits, `'static` and `Send`, with no count.
    ///
    /// # Errors
    /// As [`acquire`](Semaphore::acquire).
    ///
    /// # Examples
    /// At most two jobs run at once, each on its own thread; the permit is taken before the
    /// thread is spawned, so waiting jobs cost no thread:
    /// ```
    /// use std::sync::Arc;
    /// use thrifty::limit::Semaphore;
    ///
    /// let workers = Arc::new(Semaphore::new(2));
    /// let handles: Vec<_> = (0..6u32)
    ///     .map(|job| {
    ///         let permit = workers.acquire_owned(1).unwrap(); // waits while two run
    ///         std::thread::spawn(move || {
    ///             let result = job * 10; // ... the work, holding the permit ...
    ///             drop(permit);
    ///             result
    ///         })
    ///     })
    ///     .collect();
    /// let results: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    /// assert_eq!(results, [0, 10, 20, 30, 40, 50]);
    /// assert_eq!(workers.available(), 2);
    /// ```
    pub fn acquire_owned(
        #[cfg(not(loom))] self: &Arc<Self>,
        #[cfg(loom)] this: &Arc<Self>,
        weight: u32,
    ) -> Result<OwnedPermit, AcquireError> {
        #[cfg(not(loom))]
        let this = self;
        this.acquire(weight).map(|permit| permit.into_owned(this))
    }

    /// As [`acquire_timeout`](Semaphore::acquire_timeout), for an `Arc`'d semaphore; see
    /// [`acquire_owned`](Semaphore::acquire_owned).
    ///
    /// # Cost
    /// `acquire_timeout`'s, plus one atomic increment of the `Arc`'s count.
    ///
    /// # Errors
    /// As [`acquire_timeout`](Semaphore::acquire_timeout).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use thrifty::limit::{AcquireTimeoutError, Semaphore};
    ///
    /// let sem = Arc::new(Semaphore::new(1));
    /// let held = sem.acquire_owned(1).unwrap();
    /// let err = sem.acquire_timeout_owned(1, Duration::from_millis(5)).unwrap_err();
    /// assert_eq!(err, AcquireTimeoutError::Timeout);
    /// let holder = std::thread::spawn(move || drop(held)); // released on another thread
    /// let permit = sem.acquire_timeout_owned(1, Duration::from_secs(60)).unwrap();
    /// holder.join().unwrap();
    /// assert_eq!((permit.weight(), sem.available()), (1, 0));
    /// ```
    pub fn acquire_timeout_owned(
        #[cfg(not(loom))] self: &Arc<Self>,
        #[cfg(loom)] this: &Arc<Self>,
        weight: u32,
        timeout: Duration,
    ) -> Result<OwnedPermit, AcquireTimeoutError> {
        #[cfg(not(loom))]
        let this = self;
        this.acquire_timeout(weight, timeout)
            .map(|permit| permit.into_owned(this))
    }

    /// Closes the semaphore: every waiter wakes with an error, and later requests fail.
    /// Permits already held stay valid and still come back when dropped.
    pub fn close(&self) {
        self.close_line();
    }

    /// How this semaphore orders competing requests.
    pub fn fairness(&self) -> Fairness {
        self.fairness
    }

    /// Whether [`close`](Semaphore::close) was called.
    pub fn is_closed(&self) -> bool {
        self.permits.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Permits free now (a snapshot).
    pub fn available(&self) -> u32 {
        free(self.permits.load(Ordering::Acquire))
    }

    /// Requests queued now (a snapshot).
    pub fn waiting(&self) -> usize {
        self.state.lock().waiting()
    }

    /// The permits this semaphore manages: those it was made with, less any
    /// [forgotten](Permit::forget) (a snapshot). Every permit is free or held:
    /// [`available`](Semaphore::available) plus the weights of the permits held is `total`.
    /// No request over it can be granted; it fails with `InsufficientCapacity`.
    pub fn total(&self) -> u32 {
        // Relaxed: a snapshot; the total is changed only under the lock (`forget`).
        self.total.load(Ordering::Relaxed) as u32
    }
}

impl fmt::Debug for Semaphore {
    /// A snapshot, formatted after the lock is let go: the formatter may be slow (a full pipe)
    /// or read this semaphore itself, and neither may hold up or deadlock its users.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiting = self.waiting();
        f.debug_struct("Semaphore")
            .field("total", &self.total())
            .field("available", &self.available())
            .field("waiting", &waiting)
            .field("closed", &self.is_closed())
            .field("fairness", &self.fairness)
            .finish()
    }
}

#[cfg(test)]
mod fairness_tests;
#[cfg(test)]
mod tests;
