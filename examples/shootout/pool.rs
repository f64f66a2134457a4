//! `thrifty::pool`: get + put of a 4 KiB buffer against allocating one per call, and the
//! fastest peer pool (`lockfree-object-pool`'s `LinearObjectPool`, see `benches/pool.rs`).

use crate::harness::{Candidate, Harness};
use std::hint::black_box;
use std::sync::Arc;
use thrifty::pool::BufferPool;

const SIZE: usize = 4096;

pub fn run(h: &mut Harness) {
    let mut t = h.table("pool", "get + put of a 4 KiB Vec<u8>, one byte written");
    for threads in t.threads(&[1, 2]) {
        // One pool per workload, shared by all of its threads.
        let pool = Arc::new(
            BufferPool::buffers()
                .buffer_capacity(SIZE)
                .max_buffer_capacity(SIZE)
                .build(),
        );
        let lockfree = Arc::new(lockfree_object_pool::LinearObjectPool::new(
            || Vec::<u8>::with_capacity(SIZE),
            |v: &mut Vec<u8>| v.clear(),
        ));
        let object_pool = Arc::new(object_pool::Pool::<Vec<u8>>::new(0, Vec::new));
        t.workload(
            "4 KiB buffer",
            threads,
            vec![
                Candidate::std("Vec::with_capacity + drop", |_, ops| {
                    for _ in 0..ops {
                        let mut v = Vec::<u8>::with_capacity(black_box(SIZE));
                        v.push(1);
                        black_box(&v);
                    }
                }),
                Candidate::new("thrifty BufferPool", move |_, ops| {
                    for _ in 0..ops {
                        let mut b = pool.get();
                        b.push(1);
                        black_box(&*b);
                    }
                }),
                Candidate::new("lockfree-object-pool Linear", move |_, ops| {
                    for _ in 0..ops {
                        let mut b = lockfree.pull();
                        b.push(1);
                        black_box(&*b);
                    }
                }),
                Candidate::new("object-pool", move |_, ops| {
                    for _ in 0..ops {
                        let mut b = object_pool.pull(|| Vec::with_capacity(SIZE));
                        b.clear(); // object-pool does not reset
                        b.push(1);
                        black_box(&*b);
                    }
                }),
            ],
        );
    }
}
