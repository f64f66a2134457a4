//! Bounded multi-thread storms on one pool: no object is handed to two holders at once, every
//! handed-out object is reset, nothing is lost (objects made = dropped at the end), and the
//! pool never retains more than its capacity. Counts, never timings.

#![cfg(not(loom))]

#[path = "common/pool_budget.rs"]
mod pool_budget;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use thrifty::pool::{BufferPool, Pool};

const THREADS: usize = 6;
const ROUNDS: usize = if cfg!(miri) { 200 } else { 20_000 };

struct Census {
    made: AtomicUsize,
    dropped: AtomicUsize,
    /// Ids of the objects some thread holds now.
    in_use: Mutex<HashSet<usize>>,
}

struct Obj {
    id: usize,
    data: Vec<u64>,
    census: Arc<Census>,
}

impl Drop for Obj {
    fn drop(&mut self) {
        self.census.dropped.fetch_add(1, SeqCst);
    }
}

fn pool(capacity: usize, reset_on_return: bool) -> (Arc<Pool<Obj>>, Arc<Census>) {
    let census = Arc::new(Census {
        made: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
        in_use: Mutex::new(HashSet::new()),
    });
    let c = census.clone();
    let pool = Pool::builder()
        .capacity(capacity)
        .reset_on_return(reset_on_return)
        .reset(|o: &mut Obj| o.data.clear())
        .build(move || Obj {
            id: c.made.fetch_add(1, SeqCst),
            data: Vec::new(),
            census: c.clone(),
        });
    (Arc::new(pool), census)
}

/// Marks `o` as held; panics if someone else holds it or it is dirty.
fn claim(o: &mut Obj, thread: usize) {
    assert!(o.data.is_empty(), "object {} handed out dirty", o.id);
    let fresh = o.census.in_use.lock().unwrap().insert(o.id);
    assert!(fresh, "object {} handed to two holders", o.id);
    o.data.push(thread as u64);
}

fn release(o: &Obj) {
    assert!(o.census.in_use.lock().unwrap().remove(&o.id));
}

fn storm(capacity: usize, reset_on_return: bool) {
    let (pool, census) = pool(capacity, reset_on_return);
    let (tx, rx) = std::sync::mpsc::sync_channel::<thrifty::pool::PooledOwned<Obj>>(64);
    let rx = Mutex::new(rx);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (pool, tx, rx) = (&pool, tx.clone(), &rx);
            s.spawn(move || {
                let mut held = Vec::new();
                // Visits to the idle arm below; about one in `ROUNDS / 22` trims, twice a
                // thread at any `ROUNDS` (under Miri too).
                let mut idle = 0usize;
                for i in 0..ROUNDS {
                    match (i * 7 + t) % 11 {
                        0..=4 => {
                            let mut o = pool.get();
                            claim(&mut o, t);
                            release(&o);
                        }
                        5 | 6 => {
                            let mut o = pool.get_owned();
                            claim(&mut o, t);
                            held.push(o);
                        }
                        7 => {
                            // Returned by whichever thread receives it.
                            if let Some(o) = held.pop() {
                                release(&o);
                                let _ = tx.try_send(o);
                            }
                        }
                        8 => {
                            if let Ok(o) = rx.lock().unwrap().try_recv() {
                                drop(o);
                            }
                        }
                        9 => {
                            for o in held.drain(..) {
                                release(&o);
                            }
                        }
                        _ => {
                            idle += 1;
                            if idle % (ROUNDS / 22).max(1) == 0 {
                                pool.trim(capacity / 2);
                            }
                        }
                    }
                    // `stats()` sums the store and every cache at slightly different instants,
                    // so objects moving from the store into a cache (at most a cache-full, 9
                    // objects, per thread) can be seen twice mid-storm. The exact bound is
                    // checked below, once the threads are done, against the objects alive.
                    let seen = pool.stats().retained;
                    assert!(
                        seen <= capacity + THREADS * 9,
                        "{seen} retained, capacity {capacity}"
                    );
                }
                for o in held.drain(..) {
                    release(&o);
                }
            });
        }
    });
    drop(tx);
    drop(rx);
    let s = pool.stats();
    assert!(s.retained <= capacity, "{s:?}");
    assert_eq!(s.hits + s.misses, s.returned + s.discarded, "{s:?}");
    assert_eq!(
        census.made.load(SeqCst) - census.dropped.load(SeqCst),
        s.retained
    );
    drop(pool);
    assert_eq!(census.made.load(SeqCst), census.dropped.load(SeqCst));
}

#[test]
fn storm_small_pool() {
    storm(3, false);
}

#[test]
fn storm_large_pool_reset_on_return() {
    storm(64, true);
}

#[test]
fn storm_capacity_zero() {
    storm(0, false);
}

