//! [`Builder`]: the knobs of a [`Pool`].

use super::hooks::{KeepIf, Weigh};
use super::{BuildError, Closures, Pool, DEFAULT_CAPACITY};
use crate::reset::{ByReset, Resetter};
use std::fmt;
use std::marker::PhantomData;

/// Builds a [`Pool`]: capacity, how objects are reset, which are kept, when they are reset,
/// and what they weigh against a byte budget.
///
/// `R` is the [`Resetter`]: [`ByReset`] (the [`Reset`](crate::Reset) impl) until
/// [`reset`](Builder::reset) gives a closure, so a type with no `Reset` impl can be pooled.
///
/// Use it when [`Pool::new`]'s defaults do not fit: a type without `Reset`, a byte budget, a
/// filter on what is kept. For `Vec<u8>` buffers use [`BufferBuilder`](super::BufferBuilder).
///
/// # Examples
/// ```
/// use thrifty::pool::Pool;
///
/// struct Scratch {
///     words: Vec<String>,
/// }
///
/// let pool = Pool::builder()
///     .capacity(8)
///     .reset(|s: &mut Scratch| s.words.clear())
///     .reset_on_return(true) // drop the Strings as soon as a guard is dropped
///     .build(|| Scratch { words: Vec::with_capacity(32) });
/// pool.get().words.push("hello".to_owned());
/// assert!(pool.get().words.is_empty());
/// ```
///
/// # Allocation and cost
/// The builder allocates nothing but the boxes of the `keep_if` and `weigh` closures given it
/// that capture something (a closure that captures nothing boxes without allocating); `build`
/// allocates the pool's shared store once (and boxes a factory or reset closure that captures
/// something), not the objects. The first 8 threads' caches are inside the pool; the others come
/// in leaves of 8, each allocated when a thread of its 8 slots first uses the pool.
#[must_use = "a builder does nothing until `build`"]
pub struct Builder<T, R = ByReset> {
    capacity: usize,
    reset: R,
    keep_if: Option<KeepIf<T>>,
    reset_on_return: bool,
    weigh: Option<Weigh<T>>,
    /// `None` unless set, so `try_build` can refuse it without `weigh`.
    byte_budget: Option<usize>,
    /// As `byte_budget`.
    max_object_bytes: Option<usize>,
    _values: PhantomData<fn() -> T>,
}

impl<T> Builder<T> {
    pub(super) fn new() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            reset: ByReset,
            keep_if: None,
            reset_on_return: false,
            weigh: None,
            byte_budget: None,
            max_object_bytes: None,
            _values: PhantomData,
        }
    }
}

impl<T, R> Builder<T, R> {
    /// The most objects the pool retains (default [`DEFAULT_CAPACITY`]). Objects given back to
    /// a full pool are dropped. 0 means "never retain": every get calls the factory. Values
    /// above 2^24 − 1 (16 777 215 objects) count as that.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Resets objects with `reset` instead of [`Reset`](crate::Reset).
    ///
    /// `reset` must leave no trace of the previous user observable to the next one.
    pub fn reset<F>(self, reset: F) -> Builder<T, F>
    where
        F: Fn(&mut T) + Send + Sync + 'static,
    {
        Builder {
            capacity: self.capacity,
            reset,
            keep_if: self.keep_if,
            reset_on_return: self.reset_on_return,
            weigh: self.weigh,
            byte_budget: self.byte_budget,
            max_object_bytes: self.max_object_bytes,
            _values: PhantomData,
        }
    }

    /// Drops a returned object instead of retaining it when `keep_if` says `false`: for
    /// example a buffer whose capacity grew past a limit, so one outlier does not stay pinned.
    ///
    /// Runs on every return, after the reset if [`reset_on_return`](Builder::reset_on_return)
    /// is on, so keep it cheap.
    pub fn keep_if(mut self, keep_if: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        self.keep_if = Some(Box::new(keep_if));
        self
    }

    /// Resets objects when they come back instead of when they are handed out (default off).
    ///
    /// On: whatever an object references (strings in a `Vec<String>`, `Arc`s, buffers of its
    /// elements) is released as soon as its guard drops, not when the object is next reused, so
    /// an idle pool pins nothing but the objects' own allocations. Off: the reset runs on the
    /// thread that gets the object, right before it uses it (warm in cache), and objects that
    /// are never reused (dropped by `trim`, `clear`, or with the pool) are never reset. Either
    /// way every object handed out is in reset state.
    pub fn reset_on_return(mut self, on: bool) -> Self {
        self.reset_on_return = on;
        self
    }

