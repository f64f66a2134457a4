//! Pooled, reset and limited bump arenas, on [bumpalo].
//!
//! A bump arena makes an allocation one pointer bump and frees everything at once: ideal for
//! the many small values one request builds and drops together (a parsed request, its headers,
//! a scratch index). bumpalo does the bumping; this module adds what a server needs around it:
//! - **Warm arenas, reused.** [`ArenaPool::get`] hands out an arena, reset, from a
//!   [`pool::Pool`](crate::pool::Pool); dropping the guard gives it back with its chunk. A
//!   request that fits in what its arena held before allocates nothing from the system: not a
//!   chunk, not a guard, not a statistic (`tests/alloc_arena.rs`), where that round fit one
//!   chunk the arena may keep ([`Builder::retain_bytes`]).
//! - **One chunk, however the last round went.** `Bump::reset` keeps only the last chunk, so a
//!   request that spilled into three chunks would allocate again next time. On return, an arena of
//!   several chunks frees them, and the get that hands it out again rebuilds it to one chunk that
//!   holds the whole round at its peak, blocks freed before its end included (an
//!   `arena::collections::Vec` grown, then dropped). An arena the pool drops on return makes
//!   no chunk.
//! - **A hard ceiling per arena.** [`Builder::limit_bytes`] bounds the bytes of chunks an arena
//!   holds. An allocation that does not fit fails with [`ArenaFull`] (`try_alloc_str`,
//!   `try_alloc_slice_copy`; `try_alloc` wraps it in [`Refused`] with the value) or panics with its
//!   message (`alloc`, ...), and asks the system for nothing: a 13 GiB request never reaches the
//!   allocator (`tests/alloc_arena.rs`, `the_limit_holds_against_the_system_allocator`). Through
//!   bumpalo's own methods (`Deref`) and `arena::collections`, the limit holds too, but their
//!   refusals are bumpalo's: an `Err` from its `try_` forms, else a panic that reads "out of
//!   memory" (`alloc_with`) or "encountered allocation error" (a `collections::Vec` that cannot
//!   grow) and names neither the arena nor the limit. Where input sizes the data, use the `try_`
//!   forms (`try_alloc_with`, `try_alloc_layout`, `Vec::try_reserve` before growing), so a refusal
//!   stays an error you can tell from the machine running out.
//! - **Memory given back after a rare huge request.** An arena whose round held more than
//!   [`Builder::retain_bytes`] frees its chunks on return, and is handed out next with one chunk
//!   of at most `retain_bytes` (which one: [`Builder::retain_bytes`]); the pool retains at most
//!   `capacity × retain_bytes` bytes of chunks.
//! - **No silent leaks.** An arena never runs `Drop`, so a `Vec` or `String` stored in one leaks
//!   its heap buffer (bumpalo#147). The guards' `alloc` family refuses types that need `Drop` at
//!   compile time; growable data goes in `arena::collections::{Vec, String}` (feature
//!   `collections`), whose memory is the arena's.
//! - **A scratch arena, anywhere.** [`scratch`] lends the calling thread an arena for the length
//!   of a closure; nested calls get their own.
//!
//! # What `limit_bytes` bounds, precisely
//!
//! The sum of the capacities of the arena's chunks, as `Bump::allocated_bytes` reports it
//! (bumpalo's footer, a few dozen bytes per chunk, comes on top and is not counted). Bytes
//! handed out are at most that: each chunk's unused tail is lost when the next chunk starts, so
//! a round can be refused before it has handed out `limit_bytes`. Two cases lose more than a
//! little:
//! - **One large allocation in a reused arena.** A round starts with the chunk the arena kept
//!   (up to `retain_bytes`), and an allocation larger than that chunk's free room needs a new
//!   chunk that fits beside it under the limit. bumpalo first tries a chunk twice the kept one,
//!   or the allocation's size if that is larger (rounded up to whole pages, 4 KiB), then halves
//!   it while it still holds the allocation: an allocation larger than the kept chunk gets
//!   nothing smaller than its own size, so one between `c` and `2 × c` bytes next to a kept
//!   chunk of `c` needs about `3 × c` of limit. So a reused arena grants less than a fresh
//!   one: with `limit_bytes` 1 MiB and `retain_bytes` 256 KiB, a reused arena refused 800 000
//!   bytes that a fresh one granted, and with a kept chunk of `c` bytes, an allocation between
//!   `c` and `2 × c` needs about `3 × c` under the limit. To be granted single allocations up
//!   to `n` bytes while the round still fits its kept chunk, set `limit_bytes` to at least
//!   `retain_bytes + max(n, 2 × retain_bytes)` plus a page
//!   (`a_reused_arena_grants_n_under_retain_plus_the_larger_of_n_and_twice_retain` in
//!   `tests.rs`).
//! - **Limits under about 1 000 bytes**, where bumpalo's chunk sizes (powers of two less its
//!   footer) are coarse: a limit of 447 bytes got 192 bytes a round, 448 got 448, 1 000 got 960.
//! - **A value grown by doubling** (a `collections::Vec` or `String` pushed or extended): each
//!   outgrown buffer stays in an earlier chunk, since bumpalo takes a block back only in its
//!   current chunk, and each doubling needs a chunk that holds the new buffer. In a fresh arena
//!   such a value reaches about a quarter of `limit_bytes` (a `Vec<u8>` under 1 MiB: 256 KiB),
//!   about half in a reused one. Reserve its final size up front (`with_capacity_in`,
//!   `try_reserve_exact`), which reaches nearly all of the limit, or allow about 4 × the largest
//!   growable value
//!   (`a_vec_grown_by_doubling_reaches_a_quarter_of_the_limit_and_one_reserved_up_front_nearly_all`
//!   in `tests.rs`).
//!
//! bumpalo checks its limit only when it takes a new chunk, and ignores a limit set below what the
//! arena already holds (bumpalo#244); this module sets the limit before an arena's first chunk,
//! never keeps an arena above it, and re-applies it on every get, so it holds on every path: the
//! guards' methods, bumpalo's own methods through `Deref`, and `bumpalo::collections`. The one way
//! around it is the user's own: bumpalo's `set_allocation_limit` takes `&self`, so a call through
//! `Deref` replaces the limit for the rest of that round, and one *below* what the arena already
//! holds removes it altogether for that round (the bumpalo behaviour above): don't tighten the
//! limit through `Deref`. The pool re-applies its limit on the next get, and an arena that grew
//! past `retain_bytes` meanwhile is rebuilt or shrunk under it on return
//! (`a_limit_changed_through_the_bump_is_restored_on_the_next_get` in `tests.rs`).
//!
//! # Arena or pool?
//!
//! | the request builds... | use | why |
//! | --- | --- | --- |
//! | many small values of many types, all dropped at the end | [`ArenaPool`] | one bump each, one reset for all |
//! | one big buffer (a response body, a frame) | [`pool::BufferPool`](crate::pool::BufferPool) | the buffer itself is reused; an arena cannot grow a value in place past its chunk |
//! | values with `Drop` (files, `Arc`s, `Vec`s of the heap) | [`pool::Pool`](crate::pool::Pool) or the heap | an arena never runs their destructors |
//! | values that outlive the request | the heap | arena memory lives until the guard drops |
//!
//! # How it works
//!
//! An [`ArenaPool`] is a [`pool::Pool`](crate::pool::Pool) of arenas (`chunks.rs`): each a
//! `bumpalo::Bump` with its limit and statistics, weighed by the capacity of its chunks, with
//! `max_object_bytes = retain_bytes` and a byte budget of `capacity × retain_bytes`. The pool
//! resets an arena when it hands it out (`Bump::reset`, plus the limit re-applied). The guard's
//! drop *settles* the arena first (`Arena::settle`): it walks the chunk list (one chunk once
//! warm), records the high-water mark and, only for a round that used several chunks or more
//! than `retain_bytes`, frees the chunks — in the cold path — and plans one chunk that holds
//! the round (or one of `chunk_bytes`, when what the round still has in use does not fit under
//! `retain_bytes`, or it held one chunk over it), which the reset makes when the
//! pool hands the arena out again: an arena the pool drops on return (full, or of capacity 0)
//! makes none, and one it keeps holds no chunk meanwhile. The round's peak is not all in view
//! at its end: bumpalo takes back a block freed or shrunk while it is the newest in its chunk (a
//! `collections::Vec` dropped). But it bumps only in its newest chunk, so the earlier chunks still
//! hold all they held, and the newest held at most its capacity. The rebuilt chunk holds those two
//! (what is still in use, plus the room left in the last chunk: about the round's chunks at most),
//! with a margin for alignment padding (16 bytes per chunk, raised to the largest alignment the
//! guard's methods allocated for as many chunks as the round made allocations aligned above 16),
//! or, if
//! `retain_bytes` is smaller, the largest chunk under it that holds what is still in use. New
//! chunks are always made by an allocation under a limit already set, so bumpalo never makes a
//! chunk that breaks it. Then the pool takes the arena back: a warm get and return is the pool's
//! per-thread hot slot, a few plain loads and stores.
//!
//! The rebuilt chunk is sized for the round's peak, which the arena cannot see exactly: what the
//! earlier chunks hold plus the whole last chunk, about the chunks the round held, at most.
//!
//! Each thread keeps the arenas it gives back in its own cache of the pool, taking turns with other
//! threads or not, so a warm get allocates nothing while `capacity` covers the arenas each live
//! thread holds at once, summed over the threads. Past that, the arenas without room are built on
//! most gets and dropped on return: 2 threads taking strict turns on a pool of capacity 1 built one
//! on every other get, and one thread holding two arenas at once on a pool of capacity 1 builds one
//! on every round (`tests/stress_arena.rs`). The pool's own memory is that of any
//! [`pool::Pool`](crate::pool::Pool): a small store, and caches of 384 bytes (x86-64), 8 to a leaf,
//! one leaf for each range of 8 thread slots that used it, kept until the pool drops (`clear` and
//! `trim` empty the caches but do not free them).
//!
//! [bumpalo]: https://docs.rs/bumpalo

