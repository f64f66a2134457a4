//! The guards a pool hands out: [`Pooled`] borrows the pool, [`PooledOwned`] holds an `Arc`.

use super::{Closures, Hooks, Item, Pool};
use crate::sync::Arc;
use std::borrow::{Borrow, BorrowMut};
use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

/// The traits both guards implement by lending their object, as `Deref` does: `Borrow` and
/// `BorrowMut` for any `T`, and for byte buffers `AsRef<[u8]>`, `AsMut<[u8]>` and `io::Write`.
macro_rules! delegate_traits {
    ($guard:ident $(<$lt:lifetime>)?) => {
        /// Lends the object, as `Deref` does, to code generic over `Borrow<T>`.
        impl<T, H: Hooks<T>> Borrow<T> for $guard<$($lt,)? T, H> {
            #[inline(always)]
            fn borrow(&self) -> &T {
                self
            }
        }

        /// Lends the object mutably, as `DerefMut` does, to code generic over `BorrowMut<T>`.
        impl<T, H: Hooks<T>> BorrowMut<T> for $guard<$($lt,)? T, H> {
            #[inline(always)]
            fn borrow_mut(&mut self) -> &mut T {
                self
            }
        }

        /// The buffer's bytes, for code that takes `impl AsRef<[u8]>`.
        impl<H: Hooks<Vec<u8>>> AsRef<[u8]> for $guard<$($lt,)? Vec<u8>, H> {
            #[inline(always)]
            fn as_ref(&self) -> &[u8] {
                self
            }
        }

        /// The buffer's bytes, mutably, for code that takes `impl AsMut<[u8]>`.
        impl<H: Hooks<Vec<u8>>> AsMut<[u8]> for $guard<$($lt,)? Vec<u8>, H> {
            #[inline(always)]
            fn as_mut(&mut self) -> &mut [u8] {
                self
            }
        }

        /// Appends to the buffer, as `Vec<u8>`'s `Write` does: `write!` into a pooled buffer.
        ///
        /// # Examples
        /// ```
        /// use std::io::Write;
        /// use thrifty::pool::BufferPool;
        ///
        /// let pool = BufferPool::default();
        /// let mut buf = pool.get();
        /// write!(buf, "HTTP/1.1 {} OK\r\n", 200).unwrap();
        /// assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\n");
        /// ```
        impl<H: Hooks<Vec<u8>>> io::Write for $guard<$($lt,)? Vec<u8>, H> {
            #[inline]
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                (**self).write(buf)
            }

            #[inline]
            fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
                (**self).write_all(buf)
            }

            #[inline]
            fn flush(&mut self) -> io::Result<()> {
                (**self).flush()
            }
        }
    };
}

/// An object on loan from a [`Pool`]; gives it back when dropped.
///
/// Dereferences to the object. Hold it for as long as the work needs the object and let it
/// drop; [`Pooled::into_inner`] keeps the object instead (when it leaves for good). To send
/// the object to another thread that may outlive the borrow, use [`PooledOwned`].
///
/// # Examples
/// ```
/// let pool = thrifty::pool::Pool::new(Vec::<u32>::new);
/// let mut v = pool.get();
/// v.push(7);
/// let kept: Vec<u32> = thrifty::pool::Pooled::into_inner(v); // not given back
/// assert_eq!(kept, [7]);
/// assert_eq!(pool.stats().retained, 0);
/// ```
///
/// A guard derefs to its object, so threads may share it only as far as they may share the
/// object: a guard is `Sync` when `T` is,
///
/// ```
/// fn is_sync<T: Sync>() {}
/// is_sync::<thrifty::pool::Pooled<'static, u8>>();
/// ```
///
/// and not when `T` is not (a `Cell` is `Send` but not `Sync`):
///
/// ```compile_fail,E0277
/// fn is_sync<T: Sync>() {}
/// is_sync::<thrifty::pool::Pooled<'static, std::cell::Cell<u8>>>();
/// ```
///
/// # Allocation
/// None once warm (`tests/alloc_pool.rs`): dropping it allocates only while the shared store's
/// overflow list, used by pools of a capacity over 1 024 past their preallocated ring, grows
/// its `Vec`. An object the pool will not keep (full, too heavy, refused by `keep_if`) is
/// dropped there and then; its box stays, empty, with the thread's cache, for the thread's
/// next object (one at most per cache), as does that of an object detached with `into_inner`.
///
/// # Cost
/// Two words. Dropping it on the thread that got it puts the object in that thread's cache: a
/// few plain loads and stores, no locked instruction. Dropped on another thread (a scoped
/// thread, say), it goes to that thread's cache if that thread gets from the pool too and has
/// room, else to the pool's shared store: a compare-and-swap on the store, plus one on the
/// pool's budget unless the object came from the store and still holds its unit there (a
/// ticket: the usual case for objects handed between threads).
///
/// # Panics
/// Dropping the guard runs the pool's `keep_if` (and `reset` with `reset_on_return`); a panic
/// there drops the object and propagates (as any panic in `drop`, it aborts if the guard is
/// being dropped while the thread is already unwinding). A `weigh` closure, if the pool has
/// one, runs there too: its panic propagates and may leak the object instead (the module docs'
/// "Behaviour under panics").
#[must_use = "the object goes back to the pool as soon as the guard is dropped"]
pub struct Pooled<'a, T, H: Hooks<T> = Closures<T>> {
    pool: &'a Pool<T, H>,
    /// Taken out exactly once: by `drop` or `into_inner`, which forgets the guard.
    value: ManuallyDrop<Item<T>>,
}

