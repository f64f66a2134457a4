//! The per-thread slot index: "which shard is mine" for pools, counters and maps.
//!
//! Each thread is given a small integer the first time it asks, and keeps it until it exits.
//! Indices come from a registry that hands out the lowest free index and takes it back when the
//! thread exits (the scheme of the `thread_local` crate's id manager), so the indices of live
//! threads stay dense: with `n` threads alive, each holds a distinct index below the largest
//! number of threads ever alive at once. A striped structure with `m` shards masks the index
//! (`slot & (m - 1)`): up to `m` live threads then never share a shard, however many threads
//! came and went before, which a counter of thread births or a hash of `ThreadId` cannot promise.
//!
//! Cost: the first call on a thread takes a short lock; every later call is one thread-local
//! read. Thread exit takes the lock once to give the index back.

use super::{thread_local, Mutex};

/// Hands out the lowest free index and takes indices back.
#[derive(Debug)]
pub(crate) struct SlotRegistry {
    ids: Mutex<Ids>,
}

#[derive(Debug)]
struct Ids {
    /// One past the highest index ever handed out.
    next: usize,
    /// Indices below `next` that no thread holds now.
    free: Vec<usize>,
}

impl SlotRegistry {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            ids: Mutex::new(Ids {
                next: 0,
                free: Vec::new(),
            }),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            ids: Mutex::new(Ids {
                next: 0,
                free: Vec::new(),
            }),
        }
    }

    /// Takes the lowest index no live holder has.
    pub(crate) fn acquire(&self) -> usize {
        let mut ids = self.ids.lock();
        let lowest = ids
            .free
            .iter()
            .enumerate()
            .min_by_key(|&(_, &id)| id)
            .map(|(at, _)| at);
        match lowest {
            Some(at) => ids.free.swap_remove(at),
            None => {
                ids.next += 1;
                ids.next - 1
            }
        }
    }

    /// Gives `id` back for the next thread.
    pub(crate) fn release(&self, id: usize) {
        self.ids.lock().free.push(id);
    }
}

#[cfg(not(loom))]
static REGISTRY: SlotRegistry = SlotRegistry::new();

#[cfg(not(loom))]
fn registry() -> &'static SlotRegistry {
    &REGISTRY
}

#[cfg(loom)]
loom::lazy_static! {
    static ref REGISTRY: SlotRegistry = SlotRegistry::new();
}

#[cfg(loom)]
fn registry() -> &'static SlotRegistry {
    &REGISTRY
}

/// A thread's claim on its index (and the claim's [token](try_thread_token)), given back when
/// the thread's locals are destroyed.
#[cfg(not(loom))]
struct Claim(usize, u64);

#[cfg(not(loom))]
impl Claim {
    fn new() -> Self {
        let slot = registry().acquire();
        let token = match HELD.get(slot) {
            Some(held) => {
                // Relaxed: uniqueness is all a serial needs.
                let serial = NEXT_SERIAL.fetch_add(1, super::Ordering::Relaxed);
                let token = serial * TRACKED_SLOTS as u64 + slot as u64;
                // Release: pairs with the Acquire load in `token_is_live`.
                held.store(token, super::Ordering::Release);
                token
            }
            None => 0,
        };
        // A claim is only made from `CLAIM`'s initialiser, on the thread it belongs to.
        let _ = FAST.try_with(|fast| fast.set((slot, token)));
        Claim(slot, token)
    }
}

#[cfg(not(loom))]
impl Drop for Claim {
    fn drop(&mut self) {
        // First, so that from here on the hot path falls back to `CLAIM`, which now reports
        // the claim destroyed.
        let _ = FAST.try_with(|fast| fast.set(NO_CLAIM));
        if let Some(held) = HELD.get(self.0) {
            // Release: pairs with the Acquire load in `token_is_live`: a thread that sees this
            // claim dead also sees everything the thread did while it held it.
            held.store(0, super::Ordering::Release);
        }
        registry().release(self.0);
    }
}

#[cfg(not(loom))]
thread_local! {
    static CLAIM: Claim = Claim::new();
    /// The live claim's `(slot, token)`, copied out of `CLAIM` for the hot path: a
    /// const-initialised local with no destructor, so reading it checks no lazy-init or
    /// teardown state (a striped counter add went from 2.2 to 1.6 ns without that check and
    /// the branches around it). Token 0: no claim yet, a claim without a token, or given back;
    /// callers then ask `CLAIM` itself. Slot `usize::MAX` ([`NO_CLAIM`]): no claim yet, or given
    /// back, which is what [`thread_slot_hint`] relies on.
    static FAST: std::cell::Cell<(usize, u64)> = const { std::cell::Cell::new(NO_CLAIM) };
}

