//! `Cells`: the engine under [`Counter`](super::Counter) and [`Gauge`](super::Gauge), a `u64`
//! total kept in wrapping arithmetic, compact until contended, then striped over cache-padded
//! cells that their owning thread bumps without a locked instruction.
//!
//! # States
//!
//! | `stripes` holds | form | where an `add` goes |
//! | --- | --- | --- |
//! | null | compact (24 bytes) | `base`, by compare-exchange; a failed one expands |
//! | [`expanding()`] | one thread is allocating | `base`, by `fetch_add` |
//! | a pointer to the lines | striped | a cell the caller owns (plain), else a shared word (`fetch_add`) |
//!
//! `stripes` moves null → expanding → striped, once, and never back; the lines are freed in
//! `Drop`.
//!
//! # Layout of the striped form (one allocation of cache lines)
//!
//! ```text
//! line k             cell k: word 0 `owned`, word 1 `shared`, word 2 `owner`
//! ```
//!
//! The owner token sits in its cell's line: the owner's add reads the token and bumps `owned`
//! in one line that, while it lives, only it writes. (An earlier layout packed 16 tokens per
//! line in front of the cells, which cost the hot path a second line, a second bounds check
//! and the arithmetic to find it; the CHANGELOG has the measurements.)
//!
//! # Who writes what
//!
//! - `base`: anyone, always by an atomic read-modify-write (`fetch_add`, compare-exchange).
//!   It also carries the offset that [`Cells::replace`] (take, reset, set) writes.
//! - `owned` of cell `k`: only the thread whose slot *claim* token (`sync::try_thread_token`:
//!   unique to one thread's hold on one slot, never reused) is `owner[k]`, by a relaxed load and
//!   a relaxed store: no `lock` prefix, the whole point of the design. While an owner lives,
//!   nobody else writes its `owned` word.
//! - `owner[k]`: by compare-exchange, from 0 or from a token whose claim has ended (its thread
//!   exited: `sync::token_is_live` is false). The claim's end happens-before the takeover, so
//!   the new owner continues from the value left in the cell: nothing is folded back, nothing
//!   lost. A thread looks for its cell at `slot & (len - 1)` and up to [`PROBE`] cells after it,
//!   so two threads whose slots collide (slots drift as threads come and go) still each own one.
//! - `shared` of cell `k`: threads that found no cell to own within [`PROBE`] cells of their
//!   home `k` (more threads than cells), by `fetch_add`.
//! - A thread tearing down its thread-locals has no slot (`try_thread_token` is `None`): it adds
//!   to `base`.
//!
//! The total is `base + Σ (owned + shared)`, all wrapping.

use crate::sync::{
    thread_token, token_is_live, try_thread_token, AtomicPtr, AtomicU64, AtomicUsize, CachePadded,
    Ordering,
};
use std::ptr;

/// The most cells a counter may be given (8 MiB of cells at 128 bytes each).
pub(crate) const MAX_CELLS: usize = 1 << 16;

/// Cells a thread tries, from its home cell on, before it settles for a shared word.
pub(crate) const PROBE: usize = 4;

/// Words per line: the three a cell uses; `CachePadded` pads the line to 128 bytes on x86-64.
const WORDS: usize = 3;

/// One cache line of words (or two, where `CachePadded` pads to 64 bytes).
type Line = CachePadded<[AtomicU64; WORDS]>;

/// Word 0 of a cell's line: written by its owner only.
const OWNED: usize = 0;
/// Word 1 of a cell's line: `fetch_add` by threads that own no cell.
const SHARED: usize = 1;
/// Word 2 of a cell's line: the owner's claim token, or 0 while the cell is free.
const OWNER: usize = 2;

/// The default cell count: the CPU count rounded up to a power of two.
pub(crate) fn default_len() -> usize {
    crate::sync::cpus().next_power_of_two().min(MAX_CELLS)
}

/// The address that marks "a thread is allocating the cells"; never dereferenced.
fn expanding() -> *mut Line {
    static MARK: u8 = 0;
    ptr::addr_of!(MARK).cast_mut().cast()
}

/// A view of the allocated lines: two words, so it travels in registers to `add_probing`.
#[derive(Clone, Copy)]
struct Stripes<'a> {
    /// One line per cell; the length is a power of two.
    lines: &'a [Line],
}

impl<'a> Stripes<'a> {
    /// Number of cells, a power of two.
    #[inline(always)]
    fn len(self) -> usize {
        self.lines.len()
    }

    #[inline(always)]
    fn owner(self, k: usize) -> &'a AtomicU64 {
        &self.lines[k][OWNER]
    }

    #[inline(always)]
    fn word(self, k: usize, word: usize) -> &'a AtomicU64 {
        &self.lines[k][word]
    }
}

