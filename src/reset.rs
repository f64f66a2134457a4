//! [`Reset`]: bring a value back to empty while keeping its allocations.
//!
//! Anything that recycles values (`pool::Pool`, `channel::recycling`'s slots) needs one
//! operation: make a used value look new without giving its memory back. `Vec::clear` is the
//! model: the length goes to zero, the capacity stays. [`Reset`] names that operation for the
//! std collections; [`Resetter`] lets a closure stand in for the trait where a type has no
//! `Reset` impl or needs a different notion of "empty".
//!
//! # Examples
//! ```
//! use thrifty::Reset;
//!
//! let mut v = Vec::with_capacity(64);
//! v.extend_from_slice(b"previous user's data");
//! v.reset();
//! assert!(v.is_empty());
//! assert!(v.capacity() >= 64, "the allocation is kept");
//! ```

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::hash::BuildHasher;
use std::path::PathBuf;

/// A value that can be brought back to its empty state while keeping its allocations.
///
/// After `reset` a value must be indistinguishable, for its next user, from a freshly built
/// empty one: no element, key or byte of the previous user may remain observable. Capacity is
/// the one thing that may differ, and is the point.
///
/// # When to use
/// Implement it for a type you pool or recycle, usually by clearing each field.
///
/// # When not to use
/// For values that hold external resources (a connection, a transaction, a file lock), "empty"
/// is not a local operation: don't recycle those through a pool, use a connection pool that
/// knows the protocol.
///
/// # Examples
/// ```
/// use thrifty::Reset;
///
/// #[derive(Default)]
/// struct Request {
///     path: String,
///     headers: Vec<(String, String)>,
/// }
///
/// impl Reset for Request {
///     fn reset(&mut self) {
///         self.path.reset();
///         self.headers.reset();
///     }
/// }
///
/// let mut r = Request::default();
/// r.path.push_str("/index.html");
/// r.reset();
/// assert!(r.path.is_empty() && r.headers.is_empty());
/// ```
///
/// # Allocation
/// None in the impls here: the collections keep their buffers, `BTreeMap`/`BTreeSet` free their
/// nodes, `Box<T>` resets the boxed value in place. An impl of your own should not allocate
/// either: a pool runs it each time it hands an object out again (or takes one back, with
/// `reset_on_return`), and a recycling channel on every message.
///
/// # Cost
/// `Vec`, `String`, `OsString`, `PathBuf`, `VecDeque`, `BinaryHeap`, `HashMap` and `HashSet`
/// drop their elements and keep their buffer: O(len) for element types with a destructor, O(1)
/// otherwise (the hash containers also clear their control bytes, O(capacity)).
/// `BTreeMap`/`BTreeSet` free their nodes (a B-tree keeps no spare capacity). `Box<T>` resets
/// the boxed value in place and keeps the box. `Option<T>` becomes `None` (it owns no
/// allocation of its own; pool `T` itself to keep the inner value's buffers).
///
/// A type that does not implement it, used where it must be (`Pool::new(factory)`), gets a
/// compile error that names the builder's reset closure, the way out for a foreign type (the
/// orphan rule keeps `impl Reset for bytes::BytesMut` out of a user's crate):
/// ```compile_fail,E0277
/// struct Conn;
/// let pool = thrifty::pool::Pool::new(|| Conn);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `thrifty::Reset`, which a pool uses to empty an \
               object before it hands it out again",
    note = "implement `thrifty::Reset` for `{Self}`, or give the pool a reset closure: \
            `Pool::builder().reset(|v: &mut {Self}| ..).build(factory)` (the way for a type \
            of another crate)"
)]
pub trait Reset {
    /// Brings `self` back to empty, keeping its allocations where the type has any.
    fn reset(&mut self);
}

impl<T> Reset for Vec<T> {
    #[inline]
    fn reset(&mut self) {
        self.clear();
    }
}

impl Reset for String {
    #[inline]
    fn reset(&mut self) {
        self.clear();
    }
}

impl Reset for OsString {
    #[inline]
    fn reset(&mut self) {
        self.clear();
    }
}

impl Reset for PathBuf {
    #[inline]
    fn reset(&mut self) {
        self.as_mut_os_string().clear();
    }
}

impl<T> Reset for VecDeque<T> {
    #[inline]
    fn reset(&mut self) {
        self.clear();
    }
}

impl<T: Ord> Reset for BinaryHeap<T> {
    #[inline]
    fn reset(&mut self) {
        self.clear();
    }
}

impl<K, V, S: BuildHasher> Reset for HashMap<K, V, S> {
    #[inline]
    fn reset(&mut self) {
        self.clear();
    }
}

impl<T, S: BuildHasher> Reset for HashSet<T, S> {
    #[inline]
    fn reset(&mut self) {
        self.clear();
    }
}

