//! The loop `scripts/instructions.sh` counts under callgrind: `n` get + put rounds of a 4 KiB
//! buffer on one thread, from thrifty's `BufferPool`, `lockfree-object-pool`, or the allocator.
//!
//! `cargo run --release --example pool_loop -- <thrifty|lockfree|alloc> <n>`

use std::hint::black_box;
use thrifty::pool::BufferPool;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "thrifty".into());
    let n: usize = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("a round count"));
    match which.as_str() {
        "thrifty" => {
            let pool = BufferPool::builder().build();
            for _ in 0..n {
                let mut b = pool.get();
                b.push(1);
                black_box(&*b);
            }
        }
        "lockfree" => {
            let pool = lockfree_object_pool::LinearObjectPool::new(
                || Vec::<u8>::with_capacity(4096),
                |v: &mut Vec<u8>| v.clear(),
            );
            for _ in 0..n {
                let mut b = pool.pull();
                b.push(1);
                black_box(&*b);
            }
        }
        "alloc" => {
            for _ in 0..n {
                let mut v = Vec::<u8>::with_capacity(black_box(4096));
                v.push(1);
                black_box(&v);
            }
        }
        other => panic!("unknown candidate {other:?}: thrifty, lockfree or alloc"),
    }
}
