//! A bounded lock-free multi-producer multi-consumer FIFO ring, for the pool's shared store.
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue
//! (<https://www.1024cores.net/home/lock-free-algorithms/queues/bounded-mpmc-queue>), in the
//! shape crossbeam's `ArrayQueue` gives it (`crossbeam-rs/crossbeam
//! crossbeam-queue/src/array_queue.rs`): a stamp per slot says which position the slot awaits,
//! and a push or pop claims a position with one CAS on `tail` or `head`. The slots are allocated
//! once, by [`Ring::with_capacity`]; `push` and `pop` never allocate and take no lock.
//! Uncontended, each costs two loads (its index, the slot's stamp), one CAS and one store.
//! `head` and `tail` have a cache line each; the slots are not padded, so neighbours share one.
//!
//! # How it works
//!
//! `head` and `tail` are *positions* `lap | index`: the index (`< cap`) in the low bits, the lap
//! in multiples of `one_lap = 2 * cap` above them. Position `p` lives in slot `p & (cap - 1)`;
//! after the last index comes index 0 of the next lap. A lap is twice the capacity, as in
//! crossbeam, so that a slot's "full" stamp `p + 1` never equals the "empty" stamp it gets one
//! lap later, `p + one_lap`; with a lap of `cap` they would coincide for `cap = 1` (Vyukov's
//! original needs at least 2 slots). A slot's `stamp` says what the slot awaits:
//!
//! | stamp         | the slot is                              | next to act              |
//! | ------------- | ---------------------------------------- | ------------------------ |
//! | `p`           | empty, awaiting the push of position `p` | the push that claims `p` |
//! | `p + 1`       | full, holding the value pushed at `p`    | the pop that claims `p`  |
//! | `p + one_lap` | empty, awaiting the push one lap later   | the next lap's push      |
//!
//! A push reads `tail = p`; if `p`'s slot has stamp `p`, it claims `p` by a CAS of `tail` to the
//! next position, writes the value and publishes stamp `p + 1`. A pop reads `head = p`; on stamp
//! `p + 1` it claims `p` by a CAS of `head`, moves the value out and publishes `p + one_lap`.
//! **Invariant:** between its CAS and its stamp store, a thread alone owns the slot's value; every
//! `unsafe` block below rests on it. Memory safety needs only that invariant: the full/empty
//! checks below only choose between giving up and retrying.
//!
//! # Full or empty, and the one wait
//!
//! A stamp *behind* the expected one is ambiguous. A push that finds its slot still on the
//! previous lap sees either a full ring or a pop that has claimed that slot (won the `head` CAS)
//! and not yet published; a pop that finds its slot not yet filled sees either an empty ring or a
//! push that has claimed it and not yet published. Both re-read the *other* index: `head +
//! one_lap == tail` is full (`push` gives the value back), `tail == head` is empty (`pop` returns
//! `None`). Otherwise that other thread is between its CAS and its stamp store *on this slot*,
//! and the caller spins until it publishes: **the one wait**. It lasts a move of one `T`, unless
//! the other thread is descheduled in that window; if it never resumes (a signal handler that
//! interrupted it, a higher-priority thread on its core), the caller spins for as long: strictly,
//! the ring is lock-free only in that it takes no lock (as crossbeam's `ArrayQueue`). Every other
//! retry follows a lost race and re-reads an index that has already moved on.
//!
//! # Orderings
//! The stamp publishes the value: its Release store follows the write (push) or the move out
//! (pop), and the Acquire load that precedes any access to the value pairs with it. `head` and
//! `tail` carry only claims. Their CASes are SeqCst so that they and the SeqCst fence before a
//! full/empty re-read are in one total order: the re-read sees every claim on the other index
//! that precedes the fence, which is crossbeam's argument that "full" and "empty" are
//! linearizable answers. loom models the fence but treats SeqCst CASes as AcqRel, so the loom
//! tests assert "not full" and "not empty" only where happens-before alone decides them (a push
//! after a finished pop, a pop after a finished push); elsewhere they accept either answer and
//! check that nothing is lost or duplicated.

use crate::sync::{fence, spin_loop, AtomicUsize, CachePadded, Ordering, UnsafeCell};
use std::fmt;
use std::mem::MaybeUninit;

