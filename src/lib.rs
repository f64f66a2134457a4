//! Allocation-aware concurrency primitives for hot paths: their allocation claims are asserted
//! by tests, and each module's main primitives are benchmarked side by side with std and the
//! crates they are usually compared with.
//!
//! # A first taste
//!
//! A request path that reuses its buffer, counts what it served, sheds load past a limit, and
//! proves it allocated nothing:
//! ```
//! use std::io::Write;
//! use thrifty::{counter::Counter, limit::InFlight, measure, pool::BufferPool};
//!
//! #[global_allocator] // counts every allocator call, per thread (for `measure::count`)
//! static ALLOC: measure::CountingAlloc = measure::CountingAlloc::new();
//!
//! let buffers = BufferPool::new(); // 4 KiB buffers, at most 256 kept
//! let served = Counter::new(); // striped only if threads contend on it for long
//! let gate = InFlight::new(64); // at most 64 requests at once
//! let handle = |id: u32| {
//!     let Some(_permit) = gate.try_enter() else {
//!         return; // shed: answer "busy"
//!     };
//!     let mut out = buffers.get(); // empty, its capacity kept from the last user
//!     write!(out, "request {id}").unwrap();
//!     served.incr();
//! }; // the buffer goes back to the pool here
//! handle(0); // the first request makes the buffer
//! let ((), allocs) = measure::count(|| (1..100).for_each(handle)); // on this thread
//! assert!(allocs.is_zero(), "99 requests, no allocator call: {allocs:?}");
//! assert_eq!(served.sum(), 100);
//! ```
//!
//! # Module map
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`measure`] | `CountingAlloc`, `count`, `AllocStats`, the criterion `Allocations` measurement |
//! | [`pool`] | bounded object pools that hand out reset objects; the crate-root [`Reset`] trait |
//! | [`arena`] | pooled, reset and limited bump arenas (bumpalo); `scratch` |
//! | [`map`] | `ShardedMap`, a sharded map for write-heavy work; `CowMap`, a copy-on-write map whose readers never wait |
//! | [`counter`] | striped counters and gauges, per-thread-slot state (`PerCpu`) |
//! | [`channel`] | bounded MPMC channels with backpressure, visible depth and recycled slots |
//! | [`limit`] | token buckets (global and per key), a FIFO weighted semaphore, in-flight load shedding |
//!
//! # Which primitive when
//!
//! | access pattern | thrifty | std alternative | why |
//! | --- | --- | --- | --- |
//! | a profile shows one allocation per request dominating | `pool::Pool` | `Vec::with_capacity` + drop | reuse keeps the capacity; reset-on-get keeps it clean |
//! | many short-lived allocations freed together | [`arena::ArenaPool`] | `Box` per value | one bump per value, one reset per batch |
//! | many writers on one map | [`map::ShardedMap`] | `Mutex<HashMap>` | writers on different shards never meet |
//! | reads vastly outnumber writes | [`map::CowMap`] | `RwLock<HashMap>` | readers never wait, writers copy |
//! | a hot counter bumped from every core | `counter::Counter` | `AtomicU64` | striped cells, no shared cache line |
//! | producers must slow down when consumers lag | [`channel::bounded`], [`channel::recycling`] | `std::sync::mpsc::sync_channel` | MPMC, bounded, depth visible, slots reused |
//! | cap a rate or the work in flight | [`limit`] | `Mutex` around a counter | shed load instead of queueing without bound |
//! | prove what an operation allocates | [`measure::count`] | dhat | per-thread counts, exact in parallel tests |
//!
//! # Giving memory back
//!
//! Every cache, spare and per-thread state a type keeps has a bound in its docs, and what can be
//! given back while the value lives has a method that does it (the table); the rest goes when
//! the value drops (the list after it). The names follow what is given back: `trim(keep)` drops
//! pooled objects down to a count, `shrink_to_fit` shrinks hash tables as std's collections do,
//! and `CowMap::trim` frees the old versions only writers still keep.
//!
//! | type | what it keeps | given back by |
//! | --- | --- | --- |
//! | [`pool::Pool`], [`pool::BufferPool`] | up to `capacity` objects (and a byte budget), in per-thread caches and a shared store, and one empty box per cache | `trim(keep)`, `clear()`: every thread's cache, idle and exited threads' included |
//! | [`arena::ArenaPool`] | up to `capacity` arenas, each with at most `retain_bytes` of chunks | `trim(keep)`, `clear()` |
//! | [`map::ShardedMap`] | tables sized for the most entries held (`clear` keeps them) | `shrink_to_fit()` |
//! | [`map::CowMap`] | old versions reads were using when a write came, and one kept as the next write's spare | `trim()`; one a `Reader` holds: `Reader::let_go()`, then `trim()` (or drop the `Reader`) |
//! | [`limit::KeyedLimiter`] | a bucket per key, until a sweep finds it refilled | `evict_idle()`, then `shrink_to_fit()` |
//! | [`counter::Counter`], [`counter::Gauge`] | cells, once contention striped them | `compact()` (needs `&mut`: a `static` counter keeps its cells, at most `(2 × max_cells() − 2) × 128` bytes on x86-64) |
//!
//! Kept until the value drops: a pool's per-thread caches (384 bytes each on x86-64, and their
//! leaves), a `CowMap`'s hazard slots (one per read or `Reader` that ever ran at once), a
//! channel's ring (its capacity's slots, allocated at creation) and, in a `recycling` channel,
//! each slot's largest buffer; the wait lists of a channel or a semaphore keep their largest
//! length.
//!
//! # Processes that fork
//!
//! A child forked from a process whose other threads were inside an operation of one of these
//! values at that moment (holding a lock, inside a pool's fast path, between a channel slot's
//! claim and its publication, changing a wait line) inherits that state without the threads that
//! would have finished it, as with any lock: its next call that needs them may wait for ever. In
//! the child, use a value made before the fork only if no other thread was using it then, or
//! make new ones; POSIX allows only async-signal-safe calls in the child of a multi-threaded
//! process until it `exec`s. A value no other thread was inside works in the child as in the
//! parent (the pool's `membarrier` registration carries over; `tests/fork_child.rs`).
//!
//! # Feature flags
//!
//! - `criterion` (off): `measure::Allocations`, a criterion 0.8 `Measurement` reporting
//!   allocations per iteration. Off by default so a normal build never compiles criterion; it
//!   needs Rust 1.86 (criterion 0.8's), where the rest of the crate needs 1.80.
//! - `collections` (off): `arena::collections`, bumpalo's arena-backed `Vec`, `String` and `Box`.
//!
//! # How the crate is built
//!
//! Every atomic, lock, `UnsafeCell` and thread-local comes from one private shim, so the loom model
//! checker can replace them all (`RUSTFLAGS="--cfg loom"`). Every module ships with a fuzz target;
//! every module but `measure` (the allocation counter itself) with dhat allocation tests, proptest
//! models and loom models; and its main primitives with criterion benches against std and their
//! peers and rows in `cargo run --release --example shootout` (not every type has its own: `Gauge`,
//! `PerCpu`, `KeyedLimiter` and `InFlight` have no shootout row).
//!
//! These docs name the test, bench, example and script that backs a claim by its path
//! (`tests/alloc_pool.rs`, `benches/counter.rs`, `scripts/instructions.sh`). Those files are in
//! the [repository](https://github.com/thrifty-rs/thrifty), not in the published package,
//! which holds the library's source only; clone it to run them.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]
#![doc(test(attr(deny(warnings))))]

pub mod arena;
pub mod channel;
pub mod counter;
pub mod limit;
pub mod map;
pub mod measure;
pub mod pool;
pub mod reset;

mod drop_each;
mod fail;
pub(crate) mod sync;

/// Whether a unit test's threads ran at once, and its "not tested" report where the scheduler
/// kept them apart: shared with the integration tests.
#[cfg(all(test, not(loom)))]
#[path = "../tests/common/at_once.rs"]
mod at_once;

pub use reset::Reset;

/// The README's examples, compiled and run as doctests so the quick start keeps working.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