impl<'a, T, H: Hooks<T>> Pooled<'a, T, H> {
    #[inline(always)]
    pub(super) fn new(pool: &'a Pool<T, H>, value: Item<T>) -> Self {
        Self {
            pool,
            value: ManuallyDrop::new(value),
        }
    }

    /// Detaches the object from the pool: it will not be given back.
    ///
    /// An associated function (`Pooled::into_inner(guard)`) so it never shadows a method of
    /// `T`.
    pub fn into_inner(this: Self) -> T {
        let mut this = ManuallyDrop::new(this);
        this.pool.settle(this.value.ticket);
        // SAFETY: `this` is never dropped (wrapped in `ManuallyDrop`), so the value is taken out
        // exactly once, here.
        this.pool
            .unbox(unsafe { ManuallyDrop::take(&mut this.value) })
    }

    /// The pool this object came from.
    pub fn pool(this: &Self) -> &'a Pool<T, H> {
        this.pool
    }
}

impl<T, H: Hooks<T>> Deref for Pooled<'_, T, H> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T, H: Hooks<T>> DerefMut for Pooled<'_, T, H> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T, H: Hooks<T>> Drop for Pooled<'_, T, H> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and `into_inner` forgets the guard, so the value is still
        // here, and `put` takes it out; nothing touches the field afterwards.
        unsafe { self.pool.put_back(&mut self.value) };
    }
}

impl<T: fmt::Debug, H: Hooks<T>> fmt::Debug for Pooled<'_, T, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value: &T = self;
        f.debug_tuple("Pooled").field(&value).finish()
    }
}

delegate_traits!(Pooled<'_>);

/// An object on loan from an `Arc`'d [`Pool`]: `'static`, and `Send` when `T: Send`, so it can
/// go to another thread. Gives the object back when dropped, then releases its reference to the
/// pool (the last one drops the pool and everything in it).
///
/// Made by [`Pool::get_owned`]. Use it when the object must move to another thread or outlive
/// a borrow of the pool; otherwise [`Pooled`] saves the reference count.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use thrifty::pool::{Pool, PooledOwned};
///
/// let pool = Arc::new(Pool::new(String::new));
/// let mut s: PooledOwned<String> = pool.get_owned();
/// s.push_str("outlives the borrow");
/// drop(pool); // the guard keeps the pool alive
/// assert_eq!(PooledOwned::into_inner(s), "outlives the borrow");
/// ```
///
/// # Allocation and cost
/// Allocates as [`Pooled`] does, nothing of its own. Costs what [`Pooled`] does to give the
/// object back (cheapest on the thread that got it), plus the `Arc`'s reference count: an
/// atomic increment when made, a decrement when dropped. Panics as [`Pooled`] does.
#[must_use = "the object goes back to the pool as soon as the guard is dropped"]
pub struct PooledOwned<T, H: Hooks<T> = Closures<T>> {
    pool: Arc<Pool<T, H>>,
    /// Taken out exactly once: by `drop` or `into_inner`, which forgets the guard.
    value: ManuallyDrop<Item<T>>,
}

impl<T, H: Hooks<T>> PooledOwned<T, H> {
    #[inline(always)]
    pub(super) fn new(pool: Arc<Pool<T, H>>, value: Item<T>) -> Self {
        Self {
            pool,
            value: ManuallyDrop::new(value),
        }
    }

    /// Detaches the object from the pool: it will not be given back.
    pub fn into_inner(this: Self) -> T {
        let mut this = ManuallyDrop::new(this);
        this.pool.settle(this.value.ticket);
        // SAFETY: `this` is never dropped, so the value is taken out exactly once, here.
        let obj = unsafe { ManuallyDrop::take(&mut this.value) };
        let value = this.pool.unbox(obj);
        // SAFETY: as above for the `Arc`: read out once, then dropped normally, releasing the
        // guard's reference to the pool.
        drop(unsafe { std::ptr::read(&this.pool) });
        value
    }

    /// The pool this object came from.
    pub fn pool(this: &Self) -> &Arc<Pool<T, H>> {
        &this.pool
    }
}

impl<T, H: Hooks<T>> Deref for PooledOwned<T, H> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T, H: Hooks<T>> DerefMut for PooledOwned<T, H> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T, H: Hooks<T>> Drop for PooledOwned<T, H> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and `into_inner` forgets the guard, so the value is still
        // here and is taken out exactly once.
        // The value goes back before the `Arc` field is dropped, so a last reference drops the
        // pool with the value in it.
        unsafe { self.pool.put_back(&mut self.value) };
    }
}

impl<T: fmt::Debug, H: Hooks<T>> fmt::Debug for PooledOwned<T, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value: &T = self;
        f.debug_tuple("PooledOwned").field(&value).finish()
    }
}

delegate_traits!(PooledOwned);
