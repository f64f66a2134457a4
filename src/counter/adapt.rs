//! The contention rule: when a compact counter stripes and when a striped one doubles its cells.
//!
//! # The rule
//!
//! A thread *probes* on one in [`SAMPLE`] of its compact adds and its adds to a shared word (those
//! of threads with a claim token: a thread past the tracked slots, or tearing down, never samples),
//! on average (to any counter: a per-thread tick, so the sampling costs the same whatever the
//! values added; an add to the thread's own cell does not tick). The interval between two probes is
//! drawn at random from `SAMPLE / 2 .. 3 * SAMPLE / 2`: a program whose adds repeat with a period
//! (a handler that makes the same 8 adds per request) has each of them probed, where a fixed
//! interval that the period divides would probe the same place of every request. A probe watches
//! the word the add just wrote (the compact total, or for a thread that shares a cell the cell's
//! line) for [`PROBE_LOADS`] rounds of two loads: if another thread writes it meanwhile, the
//! probe *hits*. The
//! counter keeps a score of its last probes (in its state word while compact, in its newest block
//! of cells once striped), and adapts once [`HITS`] of at most [`WINDOW`] consecutive probes have
//! hit; a window that ends with fewer hits starts the score again. So the window is measured in the
//! counter's own sampled adds, not in time.
//!
//! A compact probe that finds the counter striped learns the thread's cell there instead (a blind
//! add, [`Path::Blind`], reads nothing else that would tell it).
//!
//! Why this discriminates: a probe hits only if another thread writes the *same* counter within
//! the probe's window (its 512 rounds). Two threads hammering one counter do that on most
//! probes; two threads spreading adds over a registry of `m` counters do it on about `k / m` of
//! them, where `k` is how many adds the other thread makes during one window, so four hits in
//! eight probes of one counter is about `70 (k/m)^4` of windows: for example, if `k` were 15,
//! once in about 3 × 10^9 windows at 10 000 counters (the counter module doc's "How it works"
//! gives the same derivation).
//!
//! Under loom the constants are cut down so a model can reach both outcomes in a few adds.

use crate::sync::{
    register_hot_word, void_hot_words, with_thread_hints, AtomicU64, Ordering, ThreadHints,
    MEMO_SLOTS, SEED, SEEN_WORDS,
};
use std::hint::black_box;

/// A thread probes on one in `SAMPLE` of the adds that tick, on average (a power of two).
///
/// A probe that sees no write makes all its [`PROBE_LOADS`] rounds of two loads (one that sees
/// one stops there), so their wait is spread over `SAMPLE` adds (about a quarter of a load per
/// add at 4096). In a registry on one thread
/// (`cargo run --release --example counter_loop -- counter` against `-- atomic`), a probe every
/// 1024th add cost about 4% more per add than every 4096th, and every 8192th gained nothing
/// measurable. The price of the interval is the reaction time: two fresh threads hammering a
/// counter stripe it after about 10 000 adds of each (median; a fresh thread's first probe comes
/// an interval after its first [`FRESH_ADDS`]), well under a millisecond at full speed.
#[cfg(not(any(loom, miri)))]
pub(super) const SAMPLE: u32 = 4096;
/// Under loom every add probes, so two adds per thread can show both outcomes (and under Miri,
/// far slower, so tests that wait for striping end).
#[cfg(any(loom, miri))]
pub(super) const SAMPLE: u32 = 1;

/// Rounds a probe makes, each a load of both words it watches (the compact probe watches one
/// word twice, so its window is as long as the growth probe's): longer than a cache line's
/// trip between cores, so another thread's write lands inside it. Plain loads of a line in our
/// cache, no spin hint (a `PAUSE` alone would take a large part of the window on some x86
/// cores).
#[cfg(all(not(loom), not(miri)))]
pub(super) const PROBE_LOADS: usize = 512;
/// Under Miri: a few loads; its scheduler switches threads often enough to see a writer.
#[cfg(all(not(loom), miri))]
pub(super) const PROBE_LOADS: usize = 8;
/// Under loom one load is the window: loom explores every interleaving around it anyway.
#[cfg(loom)]
pub(super) const PROBE_LOADS: usize = 1;

/// Hits within one window that make the counter adapt.
#[cfg(not(loom))]
pub(super) const HITS: u32 = 4;
/// Under loom: two hits (two threads contending once make one at most).
#[cfg(loom)]
pub(super) const HITS: u32 = 2;

/// Probes per window (under loom too: a window as long as a model's probes).
pub(super) const WINDOW: u32 = 8;

/// Slots in a thread's memo of the cells it owns in striped counters, direct-mapped by the
/// counter's address (`sync`'s memo words). A counter the memo does not hold, and the thread's
/// filter has not seen striped ([`seen_bit`]), takes the unread order ([`Path::Unread`]): a
/// striped one's add then goes to `base`, a locked add on a line other threads read, before the
/// thread finds and remembers its cell. Two striped counters whose slots collide evict each other
/// on every add; the filter keeps each to one such stray per interval.
const SLOTS: usize = MEMO_SLOTS;