/// A buffer pool's byte budget, asserted on the budget itself: `Stats::retained_bytes` sums
/// every cache and the store, so it sees what the storm's threads cached, not only what this
/// thread can take back; once the threads are done it is exact, and checked against the
/// capacities of the very buffers retained.
#[test]
fn buffer_pool_byte_budget_holds_under_threads() {
    const BUDGET: usize = 16 * 1024;
    const MIN: usize = 512;
    let pool = Arc::new(
        BufferPool::builder()
            .buffer_capacity(MIN)
            .max_buffer_capacity(8192)
            .byte_budget(BUDGET)
            .build(),
    );
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..ROUNDS / 4 {
                    // Up to four at once, so caches stack them and the store fills too, of 1
                    // to 9 KiB: one in nine grows past `max_buffer_capacity` and is dropped,
                    // the rest are worth keeping and together outweigh the budget.
                    let held: Vec<_> = (0..1 + (i + t) % 4)
                        .map(|k| {
                            let mut b = pool.get();
                            assert!(b.is_empty());
                            let len = ((i * 31 + t * 17 + k * 5) % 9 + 1) * 1024;
                            b.reserve_exact(len);
                            b.resize(len, 1);
                            b
                        })
                        .collect();
                    drop(held);
                }
            });
        }
    });
    // No object is moving now: the snapshot is exact.
    let s = pool.stats();
    assert!(s.retained_bytes <= BUDGET, "over the byte budget: {s:?}");
    assert!(s.retained > 0, "{s:?}");
    assert!(s.retained_bytes >= s.retained * MIN, "{s:?}");
    assert_eq!(s.hits + s.misses, s.returned + s.discarded, "{s:?}");

    // The figure is the retained buffers' capacities: `trim` past the count moves every
    // cache's buffers (the exited threads' too) to the store and drops none, and this thread
    // then takes them all out.
    pool.trim(usize::MAX);
    assert_eq!(pool.stats().retained_bytes, s.retained_bytes);
    let held: Vec<_> = std::iter::from_fn(|| pool.try_get()).collect();
    let capacities: Vec<usize> = held.iter().map(|b| b.capacity()).collect();
    assert_eq!(held.len(), s.retained, "{capacities:?}");
    assert_eq!(
        capacities.iter().sum::<usize>(),
        s.retained_bytes,
        "{capacities:?}"
    );
    assert_eq!(pool.stats().retained_bytes, 0);
    drop(held);
    assert_eq!(
        pool.stats().retained_bytes,
        s.retained_bytes,
        "all kept again"
    );

    // Refilled on one thread, buffer by buffer: each return is either kept, counted at its
    // capacity, or discarded and not counted, and the sum stays under the budget.
    pool.clear();
    assert_eq!(pool.stats().retained_bytes, 0);
    let held: Vec<_> = (0..40)
        .map(|i| {
            let mut b = pool.get();
            b.reserve_exact((i * 1536) % 8192);
            b
        })
        .collect();
    let mut kept = 0;
    for b in held {
        let capacity = b.capacity();
        let before = pool.stats();
        drop(b);
        let after = pool.stats();
        if after.retained > before.retained {
            kept += capacity;
        } else {
            assert_eq!(after.discarded, before.discarded + 1, "{after:?}");
        }
        assert_eq!(after.retained_bytes, kept, "{after:?}");
        assert!(kept <= BUDGET, "{after:?}");
    }
    assert!(pool.stats().discarded > 0, "the budget turned some away");
}

/// Producers hand buffers to consumers over channels while another thread clears, trims and
/// puts: tickets (the budget units lent-out buffers keep) are issued, redeemed and revoked all
/// at once, with the revocations closing the gate on threads mid-return. Afterwards the budget
/// counts exactly what is retained: after a `clear`, the pool takes `capacity` values and
/// refuses the next.
#[test]
fn handoffs_racing_clears_keep_the_budget_exact() {
    const CAPACITY: usize = 16;
    const PAIRS: usize = 4;
    const MESSAGES: usize = if cfg!(miri) { 100 } else { 20_000 };
    let pool = Arc::new(BufferPool::builder().capacity(CAPACITY).build());
    pool.prefill(CAPACITY);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::scope(|s| {
        let mut producers = Vec::new();
        for _ in 0..PAIRS {
            let (tx, rx) = std::sync::mpsc::sync_channel(3);
            s.spawn(move || rx.into_iter().for_each(drop));
            let pool = Arc::clone(&pool);
            producers.push(s.spawn(move || {
                for i in 0..MESSAGES {
                    let mut buf = pool.get_owned();
                    buf.push(i as u8);
                    tx.send(buf).unwrap();
                }
            }));
        }
        let (pool, done_flag) = (Arc::clone(&pool), Arc::clone(&done));
        s.spawn(move || {
            let mut round = 0usize;
            while !done_flag.load(SeqCst) {
                match round % 3 {
                    0 => pool.clear(),
                    1 => pool.trim(CAPACITY / 2),
                    _ => drop(pool.try_put(Vec::with_capacity(4096))),
                }
                round += 1;
            }
        });
        for p in producers {
            p.join().unwrap();
        }
        done.store(true, SeqCst);
    });
    let s = pool.stats();
    assert!(s.retained <= CAPACITY, "{s:?}");
    pool_budget::assert_budget_is_exact(&pool, CAPACITY);
}
