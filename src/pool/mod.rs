//! Bounded object pools that hand out reset objects.
//!
//! [`Pool<T>`] keeps objects that are expensive to build (buffers, scratch maps, parsers) for
//! reuse; [`BufferPool`] is the preset for `Vec<u8>` buffers. A pool answers the three classic
//! complaints about object pools (Go's `sync.Pool` made them famous):
//! - **Unbounded growth.** A pool never retains more than its `capacity` objects, and a weighed
//!   pool ([`Builder::weigh`], every [`BufferPool`]) never more than its byte budget; objects
//!   heavier than a per-object limit are dropped, not kept (the "a few 256 MiB buffers pinned
//!   under 1 KiB traffic" problem, golang/go#23199, uber-go/zap#1484).
//! - **Leaking the previous user's data.** Every object [`Pool::get`] hands out has been
//!   [reset](crate::Reset) (reset-on-get is the guarantee); a fresh object comes straight from
//!   the factory, which must build it empty.
//! - **Pinning what an object references.** `reset_on_return(true)` resets on the way back
//!   instead, so references held inside are released as soon as the guard drops.
//!
//! And it keeps its promise in the shapes servers have: an object given back on any thread is
//! reusable by a get on any other; the fast path does not depend on how many threads the
//! process runs (a thread whose slot index is 8 or more pays one more load, for its leaf of
//! caches, and one of 1 024 or more two, `caches.rs`); what idle and exited threads cached is
//! found by the next get that needs it (except one object per live thread, and, once the pool has
//! made more than 64 caches, 8 for each range of 8 thread slots that used it, on a thread's few
//! gets after one whose look found nothing: below); and [`Pool::clear`] and [`Pool::trim`] reach
//! every cache before they return.
//!
//! # Behaviour under panics
//! A `reset` or `keep_if` that panics drops the object it was given and propagates; the pool
//! holds no lock while user code runs, so it stays fully usable (no poisoning, no double drop).
//! A `weigh` that panics propagates too: from `put`/`try_put` the object is dropped; from a
//! handle's drop it is leaked if the drop's first `weigh` panics and dropped if the one the
//! return runs next does. A unit from the thread's own cache stays counted either way, as its
//! cache's reservation, until the next full reclaim; a ticket's unit (an object from the shared
//! store) stays counted until the next revocation of tickets if the first `weigh` panicked, and
//! is given back at once if the second did. Keep `weigh` to a field read.
//! A factory panic propagates from `get` and leaves the pool's objects and budget as they were
//! (its `misses` tally counts the attempt, and a reclaim the get ran first stays done).
//! So [`Pool`] and [`BufferPool`] are `UnwindSafe` and `RefUnwindSafe`: an object a panic left
//! half-changed is reset before any get hands it out again.
//!
//! # How it works
//!
//! A small cache per thread, in front of a bounded shared store:
//! - Each thread that uses the pool gets a cache (`local.rs`), found by its thread slot index
//!   (`crate::sync::thread_slot_hint`, dense among live threads) in leaves of 8 made for the
//!   indices that use this pool (`caches.rs`): every thread has one, however many threads
//!   the process runs. A cache is a *hot slot* of one object in front of a stack of at most 8,
//!   all inline. A thread that gets and puts one object at a time only touches the hot slot,
//!   with plain loads and stores: no locked instruction, no cache line another thread writes.
//!   A thread past the first 1 024 alive at once has no claim token (`sync::TRACKED_SLOTS`),
//!   so a reclaim cannot tell when it exits: its hot object counts as left behind, which a get
//!   that finds the pool dry may take, live or not (`tests/shapes_pool_slots.rs`: 1 100
//!   threads at once).
//! - Other threads reach a cache only through a *reclaim* (`reclaim.rs`), which shuts the owners
//!   out with an asymmetric fence (`sync::fence`: `membarrier` on Linux) and then moves caches'
//!   objects to the shared store. `clear` and `trim` reclaim everything; so does a put that finds
//!   the budget full of reservations that hold no object (tickets included, below). Owners that see
//!   such a reclaim stop growing their reservations for a while (`ticket.rs`), so with more objects
//!   held at once than the capacity the reclaims stay rare: otherwise each such put would reclaim,
//!   and the owners take their reservations again on their next puts. A get that finds its cache
//!   and the store empty reclaims what other threads' caches stack and what exited threads left in
//!   their hot slots; a live thread whose stack it takes stops stacking (and gives back its stack's
//!   reservation) until its next get that misses its hot slot, so a consumer that also took from
//!   the pool once sends what it gives back to the store, where the producer finds it, instead of
//!   stacking it for the producer's next reclaim. A consumer that takes a few objects of its own
//!   for every message (scratch buffers) misses its hot slot every time and stacks again, the
//!   producer's objects among its own; so a get that took live threads' stacks does not take them
//!   again until its thread has made 8 objects (`GROW_BEFORE_RECLAIM`), while the budget has
//!   room, though live threads' stacks may hold objects again meanwhile: a reclaim costs more
//!   than a few objects, which the budget bounds. Otherwise the pool would stay as small as the
//!   objects in flight and the producer's every dry moment would reclaim (one in 16 to 64
//!   messages, for good); the factory calls instead grow it, within the capacity, until the
//!   store has slack (`tests/shapes_pool.rs`).
//!   What exited threads left is taken whenever a get finds the store dry, and a `try_get`, which
//!   makes nothing, takes live threads' stacks too. Threads that swap batches both ways while they
//!   hold more objects at once than the capacity miss their hot slots every round, so they
//!   stack again every round and can reclaim this way up to about once a round
//!   ([`Stats::reclaims`] counts it; a capacity of at least the objects held at once avoids it,
//!   `tests/shapes_pool.rs`). A get's reclaim leaves a live thread's hot object
//!   to it: taking it would only send that thread to take one back, and two threads would pass one
//!   object to and fro through reclaims. That is the pool's main bounded trade-off: a get may call
//!   the factory while each other live thread keeps one object in its hot slot. Bounded, because a
//!   thread's every 64th get that calls the factory while the budget is full reclaims everything,
//!   live threads' hot objects included, if a hot slot holds an object: threads that used the pool
//!   once and went idle cannot keep the whole capacity from the threads that work (and a budget
//!   full of objects lent out costs no reclaim). The other trade-off: past 64 caches, a thread
//!   whose look at the other caches found nothing skips its next few looks until it has a hit, so a
//!   consuming thread does not pay a pass over every cache per get (and likewise for puts that find
//!   the budget full; see "Looks" below).
//! - Capacity is a budget of two counters (objects, bytes, in one atomic word) that counts
//!   *reservations*: a cache reserves room before it keeps an object and keeps the reservation
//!   while it lends the object out, so a thread's get+put pair never touches the budget, while
//!   objects retained (caches included) never exceed `capacity` at any instant. Only threads
//!   that take from the pool reserve room in their cache; an object given back on a thread
//!   that never takes (the consumer of a producer-consumer pair) goes to the shared store,
//!   where the producer finds it. Taking is the thread's own: a thread whose slot's cache a
//!   taker used before it starts as a non-taker.
//! - An object taken from the shared store keeps its unit of the budget while it is lent out,
//!   as a *ticket* in its box (`ticket.rs`), and the thread that gives it back stores it with
//!   that unit: a handoff between threads never writes the budget. Tickets are room kept for
//!   objects that may never come back (held for ever, forgotten), so a full reclaim revokes
//!   them all, and a return that finds the budget full while tickets are out reclaims before
//!   it refuses anything (past 64 caches, unless its thread's last such look found nothing and
//!   it has had no return kept since: see "Looks" below).
//! - The shared store (`shared.rs`) is a preallocated lock-free ring (`ring.rs`, Vyukov's
//!   bounded MPMC queue) reached when a cache is empty (get) or cannot keep an object (put), by
//!   objects crossing threads, by a reclaim's haul, and by threads in teardown.
//! - The pool is generic over its [`Hooks`] (make, reset, weigh, vet on return): a
//!   [`BufferPool`]'s are `Vec::with_capacity`, `Vec::clear` and `Vec::capacity`, which inline
//!   into `get` and the guard's drop; a pool built from closures ([`Closures`], the default
//!   type parameter) calls them through pointers.
//! - Each object lives in a `Box` the pool allocates once, when the factory makes the object,
//!   so a cache push or pop, and a guard, move one pointer. The box is padded to a cache line
//!   (`CachePadded`), so two threads using two objects never write to one line. An object that
//!   leaves the pool (`into_inner`, a refused return) leaves its box, empty, to its thread's
//!   cache, for the thread's next object (`spare.rs`): a thread whose objects keep leaving does
//!   not pay the allocator for a box per object (128-byte alignment is slow in glibc's).
//! - The budget's word also says when the passes over every cache cannot find anything: a get's
//!   for objects, a put's for room a reclaim could give back. Every reservation and ticket counts
//!   an object, so while the budget counts exactly the objects in the shared store, no cache
//!   holds an object or unused room (`Pool::units_all_stored`): a get that finds the store dry then
//!   calls the factory at once, and a return the budget has no room for is refused at once
//!   (`try_put` and `put` before they box the value).
//!
//! ## Looks
//!
//! A get that misses its cache and the shared store, and a put that finds the budget full, look
//! at every cache the pool has made (8 for each range of 8 thread slots that used it), so they
//! cost more the more threads used the pool; unless the budget counts no object outside the
//! shared store, when there is nothing to find (no other cache holds an object, none holds room a
//! reclaim could give back) and neither looks: a `put`/`try_put` the pool refuses then does not
//! even box its value. Past 64 caches (`LOOK_CACHES`, `pace.rs`) a thread whose look found
//! nothing skips the same look on its next `⌈caches / 64⌉ - 1` such gets (or puts), at most 63,
//! until it has a hit (or a kept put) or another thread takes its cache over (`prefill` always
//! looks): a thread whose gets keep missing (it consumes its objects), or whose puts keep finding
//! the pool full of objects, pays about 64 caches' worth of look each time, not a pass over a
//! thousand threads' caches, which costs microseconds. Meanwhile such a get may make an object
//! while another thread's cache holds one, and such a put may drop its object while a reclaim
//! could have made room.
//!
//! ## Reclaims
//!
//! A reclaim makes a `membarrier` system call on Linux, which interrupts every CPU running a
//! thread of the process. A process that must not be interrupted so, with threads on isolated
//! CPUs say, can set `THRIFTY_MEMBARRIER=0` in its environment before it builds its first pool:
//! its pools then work as on a system without `membarrier`, every get and put taking a full
//! fence, several times the cost of a get+put. A burst from an empty pool (at start-up, or after
//! `clear`) in which many threads each hold several objects at once runs some reclaims whatever
//! the capacity: each thread that finds its cache and the store dry takes what the others have
//! stacked, until every thread's cache has filled.
//!
//! ## Memory
//!
//! An object that leaves the pool on a thread (detached with `into_inner`, or refused on return)
//! leaves its empty box to that thread's cache, one box at most per cache, which `clear` and
//! `trim` free; the thread's next get that finds no object puts the factory's object in it
//! instead of allocating a box. Memory of the pool's own, besides the objects: the shared store,
//! preallocated at build, 24 bytes a slot for `min(capacity, 1024)` slots rounded up to a power
//! of two (6 KiB at the default capacity), and past 1 024 objects a list that grows with them (16
//! bytes an object, kept by gets that empty it, given back by `trim` and `clear`); and a cache of
//! 384 bytes (x86-64), plus the empty box above if it keeps one, per thread that uses the pool,
//! the first 8 inside the pool itself (a `Pool` takes under 6 KiB), the others in leaves of 8
//! (3 KiB), each allocated when a thread of its 8 slots first uses the pool. The pointers of the
//! leaves of slots 8 to 1 023 are in the pool too; past those, in tables that double (8 bytes a
//! leaf up to the highest used: 1 KiB for slots 1 024 to 2 047; `caches.rs`).
//! `cargo test --lib pool::` checks these sizes. So memory follows the threads that used the
//! pool: a thread that outlived a crowd, and kept a slot of 1 000, costs each pool it uses one
//! leaf, and a server with a thousand live threads costs each pool they all touch about 375 KiB.
//! A program with thousands of pools pays that for each.

