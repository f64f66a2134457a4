//! `thrifty::measure`: the per-thread and cached state of the pool and the counter, in bytes,
//! asserted with the crate's own counting allocator.
//!
//! - A pool's spare boxes (one per cache, `pool/spare.rs`: "every full reclaim (`clear`, `trim`,
//!   …) frees it") are freed by `clear` also from the caches of idle and exited threads.
//! - A pool's per-thread memory follows the threads that used it (`Pool`'s Allocation section:
//!   "a cache of 384 bytes (x86-64) … per thread that uses the pool, the first 8 inside the pool
//!   itself …, the others in leaves of 8 (3 KiB)"): nothing else per thread, and all of it freed
//!   with the pool.
//! - A counter's memory is what `heap_bytes` reports, exactly, however many threads touched how
//!   many counters (the counter module's Memory: "the hot entry, the memo, the filter and the
//!   tick are 616 bytes of thread-local words per thread, no heap").
//! - `measure`'s own per-thread counts: what exited threads allocated stays in the totals.
//!
//! The totals are process-wide, so one `#[test]` runs every case in turn.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use thrifty::counter::{Counter, PerCpu};
use thrifty::measure::{self, CountingAlloc};
use thrifty::pool::{Pool, Pooled};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// Threads alive at once: a server's 50 on 2 CPUs.
const CROWD: usize = 50;

#[test]
#[cfg_attr(miri, ignore)] // thousands of pools and counters, 50 threads each
fn per_thread_state_in_bytes() {
    measure_keeps_what_exited_threads_allocated();
    clear_frees_the_spare_boxes_of_idle_and_exited_threads();
    pool_caches_follow_the_threads_that_used_the_pools();
    counters_hold_what_heap_bytes_reports_and_no_more();
    a_recycling_channel_keeps_its_largest_messages_until_it_drops();
}

fn measure_keeps_what_exited_threads_allocated() {
    let before = measure::total_stats();
    let spans: Vec<_> = (0..200)
        .map(|_| {
            std::thread::spawn(|| {
                measure::count(|| {
                    for _ in 0..10 {
                        drop(std::hint::black_box(vec![0u8; 1000]));
                    }
                })
                .1
            })
            .join()
            .unwrap()
        })
        .collect();
    let span = measure::total_stats() - before;
    assert!(spans
        .iter()
        .all(|s| s.allocs == 10 && s.bytes_allocated == 10_000));
    assert!(
        span.allocs >= 2000 && span.bytes_allocated >= 2_000_000,
        "exited threads' allocations missing from the totals: {span}"
    );
}

