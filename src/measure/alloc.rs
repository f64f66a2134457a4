//! `CountingAlloc`: a global allocator that forwards to another and counts every call, per
//! thread and in total, without allocating itself.
//!
//! Per-thread counts live in `sync::plain`'s `const`-initialised thread-local `Cell`s: no lazy
//! initialisation, no destructor, so reading or bumping them never allocates and works at any
//! point of a thread's life, its teardown included. Totals are relaxed atomics. Two more of the
//! thread's cells hold its pause state (`super::pause`): the allocator checks the **calling
//! thread's** pause depth, so no other thread's pause, or leaked guard, can hide its calls. One
//! more marks the allocation `installed()` makes to find out whether this is the global allocator,
//! and one holds the thread's stripe of the totals.

use super::AllocStats;
use crate::sync::plain::{with_thread_cells, RelaxedU64, RelaxedUsize, THREAD_CELLS};
use crate::sync::CachePadded;
use std::alloc::{GlobalAlloc, Layout, System};

/// A `#[global_allocator]` that counts allocations, deallocations, reallocations and bytes, per
/// thread and process-wide, and forwards every call to an inner allocator (`System` by default).
///
/// Install it in a test, bench or example binary, then read counts with
/// [`count`](super::count), [`thread_stats`](super::thread_stats) or
/// [`total_stats`](super::total_stats), or report them per criterion iteration with
/// `measure::Allocations` (feature `criterion`). The counts are the crate's, not the instance's:
/// a `CountingAlloc` called directly (not installed) adds to them too.
///
/// # When to use
/// To prove or report how many allocations an operation makes: in tests that assert "allocates
/// nothing after warm-up", and in benches beside time, as Go's `-benchmem` does.
///
/// # When not to use
/// In a production binary that does not read the counts: each call pays the counting cost for
/// nothing. For a full heap profile (call sites, lifetimes) use `dhat`.
///
/// # Examples
/// ```
/// use thrifty::measure::{self, CountingAlloc};
///
/// #[global_allocator]
/// static ALLOC: CountingAlloc = CountingAlloc::new();
///
/// let (v, stats) = measure::count(|| Vec::<u64>::with_capacity(10));
/// assert_eq!(stats.allocs, 1);
/// assert_eq!(stats.bytes_allocated, 80);
/// # drop(v);
/// ```
///
/// # Cost
/// Per allocator call: thread-local loads of the probe flag, the pause depth and the thread's
/// stripe, five thread-local adds, and two or three relaxed atomic adds (an allocation's count and
/// bytes) on the thread's stripe of the process totals. The totals are split into 16 stripes, each
/// on cache lines of its own, dealt to threads in turn on their first counted call: any 16 threads
/// dealt one after another add to lines no other of them writes, but a thread shares its stripe
/// with those dealt a multiple of 16 later (threads that come and go keep the dealing turning), and
/// those two contend when they allocate at once. The atomic adds are most of the cost: an 8-byte
/// `Box` made and dropped costs about 3x a paused call, on one thread or on each of two at once
/// (`cargo bench --bench measure -- alloc_free`, 2-core VM). Harnesses time with each timing thread
/// paused ([`pause`](super::pause)), which skips all the adds. It never allocates (on targets with
/// native thread-locals: see the module docs). Under callgrind, the `Box` took 171 instructions
/// counted, 149 paused and 156 with no `CountingAlloc` installed (`System` through std's default
/// path), of which glibc's `malloc` and `free` are most: instructions hide the atomic adds'
/// latency.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc<A = System> {
    inner: A,
}

impl CountingAlloc<System> {
    /// A counting allocator over the system allocator.
    pub const fn new() -> Self {
        Self { inner: System }
    }
}

impl<A> CountingAlloc<A> {
    /// A counting allocator over `inner`, e.g. `mimalloc::MiMalloc`. Every `CountingAlloc`
    /// adds to the same counts (the calling thread's and the process's), so wrapping one in
    /// another counts each call twice.
    pub const fn wrap(inner: A) -> Self {
        Self { inner }
    }
}

/// Process-wide running counts: one stripe of them.
struct Totals {
    allocs: RelaxedU64,
    deallocs: RelaxedU64,
    reallocs: RelaxedU64,
    bytes_allocated: RelaxedU64,
    bytes_deallocated: RelaxedU64,
}

impl Totals {
    const fn new() -> Self {
        Self {
            allocs: RelaxedU64::new(),
            deallocs: RelaxedU64::new(),
            reallocs: RelaxedU64::new(),
            bytes_allocated: RelaxedU64::new(),
            bytes_deallocated: RelaxedU64::new(),
        }
    }
}

/// How many stripes the totals are split into.
const STRIPES: usize = 16;

/// The process-wide counts, striped: each thread adds to the stripe it was dealt on its first
/// counted call (in turn, so any `STRIPES` threads dealt in a row have one each), each stripe on
/// cache lines of its own, and a snapshot sums them: threads that allocate at once do not bounce
/// one line between them on every call (the repository's JOURNAL.md has what that cost).
static TOTALS: [CachePadded<Totals>; STRIPES] =
    [const { CachePadded::new(Totals::new()) }; STRIPES];

