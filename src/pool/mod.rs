//! Bounded object pools that hand out reset objects.
//!
//! [`Pool<T>`] keeps objects that are expensive to build (buffers, scratch maps, parsers) for
//! reuse. It answers the three classic complaints about object pools (Go's `sync.Pool` made
//! them famous):
//! - **Unbounded growth.** A pool never retains more than its `capacity` objects; a
//!   [`BufferPool`] also never retains more than its byte budget, and drops buffers that grew
//!   past a per-buffer limit (the "a few 256 MiB buffers pinned under 1 KiB traffic" problem,
//!   golang/go#23199, uber-go/zap#1484).
//! - **Leaking the previous user's data.** Every object [`Pool::get`] hands out has been
//!   [reset](crate::Reset) (reset-on-get is the guarantee); a fresh object comes straight from
//!   the factory, which must build it empty.
//! - **Pinning what an object references.** `reset_on_return(true)` resets on the way back
//!   instead, so references held inside are released as soon as the guard drops.
//!
//! # Design
//!
//! A small cache per thread slot, in front of a bounded shared store:
//! - The pool owns an array of caches (`local.rs`), one per thread slot index
//!   (`crate::sync::try_thread_slot`, dense indices of live threads). The thread holding index
//!   `i` is the only thread that touches cache `i`: no lock, no atomic read-modify-write, no
//!   cache line another thread writes. A cache is a *hot slot* of one object in front of a
//!   stack of at most 4, all inline (no allocation of its own). A thread that gets and puts one
//!   object at a time only touches the hot slot: a get loads a pointer and stores null, a put
//!   loads it, checks the slot's reservation and the epoch, and stores the pointer back, plus
//!   one plain store of statistics each. The slot index is one thread-local load
//!   (`sync::thread_slot_hint`), and everything but the hot-slot push is behind one tail call,
//!   so the guard's drop is small enough to inline into the caller's loop. The stack serves threads that hold several objects at
//!   once; it is kept off the one-object path because each push or pop would read back the
//!   length the previous one wrote and index with it, a chain of store-to-load forwards that
//!   measured 1.1 ns more per get + put.
//! - The caches belong to the pool, not to the threads, which is why this design was picked
//!   over a `thread_local!` cache: a `thread_local!` cannot be generic over pool instances, its
//!   destructor would have to reach back into pools that may be gone, and objects cached for an
//!   exited thread would leak or need a global registry. Here, a thread that exits leaves its
//!   cache to the next thread that takes its index, and everything is dropped with the pool.
//!   A thread whose locals are being destroyed has no index (`try_thread_slot` is `None`), so an
//!   object dropped from another thread-local's destructor goes to the shared store or is
//!   dropped; it never touches a cache.
//! - The pool is generic over its [`Hooks`] (make, reset, weigh, vet on return): a
//!   [`BufferPool`]'s are `Vec::with_capacity`, `Vec::clear` and `Vec::capacity`, which inline
//!   into `get` and the guard's drop; a pool built from closures ([`Closures`], the default
//!   type parameter) calls them through pointers, 0.3–0.7 ns more per get + put
//!   (`benches/pool.rs`, the `(closures)` row).
//! - Threads with no slot (more live threads than `2 × CPUs`, at least 4 and at most 128) and
//!   caches that are empty (get) or full (put) use the shared store, a preallocated
//!   `Mutex<Vec<T>>` (`shared.rs`). An object released on another thread is reused from there.
//! - Each object lives in a `Box` the pool allocates once, when the factory makes the object,
//!   so a cache push or pop, and a guard, move one pointer. The box is padded to a cache line
//!   (`CachePadded`), so two threads using two objects never write to one line (with plain
//!   boxes, two 24-byte `Vec` headers allocated side by side cut two-thread throughput in
//!   half). Moving the object itself (24 bytes
//!   for a `Vec`) through the cache and the guard cost more than the rest of the fast path put
//!   together (store-to-load forwarding stalls: a boxed stack measured 2 ns per pop+push where
//!   a stack of `Vec`s measured 10 ns). The box costs one allocation per factory call and one
//!   free per object dropped or detached with `into_inner`, never one per get or put.
//! - Capacity is enforced by a budget of two atomic counters (objects, bytes) that counts
//!   *reservations*: a cache reserves room before it keeps an object and keeps the reservation
//!   while it lends the object out, so the steady-state get/put pair never touches the budget,
//!   while objects retained (caches included) never exceed `capacity` at any instant. A cache
//!   that runs empty gives its reservation back before taking from the shared store.
//!
//! # Behaviour under panics
//! A `reset` or `keep_if` that panics drops the object it was given and propagates; the pool
//! holds no lock while user code runs, so it stays fully usable (no poisoning, no double drop).
//! A factory panic propagates from `get` and leaves the pool unchanged.
//!
//! # When pooling pays, even under a modern allocator
//! Measured by `benches/pool.rs` (glibc) and `benches/pool_mimalloc.rs` on a shared 2-core VM
//! (one thread, get + write one byte + put, a [`BufferPool`]):
//!
//! | buffer | glibc alloc+free | pooled | mimalloc alloc+free | pooled |
//! | --- | --- | --- | --- | --- |
//! | 64 B | 11.5 ns | 5.1 ns (2.2× faster) | — | — |
//! | 4 KiB | 24.8 ns | 4.2 ns (5.9×) | 20.4 ns | 4.1 ns (5.0×) |
//! | 64 KiB | 37.7 ns | 4.6 ns (8.3×) | 20.7 ns | 4.1 ns (5.1×) |
//!
//! Across runs that day mimalloc's alloc+free of 4 KiB took 16.5–30.7 ns, and some processes
//! ran the pooled loop at 5.5–6.5 ns (the VM's vCPUs differ; see [`Pool`]'s cost): read the
//! ratios as ranges, 2× to 5× under mimalloc.
//!
//! A pooled get+put costs the same whatever the buffer size; an allocator's cost depends on
//! the size class and on whether the block is in its per-thread cache. So: pooling pays for
//! buffers of a few KiB and up under glibc, and still 2× to 5× under mimalloc, whose
//! thread-local free lists make small blocks cheap. It pays more in real
//! code than in this loop: a pooled buffer keeps the capacity it grew to (no re-growth, no
//! first touch of fresh pages), and an allocator's fast path degrades when frees happen on
//! other threads. It does not pay for values of a few dozen bytes, nor when objects rarely come
//! back (a pool then only adds a miss and a box).

