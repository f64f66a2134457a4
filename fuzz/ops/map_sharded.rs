//! Op-sequence interpreter for `thrifty::map::ShardedMap`, shared by the cargo-fuzz target and
//! `tests/fuzz_corpus.rs`. Bytes are parsed by hand: byte 0 picks the shard count and byte 1 the
//! capacity, then each op is one code byte and its arguments. A `std::collections::HashMap`
//! runs beside the map and every answer, and the length after every op, is checked against it;
//! re-entrant calls must panic and leave both unchanged, and a burst on two threads (each on its
//! own keys) must land exactly.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use thrifty::map::{Compute, ShardedMap};

#[path = "bytes.rs"]
mod bytes;
use bytes::Bytes;

/// Runs the ops encoded in `data`; panics if any answer disagrees with the model.
#[allow(dead_code)] // the fuzz target calls `run_with`
pub fn run(data: &[u8]) {
    run_with(data, true);
}

/// As [`run`]; with `reenter` false, the re-entrant calls are made on a second map instead
/// (allowed, so they must work). The fuzz target passes false: libFuzzer's panic hook aborts
/// on any panic, caught or not, so it cannot exercise the expected one.
pub fn run_with(data: &[u8], reenter: bool) {
    let other_map: ShardedMap<u16, u64> = ShardedMap::with_shards(2);
    let mut b = Bytes(data);
    let shards = 1usize << (b.u8() % 7);
    let capacity = usize::from(b.u8());
    let map: ShardedMap<u16, u64> = ShardedMap::builder()
        .shards(shards)
        .capacity(capacity)
        .build();
    let mut model: HashMap<u16, u64> = HashMap::new();
    let mut ops = 0;
    while !b.0.is_empty() && ops < 512 {
        ops += 1;
        // Keys in a small range, so ops meet present keys often.
        let code = b.u8();
        let k = b.u16() % 64;
        match code % 13 {
            0..=2 => {
                let v = u64::from(b.u16());
                assert_eq!(map.insert(k, v), model.insert(k, v), "insert");
            }
            3 => assert_eq!(map.remove(&k), model.remove(&k), "remove"),
            4 => assert_eq!(map.get_cloned(&k), model.get(&k).copied(), "get_cloned"),
            5 => {
                let d = u64::from(b.u8());
                let want = model.get_mut(&k).map(|v| {
                    *v += d;
                    *v
                });
                let got = map.update(&k, |v| {
                    *v += d;
                    *v
                });
                assert_eq!(got, want, "update");
            }
            6 => {
                let (v, d) = (u64::from(b.u8()), u64::from(b.u8()));
                let e = model.entry(k).or_insert(v);
                *e += d;
                let got = map.get_or_insert_with(k, || v, |x| {
                    *x += d;
                    *x
                });
                assert_eq!(got, *e, "get_or_insert_with");
            }
            7 => {
                // The action byte picks Keep (adding 1 in place), Set or Remove.
                let (action, v) = (b.u8() % 3, u64::from(b.u8()));
                let want = match action {
                    0 => {
                        if let Some(x) = model.get_mut(&k) {
                            *x += 1;
                        }
                        None
                    }
                    1 => model.insert(k, v),
                    _ => model.remove(&k),
                };
                let got = map.compute(k, |x| match action {
                    0 => {
                        if let Some(x) = x {
                            *x += 1;
                        }
                        Compute::Keep
                    }
                    1 => Compute::Set(v),
                    _ => Compute::Remove,
                });
                assert_eq!(got, want, "compute");
            }
            8 => {
                let m = u64::from(b.u8() % 4) + 2;
                model.retain(|_, v| *v % m != 0);
                map.retain(|_, v| *v % m != 0);
            }
            9 => match b.u8() % 4 {
                0 => {
                    model.clear();
                    map.clear();
                }
                1 => map.shrink_to_fit(),
                2 => {
                    // `Extend` through a shared map: a later duplicate replaces the earlier.
                    let n = b.u8() % 8;
                    let entries: Vec<(u16, u64)> =
                        (0..n).map(|_| (b.u16() % 64, u64::from(b.u8()))).collect();
                    model.extend(entries.iter().copied());
                    (&map).extend(entries);
                }
                _ => {
                    let mut seen = HashMap::new();
                    map.for_each(|k, v| assert!(seen.insert(*k, *v).is_none(), "seen twice"));
                    assert_eq!(seen, model, "for_each");
                }
            },
            10 | 11 if !reenter => {
                // A closure of this map that calls another map: allowed.
                let other = b.u16() % 64;
                let v = u64::from(b.u8());
                other_map.insert(other, v);
                let got = map.get_or_insert_with(k, || 0, |x| {
                    *x += other_map.get_cloned(&other).unwrap();
                    *x
                });
                let e = model.entry(k).or_insert(0);
                *e += v;
                assert_eq!(got, *e, "nested call on another map");
            }
            10 | 11 => {
                // A call back into the map from inside a closure, on this key or another: it
                // must panic before touching anything.
                let other = b.u16() % 64;
                let before = model.get(&k).copied();
                let caught = catch_unwind(AssertUnwindSafe(|| {
                    map.get_or_insert_with(k, || 0, |_| map.contains_key(&other))
                }));
                assert!(caught.is_err(), "re-entrant call did not panic");
                // The outer call inserted (k, 0) if absent before its closure panicked.
                model.entry(k).or_insert(before.unwrap_or(0));
            }
            _ => {
                // Two threads, each on its own keys (even and odd), then checked as if serial.
                let reps = usize::from(b.u8() % 32) + 1;
                let map = &map;
                std::thread::scope(|s| {
                    let workers: Vec<_> = (0..2u16)
                        .map(|t| {
                            s.spawn(move || {
                                for i in 0..reps as u16 {
                                    let key = 64 + (i * 2 + t) % 32;
                                    map.get_or_insert_with(key, || 0, |v| *v += 1);
                                }
                            })
                        })
                        .collect();
                    // Joined by hand: `scope` alone returns once the closures end, possibly
                    // before the threads have freed their thread-locals, which LeakSanitizer
                    // then reports as a leak of this input.
                    workers.into_iter().for_each(|w| w.join().unwrap());
                });
                for t in 0..2u16 {
                    for i in 0..reps as u16 {
                        *model.entry(64 + (i * 2 + t) % 32).or_insert(0) += 1;
                    }
                }
            }
        }
        assert_eq!(map.len(), model.len(), "len after op {code}");
    }
    let mut all = HashMap::new();
    map.for_each(|k, v| {
        all.insert(*k, *v);
    });
    assert_eq!(all, model, "final contents");
    // Taken apart: every entry once, the length exact at each step.
    let mut entries = map.into_iter();
    let mut taken = HashMap::new();
    while let Some((k, v)) = entries.next() {
        assert!(taken.insert(k, v).is_none(), "into_iter gave {k} twice");
        assert_eq!(entries.len(), model.len() - taken.len(), "into_iter's len");
    }
    assert_eq!(taken, model, "into_iter");
}