    /// Weighs objects against [`byte_budget`](Builder::byte_budget) and
    /// [`max_object_bytes`](Builder::max_object_bytes), typically by the bytes they hold.
    ///
    /// A pool without `weigh` bounds only the *count* of objects it retains, never their bytes:
    /// a `Pool::new(Vec::<u8>::new)` that gets a burst of 1 000 buffers of 1 MiB back keeps 256
    /// of them, 256 MiB, with the default capacity of [`DEFAULT_CAPACITY`]. The one-line fix is
    /// `.weigh(|v: &Vec<u8>| v.capacity()).byte_budget(16 << 20)`.
    ///
    /// An object is weighed when it comes back (after [`keep_if`](Builder::keep_if), and after the
    /// reset with [`reset_on_return`](Builder::reset_on_return)), and that weight counts against
    /// the budget while the object is retained; it may stay counted as a thread cache's reservation
    /// while the object is lent out, until a reclaim gives it back (module doc, "How it works"). So
    /// weigh what the reset leaves: a `Vec`'s capacity, not its length, which the reset clears.
    /// Called once on every return (a guard's return to a pool with `keep_if` or `reset_on_return`
    /// also calls it once before them, only to choose its path), so keep it cheap; it should not
    /// panic (a panic propagates: from a guard's drop the object may be leaked rather than dropped;
    /// from `put` or `try_put` it is dropped; see the module docs, "Behaviour under panics").
    ///
    /// # Examples
    /// ```
    /// use thrifty::pool::Pool;
    ///
    /// let pool = Pool::builder()
    ///     .weigh(|v: &Vec<u8>| v.capacity())
    ///     .byte_budget(16 << 20)
    ///     .build(Vec::new);
    /// let held: Vec<_> = (0..100).map(|_| pool.get()).collect();
    /// for mut buf in held {
    ///     buf.reserve_exact(1 << 20); // a burst of 100 buffers of 1 MiB
    /// } // each given back: at most 16 MiB of them are kept
    /// assert!(pool.stats().retained <= 16);
    /// assert!(pool.stats().discarded >= 84);
    /// ```
    pub fn weigh(mut self, weigh: impl Fn(&T) -> usize + Send + Sync + 'static) -> Self {
        self.weigh = Some(Box::new(weigh));
        self
    }

    /// The most bytes retained, summed over what [`weigh`](Builder::weigh) says of each object
    /// (default: 2^40 − 1, 1 TiB, which is also the most a budget counts); an object that would
    /// exceed it is dropped when returned (one heavier than the whole budget at once, with no
    /// reclaim). Needs `weigh`.
    pub fn byte_budget(mut self, bytes: usize) -> Self {
        self.byte_budget = Some(bytes);
        self
    }

    /// Objects that [`weigh`](Builder::weigh) more than this are dropped when returned
    /// (default unlimited), so one outlier does not stay pinned. Needs `weigh`.
    pub fn max_object_bytes(mut self, bytes: usize) -> Self {
        self.max_object_bytes = Some(bytes);
        self
    }

    /// Builds the pool; `factory` makes new objects, which must be in reset state.
    ///
    /// Preallocates the shared store (up to 1024 objects) and boxes a factory or reset closure
    /// that captures something; the per-thread caches come later (see the builder's docs).
    ///
    /// # Panics
    /// If the settings cannot work together, with the message of the [`BuildError`] that
    /// [`try_build`](Builder::try_build) returns.
    #[track_caller]
    pub fn build<F>(self, factory: F) -> Pool<T>
    where
        R: Resetter<T> + Send + Sync + 'static,
        F: Fn() -> T + Send + Sync + 'static,
    {
        // A `match`, not `unwrap_or_else`: a closure would hide the caller's location.
        match self.try_build(factory) {
            Ok(pool) => pool,
            Err(e) => crate::fail::fail(e),
        }
    }

    /// Builds the pool as [`build`](Builder::build) does, or says which settings cannot work.
    ///
    /// # Errors
    /// [`BuildError::ByteBudgetWithoutWeigh`] or [`BuildError::MaxObjectBytesWithoutWeigh`]:
    /// `byte_budget` or `max_object_bytes` was set without `weigh`, so objects weigh 0 and the
    /// limit could never apply.
    ///
    /// # Examples
    /// ```
    /// use thrifty::pool::{BuildError, Pool};
    ///
    /// let err = Pool::builder().byte_budget(1 << 20).try_build(Vec::<u8>::new);
    /// assert_eq!(err.unwrap_err(), BuildError::ByteBudgetWithoutWeigh { byte_budget: 1 << 20 });
    /// ```
    pub fn try_build<F>(self, factory: F) -> Result<Pool<T>, BuildError>
    where
        R: Resetter<T> + Send + Sync + 'static,
        F: Fn() -> T + Send + Sync + 'static,
    {
        if self.weigh.is_none() {
            if let Some(byte_budget) = self.byte_budget {
                return Err(BuildError::ByteBudgetWithoutWeigh { byte_budget });
            }
            if let Some(max_object_bytes) = self.max_object_bytes {
                return Err(BuildError::MaxObjectBytesWithoutWeigh { max_object_bytes });
            }
        }
        let reset = self.reset;
        let fast_floor = if self.reset_on_return || self.keep_if.is_some() {
            usize::MAX
        } else {
            0
        };
        let hooks = Closures {
            factory: Box::new(factory),
            // `ByReset` is zero-sized, so this box does not allocate for the default.
            reset: Box::new(move |obj: &mut T| reset.reset_value(obj)),
            keep_if: self.keep_if,
            reset_on_return: self.reset_on_return,
            weigh: self.weigh,
            max_object_bytes: self.max_object_bytes.unwrap_or(usize::MAX),
            fast_floor,
        };
        let byte_budget = self.byte_budget.unwrap_or(usize::MAX);
        Ok(Pool::from_parts(hooks, self.capacity, byte_budget))
    }
}

impl<T, R> fmt::Debug for Builder<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("capacity", &self.capacity)
            .field("keep_if", &self.keep_if.is_some())
            .field("reset_on_return", &self.reset_on_return)
            .field("weigh", &self.weigh.is_some())
            .field("byte_budget", &self.byte_budget)
            .field("max_object_bytes", &self.max_object_bytes)
            .finish_non_exhaustive()
    }
}
