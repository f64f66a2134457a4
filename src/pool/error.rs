//! [`BuildError`]: pool settings that cannot work together, refused by the builders'
//! `try_build`.

use std::fmt;

/// Settings a pool builder refuses, from
/// [`BufferBuilder::try_build`](super::BufferBuilder::try_build) and
/// [`Builder::try_build`](super::Builder::try_build).
///
/// Each variant names the settings that contradict each other, with their values; its
/// `Display` says why the pool could not work. `build` panics with that message instead.
///
/// Match on it where settings come from outside the program (a config file); where they are
/// constants, `build` and its panic are simpler.
///
/// # Examples
/// ```
/// use thrifty::pool::{BufferPool, BuildError};
///
/// let err = BufferPool::builder().byte_budget(1024).buffer_capacity(4096).try_build();
/// assert_eq!(
///     err.unwrap_err(),
///     BuildError::ByteBudgetUnderBufferCapacity { byte_budget: 1024, buffer_capacity: 4096 },
/// );
/// ```
///
/// # Allocation and cost
/// None: a plain value of a few words, made only when a build is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuildError {
    /// A buffer pool's `buffer_capacity` is over `isize::MAX`: no `Vec` that large can be
    /// allocated.
    BufferCapacityOverflow {
        /// The capacity new buffers were to get.
        buffer_capacity: usize,
    },
    /// A buffer pool's `buffer_capacity` is over its `max_buffer_capacity`: every buffer would
    /// be dropped when returned.
    BufferCapacityOverMax {
        /// The capacity new buffers were to get.
        buffer_capacity: usize,
        /// The largest capacity a returned buffer may have.
        max_buffer_capacity: usize,
    },
    /// A buffer pool's `byte_budget` is under its `buffer_capacity`: no buffer could ever be
    /// retained.
    ByteBudgetUnderBufferCapacity {
        /// The most bytes the pool was to retain.
        byte_budget: usize,
        /// The capacity new buffers were to get.
        buffer_capacity: usize,
    },
    /// A closure-built pool has a `byte_budget` but no `weigh`: every object weighs 0, so the
    /// budget could never apply.
    ByteBudgetWithoutWeigh {
        /// The most bytes the pool was to retain.
        byte_budget: usize,
    },
    /// A closure-built pool has a `max_object_bytes` but no `weigh`: every object weighs 0, so
    /// the limit could never apply.
    MaxObjectBytesWithoutWeigh {
        /// The heaviest object the pool was to retain.
        max_object_bytes: usize,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferCapacityOverflow { buffer_capacity } => write!(
                f,
                "buffer_capacity ({buffer_capacity}) is over isize::MAX ({}): no buffer that \
                 large can be allocated",
                isize::MAX
            ),
            Self::BufferCapacityOverMax {
                buffer_capacity,
                max_buffer_capacity,
            } => write!(
                f,
                "buffer_capacity ({buffer_capacity}) is over max_buffer_capacity \
                 ({max_buffer_capacity}): every buffer would be dropped when returned"
            ),
            Self::ByteBudgetUnderBufferCapacity {
                byte_budget,
                buffer_capacity,
            } => write!(
                f,
                "byte_budget ({byte_budget}) is under buffer_capacity ({buffer_capacity}): no \
                 buffer could ever be retained"
            ),
            Self::ByteBudgetWithoutWeigh { byte_budget } => write!(
                f,
                "byte_budget ({byte_budget}) is set without weigh: every object weighs 0, so it \
                 could never apply"
            ),
            Self::MaxObjectBytesWithoutWeigh { max_object_bytes } => write!(
                f,
                "max_object_bytes ({max_object_bytes}) is set without weigh: every object weighs \
                 0, so it could never apply"
            ),
        }
    }
}

impl std::error::Error for BuildError {}
