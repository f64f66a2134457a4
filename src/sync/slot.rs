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

/// A thread's claim on its index, given back when the thread's locals are destroyed.
#[cfg(not(loom))]
struct Claim(usize);

#[cfg(not(loom))]
impl Drop for Claim {
    fn drop(&mut self) {
        registry().release(self.0);
    }
}

#[cfg(not(loom))]
thread_local! {
    static CLAIM: Claim = Claim(registry().acquire());
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
    CLAIM.try_with(|claim| claim.0).unwrap_or(0)
}

/// The calling thread's slot index, or `None` once its thread-locals are being destroyed and
/// the index has been given back (another live thread may hold it by then).
///
/// For callers that own per-slot state exclusively by index and so must never share a slot.
#[cfg(not(loom))]
#[inline]
pub(crate) fn try_thread_slot() -> Option<usize> {
    CLAIM.try_with(|claim| claim.0).ok()
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
