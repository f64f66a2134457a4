//! The CowMap table: lookups in a read-mostly map of 1000 `u64` entries (the same hasher for
//! every candidate: thrifty's default, `FastRandomState`), with no writer and with a background
//! thread overwriting one entry in every candidate's map each millisecond (one thread more than
//! the table's thread count: at 2 threads, 3 threads share 2 cores, and the row is marked
//! `(over)`). `RwLock<HashMap>` is the std alternative; `ArcSwap` with its per-thread `Cache` is
//! the strongest copy-on-write peer; thrifty's `read` takes a hazard slot per lookup, its
//! `Reader` handle checks one pointer. The `Cache` and the `Reader` are made by each measuring
//! thread at the start of each round, inside the timed span: one per thread per round,
//! amortised over the round's lookups.

use crate::harness::{Candidate, Harness};
use arc_swap::{ArcSwap, Cache};
use std::collections::HashMap as StdHashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use thrifty::map::{CowMap, FastRandomState};

/// Every candidate's map, with one hasher.
type HashMap<K, V> = StdHashMap<K, V, FastRandomState>;

const ENTRIES: u64 = 1000;

/// The i-th key looked up: a cheap scramble of `i`, always a hit.
fn key(i: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) % ENTRIES
}

fn contents() -> HashMap<u64, u64> {
    (0..ENTRIES).map(|k| (k, k)).collect()
}

pub fn run(h: &mut Harness) {
    let mut t = h.table(
        "map_cow",
        "look up one key in a read-mostly map of 1000 entries",
    );
    // The `Cache` and `Reader` rows make their handle per call (an `Arc` count up and down on
    // a line every thread shares, and for the `Reader` a hazard slot claimed and released):
    // amortised over a round, but paid by every batch of the tails pass.
    t.no_tails("the Cache and Reader rows make their per-thread handle per call");
    for threads in t.threads(&[1, 2]) {
        for writer in [false, true] {
            t.background(usize::from(writer));
            let std_lock = Arc::new(RwLock::new(contents()));
            let pl_lock = Arc::new(parking_lot::RwLock::new(contents()));
            let swap = Arc::new(ArcSwap::from_pointee(contents()));
            let cow = Arc::new(CowMap::from_map(contents()));
            let stop = Arc::new(AtomicBool::new(false));
            let writing = writer.then(|| {
                let (std_lock, pl_lock, swap, cow, stop) = (
                    std_lock.clone(),
                    pl_lock.clone(),
                    swap.clone(),
                    cow.clone(),
                    stop.clone(),
                );
                std::thread::spawn(move || {
                    let _paused = thrifty::measure::pause();
                    let mut i = 0u64;
                    while !stop.load(Relaxed) {
                        let k = i % ENTRIES;
                        std_lock.write().unwrap().insert(k, i);
                        pl_lock.write().insert(k, i);
                        let mut copy = HashMap::clone(&swap.load());
                        copy.insert(k, i);
                        swap.store(Arc::new(copy));
                        cow.insert(k, i);
                        i += 1;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
            });
            let name = if writer {
                "lookup, writer thread every 1 ms"
            } else {
                "lookup, no writer"
            };
            let (pl, sw, sc, cr, cd) = (
                pl_lock.clone(),
                swap.clone(),
                swap.clone(),
                cow.clone(),
                cow.clone(),
            );
            let std_lock2 = std_lock.clone();
            t.workload(
                name,
                threads,
                vec![
                    Candidate::std("std RwLock<HashMap>", move |_, ops| {
                        let mut sum = 0u64;
                        for i in 0..ops {
                            sum += std_lock2
                                .read()
                                .unwrap()
                                .get(&black_box(key(i)))
                                .copied()
                                .unwrap_or(0);
                        }
                        black_box(sum);
                    }),
                    Candidate::new("parking_lot RwLock<HashMap>", move |_, ops| {
                        let mut sum = 0u64;
                        for i in 0..ops {
                            sum += pl.read().get(&black_box(key(i))).copied().unwrap_or(0);
                        }
                        black_box(sum);
                    }),
                    Candidate::new("ArcSwap<HashMap> load()", move |_, ops| {
                        let mut sum = 0u64;
                        for i in 0..ops {
                            sum += sw.load().get(&black_box(key(i))).copied().unwrap_or(0);
                        }
                        black_box(sum);
                    }),
                    Candidate::new("ArcSwap<HashMap> + Cache", move |_, ops| {
                        let mut cache = Cache::new(&*sc);
                        let mut sum = 0u64;
                        for i in 0..ops {
                            sum += cache.load().get(&black_box(key(i))).copied().unwrap_or(0);
                        }
                        black_box(sum);
                    }),
                    Candidate::new("thrifty CowMap::read", move |_, ops| {
                        let mut sum = 0u64;
                        for i in 0..ops {
                            sum += cr.read(&black_box(key(i)), |v| *v).unwrap_or(0);
                        }
                        black_box(sum);
                    }),
                    Candidate::new("thrifty CowMap Reader", move |_, ops| {
                        let mut reader = cd.reader();
                        let mut sum = 0u64;
                        for i in 0..ops {
                            sum += reader.read(&black_box(key(i)), |v| *v).unwrap_or(0);
                        }
                        black_box(sum);
                    }),
                ],
            );
            stop.store(true, Relaxed);
            if let Some(w) = writing {
                w.join().unwrap();
            }
        }
    }
}