mod builder;
mod chunks;
mod error;
mod guard;
#[cfg(not(loom))]
mod scratch;
mod stats;

pub use builder::Builder;
pub use bumpalo::Bump;
pub use error::{ArenaFull, BuildError, Refused};
pub use guard::{ArenaGuard, ArenaGuardOwned};
#[cfg(not(loom))]
pub use scratch::{scratch, scratch_pool};
pub use stats::{ArenaStats, Stats};

use crate::pool::Pool;
use crate::sync::Arc;
use chunks::{Arena, Made};
use stats::Tallies;
use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};

/// bumpalo's arena-backed collections: growable values whose memory is the arena's, so they
/// need no `Drop` to free it (feature `collections`).
///
/// # Examples
/// ```
/// use thrifty::arena::{collections::{String, Vec}, ArenaPool};
///
/// let arenas = ArenaPool::new();
/// let arena = arenas.get();
/// let mut words = Vec::new_in(&arena);
/// let mut line = String::new_in(&arena);
/// for w in ["a", "bump", "arena"] {
///     words.push(w.len());
///     line.push_str(w);
/// }
/// assert_eq!((words.as_slice(), line.as_str()), (&[1, 4, 5][..], "abumparena"));
/// ```
#[cfg(feature = "collections")]
#[cfg_attr(docsrs, doc(cfg(feature = "collections")))]
pub mod collections {
    pub use bumpalo::boxed::Box;
    pub use bumpalo::collections::{String, Vec};
}

