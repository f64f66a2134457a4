//! [`Hooks`]: what a pool does with its objects (make, reset, weigh, vet on return), in two
//! forms: [`Closures`], the builder's boxed closures, and [`Buffers`], the byte-buffer preset.
//!
//! The pool is generic over its hooks so that a preset's calls inline: `BufferPool`'s reset is
//! `Vec::clear` and its weight `Vec::capacity`, compiled into `get` and the guard's drop. A
//! closure-built `Pool<Vec<u8>>` calls its reset through a pointer instead (the cost is the
//! `(closures)` row of `cargo bench --bench pool -- 1_thread`).

use std::fmt;
use std::mem::MaybeUninit;

mod sealed {
    /// Keeps [`Hooks`](super::Hooks) implemented inside this crate only, so its methods can
    /// change without breaking anyone.
    pub trait Sealed {}
}

/// What a [`Pool`](super::Pool) does with its objects. Sealed: the two forms are [`Closures`]
/// (any `T`, from [`Pool::builder`](super::Pool::builder) or [`Pool::new`](super::Pool::new))
/// and [`Buffers`] (a [`BufferPool`](super::BufferPool)).
///
/// It appears in type signatures only as the pool's second type parameter, which defaults to
/// [`Closures<T>`]: `Pool<T>` is the closure-built pool. Name it only to write a function that
/// takes either kind of pool; it is sealed, so it cannot be implemented outside this crate.
///
/// # Examples
/// ```
/// use thrifty::pool::{BufferPool, Buffers, Closures, Pool};
///
/// let strings: Pool<String, Closures<String>> = Pool::new(String::new); // `Pool<String>`
/// let buffers = BufferPool::new();
/// let buffers: &Pool<Vec<u8>, Buffers> = &buffers; // what a `BufferPool` derefs to
/// assert!(strings.get().is_empty());
/// assert!(buffers.get().capacity() >= 4096);
/// ```
///
/// Its methods are the pool's own calls into the hooks, hidden from these docs: a user neither
/// implements the trait (it is sealed) nor calls them.
///
/// # Allocation and cost
/// The trait allocates nothing; each implementor's docs give what its hooks cost.
pub trait Hooks<T>: sealed::Sealed + Send + Sync {
    /// Builds a new object, in reset state.
    #[doc(hidden)]
    fn make(&self) -> T;
    /// Brings a used object back to reset state.
    #[doc(hidden)]
    fn reset(&self, obj: &mut T);
    /// Whether objects are reset when returned rather than when handed out.
    #[doc(hidden)]
    fn reset_on_return(&self) -> bool;
    /// Whether [`on_return`](Hooks::on_return) does anything; if not, the pool skips it.
    #[doc(hidden)]
    fn has_return_hooks(&self) -> bool;
    /// Runs on every returned object before it is weighed (reset on return, zeroing) and says
    /// whether to keep it. May panic (user code).
    #[doc(hidden)]
    fn on_return(&self, obj: &mut T) -> bool;
    /// The object's weight against the pool's byte budget (0 when it has none).
    #[doc(hidden)]
    fn weigh(&self, obj: &T) -> usize;
    /// Whether an object of `weight` may be retained at all.
    #[doc(hidden)]
    fn fits(&self, weight: usize) -> bool;
    /// The least weight the guard's inline put may keep without running the return hooks or
    /// asking [`fits`](Hooks::fits): `usize::MAX` when there are return hooks (every return
    /// then takes the slow path), else the least weight `fits` accepts. Enough because the
    /// inline put keeps an object only below its hot slot's room, which was made for an
    /// object that `fits` accepted, so the upper limit holds already.
    #[doc(hidden)]
    fn fast_floor(&self) -> usize;
}

/// A boxed `keep_if` predicate.
pub(crate) type KeepIf<T> = Box<dyn Fn(&T) -> bool + Send + Sync>;

/// A boxed `weigh` closure.
pub(crate) type Weigh<T> = Box<dyn Fn(&T) -> usize + Send + Sync>;

/// The hooks of a pool built from closures: a factory, a reset (the [`Reset`](crate::Reset)
/// impl unless [`Builder::reset`](super::Builder::reset) gave one), an optional `keep_if` and
/// an optional `weigh`.
///
/// Without [`Builder::weigh`](super::Builder::weigh) objects weigh 0: such a pool is bounded
/// by object count only. It is the default, so it rarely needs naming; for `Vec<u8>` buffers
/// [`Buffers`] (a [`BufferPool`](super::BufferPool)) is cheaper.
///
/// # Examples
/// ```
/// use thrifty::pool::{Closures, Pool};
///
/// let pool: Pool<Vec<u8>, Closures<Vec<u8>>> = Pool::builder()
///     .keep_if(|v: &Vec<u8>| v.capacity() <= 1024)
///     .build(Vec::new);
/// pool.get().reserve(4096);
/// assert_eq!(pool.stats().discarded, 1, "`keep_if` refused the grown buffer");
/// ```
///
/// # Allocation and cost
/// The builder boxes each closure once; after that, each hook is a call through a pointer.
pub struct Closures<T> {
    pub(super) factory: Box<dyn Fn() -> T + Send + Sync>,
    pub(super) reset: Box<dyn Fn(&mut T) + Send + Sync>,
    pub(super) keep_if: Option<KeepIf<T>>,
    pub(super) reset_on_return: bool,
    pub(super) weigh: Option<Weigh<T>>,
    /// Objects heavier than this are dropped when returned (`usize::MAX` unless set).
    pub(super) max_object_bytes: usize,
    /// [`Hooks::fast_floor`]: `usize::MAX` with `reset_on_return` or `keep_if`, else 0. Kept
    /// rather than computed, so the inline put reads one word.
    pub(super) fast_floor: usize,
}