mod buffer;
mod builder;
mod caches;
mod error;
mod gate;
mod give;
mod guard;
mod hooks;
mod local;
mod pace;
mod reclaim;
mod ring;
mod section;
mod shared;
mod spare;
mod stats;
mod take;
mod tally;
mod ticket;

pub use buffer::{
    BufferBuilder, BufferPool, PooledBuffer, PooledBufferOwned, DEFAULT_BUFFER_CAPACITY,
    DEFAULT_BYTE_BUDGET, DEFAULT_MAX_BUFFER_CAPACITY,
};
pub use builder::Builder;
pub use error::BuildError;
pub use guard::{Pooled, PooledOwned};
pub use hooks::{Buffers, Closures, Hooks};
pub use stats::Stats;

use crate::sync::{fence, thread_slot_hint, try_thread_slot, Arc, CachePadded, Mutex};
use caches::Caches;
use gate::Gate;
use local::Local;
use shared::{Budget, Shared};
use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use tally::Tally;
use ticket::{Carried, Held};

/// The number of objects a pool retains unless [`Builder::capacity`] says otherwise.
pub const DEFAULT_CAPACITY: usize = 256;

/// A bounded pool of reusable objects, each reset before it is handed out.
///
/// # When to use
/// A profile shows that building and dropping the same kind of value (a `Vec<u8>` buffer, a
/// scratch `HashMap`, a parser with internal buffers) costs real time: reuse keeps the
/// allocations, reset keeps the values clean. For byte buffers use [`BufferPool`].
///
/// # When not to use
/// - Small, short-lived values: an allocator serves a few dozen bytes from a thread-local free
///   list as fast as a pool can; just build them (`Vec::with_capacity` + drop).
/// - Objects holding external resources (connections, transactions, file locks): "reset" is a
///   protocol there, not a local operation; use a connection pool.
/// - When nothing shows the allocation matters: a pool keeps memory the program is not using.
///
/// # Examples
/// ```
/// use thrifty::pool::Pool;
///
/// let pool = Pool::new(|| Vec::<u8>::with_capacity(1024));
/// {
///     let mut buf = pool.get();
///     buf.extend_from_slice(b"hello");
/// } // back in the pool
/// let buf = pool.get();
/// assert!(buf.is_empty(), "handed out reset");
/// assert!(buf.capacity() >= 1024, "with its allocation");
/// assert_eq!(pool.stats().hits, 1);
/// ```
///
/// # Allocation
/// - **A miss** (a get that finds no object) calls the factory and allocates one box: the object
///   and 16 bytes of bookkeeping, rounded up to 128 bytes on x86-64 (one 128-byte block, two cache
///   lines, for an object of up to 112 bytes), unless its thread's cache keeps an empty box (one at
///   most: module doc, "Memory").
/// - **Nothing else** allocates in steady state, on one thread or across threads
///   (`tests/alloc_pool.rs`).
/// - **A get may call the factory while other caches hold objects**, in three bounded cases: one
///   object per other live thread, kept in its cache; a thread's next 8 gets that find the store
///   dry after one that took other live threads' stacked objects, while the budget has room; and
///   past 64 caches, a thread's few gets after one whose look found nothing (module doc, "How it
///   works" and "Looks").
/// - **Retained, besides the objects**: the shared store, preallocated at build (6 KiB at the
///   default capacity; 16 bytes more per object past 1 024 objects), and a cache of 384 bytes
///   (x86-64) per thread that uses the pool, the first 8 inside the pool itself (a `Pool` takes
///   under 6 KiB), the others in leaves of 8 (3 KiB). So a server with a thousand live threads
///   costs each pool they all touch about 375 KiB: keep the pools that many threads touch few.
///   `cargo test --lib pool::` checks these sizes; the module doc's "Memory" has them all.
///
/// # Cost
/// - **get, use, drop on one thread**: a few plain loads and stores plus the `reset` (called
///   through a pointer by a pool built from closures, inlined by a [`BufferPool`]): no locked
///   instruction, no shared cache line written, the same with 2 threads or 200 (one more load
///   for a thread of slot index 8 or more, two for 1 024 or more).
/// - **An object that crosses threads** (get on one, drop on another): one CAS on each side, on
///   the shared store's ring, and none on the budget.
/// - **A get that misses its cache and the store, or a put that finds the budget full**: a look
///   at every cache the pool has made (8 for each range of 8 thread slots that used it), so it
///   grows with the threads that used the pool; none when the budget shows there is nothing to
///   find; past 64 caches, a thread whose looks keep finding nothing pays about 64 caches' worth
///   each (module doc, "Looks").
/// - **A reclaim** (`clear`, `trim`, a get that finds the pool dry while other threads' caches
///   hold objects, a put that finds the budget full of reservations that hold no object): a pass
///   over every cache and, on Linux, a `membarrier` system call, which interrupts every CPU
///   running a thread of the process (`THRIFTY_MEMBARRIER=0` turns it off: module doc,
///   "Reclaims"). [`Stats::reclaims`] counts them: one that grows with the gets in steady state
///   means a capacity below the objects held at once, or a shape the pool suits badly. A burst
///   from an empty pool (at start-up, or after `clear`) in which many threads each hold several
///   objects at once runs some too, whatever the capacity; [`prefill`](Pool::prefill) before
///   such a burst avoids most of them.
///
/// Ratios to allocating the buffer, across two series of five runs on a shared 2-core Intel Xeon
/// VM (`cargo run --release --example shootout -- --only pool`; earlier series and another
/// machine in the repository's JOURNAL.md): a 4 KiB [`BufferPool`] get+put costs
/// 0.09x-0.10x on one thread and on two, where `lockfree-object-pool` costs 0.50x-0.55x and
/// 5.0x-6.5x; with 4 or 8 buffers held at once, 0.66x-0.73x on one thread
/// (`lockfree-object-pool` 0.71x-0.77x). Handing every buffer to another thread through
/// thrifty's channel (`cargo run --release --example pool_handoff -- <capacity>`, which
/// rotates the ways round by round) costs a little less with `get_owned` than with
/// `lockfree-object-pool`'s `pull_owned`, and about half `get_owned`'s time with `get` on a pool
/// that lives for good (see [`get_owned`](Pool::get_owned) for why); at capacity 8 the
/// channel's parking dominates every way.
/// `bash scripts/instructions.sh` counts 58 instructions per get+put, against 65 for
/// `lockfree-object-pool` and 349 for the allocator.
// `repr(C)` with the caches first, and the first leaf first in them: the slot-0..8 caches
// then start at the pool's own address, and the fast paths reach one without adding an offset.
#[repr(C)]
pub struct Pool<T, H = Closures<T>> {
    /// One cache per thread slot index that has used the pool.
    caches: Caches<T>,
    shared: Shared<T>,
    budget: Budget,
    /// Closed while a reclaim holds the caches: owners stay out (see `local.rs`).
    gate: CachePadded<Gate>,
    /// Serialises reclaims, and redemptions of tickets outside a section.
    reclaiming: Mutex<()>,
    /// Tickets redeemed under `reclaiming` (`ticket.rs`).
    strays: Carried,
    hooks: H,
}