/// A wrapping `u64` total, compact until contended, then striped.
pub(crate) struct Cells {
    /// Adds made before expansion, adds of slotless threads, and `replace`'s offset.
    base: AtomicU64,
    /// Null, [`expanding()`], or the first of `len` lines (one allocation).
    stripes: AtomicPtr<Line>,
    /// The number of cells: a power of two, or 0 for "the CPU count rounded up, decided at
    /// expansion". Written (0 → the decided count) only by the thread that allocates, before
    /// it publishes `stripes`; read after an Acquire load of `stripes` saw the lines.
    len: AtomicUsize,
}

impl Cells {
    /// A compact total of zero that will expand to `len` cells (0: the default).
    #[cfg(not(loom))]
    pub(crate) const fn new(len: usize) -> Self {
        Self {
            base: AtomicU64::new(0),
            stripes: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(len),
        }
    }

    /// A compact total of zero that will expand to `len` cells (0: the default).
    #[cfg(loom)]
    pub(crate) fn new(len: usize) -> Self {
        Self {
            base: AtomicU64::new(0),
            stripes: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(len),
        }
    }

    /// The number of cells the striped form has (or will have).
    pub(crate) fn len(&self) -> usize {
        // Relaxed: a hint when read before expansion; after it, the caller's Acquire load of
        // `stripes` (in `stripes()`) already ordered the expanding thread's store before us.
        match self.len.load(Ordering::Relaxed) {
            0 => default_len(),
            n => n,
        }
    }

    /// Whether the cells have been allocated.
    pub(crate) fn is_striped(&self) -> bool {
        self.stripes().is_some()
    }

