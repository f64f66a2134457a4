//! The loops `scripts/instructions_map.sh` counts under callgrind: on one thread, a `u64 → u64`
//! map prefilled with 100,000 keys, then `n` operations of one kind over uniformly drawn keys
//! (or fresh ones):
//! `read` (copy the value out), `insert` (replace the value), `incr` (add 1 to the key's
//! count through the map's entry-style call) or `churn` (insert a fresh key and remove the one
//! inserted 1,000 operations earlier, starting from an empty map). Every map hashes with
//! foldhash.
//!
//! `cargo run --release --example map_loop -- <map> <op> <n>`, where `<map>` is one of
//! `thrifty|dashmap|scc|papaya|rwlock|mutex` and `<op>` one of `read|insert|incr|churn`.
//!
//! Callgrind runs one thread at a time, so this counts the work of an operation, not the cost
//! of cache lines moving between cores; the bench and the shootout measure that.

use std::collections::HashMap;
use std::hint::black_box;
use thrifty::map::ShardedMap;

type H = foldhash::fast::RandomState;
const KEYS: usize = 100_000;

/// Key number `i`, scattered over `u64`.
fn key(i: usize) -> u64 {
    (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// 65,536 uniformly drawn keys, replayed cyclically (so `n` and `2n` runs differ only in ops).
fn keys() -> Vec<u64> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..1 << 16)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            key((s % KEYS as u64) as usize)
        })
        .collect()
}

/// Which operation a loop runs.
#[derive(Clone, Copy)]
enum Op {
    Read,
    Insert,
    Incr,
    Churn,
}

/// One loop per candidate, each its own function so the code around one never changes how
/// another compiles. `$new` makes the map, `$get`, `$put`, `$incr`, `$remove` are its
/// operations.
macro_rules! candidate {
    (
        $name:ident, $new:expr,
        |$m:ident, $k:ident, $v:ident| $get:expr, $put:expr, $incr:expr, $remove:expr
    ) => {
        #[inline(never)]
        fn $name(op: Op, n: usize, keys: &[u64]) {
            let $m = $new;
            // Churn starts from an empty map, as sessions do; the others from a full one.
            let prefill = if matches!(op, Op::Churn) { 0 } else { KEYS };
            for i in 0..prefill {
                let ($k, $v) = (key(i), i as u64);
                $put;
            }
            for i in 0..n {
                let ($k, $v) = (black_box(keys[i & 0xFFFF]), i as u64);
                match op {
                    Op::Read => {
                        black_box($get);
                    }
                    Op::Insert => {
                        $put;
                    }
                    Op::Incr => {
                        $incr;
                    }
                    Op::Churn => {
                        let $k = key(KEYS + i);
                        $put;
                        if i >= 1000 {
                            let $k = key(KEYS + i - 1000);
                            black_box($remove);
                        }
                    }
                }
            }
            black_box(&$m);
        }
    };
}

candidate!(
    thrifty,
    ShardedMap::<u64, u64>::with_capacity(KEYS),
    |m, k, v| m.read(&k, |x| *x),
    m.insert(k, v),
    m.get_or_insert_with(k, || 0, |x| *x += 1),
    m.remove(&k)
);
candidate!(
    dashmap,
    dashmap::DashMap::<u64, u64, H>::with_capacity_and_hasher(KEYS, H::default()),
    |m, k, v| m.get(&k).map(|r| *r),
    m.insert(k, v),
    *m.entry(k).or_insert(0) += 1,
    m.remove(&k)
);
candidate!(
    scc,
    scc::HashMap::<u64, u64, H>::with_capacity_and_hasher(KEYS, H::default()),
    |m, k, v| m.read_sync(&k, |_, x| *x),
    m.upsert_sync(k, v),
    *m.entry_sync(k).or_insert(0).get_mut() += 1,
    m.remove_sync(&k)
);
candidate!(
    papaya,
    papaya::HashMap::<u64, u64, H>::with_capacity_and_hasher(KEYS, H::default()),
    |m, k, v| m.pin().get(&k).copied(),
    m.pin().insert(k, v),
    m.pin().update_or_insert(k, |x| x + 1, 1),
    m.pin().remove(&k).copied()
);
candidate!(
    rwlock,
    parking_lot::RwLock::new(HashMap::<u64, u64, H>::with_capacity_and_hasher(
        KEYS,
        H::default()
    )),
    |m, k, v| m.read().get(&k).copied(),
    m.write().insert(k, v),
    *m.write().entry(k).or_insert(0) += 1,
    m.write().remove(&k)
);
candidate!(
    mutex,
    std::sync::Mutex::new(HashMap::<u64, u64, H>::with_capacity_and_hasher(
        KEYS,
        H::default()
    )),
    |m, k, v| m.lock().unwrap().get(&k).copied(),
    m.lock().unwrap().insert(k, v),
    *m.lock().unwrap().entry(k).or_insert(0) += 1,
    m.lock().unwrap().remove(&k)
);

fn main() {
    let usage =
        "usage: map_loop <thrifty|dashmap|scc|papaya|rwlock|mutex> <read|insert|incr|churn> <n>";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [which, op, n] = &args[..] else {
        panic!("{usage}")
    };
    let op = match op.as_str() {
        "read" => Op::Read,
        "insert" => Op::Insert,
        "incr" => Op::Incr,
        "churn" => Op::Churn,
        _ => panic!("{usage}"),
    };
    let n: usize = n.parse().expect(usage);
    let keys = keys();
    match which.as_str() {
        "thrifty" => thrifty(op, n, &keys),
        "dashmap" => dashmap(op, n, &keys),
        "scc" => scc(op, n, &keys),
        "papaya" => papaya(op, n, &keys),
        "rwlock" => rwlock(op, n, &keys),
        "mutex" => mutex(op, n, &keys),
        _ => panic!("{usage}"),
    }
}