/// The next stripe to deal to a thread (taken modulo `STRIPES`).
static NEXT_STRIPE: RelaxedUsize = RelaxedUsize::new();

/// Set (to 1) by a call through a `CountingAlloc` made while its thread's [`PROBE`] cell is set:
/// [`probe`]'s allocation, which goes to the global allocator. A `CountingAlloc` called
/// directly (not installed) never sets it.
static INSTALLED: RelaxedUsize = RelaxedUsize::new();

/// Indices into each thread's `sync::plain` cells. Cells `0..STATS` hold the thread's counts in
/// `AllocStats` field order (allocs, deallocs, reallocs, bytes allocated, bytes deallocated).
const STATS: usize = 5;
/// Live `Paused` guards on this thread (nesting depth); nonzero means this thread's calls are
/// counted nowhere, neither in its own cells nor in the totals.
pub(super) const PAUSE_DEPTH: usize = 5;
/// Pauses this thread has ever taken (wrapping). `count` compares it before and after its
/// closure, which catches a pause taken and released inside the closure.
pub(super) const PAUSES: usize = 6;
/// Nonzero while [`probe`] allocates on this thread: the call that arrives then came through
/// the global allocator.
const PROBE: usize = 7;
/// The thread's stripe of [`TOTALS`] plus one; 0 until its first counted call deals it one.
const STRIPE: usize = 8;
const _: () = assert!(
    STATS <= PAUSE_DEPTH
        && PAUSE_DEPTH < PAUSES
        && PAUSES < PROBE
        && PROBE < STRIPE
        && STRIPE < THREAD_CELLS
);

/// Whether a `CountingAlloc` is the global allocator: once one has served [`probe`]'s
/// allocation, true for good; until then, each call makes and frees one byte to find out.
pub(super) fn probe() -> bool {
    if INSTALLED.get() != 0 {
        return true;
    }
    // `None` only while the thread's storage is torn down (never on Linux): then it cannot
    // tell, and says no.
    if with_thread_cells(|cells| cells[PROBE].set(1)).is_none() {
        return false;
    }
    drop(std::hint::black_box(Box::new(0u8)));
    let _ = with_thread_cells(|cells| cells[PROBE].set(0));
    INSTALLED.get() != 0
}

/// What one allocator call adds.
#[derive(Clone, Copy)]
struct Event {
    allocs: u64,
    deallocs: u64,
    reallocs: u64,
    bytes_in: u64,
    bytes_out: u64,
}

#[inline(always)]
fn record(e: Event) {
    // Relaxed throughout (`RelaxedU64`): these are statistics. Nothing is published through
    // them; a reader that needs another thread's span joins that thread first.
    let deltas = [e.allocs, e.deallocs, e.reallocs, e.bytes_in, e.bytes_out];
    // The calling thread's own pause depth, read and written only by this thread: another
    // thread's pause cannot reach it. `None` (storage already torn down, never on Linux, where
    // the cells have no destructor) counts in the totals only.
    let stripe = with_thread_cells(|cells| {
        if cells[PROBE].get() != 0 {
            INSTALLED.set(1);
        }
        if cells[PAUSE_DEPTH].get() != 0 {
            return None;
        }
        for (cell, d) in cells[..STATS].iter().zip(deltas) {
            cell.set(cell.get().wrapping_add(d));
        }
        Some(match cells[STRIPE].get() {
            0 => {
                let dealt = NEXT_STRIPE.fetch_increment() % STRIPES;
                cells[STRIPE].set(dealt as u64 + 1);
                dealt
            }
            s => s as usize - 1,
        })
    });
    let stripe = match stripe {
        Some(Some(stripe)) => stripe,
        Some(None) => return, // paused
        None => 0,
    };
    let t = &TOTALS[stripe];
    let totals = [
        &t.allocs,
        &t.deallocs,
        &t.reallocs,
        &t.bytes_allocated,
        &t.bytes_deallocated,
    ];
    for (total, d) in totals.into_iter().zip(deltas) {
        if d != 0 {
            total.add(d);
        }
    }
}

const NONE: Event = Event {
    allocs: 0,
    deallocs: 0,
    reallocs: 0,
    bytes_in: 0,
    bytes_out: 0,
};

/// The calling thread's counts since it started (zero if no `CountingAlloc` is installed).
pub(super) fn thread_snapshot() -> AllocStats {
    with_thread_cells(|c| AllocStats {
        allocs: c[0].get(),
        deallocs: c[1].get(),
        reallocs: c[2].get(),
        bytes_allocated: c[3].get(),
        bytes_deallocated: c[4].get(),
    })
    .unwrap_or_default()
}