/// `FAST` while the thread holds no claim.
#[cfg(not(loom))]
const NO_CLAIM: (usize, u64) = (usize::MAX, 0);

/// The calling thread's slot index if it holds a claim, else `usize::MAX` (no claim yet, or
/// given back during teardown): one thread-local load, no branch, no lazy claim.
///
/// For hot paths that index per-slot state with it, where an out-of-range index sends them to a
/// slow path that calls [`try_thread_slot`] (which makes the claim). A claim beyond `HELD`'s
/// tracked slots has a slot here too; only "no claim" maps to `usize::MAX`.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn thread_slot_hint() -> usize {
    FAST.with(std::cell::Cell::get).0
}

/// Slots below this publish their current claim's token in `HELD`; higher slots get no token.
pub(crate) const TRACKED_SLOTS: usize = 1024;

/// `HELD[slot]`: the token of the claim holding `slot` now, or 0 while it is free.
#[cfg(not(loom))]
static HELD: [super::AtomicU64; TRACKED_SLOTS] =
    [const { super::AtomicU64::new(0) }; TRACKED_SLOTS];

/// Serial numbers for tokens; starts at 1 so no token is 0.
#[cfg(not(loom))]
static NEXT_SERIAL: super::AtomicU64 = super::AtomicU64::new(1);

/// The calling thread's slot and its claim token: a nonzero number naming this thread's hold
/// on this slot, never given to another claim. `None` during thread-local teardown, or for a
/// slot at or above [`TRACKED_SLOTS`].
///
/// For per-slot state with a single writer that other threads may take over once the writer
/// is gone: record the token as the owner and ask [`token_is_live`] before taking over.
#[cfg(not(loom))]
#[inline]
pub(crate) fn try_thread_token() -> Option<(usize, u64)> {
    let (slot, token) = match FAST.with(std::cell::Cell::get) {
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
#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn claimed() -> Option<(usize, u64)> {
    CLAIM.try_with(|claim| (claim.0, claim.1)).ok()
}

/// The calling thread's live claim token, or 0 (no claim yet, being torn down, or an untracked
/// slot). One thread-local read, never a lazy initialisation: for re-checking a token the caller
/// already holds, which is still this thread's claim exactly when this returns it.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn thread_token() -> u64 {
    FAST.with(std::cell::Cell::get).1
}

/// Whether the claim named by `token` still holds its slot. Once false, it stays false, and
/// everything its thread did while holding the claim happens-before the call that saw it false.
///
/// The caller must have learned `token` through a happens-before edge from its holder (read it
/// with Acquire from where the holder stored it with Release); otherwise this load may see a
/// value from before the claim began and report a live claim as ended.
#[cfg(not(loom))]
pub(crate) fn token_is_live(token: u64) -> bool {
    let slot = (token % TRACKED_SLOTS as u64) as usize;
    // Acquire: pairs with the Release stores in `Claim::new` and `Claim::drop`.
    HELD[slot].load(super::Ordering::Acquire) == token
}

/// The calling thread's slot index: stable for the thread's life and distinct from every other
/// live thread's.
///
/// A thread that asks while its thread-locals are being destroyed (from another local's
/// destructor) has already given its index back and gets 0; callers must tolerate a shared slot
/// anyway, since threads can outnumber shards.
#[cfg(not(loom))]
#[inline]
pub(crate) fn thread_slot() -> usize {
    try_thread_slot().unwrap_or(0)
}

/// The calling thread's slot index, or `None` once its thread-locals are being destroyed and
/// the index has been given back (another live thread may hold it by then).
///
/// For callers that own per-slot state exclusively by index and so must never share a slot.
#[cfg(not(loom))]
#[inline]
pub(crate) fn try_thread_slot() -> Option<usize> {
    match FAST.with(std::cell::Cell::get) {
        (_, 0) => claimed().map(|(slot, _)| slot),
        (slot, _) => Some(slot),
    }
}

// Under loom, thread-local destructors run after the model's thread has finished, where no loom
// object may be touched, so indices are not given back: each model thread takes the next one.
// Models have at most a handful of threads, so slots stay distinct and small. The registry's own
// hand-out and give-back are modelled directly in `loom_tests`.
#[cfg(loom)]
loom::lazy_static! {
    static ref NEXT: super::AtomicUsize = super::AtomicUsize::new(0);
}

#[cfg(loom)]
thread_local! {
    static LOOM_SLOT: usize = NEXT.fetch_add(1, super::Ordering::Relaxed);
}

