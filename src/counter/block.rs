//! A block of cells: one allocation of cache-padded lines, and the chain that growth makes.
//!
//! # Layout
//!
//! ```text
//! block of len cells (len a power of two): line k = cell k, in two halves of 64 bytes
//!   line k:  owned  shared  (pressure)  |  owner  (prev  max)
//!            written on adds               written once per claim or block
//! ```
//!
//! Every cell uses `owned`, `shared` and `owner`; the words in parentheses are cell 0's only,
//! block-wide. `prev` is the block this one outgrew (tagged like the state word, or null), so a
//! counter's blocks form a chain from the newest; `pressure` is the growth score (see `adapt`),
//! or [`GROWING`] once a thread was elected to double the block; `max` the counter's cap on
//! cells. `pressure` is written only by the cold growth path, so the owner of cell 0 rarely
//! loses its line to it.
//!
//! `owner` sits in the second half because threads read other cells' owners: a thread whose
//! home cell is not its own looks at the next cells' on every add, and a sharer tries to claim
//! them. Beside `owned`, each such read would take the line from the thread adding there and
//! slow both threads several times over (the repository's JOURNAL.md has the figures); in its own
//! half it is read-mostly and stays in every reader's cache.
//!
//! # Tagged pointers
//!
//! A counter's state word, and `prev`, hold a block's address plus `log2(len) + 1` in its low
//! [`TAG_BITS`] bits (lines are aligned to at least 32 bytes): one load gives both the block and
//! its length. A state word whose tag is 0 is not a pointer (the compact form's bits).

use crate::sync::{AtomicPtr, AtomicU64, CachePadded, Ordering};
use std::ptr;

/// Low bits of a tagged block pointer that hold `log2(len) + 1`; 0 means "not a block".
pub(super) const TAG_BITS: u32 = 5;
const TAG_MASK: usize = (1 << TAG_BITS) - 1;

/// `pressure` of a block whose doubling one thread has been elected to make.
pub(super) const GROWING: u64 = u64::MAX;

/// One cell, on its own cache line (128 bytes on x86-64, where `CachePadded` pads for the
/// adjacent-line prefetcher).
pub(super) type Line = CachePadded<Words>;

/// The words of a line: the ones adds write, then, 64 bytes on, the ones written once (see the
/// module doc's layout).
#[repr(C)]
pub(super) struct Words {
    /// Written by the owner only, by a relaxed load and store.
    pub(super) owned: AtomicU64,
    /// `fetch_add` by threads that own no cell near their home.
    pub(super) shared: AtomicU64,
    /// Cell 0 only: the growth score (`adapt::Score` packed) or [`GROWING`].
    pub(super) pressure: AtomicU64,
    /// Puts `owner` in the line's second 64 bytes.
    _gap: [u64; 5],
    /// The owner's claim token, or 0 while the cell is free.
    pub(super) owner: AtomicU64,
    /// Cell 0 only: the block this one outgrew (tagged), or null. Never changes once published.
    prev: AtomicPtr<Line>,
    /// Cell 0 only: the most cells the counter may grow to. Never changes once published.
    max: AtomicU64,
}

const _: () = assert!(std::mem::align_of::<Line>() > TAG_MASK);

// The halves of the layout (loom's atomics are larger; only the real ones are laid out).
#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::offset_of!(Words, pressure) + 8 <= 64);
    assert!(std::mem::offset_of!(Words, owner) == 64);
};

impl Words {
    fn new() -> Self {
        Words {
            owned: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            pressure: AtomicU64::new(0),
            _gap: [0; 5],
            owner: AtomicU64::new(0),
            prev: AtomicPtr::new(ptr::null_mut()),
            max: AtomicU64::new(0),
        }
    }
}

/// A view of one published block.
#[derive(Clone, Copy)]
pub(super) struct Block<'a> {
    /// The block's cells; the length is a power of two.
    pub(super) lines: &'a [Line],
}

impl<'a> Block<'a> {
    /// Allocates a block of `len` cells (a power of two) that outgrew `prev` (tagged, or null)
    /// and may grow to `max`; returns it tagged, ready to publish with a Release store.
    pub(super) fn alloc(len: usize, prev: *mut Line, max: usize) -> *mut Line {
        debug_assert!(len.is_power_of_two() && len <= max);
        let lines: Box<[Line]> = (0..len).map(|_| CachePadded::new(Words::new())).collect();
        // Relaxed: the block is published by the caller's Release store of the state word.
        lines[0].prev.store(prev, Ordering::Relaxed);
        lines[0].max.store(max as u64, Ordering::Relaxed);
        let first = Box::into_raw(lines).cast::<Line>();
        tag(first, len)
    }