/// The memo slot for the counter at `addr` (counters are 16-byte aligned): bits 7 and up added
/// to bits 4 and up, so that any 8 counters in a row in a `Vec<Counter>` have 8 slots, any 16 in
/// a row at least 14, and 16 counters 8 apart (128 bytes, a stride that a plain index by address
/// would send to 2 slots) have 16. (An exclusive or in place of the sum gave 8 in a row as few as
/// 4 slots, wherever the row crossed a multiple of 8 counters.)
#[inline(always)]
pub(super) fn memo_slot(addr: usize) -> usize {
    ((addr >> 4).wrapping_add(addr >> 7)) % SLOTS
}

/// The order an add takes, chosen from the thread's hint words before it touches the counter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Path {
    /// The thread's hot entry is this counter's: the `owned` word of the thread's cell under
    /// the state word the entry was filled under ([`remember`]), which [`hot_holds`] compares
    /// with the counter's after the add has loaded it.
    Hot(*const AtomicU64),
    /// The thread's skip flag is set (its memo and filter hold nothing but its hot entry's
    /// counter, and they were not read) and the hot entry is not this counter: add to the compact
    /// total and read nothing else of the counter. A striped counter's add still counts (the
    /// total is `base` plus the cells), and the thread learns of the stripes at its next probe
    /// that lands on this counter (`probe_compact`): about [`SAMPLE`] of the thread's adds later
    /// if all go to it. So a registry's add is the tick and one locked add.
    Blind,
    /// Neither the hot entry, the memo nor the filter names this counter, and the thread's
    /// hints hold other counters: add to the compact total first, read the state word after (the
    /// line is then this core's, so the read costs little more). If that names a block, the add
    /// was a stray, and the thread learns the counter's cell at once.
    Unread,
    /// The memo holds this counter ([`remembered`]'s triple; [`MARK`] and zeros for a counter
    /// marked striped where the thread owns no cell): read the state word first and take the
    /// path it names.
    Remembered(usize, usize, u64),
    /// The thread's filter has this counter's bit set (it strayed on it, or on another counter
    /// with the same bit, since its interval began): read the state word first.
    Seen,
}

/// One read of the thread's hints for an add to the counter at `addr`: its [`Path`]. Once the
/// hints are torn down (loom only), the read-first order.
///
/// The first load is the hot entry's key, at a fixed place in the thread's hint words: the
/// counter whose cell the thread found last ([`remember`]), whose add then reads the entry's
/// pointer, the counter's state word and the entry's state word ([`hot_holds`]), and adds (the
/// hot add: no place computed from `addr` is read). The key is compared where it lies, used
/// nowhere else, so the compare takes its operand from memory: one instruction fewer on the hot
/// add than a load and a compare.
/// Else, while the thread's `skip` flag is set, the add is blind ([`Path::Blind`]): it reads
/// neither the memo and the filter, whose words lie at places computed from `addr`, nor the
/// state word after its add, since a locked add waits for every load before it and holds up
/// every load after it (in a registry of compact counters, those waits were most of the gap to
/// an `AtomicU64`: the repository's JOURNAL.md has the figures). The flag is set while the
/// filter is empty and the memo empty or holding the hot counter's entry only (a fresh thread; a
/// thread whose interval ended with its memo empty, or holding its hot counter only and no stray
/// in the interval, [`rearm`]: a server's threads that all bump one hot counter and a registry of
/// compact ones), and cleared when the thread writes the memo for another counter or the filter.
/// Any other thread that owns a cell in a striped counter, or marked or strayed on one, reads
/// them on every add to any other counter until an interval ends so.
#[inline(always)]
pub(super) fn path(addr: usize) -> Path {
    with_thread_hints(|l| {
        let key = l.hot_key.get();
        if key == addr as u64 {
            return Path::Hot(l.hot_cell.get());
        }
        if l.skip.get() {
            return Path::Blind;
        }
        memo_path(l, addr)
    })
    .unwrap_or(Path::Seen)
}

/// What the memo and the filter say of the counter at `addr` ([`path`] past the hot entry).
#[inline(always)]
fn memo_path(l: &ThreadHints, addr: usize) -> Path {
    let [key, token, state, place] = &l.memo[memo_slot(addr)];
    let (word, bit) = seen_bit(addr);
    if key.get() == addr as u64 {
        Path::Remembered(state.get() as usize, place.get() as usize, token.get())
    } else if l.seen[word].get() & bit != 0 {
        Path::Seen
    } else {
        Path::Unread
    }
}

