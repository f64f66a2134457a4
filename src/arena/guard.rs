//! [`ArenaGuard`] and [`ArenaGuardOwned`]: an arena on loan from an [`ArenaPool`], with the
//! allocation API that honours the limit and refuses types that need `Drop`.

use super::chunks::Arena;
use super::{ArenaFull, ArenaPool, ArenaStats, Refused};
use crate::pool::{Pooled, PooledOwned};
use crate::sync::Arc;
use bumpalo::Bump;
use std::fmt;
use std::ops::Deref;

/// The allocation API and the `Deref` to `Bump`, written once for both guards.
macro_rules! arena_api {
    ($guard:ident $(<$lt:lifetime>)?) => {
        impl$(<$lt>)? $guard$(<$lt>)? {
            /// Moves `value` into the arena, or returns [`Refused`] (the value back, with the
            /// [`ArenaFull`] reason) if that would take the arena past its limit.
            ///
            /// Only for types that need no `Drop`: an arena never runs destructors, so a type
            /// that owns heap memory (`Vec`, `String`, `Box`) would leak it, and is refused at
            /// compile time. Keep growable data in `bumpalo::collections::{Vec, String}`
            /// (feature `collections`), whose memory is the arena's.
            ///
            /// # Errors
            /// [`Refused`], holding `value` and the [`ArenaFull`] reason, when no chunk that
            /// holds `value` fits under the limit (nothing is asked of the system then), or
            /// when the system allocator refuses the chunk.
            ///
            /// # Examples
            /// ```
            /// let arenas = thrifty::arena::ArenaPool::new();
            /// let arena = arenas.get();
            /// let point = arena.try_alloc((1u32, 2u32)).unwrap();
            /// point.0 += 1;
            /// assert_eq!(*point, (2, 2));
            /// ```
            ///
            /// A type with `Drop` does not compile:
            ///
            /// ```compile_fail,E0080
            /// let arenas = thrifty::arena::ArenaPool::new();
            /// let arena = arenas.get();
            /// arena.try_alloc(vec![1, 2, 3]); // would leak the Vec's buffer
            /// ```
            #[inline(always)]
            pub fn try_alloc<T>(&self, value: T) -> Result<&mut T, Refused<T>> {
                self.arena().try_alloc(value)
            }

            /// Moves `value` into the arena, as [`try_alloc`](Self::try_alloc) does.
            ///
            /// # Panics
            /// With [`ArenaFull`]'s message ("arena full: ..."), where `try_alloc` returns it.
            ///
            /// # Examples
            /// ```
            /// let arenas = thrifty::arena::ArenaPool::new();
            /// let arena = arenas.get();
            /// let n = arena.alloc(41u64);
            /// *n += 1;
            /// assert_eq!(*n, 42);
            /// ```
            #[inline(always)]
            #[track_caller]
            pub fn alloc<T>(&self, value: T) -> &mut T {
                match self.arena().alloc_or_full(value) {
                    Ok(value) => value,
                    Err(full) => full.fail(),
                }
            }

            /// Copies `s` into the arena, or returns [`ArenaFull`] if that would take the
            /// arena past its limit.
            ///
            /// # Errors
            /// As [`try_alloc`](Self::try_alloc).
            ///
            /// # Examples
            /// ```
            /// let arenas = thrifty::arena::ArenaPool::new();
            /// let arena = arenas.get();
            /// let path = arena.try_alloc_str("/index.html").unwrap();
            /// assert_eq!(path, "/index.html");
            /// ```
            #[inline(always)]
            pub fn try_alloc_str(&self, s: &str) -> Result<&mut str, ArenaFull> {
                self.arena().try_alloc_str(s)
            }

            /// Copies `s` into the arena, as [`try_alloc_str`](Self::try_alloc_str) does.
            ///
            /// # Panics
            /// With [`ArenaFull`]'s message, where `try_alloc_str` returns it.
            #[inline(always)]
            #[track_caller]
            pub fn alloc_str(&self, s: &str) -> &mut str {
                match self.arena().try_alloc_str(s) {
                    Ok(s) => s,
                    Err(full) => full.fail(),
                }
            }

            /// Copies `src` into the arena, or returns [`ArenaFull`] if that would take the
            /// arena past its limit.
            ///
            /// # Errors
            /// As [`try_alloc`](Self::try_alloc).
            ///
            /// # Examples
            /// ```
            /// let arenas = thrifty::arena::ArenaPool::new();
            /// let arena = arenas.get();
            /// let ids = arena.try_alloc_slice_copy(&[7u32, 8, 9]).unwrap();
            /// ids[0] = 1;
            /// assert_eq!(ids, [1, 8, 9]);
            /// ```
            #[inline(always)]
            pub fn try_alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], ArenaFull> {
                self.arena().try_alloc_slice_copy(src)
            }

            /// Copies `src` into the arena, as
            /// [`try_alloc_slice_copy`](Self::try_alloc_slice_copy) does.
            ///
            /// # Panics
            /// With [`ArenaFull`]'s message, where `try_alloc_slice_copy` returns it.
            #[inline(always)]
            #[track_caller]
            pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
                match self.arena().try_alloc_slice_copy(src) {
                    Ok(s) => s,
                    Err(full) => full.fail(),
                }
            }

            /// Empties the arena now, as when it goes back to the pool: for one guard used
            /// for a batch of requests in turn. A round that spilled into several chunks is
            /// rebuilt to one (one allocation), and one over `retain_bytes` rebuilt or shrunk
            /// under it, first.
            ///
            /// # Examples
            /// ```
            /// let arenas = thrifty::arena::ArenaPool::new();
            /// let mut arena = arenas.get();
            /// for line in ["GET /a", "GET /b"] {
            ///     let copy = arena.alloc_str(line);
            ///     assert_eq!(copy, line);
            ///     arena.reset();
            ///     assert_eq!(arena.stats().allocated_bytes, 0);
            /// }
            /// ```
            pub fn reset(&mut self) {
                let pool: &ArenaPool = &self.pool;
                pool.settle(&mut self.arena);
                self.arena.reset();
                pool.count_made(&mut self.arena);
            }

            /// This arena's statistics: bytes in use this round, chunks, high-water mark,
            /// limit. Walks the arena's chunks (one, once it is warm).
            pub fn stats(&self) -> ArenaStats {
                self.arena().stats()
            }

            /// The arena's limit: the most bytes of chunks it may hold.
            pub fn limit_bytes(&self) -> usize {
                self.arena().limit()
            }

            #[inline(always)]
            fn arena(&self) -> &Arena {
                &self.arena
            }
        }

        /// The arena, for bumpalo's whole API: `bumpalo::collections::Vec::new_in(&arena)`,
        /// `alloc_with`, `alloc_layout`. Those are bumpalo's own and do not check for `Drop`;
        /// bumpalo's allocation limit, which this pool sets, still bounds them, and their
        /// refusals are bumpalo's: an `Err` from the `try_` forms, else a panic that reads "out
        /// of memory" or "encountered allocation error", not naming `limit_bytes` (the module
        /// docs' "A hard ceiling per arena").
        impl$(<$lt>)? Deref for $guard$(<$lt>)? {
            type Target = Bump;

            #[inline(always)]
            fn deref(&self) -> &Bump {
                &self.arena().bump
            }
        }

        impl$(<$lt>)? fmt::Debug for $guard$(<$lt>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($guard))
                    .field("stats", &self.stats())
                    .finish_non_exhaustive()
            }
        }
    };
}

