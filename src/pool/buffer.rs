//! [`BufferPool`]: the preset for byte buffers, with a per-buffer and a whole-pool byte limit.

use super::shared::counted_bytes;
use super::{Buffers, BuildError, Pool, Pooled, PooledOwned, DEFAULT_CAPACITY};
use crate::sync::Arc;
use std::ops::Deref;

/// Initial capacity of a new buffer unless [`BufferBuilder::buffer_capacity`] says otherwise.
pub const DEFAULT_BUFFER_CAPACITY: usize = 4 * 1024;
/// Largest buffer capacity kept unless [`BufferBuilder::max_buffer_capacity`] says otherwise.
pub const DEFAULT_MAX_BUFFER_CAPACITY: usize = 64 * 1024;
/// Bytes retained at most unless [`BufferBuilder::byte_budget`] says otherwise.
pub const DEFAULT_BYTE_BUDGET: usize = 16 * 1024 * 1024;

/// A pool of `Vec<u8>` byte buffers, bounded in objects *and* bytes.
///
/// [`BufferPool::new`] has the defaults, [`BufferPool::builder`] the settings. It dereferences to
/// the [`Pool`] of `Vec<u8>` with the [`Buffers`] hooks that it wraps, so `get`, `try_get`,
/// `put`, `stats`, `trim` and `clear` are the pool's ([`BufferPool::get_owned`] is its own, on
/// an `Arc<BufferPool>`); its guards are [`PooledBuffer`] and [`PooledBufferOwned`], which also
/// implement `std::io::Write` and `AsRef<[u8]>`. On top of the object capacity it keeps:
/// - a per-buffer limit: a buffer whose capacity grew past
///   [`max_buffer_capacity`](BufferBuilder::max_buffer_capacity) is dropped, not retained, so a
///   rare 256 MiB request does not pin 256 MiB under 1 KiB traffic (golang/go#23199,
///   uber-go/zap#1484);
/// - a per-buffer floor: a buffer that comes back with less capacity than
///   [`buffer_capacity`](BufferBuilder::buffer_capacity) (its contents moved out with
///   `std::mem::take(&mut *buf)`, or `shrink_to_fit`) is dropped too, so every buffer `get`
///   hands out has at least `buffer_capacity`;
/// - a byte budget: the capacities of all retained buffers never add up to more than
///   [`byte_budget`](BufferBuilder::byte_budget);
/// - optional zeroing of every returned buffer, for pools that carry secrets.
///
/// # When to use
/// Encoding responses, reading frames, compressing: any hot path that fills a buffer of a few
/// KiB or more and throws it away.
///
/// # When not to use
/// Buffers of a few dozen bytes (allocate them), or buffers that leave for good (handed to a
/// writer that keeps them): pooling only pays when buffers come back.
///
/// # Examples
/// ```
/// use thrifty::pool::BufferPool;
///
/// let pool = BufferPool::builder()
///     .buffer_capacity(4096)
///     .max_buffer_capacity(64 * 1024)
///     .byte_budget(1024 * 1024)
///     .build();
/// let mut buf = pool.get();
/// buf.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
/// drop(buf);
///
/// let mut big = pool.get();
/// big.resize(1 << 20, 0); // an outlier
/// drop(big); // past max_buffer_capacity: dropped, not kept
/// assert_eq!(pool.stats().discarded, 1);
/// ```
///
/// # Allocation
/// As [`Pool`]: a get that finds no buffer allocates one of `buffer_capacity` bytes (and its
/// box); nothing allocates in steady state (`tests/alloc_pool.rs`). A buffer that grew keeps
/// its growth while it stays within `max_buffer_capacity` and the byte budget.
///
/// # Cost
/// As [`Pool`]: no shared write in steady state. Reset is `Vec::clear` (O(1) for bytes) and the
/// weight is `Vec::capacity`, both inlined (no call through a pointer, as a closure-built
/// `Pool<Vec<u8>>` makes). Zeroing costs a `memset` of the buffer's whole capacity per return.
// `repr(transparent)`: `get_owned` turns an `Arc<BufferPool>` into the `Arc<Pool<..>>` its
// guard holds by casting the pointer.
#[derive(Debug)]
#[repr(transparent)]
pub struct BufferPool(Pool<Vec<u8>, Buffers>);

