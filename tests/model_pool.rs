//! proptest: random op sequences on one thread against a plain model of the pool.
//!
//! On one thread the pool is exactly a bounded stack of `retained` objects (its cache and
//! shared store are an implementation detail), so the model is a counter: a get hits iff
//! something is retained, a put keeps iff `keep_if` agrees and fewer than `capacity` are
//! retained, `trim(k)` keeps `min(retained, k)`.

use proptest::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use thrifty::pool::{Pool, Pooled};

#[derive(Debug, Clone)]
enum Op {
    Get,
    Write(usize, u8),
    Drop(usize),
    IntoInner(usize),
    Trim(usize),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Get),
        3 => (any::<usize>(), 0u8..16).prop_map(|(i, n)| Op::Write(i, n)),
        4 => any::<usize>().prop_map(Op::Drop),
        1 => any::<usize>().prop_map(Op::IntoInner),
        1 => (0usize..8).prop_map(Op::Trim),
        1 => Just(Op::Clear),
    ]
}

/// Objects keep this many bytes at most; longer ones are refused by `keep_if`.
const KEEP_MAX: usize = 8;

#[derive(Debug)]
struct Obj {
    id: usize,
    data: Vec<u8>,
    census: Arc<(AtomicUsize, AtomicUsize)>,
}

impl Drop for Obj {
    fn drop(&mut self) {
        self.census.1.fetch_add(1, SeqCst);
    }
}

#[derive(Debug, Default, PartialEq)]
struct Model {
    retained: usize,
    hits: u64,
    misses: u64,
    returned: u64,
    discarded: u64,
}

fn run(capacity: usize, reset_on_return: bool, ops: &[Op]) {
    let census = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let c = census.clone();
    let pool = Pool::builder()
        .capacity(capacity)
        .reset(|o: &mut Obj| o.data.clear())
        .reset_on_return(reset_on_return)
        .keep_if(|o: &Obj| o.data.len() <= KEEP_MAX)
        .build(move || {
            let id = c.0.fetch_add(1, SeqCst);
            Obj {
                id,
                data: Vec::new(),
                census: c.clone(),
            }
        });
    let mut model = Model::default();
    let mut held: Vec<Pooled<'_, Obj>> = Vec::new();
    let detached = Rc::new(RefCell::new(Vec::new()));
    for op in ops {
        match *op {
            Op::Get => {
                let o = pool.get();
                assert!(o.data.is_empty(), "handed out an object that was not reset");
                assert!(
                    held.iter().all(|h| h.id != o.id),
                    "object {} handed out twice",
                    o.id
                );
                if model.retained > 0 {
                    model.retained -= 1;
                    model.hits += 1;
                } else {
                    model.misses += 1;
                }
                held.push(o);
            }
            Op::Write(i, n) if !held.is_empty() => {
                let at = i % held.len();
                held[at]
                    .data
                    .extend(std::iter::repeat(0xAB).take(n as usize));
            }
            Op::Drop(i) if !held.is_empty() => {
                let o = held.swap_remove(i % held.len());
                // With reset on return, `keep_if` sees the object after its reset.
                let fits = reset_on_return || o.data.len() <= KEEP_MAX;
                let keep = fits && model.retained < capacity;
                drop(o);
                if keep {
                    model.retained += 1;
                    model.returned += 1;
                } else {
                    model.discarded += 1;
                }
            }
            Op::IntoInner(i) if !held.is_empty() => {
                let o = held.swap_remove(i % held.len());
                detached.borrow_mut().push(Pooled::into_inner(o));
            }
            Op::Trim(k) => {
                pool.trim(k);
                model.retained = model.retained.min(k);
            }
            Op::Clear => {
                pool.clear();
                model.retained = 0;
            }
            _ => {}
        }
        let s = pool.stats();
        assert!(
            s.retained <= capacity,
            "retained {} > {capacity}",
            s.retained
        );
        let seen = Model {
            retained: s.retained,
            hits: s.hits,
            misses: s.misses,
            returned: s.returned,
            discarded: s.discarded,
        };
        assert_eq!(seen, model, "after {op:?}");
        let live = census.0.load(SeqCst) - census.1.load(SeqCst);
        assert_eq!(live, held.len() + model.retained + detached.borrow().len());
    }
    drop(held);
    drop(pool);
    detached.borrow_mut().clear();
    assert_eq!(
        census.0.load(SeqCst),
        census.1.load(SeqCst),
        "objects created != objects dropped"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 512 }))]

    #[test]
    fn pool_behaves_like_a_bounded_stack(
        capacity in 0usize..7,
        reset_on_return in any::<bool>(),
        ops in prop::collection::vec(op(), 0..80),
    ) {
        run(capacity, reset_on_return, &ops);
    }
}

#[test]
fn distinct_ids_regression() {
    // Hold more than a thread cache (4) so the shared store is used, then cycle.
    let ops: Vec<Op> = (0..6)
        .map(|_| Op::Get)
        .chain((0..6).map(Op::Drop))
        .chain((0..6).map(|_| Op::Get))
        .collect();
    run(5, false, &ops);
}