impl<T> sealed::Sealed for Closures<T> {}

impl<T> Hooks<T> for Closures<T> {
    #[inline]
    fn make(&self) -> T {
        (self.factory)()
    }

    #[inline(always)]
    fn reset(&self, obj: &mut T) {
        (self.reset)(obj);
    }

    #[inline(always)]
    fn reset_on_return(&self) -> bool {
        self.reset_on_return
    }

    #[inline(always)]
    fn has_return_hooks(&self) -> bool {
        self.reset_on_return || self.keep_if.is_some()
    }

    fn on_return(&self, obj: &mut T) -> bool {
        if self.reset_on_return {
            (self.reset)(obj);
        }
        match &self.keep_if {
            Some(keep_if) => keep_if(obj),
            None => true,
        }
    }

    #[inline(always)]
    fn weigh(&self, obj: &T) -> usize {
        match &self.weigh {
            Some(weigh) => weigh(obj),
            None => 0,
        }
    }

    #[inline(always)]
    fn fits(&self, weight: usize) -> bool {
        weight <= self.max_object_bytes
    }

    #[inline(always)]
    fn fast_floor(&self) -> usize {
        self.fast_floor
    }
}

impl<T> fmt::Debug for Closures<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closures")
            .field("keep_if", &self.keep_if.is_some())
            .field("reset_on_return", &self.reset_on_return)
            .field("weigh", &self.weigh.is_some())
            .field("max_object_bytes", &self.max_object_bytes)
            .finish_non_exhaustive()
    }
}

/// The hooks of a [`BufferPool`](super::BufferPool): new buffers get a set capacity, reset is
/// `Vec::clear`, a buffer weighs its capacity, and one that grew past the limit or came back
/// with less than the set capacity is dropped on return. It appears only in the type a
/// [`BufferPool`](super::BufferPool) dereferences to.
///
/// # Examples
/// ```
/// let pool = thrifty::pool::BufferPool::builder()
///     .buffer_capacity(1024)
///     .max_buffer_capacity(4096)
///     .build();
/// let mut buf = pool.get();
/// assert!(buf.capacity() >= 1024);
/// buf.extend_from_slice(&[0; 8192]); // grows past the limit
/// drop(buf);
/// assert_eq!(pool.stats().discarded, 1, "weighed by capacity: too heavy to keep");
/// ```
///
/// # Allocation and cost
/// Allocates a buffer only in `make` (a get that finds none); the other hooks inline into
/// `get` and the guard's drop, with no call through a pointer.
#[derive(Clone, Copy)]
pub struct Buffers {
    /// The capacity of a new buffer, and the least a returned buffer needs to be kept.
    pub(super) initial: usize,
    /// The most capacity a returned buffer may have to be kept.
    pub(super) max: usize,
    pub(super) zero: bool,
    /// [`Hooks::fast_floor`]: `usize::MAX` with `zero`, else `initial`.
    pub(super) fast_floor: usize,
}

/// The settings by their [`BufferBuilder`](super::BufferBuilder) names.
impl std::fmt::Debug for Buffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffers")
            .field("buffer_capacity", &self.initial)
            .field("max_buffer_capacity", &self.max)
            .field("zero_on_return", &self.zero)
            .finish()
    }
}

impl Buffers {
    pub(super) fn new(initial: usize, max: usize, zero: bool) -> Self {
        let fast_floor = if zero { usize::MAX } else { initial };
        Self {
            initial,
            max,
            zero,
            fast_floor,
        }
    }
}

impl sealed::Sealed for Buffers {}

impl Hooks<Vec<u8>> for Buffers {
    #[inline]
    fn make(&self) -> Vec<u8> {
        Vec::with_capacity(self.initial)
    }

    #[inline(always)]
    fn reset(&self, buf: &mut Vec<u8>) {
        buf.clear();
    }

    #[inline(always)]
    fn reset_on_return(&self) -> bool {
        false
    }

    #[inline(always)]
    fn has_return_hooks(&self) -> bool {
        self.zero
    }

    fn on_return(&self, buf: &mut Vec<u8>) -> bool {
        if self.zero {
            zero(buf);
        }
        true
    }

    #[inline(always)]
    fn weigh(&self, buf: &Vec<u8>) -> usize {
        buf.capacity()
    }

    /// A short buffer (emptied by `mem::take`, shrunk) would hand out less than
    /// `buffer_capacity` on its next get, so it is dropped like a grown one.
    #[inline(always)]
    fn fits(&self, weight: usize) -> bool {
        self.initial <= weight && weight <= self.max
    }

    #[inline(always)]
    fn fast_floor(&self) -> usize {
        self.fast_floor
    }
}

/// Zeroes `buf`'s whole capacity and leaves it empty.
fn zero(buf: &mut Vec<u8>) {
    buf.clear();
    buf.spare_capacity_mut().fill(MaybeUninit::new(0));
    // Keep the stores: the buffer may be dropped next, and stores before a free are dead to the
    // optimiser.
    std::hint::black_box(buf.as_mut_ptr());
}