    /// The block behind `p`, a tagged pointer read (with Acquire, or through `&mut`) from a
    /// state word or a `prev`; `None` if `p` is not a block.
    ///
    /// # Safety
    /// If `p` is tagged, it was made by [`alloc`](Block::alloc) and its block is not freed for
    /// `'a`; the caller's load of `p` synchronised with the store that published it.
    #[inline(always)]
    pub(super) unsafe fn view(p: *mut Line) -> Option<Block<'a>> {
        let (first, len) = untag(p)?;
        // SAFETY: per this function's contract, `first` is the start of a live allocation of
        // `len` initialised lines (the tag encodes the length `alloc` gave it), and the caller's
        // synchronising load made their initialisation visible.
        let lines = unsafe { std::slice::from_raw_parts(first, len) };
        Some(Block { lines })
    }

    /// Number of cells, a power of two.
    #[inline(always)]
    pub(super) fn len(self) -> usize {
        self.lines.len()
    }

    /// Cell `k`'s words.
    #[inline(always)]
    pub(super) fn cell(self, k: usize) -> &'a Words {
        &self.lines[k]
    }

    /// Where cell `k` lies from this block's tagged pointer, in bytes (wrapping): the `place`
    /// that [`Block::cell_at`] takes.
    pub(super) fn place(self, k: usize) -> usize {
        (self.cell(k) as *const Words as usize).wrapping_sub(self.tagged() as usize)
    }

    /// The cell at `place` in the block behind the tagged pointer `p`: one addition, no look at
    /// the length.
    ///
    /// # Safety
    /// `p` is as [`view`](Block::view) requires, and `place` came from [`place`](Block::place) on
    /// a block with the same tag (so the same length: the cell is inside `p`'s block).
    #[inline(always)]
    pub(super) unsafe fn cell_at(p: *mut Line, place: usize) -> &'a Words {
        // SAFETY: `p` minus its tag is the first line of a live block (this function's contract,
        // as for `view`), and `place` is cell `k`'s distance from the tagged pointer of a block of
        // the same length, `k` below it: the result is cell `k` of `p`'s block, initialised and
        // aligned. The pointer keeps `p`'s provenance.
        unsafe { &*p.cast::<u8>().wrapping_add(place).cast::<Line>() }
    }

    /// The most cells the counter may grow to.
    pub(super) fn max(self) -> usize {
        // Relaxed: written before the block was published; see `alloc`.
        self.lines[0].max.load(Ordering::Relaxed) as usize
    }

    /// This block, tagged as the state word holds it.
    pub(super) fn tagged(self) -> *mut Line {
        tag(self.lines.as_ptr().cast_mut(), self.len())
    }

    /// The block this one outgrew, if any.
    pub(super) fn prev(self) -> Option<Block<'a>> {
        // Relaxed: `prev` was written before this block was published, and the caller's
        // Acquire load of this block ordered that write before us.
        let p = self.lines[0].prev.load(Ordering::Relaxed);
        // SAFETY: a non-null `prev` was made by `alloc` and published before this block was
        // (same Release store); blocks are freed only in `free_chain`, with `&mut` to the
        // counter, which outlives `'a`.
        unsafe { Block::view(p) }
    }

    /// This block and every block it outgrew, newest first.
    pub(super) fn chain(self) -> impl Iterator<Item = Block<'a>> {
        std::iter::successors(Some(self), |b| b.prev())
    }

    /// The wrapping sum of the cells of this block and of every block it outgrew.
    pub(super) fn chain_sum(self) -> u64 {
        self.chain().fold(0u64, |acc, b| {
            b.lines.iter().fold(acc, |acc, line| {
                // Relaxed: each word only grows (mod 2^64) and coherence gives at least every
                // value written before our load (every value that happens-before it); nothing
                // else is read through them.
                acc.wrapping_add(line.owned.load(Ordering::Relaxed))
                    .wrapping_add(line.shared.load(Ordering::Relaxed))
            })
        })
    }

    /// Heap bytes of this block and every block it outgrew.
    pub(super) fn chain_bytes(self) -> usize {
        self.chain().map(|b| std::mem::size_of_val(b.lines)).sum()
    }
}

/// The first line and the length of the block behind the tagged pointer `p`, or `None` if `p`
/// is not a block. The pointer keeps `p`'s provenance (that of `alloc`'s `Box::into_raw`).
#[inline(always)]
fn untag(p: *mut Line) -> Option<(*mut Line, usize)> {
    let t = p as usize & TAG_MASK;
    if t == 0 {
        return None;
    }
    Some((p.cast::<u8>().wrapping_sub(t).cast::<Line>(), 1 << (t - 1)))
}

/// `first` (a block of `len` lines) with its length in the low bits.
fn tag(first: *mut Line, len: usize) -> *mut Line {
    let t = len.trailing_zeros() as usize + 1;
    first.cast::<u8>().wrapping_add(t).cast()
}

/// Frees the chain of blocks starting at the tagged pointer `p` (or nothing if `p` is not a
/// block).
///
/// # Safety
/// The caller has exclusive access to the counter that published `p` (`&mut`, or `Drop`), so
/// no other reference to the blocks exists and none will be made; `p` is not used afterwards.
pub(super) unsafe fn free_chain(mut p: *mut Line) {
    while let Some((first, len)) = untag(p) {
        // SAFETY: exclusive access (the contract) means every block of the chain is live, was
        // made by `alloc` (so `first` points to its initialised first line), and its
        // publication is ordered before us. The reference ends with this statement.
        let line0 = unsafe { &*first };
        // Relaxed: exclusive access; see above.
        p = line0.prev.load(Ordering::Relaxed);
        // Built from `first`, which carries `Box::into_raw`'s provenance (not from a shared
        // reference, which could not give the box back its unique ownership).
        let lines = ptr::slice_from_raw_parts_mut(first, len);
        // SAFETY: `lines` is exactly the boxed slice `alloc` leaked (its start and length), it
        // is freed once (the chain has no cycles: `prev` points only to older blocks), and no
        // reference to it is used after this.
        drop(unsafe { Box::from_raw(lines) });
    }
}