/// Whether the thread's hot entry was filled under the state word `p`, which the caller loaded
/// with Acquire from the entry's counter before this call (and [`path`] found the entry keyed to
/// that counter's address): then the entry's cell lies in the block `p` names. Read after that
/// load, not in [`path`]: a block is freed only after every entry filled under it is voided
/// ([`void`]), and a block allocated later at its address is published in a state word after
/// that free, so a load that sees it makes the void visible here. An entry read before the
/// load could be one voided and freed since, whose counter was moved away from the address
/// and a new one striped there over a block at the freed one's address. `false` once the hints
/// are torn down (loom only).
#[inline(always)]
pub(super) fn hot_holds(p: usize) -> bool {
    // Relaxed: ordered after the caller's Acquire load, which is what makes a void visible.
    with_thread_hints(|l| l.hot_state.load(Ordering::Relaxed) == p as u64).unwrap_or(false)
}

/// The state word the thread's hot entry was filled under (or voided to), for tests.
#[cfg(test)]
pub(super) fn hot_state() -> usize {
    with_thread_hints(|l| l.hot_state.load(Ordering::Relaxed) as usize).unwrap_or(0)
}

/// [`path`] for an add that found the hot entry stale: what the memo and the filter say.
#[inline(never)]
pub(super) fn path_past_hot(addr: usize) -> Path {
    with_thread_hints(|l| memo_path(l, addr)).unwrap_or(Path::Seen)
}

/// Marks the thread's hints as written (its adds no longer skip the memo and the filter),
/// keeping its hot entry.
fn written(l: &ThreadHints) {
    l.skip.set(false);
}

/// The filter's word and bit for the counter at `addr`: bits 4 to 12 of the address folded with
/// bits 13 and up, so 64 counters in a row in a `Vec<Counter>` almost always take bits of their
/// own. (Its own fold, not [`memo_slot`]'s: folding bits 7 and up, 64 counters in a row would
/// share half a bit on average, where this fold shares under a hundredth. The second fold costs
/// a shift and an exclusive or: the `addr >> 4` they share is computed once.)
#[inline(always)]
fn seen_bit(addr: usize) -> (usize, u64) {
    let k = ((addr >> 4) ^ (addr >> 13)) % (64 * SEEN_WORDS);
    (k / 64, 1 << (k % 64))
}

/// Records a stray on the counter at `addr`: its bit in the thread's filter, so the thread's adds
/// to it read the state word first until the interval ends ([`rearm`] clears the filter). So a
/// thread that is not blind ([`Path::Blind`]) strays at most once per interval on each striped
/// counter, however its memo fares, and `replace`'s compare-exchange meets at most that many
/// strays from it.
#[cold]
#[inline(never)]
pub(super) fn strayed(addr: usize) {
    let _ = with_thread_hints(|l| {
        let (word, bit) = seen_bit(addr);
        l.seen[word].set(l.seen[word].get() | bit);
        written(l);
    });
}

/// Clears the calling thread's `skip` flag, as a thread whose hints hold other counters has it
/// cleared: its adds to counters it does not remember take the unread order (a stray is
/// learned at once) until an interval ends with nothing but its hot counter remembered and no
/// stray (tests of the stray path).
#[cfg(all(test, not(loom)))]
pub(super) fn unskip() {
    let _ = with_thread_hints(written);
}

/// Makes the calling thread's next add that ticks end its interval, so that add probes (tests of
/// what a probe learns; on a fresh thread its first [`FRESH_ADDS`] end without their look).
#[cfg(all(test, not(loom)))]
pub(super) fn probe_next_add() {
    let _ = with_thread_hints(|l| {
        if l.seed.get() == SEED {
            l.seed.set(SEED.wrapping_add(SEED_STEP));
        }
        l.tick.set(TICK_STEP.wrapping_neg());
    });
}

/// Sets every bit of the calling thread's filter: it reads first for every counter until its
/// interval ends (tests of the cell paths, which that order reaches on every add).
#[cfg(all(test, not(loom)))]
pub(super) fn see_all() {
    let _ = with_thread_hints(|l| {
        l.seen.iter().for_each(|w| w.set(u64::MAX));
        written(l);
    });
}

/// Whether the calling thread's adds to counters other than its hot one skip its memo and
/// filter (`skip`).
#[cfg(all(test, not(loom)))]
pub(super) fn skips() -> bool {
    with_thread_hints(|l| l.skip.get()).unwrap_or(false)
}

/// Whether the calling thread's filter has the bit of the counter at `addr`.
#[cfg(all(test, not(loom)))]
pub(super) fn is_seen(addr: usize) -> bool {
    path(addr) == Path::Seen
}

/// The state a mark remembers, and the empty triple's: a tag with no block address, which no
/// state word ever holds (compact bits have a zero tag, a block is never at address 0), so no add
/// takes it for a remembered cell. (0 would not do: a compact counter with the default cap and
/// no score has a state word of 0.)
pub(super) const MARK: usize = 1;

/// Marks the counter at `addr` as striped with no cell of this thread's remembered: its adds
/// read the state word first ([`Path::Remembered`] with [`MARK`], which matches no state word),
/// so a thread that shares a word, or has no claim, does not stray on every add.
#[cold]
#[inline(never)]
pub(super) fn mark(addr: usize) {
    let _ = with_thread_hints(|l| {
        let [key, token, state, place] = &l.memo[memo_slot(addr)];
        key.set(addr as u64);
        token.set(0);
        state.set(MARK as u64);
        place.set(0);
        written(l);
    });
}

