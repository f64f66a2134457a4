//! Op-sequence interpreter for `thrifty::pool`, shared by the cargo-fuzz target and
//! `tests/fuzz_corpus.rs`. Parses raw bytes by hand (no `arbitrary`), so it builds on stable.
//!
//! Layout: byte 0 picks the capacity (low 3 bits), reset-on-return (bit 3) and a `keep_if`
//! limit (bit 4); every later byte is an op (low 3 bits) with its argument (high 5 bits, or the
//! next byte). Invariants checked after every op: the pool retains at most its capacity, every
//! object handed out is reset and held by one holder only, the counters add up; at the end,
//! every object made was dropped exactly once.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use thrifty::pool::{Pool, Pooled, PooledOwned};

/// A byte that makes the reset panic when it is the object's first byte.
const POISON: u8 = 0xEE;
/// With the `keep_if` flag on, objects longer than this are refused on return.
const KEEP_MAX: usize = 16;

#[derive(Default)]
struct Census {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

struct Obj {
    id: usize,
    data: Vec<u8>,
    census: Arc<Census>,
}

impl Drop for Obj {
    fn drop(&mut self) {
        self.census.dropped.fetch_add(1, SeqCst);
    }
}

/// Runs the ops encoded in `data`; panics if an invariant breaks.
pub fn run(data: &[u8]) {
    let Some((&config, mut ops)) = data.split_first() else {
        return;
    };
    let capacity = usize::from(config & 7);
    let census = Arc::new(Census::default());
    let c = census.clone();
    let mut builder = Pool::builder()
        .capacity(capacity)
        .reset_on_return(config & 8 != 0)
        .reset(|o: &mut Obj| {
            let poisoned = o.data.first() == Some(&POISON);
            o.data.clear();
            assert!(!poisoned, "poisoned object (expected by the fuzzer)");
        });
    if config & 16 != 0 {
        builder = builder.keep_if(|o: &Obj| o.data.len() <= KEEP_MAX);
    }
    let pool = Arc::new(builder.build(move || Obj {
        id: c.made.fetch_add(1, SeqCst),
        data: Vec::new(),
        census: c.clone(),
    }));

    let mut held: Vec<Pooled<'_, Obj>> = Vec::new();
    let mut owned: Vec<PooledOwned<Obj>> = Vec::new();
    let mut detached: Vec<Obj> = Vec::new();
    let (mut gets, mut puts, mut panics) = (0u64, 0u64, 0u64);

    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        let arg = usize::from(op >> 3);
        match op & 7 {
            0 => match catch_unwind(AssertUnwindSafe(|| pool.get())) {
                Ok(o) => {
                    gets += 1;
                    held.push(o);
                }
                // A poisoned object's reset panicked on the way out: it was dropped.
                Err(_) => {
                    gets += 1;
                    panics += 1;
                }
            },
            1 => match catch_unwind(AssertUnwindSafe(|| pool.get_owned())) {
                Ok(o) => {
                    gets += 1;
                    owned.push(o);
                }
                Err(_) => {
                    gets += 1;
                    panics += 1;
                }
            },
            2 if !held.is_empty() => {
                let o = held.swap_remove(arg % held.len());
                puts += 1;
                if catch_unwind(AssertUnwindSafe(|| drop(o))).is_err() {
                    panics += 1;
                }
            }
            3 if !owned.is_empty() => {
                // Returned from another thread.
                let o = owned.swap_remove(arg % owned.len());
                puts += 1;
                if std::thread::spawn(move || drop(o)).join().is_err() {
                    panics += 1;
                }
            }
            4 => {
                // Write: the next byte is the value, `arg` the length.
                let value = ops.first().copied().unwrap_or(0);
                ops = ops.get(1..).unwrap_or(&[]);
                let total = held.len() + owned.len();
                if total > 0 {
                    let at = arg % total;
                    let data = if at < held.len() {
                        &mut held[at].data
                    } else {
                        &mut owned[at - held.len()].data
                    };
                    data.extend(std::iter::repeat(value).take(arg));
                }
            }
            5 if !held.is_empty() => {
                let o = held.swap_remove(arg % held.len());
                detached.push(Pooled::into_inner(o));
            }
            6 => pool.trim(arg % 8),
            7 => pool.clear(),
            _ => {}
        }
        check(&pool, capacity, &held, &owned, &census, &detached);
        let s = pool.stats();
        assert_eq!(s.hits + s.misses, gets, "{s:?}");
        assert!(s.returned + s.discarded <= puts + panics, "{s:?}");
    }

    // One at a time: a poisoned object's reset-on-return panics in its guard's drop, and a
    // second panic while a `Vec` of guards unwinds would abort.
    for o in std::mem::take(&mut held) {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(o)));
    }
    drop(held);
    for o in owned.drain(..) {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(o)));
    }
    drop(detached);
    let s = pool.stats();
    assert!(s.retained <= capacity, "{s:?}");
    drop(pool);
    assert_eq!(
        census.made.load(SeqCst),
        census.dropped.load(SeqCst),
        "objects made != objects dropped"
    );
}

fn check(
    pool: &Pool<Obj>,
    capacity: usize,
    held: &[Pooled<'_, Obj>],
    owned: &[PooledOwned<Obj>],
    census: &Census,
    detached: &[Obj],
) {
    let s = pool.stats();
    assert!(s.retained <= capacity, "retained {} > {capacity}", s.retained);
    let mut ids = HashSet::new();
    for id in held.iter().map(|o| o.id).chain(owned.iter().map(|o| o.id)) {
        assert!(ids.insert(id), "object {id} handed to two holders");
    }
    let live = census.made.load(SeqCst) - census.dropped.load(SeqCst);
    assert_eq!(
        live,
        held.len() + owned.len() + detached.len() + s.retained,
        "an object leaked or was dropped twice"
    );
}
