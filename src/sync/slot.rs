//! The per-thread slot index: "which shard is mine" for pools, counters and maps.
//!
//! Each thread is given a small integer the first time it asks, and keeps it until it exits.
//! Indices come from a registry that hands out the lowest free index and takes it back when the
//! thread exits (the scheme of the `thread_local` crate's id manager), so the indices of live
//! threads stay dense: with `n` threads alive, each holds a distinct index below the largest
//! number of threads ever alive at once. A striped structure with `m` shards masks the index
//! (`slot & (m - 1)`): while no more than `m` threads have been alive at once, live threads
//! never share a shard, however many came and went one after another, which a counter of thread
//! births or a hash of `ThreadId` cannot promise. Past that peak, a thread keeps the index it
//! was given, so the survivors of a crowd may share (slots 0, 8, 16, 24 and 32, left after 33
//! threads, all map to shard 0 of 8) until they exit.
//!
//! Cost: the first call on a thread takes a short lock; every later call is one thread-local
//! read. Thread exit takes the lock once to give the index back, and allocates when the list of
//! free indices grows (by doubling, when more threads have exited at once than ever before:
//! about `log2` of the peak thread count allocations per process, 8 bytes an index).
//!
//! # Under loom
//!
//! A loom build runs this same code: the registry, the claim made on a thread's first call and
//! given back by its destructor, the tokens and the table of live tokens. So loom explores a
//! slot, and the per-slot state behind it (a pool's cache, a counter's cell), passing from an
//! exited thread to the next. What differs, and why:
//! - The shared state ([`Slots`]) is a `loom::lazy_static` (loom's atomics and mutex are not
//!   `const`), made afresh for each execution, and it tracks the tokens of 4 slots
//!   ([`TRACKED_SLOTS`]) rather than 1024.
//! - loom's `thread_local!` takes no `const { }` initialiser. And once a thread's locals are
//!   being destroyed, loom refuses every access to them (it takes them all out before dropping
//!   any), where std's `FAST`, const and without a destructor, stays readable. So under loom a
//!   thread reads `FAST` as "no claim" from the start of its teardown, not only from its
//!   claim's drop: it is without a slot a little earlier, which callers handle in both builds.
//! - A claim reaches [`Slots`] through a share of it (`std::sync::Arc`) instead of a
//!   `&'static`. A loom model drops its lazy statics when the model's closure returns, *before*
//!   it destroys the main thread's locals, so the main thread's claim could not reach them from
//!   its destructor; with the share it gives its slot back like any other thread. Spawned
//!   threads' destructors run in `loom::rt::thread_done`, outside loom's execution borrow and
//!   before the thread is marked terminated, so they lock loom's mutex and store to loom's
//!   atomics like any other code of the thread, and the share keeps the state alive for
//!   whichever thread ends last.
//! - A claim dropped while its thread panics gives nothing back: that is a failed model
//!   unwinding out of loom's scheduler, which drops the threads' locals outside any execution,
//!   where touching a loom object would panic again and abort the test binary.
//! - loom's `JoinHandle::join` returns once the thread's closure has returned, possibly before
//!   its locals are destroyed (std's join on Linux returns after them). So a thread spawned
//!   after a join takes the joined thread's slot in the schedules where the exit came first,
//!   and a fresh one in the others: loom explores both.

use super::hot::{HotWord, HotWords};
use super::{thread_local, AtomicU64, Mutex, Ordering};
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Hands out the lowest free index and takes indices back.
#[derive(Debug)]
pub(crate) struct SlotRegistry {
    ids: Mutex<Ids>,
}

#[derive(Debug)]
struct Ids {
    /// One past the highest index ever handed out.
    next: usize,
    /// Indices below `next` that no thread holds now, lowest on top: a thread start after a
    /// spike of thousands of threads finds the lowest in `O(log n)` under the lock, not by a
    /// scan of them all.
    free: BinaryHeap<Reverse<usize>>,
}

impl SlotRegistry {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            ids: Mutex::new(Ids {
                next: 0,
                free: BinaryHeap::new(),
            }),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            ids: Mutex::new(Ids {
                next: 0,
                free: BinaryHeap::new(),
            }),
        }
    }

    /// Takes the lowest index no live holder has.
    pub(crate) fn acquire(&self) -> usize {
        let mut ids = self.ids.lock();
        match ids.free.pop() {
            Some(Reverse(id)) => id,
            None => {
                ids.next += 1;
                ids.next - 1
            }
        }
    }

    /// Gives `id` back for the next thread.
    pub(crate) fn release(&self, id: usize) {
        self.ids.lock().free.push(Reverse(id));
    }
}

