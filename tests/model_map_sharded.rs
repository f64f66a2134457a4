//! proptest: `ShardedMap` against `std::collections::HashMap` over random op sequences (every
//! return value and, after each op, the length; the contents at the end), and a concurrent run
//! where each thread owns a key range and the final map must equal each thread's own model.
//! Also building by `collect` and `extend` and taking apart by `into_iter`, against `HashMap`'s.

#![cfg(not(loom))]

use proptest::prelude::*;
use std::collections::HashMap;
use thrifty::map::{Compute, ShardedMap};

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u32),
    Remove(u8),
    Read(u8),
    Update(u8, u32),
    GetOrInsert(u8, u32, u32),
    /// Add `n` if present, insert `n` if absent, remove if the sum would be even.
    Compute(u8, u32),
    /// Keep entries whose value is not a multiple of `m` (1 + m, so never 0).
    Retain(u8),
    Clear,
    Shrink,
    Walk,
}

fn op() -> impl Strategy<Value = Op> {
    // Keys from a small range, so sequences hit present keys often.
    let k = 0u8..48;
    prop_oneof![
        6 => (k.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => k.clone().prop_map(Op::Remove),
        3 => k.clone().prop_map(Op::Read),
        3 => (k.clone(), 0u32..100).prop_map(|(k, d)| Op::Update(k, d)),
        3 => (k.clone(), 0u32..100, 0u32..100).prop_map(|(k, v, d)| Op::GetOrInsert(k, v, d)),
        3 => (k.clone(), 0u32..100).prop_map(|(k, n)| Op::Compute(k, n)),
        1 => (0u8..5).prop_map(Op::Retain),
        1 => Just(Op::Clear),
        1 => Just(Op::Shrink),
        1 => Just(Op::Walk),
    ]
}

/// Applies `op` to both; asserts their answers agree.
fn apply(map: &ShardedMap<u8, u32>, model: &mut HashMap<u8, u32>, op: &Op) {
    match *op {
        Op::Insert(k, v) => assert_eq!(map.insert(k, v), model.insert(k, v)),
        Op::Remove(k) => assert_eq!(map.remove(&k), model.remove(&k)),
        Op::Read(k) => {
            assert_eq!(map.read(&k, |v| *v), model.get(&k).copied());
            assert_eq!(map.contains_key(&k), model.contains_key(&k));
        }
        Op::Update(k, d) => {
            let want = model.get_mut(&k).map(|v| {
                *v = v.wrapping_add(d);
                *v
            });
            let got = map.update(&k, |v| {
                *v = v.wrapping_add(d);
                *v
            });
            assert_eq!(got, want);
        }
        Op::GetOrInsert(k, v, d) => {
            let e = model.entry(k).or_insert(v);
            *e = e.wrapping_add(d);
            let want = *e;
            let add = |x: &mut u32| {
                *x = x.wrapping_add(d);
                *x
            };
            // The owned and the borrowed form, in turn.
            let got = match d % 2 {
                0 => map.get_or_insert_with(k, || v, add),
                _ => map.get_or_insert_with_ref(&k, || v, add),
            };
            assert_eq!(got, want);
        }
        Op::Compute(k, n) => {
            let decide = |v: Option<&mut u32>| match v {
                Some(v) if v.wrapping_add(n) % 2 == 0 => Compute::Remove,
                Some(v) => {
                    *v = v.wrapping_add(n);
                    Compute::Keep
                }
                None => Compute::Set(n),
            };
            let want = match model.get_mut(&k) {
                Some(v) => match decide(Some(v)) {
                    Compute::Remove => model.remove(&k),
                    _ => None,
                },
                None => {
                    model.insert(k, n);
                    None
                }
            };
            assert_eq!(map.compute(k, decide), want);
        }
        Op::Retain(m) => {
            let m = u32::from(m) + 1;
            model.retain(|_, v| *v % m != 0);
            map.retain(|_, v| *v % m != 0);
        }
        Op::Clear => {
            model.clear();
            map.clear();
        }
        Op::Shrink => map.shrink_to_fit(),
        Op::Walk => {
            let mut seen = HashMap::new();
            map.for_each(|k, v| assert!(seen.insert(*k, *v).is_none(), "key seen twice"));
            assert_eq!(&seen, model);
        }
    }
    assert_eq!(map.len(), model.len());
    assert_eq!(map.is_empty(), model.is_empty());
}

fn contents(map: &ShardedMap<u8, u32>) -> HashMap<u8, u32> {
    let mut all = HashMap::new();
    map.for_each(|k, v| {
        all.insert(*k, *v);
    });
    all
}

proptest! {
    #[test]
    fn behaves_like_hashmap(shards in 0usize..4, ops in prop::collection::vec(op(), 1..200)) {
        let map = ShardedMap::with_shards([1, 2, 8, 64][shards]);
        let mut model = HashMap::new();
        for op in &ops {
            apply(&map, &mut model, op);
        }
        prop_assert_eq!(contents(&map), model);
    }

    /// `collect`, then `extend` (through `&map` and the owned map), then ops, then `into_iter`:
    /// the entries equal `HashMap`'s after the same steps, each yielded once, with an exact
    /// `len` all the way; an iterator dropped part-way leaves nothing behind to check.
    #[test]
    fn collect_extend_into_iter_behave_like_hashmap(
        shards in 0usize..4,
        first in prop::collection::vec((0u8..64, any::<u32>()), 0..100),
        more in prop::collection::vec((0u8..64, any::<u32>()), 0..100),
        ops in prop::collection::vec(op(), 0..50),
        taken in 0usize..80,
    ) {
        let shards = [1, 2, 8, 64][shards];
        let collected: ShardedMap<u8, u32> = first.iter().copied().collect();
        let mut model: HashMap<u8, u32> = first.iter().copied().collect();
        prop_assert_eq!(contents(&collected), model.clone());

        let mut map = ShardedMap::with_shards(shards);
        map.extend(first.iter().copied());
        let (a, b) = more.split_at(more.len() / 2);
        (&map).extend(a.iter().copied());
        map.extend(b.iter().copied());
        model.extend(more.iter().copied());
        prop_assert_eq!(contents(&map), model.clone());
        for op in &ops {
            apply(&map, &mut model, op);
        }

        let mut entries = map.into_iter();
        prop_assert_eq!(entries.len(), model.len());
        let mut got = HashMap::new();
        while let Some((k, v)) = entries.next() {
            prop_assert!(got.insert(k, v).is_none(), "key {} twice", k);
            prop_assert_eq!(entries.len(), model.len() - got.len());
        }
        prop_assert_eq!(got, model.clone());

        // Part-way, then dropped: what it yielded is a part of the model.
        let mut part = collected.into_iter();
        let n = taken.min(part.len());
        let mut model = HashMap::<u8, u32>::from_iter(first.iter().copied());
        for (k, v) in part.by_ref().take(n) {
            prop_assert_eq!(model.remove(&k), Some(v));
        }
        prop_assert_eq!(part.len(), model.len());
    }

    /// Each thread works only on keys `k` with `k % threads == t`, so its own model predicts
    /// its keys exactly, whatever the interleaving; whole-map ops (clear, retain) are left out
    /// because they touch every thread's keys.
    #[test]
    fn threads_on_their_own_keys_end_as_their_models(
        threads in 2usize..4,
        ops in prop::collection::vec(prop::collection::vec(op(), 1..150), 4),
    ) {
        let map = ShardedMap::with_shards(4);
        let models: Vec<HashMap<u8, u32>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (map, ops) = (&map, &ops[t]);
                    s.spawn(move || {
                        let mut model = HashMap::new();
                        for op in ops {
                            let own = |k: u8| k - k % threads as u8 + t as u8;
                            let op = match *op {
                                Op::Insert(k, v) => Op::Insert(own(k), v),
                                Op::Remove(k) => Op::Remove(own(k)),
                                Op::Read(k) => Op::Read(own(k)),
                                Op::Update(k, d) => Op::Update(own(k), d),
                                Op::GetOrInsert(k, v, d) => Op::GetOrInsert(own(k), v, d),
                                Op::Compute(k, n) => Op::Compute(own(k), n),
                                _ => continue,
                            };
                            apply_own(map, &mut model, &op);
                        }
                        model
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut want = HashMap::new();
        models.into_iter().for_each(|m| want.extend(m));
        prop_assert_eq!(map.len(), want.len());
        prop_assert_eq!(contents(&map), want);
    }
}

/// As [`apply`], without the whole-map length checks other threads' work would break.
fn apply_own(map: &ShardedMap<u8, u32>, model: &mut HashMap<u8, u32>, op: &Op) {
    match *op {
        Op::Insert(k, v) => assert_eq!(map.insert(k, v), model.insert(k, v)),
        Op::Remove(k) => assert_eq!(map.remove(&k), model.remove(&k)),
        Op::Read(k) => assert_eq!(map.get_cloned(&k), model.get(&k).copied()),
        Op::Update(k, d) => {
            let want = model.get_mut(&k).map(|v| {
                *v = v.wrapping_add(d);
                *v
            });
            assert_eq!(
                map.update(&k, |v| {
                    *v = v.wrapping_add(d);
                    *v
                }),
                want
            );
        }
        Op::GetOrInsert(k, v, d) => {
            let e = model.entry(k).or_insert(v);
            *e = e.wrapping_add(d);
            let want = *e;
            assert_eq!(
                map.get_or_insert_with(
                    k,
                    || v,
                    |x| {
                        *x = x.wrapping_add(d);
                        *x
                    }
                ),
                want
            );
        }
        Op::Compute(k, n) => {
            let present = model.get(&k).copied();
            let got = map.compute(k, |v| match v {
                Some(v) if v.wrapping_add(n) % 2 == 0 => Compute::Remove,
                Some(v) => {
                    *v = v.wrapping_add(n);
                    Compute::Keep
                }
                None => Compute::Set(n),
            });
            match present {
                Some(v) if v.wrapping_add(n) % 2 == 0 => {
                    assert_eq!(got, model.remove(&k));
                }
                Some(v) => {
                    model.insert(k, v.wrapping_add(n));
                    assert_eq!(got, None);
                }
                None => {
                    model.insert(k, n);
                    assert_eq!(got, None);
                }
            }
        }
        _ => unreachable!("whole-map ops are filtered out"),
    }
}