/// A thread's gets that miss while the budget is full reclaim everything on every this-many of
/// them if a hot slot holds an object: idle live threads' hot objects can then not keep the
/// whole capacity from the threads that work, at one reclaim per this many such misses.
const FULL_MISS_RECLAIM: u64 = 64;

/// A get that misses its cache and the store looks at the other caches for objects, and a put
/// that finds the budget full for reservations that hold no object; a thread whose pass found
/// nothing skips its next ones so that they cost about this many caches' worth each (`pace.rs`).
const LOOK_CACHES: usize = 64;

/// A get that took live threads' stacks (a reclaim) takes them again only after its thread has
/// made this many objects, while the budget has room (`take.rs`).
const GROW_BEFORE_RECLAIM: u64 = 8;

/// The most passes a thread skips after one found nothing.
const MAX_SKIPPED_LOOKS: usize = 63;

/// How the pool holds an object: boxed, so the fast path moves one pointer, and padded to a
/// cache line, so objects used by different threads never share one; with its ticket
/// (`ticket.rs`).
pub(crate) type Item<T> = Box<CachePadded<Held<T>>>;

/// `value` boxed as the pool holds it, with no ticket.
fn item<T>(value: T) -> Item<T> {
    Box::new(CachePadded::new(Held::new(value)))
}