/// The calling thread's slot index (loom build: distinct per model thread, never reused).
#[cfg(loom)]
#[inline]
pub(crate) fn thread_slot() -> usize {
    LOOM_SLOT.with(|slot| *slot)
}

/// The calling thread's slot and token (loom build: slots are never reused, so the token is
/// `slot + 1` and stays live).
#[cfg(loom)]
#[inline]
pub(crate) fn try_thread_token() -> Option<(usize, u64)> {
    LOOM_SLOT.try_with(|slot| (*slot, *slot as u64 + 1)).ok()
}

/// The calling thread's token, or 0 during teardown (loom build: `slot + 1`).
#[cfg(loom)]
#[inline]
pub(crate) fn thread_token() -> u64 {
    LOOM_SLOT.try_with(|slot| *slot as u64 + 1).unwrap_or(0)
}

/// Whether a token's claim still holds its slot (loom build: always, slots are never reused).
#[cfg(loom)]
pub(crate) fn token_is_live(_token: u64) -> bool {
    true
}

/// The calling thread's slot index, or `usize::MAX` during thread-local teardown (loom build).
#[cfg(loom)]
#[inline]
pub(crate) fn thread_slot_hint() -> usize {
    LOOM_SLOT.try_with(|slot| *slot).unwrap_or(usize::MAX)
}

/// The calling thread's slot index, or `None` during thread-local teardown (loom build).
#[cfg(loom)]
#[inline]
pub(crate) fn try_thread_slot() -> Option<usize> {
    LOOM_SLOT.try_with(|slot| *slot).ok()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Barrier;

    #[test]
    fn registry_hands_out_lowest_free_index() {
        let r = SlotRegistry::new();
        assert_eq!((r.acquire(), r.acquire(), r.acquire()), (0, 1, 2));
        r.release(2);
        r.release(0);
        assert_eq!(r.acquire(), 0, "lowest free first");
        assert_eq!(r.acquire(), 2);
        assert_eq!(r.acquire(), 3, "fresh index once none is free");
    }

    #[test]
    fn slot_is_stable_within_a_thread() {
        let first = thread_slot();
        assert!((0..100).all(|_| thread_slot() == first));
    }

    #[test]
    fn live_threads_hold_distinct_slots() {
        const THREADS: usize = 8;
        let barrier = Barrier::new(THREADS);
        let slots: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        let slot = thread_slot();
                        // Hold every thread alive until all have a slot, so none is recycled.
                        barrier.wait();
                        slot
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let distinct: HashSet<_> = slots.iter().collect();
        assert_eq!(distinct.len(), THREADS, "slots {slots:?}");
    }

    #[test]
    fn exited_threads_give_their_slot_back() {
        // Sequential threads: each exits before the next starts, so the index is reused and
        // never climbs with the number of threads created.
        let slots: Vec<usize> = (0..50)
            .map(|_| std::thread::spawn(thread_slot).join().unwrap())
            .collect();
        let max = *slots.iter().max().unwrap();
        // Other tests in this binary run threads concurrently, so allow for them.
        assert!(max < 40, "slots climbed to {max}: indices are not recycled");
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::{thread_slot, SlotRegistry};
    use loom::sync::Arc;
    use loom::thread;

    #[test]
    fn loom_registry_never_hands_one_index_to_two_holders() {
        loom::model(|| {
            let registry = Arc::new(SlotRegistry::new());
            let held = registry.acquire();
            let spawn = |registry: Arc<SlotRegistry>| {
                thread::spawn(move || {
                    let id = registry.acquire();
                    registry.release(id);
                    id
                })
            };
            let a = spawn(registry.clone());
            let b = spawn(registry.clone());
            let (a, b) = (a.join().unwrap(), b.join().unwrap());
            assert_ne!(a, held, "index {held} is still held");
            assert_ne!(b, held, "index {held} is still held");
            // a and b may share an index only if one gave it back before the other took it;
            // either way, freed indices are reused, so nothing climbs past 2.
            assert!(a <= 2 && b <= 2, "indices not reused: {a} {b}");
            registry.release(held);
            assert_eq!(registry.acquire(), 0, "the lowest free index comes first");
        });
    }

    #[test]
    fn loom_live_threads_get_distinct_slots() {
        loom::model(|| {
            let a = thread::spawn(thread_slot);
            let mine = thread_slot();
            let a = a.join().unwrap();
            assert_ne!(a, mine);
            assert_eq!(thread_slot(), mine, "a thread keeps its slot");
        });
    }
}