/// What this thread's memo slot for the counter at `addr` holds ([`remember`]): the state word
/// of a striped counter, where the thread's cell lay under it, and the thread's claim token;
/// `(0, 0, 0)` if it holds nothing for this counter.
///
/// The slot is keyed by the counter's address. The state word checks that what is remembered is
/// still true: while a block is live, no other counter's state word holds its pointer; a block
/// at the address of a freed one (after `compact`, or in a counter made where a dropped one lay)
/// is caught by the caller's owner check against the token. The caller uses the place only while
/// the counter's state word holds the value remembered (then the block there is as long as the
/// one remembered, so the place is inside it).
///
/// The token is the thread's live claim whenever the state is a block pointer (not 0 or [`MARK`]):
/// [`remember`] is only given a live token, and the memo is wiped when the claim ends
/// (`sync::slot`'s `Claim::drop` calls [`forget_memo`](crate::sync::forget_memo)), before the
/// thread's last adds, which then take the unread order, stray once per counter and find no
/// token. (Under loom a thread's locals are all taken out before any is
/// dropped, so there the wipe finds no memo, and these reads find none either: `(0, 0, 0)`.)
#[cfg(all(test, not(loom)))]
pub(super) fn remembered(addr: usize) -> (usize, usize, u64) {
    with_thread_hints(|l| {
        let [key, token, state, place] = &l.memo[memo_slot(addr)];
        if key.get() == addr as u64 {
            (state.get() as usize, place.get() as usize, token.get())
        } else {
            (0, 0, 0)
        }
    })
    .unwrap_or((0, 0, 0))
}

/// Remembers that this thread, holding the claim `token`, owns the cell at `place` in the
/// striped counter at `addr` under the state word `state` (see [`remembered`]), in place of
/// whatever its memo slot held; and makes it the thread's hot entry ([`path`]), with `word`, the
/// cell's `owned` word: a pointer, so that the hot add needs no arithmetic on the state word.
///
/// The hot entry has no owner check: it holds only while no block it could name was freed. So
/// its state word is registered (once per claim) where a counter that frees blocks voids it
/// ([`void`]), and a thread that cannot register it (no tracked claim) keeps no hot entry. The
/// entry is dropped with the memo when the thread's claim ends.
#[inline(always)]
pub(super) fn remember(addr: usize, state: usize, place: usize, word: &AtomicU64, token: u64) {
    debug_assert!(
        state & ((1 << super::block::TAG_BITS) - 1) != 0 && state != MARK && token != 0,
        "only a striped state and a live claim"
    );
    let _ = with_thread_hints(|l| {
        let [key, tk, st, pl] = &l.memo[memo_slot(addr)];
        key.set(addr as u64);
        tk.set(token);
        st.set(state as u64);
        pl.set(place as u64);
        if !l.hot_registered.get() {
            l.hot_registered.set(register_hot_word(&l.hot_state));
        }
        if l.hot_key.get() != addr as u64 {
            l.skip.set(false);
        }
        if l.hot_registered.get() {
            l.hot_key.set(addr as u64);
            // Relaxed: only this thread reads the entry; others only void it ([`void`]).
            l.hot_state.store(state as u64, Ordering::Relaxed);
            l.hot_cell.set(word);
        }
    });
}

/// Voids every thread's hot entry filled under one of the state words `stale` accepts (the
/// tagged blocks a counter is about to free): their adds then find the entry stale, so none
/// takes a block allocated later at the same address for the one it remembered.
pub(super) fn void(stale: impl Fn(u64) -> bool) {
    void_hot_words(stale, MARK as u64);
}

/// Forgets what the memo holds for the counter at `addr`, if anything: it was found compact
/// (after `compact`, or a new counter where a striped one lay), so its adds take the unread
/// order again.
#[cold]
#[inline(never)]
pub(super) fn forget(addr: usize) {
    let _ = with_thread_hints(|l| {
        let slot = &l.memo[memo_slot(addr)];
        if slot[0].get() == addr as u64 {
            slot.iter().for_each(|w| w.set(0));
        }
        if l.hot_key.get() == addr as u64 {
            l.hot_key.set(0);
        }
    });
}

/// What one add moves the tick by: `2^32 / (2 * SAMPLE)`, so a tick set to `-k * TICK_STEP`
/// wraps to exactly 0 on the `k`-th add after (any `k` below `2 * SAMPLE`), and the test is the
/// add's own zero flag. 0 when `SAMPLE` is 1: the tick stays 0 and every add probes.
const TICK_STEP: u32 = if SAMPLE == 1 {
    0
} else {
    ((1u64 << 32) / (2 * SAMPLE as u64)) as u32
};

