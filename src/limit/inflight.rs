//! [`InFlight`]: load shedding by a cap on requests in flight, one atomic, never a wait.

use super::LimitError;
use crate::sync::{Arc, AtomicU64, AtomicUsize, CachePadded, Ordering};
use std::fmt;

/// A gate that admits at most `max` requests at once and refuses the rest at once.
///
/// [`try_enter`](InFlight::try_enter) either admits (an [`InFlightPermit`] that leaves on drop)
/// or sheds, and counts both, so a service answers "overloaded" in nanoseconds instead of
/// queueing until memory runs out.
///
/// # When to use
/// In front of anything that queues: shed first, then let admitted requests wait for a
/// [`Semaphore`](super::Semaphore) if they must. The module docs show the order.
///
/// # When not to use
/// When a caller should wait for room rather than be refused, use a `Semaphore`.
///
/// # Examples
/// ```
/// use thrifty::limit::InFlight;
///
/// let gate = InFlight::new(2);
/// let a = gate.try_enter().unwrap();
/// let _b = gate.try_enter().unwrap();
/// assert!(gate.try_enter().is_none()); // shed: answer 503 now
/// drop(a);
/// assert!(gate.try_enter().is_some());
/// assert_eq!((gate.admitted(), gate.shed()), (3, 1));
/// ```
///
/// To hand the admitted request to another thread (`std::thread::spawn`, a pool's job), share
/// the gate in an `Arc` and enter with [`try_enter_owned`](InFlight::try_enter_owned).
///
/// # Allocation
/// None: a few atomic words; entering and leaving never allocate (`tests/alloc_limit.rs`).
///
/// # Cost
/// One compare-and-swap to enter, one `fetch_sub` to leave, one relaxed counter increment.
/// All threads share two cache lines: the in-flight word (with `max` beside it, so the check
/// costs no other line) and the statistics.
pub struct InFlight {
    /// Requests admitted and not yet left (never over `max`), and `max`: read and written by
    /// every enter, so on one line.
    gate: CachePadded<Gate>,
    /// Statistics: admitted and shed requests since creation.
    admitted: AtomicU64,
    shed: AtomicU64,
}

/// The in-flight count and its limit.
struct Gate {
    current: AtomicUsize,
    max: usize,
}

/// One admitted request of an [`InFlight`] gate; it leaves when this is dropped.
///
/// From [`InFlight::try_enter`]. Hold it for exactly as long as the request is in progress
/// (bind it to a named variable, not `_`, which drops it at once).
///
/// # Examples
/// ```
/// let gate = thrifty::limit::InFlight::new(1);
/// {
///     let _permit = gate.try_enter().unwrap();
///     assert_eq!(gate.in_flight(), 1);
///     assert!(gate.try_enter().is_none());
/// } // the request leaves here
/// assert_eq!(gate.in_flight(), 0);
/// ```
///
/// # Allocation and cost
/// None: a reference. Dropping it is one `fetch_sub`.
#[must_use = "the request leaves the gate as soon as the permit is dropped"]
pub struct InFlightPermit<'a> {
    gate: &'a InFlight,
}

/// One admitted request of an `Arc`'d [`InFlight`] gate, with a reference to it; it leaves when
/// this is dropped.
///
/// From [`InFlight::try_enter_owned`]. It borrows nothing (`'static`, `Send` and `Sync`), so
/// it can move into `std::thread::spawn`, a thread pool's job, or the struct that holds the
/// request, and it keeps the gate alive until it is dropped.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use thrifty::limit::InFlight;
///
/// let gate = Arc::new(InFlight::new(8));
/// let admitted = gate.try_enter_owned().unwrap(); // decide before spawning
/// let worker = std::thread::spawn(move || {
///     let _admitted = admitted; // ... the request's work ...
/// });
/// worker.join().unwrap(); // the request left when the thread dropped its permit
/// assert_eq!((gate.in_flight(), Arc::strong_count(&gate)), (0, 1));
/// ```
///
/// # Allocation and cost
/// None. An [`InFlightPermit`]'s, plus one atomic increment of the `Arc`'s count on entering
/// and one decrement on drop.
#[must_use = "the request leaves the gate as soon as the permit is dropped"]
pub struct OwnedInFlightPermit {
    gate: Arc<InFlight>,
}

