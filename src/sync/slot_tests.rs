//! Tests of the slot index: the registry's hand-out, distinct and stable slots, and loom models
//! of a slot passing from an exited thread to the next.

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::*;
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
    fn after_a_spike_the_registry_still_hands_out_the_lowest_first() {
        let r = SlotRegistry::new();
        let n = if cfg!(miri) { 500 } else { 10_000 };
        assert!((0..n).all(|k| r.acquire() == k));
        // Given back in a scrambled order (7919 is prime, so this visits every index once).
        (0..n).for_each(|k| r.release(k * 7919 % n));
        assert!((0..n).all(|k| r.acquire() == k), "lowest first, each once");
        assert_eq!(r.acquire(), n);
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

    /// Whether the memo was all zeros in a destructor that ran after the claim's.
    static MEMO_WIPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    struct Late;

    impl Drop for Late {
        fn drop(&mut self) {
            let wiped =
                crate::sync::with_thread_hints(|l| l.memo.iter().flatten().all(|w| w.get() == 0));
            MEMO_WIPED.store(
                wiped == Some(true) && try_thread_token().is_none(),
                Ordering::Relaxed,
            );
        }
    }

    thread_local! {
        static LATE: Late = const { Late };
    }

    #[test]
    fn the_end_of_a_claim_wipes_the_memo() {
        // The counter's memo holds the thread's claim token beside a cell: once the claim is
        // given back, another thread may take that cell over, so an add from a later
        // destructor must not find it remembered.
        std::thread::spawn(|| {
            // Registered before the claim (made below), so dropped after it: destructors run in
            // reverse order of registration on Linux.
            LATE.with(|_| {});
            let (_, token) = try_thread_token().unwrap();
            let _ = crate::sync::with_thread_hints(|l| l.memo[3].iter().for_each(|w| w.set(token)));
        })
        .join()
        .unwrap();
        assert!(
            MEMO_WIPED.load(Ordering::Relaxed),
            "the memo outlived the claim"
        );
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::super::{thread_slot, token_is_live, try_thread_token, SlotRegistry, SLOTS};
    use crate::sync::loom_model::model;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    #[test]
    fn loom_registry_never_hands_one_index_to_two_holders() {
        model(|| {
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
        model(|| {
            // `a` keeps its claim until this thread has made its own, so the two overlap.
            let claimed = Arc::new(AtomicBool::new(false));
            let seen = claimed.clone();
            let a = thread::spawn(move || {
                let slot = thread_slot();
                while !seen.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                slot
            });
            let mine = thread_slot();
            claimed.store(true, Ordering::Release);
            let a = a.join().unwrap();
            assert_ne!(a, mine);
            assert_eq!(thread_slot(), mine, "a thread keeps its slot");
        });
    }

    /// A thread claims a slot and exits; once its claim has ended and its index is back in the
    /// registry (its locals destroyed, which loom may schedule after the join), the next thread
    /// spawned takes the same index under a new token, and `token_is_live` tells the two claims
    /// apart.
    #[test]
    fn loom_the_next_thread_takes_an_exited_threads_slot() {
        model(|| {
            let mine = try_thread_token().unwrap();
            let (slot, old) = thread::spawn(|| try_thread_token().unwrap())
                .join()
                .unwrap();
            assert_ne!(slot, mine.0, "live threads hold distinct slots");
            // The claim ends (token dead) before the index is given back: wait for both.
            while token_is_live(old) || !SLOTS.registry.ids.lock().free.iter().any(|f| f.0 == slot)
            {
                thread::yield_now();
            }
            let (again, new) = thread::spawn(move || {
                let (again, new) = try_thread_token().unwrap();
                assert!(token_is_live(new), "the new claim is live");
                assert!(!token_is_live(old), "the ended claim stays ended");
                (again, new)
            })
            .join()
            .unwrap();
            assert_eq!(again, slot, "the freed index is handed out again");
            assert_ne!(new, old, "a new claim gets a new token");
            assert!(token_is_live(mine.1), "this thread's claim is untouched");
        });
    }

    /// The exit of a thread races the next thread's claim: the new thread gets the freed index
    /// only once the old claim has ended, and a fresh one otherwise; never an index a live
    /// claim holds. loom's join may return before the exited thread's locals are destroyed
    /// (module doc), so both outcomes occur, and the test checks that they did.
    #[test]
    fn loom_an_exit_races_the_next_claim() {
        // Executions where the new thread got the freed index, and where it got a fresh one.
        static REUSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        static FRESH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        model(|| {
            let (slot, _) = thread::spawn(|| try_thread_token().unwrap())
                .join()
                .unwrap();
            let (again, new_live) = thread::spawn(move || {
                let (again, new) = try_thread_token().unwrap();
                // Whatever the exited thread's claim still does, it leaves this one alone: a
                // claim that gave its index back before it ended would end the new claim.
                // (`token_is_live(old)` is no check here: once this thread has claimed the
                // same index, its own token stands there, so it is false whatever happened.)
                (again, token_is_live(new))
            })
            .join()
            .unwrap();
            if again == slot {
                assert!(
                    new_live,
                    "index {slot} handed out while its claim was live: the new claim was ended"
                );
                REUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            } else {
                FRESH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            assert!(again <= 1, "index {again}: a freed index was not reused");
        });
        let seen =
            |n: &std::sync::atomic::AtomicUsize| n.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            seen(&REUSED) > 0 && seen(&FRESH) > 0,
            "reused in {} executions, fresh in {}: loom missed a case",
            seen(&REUSED),
            seen(&FRESH)
        );
    }
}