/// Spawns `n` threads that each run `work` once per phase, between barriers, staying alive
/// between phases; `phase()` runs one phase and returns when every thread is done with it.
struct Crew {
    go: Arc<Barrier>,
    done: Arc<Barrier>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Crew {
    fn new(n: usize, phases: usize, work: impl Fn(usize, usize) + Send + Sync + 'static) -> Self {
        let go = Arc::new(Barrier::new(n + 1));
        let done = Arc::new(Barrier::new(n + 1));
        let work = Arc::new(work);
        let threads = (0..n)
            .map(|t| {
                let (go, done, work) = (go.clone(), done.clone(), work.clone());
                std::thread::spawn(move || {
                    for phase in 0..phases {
                        go.wait();
                        work(t, phase);
                        done.wait();
                    }
                })
            })
            .collect();
        Self { go, done, threads }
    }

    fn phase(&self) {
        self.go.wait();
        self.done.wait();
    }

    fn join(self) {
        self.threads.into_iter().for_each(|t| t.join().unwrap());
    }
}

fn clear_frees_the_spare_boxes_of_idle_and_exited_threads() {
    let pool = Arc::new(Pool::new(|| Vec::<u8>::with_capacity(64)));
    let p = pool.clone();
    // Phase 0: each thread makes its cache. Phase 1: each detaches an object, which leaves its
    // box, empty, in the thread's cache. Then the crew idles (alive) and a second crew exits.
    let crew = Crew::new(CROWD, 3, move |_, phase| match phase {
        0 => drop(p.get()),
        1 => drop(Pooled::into_inner(p.get())),
        _ => {}
    });
    let p = pool.clone();
    let gone = Crew::new(CROWD, 2, move |_, phase| match phase {
        0 => drop(p.get()),
        _ => drop(Pooled::into_inner(p.get())),
    });
    crew.phase();
    gone.phase();
    pool.clear();
    assert_eq!(pool.len(), 0);
    crew.phase();
    gone.phase();
    gone.join();
    assert_eq!(pool.len(), 0, "the detached objects left only boxes");
    let box_bytes = std::mem::size_of::<crossbeam_utils::CachePadded<(Vec<u8>, usize)>>() as u64;
    let ((), freed) = measure::count(|| pool.clear());
    assert_eq!(
        (freed.deallocs, freed.bytes_deallocated),
        (2 * CROWD as u64, 2 * CROWD as u64 * box_bytes),
        "clear did not free the spare box of every idle and exited thread's cache"
    );
    let ((), again) = measure::count(|| pool.clear());
    assert_eq!(again.deallocs, 0);
    crew.phase();
    crew.join();
}

fn pool_caches_follow_the_threads_that_used_the_pools() {
    const POOLS: usize = 1000;
    // Which slots the crew holds: a `PerCpu` value per slot.
    let probe = Arc::new(PerCpu::with_slots(1 << 16, || 0u8));
    let pools: Arc<Vec<Pool<Vec<u8>>>> =
        Arc::new((0..POOLS).map(|_| Pool::new(Vec::new)).collect());
    let (ps, pr) = (pools.clone(), probe.clone());
    // What the crew's threads allocated, net, in their uses of the pools: counted on each
    // thread, so nothing else the process does meanwhile adds to it.
    let used = Arc::new(AtomicI64::new(0));
    let u = used.clone();
    let crew = Crew::new(CROWD, 2, move |_, phase| {
        if phase == 0 {
            pr.with(|v| *v = 1);
            let ((), span) = measure::count(|| ps.iter().for_each(|p| drop(p.get())));
            u.fetch_add(span.net_bytes(), SeqCst);
        }
    });
    crew.phase();
    let mut slot = 0;
    let mut leaves = std::collections::BTreeSet::new();
    probe.for_each(|v| {
        if *v != 0 && slot >= 8 {
            leaves.insert(slot / 8);
        }
        slot += 1;
    });
    // Every pool keeps one empty `Vec` per thread (a box each, whole lines), which `clear`
    // frees, and one leaf per 8 slots beyond the first 8, which it keeps.
    let ((), cleared) = measure::count(|| pools.iter().for_each(|p| p.clear()));
    let kept = used.load(SeqCst) + cleared.net_bytes();
    let leaf_bytes = if cfg!(target_arch = "x86_64") {
        3072
    } else {
        kept as usize / POOLS / leaves.len().max(1)
    };
    assert_eq!(
        kept as usize,
        POOLS * leaves.len() * leaf_bytes,
        "per-thread memory beyond the leaves of the slots used ({} leaves)",
        leaves.len()
    );
    crew.phase();
    crew.join();
    let ((), freed) = measure::count(|| drop(Arc::into_inner(pools).unwrap()));
    assert!(freed.bytes_deallocated as usize >= POOLS * leaves.len() * leaf_bytes);
}

fn counters_hold_what_heap_bytes_reports_and_no_more() {
    const COUNTERS: usize = 2000;
    let counters: Arc<Vec<Counter>> = Arc::new((0..COUNTERS).map(|_| Counter::new()).collect());
    let start = Arc::new(Barrier::new(CROWD));
    let threads: Vec<_> = (0..CROWD)
        .map(|t| {
            let (c, start) = (counters.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                measure::count(|| {
                    let mut x = t as u64 + 1;
                    for _ in 0..50 * COUNTERS {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        c[(x % COUNTERS as u64) as usize].incr();
                        // One counter every thread hammers: it stripes and grows.
                        c[0].incr();
                    }
                })
                .1
            })
        })
        .collect();
    let spans: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let allocated: i64 = spans.iter().map(|s| s.net_bytes()).sum();
    let reported: usize = counters.iter().map(Counter::heap_bytes).sum();
    eprintln!(
        "{} of {COUNTERS} counters striped, the hot one at {} cells; {reported} heap bytes",
        counters.iter().filter(|c| c.is_striped()).count(),
        counters[0].cells()
    );
    assert_eq!(
        allocated as usize, reported,
        "the threads' adds allocated what `heap_bytes` does not report"
    );
    let ((), freed) = measure::count(|| drop(Arc::into_inner(counters).unwrap()));
    assert_eq!(
        freed.bytes_deallocated as usize,
        // The counters' blocks, the `Vec` and the `Arc` around it.
        reported
            + COUNTERS * std::mem::size_of::<Counter>()
            + 2 * std::mem::size_of::<usize>()
            + std::mem::size_of::<Vec<Counter>>()
    );
}

/// The recycling channel's slots keep their values' buffers for later laps: one large message
/// pins its slot's buffer for the channel's life, whatever the traffic after it, and dropping
/// both ends frees it; a receive that gives an outsized buffer up (the ceiling `recycling`'s
/// docs show) frees it at once.
fn a_recycling_channel_keeps_its_largest_messages_until_it_drops() {
    const BIG: usize = 1 << 20;
    let ((), kept) = measure::count(|| {
        let (tx, rx) = thrifty::channel::recycling(4, Vec::<u8>::new);
        let ((), burst) = measure::count(|| {
            tx.send_with(|v| v.resize(BIG, 1)).unwrap();
            rx.recv_with(|v| assert_eq!(v.len(), BIG)).unwrap();
            for _ in 0..1000 {
                tx.send_with(|v| v.push(1)).unwrap();
                rx.recv_with(|v| assert_eq!(v.len(), 1)).unwrap();
            }
        });
        assert!(
            burst.net_bytes() >= BIG as i64,
            "the big message's buffer is kept: {burst}"
        );
        drop((tx, rx));
    });
    assert_eq!(
        kept.net_bytes(),
        0,
        "dropping both ends frees every slot's buffer"
    );
    let (tx, rx) = thrifty::channel::recycling(4, Vec::<u8>::new);
    let ((), capped) = measure::count(|| {
        tx.send_with(|v| v.resize(BIG, 1)).unwrap();
        rx.recv_with(|v| {
            if v.capacity() > 4096 {
                *v = Vec::new();
            }
        })
        .unwrap();
    });
    assert_eq!(
        capped.net_bytes(),
        0,
        "a receive that drops an outsized buffer keeps nothing of it"
    );
}