impl Deref for BufferPool {
    type Target = Pool<Vec<u8>, Buffers>;

    #[inline(always)]
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// A buffer on loan from a [`BufferPool`]: a [`Pooled`] `Vec<u8>` that goes back on drop.
///
/// Use it as the `&mut Vec<u8>` it dereferences to; it also implements `std::io::Write` and
/// `AsRef<[u8]>`. Costs and allocations are the [`Pooled`] guard's: none of its own.
///
/// # Examples
/// ```
/// use std::io::Write;
/// let pool = thrifty::pool::BufferPool::new();
/// let mut buf: thrifty::pool::PooledBuffer<'_> = pool.get();
/// write!(buf, "{}", 42).unwrap();
/// assert_eq!(&buf[..], b"42");
/// ```
pub type PooledBuffer<'a> = Pooled<'a, Vec<u8>, Buffers>;

/// A buffer on loan from an `Arc`'d [`BufferPool`] ([`BufferPool::get_owned`]): a
/// [`PooledOwned`] `Vec<u8>` that can move to another thread and goes back on drop.
///
/// Use it when the buffer must outlive a borrow of the pool; otherwise [`PooledBuffer`] saves
/// the `Arc`'s reference count. It allocates nothing of its own; it costs what [`PooledOwned`]
/// does: the [`Pooled`] guard's give-back, plus an atomic increment of the `Arc`'s count when
/// made and a decrement when dropped.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// let pool = Arc::new(thrifty::pool::BufferPool::new());
/// let buf: thrifty::pool::PooledBufferOwned = pool.get_owned();
/// std::thread::spawn(move || drop(buf)).join().unwrap();
/// assert_eq!(pool.stats().retained, 1);
/// ```
pub type PooledBufferOwned = PooledOwned<Vec<u8>, Buffers>;

impl BufferPool {
    /// A byte-buffer pool with every default: 256 buffers, 4 KiB each when new, buffers over
    /// 64 KiB dropped, 16 MiB retained at most, no zeroing. The same as
    /// `BufferPool::builder().build()` and `BufferPool::default()`.
    ///
    /// # Examples
    /// ```
    /// let pool = thrifty::pool::BufferPool::new();
    /// assert!(pool.get().capacity() >= 4096);
    /// ```
    pub fn new() -> Self {
        BufferBuilder::default().build()
    }

    /// A builder for a byte-buffer pool; see [`BufferBuilder`] for the settings.
    pub fn builder() -> BufferBuilder {
        BufferBuilder::default()
    }

    /// [`Pool::get_owned`] for a `BufferPool`: a buffer whose guard holds a reference to the
    /// pool, so it can go to another thread and outlive this borrow. Buffers that cross
    /// threads often cost less from a pool that lives for good, through [`get`](Pool::get):
    /// see [`Pool::get_owned`].
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use thrifty::pool::BufferPool;
    ///
    /// let pool = Arc::new(BufferPool::new());
    /// let mut buf = pool.get_owned();
    /// std::thread::spawn(move || buf.extend_from_slice(b"sent")).join().unwrap();
    /// assert_eq!(pool.stats().retained, 1, "given back on the other thread");
    /// ```
    #[cfg(not(loom))]
    #[inline]
    pub fn get_owned(self: &Arc<Self>) -> PooledBufferOwned {
        PooledOwned::new(Self::as_pool(self), self.take())
    }

