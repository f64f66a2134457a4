//! `Cells`: the engine under [`Counter`](super::Counter) and [`Gauge`](super::Gauge), a `u64`
//! total kept in wrapping arithmetic, compact until contention lasts, then striped over
//! cache-padded cells that their owning thread bumps without a locked instruction, doubling
//! while contention goes on.
//!
//! # States
//!
//! | `state` holds | form | where an `add` goes |
//! | --- | --- | --- |
//! | compact bits, `BUSY` clear | compact (16 bytes) | `base`, by `fetch_add` |
//! | compact bits, `BUSY` set | one thread is allocating 2 cells | `base`, by `fetch_add` |
//! | a tagged block pointer | striped | the caller's own cell (plain), else a shared word; `base` for a thread's stray (below) |
//!
//! An add reads the state word before it adds only where the thread's hints say to
//! ([`adapt::Path`]): for a counter whose cell it remembers, or one it saw striped this interval.
//! Otherwise it adds to `base` first and reads the state word after, with the line already in its
//! cache: a compact counter's add then costs what an `AtomicU64`'s does. An add that then finds the
//! counter striped was a *stray*: counted in `base` all the same, and the thread finds its cell and
//! remembers it (or marks the counter), so its next add reads first. A thread whose hints are
//! blank (no striped counter but its hot one) does not read after either: its add is *blind*, and
//! it learns that a counter striped when one of its probes, which read the state word, lands on it.
//!
//! `state` moves compact → busy → block of 2 → block of 4 → … (each block keeping a pointer to
//! the one it outgrew), and back to compact only through [`Cells::compact`] (`&mut`) or `Drop`.
//!
//! Compact bits (a pointer-sized value with a zero tag, never dereferenced):
//!
//! ```text
//! bits 0..5   0 (the tag: not a block)
//! bit  5      BUSY: a thread was elected to allocate the first block
//! bits 6..11  log2(max cells) + 1, or 0 for the default cap
//! bits 11..21 the contention score of the compact form (adapt::Score)
//! ```
//!
//! # Who writes what
//!
//! - `base`: anyone, always by `fetch_add` or compare-exchange. Holds the compact adds, strays
//!   and [`Cells::replace`]'s offset. Once striped, only strays go there: a thread's first add to
//!   the counter (every new thread's, and the adds of a thread whose thread-local hints are gone),
//!   an add after its memo lost the counter to another, and an add after the counter moved (the
//!   memo is keyed by address), each at most once per thread and sampling interval (the filter:
//!   `adapt::strayed`); and a blind thread's adds until its probe lands on the counter (about an
//!   interval's worth of adds to it). So `replace`'s compare-exchange fails only on another
//!   `replace` or one of those strays.
//! - `state`: the score by compare-exchange (a hint); `BUSY` by the compare-exchange that elects
//!   the allocating thread, which then stores the first block (Release); each later block is
//!   stored by the one thread elected through the outgrown block's `pressure`.
//! - A cell's `owned` word: only its owner, the thread whose slot claim token is in `owner`,
//!   by a relaxed load and store. `owner` changes by compare-exchange from 0 or from a token
//!   whose claim has ended (`sync::token_is_live`), so the new owner continues from the value
//!   left in the cell. A thread looks for its cell at `slot & (len - 1)` and [`PROBE`] cells on.
//! - A cell's `shared` word: threads that found no cell to own there, by `fetch_add`.
//!
//! The total is `base + Σ (owned + shared)` over every block of the chain, all wrapping.

use super::adapt::{self, Score};
use super::block::{free_chain, Block, Line, Words, GROWING, TAG_BITS};
use super::owned::bump_owned;
use crate::sync::{
    thread_slot_hint, thread_token, token_is_live, try_thread_token, AtomicPtr, AtomicU64,
    Ordering, TRACKED_SLOTS,
};
use std::ptr;

/// The largest cap `with_cells` accepts. A cap above [`default_max`] (the thread slots that can
/// own a cell) acts as that: no more threads could own cells, and the threads that cannot own one
/// (no claim token) never sample, so nothing would grow past it.
pub(crate) const MAX_CELLS: usize = 1 << 16;

/// Cells a thread tries, from its home cell on, before it settles for a shared word.
pub(crate) const PROBE: usize = 4;

/// Compact bits: a thread is allocating the first block.
const BUSY: usize = 1 << TAG_BITS;
/// Compact bits: where `log2(max) + 1` starts (5 bits).
const MAX_SHIFT: u32 = TAG_BITS + 1;
/// Compact bits: where the score starts.
const SCORE_SHIFT: u32 = MAX_SHIFT + 5;
/// Compact bits: the score field.
const SCORE_FIELD: usize = ((1 << (2 * Score::BITS)) - 1) << SCORE_SHIFT;