/// Adds a fresh thread makes before its first look at its hints ([`rearm`] without a probe):
/// until then it is not blind (its `skip` flag starts clear: [`Path::Blind`]), so a thread that
/// starts on striped counters learns of them at once; from then on a thread that met none adds
/// blind, as one whose interval ended so does. Each of these adds reads the state word after its
/// locked add, which a blind add does not, so the look comes well before the first probe, which
/// a thread that lives for a few thousand adds may never reach. (None when every add probes:
/// `SAMPLE` 1.)
const FRESH_ADDS: u32 = if SAMPLE == 1 { 0 } else { 1024 };

/// Where a thread's tick starts (`sync`'s hint words take it): it wraps after [`FRESH_ADDS`]
/// adds (0 when every add probes).
pub(crate) const FIRST_TICK: u32 = FRESH_ADDS.wrapping_mul(TICK_STEP).wrapping_neg();

/// What each draw adds to a thread's seed (a Weyl sequence: odd, so 2^32 draws before a repeat).
const SEED_STEP: u32 = 0x9e37_79b9;

/// Counts one add on this thread; true on the add that ends the current interval: this add
/// should probe. A fresh thread's first [`FRESH_ADDS`] end as an interval does but with no probe
/// (the tick starts at [`FIRST_TICK`]): its `skip` flag is set there if it met no striped counter;
/// each end draws the next interval ([`rearm`]). The compact add splits it around its locked add
/// ([`tick_next`], [`tick_set`], [`tick_rearm`]).
#[inline(always)]
pub(super) fn tick() -> bool {
    let next = tick_next();
    if next != 0 {
        tick_set(next);
        false
    } else {
        tick_rearm()
    }
}

/// The tick's value after one more add: 0 on the add that ends the interval, which must then
/// call [`tick_rearm`]; otherwise the caller stores it with [`tick_set`]. Not 0 once the
/// thread's hints are torn down (loom only), so no add probes then.
#[inline(always)]
pub(super) fn tick_next() -> u32 {
    with_thread_hints(|l| l.tick.get().wrapping_add(TICK_STEP)).unwrap_or(1)
}

/// Stores the tick [`tick_next`] returned.
#[inline(always)]
pub(super) fn tick_set(next: u32) {
    let _ = with_thread_hints(|l| l.tick.set(next));
}

/// Ends the interval [`tick_next`] found ended: draws the next; true, so the add probes (false
/// at the end of a fresh thread's first [`FRESH_ADDS`], and once the thread's hints are torn
/// down).
#[cold]
#[inline(never)]
pub(super) fn tick_rearm() -> bool {
    with_thread_hints(rearm).unwrap_or(false)
}

/// Sets the tick to wrap after a random count of adds in `SAMPLE / 2 .. 3 * SAMPLE / 2`,
/// clears the filter of counters seen striped ([`strayed`]), and sets the `skip` flag ([`path`])
/// if the memo holds nothing (dropping the hot entry, whose counter the memo no longer holds), or
/// the hot entry's counter only and the filter was empty, else clears it; returns true for
/// [`tick`]. A thread that strayed or learned this interval keeps reading after its adds for the
/// next: two striped counters that share its memo slot evict each other, so the memo may hold
/// one of them only at the interval's end, and a skip would send the other's adds to `base`
/// (blind) until a probe landed on it.
///
/// The first call on a thread (its seed still [`SEED`]) ends its first [`FRESH_ADDS`] adds: the
/// same, but it returns false (no probe), so a fresh thread's first probe comes
/// `FRESH_ADDS + SAMPLE / 2` to `FRESH_ADDS + 3 * SAMPLE / 2` adds after it starts. (The seed
/// comes back to `SEED` after 2^32 draws: that interval then ends with no probe.)
///
/// The draw hashes a per-thread Weyl sequence with the address of the thread's hint words, so
/// each thread draws its own gaps: two threads that start together on one counter would
/// otherwise probe at the same adds, each watching the line while the other watches too, and
/// see no writes.
#[inline(always)]
fn rearm(l: &ThreadHints) -> bool {
    let fresh = l.seed.get() == SEED;
    let seed = l.seed.get().wrapping_add(SEED_STEP);
    l.seed.set(seed);
    let mut x = seed ^ (l as *const ThreadHints as usize >> 4) as u32;
    x = (x ^ x >> 16).wrapping_mul(0x7feb_352d);
    x = (x ^ x >> 15).wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    let adds = SAMPLE / 2 + (x & (SAMPLE - 1));
    l.tick.set(adds.wrapping_mul(TICK_STEP).wrapping_neg());
    let strayed = l.seen.iter().any(|w| w.get() != 0);
    l.seen.iter().for_each(|w| w.set(0));
    let key = l.hot_key.get();
    let mut held = l.memo.iter().filter(|slot| slot[0].get() != 0);
    match held.next() {
        None => {
            l.hot_key.set(0);
            l.skip.set(true);
        }
        Some(slot) => l
            .skip
            .set(!strayed && slot[0].get() == key && held.next().is_none()),
    }
    !fresh || SAMPLE == 1
}