/// One slot of the ring.
struct Slot<T> {
    /// The position this slot awaits, and whether it is full (see the module doc's table).
    stamp: AtomicUsize,
    /// Initialised while the stamp says full, and while the pop that claimed it moves it out.
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded lock-free MPMC FIFO queue (Vyukov's); see the module doc.
pub(super) struct Ring<T> {
    /// The next position to pop (`lap | index`). Padded, like `tail`, so that pops and pushes
    /// write different cache lines.
    head: CachePadded<AtomicUsize>,
    /// The next position to push (`lap | index`).
    tail: CachePadded<AtomicUsize>,
    /// `2 * capacity`: what a position adds per lap (a power of two).
    one_lap: usize,
    /// `capacity` slots, a power of two.
    slots: Box<[Slot<T>]>,
}

impl<T> Ring<T> {
    /// `capacity` slots rounded up to a power of two; at least 1 (capacity 0 gives 1 slot).
    ///
    /// # Panics
    /// If the rounded capacity exceeds `isize::MAX / 4` (the positions' lap arithmetic needs the
    /// headroom; the allocation would fail first on any real machine).
    pub(super) fn with_capacity(capacity: usize) -> Self {
        let cap = match capacity.max(1).checked_next_power_of_two() {
            Some(cap) if cap <= isize::MAX as usize / 4 => cap,
            _ => panic!("ring capacity {capacity} is too large"),
        };
        let slots = (0..cap)
            .map(|i| Slot {
                // Slot `i` first awaits position `i` (lap 0).
                stamp: AtomicUsize::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Self {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            one_lap: 2 * cap,
            slots,
        }
    }

    /// The number of slots.
    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The slot position `pos` lives in.
    fn slot(&self, pos: usize) -> &Slot<T> {
        // The lap is a multiple of `2 * cap`, so the low bits are the index.
        &self.slots[pos & (self.capacity() - 1)]
    }

    /// The position after `pos`: the next index, or index 0 of the next lap.
    fn next(&self, pos: usize) -> usize {
        if (pos & (self.one_lap - 1)) + 1 < self.capacity() {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Appends at the tail; gives `value` back if the ring is full. Never blocks (but for the one
    /// wait of the module doc), never allocates.
    pub(super) fn push(&self, value: T) -> Result<(), T> {
        // Relaxed: a guess at the position, checked by the stamp and the CAS below.
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(tail);
            // Acquire: pairs with the Release stamp store in `pop`, so the previous lap's move
            // out happens before our write.
            let stamp = slot.stamp.load(Ordering::Acquire);
            // A slot's stamp and the positions that reach it differ by about a lap, at most
            // `isize::MAX / 2` (see `with_capacity`), so the wrapped difference has the right sign.
            let ahead = stamp.wrapping_sub(tail) as isize;
            if ahead == 0 {
                // Empty and awaiting `tail`: claim it. SeqCst: the total order with the fence in
                // `pop`'s empty check (module doc). Relaxed on failure: we only retry.
                let next = self.next(tail);
                match self.tail.compare_exchange_weak(
                    tail,
                    next,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: our CAS claimed `tail` while the stamp said empty: we alone
                        // own the slot's value until the stamp store below, and it holds none
                        // (the last lap's pop moved it out before the stamp we Acquired).
                        slot.value
                            .with_mut(|v| unsafe { v.write(MaybeUninit::new(value)) });
                        // Release: pairs with the Acquire stamp load in `pop`, which then sees
                        // the value written above.
                        slot.stamp.store(tail.wrapping_add(1), Ordering::Release);
                        return Ok(());
                    }
                    Err(now) => tail = now,
                }
            } else if ahead < 0 {
                // Still on the previous lap: full, or a pop is moving the value out.
                // SeqCst: orders this re-read after every `head` CAS before it (module doc).
                fence(Ordering::SeqCst);
                // Relaxed: the fence above gives the ordering; nothing is read through it.
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    return Err(value);
                }
                // The one wait: a pop claimed this slot and has not published yet.
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another push claimed `tail` first.
                tail = self.tail.load(Ordering::Relaxed);
            }
            spin_loop();
        }
    }

    /// Takes from the head (oldest first); `None` if empty. Never blocks (but for the one wait
    /// of the module doc), never allocates.
    pub(super) fn pop(&self) -> Option<T> {
        // Relaxed: a guess at the position, checked by the stamp and the CAS below.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(head);
            // Acquire: pairs with the Release stamp store in `push`, so we see its value.
            let stamp = slot.stamp.load(Ordering::Acquire);
            // Signed as in `push`.
            let ahead = stamp.wrapping_sub(head.wrapping_add(1)) as isize;
            if ahead == 0 {
                // Full with the value pushed at `head`: claim it. SeqCst: the total order with
                // the fence in `push`'s full check (module doc). Relaxed on failure: we retry.
                let next = self.next(head);
                match self.head.compare_exchange_weak(
                    head,
                    next,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: our CAS claimed `head` while the stamp said full: we alone
                        // own the initialised value until the stamp store below.
                        let value = slot.value.with(|v| unsafe { (*v).assume_init_read() });
                        // Release: pairs with the Acquire stamp load in `push`, so our move out
                        // happens before the next lap's write.
                        let empty = head.wrapping_add(self.one_lap);
                        slot.stamp.store(empty, Ordering::Release);
                        return Some(value);
                    }
                    Err(now) => head = now,
                }
            } else if ahead < 0 {
                // Not filled for `head` yet: empty, or a push is writing it.
                // SeqCst: orders this re-read after every `tail` CAS before it (module doc).
                fence(Ordering::SeqCst);
                // Relaxed: the fence above gives the ordering; nothing is read through it.
                let tail = self.tail.load(Ordering::Relaxed);
                if tail == head {
                    return None;
                }
                // The one wait: a push claimed this slot and has not published yet.
                head = self.head.load(Ordering::Relaxed);
            } else {
                // Another pop claimed `head` first.
                head = self.head.load(Ordering::Relaxed);
            }
            spin_loop();
        }
    }

    /// Items in the ring now: a snapshot (tail - head), never more than the capacity.
    pub(super) fn len(&self) -> usize {
        loop {
            // Acquire (all three): pairs with the Release half of the index CASes, so a `tail`
            // we read comes after the `head` that made room for it, and a `head` after the
            // `tail` it follows; reading `tail` twice around `head` makes the pair one instant's.
            let tail = self.tail.load(Ordering::Acquire);
            let head = self.head.load(Ordering::Acquire);
            if self.tail.load(Ordering::Acquire) == tail {
                let (h, t) = (head & (self.one_lap - 1), tail & (self.one_lap - 1));
                return match h.cmp(&t) {
                    std::cmp::Ordering::Less => t - h,
                    std::cmp::Ordering::Greater => self.capacity() - h + t,
                    std::cmp::Ordering::Equal if head == tail => 0,
                    std::cmp::Ordering::Equal => self.capacity(),
                };
            }
            spin_loop();
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Relaxed: `&mut self` means every push and pop has returned, and whatever handed us
        // the ring (a join, an `Arc` drop) ordered them before us.
        let tail = self.tail.load(Ordering::Relaxed);
        let mut pos = self.head.load(Ordering::Relaxed);
        while pos != tail {
            // SAFETY: no operation is in flight, so every position in `head..tail` was
            // published full and never popped: its slot holds an initialised value, dropped
            // once here as `pos` visits each position once.
            self.slot(pos)
                .value
                .with_mut(|v| unsafe { (*v).assume_init_drop() });
            pos = self.next(pos);
        }
    }
}

// SAFETY: a `Ring<T>` owns the `T`s in it; sending the ring sends them, which `T: Send` allows.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: through `&Ring<T>` a thread moves `T`s in and out, never lends a `&T`, and touches a
// slot's value only while it alone owns it (the module doc's invariant); so sharing the ring
// only moves `T`s between threads, which `T: Send` allows.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Ring;
    use crate::sync::{yield_now, AtomicUsize, Ordering};
    use std::cell::Cell;

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
    //! where it can, and [`model`] fails a model that ran once.
    use super::Ring;
    use crate::sync::{plain::RelaxedUsize, Arc};
    use loom::{model as explore, thread};

    /// Runs `f` in `loom::model`, and fails if loom explored only one execution.
    fn model(f: impl Fn() + Send + Sync + 'static) {
        let runs: &'static RelaxedUsize = Box::leak(Box::new(RelaxedUsize::new()));
        explore(move || {
            runs.increment();
            f();
        });
        assert!(
            runs.get() > 1,
            "loom explored one execution: a vacuous model"
        );
    }

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
