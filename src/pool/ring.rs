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
//! retry follows a lost race and re-reads an index that has already moved on, after a pause that
//! doubles as the caller keeps losing (`sync::contention_pause`, as the channel's ring does), so
//! threads that meet on an index do not keep its line moving between their cores.
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

use crate::drop_each::drop_each;
use crate::sync::{
    contention_pause, fence, spin_loop, AtomicUsize, CachePadded, Ordering, UnsafeCell,
};
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
        let mut step = 0;
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
                    Err(now) => {
                        tail = now;
                        contention_pause(&mut step);
                    }
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
                spin_loop();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another push claimed `tail` first.
                contention_pause(&mut step);
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes from the head (oldest first); `None` if empty. Never blocks (but for the one wait
    /// of the module doc), never allocates.
    pub(super) fn pop(&self) -> Option<T> {
        // Relaxed: a guess at the position, checked by the stamp and the CAS below.
        let mut head = self.head.load(Ordering::Relaxed);
        let mut step = 0;
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
                    Err(now) => {
                        head = now;
                        contention_pause(&mut step);
                    }
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
                spin_loop();
                head = self.head.load(Ordering::Relaxed);
            } else {
                // Another pop claimed `head` first.
                contention_pause(&mut step);
                head = self.head.load(Ordering::Relaxed);
            }
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
        // Past a value whose `Drop` panics, as `Vec` goes on (`drop_each`).
        drop_each(std::iter::from_fn(|| {
            if pos == tail {
                return None;
            }
            // SAFETY: no operation is in flight, so every position in `head..tail` was
            // published full and never popped: its slot holds an initialised value, read out
            // once here as `pos` visits each position once.
            let value = self
                .slot(pos)
                .value
                .with_mut(|v| unsafe { (*v).assume_init_read() });
            pos = self.next(pos);
            Some(value)
        }));
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

#[cfg(test)]
#[path = "ring_tests.rs"]
mod ring_tests;
