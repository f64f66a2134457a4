//! The map table: one `u64 → u64` map shared by every thread, prefilled with 100,000 keys, under
//! a 50/50 read/write mix of uniform keys and a 10/90 mix of Zipf (s = 1.0) keys, plus the
//! aggregator shape (a per-key count bumped over Zipf keys). The std row is `Mutex<HashMap>`;
//! peers are parking_lot's `RwLock<HashMap>`, dashmap (at its default 4 x CPUs shards, and at
//! thrifty's shard count), scc and papaya (pinned per operation, and with a per-thread guard
//! refreshed every 64 operations, the guard reuse papaya's docs encourage); every map hashes
//! with foldhash, the hash thrifty's default uses. Each thread replays its own precomputed key
//! sequence. A line under the table gives the heap each map holds once built with a capacity of
//! `KEYS` and prefilled: presizing rules differ, and memory is part of the cost.

use crate::harness::{Candidate, Harness};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use thrifty::map::ShardedMap;

type H = foldhash::fast::RandomState;
const KEYS: usize = 100_000;
/// Operations per thread's sequence, replayed cyclically.
const SEQ: usize = 1 << 16;

/// Key number `i`, scattered over `u64`.
fn key(i: usize) -> u64 {
    (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Per thread (up to 16): `SEQ` keys, uniform or Zipf(1.0), each flagged as a write with
/// probability `writes_pct`%.
fn sequences(zipf: bool, writes_pct: u64) -> Arc<Vec<Vec<(u64, bool)>>> {
    let cdf: Vec<f64> = (1..=KEYS)
        .scan(0.0, |acc, r| {
            *acc += 1.0 / r as f64;
            Some(*acc)
        })
        .collect();
    let seqs = (0..16u64)
        .map(|t| {
            let mut s = 0x9E37_79B9_7F4A_7C15 ^ (t + 1);
            let mut next = move || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s
            };
            (0..SEQ)
                .map(|_| {
                    let r = next();
                    let i = if zipf {
                        let u = (r >> 11) as f64 / (1u64 << 53) as f64 * cdf[KEYS - 1];
                        cdf.partition_point(|&c| c < u).min(KEYS - 1)
                    } else {
                        (r % KEYS as u64) as usize
                    };
                    (key(i), next() % 100 < writes_pct)
                })
                .collect()
        })
        .collect();
    Arc::new(seqs)
}

/// One candidate's row: `get`/`put` are its read and write, run over thread `t`'s sequence.
/// Both are generic, so each row's loop is compiled for its own map and its calls inline, as
/// in `benches/map_sharded.rs`.
fn row<M, G, P>(
    name: &str,
    std: bool,
    map: M,
    seqs: &Arc<Vec<Vec<(u64, bool)>>>,
    get: G,
    put: P,
) -> Candidate
where
    M: Send + Sync + 'static,
    G: Fn(&M, u64) -> Option<u64> + Send + Sync + 'static,
    P: Fn(&M, u64, u64) + Send + Sync + 'static,
{
    let seqs = Arc::clone(seqs);
    let body = move |t: usize, ops: u64| {
        let seq = &seqs[t % seqs.len()];
        for i in 0..ops as usize {
            let (k, write) = seq[i % SEQ];
            if write {
                put(&map, black_box(k), i as u64);
            } else {
                black_box(get(&map, black_box(k)));
            }
        }
    };
    if std {
        Candidate::std(name, body)
    } else {
        Candidate::new(name, body)
    }
}

/// Operations per papaya guard in the guard row.
const PAPAYA_REFRESH: usize = 64;

/// papaya's row with a guard each thread keeps, refreshed (unpinned and pinned again) every
/// [`PAPAYA_REFRESH`] operations: the guard reuse papaya's docs encourage "within reason", since
/// a held guard delays reclamation. The loop is `row`'s, with the guard passed to each call.
fn papaya_guard_row<const INCR: bool>(
    map: papaya::HashMap<u64, u64, H>,
    seqs: &Arc<Vec<Vec<(u64, bool)>>>,
) -> Candidate {
    let seqs = Arc::clone(seqs);
    Candidate::new("papaya (guard per 64 ops)", move |t, ops| {
        let seq = &seqs[t % seqs.len()];
        let mut guard = map.guard();
        for i in 0..ops as usize {
            if i % PAPAYA_REFRESH == PAPAYA_REFRESH - 1 {
                papaya::Guard::refresh(&mut guard);
            }
            let (k, write) = seq[i % SEQ];
            if !write {
                black_box(map.get(&black_box(k), &guard).copied());
            } else if INCR {
                map.update_or_insert(black_box(k), |n| n + 1, 1, &guard);
            } else {
                map.insert(black_box(k), i as u64, &guard);
            }
        }
    })
}

/// The map `make` builds, prefilled with the `KEYS` keys through `put`, and the heap bytes
/// building and filling it leave allocated on this thread (allocated less freed): its memory.
fn prefilled<M>(make: impl FnOnce() -> M, put: impl Fn(&M, u64, u64)) -> (M, u64) {
    let (map, s) = thrifty::measure::count(|| {
        let map = make();
        (0..KEYS).for_each(|i| put(&map, key(i), i as u64));
        map
    });
    (map, s.bytes_allocated.saturating_sub(s.bytes_deallocated))
}

/// Every candidate, prefilled with `KEYS` keys; `put` inserts (replacing) unless `INCR`, where
/// it adds 1 to the key's count instead (inserting 1 if absent). Also the heap bytes each map
/// holds once prefilled, as a line for under the table.
fn candidates<const INCR: bool>(seqs: &Arc<Vec<Vec<(u64, bool)>>>) -> (Vec<Candidate>, String) {
    let with_capacity = || HashMap::with_capacity_and_hasher(KEYS, H::default());
    let (std, std_bytes) = prefilled(
        || Mutex::new(with_capacity()),
        |m, k, v| {
            m.lock().unwrap().insert(k, v);
        },
    );
    let (rw, rw_bytes) = prefilled(
        || parking_lot::RwLock::new(with_capacity()),
        |m, k, v| {
            m.write().insert(k, v);
        },
    );
    let dash_insert = |m: &dashmap::DashMap<u64, u64, H>, k, v| {
        m.insert(k, v);
    };
    let (dash, dash_bytes) = prefilled(
        || dashmap::DashMap::with_capacity_and_hasher(KEYS, H::default()),
        dash_insert,
    );
    let (thrifty, thrifty_bytes) = prefilled(
        || ShardedMap::with_capacity(KEYS),
        |m, k, v| {
            m.insert(k, v);
        },
    );
    // dashmap on thrifty's shard count: the knob the default rows differ in (dashmap's default
    // is 4 x CPUs, thrifty's 64 x CPUs, at most 1024, rounded up to a power of two), so the
    // table shows design apart from defaults.
    let shards = thrifty.shard_count().max(2); // dashmap needs a power of two above 1
    let (dash_n, dash_n_bytes) = prefilled(
        || dashmap::DashMap::with_capacity_and_hasher_and_shard_amount(KEYS, H::default(), shards),
        dash_insert,
    );
    let (scc, scc_bytes) = prefilled(
        || scc::HashMap::with_capacity_and_hasher(KEYS, H::default()),
        |m, k, v| {
            m.upsert_sync(k, v);
        },
    );
    let papaya = || {
        prefilled(
            || papaya::HashMap::with_capacity_and_hasher(KEYS, H::default()),
            |m, k, v| {
                m.pin().insert(k, v);
            },
        )
    };
    let ((papaya, papaya_bytes), (papaya_guard, _)) = (papaya(), papaya());
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    let note = format!(
        "  Heap held once built with_capacity({KEYS}) and prefilled, in MiB (entries: {:.2}): \
         Mutex<HashMap> {:.2}, RwLock<HashMap> {:.2}, dashmap {:.2}, dashmap ({shards} shards) \
         {:.2}, scc::HashMap {:.2}, papaya {:.2}, thrifty ShardedMap {:.2}",
        mib(KEYS as u64 * 16),
        mib(std_bytes),
        mib(rw_bytes),
        mib(dash_bytes),
        mib(dash_n_bytes),
        mib(scc_bytes),
        mib(papaya_bytes),
        mib(thrifty_bytes),
    );

    type Std = Mutex<HashMap<u64, u64, H>>;
    type Rw = parking_lot::RwLock<HashMap<u64, u64, H>>;
    type Dash = dashmap::DashMap<u64, u64, H>;
    type Scc = scc::HashMap<u64, u64, H>;
    type Papaya = papaya::HashMap<u64, u64, H>;
    type Thrifty = ShardedMap<u64, u64>;
    // The two dashmap rows differ only in the map's shard count.
    let dash_row = |name: &str, map: Dash| {
        row(
            name,
            false,
            map,
            seqs,
            |m: &Dash, k| m.get(&k).map(|r| *r),
            |m: &Dash, k, v| {
                if INCR {
                    *m.entry(k).or_insert(0) += 1;
                } else {
                    m.insert(k, v);
                }
            },
        )
    };
    let rows = vec![
        row(
            "Mutex<HashMap>",
            true,
            std,
            seqs,
            |m: &Std, k| m.lock().unwrap().get(&k).copied(),
            |m: &Std, k, v| {
                if INCR {
                    *m.lock().unwrap().entry(k).or_insert(0) += 1;
                } else {
                    m.lock().unwrap().insert(k, v);
                }
            },
        ),
        row(
            "RwLock<HashMap> (parking_lot)",
            false,
            rw,
            seqs,
            |m: &Rw, k| m.read().get(&k).copied(),
            |m: &Rw, k, v| {
                if INCR {
                    *m.write().entry(k).or_insert(0) += 1;
                } else {
                    m.write().insert(k, v);
                }
            },
        ),
        dash_row("dashmap", dash),
        dash_row(&format!("dashmap ({shards} shards, = thrifty's)"), dash_n),
        row(
            "scc::HashMap",
            false,
            scc,
            seqs,
            |m: &Scc, k| m.read_sync(&k, |_, v| *v),
            |m: &Scc, k, v| {
                if INCR {
                    *m.entry_sync(k).or_insert(0).get_mut() += 1;
                } else {
                    m.upsert_sync(k, v);
                }
            },
        ),
        row(
            "papaya (pin per op)",
            false,
            papaya,
            seqs,
            |m: &Papaya, k| m.pin().get(&k).copied(),
            |m: &Papaya, k, v| {
                if INCR {
                    m.pin().update_or_insert(k, |n| n + 1, 1);
                } else {
                    m.pin().insert(k, v);
                }
            },
        ),
        papaya_guard_row::<INCR>(papaya_guard, seqs),
        row(
            "thrifty ShardedMap",
            false,
            thrifty,
            seqs,
            |m: &Thrifty, k| m.read(&k, |v| *v),
            |m: &Thrifty, k, v| {
                if INCR {
                    m.get_or_insert_with(k, || 0, |n| *n += 1);
                } else {
                    m.insert(k, v);
                }
            },
        ),
    ];
    (rows, note)
}

pub fn run(h: &mut Harness) {
    let mut t = h.table(
        "map",
        "one u64 -> u64 map shared by every thread, 100k keys prefilled (ns/op per thread)",
    );
    let mixed = sequences(false, 50);
    let writes = sequences(true, 90);
    let counts = sequences(true, 100);
    // Every workload prefills the same keys the same way: one line under the table says what
    // the maps hold (the last workload's measure).
    let mut memory = String::new();
    for threads in t.threads(&[1, 2, 4]) {
        let (rows, _) = candidates::<false>(&mixed);
        t.workload("50/50 uniform", threads, rows);
        let (rows, _) = candidates::<false>(&writes);
        t.workload("10/90 zipf", threads, rows);
        let (rows, note) = candidates::<true>(&counts);
        t.workload("count per key, zipf", threads, rows);
        memory = note;
    }
    t.note(memory);
}