impl<T: crate::Reset> Pool<T> {
    /// A pool of [`DEFAULT_CAPACITY`] objects built by `factory` and reset with
    /// [`Reset`](crate::Reset). Use [`Pool::builder`] for the other knobs.
    ///
    /// The factory must build objects in reset state: fresh objects are handed out as built.
    ///
    /// Such a pool bounds the *number* of objects it keeps, never their bytes: a
    /// `Pool::new(Vec::<u8>::new)` that gets a burst of 1 000 buffers of 1 MiB back keeps 256
    /// of them, 256 MiB. To bound bytes, weigh the objects:
    /// `Pool::builder().weigh(|v: &Vec<u8>| v.capacity()).byte_budget(16 << 20).build(Vec::new)`
    /// (or use a [`BufferPool`]).
    ///
    /// # Examples
    /// ```
    /// let pool = thrifty::pool::Pool::new(String::new);
    /// pool.get().push_str("scratch");
    /// assert!(pool.get().is_empty());
    /// ```
    pub fn new(factory: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Builder::new().build(factory)
    }
}

impl<T> Pool<T> {
    /// A builder for a pool: capacity, reset closure, weight and byte budget, `keep_if`, reset
    /// on return.
    ///
    /// # Examples
    /// ```
    /// use thrifty::pool::Pool;
    ///
    /// let pool = Pool::builder()
    ///     .capacity(16)
    ///     .keep_if(|v: &Vec<u8>| v.capacity() <= 64 * 1024)
    ///     .build(|| Vec::with_capacity(4096));
    /// assert_eq!(pool.capacity(), 16);
    /// ```
    pub fn builder() -> Builder<T> {
        Builder::new()
    }
}

