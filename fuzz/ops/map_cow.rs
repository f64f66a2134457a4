//! Op-sequence interpreter for `thrifty::map::CowMap`, shared by the cargo-fuzz target and
//! `tests/fuzz_corpus.rs`. Bytes are parsed by hand: each op is one code byte and its
//! arguments (missing bytes read as zero). A `CowMap`, a `Reader` and held snapshots run beside
//! a plain `HashMap` and the snapshots' expected contents; every read is checked, and so is
//! the bound on old versions. A burst op runs a writer and two readers on threads at once.

use std::collections::HashMap as StdHashMap;
use thrifty::map::FastRandomState;

/// The model: a std `HashMap` with the map's own default hasher, so the two compare directly.
type HashMap<K, V> = StdHashMap<K, V, FastRandomState>;
use thrifty::map::{CowMap, Snapshot};

#[path = "bytes.rs"]
mod bytes;
use bytes::Bytes;

/// A key: one byte, folded onto 32 keys so ops meet.
fn key(b: &mut Bytes) -> u8 {
    b.u8() % 32
}

/// Runs the ops encoded in `data`; panics if any read disagrees with the model.
pub fn run(data: &[u8]) {
    let mut b = Bytes(data);
    let map: CowMap<u8, u64> = CowMap::new();
    let mut model: HashMap<u8, u64> = HashMap::default();
    let mut reader = map.reader();
    let mut held: Vec<(Snapshot<u8, u64>, HashMap<u8, u64>)> = Vec::new();
    let mut ops = 0;
    while !b.0.is_empty() && ops < 256 {
        ops += 1;
        match b.u8() % 10 {
            0 => {
                let (k, v) = (key(&mut b), u64::from(b.u8()));
                assert_eq!(map.insert(k, v), model.insert(k, v), "insert");
            }
            1 => {
                let k = key(&mut b);
                assert_eq!(map.remove(&k), model.remove(&k), "remove");
            }
            2 => {
                // A batch of up to 15 changes in one update.
                let n = b.u8() % 16;
                let changes: Vec<(u8, u8)> = (0..n).map(|_| (key(&mut b), b.u8())).collect();
                let apply = |m: &mut HashMap<u8, u64>| {
                    for &(k, v) in &changes {
                        if v % 4 == 0 {
                            m.remove(&k);
                        } else {
                            m.insert(k, u64::from(v));
                        }
                    }
                };
                map.update(apply);
                apply(&mut model);
            }
            3 => {
                let k = key(&mut b);
                assert_eq!(map.get_cloned(&k), model.get(&k).copied(), "get_cloned");
                assert_eq!(reader.read(&k, |v| *v), model.get(&k).copied(), "reader");
            }
            4 => held.push((map.snapshot(), model.clone())),
            5 => {
                if !held.is_empty() {
                    let i = usize::from(b.u8()) % held.len();
                    held.swap_remove(i);
                }
            }
            6 => {
                // A write from inside a read: the read keeps its version.
                let (k, v) = (key(&mut b), u64::from(b.u8()));
                let before = model.get(&k).copied();
                let seen = map.read(&k, |old| {
                    map.insert(k, v);
                    *old
                });
                assert_eq!(seen, before, "a read saw a write made during it");
                if seen.is_none() {
                    map.insert(k, v);
                }
                model.insert(k, v);
            }
            7 => {
                // `trim`; the reader lets go of its version (its next read takes the current);
                // or a whole map of up to 15 entries built aside and published by `store`.
                match b.u8() % 3 {
                    0 => map.trim(),
                    1 => reader.let_go(),
                    _ => {
                        let n = b.u8() % 16;
                        let mut next = HashMap::default();
                        next.extend((0..n).map(|_| (key(&mut b), u64::from(b.u8()))));
                        model = next.clone();
                        map.store(next);
                    }
                }
            }
            8 => {
                // A burst: a writer and two readers at once; readers check whole batches.
                let rounds = u64::from(b.u8() % 32) + 1;
                let base = map.version();
                std::thread::scope(|s| {
                    for _ in 0..2 {
                        let map = &map;
                        s.spawn(move || {
                            let mut r = map.reader();
                            let mut last = 0;
                            for _ in 0..rounds {
                                let m = r.map();
                                let (x, y) = (m.get(&200), m.get(&201));
                                assert_eq!(x, y, "torn batch");
                                let x = x.copied().unwrap_or(0);
                                assert!(x >= last, "went back from {last} to {x}");
                                last = x;
                            }
                        });
                    }
                    for i in 1..=rounds {
                        map.update(|m| {
                            m.insert(200, base + i);
                            m.insert(201, base + i);
                        });
                    }
                });
                map.update(|m| {
                    m.remove(&200);
                    m.remove(&201);
                });
            }
            _ => {
                for (snap, then) in &held {
                    assert_eq!(&**snap, then, "a snapshot changed");
                }
            }
        }
        assert_eq!(map.len(), model.len(), "len");
        assert!(
            map.retired_versions() <= held.len() + 2,
            "{} old versions alive with {} snapshots and one reader",
            map.retired_versions(),
            held.len()
        );
    }
    held.clear();
    reader.refresh();
    map.trim();
    assert_eq!(map.retired_versions(), 0, "an old version outlived every holder");
    assert_eq!(&*map.snapshot(), &model, "final contents");
}