/// The cap on cells when none was given: one per thread slot that can own a cell.
pub(crate) fn default_max() -> usize {
    TRACKED_SLOTS.min(MAX_CELLS)
}

/// Compact bits as the state word holds them: a pointer with no provenance, never dereferenced.
const fn compact_word(bits: usize) -> *mut Line {
    ptr::null_mut::<u8>().wrapping_add(bits).cast()
}

/// A wrapping `u64` total, compact until contention lasts, then striped.
///
/// 16 bytes, aligned to 16 so it never straddles a cache line: an add touches one line.
#[repr(align(16))]
pub(crate) struct Cells {
    /// Compact adds, and `replace`'s offset.
    base: AtomicU64,
    /// Compact bits, or the newest block, tagged (see the module doc).
    state: AtomicPtr<Line>,
}

impl Cells {
    /// A compact total of zero that may grow to `max` cells (a power of two; 0: the default).
    #[cfg(not(loom))]
    pub(crate) const fn new(max: usize) -> Self {
        Self {
            base: AtomicU64::new(0),
            state: AtomicPtr::new(compact_word(max_code(max) << MAX_SHIFT)),
        }
    }

    /// A compact total of zero that may grow to `max` cells (a power of two; 0: the default).
    #[cfg(loom)]
    pub(crate) fn new(max: usize) -> Self {
        Self {
            base: AtomicU64::new(0),
            state: AtomicPtr::new(compact_word(max_code(max) << MAX_SHIFT)),
        }
    }