mod buffer;
mod builder;
mod error;
mod guard;
mod hooks;
mod local;
mod shared;

pub use buffer::{BufferBuilder, BufferPool, PooledBuffer, PooledBufferOwned};
pub use builder::Builder;
pub use error::BuildError;
pub use guard::{Pooled, PooledOwned};
pub use hooks::{Buffers, Closures, Hooks};

use crate::sync::{
    cpus, thread_slot_hint, try_thread_slot, Arc, AtomicUsize, CachePadded, Ordering,
};
use local::{Local, Tally, LOCAL_CAP};
use shared::{Budget, Shared};
use std::fmt;
use std::mem::{self, ManuallyDrop};

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
/// # Cost
/// `get` and the guard's drop take a few relaxed loads and stores plus the `reset` when the
/// calling thread's cache has an object (get) or room (drop); otherwise they take the shared
/// store's lock once. No shared cache line is written in steady state, so threads scale. A pool
/// built from closures calls its `reset` (and `keep_if`) through a pointer; a [`BufferPool`]'s
/// hooks are inlined. The pool allocates at construction (the cache array, the preallocated
/// store, the boxed closures) and never again in steady state; `get` allocates only when the
/// pool is empty: what the factory allocates plus the box that holds the object
/// (`tests/alloc_pool.rs` proves it). [`Pooled::into_inner`] frees that box.
///
/// Measured (a [`BufferPool`] of 4 KiB buffers, one thread, 2-core VM): 48 instructions per
/// get + put (callgrind), the guard's drop inlined into the caller's loop; 3.0–4.3 ns in the
/// shootout and 4.2 ns in `benches/pool.rs`, 6x faster than allocating. `lockfree-object-pool`'s
/// `LinearObjectPool` (one locked instruction per get, no bound, no statistics, no byte budget;
/// 43 instructions) ran 5.3 and 6.7 ns in the same runs. Some processes on that VM ran this
/// pool's loop at 5.5–6.5 ns, level with `LinearObjectPool`, depending on the vCPU they ran on
/// (its other users are invisible to us; it has no hardware counters). On two threads
/// `LinearObjectPool` serialises on its shared list and this pool is 10–20x faster. Recycling
/// across threads (get on one, drop on another) goes through the shared store's lock once per
/// batch of 4 on each side, and measured 1.3–1.6x slower than `LinearObjectPool` there.
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
pub struct Pool<T, H = Closures<T>> {
    /// One cache per thread slot index; empty when `capacity` is 0.
    locals: Box<[CachePadded<Local<T>>]>,
    shared: Shared<T>,
    budget: Budget,
    /// Bumped by `clear`/`trim`: a cache older than it gives its objects back on next use.
    epoch: AtomicUsize,
    hooks: H,
}

