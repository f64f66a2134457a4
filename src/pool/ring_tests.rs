//! Tests of the ring: order, fullness, wrap-around, drops, a multi-thread stress, and loom
//! models of the races between pushes and pops.

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::Ring;
    use crate::sync::{yield_now, AtomicUsize, Ordering};
    use std::cell::Cell;

    /// The per-slot size `Pool`'s docs quote for the shared store (an object's box and weight).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_slot_of_the_pools_store_takes_24_bytes() {
        assert_eq!(
            std::mem::size_of::<super::super::Slot<(Box<u64>, usize)>>(),
            24
        );
    }

    #[test]
    fn pops_in_push_order_and_gives_back_when_full() {
        let ring = Ring::with_capacity(2);
        assert_eq!(
            (ring.push("a"), ring.push("b"), ring.push("c")),
            (Ok(()), Ok(()), Err("c"))
        );
        assert_eq!(ring.pop(), Some("a"));
        assert_eq!((ring.push("c"), ring.push("d")), (Ok(()), Err("d")));
        assert_eq!(
            [ring.pop(), ring.pop(), ring.pop()],
            [Some("b"), Some("c"), None]
        );
    }

    #[test]
    fn capacity_rounds_up_to_a_power_of_two() {
        let slots = [0, 1, 3, 4, 5, 1000].map(|n| Ring::<u8>::with_capacity(n).capacity());
        assert_eq!(slots, [1, 1, 4, 4, 8, 1024]);
    }

    #[test]
    #[should_panic(expected = "too large")]
    fn an_absurd_capacity_panics_before_allocating() {
        let _ = Ring::<u8>::with_capacity(usize::MAX);
    }

    #[test]
    fn wraps_around_over_many_laps_and_len_tracks() {
        for cap in [1, 2, 4] {
            let ring = Ring::with_capacity(cap);
            let (mut pushed, mut popped) = (0, 0);
            // Batches of 1..=cap leave head and tail at every offset across the wrap.
            for round in 0..100 {
                let batch = round % cap + 1;
                for n in 1..=batch {
                    ring.push(pushed).unwrap();
                    pushed += 1;
                    assert_eq!(ring.len(), n, "cap {cap}");
                }
                if batch == cap {
                    assert_eq!(ring.push(usize::MAX), Err(usize::MAX), "cap {cap}");
                }
                for n in (0..batch).rev() {
                    assert_eq!(ring.pop(), Some(popped), "cap {cap}");
                    popped += 1;
                    assert_eq!(ring.len(), n, "cap {cap}");
                }
                assert_eq!(ring.pop(), None);
            }
        }
        assert_eq!(
            format!("{:?}", Ring::<u8>::with_capacity(3)),
            "Ring { len: 0, capacity: 4 }"
        );
    }

    /// Counts its drops.
    struct Counted<'a>(&'a Cell<usize>);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn drop_drops_what_is_left_exactly_once() {
        let drops = Cell::new(0);
        let ring = Ring::with_capacity(4);
        (0..3).for_each(|_| assert!(ring.push(Counted(&drops)).is_ok()));
        drop(ring.pop()); // head moves off index 0, so the 4 left wrap past the end
        (0..2).for_each(|_| assert!(ring.push(Counted(&drops)).is_ok()));
        drop(ring.push(Counted(&drops))); // full: given back, dropped here
        assert_eq!(drops.get(), 2);
        drop(ring);
        assert_eq!(drops.get(), 2 + 4, "each of the 4 left dropped once");
    }

    #[test]
    fn is_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Ring<Box<u8>>>();
    }

    #[test]
    fn two_producers_two_consumers_lose_and_duplicate_nothing() {
        const EACH: usize = if cfg!(miri) { 200 } else { 50_000 };
        const TOTAL: usize = 2 * EACH;
        let (ring, taken) = (Ring::with_capacity(8), AtomicUsize::new(0));
        let (ring, taken) = (&ring, &taken);
        let mut received: Vec<usize> = std::thread::scope(|s| {
            for p in 0..2 {
                s.spawn(move || {
                    for mut v in p * EACH + 1..=(p + 1) * EACH {
                        while let Err(back) = ring.push(v) {
                            v = back;
                            yield_now();
                        }
                    }
                });
            }
            let consume = move || {
                let (mut got, mut last) = (Vec::new(), [0; 2]);
                // Relaxed: a stop signal; the values travel through the ring.
                while taken.load(Ordering::Relaxed) < TOTAL {
                    let Some(v) = ring.pop() else {
                        yield_now();
                        continue;
                    };
                    let p = (v - 1) / EACH;
                    assert!(v > last[p], "FIFO: {v} after {} from one producer", last[p]);
                    last[p] = v;
                    got.push(v);
                    taken.fetch_add(1, Ordering::Relaxed);
                }
                got
            };
            let consumers = [s.spawn(consume), s.spawn(consume)];
            consumers
                .into_iter()
                .flat_map(|c| c.join().unwrap())
                .collect()
        });
        assert_eq!(received.len(), TOTAL, "count");
        assert_eq!(
            received.iter().sum::<usize>(),
            TOTAL * (TOTAL + 1) / 2,
            "sum"
        );
        received.sort_unstable();
        assert!(received.into_iter().eq(1..=TOTAL), "each item exactly once");
        assert_eq!(ring.pop(), None);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Shaped around a loom limitation: loom's first schedule runs main until it blocks, and if
    //! the threads racing with it have only loaded by then, its DPOR may find no race to reorder
    //! and stop after one execution (tokio-rs/loom#392, #166). So main writes before it waits
    //! where it can, and `model` fails a model that ran once.
    use super::super::Ring;
    use crate::sync::loom_model::{model, thread};
    use crate::sync::Arc;

    type Shared = Arc<Ring<usize>>;

    /// Runs `f` on a new thread with its own handle on `ring`.
    fn spawn<R: 'static>(ring: &Shared, f: fn(&Ring<usize>) -> R) -> thread::JoinHandle<R> {
        let ring = Arc::clone(ring);
        thread::spawn(move || f(&ring))
    }

    /// A ring whose next position is its last index, so the next two pushes wrap.
    fn wrapping_ring(capacity: usize) -> Shared {
        let ring = Arc::new(Ring::with_capacity(capacity));
        for _ in 1..ring.capacity() {
            ring.push(0).unwrap();
            ring.pop().unwrap();
        }
        ring
    }

    /// What `popped` and the ring (drained) hold, sorted.
    fn all(popped: impl IntoIterator<Item = usize>, ring: &Ring<usize>) -> Vec<usize> {
        let mut all: Vec<usize> = popped
            .into_iter()
            .chain(std::iter::from_fn(|| ring.pop()))
            .collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn loom_two_producers_one_consumer() {
        model(|| {
            let ring = wrapping_ring(2);
            let consumer = spawn(&ring, Ring::pop);
            let producer = spawn(&ring, |r| r.push(2).unwrap());
            ring.push(1).unwrap();
            producer.join().unwrap();
            let popped = consumer.join().unwrap();
            assert!(ring.len() <= 2);
            assert_eq!(all(popped, &ring), [1, 2]);
        });
    }

    #[test]
    fn loom_one_producer_two_consumers() {
        model(|| {
            let ring = wrapping_ring(2);
            // Pushed before the race, so at most one consumer can wait on the push in flight:
            // with two threads spinning on a third, loom may switch between the two forever.
            ring.push(1).unwrap();
            let consumers = [spawn(&ring, Ring::pop), spawn(&ring, Ring::pop)];
            ring.push(2).unwrap();
            let popped: Vec<usize> = consumers
                .into_iter()
                .filter_map(|c| c.join().unwrap())
                .collect();
            assert!(
                !popped.contains(&2) || popped.contains(&1),
                "2 popped, 1 left"
            );
            assert_eq!(all(popped, &ring), [1, 2]);
        });
    }

    #[test]
    fn loom_push_races_pop_on_a_full_ring() {
        model(|| {
            let ring = wrapping_ring(1);
            ring.push(1).unwrap();
            let producer = spawn(&ring, |r| r.push(2));
            assert_eq!(ring.pop(), Some(1), "pushed before the race");
            match producer.join().unwrap() {
                Ok(()) => assert_eq!(all([], &ring), [2]),
                Err(back) => assert_eq!((back, ring.pop()), (2, None), "given back and kept"),
            }
        });
    }

    #[test]
    fn loom_push_races_pop_on_an_empty_ring() {
        model(|| {
            let ring = wrapping_ring(1);
            ring.push(0).unwrap(); // one more lap: the slot's stamp has been round once
            ring.pop().unwrap();
            let consumer = spawn(&ring, Ring::pop);
            ring.push(1).unwrap();
            assert_eq!(all(consumer.join().unwrap(), &ring), [1]);
        });
    }

    #[test]
    fn loom_pop_after_a_finished_push_is_not_empty() {
        // Once a push has returned, its value is in the ring even while an earlier push is
        // still writing: the pop waits for that one (the one wait) instead of saying empty.
        model(|| {
            let ring = wrapping_ring(2);
            let first = spawn(&ring, |r| r.push(1).unwrap());
            spawn(&ring, |r| r.push(2).unwrap()).join().unwrap();
            let popped = ring.pop();
            assert!(popped.is_some(), "empty after a finished push");
            first.join().unwrap();
            assert_eq!(all(popped, &ring), [1, 2]);
        });
    }

    #[test]
    fn loom_push_after_a_finished_pop_is_not_full() {
        // The mirror image: once a pop has returned, a push finds room, waiting if an earlier
        // pop is still moving its value out.
        model(|| {
            let ring = wrapping_ring(2);
            ring.push(1).unwrap();
            ring.push(2).unwrap();
            let first = spawn(&ring, Ring::pop);
            let second = spawn(&ring, Ring::pop).join().unwrap();
            assert_eq!(ring.push(3), Ok(()), "full after a finished pop");
            let popped = [first.join().unwrap(), second].map(Option::unwrap);
            assert_eq!(all(popped, &ring), [1, 2, 3]);
        });
    }
}