/// The process's counts since it started (zero if no `CountingAlloc` is installed): the sum of
/// the stripes, each read once (so each field only grows from one snapshot to the next taken on
/// the same thread).
pub(super) fn total_snapshot() -> AllocStats {
    TOTALS
        .iter()
        .fold(AllocStats::default(), |sum, t| AllocStats {
            allocs: sum.allocs.wrapping_add(t.allocs.get()),
            deallocs: sum.deallocs.wrapping_add(t.deallocs.get()),
            reallocs: sum.reallocs.wrapping_add(t.reallocs.get()),
            bytes_allocated: sum.bytes_allocated.wrapping_add(t.bytes_allocated.get()),
            bytes_deallocated: sum
                .bytes_deallocated
                .wrapping_add(t.bytes_deallocated.get()),
        })
}

// SAFETY: every method forwards to `inner` with the caller's arguments unchanged and returns its
// result unchanged, so `inner`'s `GlobalAlloc` guarantees carry over; the counting beside it
// neither allocates nor unwinds (thread-local `Cell`s and relaxed atomics only).
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: our caller upholds `GlobalAlloc::alloc`'s contract (non-zero size), which we
        // pass on unchanged.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            record(Event {
                allocs: 1,
                bytes_in: layout.size() as u64,
                ..NONE
            });
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`: the caller's contract is passed on unchanged.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            record(Event {
                allocs: 1,
                bytes_in: layout.size() as u64,
                ..NONE
            });
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` came from this allocator (so from `inner`, which
        // made every block we handed out) with this `layout`.
        unsafe { self.inner.dealloc(ptr, layout) };
        record(Event {
            deallocs: 1,
            bytes_out: layout.size() as u64,
            ..NONE
        });
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `ptr`/`layout` describe a live block from this allocator
        // (hence from `inner`) and that `new_size` is valid for `layout.align()`.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            let (bytes_in, bytes_out) = (new_size as u64, layout.size() as u64);
            record(Event {
                reallocs: 1,
                bytes_in,
                bytes_out,
                ..NONE
            });
        }
        new
    }
}

#[cfg(test)]
mod tests {
    //! The allocator's own calls, made directly rather than as the global allocator, so the
    //! unsafe forwarding runs under Miri and the counts can be checked exactly.
    use super::*;

    /// Calling a `CountingAlloc` directly, as these tests do, is not installing it: `installed`
    /// (and so `count`'s check) must still say no.
    #[test]
    fn a_direct_call_is_not_installation() {
        let a = CountingAlloc::new();
        let layout = Layout::new::<u64>();
        // SAFETY: `layout` has non-zero size; the block is freed with the same layout.
        unsafe { a.dealloc(a.alloc(layout), layout) };
        assert!(!crate::measure::installed());
        assert!(!crate::measure::installed(), "nor on the next call");
    }

    #[test]
    fn each_call_forwards_and_counts() {
        let a = CountingAlloc::new();
        let layout = Layout::from_size_align(24, 8).unwrap();
        let before = thread_snapshot();
        // SAFETY: `layout` has non-zero size; every block is freed below with the layout
        // (and, after `realloc`, the size) it was last given.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            p.write_bytes(0xAB, 24);
            let p = a.realloc(p, layout, 100);
            assert!(!p.is_null());
            assert_eq!(*p.add(23), 0xAB, "realloc keeps the contents");
            a.dealloc(p, Layout::from_size_align(100, 8).unwrap());
            let z = a.alloc_zeroed(layout);
            assert!(!z.is_null());
            assert_eq!(*z.add(10), 0, "alloc_zeroed zeroes");
            a.dealloc(z, layout);
        }
        let span = thread_snapshot() - before;
        // Only meaningful where no CountingAlloc is the global allocator (unit tests): then the
        // direct calls above are the only ones counted on this thread.
        assert_eq!(
            span,
            AllocStats {
                allocs: 2,
                deallocs: 2,
                reallocs: 1,
                bytes_allocated: 24 + 100 + 24,
                bytes_deallocated: 24 + 100 + 24,
            }
        );
        assert_eq!(span.net_bytes(), 0);
    }

    /// Issue #12: the pause is the calling thread's; another thread's calls stay counted.
    #[test]
    fn a_pause_hides_only_its_own_threads_calls() {
        let a = CountingAlloc::new();
        let layout = Layout::new::<u64>();
        // SAFETY: non-zero size; freed with the same layout.
        let one = || unsafe { a.dealloc(a.alloc(layout), layout) };
        let before = thread_snapshot();
        let paused = crate::measure::pause();
        one();
        assert_eq!(thread_snapshot(), before, "paused: not counted");
        let there = std::thread::scope(|s| {
            s.spawn(|| {
                let before = thread_snapshot();
                one();
                thread_snapshot() - before
            })
            .join()
            .unwrap()
        });
        assert_eq!(
            (there.allocs, there.deallocs),
            (1, 1),
            "another thread counts"
        );
        drop(paused);
        one();
        assert_eq!((thread_snapshot() - before).allocs, 1, "resumed");
    }

    #[test]
    fn wraps_any_inner_allocator() {
        let a = CountingAlloc::wrap(System);
        let layout = Layout::new::<u64>();
        let before = thread_snapshot();
        // SAFETY: non-zero size; freed with the same layout.
        unsafe { a.dealloc(a.alloc(layout), layout) };
        assert_eq!((thread_snapshot() - before).allocs, 1);
    }
}
