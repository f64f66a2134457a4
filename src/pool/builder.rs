//! [`Builder`]: the knobs of a [`Pool`].

use super::hooks::KeepIf;
use super::{Closures, Pool, DEFAULT_CAPACITY};
use crate::reset::{ByReset, Resetter};
use std::fmt;
use std::marker::PhantomData;

/// Builds a [`Pool`]: capacity, how objects are reset, which are kept, when they are reset.
///
/// `R` is the [`Resetter`]: [`ByReset`] (the [`Reset`](crate::Reset) impl) until
/// [`reset`](Builder::reset) gives a closure, so a type with no `Reset` impl can be pooled.
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
#[must_use = "a builder does nothing until `build`"]
pub struct Builder<T, R = ByReset> {
    capacity: usize,
    reset: R,
    keep_if: Option<KeepIf<T>>,
    reset_on_return: bool,
    _values: PhantomData<fn() -> T>,
}

impl<T> Builder<T> {
    pub(super) fn new() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            reset: ByReset,
            keep_if: None,
            reset_on_return: false,
            _values: PhantomData,
        }
    }
}

impl<T, R> Builder<T, R> {
    /// The most objects the pool retains (default [`DEFAULT_CAPACITY`]). Objects given back to
    /// a full pool are dropped. 0 means "never retain": every get calls the factory.
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

    /// Builds the pool; `factory` makes new objects, which must be in reset state.
    ///
    /// Allocates the per-thread cache array and preallocates the shared store (up to 1024
    /// objects).
    pub fn build<F>(self, factory: F) -> Pool<T>
    where
        R: Resetter<T> + Send + Sync + 'static,
        F: Fn() -> T + Send + Sync + 'static,
    {
        let reset = self.reset;
        let hooks = Closures {
            factory: Box::new(factory),
            // `ByReset` is zero-sized, so this box does not allocate for the default.
            reset: Box::new(move |obj: &mut T| reset.reset_value(obj)),
            keep_if: self.keep_if,
            reset_on_return: self.reset_on_return,
        };
        Pool::from_parts(hooks, self.capacity, usize::MAX)
    }
}

impl<T, R> fmt::Debug for Builder<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("capacity", &self.capacity)
            .field("keep_if", &self.keep_if.is_some())
            .field("reset_on_return", &self.reset_on_return)
            .finish_non_exhaustive()
    }
}