/// Slots below this publish their current claim's token in `Slots::held`; higher slots get no
/// token.
#[cfg(not(loom))]
pub(crate) const TRACKED_SLOTS: usize = 1024;

/// Slots below this publish their current claim's token in `Slots::held` (loom build: a model
/// has at most 5 threads, and every tracked slot is a modelled atomic).
#[cfg(loom)]
pub(crate) const TRACKED_SLOTS: usize = 4;

/// What all claims share: the registry, the live tokens and the token serials.
#[derive(Debug)]
struct Slots {
    /// Hands out the indices.
    registry: SlotRegistry,
    /// `held[slot]`: the token of the claim holding `slot` now, or 0 while it is free.
    held: [AtomicU64; TRACKED_SLOTS],
    /// Serial numbers for tokens; starts at 1 so no token is 0.
    next_serial: AtomicU64,
    /// The tracked slots' hot words (`hot.rs`).
    hot: HotWords,
}

impl Slots {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Self {
            registry: SlotRegistry::new(),
            held: [const { AtomicU64::new(0) }; TRACKED_SLOTS],
            next_serial: AtomicU64::new(1),
            hot: HotWords::new(),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        Self {
            registry: SlotRegistry::new(),
            held: std::array::from_fn(|_| AtomicU64::new(0)),
            next_serial: AtomicU64::new(1),
            hot: HotWords::new(),
        }
    }
}

#[cfg(not(loom))]
static SLOTS: Slots = Slots::new();

#[cfg(loom)]
loom::lazy_static! {
    // A std `Arc`: its count only keeps the state alive for the last claim (see the module
    // doc), it orders nothing the model checks, and loom's would add a scheduling point to
    // every claim.
    static ref SLOTS: std::sync::Arc<Slots> = std::sync::Arc::new(Slots::new());
}

/// Runs `f`, which should make the calling thread's claim, with the registry handing out a slot
/// at or past [`TRACKED_SLOTS`], with no token, as a thread in a crowd of more than
/// `TRACKED_SLOTS` live threads gets; later claims get the lowest free slots again. For loom
/// models of what per-slot state does for a live thread whose liveness cannot be told.
#[cfg(all(loom, test))]
pub(crate) fn claim_untracked<R>(f: impl FnOnce() -> R) -> R {
    let skipped = {
        let mut ids = SLOTS.registry.ids.lock();
        let skipped: Vec<usize> = (ids.next..TRACKED_SLOTS)
            .chain(ids.free.drain().map(|Reverse(id)| id))
            .collect();
        ids.next = ids.next.max(TRACKED_SLOTS);
        skipped
    };
    let r = f();
    SLOTS
        .registry
        .ids
        .lock()
        .free
        .extend(skipped.into_iter().map(Reverse));
    r
}

/// How a claim holds on to [`SLOTS`]: a reference, or under loom a share (see the module doc).
#[cfg(not(loom))]
type SlotsRef = &'static Slots;
#[cfg(loom)]
type SlotsRef = std::sync::Arc<Slots>;

/// A [`SlotsRef`] for a new claim.
#[cfg(not(loom))]
fn slots_ref() -> SlotsRef {
    &SLOTS
}

/// A [`SlotsRef`] for a new claim.
#[cfg(loom)]
fn slots_ref() -> SlotsRef {
    std::sync::Arc::clone(&SLOTS)
}

/// A thread's claim on its index (and the claim's [token](try_thread_token)), given back when
/// the thread's locals are destroyed.
struct Claim {
    /// The index this thread holds.
    slot: usize,
    /// The claim's token, or 0 for an untracked slot.
    token: u64,
    /// The claim's [id](thread_claim_id): its token, or for an untracked slot a number no
    /// other claim has, with [`UNTRACKED_ID`] set.
    id: u64,
    /// Where the index and the token go back to.
    slots: SlotsRef,
}

