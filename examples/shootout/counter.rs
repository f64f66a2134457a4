//! The counter table: one hot counter bumped by every thread. A shared `AtomicU64` drags its
//! cache line between cores; `thrifty::counter::Counter` stripes over owner-written cells; the
//! thread-local row is the physical upper bound (a plain add, flushed once at the end). The
//! floor row is each thread adding to a word of its own, on a line of its own, by a load and a
//! store: the least any counter pays whose `sum` sees every add. The memory-destination row is
//! the same load and store with the added value read once, which LLVM compiles to one `add` to
//! memory, as it compiles the counter's add to its cell: some x86 cores forward the floor row's
//! store to its next load at once but not this form's, so the two rows can differ severalfold.
//! The `local` handle row looks the thread's cell up once per thread instead of once per add.
//! The second workload bumps two hot counters in turn, 8 apart in one `Vec` (128 bytes: a stride
//! that indexing by address alone would send to one slot of a thread's memo of its cells). The
//! third is a request handler that makes the same 8 adds per request, the first to a counter every
//! thread shares, the other 7 to counters of its own: a repeating sequence, which the counter's
//! sampling for contention must not fall in step with. The fourth is the first with one more
//! thread, idle: it bumped the striped counter twice and holds a cell while the others hammer, as a
//! thread serving another queue would; a thread whose home cell it holds must add beside it. It
//! runs from 2 threads up only: its setup stripes the counter first, which on one thread would time
//! an uncontended striped cell against a fresh `AtomicU64`, a state no single-threaded program
//! reaches (at 2 threads and more the contention stripes the counter anyway). The fifth bumps 16
//! hot counters in turn, side by side in one `Vec`: as many striped counters as a thread's memo of
//! its cells holds (16 slots), where a pair or two of them share a slot, so some adds look their
//! cell up again.

use crate::harness::{Candidate, Harness, Table};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex};
use thrifty::counter::Counter;

#[path = "../common/stripe.rs"]
mod stripe;
use stripe::stripe;
#[path = "../common/local_bound.rs"]
mod local_bound;
use local_bound::local_adds;

/// The baseline of the one-counter workloads: every thread bumps one fresh `AtomicU64`.
fn atomic_incr() -> Candidate {
    let atomic = AtomicU64::new(0);
    Candidate::std("AtomicU64::fetch_add", move |_, ops| {
        for _ in 0..ops {
            atomic.fetch_add(black_box(1), Relaxed);
        }
    })
}

/// Every thread bumps `counter`.
fn counter_incr(counter: Arc<Counter>) -> Candidate {
    Candidate::new("thrifty Counter", move |_, ops| {
        for _ in 0..ops {
            counter.add(black_box(1));
        }
    })
}

pub fn run(h: &mut Harness) {
    let title = "increment hot counters from every thread: one, 2 or 16 in turn, or 1 of a \
                 handler's 8 adds";
    let mut t = h.table("counter", title);
    for threads in t.threads(&[1, 2, 4]) {
        let mutex = Arc::new(Mutex::new(0u64));
        let flushed = Arc::new(AtomicU64::new(0));
        let handled = Arc::new(Counter::new());
        let cells = own(threads, || AtomicU64::new(0));
        let rmw_cells = own(threads, || AtomicU64::new(0));
        t.workload(
            "incr",
            threads,
            vec![
                atomic_incr(),
                Candidate::new("Mutex<u64>", move |_, ops| {
                    for _ in 0..ops {
                        *mutex.lock().unwrap() += black_box(1);
                    }
                }),
                Candidate::new("thread-local, flushed (bound)", move |_, ops| {
                    flushed.fetch_add(local_adds(ops), Relaxed);
                }),
                Candidate::new("own cell, load + store (floor)", move |t, ops| {
                    let cell = &cells[t].0[0];
                    for _ in 0..ops {
                        cell.store(cell.load(Relaxed) + black_box(1), Relaxed);
                    }
                }),
                Candidate::new("own cell, memory-destination add", move |t, ops| {
                    let cell = &rmw_cells[t].0[0];
                    let n = black_box(1);
                    for _ in 0..ops {
                        cell.store(cell.load(Relaxed) + n, Relaxed);
                    }
                }),
                counter_incr(Arc::new(Counter::new())),
                Candidate::new("thrifty Counter::local handle", move |_, ops| {
                    let mut local = handled.local();
                    for _ in 0..ops {
                        local.add(black_box(1));
                    }
                }),
            ],
        );
        handler(&mut t, threads);
        if threads >= 2 {
            idle_owner(&mut t, threads);
        }
        in_turn(&mut t, "incr 2 hot, 8 apart", threads, 9, |i| (i & 1) * 8);
        let held = in_turn(&mut t, "incr 16 hot, in turn", threads, 16, |i| i & 15);
        t.note(format!(
            "  incr 16 hot, in turn, {threads} thread(s): thrifty Counter {} of {} striped",
            held.iter().filter(|c| c.is_striped()).count(),
            held.len()
        ));
    }
}

