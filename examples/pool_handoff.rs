//! Get on one thread, drop on another: a producer takes a 4 KiB buffer, writes a byte, and sends
//! it through thrifty's bounded channel to a consumer thread that drops it. Four ways, run in
//! turn, the order rotating from round to round (each run a fresh pool, channel and consumer,
//! the pool prefilled to `capacity`, the channel two less deep so the pool covers every buffer
//! in flight):
//!
//! - thrifty's `BufferPool::get_owned` on an `Arc`'d pool, and `lockfree-object-pool`'s
//!   `pull_owned`: each guard holds a clone of the `Arc`, so the producer increments its count
//!   and the consumer decrements it, once per buffer;
//! - thrifty's `get` and `lockfree-object-pool`'s `pull` on a pool that lives as long as the
//!   program (leaked here, as a `static` would live): their guards are `'static` and `Send`,
//!   and count nothing.
//!
//! It prints each round, then each way's median with its range and its ratio to thrifty's
//! `get_owned`: on a shared machine, rotating runs cancel the drift a single run cannot. The
//! pool's byte budget is sized to hold `capacity` 4 KiB buffers.
//!
//! `cargo run --release --example pool_handoff -- [capacity] [rounds] [messages]` (defaults:
//! 256, 12, 1000000).

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

/// A thrifty pool of `capacity` 4 KiB buffers, prefilled; the default budget (16 MiB) holds
/// 4096 buffers, this one `capacity` of them.
fn thrifty_pool(capacity: usize) -> BufferPool {
    let pool = BufferPool::builder()
        .capacity(capacity)
        .byte_budget(capacity * DEFAULT_BUFFER_CAPACITY)
        .build();
    assert_eq!(pool.prefill(capacity), capacity);
    pool
}

/// Checks that every buffer came from the pool, none from the allocator.
fn check(pool: &BufferPool) {
    let s = pool.stats();
    assert!(s.misses == 0 && s.discarded == 0, "{s:?}");
}

type Lockfree = lockfree_object_pool::LinearObjectPool<Vec<u8>>;

/// A `lockfree-object-pool` of 4 KiB buffers holding `capacity` of them.
fn lockfree_pool(capacity: usize) -> Lockfree {
    let pool = Lockfree::new(
        || Vec::<u8>::with_capacity(4096),
        |v: &mut Vec<u8>| v.clear(),
    );
    drop((0..capacity).map(|_| pool.pull()).collect::<Vec<_>>());
    pool
}

fn thrifty_owned(n: usize, capacity: usize) -> f64 {
    let pool = Arc::new(thrifty_pool(capacity));
    let ns = stream(n, capacity - 2, || {
        let mut b = pool.get_owned();
        b.push(1);
        b
    });
    check(&pool);
    ns
}

fn thrifty_for_good(n: usize, capacity: usize) -> f64 {
    // Leaked: a pool for the program's lifetime, as a `static` one; a few MiB per run.
    let pool: &'static BufferPool = Box::leak(Box::new(thrifty_pool(capacity)));
    let ns = stream(n, capacity - 2, || {
        let mut b = pool.get();
        b.push(1);
        b
    });
    check(pool);
    ns
}

fn lockfree_owned(n: usize, capacity: usize) -> f64 {
    let pool = Arc::new(lockfree_pool(capacity));
    stream(n, capacity - 2, || {
        let mut b = pool.pull_owned();
        b.push(1);
        b
    })
}

fn lockfree_for_good(n: usize, capacity: usize) -> f64 {
    let pool: &'static Lockfree = Box::leak(Box::new(lockfree_pool(capacity)));
    stream(n, capacity - 2, || {
        let mut b = pool.pull();
        b.push(1);
        b
    })
}

#[path = "common/summary.rs"]
mod summary;
use summary::summary;

/// One way to hand buffers over: nanoseconds per message for `n` messages at a capacity.
type Way = fn(usize, usize) -> f64;

/// The ways compared, in the first round's order.
const WAYS: [(&str, Way); 4] = [
    ("thrifty get_owned (Arc)", thrifty_owned),
    ("lockfree-object-pool pull_owned (Arc)", lockfree_owned),
    ("thrifty get (pool for good)", thrifty_for_good),
    (
        "lockfree-object-pool pull (pool for good)",
        lockfree_for_good,
    ),
];

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let capacity = args.next().unwrap_or(256);
    let rounds = args.next().unwrap_or(12).max(1);
    let n = args.next().unwrap_or(1_000_000);
    assert!(
        capacity >= 3,
        "capacity 3 at least: the channel is capacity - 2 deep"
    );
    let mut times = vec![Vec::new(); WAYS.len()];
    for round in 0..rounds {
        // Each way goes first in as many rounds as the others (give or take one): an order
        // effect falls on all alike.
        let mut line = format!("round {round:2}:");
        let mut ns = [0.0; WAYS.len()];
        for k in 0..WAYS.len() {
            let way = (round + k) % WAYS.len();
            ns[way] = (WAYS[way].1)(n, capacity);
        }
        for (way, t) in ns.iter().enumerate() {
            times[way].push(*t);
            line += &format!(" {t:7.1}");
        }
        println!("{line} ns/msg");
    }
    println!("capacity {capacity}, {rounds} rounds, ns per message (median, lowest-highest):");
    let base = summary(&mut times[0].clone()).0;
    for (way, t) in times.iter_mut().enumerate() {
        let (median, low, high) = summary(t);
        println!(
            "  {:42} {median:7.1} ({low:.1}-{high:.1}), {:.2}x thrifty get_owned",
            WAYS[way].0,
            median / base
        );
    }
}