/// Arenas an [`ArenaPool`] retains unless [`Builder::capacity`] says otherwise.
pub const DEFAULT_CAPACITY: usize = 64;
/// Bytes of chunks one arena may hold unless [`Builder::limit_bytes`] says otherwise (64 MiB).
pub const DEFAULT_LIMIT_BYTES: usize = 64 << 20;
/// Bytes of chunks a returned arena keeps unless [`Builder::retain_bytes`] says otherwise
/// (1 MiB).
pub const DEFAULT_RETAIN_BYTES: usize = 1 << 20;
/// A new arena's chunk unless [`Builder::chunk_bytes`] says otherwise (4 KiB, at most).
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 10;

/// A pool's settings, fixed at build.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) capacity: usize,
    pub(crate) limit_bytes: usize,
    /// Capped by `limit_bytes` at build.
    pub(crate) retain_bytes: usize,
    pub(crate) chunk_bytes: usize,
}

/// A bounded pool of bump arenas, each reset when handed out and limited in the bytes it holds.
///
/// # When to use
/// Per-request (per-frame, per-batch) work that builds many small values and drops them all at
/// the end: parsing, building a response, scratch indexes. Each value costs a pointer bump; the
/// request's end frees them all at once; a warm arena allocates nothing from the system.
///
/// # When not to use
/// - Values with `Drop`, or that outlive the request: an arena frees nothing until the guard
///   drops, and runs no destructor (use the heap, or [`pool::Pool`](crate::pool::Pool)).
/// - One big growable buffer: a [`pool::BufferPool`](crate::pool::BufferPool) reuses it
///   directly.
/// - A handful of allocations per request: the allocator's thread cache is as fast, and a
///   plain `Bump::new()` per request costs a chunk allocation or two (2 allocator calls for the
///   10-object request in the shootout's arena table).
///
/// # Examples
/// ```
/// use thrifty::arena::ArenaPool;
///
/// struct Header<'a> {
///     name: &'a str,
///     value: &'a str,
/// }
///
/// let arenas = ArenaPool::new();
/// for raw in ["host: a\naccept: */*", "host: b"] {
///     let arena = arenas.get();
///     let headers: Vec<&Header<'_>> = raw
///         .lines()
///         .filter_map(|line| line.split_once(": "))
///         .map(|(n, v)| {
///             let (name, value) = (arena.alloc_str(n), arena.alloc_str(v));
///             &*arena.alloc(Header { name, value })
///         })
///         .collect();
///     assert_eq!((headers[0].name, headers[0].value.len()), ("host", 1));
/// } // each request's headers freed at once, the arena kept
/// assert_eq!(arenas.stats().reused, 1, "the second request reused the first one's arena");
/// ```
///
/// # Allocation
/// - **Nothing** once the arena has held a round as big, if that round fits one chunk under
///   `retain_bytes` and `limit_bytes` (see [`Builder::retain_bytes`]; `tests/alloc_arena.rs`),
///   while `capacity` is at least the arenas each live thread that uses the pool holds at once,
///   summed over those threads, whether they take turns or not (a thread that holds a request's
///   arena and a response's at once counts two).
/// - **Past that**, the arenas without room are built on most gets and dropped on return: about
///   `(held − capacity) / held` of the gets, `held` the arenas held at once
///   (`tests/stress_arena.rs`; the module doc's "How it works" has measured cases).
/// - **A round that spilled past its chunk**: one allocation when its arena is next handed out
///   (none if the pool drops it on return), the rebuilt chunk, sized for the round's peak.
/// - **Retained**: at most `capacity × retain_bytes` bytes of chunks, plus, per retained arena,
///   bumpalo's chunk footer and the pool's cache-line-padded box; arenas on loan hold at most
///   `limit_bytes` each. Besides, the memory of the [`Pool`] it is built on (whose Allocation
///   section gives the sizes), kept until the pool drops: a pool that a thousand threads touched
///   holds about 375 KiB of caches. Keep the pools that many threads use few (one
///   [`scratch_pool`] serves every thread).
///
/// # Cost
/// `get` and the guard's drop are the pool's warm path (a few plain loads and stores on the
/// thread's own cache) plus a walk of the arena's one chunk. Each allocation is bumpalo's: a
/// pointer bump and a bounds check. Measured against `Box` per value, a fresh `Bump` and the
/// peers: `cargo run --release --example shootout -- --only arena` and
/// `cargo bench --bench arena`.
pub struct ArenaPool {
    pool: Arc<Pool<Arena>>,
    settings: Settings,
    tallies: Tallies,
}