/// A workload where every thread bumps counters of one `Vec` of `len` in turn, the `i`-th add
/// going to `pick(i)`: the `AtomicU64` and `Counter` candidates; returns the counters, for the
/// table's note.
fn in_turn(
    t: &mut Table<'_>,
    name: &str,
    threads: usize,
    len: usize,
    pick: impl Fn(usize) -> usize + Copy + Send + Sync + 'static,
) -> Arc<Vec<Counter>> {
    let atomics: Arc<Vec<AtomicU64>> = Arc::new((0..len).map(|_| AtomicU64::new(0)).collect());
    let counters: Arc<Vec<Counter>> = Arc::new((0..len).map(|_| Counter::new()).collect());
    let held = Arc::clone(&counters);
    t.workload(
        name,
        threads,
        vec![
            Candidate::std("AtomicU64::fetch_add", move |_, ops| {
                for i in 0..ops as usize {
                    atomics[pick(i)].fetch_add(black_box(1), Relaxed);
                }
            }),
            Candidate::new("thrifty Counter", move |_, ops| {
                for i in 0..ops as usize {
                    counters[pick(i)].add(black_box(1));
                }
            }),
        ],
    );
    held
}

/// Words on lines of their own for each of `threads` threads, each made by `new`.
fn own<T>(threads: usize, new: impl Fn() -> T) -> Arc<Vec<Own<T>>> {
    Arc::new(
        (0..threads)
            .map(|_| Own(std::array::from_fn(|_| new())))
            .collect(),
    )
}

/// Adds per request in the handler workload: one shared, the rest the thread's own.
const ADDS_PER_REQUEST: usize = 8;

/// A thread's own counters in the handler workload, on lines of their own (no false sharing
/// with the next thread's).
#[repr(align(128))]
struct Own<T>([T; ADDS_PER_REQUEST - 1]);

/// The handler workload: `ops` adds per thread, in requests of [`ADDS_PER_REQUEST`].
fn handler(t: &mut Table<'_>, threads: usize) {
    let shared = Arc::new(AtomicU64::new(0));
    let atomics = own(threads, || AtomicU64::new(0));
    let counter = Arc::new(Counter::new());
    let counters = own(threads, Counter::new);
    t.workload(
        "handler, 1 of 8 shared",
        threads,
        vec![
            Candidate::std("AtomicU64::fetch_add", move |t, ops| {
                for _ in 0..ops / ADDS_PER_REQUEST as u64 {
                    shared.fetch_add(black_box(1), Relaxed);
                    atomics[t].0.iter().for_each(|a| {
                        a.fetch_add(black_box(1), Relaxed);
                    });
                }
            }),
            Candidate::new("thrifty Counter", move |t, ops| {
                for _ in 0..ops / ADDS_PER_REQUEST as u64 {
                    counter.add(black_box(1));
                    counters[t].0.iter().for_each(|c| c.add(black_box(1)));
                }
            }),
        ],
    );
}

/// A counter two threads bumped until it striped ([`stripe`]).
pub fn striped_counter() -> Arc<Counter> {
    let counter = Arc::new(Counter::new());
    stripe(&counter);
    counter
}

/// The first workload beside an idle thread that holds a cell of the striped counter; for 2
/// threads and more only (the setup stripes the counter, which one thread alone never would).
fn idle_owner(t: &mut Table<'_>, threads: usize) {
    let counter = striped_counter();
    let (stop, parked) = mpsc::channel::<()>();
    let (ready, bumped) = mpsc::channel::<()>();
    let idle = std::thread::spawn({
        let counter = Arc::clone(&counter);
        move || {
            // Its first add goes to the compact total and shows it the counter striped; the
            // next claims its cell.
            (0..2).for_each(|_| counter.add(1));
            ready.send(()).unwrap();
            // Parked until the workload is done; holds its slot and its cell meanwhile.
            let _ = parked.recv();
        }
    });
    bumped.recv().unwrap();
    t.workload(
        "incr, 1 more thread idle",
        threads,
        vec![atomic_incr(), counter_incr(Arc::clone(&counter))],
    );
    drop(stop);
    idle.join().unwrap();
    t.note(format!(
        "  incr, 1 more thread idle, {threads} thread(s): thrifty Counter {} cells, {} B",
        counter.cells(),
        counter.heap_bytes()
    ));
}
