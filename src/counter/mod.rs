//! Counters that scale where one atomic cannot: [`Counter`] (monotonic `u64`), [`Gauge`]
//! (`i64` level) and [`PerCpu`] (per-slot state of any type).
//!
//! A single `AtomicU64` bumped from every core is the hottest cache line in a service: each
//! `fetch_add` drags the line to the bumping core. Java's `LongAdder` and Linux's
//! `percpu_counter` stripe the count over cache-padded cells and sum on read; so does this
//! module, with the memory discipline of a metrics registry holding thousands of counters.
//!
//! # The design, and the one it was weighed against
//!
//! Two ways to stripe, measured on the same machine (2 cores; per increment per thread at 2
//! threads, `cargo bench --bench counter` and the shootout's counter table): a shared
//! `AtomicU64::fetch_add` 11–16 ns, a `fetch_add` on a cache line of one's own about 3 ns, a
//! plain thread-local add under 1 ns.
//!
//! - **`LongAdder`** (Doug Lea, `java.util.concurrent.atomic.Striped64`): a `base` word updated
//!   by CAS; on a failed CAS, an array of cells is allocated and each thread CASes the cell its
//!   hash picks, rehashing on collision and doubling the array up to the CPU count. Any thread
//!   may write any cell, so every increment is a locked read-modify-write: at best the ≈ 3 ns
//!   of an uncontended `fetch_add`, about 4x a local add. Simple, and threads may come and go
//!   freely.
//! - **Owner-written cells** (the `percpu_counter` idea, without kernel preemption control): a
//!   cell written by exactly one thread needs no locked instruction: a relaxed load and a relaxed
//!   store make the increment, and readers still see each cell's value grow monotonically. The
//!   price is deciding who owns a cell and what happens when the owner exits.
//!
//! `Counter` and `Gauge` use **both**: `LongAdder`'s lazy shape (compact until a failed
//! compare-exchange, then one allocation of cells) with owner-written cells. A thread finds its
//! cell from `crate::sync`'s per-thread *slot* (`slot & (cells - 1)`, or one of the next few
//! cells if another live thread owns that one) and owns it through its slot *claim token*, a
//! number unique to one thread's hold on one slot. Only the owner writes the cell's `owned` word,
//! by a relaxed load and store. When a thread exits its claim ends, and the next thread that maps
//! to the cell takes it over by compare-exchange and keeps adding to the value left in it (the
//! claim's end happens-before the takeover): no registration list, no fold-back at thread exit,
//! no lost increment. Threads that cannot own a cell fall back to a `fetch_add`, so no increment
//! is ever lost: a thread that finds every cell near its slot owned by a live thread (more
//! threads than cells) adds to its home cell's *shared* word, and a thread tearing down its
//! thread-locals (its slot already given back) adds to the counter's `base` word.
//!
//! Each cell is one cache line holding its owner's token, its `owned` word and its `shared`
//! word, so the owner's add reads and writes one line that no other thread writes while it
//! lives. The price is paid when slots collide: a thread whose home cell belongs to another live
//! thread reads that thread's line on each add before it reaches its own cell (and a thread that
//! owns none adds to the home line's `shared` word), so the owner's line moves between cores.
//! (Packing the tokens in separate lines instead made the owner's add touch two lines; the
//! CHANGELOG has the measurements.)
//!
//! A thread's add still finds its cell every time (the token, the array, the owner check).
//! [`LocalCounter`] and [`LocalGauge`] do that once per handle: the add is then one thread-local
//! read that re-checks the claim token, and the load and store (0.6–0.7 ns against `add`'s
//! 0.8–1.6 ns at 2 threads, `cargo bench --bench counter`), for hot loops that can hold a
//! handle.
//!
//! Why not pure `LongAdder`: its increment is a locked RMW, so it cannot reach half the speed of
//! a thread-local add (the target). Why not owner-written cells for every counter from
//! the start: `cells × 128` bytes per counter, which ten thousand idle counters cannot afford.
//!
//! # `take`, `reset` and `set`
//!
//! All three rewrite the total through the shared `base` word by one compare-exchange of
//! `base := new − Σ cells` (the cells themselves are never written by anyone but their owner, so
//! they cannot be zeroed under an owner's feet). An add concurrent with the rewrite lands wholly
//! before it (in what `take` returns, or overwritten by `set`) or wholly after it; never both,
//! never neither. See [`Counter::take`] and [`Gauge`].
//!
//! # Orderings
//!
//! Adds are relaxed: a count publishes nothing. The cell array is published with Release and
//! found with Acquire. `take`/`set` write `base` with Release after reading the cells, and `sum`
//! reads `base` with Acquire before reading the cells, so a `sum` that sees a `take`'s offset also
//! sees every cell value it subtracted (the total never appears to wrap below zero).
//!
//! # When a plain atomic is enough
//!
//! A counter bumped off the hot path (a few times per request at most, from a handful of
//! threads), or read about as often as it is written: `AtomicU64` is 8 bytes and reads in one
//! load. An uncontended `Counter` costs about the same per add (it stays compact) but 24 bytes,
//! and `sum` on a striped one reads a cache line per cell.

mod adapt;
mod block;
mod cells;
mod gauge;
mod local;
mod monotonic;
mod per_cpu;

pub use gauge::Gauge;
pub use local::{LocalCounter, LocalGauge};
pub use monotonic::Counter;
pub use per_cpu::PerCpu;

#[cfg(all(test, not(loom)))]
mod tests;