impl<K, V> Reset for BTreeMap<K, V> {
    #[inline]
    fn reset(&mut self) {
        self.clear();
    }
}

impl<T> Reset for BTreeSet<T> {
    #[inline]
    fn reset(&mut self) {
        self.clear();
    }
}

impl<T: Reset + ?Sized> Reset for Box<T> {
    #[inline]
    fn reset(&mut self) {
        (**self).reset();
    }
}

impl<T> Reset for Option<T> {
    #[inline]
    fn reset(&mut self) {
        *self = None;
    }
}

/// Something that can reset a `T`: the [`Reset`] impl ([`ByReset`]) or a closure
/// `Fn(&mut T)`.
///
/// The pool's builder takes a `Resetter` so a caller can pool a type without a `Reset` impl, or
/// reset differently from it (keep a header, zero a key), without a wrapper type. For a type of
/// your own with one obvious empty state, implement [`Reset`] instead: every builder then uses it
/// without being told.
///
/// # Examples
/// ```
/// use thrifty::reset::{ByReset, Resetter};
///
/// fn recycle<R: Resetter<Vec<u8>>>(r: &R, v: &mut Vec<u8>) {
///     r.reset_value(v);
/// }
///
/// let mut v = vec![1, 2, 3];
/// recycle(&ByReset, &mut v);
/// assert!(v.is_empty());
///
/// let mut v = vec![1, 2, 3];
/// recycle(&|v: &mut Vec<u8>| v.truncate(1), &mut v);
/// assert_eq!(v, [1]);
/// ```
///
/// # Allocation and cost
/// None of its own: a call to the closure or to `Reset::reset`, which the compiler can inline
/// when the type is known.
pub trait Resetter<T: ?Sized> {
    /// Brings `value` back to empty.
    fn reset_value(&self, value: &mut T);
}

/// The [`Resetter`] that calls [`Reset::reset`]; the default of every builder that takes one.
///
/// It appears in builder types (`Builder<T, ByReset>`) until a closure replaces it; name it
/// only to write a generic function that takes a [`Resetter`].
///
/// # Examples
/// ```
/// use thrifty::reset::{ByReset, Resetter};
///
/// let mut s = String::with_capacity(32);
/// s.push_str("previous user's data");
/// ByReset.reset_value(&mut s);
/// assert!(s.is_empty() && s.capacity() >= 32);
/// assert_eq!(std::mem::size_of::<ByReset>(), 0);
/// ```
///
/// # Allocation and cost
/// A zero-sized unit value: passing it costs nothing, and its call inlines to the type's
/// `reset`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ByReset;

impl<T: Reset + ?Sized> Resetter<T> for ByReset {
    #[inline]
    fn reset_value(&self, value: &mut T) {
        value.reset();
    }
}

impl<T: ?Sized, F: Fn(&mut T)> Resetter<T> for F {
    #[inline]
    fn reset_value(&self, value: &mut T) {
        self(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<C: Reset + Default + PartialEq + std::fmt::Debug>(
        mut c: C,
        cap: impl Fn(&C) -> usize,
    ) {
        let before = cap(&c);
        c.reset();
        assert_eq!(c, C::default(), "reset leaves the value empty");
        assert_eq!(cap(&c), before, "reset keeps the allocation");
    }

    #[test]
    fn collections_reset_to_empty_keeping_capacity() {
        check(vec![1u8, 2, 3], Vec::capacity);
        check(String::from("secret"), String::capacity);
        check(OsString::from("secret"), OsString::capacity);
        check(PathBuf::from("/var/secret"), PathBuf::capacity);
        check(VecDeque::from(vec![1, 2]), VecDeque::capacity);
        check(HashMap::from([(1, 2), (3, 4)]), HashMap::capacity);
        check(HashSet::from([1, 2, 3]), HashSet::capacity);
        check(BTreeMap::from([(1, 2)]), |_| 0);
        check(BTreeSet::from([1]), |_| 0);
        check(Box::new(vec![1, 2]), |b| b.capacity());
        let mut heap = BinaryHeap::from(vec![3, 1, 2]);
        let cap = heap.capacity();
        heap.reset();
        assert!(heap.is_empty() && heap.capacity() == cap);
    }

    #[test]
    fn option_becomes_none() {
        let mut o = Some(vec![1]);
        o.reset();
        assert_eq!(o, None);
    }

    #[test]
    fn closures_and_by_reset_are_resetters() {
        let mut v = vec![1, 2, 3];
        ByReset.reset_value(&mut v);
        assert!(v.is_empty());
        let keep_first = |v: &mut Vec<i32>| v.truncate(1);
        let mut v = vec![1, 2, 3];
        keep_first.reset_value(&mut v);
        assert_eq!(v, [1]);
    }
}