    /// The allocated lines, if any.
    #[inline(always)]
    fn stripes(&self) -> Option<Stripes<'_>> {
        // Acquire: pairs with the Release store in `expand_slow`, so the lines' initialisation
        // (and the final `len`) is visible before we touch them.
        self.view(self.stripes.load(Ordering::Acquire))
    }

    /// The lines behind `p`, a value of `stripes` loaded with Acquire.
    #[inline(always)]
    fn view(&self, p: *mut Line) -> Option<Stripes<'_>> {
        if p.is_null() || p == expanding() {
            return None;
        }
        // Relaxed: ordered by the caller's Acquire load of `p` (see `len`).
        let len = self.len.load(Ordering::Relaxed);
        // SAFETY: a pointer other than null and the mark was stored by `expand_slow`, which
        // allocated exactly `len` initialised lines there and stored `len` before publishing;
        // the caller loaded `p` with Acquire, so both are visible. The allocation lives until
        // `Drop`, which needs `&mut self`, so it outlives `&self`.
        let lines = unsafe { std::slice::from_raw_parts(p, len) };
        Some(Stripes { lines })
    }

    /// Adds `n` (wrapping). Never allocates except for the one expansion, never blocks.
    ///
    /// Split so the compact path stays a load and a compare-exchange inlined into the caller,
    /// without the striped path's register pressure.
    #[inline(always)]
    pub(crate) fn add(&self, n: u64) {
        self.add_reporting_striped(n);
    }

    /// [`add`](Cells::add), then the calling thread's own cell if the lines exist (see
    /// [`owned`](Cells::owned)): the compact path stays as cheap as `add`'s.
    #[inline(always)]
    pub(crate) fn add_then_owned(&self, n: u64) -> Option<Owned<'_>> {
        if self.add_reporting_striped(n) {
            self.owned()
        } else {
            None
        }
    }

    /// Adds `n`; returns whether the lines had been published (the striped path ran).
    #[inline(always)]
    fn add_reporting_striped(&self, n: u64) -> bool {
        // Acquire: pairs with the Release store in `expand_slow`, so once we see the lines we
        // see them initialised (a plain load on x86-64 and the same as Relaxed elsewhere in cost
        // that matters; loaded once for both the path choice and the view).
        let p = self.stripes.load(Ordering::Acquire);
        if p.is_null() {
            self.add_compact(n);
            false
        } else {
            self.add_striped(p, n);
            true
        }
    }

    /// The striped form's add (or `base`, while another thread allocates the lines).
    #[inline]
    fn add_striped(&self, p: *mut Line, n: u64) {
        match self.view(p) {
            Some(s) => match try_thread_token() {
                Some((slot, token)) => {
                    let home = slot & (s.len() - 1);
                    // Relaxed: only we ever write our own token into `owner`, and nobody
                    // replaces it while we live, so reading it back needs no ordering. Any other
                    // value sends us to the slow path, which re-checks with a compare-exchange.
                    let line = &s.lines[home];
                    if line[OWNER].load(Ordering::Relaxed) == token {
                        bump_owned(&line[OWNED], n);
                    } else {
                        add_probing(s, home, token, n);
                    }
                }
                None => self.add_base(n),
            },
            // The expanding mark: the lines are not there yet.
            None => self.add_base(n),
        }
    }

    /// The compact form's add: one compare-exchange, or expansion if that met contention.
    #[inline(always)]
    fn add_compact(&self, n: u64) {
        // Relaxed: the total is a statistic; nothing is published through `base`. The CAS below
        // re-checks the value.
        let cur = self.base.load(Ordering::Relaxed);
        if self
            .base
            .compare_exchange(
                cur,
                cur.wrapping_add(n),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            self.contended_slow(n);
        }
    }

    /// An add that must not be lost and may not use a cell: straight into `base`.
    fn add_base(&self, n: u64) {
        // Relaxed: a statistic; `replace` re-reads `base` with a compare-exchange, and a
        // `fetch_add` continues the release sequence of `replace`'s store, so its readers'
        // Acquire loads still synchronise with it.
        self.base.fetch_add(n, Ordering::Relaxed);
    }

    /// A compare-exchange on `base` failed: someone else is adding. Land `n`, then expand.
    #[cold]
    #[inline(never)]
    fn contended_slow(&self, n: u64) {
        self.add_base(n);
        self.expand_slow();
    }

    /// Allocates the lines once; racing callers and later ones return at once.
    #[cold]
    #[inline(never)]
    fn expand_slow(&self) {
        // Relaxed: winning this CAS only elects the allocator; the lines are published by the
        // Release store below. Losers see the mark or the lines and add to `base` meanwhile.
        if self
            .stripes
            .compare_exchange(
                ptr::null_mut(),
                expanding(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return;
        }
        let len = self.len();
        // Relaxed: published by the Release store of `stripes` below.
        self.len.store(len, Ordering::Relaxed);
        let lines: Box<[Line]> = (0..len)
            .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
            .collect();
        let first = Box::into_raw(lines).cast::<Line>();
        // Release: pairs with the Acquire load in `stripes()`, so a thread that sees the pointer
        // sees initialised lines.
        self.stripes.store(first, Ordering::Release);
    }

    /// The wrapping sum of the cells alone (not `base`).
    fn cells_sum(&self) -> u64 {
        self.stripes().map_or(0, |s| {
            (0..s.len()).fold(0u64, |acc, k| {
                // Relaxed: each word only grows (mod 2^64) and coherence gives us at least every
                // value written before our load; there is nothing else to see through it.
                acc.wrapping_add(s.word(k, OWNED).load(Ordering::Relaxed))
                    .wrapping_add(s.word(k, SHARED).load(Ordering::Relaxed))
            })
        })
    }

    /// The total: exact once adders are quiescent.
    pub(crate) fn sum(&self) -> u64 {
        // Acquire: pairs with the Release half of `replace`'s compare-exchange, so if we see its
        // offset we also see every cell value it subtracted (read below, never lower).
        let base = self.base.load(Ordering::Acquire);
        base.wrapping_add(self.cells_sum())
    }

    /// Makes the total `new` and returns the total it replaced, atomically with respect to
    /// `base`: an add concurrent with it lands wholly before (in the returned total) or wholly
    /// after (on top of `new`). Lock-free: retries only if `base` moved meanwhile.
    pub(crate) fn replace(&self, new: u64) -> u64 {
        // Acquire: as in `sum`, pairs with an earlier `replace`'s Release, so the cells we read
        // are at least what it subtracted.
        let mut base = self.base.load(Ordering::Acquire);
        loop {
            let cells = self.cells_sum();
            // AcqRel: Release publishes "these cell values are accounted for" to later `sum`s
            // and `replace`s; Acquire on failure and success keeps our next read as fresh.
            match self.base.compare_exchange(
                base,
                new.wrapping_sub(cells),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return base.wrapping_add(cells),
                Err(now) => base = now,
            }
        }
    }

    /// The calling thread's own cell, if the lines exist and it owns one near its slot (it
    /// claims one on its first striped add).
    pub(crate) fn owned(&self) -> Option<Owned<'_>> {
        let s = self.stripes()?;
        let (slot, token) = try_thread_token()?;
        let k = own_cell(s, slot & (s.len() - 1), token, 0)?;
        Some(Owned {
            word: s.word(k, OWNED),
            token,
        })
    }

    /// Bytes this total holds on the heap: 0 until expansion.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.stripes().map_or(0, |s| std::mem::size_of_val(s.lines))
    }
}