    /// This counter's address: what picks its slot in the per-thread memo.
    #[inline(always)]
    fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// The newest block, if the counter is striped.
    #[inline(always)]
    fn block(&self) -> Option<Block<'_>> {
        // Acquire: pairs with the Release stores that publish blocks (`expand`, `grow`), so the
        // block's lines are initialised when we read them.
        let p = self.state.load(Ordering::Acquire);
        // SAFETY: loaded with Acquire; blocks are freed only with `&mut self` (`compact`,
        // `Drop`), so they outlive `&self`.
        unsafe { Block::view(p) }
    }

    /// The number of cells now: 0 while compact.
    pub(crate) fn len(&self) -> usize {
        self.block().map_or(0, |b| b.len())
    }

    /// The most cells the counter may grow to.
    pub(crate) fn max_len(&self) -> usize {
        // Acquire: as in `block`.
        let p = self.state.load(Ordering::Acquire);
        // SAFETY: as in `block`.
        match unsafe { Block::view(p) } {
            Some(b) => b.max(),
            None => max_from_code(p as usize >> MAX_SHIFT & 31),
        }
    }

    /// Whether the counter is striped.
    pub(crate) fn is_striped(&self) -> bool {
        self.block().is_some()
    }

    /// Adds `n` (wrapping). Allocates only when contention makes it stripe or grow; never
    /// blocks, except that a thread's first add to a striped counter registers its thread slot
    /// and its hot entry under short, process-wide locks (once per thread).
    ///
    /// The thread's hints choose the order ([`adapt::Path`]). The counter of the thread's hot
    /// entry: the state word, and if it is the one the entry was filled under, the add to the
    /// cell the entry names. A counter the thread remembers a
    /// cell of (or marked), or one its filter saw striped this interval: the state word first,
    /// then the add it names (a compact counter's `fetch_add` on `base`, a striped one's plain
    /// add to the thread's cell). Any other counter: the `fetch_add` on `base` first, then the
    /// state word, and if that names a block, the add (already counted in `base`) was a stray:
    /// the thread finds its cell and remembers it, so its next add goes there; or, for a thread
    /// whose hints are blank, the `fetch_add` alone (blind: its probe learns instead).
    #[inline(always)]
    pub(crate) fn add(&self, n: u64) {
        match adapt::path(self.addr()) {
            adapt::Path::Hot(word) => {
                #[cfg(all(test, not(loom)))]
                crate::sync::hot_add_pause();
                // Acquire: pairs with the Release store that published the block `p` names, so
                // that `hot_holds`, which reads the entry after this load, sees any void of an
                // entry filled under a freed block at the same address (`adapt::hot_holds`).
                let p = self.state.load(Ordering::Acquire) as usize;
                if adapt::hot_holds(p) {
                    // SAFETY: the hot entry, read after the Acquire load of our state word `p`,
                    // was filled under `p` (`adapt::remember`, with the block's cell this thread
                    // owned under its live claim; the entry is dropped when the claim ends). A
                    // block is freed only after every entry filled under it is voided
                    // (`free_blocks`), before any block that reuses its address is published,
                    // and our load saw `p` published: had the entry's block been freed, the
                    // void would be visible and the entry would not read `p`. So the entry's
                    // block is the one `p` names, live while `&self` is (no state word holds a
                    // freed block's pointer); `word` is the `owned` word of the entry's cell in
                    // it, and the cell is still ours: only its owner's claim ending frees a cell
                    // to others.
                    return bump_owned(unsafe { &*word }, n);
                }
                self.add_past_hot(n);
            }
            adapt::Path::Blind => self.add_compact(n),
            adapt::Path::Unread => self.add_unread(n),
            adapt::Path::Remembered(state, place, token) => {
                // Acquire: as in `block`; the striped path reads the block's lines through it.
                // `add_to_block` checks the remembered state first, and takes a compact one
                // (the memo outlived its counter: `compact`, or a new counter at its address)
                // to `add_forgotten`.
                let p = self.state.load(Ordering::Acquire);
                self.add_to_block(p, (state, place, token), n);
            }
            adapt::Path::Seen => {
                // Acquire: as above.
                let p = self.state.load(Ordering::Acquire);
                if p as usize & (BUSY - 1) == 0 {
                    self.add_compact(n);
                } else {
                    self.add_to_block(p, (adapt::MARK, 0, 0), n);
                }
            }
        }
    }

    /// The unread order: the compact add, then the state word; if that names a block, the add
    /// was a stray and the thread learns its cell.
    #[inline(always)]
    fn add_unread(&self, n: u64) {
        self.add_compact(n);
        // Acquire: as in `block`, for `learn`'s reads of the block's lines.
        let p = self.state.load(Ordering::Acquire);
        if p as usize & (BUSY - 1) != 0 {
            self.learn(p);
        }
    }

    /// [`add`](Self::add), but a thread whose hints would add blind reads the state word after
    /// (the unread order), so that if the counter is striped it claims its cell now: for a
    /// handle without a cell of its own, which looks for one after this add.
    pub(crate) fn add_looking(&self, n: u64) {
        match adapt::path(self.addr()) {
            adapt::Path::Blind => self.add_unread(n),
            _ => self.add(n),
        }
    }

    /// An add whose hot entry named this counter under another state word: a compact counter is
    /// forgotten (the entry with the memo's slot, so its next adds take the unread order again,
    /// however the memo fared); a striped one takes the memo's order.
    #[cold]
    #[inline(never)]
    fn add_past_hot(&self, n: u64) {
        // Acquire: as in `block`.
        let p = self.state.load(Ordering::Acquire);
        if p as usize & (BUSY - 1) == 0 {
            return self.add_forgotten(n);
        }
        match adapt::path_past_hot(self.addr()) {
            adapt::Path::Remembered(state, place, token) => {
                self.add_to_block(p, (state, place, token), n)
            }
            _ => self.add_to_block(p, (adapt::MARK, 0, 0), n),
        }
    }

    /// The compact add: one `fetch_add`, counted by this thread's tick.
    ///
    /// The tick's load and its test come before the locked add, and its store after: the
    /// branch is decided before the lock, which can then be a plain `lock add`, and the store
    /// waits in the store buffer while the thread goes on (a locked add drains the stores
    /// before it, so a store there holds it up). The repository's JOURNAL.md has the figures of
    /// each order tried.
    #[inline(always)]
    fn add_compact(&self, n: u64) {
        let next = adapt::tick_next();
        if next != 0 {
            // Relaxed: a statistic; nothing is published through `base`. `replace` re-reads
            // `base` with a compare-exchange, and a `fetch_add` continues the release sequence
            // of `replace`'s store, so its readers' Acquire loads still synchronise with it.
            self.base.fetch_add(n, Ordering::Relaxed);
            adapt::tick_set(next);
        } else {
            self.add_compact_sampled(n);
        }
    }

    /// An add in the unread order found the counter striped (the tagged block pointer `p`,
    /// loaded with Acquire) after it had added to `base`: a stray, recorded in the thread's
    /// filter until its interval ends. Looks up the thread's cell as an add of 0 would (claiming
    /// one if it can) and remembers it, or marks the counter striped if it has none, so the
    /// thread's next add to this counter reads the state word first and goes to its cell or
    /// shared word. (A sharer's add of 0 also ticks, and may probe for growth, as a sharer's add
    /// does; it changes no count.)
    #[cold]
    #[inline(never)]
    fn learn(&self, p: *mut Line) {
        adapt::strayed(self.addr());
        // Marked first: a thread that finds a cell of its own remembers it over the mark.
        adapt::mark(self.addr());
        self.add_to_block(p, (adapt::MARK, 0, 0), 0);
    }

    /// The compact add that ends the thread's interval: the add, then the next interval's
    /// draw and the probe. Out of line, so the common path's `fetch_add` stays a `lock add`
    /// (inline, the compiler merges the two adds into one whose result the branch waits for).
    #[cold]
    #[inline(never)]
    fn add_compact_sampled(&self, n: u64) {
        // Relaxed: as in `add_compact`.
        let old = self.base.fetch_add(n, Ordering::Relaxed);
        if adapt::tick_rearm() {
            self.probe_compact(old.wrapping_add(n));
        }
    }

    /// A sampled compact add: probe for other writers and score the result.
    ///
    /// The state word is read again here, after the add, not taken from before it: a score
    /// that another thread's probe recorded meanwhile would make this probe's compare-exchange
    /// fail and drop its record (under loom, where every add probes, two threads contending
    /// then never stripe within a model's adds).
    #[cold]
    #[inline(never)]
    fn probe_compact(&self, after: u64) {
        // Acquire: as in `block`, for `learn`'s reads of the block's lines.
        let st = self.state.load(Ordering::Acquire);
        let bits = st as usize;
        // Striped (a tag): this thread added to `base` without reading the state word
        // (`adapt::Path::Blind`) or before the counter striped; it learns its cell now.
        if bits & (BUSY - 1) != 0 {
            return self.learn(st);
        }
        // A thread is allocating the first block.
        if bits & BUSY != 0 {
            return;
        }
        let hit = adapt::others_write(&self.base, after, &self.base, after);
        let (score, stripe) = Score::unpack((bits >> SCORE_SHIFT) as u64).record(hit);
        let next = if stripe {
            (bits & !SCORE_FIELD) | BUSY
        } else {
            (bits & !SCORE_FIELD) | (score.pack() as usize) << SCORE_SHIFT
        };
        // Relaxed: the score is a hint, and winning the `BUSY` bit only elects the allocating
        // thread; the block is published by the Release store in `expand`. A failure (another
        // probe, or another thread's election) drops this probe's record.
        let won = self
            .state
            .compare_exchange(st, compact_word(next), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if won && stripe {
            self.expand(bits);
        }
    }

    /// Allocates and publishes the first block (2 cells, or 1 if the cap is 1). Only the thread
    /// that set `BUSY` calls it, so it runs once per compact period.
    #[cold]
    #[inline(never)]
    fn expand(&self, bits: usize) {
        let max = max_from_code(bits >> MAX_SHIFT & 31);
        let p = Block::alloc(2.min(max), ptr::null_mut(), max);
        // Release: pairs with the Acquire loads of `state` (`block`), so whoever sees the block
        // sees it initialised.
        self.state.store(p, Ordering::Release);
    }

    /// The striped add, given the state word `p` loaded with Acquire (a tagged block pointer, or
    /// compact bits only where the memo outlived its counter: a `compact`, or a new counter made at
    /// its address) and what the thread's memo holds for this counter ([`adapt::remembered`]'s
    /// triple): the cell it remembers under the state word `p`, if it still holds the thread's
    /// token; else the search in [`add_striped`](Self::add_striped).
    ///
    /// Inlined into every add: as a call, saving and restoring registers cost more than the
    /// striped add itself (the repository's JOURNAL.md has the figures).
    #[inline(always)]
    fn add_to_block(&self, p: *mut Line, (state, place, token): (usize, usize, u64), n: u64) {
        if p as usize == state {
            // SAFETY: `p` was loaded with Acquire from our state word, and `state` is a tagged
            // block pointer (`remember` takes only those) or `MARK` (a tag with no address,
            // which no state word holds), so `p`, equal to it, is a block of this counter that
            // the memo remembered under this value. Its block lives as long as `&self` (as in
            // `block`); `place` was remembered under the same value, so the same tag
            // (`add_striped`).
            let cell = unsafe { Block::cell_at(p, place) };
            // Relaxed: as in `add_striped`. `token` is this thread's live claim (`p`, striped, is
            // not 0; `adapt::remembered`). The block at `p` may be a newer one at the address of
            // the one remembered, where the cell is not ours: then the owner differs and the add
            // takes the path below.
            if cell.owner.load(Ordering::Relaxed) == token {
                return bump_owned(&cell.owned, n);
            }
        }
        // SAFETY: as above (a compact `p`, with no tag, views as no block).
        match unsafe { Block::view(p) } {
            Some(b) => self.add_striped(b, n),
            None => self.add_forgotten(n),
        }
    }

    /// The striped add: our own cell if we own the home cell or the one after it, else look
    /// further.
    ///
    /// The cell after home is checked here, not in the out-of-line search: a thread whose home
    /// another live thread holds owns that cell more often than any other, and it happens
    /// wherever threads come and go (a new thread can start before an exited one has given its
    /// slot back, and then takes the next slot up). Through the call, such a thread's add would
    /// cost about twice an owner's (the repository's JOURNAL.md has the figures).
    #[inline(always)]
    fn add_striped(&self, b: Block<'_>, n: u64) {
        match try_thread_token() {
            Some((slot, token)) => {
                let home = slot & (b.len() - 1);
                let cell = b.cell(home);
                // Relaxed: only we ever write our own token into `owner`, and nobody replaces it
                // while we live, so reading it back needs no ordering. Any other value sends us
                // on, and the slow path re-checks with a compare-exchange.
                if cell.owner.load(Ordering::Relaxed) == token {
                    self.remember(b, home, token);
                    return bump_owned(&cell.owned, n);
                }
                let next = (home + 1) & (b.len() - 1);
                // Relaxed: as above.
                if b.cell(next).owner.load(Ordering::Relaxed) == token {
                    self.remember(b, next, token);
                    bump_owned(&b.cell(next).owned, n);
                } else {
                    self.add_probing(b, home, token, n);
                }
            }
            // No token (a slot past the tracked ones, or tearing down the thread's locals): a
            // shared word, picked by the slot (the last cell without one). Not `base`, which
            // `replace` compare-exchanges after reading every cell: an adder there would fail
            // every `take` whose read it overlaps, for as long as it kept adding. (Its first add
            // strayed there once; the mark sends the rest here.)
            None => {
                let k = thread_slot_hint() & (b.len() - 1);
                // Relaxed: a statistic; nothing is read through it.
                b.cell(k).shared.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Remembers in this thread's hints that it owns cell `k` of `b`, the newest block, under
    /// its live claim `token`, so its next adds go straight there (`add_to_block`).
    #[inline(always)]
    fn remember(&self, b: Block<'_>, k: usize, token: u64) {
        adapt::remember(
            self.addr(),
            b.tagged() as usize,
            b.place(k),
            &b.cell(k).owned,
            token,
        );
    }

    /// An add to a counter the thread's memo holds that is compact again (the memo outlived a
    /// `compact`, or a counter made where a striped one lay): the memo forgets it and the add is
    /// a compact one.
    #[cold]
    #[inline(never)]
    fn add_forgotten(&self, n: u64) {
        adapt::forget(self.addr());
        self.add_compact(n);
    }

    /// Neither the home cell nor the next is ours: look for ours among the rest of the
    /// [`PROBE`] cells, else claim one or share.
    ///
    /// Not `#[cold]`: a thread that owns a cell two or three after its home, or shares, comes
    /// here on every add.
    #[inline(never)]
    fn add_probing(&self, b: Block<'_>, home: usize, token: u64, n: u64) {
        match own_cell(b, home, token, 2) {
            Some(k) => {
                self.remember(b, k, token);
                bump_owned(&b.cell(k).owned, n);
            }
            None => self.claim_or_share(b, home, token, n),
        }
    }

    /// No cell in the window is ours: claim a free one or one whose owner is gone, else add to
    /// the home cell's shared word (and, on a sampled add, probe for growth).
    #[cold]
    #[inline(never)]
    fn claim_or_share(&self, b: Block<'_>, home: usize, token: u64, n: u64) {
        for step in 0..PROBE.min(b.len()) {
            let cell = b.cell((home + step) & (b.len() - 1));
            if claim(cell, token) {
                self.remember(b, (home + step) & (b.len() - 1), token);
                return bump_owned(&cell.owned, n);
            }
        }
        let cell = b.cell(home);
        // Relaxed: a statistic; nothing is read through it.
        cell.shared.fetch_add(n, Ordering::Relaxed);
        if adapt::tick() {
            self.probe_for_growth(b, cell);
        }
    }

    /// A sharer's probe: if the line it shares is written by others while it watches, score it
    /// in the block; enough hits in a window double the block.
    #[cold]
    #[inline(never)]
    fn probe_for_growth(&self, b: Block<'_>, cell: &Words) {
        let pressure = &b.cell(0).pressure;
        // Relaxed: the score is a hint; `GROWING` is re-checked by the compare-exchange below.
        let cur = pressure.load(Ordering::Relaxed);
        if cur == GROWING || b.len() >= b.max() {
            return;
        }
        // Relaxed: values to compare, as in `adapt::others_write`.
        let (owned, shared) = (
            cell.owned.load(Ordering::Relaxed),
            cell.shared.load(Ordering::Relaxed),
        );
        let hit = adapt::others_write(&cell.owned, owned, &cell.shared, shared);
        let (score, grow) = Score::unpack(cur).record(hit);
        let next = if grow { GROWING } else { score.pack() };
        // Relaxed: winning `GROWING` only elects the thread that allocates the next block, which
        // it publishes with a Release store in `grow`.
        if pressure
            .compare_exchange(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
            && grow
        {
            self.grow(b);
        }
    }

    /// Publishes a block of twice `b`'s cells that keeps `b` as its `prev`. Only the thread that
    /// set `b`'s `pressure` to `GROWING` calls it, so each block is outgrown once.
    #[cold]
    #[inline(never)]
    fn grow(&self, b: Block<'_>) {
        // Relaxed: only compared. Every outgrown block's `pressure` is `GROWING` for good, so a
        // thread elected on `b` finds `b` newest; checked anyway, so a stale view never forks
        // the chain.
        let cur = self.state.load(Ordering::Relaxed);
        if cur != b.tagged() {
            return;
        }
        // `cur`, not `b.tagged()`, becomes `prev`: it carries the provenance of the block's
        // `Box::into_raw`, which `free_chain` needs to give the block back.
        let p = Block::alloc(2 * b.len(), cur, b.max());
        // Release: as in `expand`.
        self.state.store(p, Ordering::Release);
    }

    /// The wrapping sum of the cells of every block (not `base`).
    fn cells_sum(&self) -> u64 {
        self.block().map_or(0, |b| b.chain_sum())
    }

    /// The total: exact once adders are quiescent, and never below the adds that happen-before
    /// the call (see `Counter::sum`).
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

    /// Folds every cell into `base` and frees the blocks: the compact form again, with the same
    /// total and cap. `&mut self` proves no add is running and no block is borrowed.
    pub(crate) fn compact(&mut self) {
        let total = self.sum();
        // Relaxed: `&mut self` orders every earlier access before us.
        let p = self.state.load(Ordering::Relaxed);
        // SAFETY: `&mut self` gives exclusive access and a synchronised view of every block.
        let Some(b) = (unsafe { Block::view(p) }) else {
            return;
        };
        let bits = max_code(b.max()) << MAX_SHIFT;
        // SAFETY: exclusive access (`&mut self`); `p` is replaced below and never used again.
        unsafe { free_blocks(p) };
        self.state.store(compact_word(bits), Ordering::Relaxed);
        self.base.store(total, Ordering::Relaxed);
    }

    /// The calling thread's own cell in the newest block, if it owns one near its slot (it
    /// claims one on its first striped add).
    #[inline]
    pub(crate) fn owned(&self) -> Option<Owned<'_>> {
        let b = self.block()?;
        let (slot, token) = try_thread_token()?;
        let k = own_cell(b, slot & (b.len() - 1), token, 0)?;
        Some(Owned {
            word: &b.cell(k).owned,
            token,
        })
    }

    /// Bytes this total holds on the heap: 0 while compact, else every block of the chain.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.block().map_or(0, |b| b.chain_bytes())
    }

    /// Test hook: elects this thread and publishes the first block, as lasting contention would.
    #[cfg(test)]
    pub(crate) fn force_stripe(&self) {
        // Relaxed: as in `probe_compact`.
        let st = self.state.load(Ordering::Relaxed);
        let bits = st as usize;
        if bits & (BUSY - 1) == 0
            && bits & BUSY == 0
            && self
                .state
                .compare_exchange(
                    st,
                    compact_word(bits | BUSY),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.expand(bits);
        }
    }

    /// Test hook: doubles the newest block, as lasting contention among sharers would.
    #[cfg(test)]
    pub(crate) fn force_grow(&self) {
        if let Some(b) = self.block() {
            if b.len() < b.max() && b.cell(0).pressure.swap(GROWING, Ordering::Relaxed) != GROWING {
                self.grow(b);
            }
        }
    }
}

/// `log2(max) + 1` for a power-of-two `max`, or 0 for "the default".
const fn max_code(max: usize) -> usize {
    if max == 0 {
        0
    } else {
        max.trailing_zeros() as usize + 1
    }
}

/// The cap `max_code` encoded.
fn max_from_code(code: usize) -> usize {
    if code == 0 {
        default_max()
    } else {
        1 << (code - 1)
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

/// The cell `token` owns among the [`PROBE`] cells from `home` on, looking from step `first`.
#[inline(always)]
fn own_cell(b: Block<'_>, home: usize, token: u64, first: usize) -> Option<usize> {
    (first..PROBE.min(b.len()))
        .map(|step| (home + step) & (b.len() - 1))
        // Relaxed: as in `add_striped`, only we write our own token.
        .find(|&k| b.cell(k).owner.load(Ordering::Relaxed) == token)
}

/// Makes `cell` ours if it is, is free, or its owner's claim has ended; false if a live thread
/// owns it.
fn claim(cell: &Words, token: u64) -> bool {
    // Acquire: pairs with the Release half of the compare-exchange that stored the token we
    // see, which its thread made after publishing the token as live (`sync`'s `Claim::new`), so
    // `token_is_live` below cannot read a stale "free" for a live owner.
    let mut seen = cell.owner.load(Ordering::Acquire);
    loop {
        if seen == token {
            return true;
        }
        // `token_is_live` is false forever once a claim ends, and its Acquire load orders the
        // ended owner's last store to `owned` before our load of it in `bump_owned`.
        if seen != 0 && token_is_live(seen) {
            return false;
        }
        // AcqRel: Release publishes our token after our claim went live (see the Acquire
        // above); winning elects the one writer of `owned`, and the happens-before edge from the
        // previous owner comes from `token_is_live` (or there was none). Acquire on failure: the
        // owner we then see gets the same treatment as the first load.
        match cell
            .owner
            .compare_exchange(seen, token, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return true,
            Err(now) => seen = now,
        }
    }
}

impl Drop for Cells {
    fn drop(&mut self) {
        // Relaxed: `&mut self` proves whoever handed it to us synchronised with every writer.
        let p = self.state.load(Ordering::Relaxed);
        // SAFETY: `&mut self` in `drop`: exclusive access, and `p` is never used again.
        unsafe { free_blocks(p) };
    }
}

/// Frees the chain of blocks at the state word `p` (nothing if it is compact), first voiding
/// every thread's hot entry filled under one of them ([`adapt::void`]): a block allocated later
/// at the same address, in a counter at the same address, must not pass for the one remembered.
///
/// # Safety
///
/// As [`free_chain`]: the caller has exclusive access to the counter (`&mut`), and never uses
/// `p` again.
unsafe fn free_blocks(p: *mut Line) {
    // SAFETY: exclusive access: the chain is live until freed below.
    if let Some(b) = unsafe { Block::view(p) } {
        adapt::void(|v| b.chain().any(|b| b.tagged() as u64 == v));
    }
    // SAFETY: the caller's.
    unsafe { free_chain(p) };
}

impl std::fmt::Debug for Cells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cells")
            .field("sum", &self.sum())
            .field("cells", &self.len())
            .field("max_cells", &self.max_len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
#[path = "cells_tests.rs"]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::loom_model::{claim_untracked, model, thread};
    use crate::sync::{thread_slot, Arc};

    /// A thread with no claim token (a slot past the tracked ones) adds to a striped counter
    /// while another takes it: its first add strays to `base` (it does not remember the
    /// counter), which marks the counter, so the second reads the state word first and goes to a
    /// shared word; each lands in the take or in what is left after it, never both, never
    /// neither.
    #[test]
    fn loom_a_tokenless_add_racing_a_take_lands_once() {
        model(|| {
            let c = Arc::new(Cells::new(4));
            c.force_stripe();
            let adder = {
                let c = c.clone();
                thread::spawn(move || {
                    assert!(claim_untracked(thread_slot) >= TRACKED_SLOTS);
                    c.add(1);
                    c.add(2);
                    // No claim token, so no hot entry: nothing a freed block could void.
                    assert!(!matches!(adapt::path(c.addr()), adapt::Path::Hot(..)));
                })
            };
            let taken = c.replace(0);
            adder.join().unwrap();
            assert_eq!(taken + c.sum(), 3, "taken {taken}");
            let b = c.block().unwrap();
            let words = |f: fn(&Words) -> &AtomicU64| -> u64 {
                (0..b.len())
                    .map(|k| f(b.cell(k)).load(Ordering::Relaxed))
                    .sum()
            };
            assert_eq!(words(|w| &w.shared), 2, "the second add in a shared word");
            assert_eq!(words(|w| &w.owned), 0, "no cell owned");
        });
    }

    /// The counter stripes and is taken while another thread adds in the unread order (it
    /// remembers nothing of the counter, and is fresh): an add before the
    /// stripe, or a stray after it, lands in `base`, a later one in the thread's cell; each
    /// lands in the take or in what is left after it, never both, never neither, and a stray's
    /// `learn` never claims a cell twice.
    #[test]
    fn loom_unread_adds_racing_a_stripe_and_a_take_land_once() {
        adds_racing_a_stripe_and_a_take(false);
    }

    /// As above, with the adder blind (past an interval with nothing striped seen: it reads
    /// nothing after its adds, and learns the stripes at its probe, which under loom every add
    /// makes).
    #[test]
    fn loom_blind_adds_racing_a_stripe_and_a_take_land_once() {
        adds_racing_a_stripe_and_a_take(true);
    }

    fn adds_racing_a_stripe_and_a_take(blind: bool) {
        model(move || {
            let c = Arc::new(Cells::new(4));
            let adder = {
                let c = c.clone();
                thread::spawn(move || {
                    if blind {
                        // An interval ended with nothing striped seen: blind from here.
                        assert!(adapt::tick_rearm());
                    }
                    c.add(1);
                    c.add(2);
                    c.add(4);
                })
            };
            c.force_stripe();
            let taken = c.replace(0);
            adder.join().unwrap();
            assert_eq!(taken + c.sum(), 7, "taken {taken}");
            // The adder's probe may have won the state word from `force_stripe` (under loom
            // every add probes): then the counter stayed compact.
            if let Some(b) = c.block() {
                let owners = (0..b.len())
                    .filter(|&k| b.cell(k).owner.load(Ordering::Relaxed) != 0)
                    .count();
                assert!(owners <= 1, "one cell claimed at most");
            }
        });
    }

    /// A thread adds to a striped counter (filling its hot entry with the counter's block)
    /// while another compacts the counter and stripes it again, under a lock as `&mut` needs:
    /// the compact voids the entry, so whenever the adder reads it, it names a block of the
    /// counter's chain or nothing; every add lands once.
    #[test]
    fn loom_a_compact_voids_the_hot_entries_of_the_blocks_it_frees() {
        model(|| {
            let c = Arc::new(crate::sync::Mutex::new(Cells::new(4)));
            c.lock().force_stripe();
            let adder = {
                let c = c.clone();
                thread::spawn(move || {
                    for n in [1, 2, 4] {
                        let c = c.lock();
                        if let adapt::Path::Hot(_) = adapt::path(c.addr()) {
                            let state = adapt::hot_state();
                            let live = c
                                .block()
                                .is_some_and(|b| b.chain().any(|b| b.tagged() as usize == state));
                            assert!(state == adapt::MARK || live, "a freed block's entry");
                        }
                        c.add(n);
                    }
                })
            };
            {
                let mut c = c.lock();
                c.compact();
                c.force_stripe();
            }
            adder.join().unwrap();
            let c = c.lock();
            assert_eq!(c.sum(), 7);
            // A block at a freed one's address passes the check above: then an add through a
            // stale entry would land in a cell nobody owns.
            let b = c.block().unwrap();
            for k in 0..b.len() {
                let cell = b.cell(k);
                let (owned, owner) = (
                    cell.owned.load(Ordering::Relaxed),
                    cell.owner.load(Ordering::Relaxed),
                );
                assert!(owned == 0 || owner != 0, "cell {k} written unowned");
            }
        });
    }

    /// The cells double while an owner adds to its cell in the block being outgrown and a
    /// reader sums: the outgrown cell's value is still counted, the add lands in the old block
    /// or the new one, never both, never neither; a sum in between is never below what
    /// happened-before it nor above everything.
    #[test]
    fn loom_growth_keeps_every_add() {
        model(|| {
            let c = Arc::new(Cells::new(4));
            c.force_stripe();
            c.add(1); // this thread's own cell in the 2-cell block
            let adder = {
                let c = c.clone();
                thread::spawn(move || {
                    c.add(2);
                    c.add(4);
                })
            };
            let grower = {
                let c = c.clone();
                thread::spawn(move || c.force_grow())
            };
            c.add(8);
            let seen = c.sum();
            assert!((9..=15).contains(&seen), "sum {seen}");
            adder.join().unwrap();
            grower.join().unwrap();
            assert_eq!(c.len(), 4);
            assert_eq!(c.sum(), 15);
        });
    }
}