/// How the pool holds an object: boxed, so the fast path moves one pointer, and padded to a
/// cache line, so objects used by different threads never share one.
pub(crate) type Item<T> = Box<CachePadded<T>>;

/// A snapshot of a pool's counters, from [`Pool::stats`].
///
/// Counters are summed over the per-thread caches without stopping them, so a snapshot taken
/// while other threads work may be slightly behind them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Gets served from the pool.
    pub hits: u64,
    /// Gets that called the factory.
    pub misses: u64,
    /// Objects given back and retained.
    pub returned: u64,
    /// Objects given back and dropped: the pool was full (capacity or byte budget), `keep_if`
    /// refused them, or a `reset`/`keep_if` panicked on them.
    pub discarded: u64,
    /// Objects retained now. Exact while no other thread uses the pool; while others do, the
    /// sum is taken cache by cache, so a batch (at most 4 objects) moving between a cache and
    /// the shared store may be counted twice or missed. The pool itself never retains more
    /// than its capacity: that bound is kept by an atomic budget, not by this statistic.
    pub retained: usize,
}

impl<T: crate::Reset> Pool<T> {
    /// A pool of [`DEFAULT_CAPACITY`] objects built by `factory` and reset with
    /// [`Reset`](crate::Reset). Use [`Pool::builder`] for the other knobs.
    ///
    /// The factory must build objects in reset state: fresh objects are handed out as built.
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
    /// A builder for a pool: capacity, reset closure, `keep_if`, reset on return.
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
        let slots = if capacity == 0 {
            0
        } else {
            (2 * cpus()).clamp(4, 128)
        };
        Self {
            locals: (0..slots)
                .map(|_| CachePadded::new(Local::new(0)))
                .collect(),
            shared: Shared::new(capacity),
            budget: Budget::new(capacity, byte_budget),
            epoch: AtomicUsize::new(0),
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

    /// Like [`get`](Pool::get), for an `Arc`'d pool: the guard owns a reference to the pool, so
    /// it is `'static` and can be sent to another thread (when `T: Send`).
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

    /// A snapshot of the counters. Sums every cache, so it is not for hot paths.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            retained: self.shared.len(),
            ..Stats::default()
        };
        let tallies = self
            .locals
            .iter()
            .map(|l| &l.tallies)
            .chain([&self.shared.tallies]);
        for t in tallies {
            stats.hits += t.hits.get();
            stats.misses += t.misses.get();
            stats.returned += t.returned.get();
            stats.discarded += t.discarded.get();
        }
        stats.retained += self.locals.iter().map(|l| l.retained()).sum::<usize>();
        stats
    }

    /// Drops retained objects until at most `keep` remain, oldest first, to give memory back
    /// after a burst.
    ///
    /// The shared store and the calling thread's cache are trimmed now. If the thread caches
    /// alone hold more than `keep`, every other thread's cache (at most 5 objects each) is
    /// emptied the next time its thread uses the pool; a cache whose thread never comes back
    /// keeps its objects until the pool is dropped.
    ///
    /// # Examples
    /// ```
    /// let pool = thrifty::pool::Pool::new(Vec::<u8>::new);
    /// let held: Vec<_> = (0..10).map(|_| pool.get()).collect();
    /// drop(held);
    /// assert_eq!(pool.stats().retained, 10);
    /// pool.trim(2);
    /// assert_eq!(pool.stats().retained, 2);
    /// ```
    pub fn trim(&self, keep: usize) {
        // The caller's own cache: everything out now; re-stored below while there is room.
        let mine = match self.local() {
            // SAFETY: `local()` is the calling thread's own cache; `drain` runs no user code,
            // and the objects it takes out are dropped or re-stored after it returns.
            Some(local) => unsafe { local.drain(self.epoch(), &self.budget) },
            None => local::Flushed::new(),
        };
        // A snapshot of the other caches, good enough to size a trim.
        let mut others: usize = self.locals.iter().map(|l| l.retained()).sum();
        if others > keep {
            // Relaxed: a request, not a publication; each cache acts on it at its next use.
            self.epoch.fetch_add(1, Ordering::Relaxed);
            others = 0;
        }
        let room = keep - others;
        let excess = self.shared.split_off_oldest(room);
        for (_, weight) in &excess {
            self.budget.release(1, *weight);
        }
        drop(excess);
        let mut room = room.saturating_sub(self.shared.len());
        // Newest last: re-store from the back, drop the rest.
        for (obj, weight) in mine.into_iter().rev() {
            if room > 0 && self.budget.reserve(1, weight) {
                self.shared.push(obj, weight);
                room -= 1;
            } else {
                drop(obj);
            }
        }
    }

    /// Drops every retained object: the shared store's and the calling thread's now, other
    /// threads' cached ones at their next use of the pool (see [`trim`](Pool::trim)).
    pub fn clear(&self) {
        self.trim(0);
    }

    /// The calling thread's cache, if its slot index has one. `None` during thread-local
    /// teardown, when the index may already belong to another thread.
    #[inline(always)]
    fn local(&self) -> Option<&Local<T>> {
        let slot = try_thread_slot()?;
        self.locals.get(slot).map(|padded| &**padded)
    }

    /// The calling thread's cache if it already holds a slot index: one thread-local load and a
    /// bounds check. `None` also when the thread has no index yet; the slow paths then call
    /// [`local`](Pool::local), which makes one.
    #[inline(always)]
    fn local_fast(&self) -> Option<&Local<T>> {
        self.locals.get(thread_slot_hint()).map(|padded| &**padded)
    }

    #[inline(always)]
    fn epoch(&self) -> usize {
        // Relaxed: a request to flush, re-read on every operation; nothing is published
        // through it.
        self.epoch.load(Ordering::Relaxed)
    }

    /// The object a get hands out, in reset state.
    #[inline(always)]
    fn take(&self) -> Item<T> {
        if let Some(local) = self.local_fast() {
            // SAFETY: `local_fast()` is the calling thread's own cache; `pop_hot` runs no user
            // code.
            if let Some(obj) = unsafe { local.pop_hot() } {
                local.tallies.hits.bump_owned();
                return self.ready(obj);
            }
        }
        self.take_slow()
    }

    /// A get that missed the hot slot (or had no slot index yet): the cache, then a batch from
    /// the shared store, then the factory. Not `#[cold]`: a thread holding two objects at once comes here for
    /// one of them on every round.
    #[inline(never)]
    fn take_slow(&self) -> Item<T> {
        let Some(local) = self.local() else {
            return match self.shared.pop() {
                Some((obj, weight)) => {
                    self.budget.release(1, weight);
                    self.shared.tallies.hits.bump();
                    self.ready(obj)
                }
                None => self.make(&self.shared.tallies.misses, Tally::bump),
            };
        };
        // The hot slot too: a thread's first get comes here without trying it (no slot index
        // yet), and the cache it takes over may hold an object there.
        // SAFETY: `local()` is the calling thread's own cache; the pops run no user code.
        if let Some(obj) = unsafe { local.pop_hot().or_else(|| local.pop()) } {
            local.tallies.hits.bump_owned();
            return self.ready(obj);
        }
        // SAFETY: the calling thread's own cache; `refresh` runs no user code, and what it
        // flushes is dropped after it returns.
        let flushed = unsafe { local.refresh(self.epoch(), &self.budget) };
        drop(flushed);
        // A batch, so a thread that takes what others return (get on A, drop on B) locks the
        // store once per cache-full, not once per object.
        let mut batch = self.shared.pop_many(LOCAL_CAP);
        match batch.pop() {
            Some((obj, weight)) => {
                // SAFETY: the calling thread's own cache, emptied by `refresh` above (its
                // stack and hot slot were empty); `adopt` runs no user code. The objects keep
                // their budget units as its reservation.
                unsafe { local.adopt(weight, batch) };
                local.tallies.hits.bump_owned();
                self.ready(obj)
            }
            None => self.make(&local.tallies.misses, Tally::bump_owned),
        }
    }

    /// Calls the factory; fresh objects are taken to be in reset state.
    fn make(&self, misses: &Tally, count: fn(&Tally)) -> Item<T> {
        count(misses);
        Box::new(CachePadded::new(self.hooks.make()))
    }

    /// Resets a reused object for its next user (unless it was reset on return). If the reset
    /// panics, the object is dropped by the unwind (and counted as discarded).
    #[inline(always)]
    fn ready(&self, mut obj: Item<T>) -> Item<T> {
        if !self.hooks.reset_on_return() {
            let unwinding = CountOnUnwind(&self.shared.tallies.discarded);
            self.hooks.reset(&mut obj);
            mem::forget(unwinding);
        }
        obj
    }

    /// Takes an object back from a guard, in place: `value` is moved into the pool or dropped.
    ///
    /// Only the hot-slot push is inline, with no call on its way: the guard's drop stays small
    /// enough to inline into the caller's loop, which then keeps the guard in registers. Every
    /// other case, hooks included, is one tail call.
    ///
    /// # Safety
    /// `value` holds an object, and the caller never reads or drops it again.
    #[inline(always)]
    pub(crate) unsafe fn put(&self, value: &mut ManuallyDrop<Item<T>>) {
        if !self.hooks.has_return_hooks() {
            let weight = self.hooks.weigh(value);
            // SAFETY: forwarded from this fn's contract.
            if self.hooks.fits(weight) && unsafe { self.put_hot(self.local_fast(), value, weight) }
            {
                return;
            }
        }
        // SAFETY: forwarded from this fn's contract.
        unsafe { self.put_cold(value) }
    }

    /// Moves the object into `local`'s hot slot if it has room, counting the return.
    ///
    /// # Safety
    /// `local` is the calling thread's own cache; `value` holds an object that the caller never
    /// touches again after a `true`.
    #[inline(always)]
    unsafe fn put_hot(
        &self,
        local: Option<&Local<T>>,
        value: &mut ManuallyDrop<Item<T>>,
        weight: usize,
    ) -> bool {
        let Some(local) = local else { return false };
        // SAFETY: forwarded from this fn's contract.
        let pushed = unsafe { local.push_hot(value, weight, self.epoch()) };
        if pushed {
            local.tallies.returned.bump_owned();
        }
        pushed
    }

    /// A put that is not a plain hot-slot push: runs the hooks, weighs, then tries the hot slot
    /// (the thread may have had no slot index yet) before the slow path.
    ///
    /// # Safety
    /// As [`put`](Pool::put).
    #[inline(never)]
    unsafe fn put_cold(&self, value: &mut ManuallyDrop<Item<T>>) {
        // SAFETY: forwarded from this fn's contract; on a panic the hooks drop the object and
        // the unwind leaves this fn, so `value` is not touched again.
        let vetted = !self.hooks.has_return_hooks() || unsafe { self.return_hooks(value) };
        let weight = self.hooks.weigh(value);
        let keep = vetted && self.hooks.fits(weight);
        // SAFETY: `local()` is the calling thread's own cache; forwarded from this fn's contract.
        if keep && unsafe { self.put_hot(self.local(), value, weight) } {
            return;
        }
        // SAFETY: `value` still holds the object (not pushed above); it is read out once.
        let obj = unsafe { ManuallyDrop::take(value) };
        self.put_slow(obj, weight, keep);
    }

    /// Runs the user code of a return (reset on return, `keep_if`, zeroing) and says whether
    /// to keep the object. If a hook panics, drops the object, counts a discard and propagates.
    ///
    /// # Safety
    /// `value` holds an object; after a panic the caller never reads or drops it again.
    #[inline(never)]
    unsafe fn return_hooks(&self, value: &mut ManuallyDrop<Item<T>>) -> bool {
        let value: *mut ManuallyDrop<Item<T>> = value;
        let unwinding = DropOnUnwind {
            value,
            discarded: &self.shared.tallies.discarded,
        };
        // SAFETY: `value` holds an object (contract) and nothing else refers to it while the
        // hooks run; `unwinding` only touches it if a hook panics, after this borrow ends.
        let keep = self.hooks.on_return(unsafe { &mut *value });
        mem::forget(unwinding);
        keep
    }

    /// A put that missed the hot slot: the cache's stack (growing its reservation if need
    /// be), then the shared store, else the object is dropped.
    #[inline(never)]
    fn put_slow(&self, obj: Item<T>, weight: usize, keep: bool) {
        let local = self.local();
        if !keep {
            self.tally(local, |t| &t.discarded);
            return drop(obj);
        }
        let obj = match local {
            Some(local) => {
                let mut spill = local::Flushed::new();
                // SAFETY: the calling thread's own cache; `push_reserving` runs no user code,
                // and what it flushes or spills is handled after it returns.
                let pushed = unsafe {
                    local.push_reserving(obj, weight, self.epoch(), &self.budget, &mut spill)
                };
                if !spill.is_empty() {
                    // A full cache's objects, with their budget units: one lock for all.
                    self.shared.push_many(spill);
                }
                match pushed {
                    Ok(flushed) => {
                        local.tallies.returned.bump_owned();
                        return drop(flushed);
                    }
                    Err((obj, flushed)) => {
                        drop(flushed);
                        obj
                    }
                }
            }
            None => obj,
        };
        if self.budget.reserve(1, weight) {
            self.shared.push(obj, weight);
            self.tally(local, |t| &t.returned);
        } else {
            self.tally(local, |t| &t.discarded);
            drop(obj);
        }
    }

    /// Counts an event on the caller's own cache if it has one, else on the shared tallies.
    fn tally(&self, local: Option<&Local<T>>, which: fn(&local::Tallies) -> &Tally) {
        match local {
            Some(local) => which(&local.tallies).bump_owned(),
            None => which(&self.shared.tallies).bump(),
        }
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn budget_used(&self) -> (usize, usize) {
        self.budget.used()
    }
}

