//! `AllocStats`: what the counting allocator saw, as plain numbers.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub, SubAssign};

/// Allocator calls and bytes seen by [`CountingAlloc`](super::CountingAlloc) over some span.
///
/// A `realloc` counts once in [`reallocs`](Self::reallocs), with its new size added to
/// [`bytes_allocated`](Self::bytes_allocated) and its old size to
/// [`bytes_deallocated`](Self::bytes_deallocated), so `bytes_allocated` is the total asked of
/// the allocator (what Go's `B/op` reports) and the difference of the two byte counts is what
/// the span's calls added to the heap: the change in live heap bytes for a process-wide span
/// with no thread paused, and, for a thread's span ([`count`](super::count)), what the thread
/// allocated less what it freed, whoever allocated that (dropping another thread's `Vec` of
/// 1 000 bytes makes it -1 000).
///
/// Spans are subtracted (`after - before`); subtraction wraps, so a span is exact even if a counter
/// wrapped in between. For the same reason a difference of unrelated snapshots is not caught: both
/// must come from the same function, and for [`thread_stats`](super::thread_stats) from the same
/// thread (a `before` taken on another thread reads near `u64::MAX` calls). Use it as what
/// [`count`](super::count), [`thread_stats`](super::thread_stats) and
/// [`total_stats`](super::total_stats) return: read its fields, subtract snapshots, divide by an
/// operation count.
///
/// # Examples
/// ```
/// use thrifty::measure::AllocStats;
/// let span = AllocStats { allocs: 3, reallocs: 1, ..AllocStats::default() };
/// assert_eq!(span.calls(), 4);
///
/// // Spans of several threads add up (`+`, `+=`, or `Sum`).
/// let threads = [span, span];
/// assert_eq!(threads.iter().copied().sum::<AllocStats>().calls(), 8);
/// ```
///
/// # Allocation and cost
/// A plain `Copy` value of five `u64`s; its arithmetic allocates nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AllocStats {
    /// Calls to `alloc` and `alloc_zeroed` that succeeded.
    pub allocs: u64,
    /// Calls to `dealloc`.
    pub deallocs: u64,
    /// Calls to `realloc` that succeeded.
    pub reallocs: u64,
    /// Bytes asked for by `alloc`, `alloc_zeroed` and (new size) `realloc`.
    pub bytes_allocated: u64,
    /// Bytes given back by `dealloc` and (old size) `realloc`.
    pub bytes_deallocated: u64,
}

impl AllocStats {
    /// Calls that asked the allocator for memory: `allocs + reallocs`.
    ///
    /// This is the "allocs/op" that benches and the shootout report: each such call may take a
    /// lock, touch fresh memory or copy.
    #[inline]
    pub const fn calls(&self) -> u64 {
        self.allocs.wrapping_add(self.reallocs)
    }

    /// Bytes allocated less bytes freed over the span (negative if more was freed): the change
    /// in live heap bytes for a process-wide span with no thread paused (see the type's docs).
    #[inline]
    pub const fn net_bytes(&self) -> i64 {
        self.bytes_allocated.wrapping_sub(self.bytes_deallocated) as i64
    }

    /// True if the span saw no allocator call at all.
    #[inline]
    pub const fn is_zero(&self) -> bool {
        self.allocs == 0 && self.deallocs == 0 && self.reallocs == 0
    }

    /// [`calls`](Self::calls) per operation, for a span that ran `ops` operations. `ops` of 0
    /// counts as 1 (the span's whole count), so a span that ran nothing never divides by zero.
    pub fn calls_per(&self, ops: u64) -> f64 {
        self.calls() as f64 / ops.max(1) as f64
    }

    /// [`bytes_allocated`](Self::bytes_allocated) per operation, for a span of `ops` operations
    /// (`ops` of 0 counts as 1, as in [`calls_per`](Self::calls_per)).
    pub fn bytes_per(&self, ops: u64) -> f64 {
        self.bytes_allocated as f64 / ops.max(1) as f64
    }

    fn zip(self, other: Self, op: fn(u64, u64) -> u64) -> Self {
        Self {
            allocs: op(self.allocs, other.allocs),
            deallocs: op(self.deallocs, other.deallocs),
            reallocs: op(self.reallocs, other.reallocs),
            bytes_allocated: op(self.bytes_allocated, other.bytes_allocated),
            bytes_deallocated: op(self.bytes_deallocated, other.bytes_deallocated),
        }
    }
}

impl Sub for AllocStats {
    type Output = Self;
    /// The span between two snapshots: `after - before`, wrapping.
    fn sub(self, before: Self) -> Self {
        self.zip(before, u64::wrapping_sub)
    }
}

impl Add for AllocStats {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        self.zip(other, u64::wrapping_add)
    }
}

impl AddAssign for AllocStats {
    fn add_assign(&mut self, other: Self) {
        *self = *self + other;
    }
}

impl SubAssign for AllocStats {
    fn sub_assign(&mut self, other: Self) {
        *self = *self - other;
    }
}

/// The spans together: `spans.iter().copied().sum()` adds up several threads' counts.
impl Sum for AllocStats {
    fn sum<I: Iterator<Item = Self>>(spans: I) -> Self {
        spans.fold(Self::default(), Add::add)
    }
}

impl fmt::Display for AllocStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} allocs, {} reallocs, {} deallocs, {} B allocated, {} B freed",
            self.allocs, self.reallocs, self.deallocs, self.bytes_allocated, self.bytes_deallocated
        )
    }
}

#[cfg(test)]
mod tests {
    use super::AllocStats;

    #[test]
    fn spans_add_and_sum() {
        let one = AllocStats {
            allocs: 2,
            deallocs: 1,
            reallocs: 1,
            bytes_allocated: 64,
            bytes_deallocated: 16,
        };
        let mut acc = AllocStats::default();
        acc += one;
        acc += one;
        assert_eq!(acc, one + one);
        assert_eq!([one, one].into_iter().sum::<AllocStats>(), acc);
        acc -= one;
        assert_eq!(acc, one);
    }

    #[test]
    fn span_subtraction_wraps() {
        let before = AllocStats {
            allocs: u64::MAX,
            ..AllocStats::default()
        };
        let after = AllocStats {
            allocs: 1,
            ..AllocStats::default()
        };
        assert_eq!((after - before).allocs, 2);
    }

    #[test]
    fn net_bytes_is_signed() {
        let s = AllocStats {
            bytes_allocated: 10,
            bytes_deallocated: 30,
            ..AllocStats::default()
        };
        assert_eq!(s.net_bytes(), -20);
        assert_eq!((s + s).bytes_deallocated, 60);
    }
}
