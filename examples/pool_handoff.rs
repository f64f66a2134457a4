//! Get on one thread, drop on another: a producer takes a 4 KiB buffer, writes a byte, and sends
//! it through thrifty's bounded channel to a consumer thread that drops it. Runs thrifty's
//! `BufferPool::get_owned` and `lockfree-object-pool`'s `pull_owned` in alternation (each run
//! a fresh pool, channel and consumer, the pool prefilled to `capacity`, the channel two less
//! deep so the pool covers every buffer in flight), then prints each pair's ratio and the
//! medians (the ratio's with its range): on a shared machine, alternating runs cancel the
//! drift a single run cannot. The pool's byte budget is sized to hold `capacity` 4 KiB
//! buffers.
//!
//! `cargo run --release --example pool_handoff -- [capacity] [pairs] [messages]` (defaults:
//! 256, 12, 1000000; `pairs` is rounded up to even).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;
use thrifty::pool::{BufferPool, DEFAULT_BUFFER_CAPACITY};

/// Nanoseconds per message for `n` values from `make`, through a channel of `depth` to a
/// thread that drops them.
fn stream<T: Send + 'static>(n: usize, depth: usize, mut make: impl FnMut() -> T) -> f64 {
    let (tx, rx) = thrifty::channel::bounded::<T>(depth);
    let consumer = std::thread::spawn(move || rx.iter().for_each(|v| drop(black_box(v))));
    let start = Instant::now();
    for _ in 0..n {
        tx.send(make())
            .unwrap_or_else(|_| panic!("the consumer is gone"));
    }
    drop(tx);
    consumer.join().unwrap();
    start.elapsed().as_nanos() as f64 / n as f64
}

fn thrifty(n: usize, capacity: usize) -> f64 {
    // The default budget (16 MiB) holds 4096 buffers; this one holds `capacity` of them.
    let pool = BufferPool::builder()
        .capacity(capacity)
        .byte_budget(capacity * DEFAULT_BUFFER_CAPACITY)
        .build();
    let pool = Arc::new(pool);
    assert_eq!(pool.prefill(capacity), capacity);
    let ns = stream(n, capacity - 2, || {
        let mut b = pool.get_owned();
        b.push(1);
        b
    });
    let s = pool.stats();
    assert!(s.misses == 0 && s.discarded == 0, "{s:?}");
    ns
}

fn lockfree(n: usize, capacity: usize) -> f64 {
    let pool = Arc::new(lockfree_object_pool::LinearObjectPool::new(
        || Vec::<u8>::with_capacity(4096),
        |v: &mut Vec<u8>| v.clear(),
    ));
    drop((0..capacity).map(|_| pool.pull()).collect::<Vec<_>>());
    stream(n, capacity - 2, || {
        let mut b = pool.pull_owned();
        b.push(1);
        b
    })
}

#[path = "common/summary.rs"]
mod summary;
use summary::summary;

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let capacity = args.next().unwrap_or(256);
    // Even, so each candidate goes first in as many pairs as the other.
    let pairs = args.next().unwrap_or(12).max(1).next_multiple_of(2);
    let n = args.next().unwrap_or(1_000_000);
    assert!(
        capacity >= 3,
        "capacity 3 at least: the channel is capacity - 2 deep"
    );
    let (mut ours, mut theirs, mut ratios) = (vec![], vec![], vec![]);
    for pair in 0..pairs {
        // Each goes first in every other pair, so an order effect falls on both alike.
        let (a, b) = if pair % 2 == 0 {
            let a = thrifty(n, capacity);
            (a, lockfree(n, capacity))
        } else {
            let b = lockfree(n, capacity);
            (thrifty(n, capacity), b)
        };
        println!(
            "thrifty {a:7.1} ns/msg   lockfree-object-pool {b:7.1} ns/msg   ratio {:.2}x",
            a / b
        );
        ours.push(a);
        theirs.push(b);
        ratios.push(a / b);
    }
    let (a, b, (r, r_min, r_max)) = (
        summary(&mut ours).0,
        summary(&mut theirs).0,
        summary(&mut ratios),
    );
    println!(
        "capacity {capacity}, {pairs} pairs, medians: thrifty {a:.1} ns, \
         lockfree-object-pool {b:.1} ns, ratio {r:.2}x ({r_min:.2}-{r_max:.2})"
    );
}
