//! proptest: `CowMap` against a plain `HashMap` over random op sequences, with snapshot
//! isolation (every snapshot held keeps equalling the model as it was when it was taken), a
//! `Reader` that always agrees with the latest version, and the bound on old versions.

#![cfg(not(loom))]

use proptest::prelude::*;
use std::collections::HashMap as StdHashMap;
use thrifty::map::FastRandomState;

/// The model: a std `HashMap` with the map's own default hasher, so the two compare directly.
type HashMap<K, V> = StdHashMap<K, V, FastRandomState>;
use std::panic::{catch_unwind, AssertUnwindSafe};
use thrifty::map::{CowMap, Snapshot};

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u32),
    Remove(u8),
    /// One `update` applying every change (`None` removes).
    Batch(Vec<(u8, Option<u32>)>),
    /// An `update` that panics after changing its copy: publishes nothing.
    PanickingUpdate(u8, u32),
    Read(u8),
    ReaderRead(u8),
    TakeSnapshot,
    DropSnapshot(usize),
    /// A write from inside a plain read: the read goes on with the value of the version it
    /// started on. That the version is also kept, not freed, this model cannot tell: freed
    /// memory may still hold the value, and the map's spare or the `Reader` may keep the
    /// version alive anyway (with `read` made to drop its hazard before the closure runs, a
    /// `retired_versions() >= 1` check here passed every case). The unit test
    /// `a_write_during_a_read_keeps_the_version_until_a_later_write` (also under Miri) and the
    /// loom models in `tests/loom_map_cow.rs` check that.
    WriteDuringRead(u8, u32),
    Trim,
    /// A whole map built elsewhere, published by `store`.
    Store(Vec<(u8, u32)>),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..16;
    prop_oneof![
        4 => (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => key.clone().prop_map(Op::Remove),
        2 => proptest::collection::vec((key.clone(), proptest::option::of(any::<u32>())), 0..8)
            .prop_map(Op::Batch),
        1 => (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::PanickingUpdate(k, v)),
        3 => key.clone().prop_map(Op::Read),
        3 => key.clone().prop_map(Op::ReaderRead),
        2 => Just(Op::TakeSnapshot),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
        1 => (key, any::<u32>()).prop_map(|(k, v)| Op::WriteDuringRead(k, v)),
        1 => Just(Op::Trim),
        1 => proptest::collection::vec((0u8..16, any::<u32>()), 0..8).prop_map(Op::Store),
        1 => Just(Op::Clear),
    ]
}

fn apply(model: &mut HashMap<u8, u32>, changes: &[(u8, Option<u32>)]) {
    for &(k, v) in changes {
        match v {
            Some(v) => drop(model.insert(k, v)),
            None => drop(model.remove(&k)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

    #[test]
    fn cow_map_matches_a_hash_map(ops in proptest::collection::vec(op(), 1..80)) {
        let map: CowMap<u8, u32> = CowMap::new();
        let mut model: HashMap<u8, u32> = HashMap::default();
        let mut version = 0u64;
        let mut reader = map.reader();
        let mut snapshots: Vec<(Snapshot<u8, u32>, HashMap<u8, u32>)> = Vec::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    prop_assert_eq!(map.insert(k, v), model.insert(k, v));
                    version += 1;
                }
                Op::Remove(k) => {
                    let expected = model.remove(&k);
                    version += u64::from(expected.is_some()); // an absent key publishes nothing
                    prop_assert_eq!(map.remove(&k), expected);
                }
                Op::Batch(changes) => {
                    let n = map.update(|m| {
                        apply(m, &changes);
                        m.len()
                    });
                    apply(&mut model, &changes);
                    prop_assert_eq!(n, model.len());
                    version += 1;
                }
                Op::PanickingUpdate(k, v) => {
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        map.update(|m| {
                            m.insert(k, v);
                            panic!("the update fails")
                        })
                    }));
                    prop_assert!(result.is_err());
                }
                Op::Read(k) => {
                    prop_assert_eq!(map.get_cloned(&k), model.get(&k).copied());
                    prop_assert_eq!(map.contains_key(&k), model.contains_key(&k));
                }
                Op::ReaderRead(k) => {
                    prop_assert_eq!(reader.read(&k, |v| *v), model.get(&k).copied());
                    prop_assert_eq!(reader.version(), version);
                }
                Op::TakeSnapshot => snapshots.push((map.snapshot(), model.clone())),
                Op::DropSnapshot(i) => {
                    if !snapshots.is_empty() {
                        snapshots.swap_remove(i % snapshots.len());
                    }
                }
                Op::WriteDuringRead(k, v) => {
                    let before = model.get(&k).copied();
                    let seen = map.read(&k, |old| {
                        map.insert(k, v);
                        *old
                    });
                    prop_assert_eq!(seen, before, "the read saw its own version");
                    if before.is_none() {
                        map.insert(k, v); // `read` ran no closure: write anyway
                    }
                    model.insert(k, v);
                    version += 1;
                }
                Op::Trim => map.trim(),
                Op::Store(entries) => {
                    let mut next = HashMap::default();
                    next.extend(entries);
                    model = next.clone();
                    map.store(next);
                    version += 1;
                }
                Op::Clear => {
                    map.clear();
                    model.clear();
                    version += 1;
                }
            }
            prop_assert_eq!(map.len(), model.len());
            prop_assert_eq!(map.version(), version);
            for (snap, then) in &snapshots {
                prop_assert_eq!(&**snap, then, "a snapshot changed after it was taken");
            }
            // Old versions: one per snapshot, one for the reader, one a read held at the
            // last write (freed by the next write or trim).
            prop_assert!(map.retired_versions() <= snapshots.len() + 2);
        }
        snapshots.clear();
        reader.refresh();
        map.trim();
        prop_assert_eq!(map.retired_versions(), 0);
        let mut entries: Vec<_> = reader.snapshot().iter().map(|(&k, &v)| (k, v)).collect();
        entries.sort_unstable();
        let mut expected: Vec<_> = model.into_iter().collect();
        expected.sort_unstable();
        prop_assert_eq!(entries, expected);
    }
}