/// A cell's `owned` word, and the claim token under which the calling thread owns it.
#[derive(Clone, Copy)]
pub(crate) struct Owned<'a> {
    word: &'a AtomicU64,
    token: u64,
}

impl Owned<'_> {
    /// Adds `n` if the calling thread's claim is still `token` (so the word is still its own);
    /// otherwise adds nothing and returns false.
    ///
    /// The caller must be the thread that got this from [`Cells::owned`]; a thread's claim token
    /// is unique to it, so on any other thread the check fails and nothing is written.
    #[inline(always)]
    pub(crate) fn try_add(self, n: u64) -> bool {
        let mine = thread_token() == self.token;
        if mine {
            bump_owned(self.word, n);
        }
        mine
    }
}

/// The owner's add: a relaxed load and a relaxed store, no locked instruction.
#[inline(always)]
fn bump_owned(owned: &AtomicU64, n: u64) {
    // Relaxed load and store: this thread is the only writer of its `owned` word (see the module
    // doc), so the load returns its own last store; readers need no ordering with anything else.
    let v = owned.load(Ordering::Relaxed);
    owned.store(v.wrapping_add(n), Ordering::Relaxed);
}

/// The home cell is not ours: look for ours (or a free one to claim) among the next
/// [`PROBE`] cells; failing that, add to the home cell's shared word.
///
/// Not `#[cold]`: when two live threads' slots meet modulo the cell count, one of them comes
/// here on every add, so the common case (our cell is a step or two on) is checked first, with
/// plain loads of the owner line and no liveness lookups.
#[inline(never)]
fn add_probing(s: Stripes<'_>, home: usize, token: u64, n: u64) {
    match own_cell(s, home, token, 1) {
        Some(k) => bump_owned(s.word(k, OWNED), n),
        None => claim_or_share(s, home, token, n),
    }
}

/// The cell `token` owns among the [`PROBE`] cells from `home` on, looking from step `first`.
#[inline(always)]
fn own_cell(s: Stripes<'_>, home: usize, token: u64, first: usize) -> Option<usize> {
    (first..PROBE.min(s.len()))
        .map(|step| (home + step) & (s.len() - 1))
        // Relaxed: as in `add_striped`, only we write our own token.
        .find(|&k| s.owner(k).load(Ordering::Relaxed) == token)
}

/// No cell in the window is ours: claim a free one or one whose owner is gone, else share.
#[cold]
#[inline(never)]
fn claim_or_share(s: Stripes<'_>, home: usize, token: u64, n: u64) {
    for step in 0..PROBE.min(s.len()) {
        let k = (home + step) & (s.len() - 1);
        let owner = s.owner(k);
        // Acquire: pairs with the Release half of the compare-exchange that stored the token we
        // see, which its thread made after publishing the token as live (`sync`'s `Claim::new`),
        // so `token_is_live` below cannot read a stale "free" for a live owner.
        let mut seen = owner.load(Ordering::Acquire);
        loop {
            if seen == token {
                return bump_owned(s.word(k, OWNED), n);
            }
            // `token_is_live` is false forever once a claim ends, and its Acquire load orders
            // the ended owner's last store to `owned` before our load of it in `bump_owned`.
            if seen != 0 && token_is_live(seen) {
                break; // a live thread owns it: try the next cell
            }
            // AcqRel: Release publishes our token after our claim went live (see the Acquire
            // above); winning elects the one writer of `owned`, and the happens-before edge from
            // the previous owner comes from `token_is_live` (or there was none). Acquire on
            // failure: the owner we then see gets the same treatment as the first load.
            match owner.compare_exchange(seen, token, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return bump_owned(s.word(k, OWNED), n),
                Err(now) => seen = now,
            }
        }
    }
    // Relaxed: a statistic, see `add_base`.
    s.word(home, SHARED).fetch_add(n, Ordering::Relaxed);
}

impl Drop for Cells {
    fn drop(&mut self) {
        // Relaxed: `&mut self` proves whoever handed it to us synchronised with every writer.
        let p = self.stripes.load(Ordering::Relaxed);
        if !p.is_null() && p != expanding() {
            let len = self.len.load(Ordering::Relaxed);
            let lines = ptr::slice_from_raw_parts_mut(p, len);
            // SAFETY: `p` came from `Box::into_raw` of a boxed slice of `len` lines
            // in `expand_slow`, which stored `len` before publishing `p`; `&mut self` orders that
            // before us and means no other reference to the lines exists; they are freed exactly
            // once, here.
            drop(unsafe { Box::from_raw(lines) });
        }
    }
}

impl std::fmt::Debug for Cells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cells")
            .field("sum", &self.sum())
            .field("striped", &self.is_striped())
            .field("cells", &self.len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
#[path = "cells_tests.rs"]
mod tests;