    /// Under loom, as [`Pool::get_owned`]'s loom form: `BufferPool::get_owned(&pool)`.
    #[cfg(loom)]
    #[inline]
    pub fn get_owned(this: &Arc<Self>) -> PooledBufferOwned {
        PooledOwned::new(Self::as_pool(this), this.take())
    }

    /// Another reference to `this`'s pool, typed as the `Pool` it wraps.
    #[inline(always)]
    fn as_pool(this: &Arc<Self>) -> Arc<Pool<Vec<u8>, Buffers>> {
        let raw = Arc::into_raw(Arc::clone(this)).cast::<Pool<Vec<u8>, Buffers>>();
        // SAFETY: `BufferPool` is `repr(transparent)` over `Pool<Vec<u8>, Buffers>`, so the two
        // have the same size and alignment, which is what `Arc::from_raw` requires of a pointer
        // from another type's `Arc::into_raw`; the clone's reference count moves to the result.
        unsafe { Arc::from_raw(raw) }
    }
}

/// A byte-buffer pool with every default: see [`BufferBuilder`].
///
/// # Examples
/// ```
/// use thrifty::pool::BufferPool;
///
/// let pool = BufferPool::default();
/// assert!(pool.get().capacity() >= 4096);
/// ```
impl Default for BufferPool {
    fn default() -> Self {
        Self::new()
    }
}

/// The builder [`BufferPool::builder`] returns.
impl Default for BufferBuilder {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            buffer_capacity: DEFAULT_BUFFER_CAPACITY,
            max_buffer_capacity: DEFAULT_MAX_BUFFER_CAPACITY,
            byte_budget: DEFAULT_BYTE_BUDGET,
            zero_on_return: false,
        }
    }
}

/// Builds a [`BufferPool`]. Defaults: 256 buffers, 4 KiB each when new, buffers over 64 KiB
/// dropped, 16 MiB retained at most, no zeroing.
///
/// From [`BufferPool::builder`]; use it when a default does not fit (smaller pools for rare
/// paths, larger buffers for large frames), [`BufferPool::new`] otherwise.
///
/// # Examples
/// ```
/// use thrifty::pool::BufferPool;
///
/// let pool = BufferPool::builder().capacity(8).buffer_capacity(512).build();
/// assert_eq!(pool.capacity(), 8);
/// assert!(pool.get().capacity() >= 512);
/// ```
///
/// # Allocation and cost
/// The builder allocates nothing; `build` allocates the pool's shared store once, not the
/// buffers (per-thread caches as for a [`Pool`](super::Pool)'s: see its Allocation section).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build`"]
pub struct BufferBuilder {
    capacity: usize,
    buffer_capacity: usize,
    max_buffer_capacity: usize,
    byte_budget: usize,
    zero_on_return: bool,
}

impl BufferBuilder {
    /// The most buffers retained. Values above 2^24 − 1 (16 777 215 buffers) count as that.
    pub fn capacity(mut self, buffers: usize) -> Self {
        self.capacity = buffers;
        self
    }

    /// The capacity a new buffer is created with, and the least a returned buffer needs to be
    /// retained: one that comes back shorter (emptied by `std::mem::take(&mut *buf)`, or
    /// shrunk by `shrink_to_fit`) is dropped, so `get` never hands out less than this.
    ///
    /// At most [`max_buffer_capacity`](BufferBuilder::max_buffer_capacity) and
    /// [`byte_budget`](BufferBuilder::byte_budget), or no buffer could be retained; see
    /// [`try_build`](BufferBuilder::try_build).
    pub fn buffer_capacity(mut self, bytes: usize) -> Self {
        self.buffer_capacity = bytes;
        self
    }

    /// Buffers whose capacity is larger than this are dropped when returned. At least
    /// [`buffer_capacity`](BufferBuilder::buffer_capacity).
    pub fn max_buffer_capacity(mut self, bytes: usize) -> Self {
        self.max_buffer_capacity = bytes;
        self
    }