/// Whether another thread writes `a` or `b` within [`PROBE_LOADS`] rounds, given that they held
/// `a_seen` and `b_seen` (what this thread last wrote or read there).
pub(super) fn others_write(a: &AtomicU64, a_seen: u64, b: &AtomicU64, b_seen: u64) -> bool {
    for _ in 0..PROBE_LOADS {
        // Relaxed: a change is a hint for the contention score; nothing is read through it.
        // `black_box`: without it the compiler may fold the repeated relaxed loads into one,
        // and the window shrinks to nothing.
        let (a_now, b_now) = (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed));
        if black_box(a_now) != a_seen || black_box(b_now) != b_seen {
            return true;
        }
    }
    false
}

/// A score of the last probes: `(probes, hits)` within the current window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) struct Score {
    pub(super) probes: u32,
    pub(super) hits: u32,
}

impl Score {
    /// Bits each field takes when packed (both stay at most [`WINDOW`]).
    pub(super) const BITS: u32 = 5;

    /// Records one probe. Returns the new score and whether the counter should adapt now.
    pub(super) fn record(self, hit: bool) -> (Score, bool) {
        let hits = self.hits + u32::from(hit);
        if hits >= HITS {
            return (Score::default(), true);
        }
        let probes = self.probes + 1;
        if probes >= WINDOW {
            return (Score::default(), false);
        }
        (Score { probes, hits }, false)
    }

    /// The score in `2 * BITS` bits.
    pub(super) fn pack(self) -> u64 {
        u64::from(self.probes) | u64::from(self.hits) << Self::BITS
    }

    /// The score packed by [`pack`](Score::pack) in the low bits of `bits`.
    pub(super) fn unpack(bits: u64) -> Score {
        let mask = (1 << Self::BITS) - 1;
        Score {
            probes: (bits & mask) as u32,
            hits: (bits >> Self::BITS & mask) as u32,
        }
    }
}