// The pool's hooks are this module's own (they run no user code), and an arena a panic sends
// back is settled on return and reset on its next get: a panic leaves the pool consistent, so
// it may be used across `catch_unwind` (its closures are not `UnwindSafe` types, hence these).
impl UnwindSafe for ArenaPool {}
impl RefUnwindSafe for ArenaPool {}

impl ArenaPool {
    /// A pool with every default: see [`Builder`].
    pub fn new() -> Self {
        Builder::default().build()
    }

    /// A builder: capacity, `limit_bytes`, `retain_bytes`, `chunk_bytes`.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Takes an arena from the pool, or builds one (with one chunk of at most `chunk_bytes`) if the
    /// pool has none. It is empty (reset on get) and limited to `limit_bytes`; dropping the
    /// guard gives it back.
    #[inline]
    pub fn get(&self) -> ArenaGuard<'_> {
        ArenaGuard::new(self.pool.get(), self)
    }

    /// Like [`get`](ArenaPool::get), for an `Arc`'d pool: the guard owns a reference to the
    /// pool, so it is `'static` and can move to another thread.
    #[cfg(not(loom))]
    #[inline]
    pub fn get_owned(self: &Arc<Self>) -> ArenaGuardOwned {
        ArenaGuardOwned::new(Pool::get_owned(&self.pool), Arc::clone(self))
    }

    /// Under loom, `Arc` is loom's, which cannot be a method receiver: call
    /// `ArenaPool::get_owned(&pool)`.
    #[cfg(loom)]
    #[inline]
    pub fn get_owned(this: &Arc<Self>) -> ArenaGuardOwned {
        ArenaGuardOwned::new(Pool::get_owned(&this.pool), Arc::clone(this))
    }

    /// The most arenas this pool retains.
    pub fn capacity(&self) -> usize {
        self.settings.capacity
    }

    /// Arenas retained now, as [`Pool::len`](crate::pool::Pool::len): a snapshot that sums
    /// the per-thread caches; not for a hot path.
    pub fn len(&self) -> usize {
        self.pool.len()
    }

    /// Whether the pool retains no arena now.
    pub fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }

    /// Each arena's limit: the most bytes of chunks it may hold.
    pub fn limit_bytes(&self) -> usize {
        self.settings.limit_bytes
    }

    /// The most bytes of chunks a returned arena keeps (capped by `limit_bytes`).
    pub fn retain_bytes(&self) -> usize {
        self.settings.retain_bytes
    }

    /// Drops retained arenas until at most `keep` remain, reaching every thread's cache.
    pub fn trim(&self, keep: usize) {
        self.pool.trim(keep);
    }

    /// Drops every retained arena, reaching every thread's cache.
    pub fn clear(&self) {
        self.pool.clear();
    }

    /// Settles an arena at the end of its round.
    #[inline]
    fn settle(&self, arena: &mut Arena) {
        arena.settle(self.settings.retain_bytes, self.settings.chunk_bytes);
    }

    /// Counts what the reset that just handed `arena` out made in place of the chunks its
    /// last round freed.
    #[inline(always)]
    fn count_made(&self, arena: &mut Arena) {
        match arena.take_made() {
            None => {}
            Some(Made::Rebuilt) => Tallies::bump(&self.tallies.rebuilt),
            Some(Made::Shrunk) => Tallies::bump(&self.tallies.shrunk),
        }
    }
}

impl Default for ArenaPool {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ArenaPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaPool")
            .field("capacity", &self.settings.capacity)
            .field("limit_bytes", &self.settings.limit_bytes)
            .field("retain_bytes", &self.settings.retain_bytes)
            .field("chunk_bytes", &self.settings.chunk_bytes)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