    /// The most bytes (sum of buffer capacities) retained; a buffer that would exceed it is
    /// dropped when returned (one grown past the whole budget at once, with no reclaim). At least
    /// [`buffer_capacity`](BufferBuilder::buffer_capacity).
    /// Values above 2^40 − 1 (1 TiB) count as that.
    pub fn byte_budget(mut self, bytes: usize) -> Self {
        self.byte_budget = bytes;
        self
    }

    /// Overwrites every returned buffer's whole capacity with zeros (default off), whether it
    /// is retained, dropped or handed back by [`try_put`](super::Pool::try_put) (emptied, as a
    /// retained one is), so a buffer's bytes never outlive its user in memory the pool
    /// controls. Best effort against the optimiser, like a `black_box`; for a guarantee, use a
    /// crate such as `zeroize` in [`Builder::reset`](super::Builder::reset) with
    /// `reset_on_return(true)`.
    pub fn zero_on_return(mut self, on: bool) -> Self {
        self.zero_on_return = on;
        self
    }

    /// Builds the pool. Allocates the shared store, not the buffers.
    ///
    /// # Panics
    /// If the settings cannot work together, with the message of the [`BuildError`] that
    /// [`try_build`](BufferBuilder::try_build) returns.
    #[track_caller]
    pub fn build(self) -> BufferPool {
        // A `match`, not `unwrap_or_else`: a closure would hide the caller's location.
        match self.try_build() {
            Ok(pool) => pool,
            Err(e) => crate::fail::fail(e),
        }
    }

    /// Builds the pool as [`build`](BufferBuilder::build) does, or says which settings cannot
    /// work. A capacity of 0 is fine: the pool then never retains a buffer.
    ///
    /// # Errors
    /// Checked in this order:
    /// - [`BuildError::BufferCapacityOverflow`]: `buffer_capacity` is over `isize::MAX`, so no
    ///   buffer could be allocated;
    /// - [`BuildError::BufferCapacityOverMax`]: `buffer_capacity` is over
    ///   `max_buffer_capacity`, so every buffer would be dropped when returned;
    /// - [`BuildError::ByteBudgetUnderBufferCapacity`]: `byte_budget` is under
    ///   `buffer_capacity`, so no buffer could ever be retained (the budget as the pool counts
    ///   it: at most 1 TiB, `2^40 - 1` bytes; the error carries that figure).
    ///
    /// # Examples
    /// ```
    /// use thrifty::pool::{BufferPool, BuildError};
    ///
    /// let err = BufferPool::builder().buffer_capacity(1 << 20).try_build();
    /// assert_eq!(
    ///     err.unwrap_err(),
    ///     BuildError::BufferCapacityOverMax {
    ///         buffer_capacity: 1 << 20,
    ///         max_buffer_capacity: 64 * 1024,
    ///     },
    /// );
    /// ```
    pub fn try_build(self) -> Result<BufferPool, BuildError> {
        let (buffer_capacity, max_buffer_capacity, byte_budget) = (
            self.buffer_capacity,
            self.max_buffer_capacity,
            self.byte_budget,
        );
        if buffer_capacity > isize::MAX as usize {
            return Err(BuildError::BufferCapacityOverflow { buffer_capacity });
        }
        if buffer_capacity > max_buffer_capacity {
            return Err(BuildError::BufferCapacityOverMax {
                buffer_capacity,
                max_buffer_capacity,
            });
        }
        // The budget as the pool will count it.
        let counted = counted_bytes(byte_budget);
        if counted < buffer_capacity {
            return Err(BuildError::ByteBudgetUnderBufferCapacity {
                byte_budget: counted,
                buffer_capacity,
            });
        }
        let hooks = Buffers::new(buffer_capacity, max_buffer_capacity, self.zero_on_return);
        Ok(BufferPool(Pool::from_parts(
            hooks,
            self.capacity,
            byte_budget,
        )))
    }
}
