//! [`ArenaFull`], the error of a refused allocation, [`Refused`], which hands a refused value
//! back with it, and [`BuildError`], the settings an
//! [`ArenaPool`](super::ArenaPool) builder refuses.

use std::fmt;

/// An allocation the arena refused: it would have taken the arena's chunks past its
/// `limit_bytes` (or, rarely, the system allocator refused the chunk).
///
/// Its message names the cause as far as the two fields settle it: a request over the limit is
/// the limit's doing; under a limit of `usize::MAX`, which no chunk can pass, the system
/// allocator refused; otherwise the message names both (the fields do not say how much the
/// arena held).
///
/// Returned by `try_alloc_str` and `try_alloc_slice_copy` of [`ArenaGuard`](super::ArenaGuard),
/// and inside [`Refused`](super::Refused) by `try_alloc`; the
/// panicking forms (`alloc`, `alloc_str`, `alloc_slice_copy`) panic with its message followed
/// by "(use the try_ form to handle it)".
///
/// Match on it where a request's size comes from outside (a body length, a count in a header)
/// and should be refused, not crash the thread; use the panicking forms where the size is
/// bounded by the program.
///
/// # Examples
/// ```
/// use thrifty::arena::{ArenaFull, ArenaPool};
///
/// let arenas = ArenaPool::builder().chunk_bytes(1024).limit_bytes(4096).build();
/// let arena = arenas.get();
/// let err = arena.try_alloc_slice_copy(&[0u8; 10_000]).unwrap_err();
/// assert_eq!(err, ArenaFull { requested: 10_000, limit: 4096 });
/// assert!(arena.try_alloc(7u64).is_ok(), "smaller requests still fit");
/// ```
///
/// # Allocation and cost
/// A plain `Copy` value of two words; making it allocates nothing. A refusal for the limit
/// never reaches the allocator; a refusal by the allocator (the rarer case above) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArenaFull {
    /// Bytes the refused allocation asked for (the value's, string's or slice's size).
    pub requested: usize,
    /// The arena's `limit_bytes`.
    pub limit: usize,
}

impl fmt::Display for ArenaFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { requested, limit } = *self;
        write!(f, "arena full: an allocation of {requested} bytes ")?;
        if requested > limit {
            // Every chunk that holds it is over the limit: bumpalo asked the system for nothing.
            write!(f, "does not fit under the arena's limit_bytes ({limit})")?;
        } else if limit == usize::MAX {
            // The chunks held plus a new one cannot pass `usize::MAX` (each is below
            // `isize::MAX`, and all live in the address space): the system said no.
            write!(
                f,
                "needs a chunk the system allocator refused (limit_bytes is usize::MAX)"
            )?;
        } else {
            write!(
                f,
                "needs a chunk that does not fit under the arena's limit_bytes ({limit}) beside \
                 the chunks it holds, or that the system allocator refused"
            )?;
        }
        Ok(())
    }
}

impl ArenaFull {
    /// The panic of the panicking forms (`alloc`, ...): the message, and what to use instead.
    /// (Not in `Display`: a refusal a `try_` form returned was already handled that way.)
    #[cold]
    #[inline(never)]
    #[track_caller]
    pub(crate) fn fail(self) -> ! {
        crate::fail::fail(format_args!("{self} (use the try_ form to handle it)"))
    }
}

impl std::error::Error for ArenaFull {}

/// A value [`ArenaGuard::try_alloc`](super::ArenaGuard::try_alloc) could not move into the
/// arena, handed back with the reason: nothing is lost when the arena is full.
///
/// Use it to get the value back after a refusal (to store it on the heap instead, or log it);
/// call `alloc`, which panics, when a refusal would be a bug.
///
/// # Examples
/// ```
/// use thrifty::arena::{ArenaFull, ArenaPool};
///
/// let arenas = ArenaPool::builder().chunk_bytes(1024).limit_bytes(4096).build();
/// let arena = arenas.get();
/// let refused = arena.try_alloc([7u8; 10_000]).unwrap_err();
/// assert_eq!(refused.full, ArenaFull { requested: 10_000, limit: 4096 });
/// let back: [u8; 10_000] = refused.into_inner(); // the value, unharmed
/// assert_eq!(back[9_999], 7);
/// ```
///
/// # Allocation and cost
/// None: it moves the value back to the caller.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Refused<T> {
    /// The value that did not fit.
    pub value: T,
    /// Why: the size asked for and the arena's limit.
    pub full: ArenaFull,
}

impl<T> Refused<T> {
    /// The value that did not fit.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> fmt::Debug for Refused<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value may be large or not `Debug`: the reason is what a log needs.
        f.debug_struct("Refused")
            .field("full", &self.full)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Refused<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.full, f)
    }
}

impl<T> std::error::Error for Refused<T> {}

/// Settings an [`ArenaPool`](super::ArenaPool) builder refuses, from
/// [`Builder::try_build`](super::Builder::try_build); `build` panics with the same message.
///
/// Each variant names the settings that cannot work together, with their values.
///
/// Match on it where settings come from outside the program (a config file); with constant
/// settings `build` and its panic are simpler.
///
/// # Examples
/// ```
/// use thrifty::arena::{ArenaPool, BuildError};
///
/// let err = ArenaPool::builder().limit_bytes(1024).chunk_bytes(4096).try_build();
/// assert_eq!(
///     err.unwrap_err(),
///     BuildError::ChunkOverLimit { chunk_bytes: 4096, limit_bytes: 1024 },
/// );
/// ```
///
/// # Allocation and cost
/// None: a plain value of a few words, made only when a build is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuildError {
    /// `limit_bytes` is below bumpalo's smallest chunk: no allocation could ever succeed.
    LimitBelowOneChunk {
        /// The per-arena limit.
        limit_bytes: usize,
    },
    /// `chunk_bytes` is over `limit_bytes`: the first chunk would break the limit.
    ChunkOverLimit {
        /// The first chunk's capacity.
        chunk_bytes: usize,
        /// The per-arena limit.
        limit_bytes: usize,
    },
    /// `retain_bytes` is under `chunk_bytes`: every arena would be dropped or shrunk on return,
    /// so the pool could never keep one.
    RetainUnderChunk {
        /// The most chunk bytes a returned arena may keep.
        retain_bytes: usize,
        /// The first chunk's capacity.
        chunk_bytes: usize,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::LimitBelowOneChunk { limit_bytes } => write!(
                f,
                "limit_bytes ({limit_bytes}) is below bumpalo's smallest chunk: no allocation \
                 could ever succeed"
            ),
            Self::ChunkOverLimit {
                chunk_bytes,
                limit_bytes,
            } => write!(
                f,
                "chunk_bytes ({chunk_bytes}) is over limit_bytes ({limit_bytes}): the first chunk \
                 would break the limit"
            ),
            Self::RetainUnderChunk {
                retain_bytes,
                chunk_bytes,
            } => write!(
                f,
                "retain_bytes ({retain_bytes}) is under chunk_bytes ({chunk_bytes}): no arena \
                 could be kept on return"
            ),
        }
    }
}

impl std::error::Error for BuildError {}
