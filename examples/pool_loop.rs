//! The loops `scripts/instructions.sh` counts under callgrind: `n` get + put rounds of a 4 KiB
//! buffer on one thread, from thrifty's `BufferPool`, `lockfree-object-pool`, or the allocator;
//! and, with a `-handoff` suffix, `n` buffers got on one thread and dropped on another after a
//! trip through a channel of depth 6 (callgrind runs one thread at a time, so this counts the
//! work of a handoff, not the cost of the cache lines it moves between cores).
//!
//! `cargo run --release --example pool_loop -- <thrifty|lockfree|alloc>[-handoff] <n>`

use std::hint::black_box;
use std::sync::{mpsc, Arc};
use thrifty::pool::BufferPool;

/// `n` get + put rounds of one `BufferPool` buffer. Each loop is its own function, so the code
/// around one candidate never changes how another compiles.
#[inline(never)]
fn thrifty(n: usize) {
    let pool = BufferPool::builder().build();
    for _ in 0..n {
        let mut b = pool.get();
        b.push(1);
        black_box(&*b);
    }
}

/// As [`thrifty`], with `lockfree-object-pool`.
#[inline(never)]
fn lockfree(n: usize) {
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

/// As [`thrifty`], allocating each buffer.
#[inline(never)]
fn alloc(n: usize) {
    for _ in 0..n {
        let mut v = Vec::<u8>::with_capacity(black_box(4096));
        v.push(1);
        black_box(&v);
    }
}

/// Sends `n` values from `make` through a channel of depth 6 to a thread that drops them.
#[inline(never)]
fn handoff<T: Send + 'static>(n: usize, mut make: impl FnMut() -> T) {
    let (tx, rx) = mpsc::sync_channel::<T>(6);
    let consumer = std::thread::spawn(move || rx.into_iter().for_each(|v| drop(black_box(v))));
    for _ in 0..n {
        tx.send(make()).unwrap();
    }
    drop(tx);
    consumer.join().unwrap();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "thrifty".into());
    let n: usize = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("a round count"));
    match which.as_str() {
        "thrifty" => thrifty(n),
        "lockfree" => lockfree(n),
        "alloc" => alloc(n),
        "thrifty-handoff" => {
            let pool = Arc::new(BufferPool::builder().capacity(8).build());
            handoff(n, || {
                let mut b = pool.get_owned();
                b.push(1);
                b
            });
        }
        "lockfree-handoff" => {
            let pool = Arc::new(lockfree_object_pool::LinearObjectPool::new(
                || Vec::<u8>::with_capacity(4096),
                |v: &mut Vec<u8>| v.clear(),
            ));
            handoff(n, || {
                let mut b = pool.pull_owned();
                b.push(1);
                b
            });
        }
        "alloc-handoff" => handoff(n, || {
            let mut v = Vec::<u8>::with_capacity(black_box(4096));
            v.push(1);
            v
        }),
        other => panic!("unknown candidate {other:?}: thrifty, lockfree or alloc, -handoff or not"),
    }
}