const _: () = assert!(WINDOW < 1 << Score::BITS && HITS <= WINDOW && SAMPLE.is_power_of_two());

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn hits_within_a_window_adapt_and_a_quiet_window_starts_again() {
        let mut s = Score::default();
        for _ in 0..HITS - 1 {
            let (next, adapt) = s.record(true);
            assert!(!adapt);
            s = next;
        }
        assert!(s.record(true).1, "the HITS-th hit adapts");
        // Fewer hits than HITS in a whole window: the score starts again.
        let mut s = Score::default();
        for i in 0..WINDOW {
            let (next, adapt) = s.record(i < HITS - 1);
            assert!(!adapt);
            s = next;
        }
        assert_eq!(s, Score::default());
        assert_eq!(
            Score::unpack(Score { probes: 7, hits: 3 }.pack()),
            Score { probes: 7, hits: 3 }
        );
    }

    /// The gaps between this thread's next `probes` probes, in adds.
    fn gaps(probes: usize) -> Vec<u32> {
        while !tick() {}
        (0..probes)
            .map(|_| (1..).find(|_| tick()).unwrap())
            .collect()
    }

    #[test]
    #[cfg_attr(miri, ignore)] // SAMPLE is 1 under Miri
    fn one_add_in_sample_probes_on_average_at_random_gaps() {
        let gaps = gaps(1000);
        assert!(gaps
            .iter()
            .all(|g| (SAMPLE / 2..SAMPLE / 2 * 3).contains(g)));
        let mean = gaps.iter().sum::<u32>() / 1000;
        assert!(
            (SAMPLE * 9 / 10..SAMPLE * 11 / 10).contains(&mean),
            "mean gap {mean}"
        );
        let mut distinct = gaps.clone();
        distinct.sort_unstable();
        distinct.dedup();
        // 1000 draws from 4096 values: about 887 distinct ones.
        assert!(
            distinct.len() > 800,
            "{} distinct gaps in 1000",
            distinct.len()
        );
    }

    #[test]
    #[cfg_attr(miri, ignore)] // SAMPLE is 1 under Miri
    fn a_period_that_divides_sample_has_every_place_probed() {
        for period in [2u32, 8, 64] {
            let mut place = 0;
            let mut seen = vec![0u32; period as usize];
            for g in gaps(64 * period as usize) {
                place = (place + g) % period;
                seen[place as usize] += 1;
            }
            assert!(seen.iter().all(|&n| n > 0), "period {period}: {seen:?}");
        }
    }

    #[test]
    #[cfg(miri)]
    fn under_miri_every_add_probes() {
        assert!((0..10).all(|_| tick()));
    }

    #[test]
    fn the_filter_sees_a_strayed_counter_until_the_interval_ends() {
        // On a fresh thread, whose first look at its hints (at the end of its first
        // `FRESH_ADDS`) clears the filter as an interval's end does, without a probe (where
        // not every add probes).
        std::thread::spawn(|| {
            let (a, b) = (0x4_0000usize, 0x4_0010usize);
            assert_ne!(seen_bit(a), seen_bit(b), "neighbours: bits of their own");
            assert_eq!(
                (path(a), path(b)),
                (Path::Unread, Path::Unread),
                "fresh: not blind"
            );
            for probes in [false, true] {
                strayed(a);
                assert_eq!((path(a), path(b)), (Path::Seen, Path::Unread));
                assert_eq!(with_thread_hints(rearm), Some(probes || SAMPLE == 1));
                assert_eq!(
                    path(a),
                    Path::Blind,
                    "cleared when the interval ends; nothing remembered: blind"
                );
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_fresh_thread_looks_at_its_hints_after_its_first_adds_and_probes_later() {
        // The tick starts at `FIRST_TICK`: the `FRESH_ADDS`-th add ends the fresh adds (no
        // probe, but blind from then on if nothing striped was met), and the first probe comes
        // an interval's draw later.
        std::thread::spawn(|| {
            if SAMPLE == 1 {
                assert!(tick_rearm(), "every add probes, the first too");
                return;
            }
            // Ticks as adds do until one ends the interval: how many adds that took.
            let adds_to_end = || {
                (1..=2 * SAMPLE).find(|_| match tick_next() {
                    0 => true,
                    next => {
                        tick_set(next);
                        false
                    }
                })
            };
            assert!(!skips());
            assert_eq!(
                adds_to_end(),
                Some(FRESH_ADDS),
                "the look ends the fresh adds"
            );
            assert!(!tick_rearm(), "with no probe");
            assert!(skips(), "nothing striped met: blind");
            let first_probe = adds_to_end().expect("an interval ends");
            assert!(
                (SAMPLE / 2..3 * SAMPLE / 2).contains(&first_probe),
                "{first_probe}"
            );
            assert!(tick_rearm(), "a probe");
        })
        .join()
        .unwrap();
    }

    /// What this thread's memo and filter say of the counter at `addr`, past its hot entry.
    fn memo(addr: usize) -> Path {
        path_past_hot(addr)
    }

    /// Whether this thread's hints are blank (no hot entry, and its adds skip the memo and the
    /// filter).
    fn blank() -> bool {
        with_thread_hints(|l| l.skip.get() && l.hot_key.get() == 0).unwrap()
    }

    #[test]
    fn a_thread_whose_memo_holds_its_hot_counter_only_skips_the_memo_for_others() {
        // On a fresh thread, as above. Each step that writes the memo or the filter for another
        // counter must clear the flag, or that counter's adds would skip what the memo holds.
        std::thread::spawn(|| {
            let (a, b, c, d) = (0x9_0000usize, 0x9_0010usize, 0x9_0020usize, 0x9_0030usize);
            let word = AtomicU64::new(0);
            remember(a, 0x5001, 128, &word, 9);
            assert!(!skips(), "not before an interval ends");
            assert_eq!(
                with_thread_hints(rearm),
                Some(SAMPLE == 1),
                "the fresh adds' end: no probe"
            );
            assert!(skips() && path(b) == Path::Blind, "the memo holds `a` only");
            assert_eq!(path(a), Path::Hot(&word), "`a` keeps its hot entry");
            assert_eq!(hot_state(), 0x5001);
            mark(b);
            assert!(!skips(), "a mark clears it");
            assert_eq!(path(b), Path::Remembered(MARK, 0, 0));
            assert!(with_thread_hints(rearm).unwrap());
            assert!(!skips(), "the memo holds `b` too");
            forget(b);
            assert!(with_thread_hints(rearm).unwrap());
            assert!(skips(), "`b` forgotten: `a` only again");
            remember(c, 0x6001, 128, &word, 9);
            assert!(!skips(), "another counter remembered clears it");
            assert_eq!(
                path(a),
                Path::Remembered(0x5001, 128, 9),
                "`a` is read from the memo"
            );
            forget(c);
            assert!(with_thread_hints(rearm).unwrap());
            assert!(!skips(), "`a` is in the memo, but the hot entry was `c`'s");
            remember(a, 0x5001, 128, &word, 9);
            assert!(with_thread_hints(rearm).unwrap());
            assert!(skips());
            remember(a, 0x7001, 256, &word, 9);
            assert!(skips(), "the hot counter remembered again keeps it");
            strayed(d);
            assert!(!skips() && path(d) == Path::Seen, "a stray clears it");
            assert!(with_thread_hints(rearm).unwrap());
            assert!(
                !skips() && path(d) == Path::Unread,
                "`a` only, but the interval had a stray: not for one more interval"
            );
            assert!(with_thread_hints(rearm).unwrap());
            assert!(skips() && path(d) == Path::Blind, "then again");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn hints_are_blank_once_an_interval_ends_with_nothing_remembered() {
        // On a fresh thread: the test harness's may have written its hints in another test.
        std::thread::spawn(|| {
            let (a, b) = (0x9_0000usize, 0x9_0010usize);
            assert!(
                !blank() && path(a) == Path::Unread,
                "a fresh thread reads after its adds"
            );
            assert_eq!(
                with_thread_hints(rearm),
                Some(SAMPLE == 1),
                "the fresh adds' end: no probe"
            );
            assert!(
                blank() && path(a) == Path::Blind,
                "its first interval ended with nothing seen: blank"
            );
            strayed(a);
            assert!(!blank() && path(a) == Path::Seen, "a stray is read");
            assert!(with_thread_hints(rearm).unwrap());
            assert!(
                blank(),
                "the filter cleared and the memo empty: blank again"
            );
            let word = AtomicU64::new(0);
            remember(a, 0x5001, 128, &word, 9);
            mark(b);
            assert!(!blank() && path(a) == Path::Hot(&word) && hot_state() == 0x5001);
            assert_eq!(memo(a), Path::Remembered(0x5001, 128, 9));
            assert!(with_thread_hints(rearm).unwrap());
            assert_eq!(
                (path(a), hot_state(), path(b), memo(a)),
                (
                    Path::Hot(&word),
                    0x5001,
                    Path::Remembered(MARK, 0, 0),
                    Path::Remembered(0x5001, 128, 9),
                ),
                "an interval's end keeps the hot entry and what the memo holds, and reads them"
            );
            forget(a);
            assert!(with_thread_hints(rearm).unwrap());
            assert!(!blank(), "the mark of `b` is still remembered");
            forget(b);
            assert!(with_thread_hints(rearm).unwrap());
            assert!(blank(), "nothing left: blank again");
        })
        .join()
        .unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)] // arithmetic only, and 64 000 set inserts are slow under Miri
    fn counters_in_a_row_have_filter_bits_of_their_own() {
        // Over a thousand runs of 64 counters, at most 50 bits shared in all (this fold shares
        // about 8; `memo_slot`'s fold, bits 7 and up, would share about 500).
        let shared: usize = (0..1000)
            .map(|k| 0x7f00_0000_1000 + 16 * 7 * k)
            .map(|start| {
                let bits: std::collections::BTreeSet<_> =
                    (0..64).map(|i| seen_bit(start + 16 * i)).collect();
                64 - bits.len()
            })
            .sum();
        assert!(shared <= 50, "{shared} bits shared");
    }

    #[test]
    fn the_memo_keys_a_slot_by_the_counter_and_forgets_all_at_once() {
        let (a, b) = (0x1000usize, 0x1010usize);
        assert_ne!(memo_slot(a), memo_slot(b), "neighbours: slots of their own");
        let c = (0x1000..)
            .step_by(16)
            .skip(1)
            .find(|&x| memo_slot(x) == memo_slot(a))
            .unwrap();
        assert_eq!(
            path(a),
            Path::Unread,
            "nothing remembered, first interval: the unread order"
        );
        let word = AtomicU64::new(0);
        remember(a, 0x5001, 128, &word, 9);
        remember(b, 0x6002, 256, &word, 9);
        assert_eq!(remembered(a), (0x5001, 128, 9));
        assert_eq!(path(a), Path::Remembered(0x5001, 128, 9));
        assert_eq!(remembered(b), (0x6002, 256, 9));
        assert_eq!(
            remembered(c),
            (0, 0, 0),
            "same slot, another counter: nothing"
        );
        assert_eq!(path(c), Path::Unread);
        remember(c, 0x7003, 0, &word, 9);
        assert_eq!((remembered(a), remembered(c)), ((0, 0, 0), (0x7003, 0, 9)));
        forget(a); // not `a`'s slot any more: `c` stays
        assert_eq!(remembered(c), (0x7003, 0, 9));
        forget(c);
        assert_eq!(path(c), Path::Unread);
        mark(c);
        assert_eq!(path(c), Path::Remembered(MARK, 0, 0), "marked: read first");
        crate::sync::forget_memo();
        assert_eq!((remembered(b), remembered(c)), ((0, 0, 0), (0, 0, 0)));
        assert_eq!((path(b), path(c)), (Path::Unread, Path::Unread));
        // Counters 8 apart in a `Vec` (128 bytes) have slots of their own, and so do 8 in a row
        // wherever the row starts; 16 in a row have at least 14.
        let slots = |addrs: &mut dyn Iterator<Item = usize>| {
            addrs
                .map(memo_slot)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        assert_eq!(slots(&mut (0..SLOTS).map(|k| 0x8000 + 128 * k)), SLOTS);
        let starts = if cfg!(miri) { 64 } else { 4096 };
        for start in (0x8000..0x8000 + 16 * starts).step_by(16) {
            assert_eq!(slots(&mut (0..8).map(|k| start + 16 * k)), 8, "{start:#x}");
            assert!(
                slots(&mut (0..16).map(|k| start + 16 * k)) >= 14,
                "{start:#x}"
            );
        }
    }
}