/// Counts a discard if dropped, i.e. if the reset it guards panicked.
struct CountOnUnwind<'a>(&'a Tally);

impl Drop for CountOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.bump();
    }
}

/// Drops the object a returning guard holds, and counts a discard, if a hook panics.
struct DropOnUnwind<'a, T> {
    value: *mut ManuallyDrop<Item<T>>,
    discarded: &'a Tally,
}

impl<T> Drop for DropOnUnwind<'_, T> {
    fn drop(&mut self) {
        self.discarded.bump();
        // SAFETY: only reached when a hook in `put` panicked: the object is still in `value`
        // (not yet moved into the pool), the hook's borrow ended with the unwind, and the
        // guard being dropped never touches it again.
        unsafe { ManuallyDrop::drop(&mut *self.value) };
    }
}

// SAFETY: shared access to a pool from several threads touches (1) the shared store, under its
// mutex; (2) atomics; (3) the boxed closures, which are `Send + Sync`; (4) per-slot caches,
// each touched only by the thread holding that slot index (distinct among live threads; handed
// over under the slot registry's mutex, which orders one owner's accesses before the next's).
// Objects move between threads through the store or the caches, so `T: Send` is required.
unsafe impl<T: Send, H: Sync> Sync for Pool<T, H> {}

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

#[cfg(all(test, not(loom)))]
mod tests;