impl InFlight {
    /// A gate admitting at most `max` requests at once.
    ///
    /// # Panics
    /// If `max == 0`; [`try_new`](InFlight::try_new) returns the error instead.
    #[track_caller]
    pub fn new(max: usize) -> Self {
        match Self::try_new(max) {
            Ok(gate) => gate,
            Err(e) => panic!("InFlight::new({max}): {e}"),
        }
    }

    /// A gate admitting at most `max` requests at once.
    ///
    /// # Errors
    /// [`LimitError::ZeroPermits`] if `max == 0`.
    pub fn try_new(max: usize) -> Result<Self, LimitError> {
        if max == 0 {
            return Err(LimitError::ZeroPermits);
        }
        Ok(Self {
            gate: CachePadded::new(Gate {
                current: AtomicUsize::new(0),
                max,
            }),
            admitted: AtomicU64::new(0),
            shed: AtomicU64::new(0),
        })
    }

    /// Admits the request if fewer than `max` are in flight; otherwise sheds it (`None`).
    ///
    /// Bind the permit for as long as the request runs: `if gate.try_enter().is_none()`
    /// drops it at once, and the work that follows runs outside the gate.
    ///
    /// # Examples
    /// ```
    /// let gate = thrifty::limit::InFlight::new(1);
    /// let Some(_permit) = gate.try_enter() else {
    ///     return; // shed: answer "busy"
    /// };
    /// assert!(gate.try_enter().is_none(), "held until `_permit` is dropped");
    /// ```
    #[inline]
    #[must_use = "the request leaves the gate as soon as the permit is dropped: bind it \
                  (`let Some(_permit) = gate.try_enter() else { .. }`)"]
    pub fn try_enter(&self) -> Option<InFlightPermit<'_>> {
        // `then`, not `then_some`: a permit built eagerly and thrown away would leave.
        self.enter().then(|| InFlightPermit { gate: self })
    }

    /// As [`try_enter`](InFlight::try_enter), for an `Arc`'d gate: the
    /// [`OwnedInFlightPermit`] holds a reference to the gate, so the admitted request can move
    /// to another thread.
    #[inline]
    #[must_use = "the request leaves the gate as soon as the permit is dropped: bind it"]
    pub fn try_enter_owned(
        #[cfg(not(loom))] self: &Arc<Self>,
        #[cfg(loom)] this: &Arc<Self>,
    ) -> Option<OwnedInFlightPermit> {
        #[cfg(not(loom))]
        let this = self;
        this.enter().then(|| OwnedInFlightPermit {
            gate: Arc::clone(this),
        })
    }

    /// Takes a place if fewer than `max` are in flight; counts the request admitted or shed.
    #[inline]
    fn enter(&self) -> bool {
        // Relaxed: the count is the only data. Every change is a read-modify-write on this one
        // word, so their total order keeps it at most `max`; nothing is published through it.
        let mut cur = self.gate.current.load(Ordering::Relaxed);
        loop {
            if cur >= self.gate.max {
                // Relaxed: a statistic.
                self.shed.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            match self.gate.current.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    // Relaxed: a statistic.
                    self.admitted.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Err(seen) => cur = seen,
            }
        }
    }

    /// One request leaves (a permit's drop).
    #[inline]
    fn leave(&self) {
        // Relaxed: see `enter`.
        self.gate.current.fetch_sub(1, Ordering::Relaxed);
    }

    /// Requests in flight now (a snapshot).
    pub fn in_flight(&self) -> usize {
        self.gate.current.load(Ordering::Relaxed)
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.gate.max
    }

    /// Requests admitted since creation.
    pub fn admitted(&self) -> u64 {
        self.admitted.load(Ordering::Relaxed)
    }

    /// Requests shed since creation.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

impl Drop for InFlightPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.gate.leave();
    }
}

impl Drop for OwnedInFlightPermit {
    #[inline]
    fn drop(&mut self) {
        self.gate.leave();
    }
}

impl fmt::Debug for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InFlight")
            .field("in_flight", &self.in_flight())
            .field("max", &self.gate.max)
            .field("admitted", &self.admitted())
            .field("shed", &self.shed())
            .finish()
    }
}

impl fmt::Debug for InFlightPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InFlightPermit").finish_non_exhaustive()
    }
}

impl fmt::Debug for OwnedInFlightPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedInFlightPermit")
            .finish_non_exhaustive()
    }
}