impl<T, H: Hooks<T>> Pool<T, H> {
    pub(crate) fn from_parts(hooks: H, capacity: usize, byte_budget: usize) -> Self {
        fence::init();
        Self {
            caches: Caches::new(),
            shared: Shared::new(capacity),
            budget: Budget::new(capacity, byte_budget),
            gate: CachePadded::new(Gate::new()),
            reclaiming: Mutex::new(()),
            strays: Carried::default(),
            hooks,
        }
    }

    /// The most objects this pool retains.
    pub fn capacity(&self) -> usize {
        self.budget.max_count()
    }

    /// Takes an object from the pool, or builds one with the factory if the pool has none.
    ///
    /// The object is in reset state: reset by the pool's `reset` if it was used before, as
    /// built if it is fresh. Dropping the guard gives it back.
    ///
    /// # Panics
    /// If the factory or `reset` panics; the pool stays consistent and usable, and the object
    /// being reset is dropped.
    #[inline]
    pub fn get(&self) -> Pooled<'_, T, H> {
        Pooled::new(self, self.take())
    }

    /// Takes an object from the pool if it has one, without calling the factory.
    ///
    /// It reaches what `get` reaches before the factory, objects left by exited threads included,
    /// but never the hot object of a live thread (with one exception: a thread that took over an
    /// exited thread's slot, and whose every get and return since found or left its object in the
    /// hot slot, counts as that exited thread until its first other get or return: a check on every
    /// get that would tell them apart would add a load and a branch to the fast path). `get` takes
    /// those on every 64th miss while the budget is full, so that idle threads cannot keep the pool
    /// from working ones; that reclaim is paced by the factory calls `get` makes, and `try_get`
    /// makes none. So while live, idle threads hold the pool's objects in their hot slots,
    /// `try_get` returns `None`. A thread counts as exited once its thread-locals are destroyed:
    /// `JoinHandle::join` returns after that, but the end of `std::thread::scope` may come
    /// before it, so right after a scope its threads' hot objects may still be out of reach.
    ///
    /// # Panics
    /// If `reset` panics (the object is dropped).
    ///
    /// # Examples
    /// ```
    /// let pool = thrifty::pool::Pool::new(Vec::<u8>::new);
    /// assert!(pool.try_get().is_none(), "empty: no factory call");
    /// drop(pool.get());
    /// assert!(pool.try_get().is_some());
    /// ```
    #[inline]
    #[must_use = "the object goes back to the pool as soon as the guard is dropped"]
    pub fn try_get(&self) -> Option<Pooled<'_, T, H>> {
        self.take_retained().map(|obj| Pooled::new(self, obj))
    }

    /// Like [`get`](Pool::get), for an `Arc`'d pool: the guard owns a reference to the pool, so
    /// it is `'static` and can be sent to another thread (when `T: Send`).
    ///
    /// Besides `get`'s work, it increments the `Arc`'s count, and the guard's drop decrements
    /// it. Where guards cross threads (taken on one, dropped on another), both threads write
    /// that count, and its cache line moves between their cores with every object: on a 2-core
    /// VM, where a hand-over through a channel took about 180 ns, that was about half of it
    /// (`examples/pool_handoff.rs`). A pool that lives as long as the program (a `static`, in
    /// a `std::sync::LazyLock` say, or one leaked with `Box::leak`) gives [`get`](Pool::get)
    /// guards that are `'static` too, and `Send` when `T: Send`, with no count to bump:
    /// ```
    /// use std::sync::LazyLock;
    /// use thrifty::pool::BufferPool;
    ///
    /// static BUFFERS: LazyLock<BufferPool> = LazyLock::new(BufferPool::new);
    ///
    /// let mut buf = BUFFERS.get(); // a PooledBuffer<'static>
    /// buf.extend_from_slice(b"sent");
    /// std::thread::spawn(move || assert_eq!(&buf[..], b"sent")).join().unwrap();
    /// assert_eq!(BUFFERS.stats().retained, 1, "given back on the other thread");
    /// ```
    ///
    /// An object that holds a `PooledOwned` of its own pool (a tree of pooled nodes) keeps
    /// that guard, and so the pool, alive while it sits in the pool: with the default reset on
    /// get, the pool and the objects in it are then never freed once the last other `Arc`
    /// drops (a reference cycle). Build such a pool with
    /// [`reset_on_return(true)`](Builder::reset_on_return), so that a `reset` that drops the
    /// held guard runs as the object comes back, or [`clear`](Pool::clear) it before dropping
    /// it.
    ///
    /// # Panics
    /// As [`get`](Pool::get).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use thrifty::pool::Pool;
    ///
    /// let pool = Arc::new(Pool::new(Vec::<u8>::new));
    /// let mut buf = pool.get_owned();
    /// std::thread::spawn(move || buf.push(1)).join().unwrap(); // returned from that thread
    /// assert_eq!(pool.stats().retained, 1);
    /// ```
    #[cfg(not(loom))]
    #[inline]
    pub fn get_owned(self: &Arc<Self>) -> PooledOwned<T, H> {
        PooledOwned::new(Arc::clone(self), self.take())
    }

    /// Under loom, `Arc` is loom's, which cannot be a method receiver: call
    /// `Pool::get_owned(&pool)` (which also works in normal builds).
    #[cfg(loom)]
    #[inline]
    pub fn get_owned(this: &Arc<Self>) -> PooledOwned<T, H> {
        PooledOwned::new(Arc::clone(this), this.take())
    }

    /// The calling thread's cache, made if its slot has none yet. `None` during thread-local
    /// teardown, when the thread has no slot any more, and for a pool that retains nothing.
    #[inline]
    fn local(&self) -> Option<&Local<T>> {
        if self.capacity() == 0 {
            return None;
        }
        // The lookup of the fast paths first: the slot's cache usually exists.
        self.local_fast()
            .or_else(|| self.caches.get_or_make(try_thread_slot()?))
    }

    /// The calling thread's cache if it has a slot and the cache exists: the fast paths'
    /// lookup, one thread-local load, and for a slot of 8 or more a leaf pointer's load (from
    /// 1 024, a table's too).
    #[inline(always)]
    fn local_fast(&self) -> Option<&Local<T>> {
        self.caches.get(thread_slot_hint())
    }

    /// Counts a dropped return on the caller's cache if it has one, else on the shared tallies.
    fn count_discard(&self) {
        match self.local_fast() {
            Some(local) => local.tallies.discarded.bump_owned(),
            None => self.shared.tallies.discarded.bump(),
        }
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn budget_used(&self) -> (usize, usize) {
        self.budget.used()
    }
}