/// A bump arena on loan from an [`ArenaPool`]: reset when handed out, given back when dropped.
///
/// Dereferences to [`bumpalo::Bump`] for bumpalo's whole API; its own methods (`alloc`,
/// `try_alloc`, `alloc_str`, `alloc_slice_copy`, ...) honour the limit with a typed error and
/// refuse types that need `Drop` when the program is built (a post-monomorphization error: `cargo
/// build` and `cargo test` report it, `cargo check` and rust-analyzer do not, and a generic caller
/// fails only where it is instantiated with such a type). Everything allocated borrows the guard,
/// so nothing outlives the round.
///
/// `Send` (a request can move to another thread with its arena) but not `Sync`: a `Bump`
/// bumps without atomics, so two threads must never allocate from it at once.
///
/// ```
/// fn is_send<T: Send>() {}
/// is_send::<thrifty::arena::ArenaGuard<'static>>();
/// ```
///
/// ```compile_fail,E0277
/// fn is_sync<T: Sync>() {}
/// is_sync::<thrifty::arena::ArenaGuard<'static>>();
/// ```
///
/// Hold one per request (or frame, or batch) and pass `&ArenaGuard` down to the code that
/// allocates; to move the arena into another thread or a task that may outlive the borrow, use
/// [`ArenaGuardOwned`].
///
/// # Examples
/// ```
/// use thrifty::arena::ArenaPool;
///
/// let arenas = ArenaPool::new();
/// {
///     let arena = arenas.get();
///     let name = arena.alloc_str("Ada");
///     let ids = arena.alloc_slice_copy(&[1u32, 2, 3]);
///     assert_eq!((&*name, &*ids), ("Ada", &[1, 2, 3][..]));
/// } // back in the pool, with its chunk
/// assert_eq!(arenas.get().stats().allocated_bytes, 0, "handed out reset");
/// ```
///
/// # Allocation and cost
/// Allocations come from the arena's chunk: a pointer bump and a bounds check, nothing asked of
/// the system once the arena is warm. An allocation that needs a new chunk allocates it, within
/// `limit_bytes`. Dropping the guard settles the arena (a walk of its chunk list, one chunk
/// once warm) and gives it back through the pool's per-thread fast path; a round that spilled
/// past its chunk frees its chunks then, and costs one allocation when the arena is next
/// handed out (the rebuilt chunk).
#[must_use = "the arena is reset and goes back to the pool as soon as the guard is dropped"]
pub struct ArenaGuard<'a> {
    /// The pooled arena; given back to the pool by its own drop, after ours settles it.
    arena: Pooled<'a, Arena>,
    pool: &'a ArenaPool,
}