impl Claim {
    fn new() -> Self {
        let slots = slots_ref();
        let slot = slots.registry.acquire();
        // Relaxed: uniqueness is all a serial needs.
        let serial = slots.next_serial.fetch_add(1, Ordering::Relaxed);
        let (token, id) = match slots.held.get(slot) {
            Some(held) => {
                let token = serial * TRACKED_SLOTS as u64 + slot as u64;
                // Release: pairs with the Acquire load in `token_is_live`.
                held.store(token, Ordering::Release);
                (token, token)
            }
            None => (0, UNTRACKED_ID | serial),
        };
        // A claim is only made from `CLAIM`'s initialiser, on the thread it belongs to.
        let _ = FAST.try_with(|fast| fast.set((slot, token)));
        Claim {
            slot,
            token,
            id,
            slots,
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // A loom model that failed unwinds out of loom's scheduler and drops its threads'
        // locals outside any execution, where loom's objects cannot be touched (a second panic
        // would abort the test binary). The model has failed already: leave them.
        #[cfg(loom)]
        if std::thread::panicking() {
            return;
        }
        // First, so that from here on the hot path falls back to `CLAIM`, which now reports
        // the claim destroyed.
        let _ = FAST.try_with(|fast| fast.set(NO_CLAIM));
        // The counter's memo holds this claim's token beside the cells it names: once the
        // claim is given back, another thread may take those cells over.
        super::hints::forget_memo();
        // Before the thread's locals are freed: no walk of the table reaches its word after.
        self.slots.hot.unregister(self.slot);
        if let Some(held) = self.slots.held.get(self.slot) {
            // Release: pairs with the Acquire load in `token_is_live`: a thread that sees this
            // claim dead also sees everything the thread did while it held it.
            held.store(0, Ordering::Release);
        }
        self.slots.registry.release(self.slot);
    }
}

thread_local! {
    static CLAIM: Claim = Claim::new();
}

#[cfg(not(loom))]
thread_local! {
    /// The live claim's `(slot, token)`, copied out of `CLAIM` for the hot path: a
    /// const-initialised local with no destructor, so reading it checks no lazy-init or
    /// teardown state (the repository's JOURNAL.md has what that saved a striped counter add).
    /// Token 0: no claim yet, a claim without a token, or given back; callers then ask `CLAIM`
    /// itself. Slot `usize::MAX` ([`NO_CLAIM`]): no claim yet, or given back, which is what
    /// [`thread_slot_hint`] relies on.
    static FAST: Cell<(usize, u64)> = const { Cell::new(NO_CLAIM) };
}

#[cfg(loom)]
thread_local! {
    /// As in the normal build, without the `const` initialiser loom's macro does not take.
    static FAST: Cell<(usize, u64)> = Cell::new(NO_CLAIM);
}

/// `FAST` while the thread holds no claim.
const NO_CLAIM: (usize, u64) = (usize::MAX, 0);

/// `FAST`'s value: one thread-local load.
#[cfg(not(loom))]
#[inline(always)]
fn fast() -> (usize, u64) {
    FAST.with(Cell::get)
}

/// `FAST`'s value, or [`NO_CLAIM`] once loom has taken the thread's locals out for teardown
/// (see the module doc).
#[cfg(loom)]
#[inline(always)]
fn fast() -> (usize, u64) {
    FAST.try_with(Cell::get).unwrap_or(NO_CLAIM)
}

/// The calling thread's slot index if it holds a claim, else `usize::MAX` (no claim yet, or
/// given back during teardown): one thread-local load, no branch, no lazy claim.
///
/// For hot paths that index per-slot state with it, where an out-of-range index sends them to a
/// slow path that calls [`try_thread_slot`] (which makes the claim). A claim beyond the
/// [tracked slots](TRACKED_SLOTS) has a slot here too; only "no claim" maps to `usize::MAX`.
#[inline(always)]
pub(crate) fn thread_slot_hint() -> usize {
    fast().0
}

/// The calling thread's slot and its claim token: a nonzero number naming this thread's hold
/// on this slot, never given to another claim. `None` during thread-local teardown, or for a
/// slot at or above [`TRACKED_SLOTS`].
///
/// For per-slot state with a single writer that other threads may take over once the writer
/// is gone: record the token as the owner and ask [`token_is_live`] before taking over.
#[inline]
pub(crate) fn try_thread_token() -> Option<(usize, u64)> {
    let (slot, token) = match fast() {
        (_, 0) => claimed().unwrap_or((0, 0)),
        fast => fast,
    };
    // Built here from a pair in registers: had the two paths met as an `Option`, they would
    // have met in a stack slot on every call.
    (token != 0).then_some((slot, token))
}

/// `CLAIM`'s `(slot, token)`, made now if the thread has none; `None` once it is destroyed. The
/// slow path of the fast readers, taken before the thread's first claim, after it was given
/// back, or for an untracked slot (whose token is 0, so `FAST` never holds it).
#[cold]
#[inline(never)]
fn claimed() -> Option<(usize, u64)> {
    CLAIM.try_with(|claim| (claim.slot, claim.token)).ok()
}

/// The calling thread's live claim token, or 0 (no claim yet, being torn down, or an untracked
/// slot). One thread-local read, never a lazy initialisation: for re-checking a token the caller
/// already holds, which is still this thread's claim exactly when this returns it.
#[inline(always)]
pub(crate) fn thread_token() -> u64 {
    fast().1
}

/// The bit set in the [id](thread_claim_id) of a claim on an untracked slot, and in no token
/// (a token is a serial times [`TRACKED_SLOTS`] plus a slot: far below it).
const UNTRACKED_ID: u64 = 1 << 63;

/// A number naming the calling thread's claim, tracked slot or not, never given to another
/// claim; 0 if it has none (during thread-local teardown). For a tracked slot, its
/// [token](try_thread_token) (one thread-local load); for an untracked one, a number with a bit
/// no token has, which [`token_is_live`] reports as not live. For per-slot state that must
/// tell a new holder of its slot from the last one even where liveness cannot be told.
#[inline]
pub(crate) fn thread_claim_id() -> u64 {
    match fast() {
        (_, 0) => untracked_claim_id(),
        (_, token) => token,
    }
}

/// [`thread_claim_id`]'s slow path: the claim's id from `CLAIM` (made now if the thread has
/// none), 0 once it is destroyed.
#[cold]
#[inline(never)]
fn untracked_claim_id() -> u64 {
    CLAIM.try_with(|claim| claim.id).unwrap_or(0)
}

/// Registers `word`, the calling thread's hot word, under its claim's slot, if it holds a tracked
/// one (making its claim if it has none yet): from now until the claim ends, [`void_hot_words`]
/// reaches it. False, registering nothing, without one (an untracked slot, or during teardown).
pub(crate) fn register_hot_word(word: &HotWord) -> bool {
    CLAIM
        .try_with(|claim| {
            if claim.token == 0 {
                return false;
            }
            claim.slots.hot.register(claim.slot, word);
            true
        })
        .unwrap_or(false)
}

/// Sets every registered hot word whose value `stale` accepts to `to` (under a lock, one load
/// per slot up to the highest ever registered).
pub(crate) fn void_hot_words(stale: impl Fn(u64) -> bool, to: u64) {
    SLOTS.hot.void(stale, to);
}

/// How many free slots (no claim holding them) have a hot word registered: 0, since a claim takes
/// its word out before it gives its slot back.
#[cfg(test)]
pub(crate) fn hot_words_of_free_slots() -> usize {
    SLOTS
        .hot
        .registered(|slot| SLOTS.held[slot].load(Ordering::Acquire) == 0)
}

/// Whether the claim named by `token` still holds its slot. Once false, it stays false, and
/// everything its thread did while holding the claim happens-before the call that saw it false.
///
/// The caller must have learned `token` through a happens-before edge from its holder (read it
/// with Acquire from where the holder stored it with Release); otherwise this load may see a
/// value from before the claim began and report a live claim as ended.
pub(crate) fn token_is_live(token: u64) -> bool {
    let slot = (token % TRACKED_SLOTS as u64) as usize;
    // Acquire: pairs with the Release stores in `Claim::new` and `Claim::drop`.
    SLOTS.held[slot].load(Ordering::Acquire) == token
}

/// The calling thread's slot index: stable for the thread's life and distinct from every other
/// live thread's.
///
/// A thread that asks while its thread-locals are being destroyed (from another local's
/// destructor) has already given its index back and gets 0; callers must tolerate a shared slot
/// anyway, since threads can outnumber shards.
#[inline]
pub(crate) fn thread_slot() -> usize {
    try_thread_slot().unwrap_or(0)
}

/// The calling thread's slot index, or `None` once its thread-locals are being destroyed and
/// the index has been given back (another live thread may hold it by then).
///
/// For callers that own per-slot state exclusively by index and so must never share a slot.
#[inline]
pub(crate) fn try_thread_slot() -> Option<usize> {
    match fast() {
        (_, 0) => claimed().map(|(slot, _)| slot),
        (slot, _) => Some(slot),
    }
}

#[cfg(test)]
#[path = "slot_tests.rs"]
mod slot_tests;