// SAFETY: shared access to a pool from several threads touches (1) the shared store (a
// lock-free ring, and a mutex around its overflow list); (2) atomics; (3) the hooks, which are
// `Sync`; (4) per-slot caches, each touched only
// inside its owner's section (slot indices of live threads are distinct; a slot is handed over
// under the slot registry's mutex) or by a reclaim that has shut the owner out (`local.rs`).
// Objects move between threads through the store, the caches and reclaims, so `T: Send` is
// required.
unsafe impl<T: Send, H: Sync> Sync for Pool<T, H> {}

// A panic in user code (a hook, or while a guard is held) leaves the pool consistent and usable
// ("Behaviour under panics", above), and no half-changed object can reach the next get: every
// object is reset before it is handed out again, and one whose hook panicked is dropped. So a
// pool may cross `catch_unwind` as freely as crossbeam's channel ends do. (Without these the
// boxed closures and the caches' cells would make it neither.)
impl<T, H> UnwindSafe for Pool<T, H> {}
impl<T, H> RefUnwindSafe for Pool<T, H> {}

impl<T, H: Hooks<T> + fmt::Debug> fmt::Debug for Pool<T, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("capacity", &self.budget.max_count())
            .field("byte_budget", &self.budget.max_bytes())
            .field("hooks", &self.hooks)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;
#[cfg(all(test, not(loom)))]
mod ticket_tests;
