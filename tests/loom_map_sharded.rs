//! loom models of `thrifty::map::ShardedMap`: inserts, removes and computes racing on one key
//! and across shards; `compute` is atomic; a writer's `len` counts its own writes while another
//! shard's writer races it, and `len` is exact once the writers stop, even after `clear` and
//! `retain` raced them; a re-entrant call on another shard panics instead of deadlocking against
//! a thread doing the reverse.
//!
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_map_sharded -- loom`
//!
//! Maps here have two shards and hash with the identity, so key 0 lives in shard 0 and key
//! `1 << 63` in shard 1 (the shard is the top bit of the hash times an odd constant, and any odd
//! multiple of `2^63` is `2^63` modulo `2^64`).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use std::hash::{BuildHasherDefault, Hasher};
use thrifty::map::{Compute, ShardedMap};

#[path = "common/loom.rs"]
mod loom_model;
#[path = "common/panics.rs"]
mod panics;
use panics::quiet_panics_containing;

fn model(f: impl Fn() + Sync + Send + 'static) {
    loom_model::model(f);
}

/// The hash is the key: the test picks shards.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("u64 keys only")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = ShardedMap<u64, u64, BuildHasherDefault<Identity>>;

const A: u64 = 0;
const B: u64 = 1 << 63;

fn map() -> Arc<Map> {
    Arc::new(
        ShardedMap::builder()
            .shards(2)
            .hasher(BuildHasherDefault::default())
            .build(),
    )
}

#[test]
fn loom_computes_on_one_key_lose_no_update() {
    model(|| {
        let m = map();
        let incr = |m: Arc<Map>| {
            thread::spawn(move || {
                m.compute(A, |v| match v {
                    Some(n) => {
                        *n += 1;
                        Compute::Keep
                    }
                    None => Compute::Set(1),
                });
            })
        };
        let (x, y) = (incr(m.clone()), incr(m.clone()));
        m.get_or_insert_with(A, || 100, |n| *n += 10);
        x.join().unwrap();
        y.join().unwrap();
        // Whoever came first inserted; the others added: 1 + 1 + 10, or 100 + 10 + 1 + 1.
        let v = m.get_cloned(&A).unwrap();
        assert!(v == 12 || v == 112, "lost an update: {v}");
        assert_eq!(m.len(), 1);
    });
}

#[test]
fn loom_remove_races_insert_on_one_key() {
    model(|| {
        let m = map();
        let m2 = m.clone();
        let inserter = thread::spawn(move || m2.insert(A, 1));
        let removed = m.remove(&A);
        assert_eq!(
            inserter.join().unwrap(),
            None,
            "nothing was there to replace"
        );
        match removed {
            Some(1) => assert!(m.is_empty() && !m.contains_key(&A)),
            None => assert_eq!((m.len(), m.get_cloned(&A)), (1, Some(1))),
            other => panic!("removed {other:?}"),
        }
    });
}

#[test]
fn loom_writers_on_two_shards_and_len() {
    model(|| {
        let m = map();
        let (ma, mb) = (m.clone(), m.clone());
        let a = thread::spawn(move || {
            ma.insert(A, 1);
            // Mid-flight, a writer's `len` counts its own insert (B's may or may not be in yet)
            // and then its own remove: the shards' counts are read without a lock, but a
            // thread never reads a count older than its own last write to it.
            let len = ma.len();
            assert!((1..=2).contains(&len), "len {len} after inserting A");
            let removed = ma.compute(A, |_| Compute::Remove);
            let len = ma.len();
            assert!(len <= 1, "len {len} after removing A");
            removed
        });
        let b = thread::spawn(move || {
            mb.insert(B, 2);
        });
        assert_eq!(a.join().unwrap(), Some(1));
        b.join().unwrap();
        // Quiescent: exact.
        assert_eq!(m.len(), 1);
        assert_eq!(m.get_cloned(&B), Some(2));
        assert!(!m.contains_key(&A));
    });
}

#[test]
fn loom_clear_and_retain_race_writers_and_len_stays_exact() {
    model(|| {
        let m = map();
        m.insert(B, 1);
        let (mw, mc) = (m.clone(), m.clone());
        let writer = thread::spawn(move || {
            mw.insert(A, 2);
            mw.insert(B, 3);
        });
        let clearer = thread::spawn(move || {
            mc.retain(|_, v| *v != 2);
            mc.clear();
        });
        writer.join().unwrap();
        clearer.join().unwrap();
        // Whatever survived, `len` counts exactly what a walk finds, and nothing was duplicated.
        let mut walked = Vec::new();
        m.for_each(|k, v| walked.push((*k, *v)));
        assert_eq!(
            m.len(),
            walked.len(),
            "len {} but walked {walked:?}",
            m.len()
        );
        for (k, v) in walked {
            assert!(
                (k, v) == (A, 2) || (k, v) == (B, 3),
                "({k}, {v}) survived a clear after it"
            );
        }
    });
}

#[test]
fn loom_reentry_on_another_shard_panics_and_never_deadlocks() {
    quiet_panics_containing("re-entrant call");
    model(|| {
        let m = map();
        m.insert(A, 0);
        m.insert(B, 0);
        // Each thread holds its shard and calls into the other's: without the check, the two
        // could wait on each other forever (each write waits for the other's read). Both must
        // panic, release their shard, and leave the map usable. (The outer call is a `read`:
        // loom's lock cannot be used again after a panic under its write lock, which it
        // poisons; parking_lot's has no poisoning, and the unit tests cover a panic under
        // `update`.)
        let cross = |m: Arc<Map>, mine: u64, other: u64| {
            thread::spawn(move || {
                let m2 = m.clone();
                let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    m.read(&mine, |_| m2.insert(other, 7))
                }));
                caught.is_err()
            })
        };
        let x = cross(m.clone(), A, B);
        let y = cross(m.clone(), B, A);
        assert!(x.join().unwrap(), "re-entry into shard B did not panic");
        assert!(y.join().unwrap(), "re-entry into shard A did not panic");
        assert_eq!(
            m.get_cloned(&A),
            Some(0),
            "the re-entrant insert did nothing"
        );
        assert_eq!(m.get_cloned(&B), Some(0));
        assert_eq!(m.len(), 2);
    });
}