impl<'a> ArenaGuard<'a> {
    #[inline(always)]
    pub(super) fn new(mut arena: Pooled<'a, Arena>, pool: &'a ArenaPool) -> Self {
        pool.count_made(&mut arena);
        Self { arena, pool }
    }
}

impl Drop for ArenaGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.pool.settle(&mut self.arena);
    }
}

arena_api!(ArenaGuard<'a>);

/// An arena on loan from an `Arc`'d [`ArenaPool`] ([`ArenaPool::get_owned`]): `'static`, so
/// it can go to another thread or into a task, and keeps the pool alive. As [`ArenaGuard`]
/// otherwise: `Send`, not `Sync`.
///
/// ```compile_fail,E0277
/// fn is_sync<T: Sync>() {}
/// is_sync::<thrifty::arena::ArenaGuardOwned>();
/// ```
///
/// Use it when the arena must travel with the work (a spawned thread, a task); otherwise
/// [`ArenaGuard`] saves the `Arc`'s reference count.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use thrifty::arena::ArenaPool;
///
/// let arenas = Arc::new(ArenaPool::new());
/// let arena = arenas.get_owned();
/// let len = std::thread::spawn(move || arena.alloc_str("moved").len()).join().unwrap();
/// assert_eq!(len, 5);
/// assert_eq!(arenas.stats().retained, 1, "returned from the other thread");
/// ```
///
/// # Allocation and cost
/// As [`ArenaGuard`], plus two `Arc` reference counts (the `ArenaPool`'s and its inner pool's):
/// two atomic increments when made, two decrements when dropped.
#[must_use = "the arena is reset and goes back to the pool as soon as the guard is dropped"]
pub struct ArenaGuardOwned {
    /// Dropped before `pool`: the arena goes back while the pool is alive.
    arena: PooledOwned<Arena>,
    pool: Arc<ArenaPool>,
}

impl ArenaGuardOwned {
    #[inline(always)]
    pub(super) fn new(mut arena: PooledOwned<Arena>, pool: Arc<ArenaPool>) -> Self {
        pool.count_made(&mut arena);
        Self { arena, pool }
    }
}

impl Drop for ArenaGuardOwned {
    #[inline]
    fn drop(&mut self) {
        self.pool.settle(&mut self.arena);
    }
}

arena_api!(ArenaGuardOwned);
