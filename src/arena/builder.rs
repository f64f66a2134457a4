//! [`Builder`]: the knobs of an [`ArenaPool`].

use super::chunks::{chunk_at_least, Arena};
use super::stats::Tallies;
use super::{
    ArenaPool, BuildError, Settings, DEFAULT_CAPACITY, DEFAULT_CHUNK_BYTES, DEFAULT_LIMIT_BYTES,
    DEFAULT_RETAIN_BYTES,
};
use crate::pool::Pool;
use crate::sync::Arc;

/// Limits from this size up hold bumpalo's default chunk, so `try_build` checks only smaller ones
/// against bumpalo (by making a chunk).
const PROBE_BELOW: usize = 4096;

/// Builds an [`ArenaPool`]: how many arenas it keeps, each arena's limit, how much a returned
/// arena may keep, and its first chunk.
///
/// Defaults: [`DEFAULT_CAPACITY`] arenas, [`DEFAULT_LIMIT_BYTES`] per arena,
/// [`DEFAULT_RETAIN_BYTES`] kept per returned arena, first chunk [`DEFAULT_CHUNK_BYTES`].
/// Every size is chunk capacity, as bumpalo's `Bump::allocated_bytes` counts it (each chunk
/// also carries bumpalo's footer of a few dozen bytes, outside these numbers).
///
/// Use it when a default does not fit: a tighter `limit_bytes` for untrusted input, a larger
/// `chunk_bytes` for requests that always build more than 4 KiB; [`ArenaPool::new`] otherwise.
///
/// # Examples
/// ```
/// use thrifty::arena::ArenaPool;
///
/// let arenas = ArenaPool::builder()
///     .capacity(16)              // arenas retained
///     .limit_bytes(1 << 20)      // no request's arena holds more than 1 MiB of chunks
///     .retain_bytes(256 << 10)   // a returned arena keeps at most 256 KiB
///     .chunk_bytes(16 << 10)     // a new arena starts with one chunk of at most 16 KiB
///     .build();
/// let arena = arenas.get();
/// assert!(arena.try_alloc_slice_copy(&[0u8; 2 << 20]).is_err());
/// ```
///
/// # Allocation and cost
/// The builder allocates nothing; `build` makes three allocations (about 7 KiB at the defaults):
/// the pool's shared store, the box of its factory and the `Arc` that shares the pool with owned
/// guards. Not the arenas, which are made on first `get`.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build`"]
pub struct Builder {
    settings: Settings,
    /// Whether `chunk_bytes` was set: if not, the default gives way to a smaller limit or
    /// retain, instead of making those settings an error.
    chunk_set: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            settings: Settings {
                capacity: DEFAULT_CAPACITY,
                limit_bytes: DEFAULT_LIMIT_BYTES,
                retain_bytes: DEFAULT_RETAIN_BYTES,
                chunk_bytes: DEFAULT_CHUNK_BYTES,
            },
            chunk_set: false,
        }
    }
}

impl Builder {
    /// The most arenas the pool retains (default [`DEFAULT_CAPACITY`]); an arena returned to
    /// a full pool is dropped. 0 means "never retain": every get builds an arena. A value above
    /// what a [`Pool`] can count (2^24 − 1) acts as that, and [`ArenaPool::capacity`] says so.
    pub fn capacity(mut self, arenas: usize) -> Self {
        self.settings.capacity = arenas;
        self
    }

    /// The most bytes of chunks one arena may hold (default [`DEFAULT_LIMIT_BYTES`]): an
    /// allocation that would need more fails (`try_` methods) or panics (the others), and asks
    /// the system for nothing. Bounds chunk capacity, so the bytes a request can actually get
    /// are less: a chunk's unused tail is lost when the next chunk starts, and a reused arena's
    /// kept chunk (up to `retain_bytes`) counts against the limit, beside the new chunk that an
    /// allocation larger than its room needs, which bumpalo makes twice the kept chunk where
    /// that fits, else halves while it still holds the allocation (never below its size).
    /// Set `limit_bytes` to at least `retain_bytes + max(n, 2 × retain_bytes)` plus a page
    /// (4 KiB) to grant single allocations of `n` bytes in a round that still fits its kept
    /// chunk, and to about 4 × the largest value a round grows by doubling (a
    /// `collections::Vec` pushed to its size) unless it reserves that size up front (the module
    /// docs, "What `limit_bytes` bounds").
    ///
    /// Above 4 KiB, prefer a multiple of 4 KiB. bumpalo's chunks there are whole pages less 64
    /// bytes, so no chunk under a limit of `L` holds a round of more than the largest such size,
    /// `(L + 64) / 4096 × 4096 − 64` (whole pages). A round between that and `L` is still granted,
    /// across several chunks (when `L` is far enough past a page multiple: at least 896 bytes just
    /// above 4 KiB, falling to 256 at about 1 MB), but no arena can keep a chunk
    /// for it: each such round starts again from `chunk_bytes`, grows by doubling, then fills the
    /// rest under the limit with smaller chunks, an allocation for each (2 or 3 a round at a limit
    /// of 6 000 bytes, 7 at 100 000, 12 at 1 000 000, with the default `chunk_bytes`), and
    /// [`Stats::shrunk`](super::Stats::shrunk) counts up on every round. A limit that is a page
    /// multiple leaves no such rounds (`tests/alloc_arena.rs`).
    pub fn limit_bytes(mut self, bytes: usize) -> Self {
        self.settings.limit_bytes = bytes;
        self
    }

    /// The most bytes of chunks a returned arena keeps (default [`DEFAULT_RETAIN_BYTES`],
    /// capped by `limit_bytes`). An arena whose round held more frees its chunks on return, so
    /// one huge request does not pin its memory for ever, and is handed out next with one chunk
    /// of at most `retain_bytes`: if the round spilled across chunks and what it still had in use
    /// at its end fits one, one sized for the round's peak as far as `retain_bytes` allows (the
    /// arena sees only a bound on the peak: a block freed while it was the newest leaves no
    /// trace, so a round that freed a huge block gets the largest), else one of `chunk_bytes`.
    /// Retained memory is at most `capacity × retain_bytes`.
    ///
    /// An arena keeps one chunk, and bumpalo sizes chunks in whole pages above 4 KiB (less its
    /// footer): a round is kept only if it fits the largest such chunk within `retain_bytes`.
    /// A round a little under a `retain_bytes` that is not a page multiple may not, and is then
    /// shrunk like a round over it, and allocates again on the next request of that size. Set
    /// `retain_bytes` at least a page above the rounds you want kept warm, and where a round
    /// holds values aligned above 16 bytes (through the guard's methods), the largest such
    /// alignment less 16 more for each chunk the round spread over, up to one per allocation of
    /// such values: the arena cannot tell where their padding falls once the round shares one
    /// chunk, so it allows for the most (page-aligned values in a round spread over 4 chunks: 4
    /// pages more). The cap by
    /// `limit_bytes` makes the same true of a limit that is not a page multiple (see there).
    pub fn retain_bytes(mut self, bytes: usize) -> Self {
        self.settings.retain_bytes = bytes;
        self
    }

    /// The capacity of a new arena's one chunk, at most (default [`DEFAULT_CHUNK_BYTES`], or
    /// `limit_bytes` or `retain_bytes` if either is smaller and this is not set; bumpalo's
    /// chunk sizes are powers of two or pages, less a footer, so the chunk is the largest of
    /// those that fits). 0 makes new arenas without a chunk until their first allocation. Also
    /// what an arena is shrunk to. A chunk larger than the allocator serves (more than the
    /// machine's memory) is halved until it is served, each time a new arena is made: with
    /// 1 TiB on a 24 GiB machine, a 15 GiB chunk (of address space; pages are touched as
    /// they are used) after 7 refused allocations.
    pub fn chunk_bytes(mut self, bytes: usize) -> Self {
        self.settings.chunk_bytes = bytes;
        self.chunk_set = true;
        self
    }

    /// Builds the pool; no arena is made until the first `get`.
    ///
    /// # Panics
    /// If the settings cannot work together, with the message of the [`BuildError`] that
    /// [`try_build`](Builder::try_build) returns.
    #[track_caller]
    pub fn build(self) -> ArenaPool {
        // A `match`, not `unwrap_or_else`: a closure would hide the caller's location.
        match self.try_build() {
            Ok(pool) => pool,
            Err(e) => crate::fail::fail(e),
        }
    }

    /// Builds the pool as [`build`](Builder::build) does, or says which settings cannot work.
    ///
    /// # Errors
    /// Checked in this order:
    /// - [`BuildError::ChunkOverLimit`]: `chunk_bytes` is over `limit_bytes`;
    /// - [`BuildError::RetainUnderChunk`]: `retain_bytes` is under `chunk_bytes`;
    /// - [`BuildError::LimitBelowOneChunk`]: `limit_bytes` is below bumpalo's smallest chunk
    ///   (a few dozen bytes; 0 included), so no allocation could succeed. A limit under 4 KiB
    ///   is checked by making and freeing one small chunk; a larger one allocates nothing here.
    ///
    /// # Examples
    /// ```
    /// use thrifty::arena::{ArenaPool, BuildError};
    ///
    /// let err = ArenaPool::builder().chunk_bytes(8192).retain_bytes(4096).try_build();
    /// assert_eq!(
    ///     err.unwrap_err(),
    ///     BuildError::RetainUnderChunk { retain_bytes: 4096, chunk_bytes: 8192 },
    /// );
    /// ```
    pub fn try_build(self) -> Result<ArenaPool, BuildError> {
        let mut s = self.settings;
        if !self.chunk_set {
            // The default chunk shrinks to fit a smaller limit or retain: only an explicit
            // `chunk_bytes` over them is an error.
            s.chunk_bytes = s.chunk_bytes.min(s.limit_bytes).min(s.retain_bytes);
        }
        if s.chunk_bytes > s.limit_bytes {
            return Err(BuildError::ChunkOverLimit {
                chunk_bytes: s.chunk_bytes,
                limit_bytes: s.limit_bytes,
            });
        }
        if s.retain_bytes < s.chunk_bytes {
            return Err(BuildError::RetainUnderChunk {
                retain_bytes: s.retain_bytes,
                chunk_bytes: s.chunk_bytes,
            });
        }
        // bumpalo's default chunk (448 bytes, 496 with its footer) fits any limit from
        // `PROBE_BELOW` on; under it, ask bumpalo for its smallest chunk under the limit (which
        // makes and frees one if it fits), so a normal build allocates no chunk.
        if s.limit_bytes < PROBE_BELOW && chunk_at_least(1, s.limit_bytes, s.limit_bytes).is_none()
        {
            return Err(BuildError::LimitBelowOneChunk {
                limit_bytes: s.limit_bytes,
            });
        }
        let mut settings = Settings {
            retain_bytes: s.retain_bytes.min(s.limit_bytes),
            ..s
        };
        let pool = Pool::builder()
            .capacity(settings.capacity)
            .reset(Arena::reset)
            .weigh(|arena: &Arena| arena.bump.allocated_bytes())
            .max_object_bytes(settings.retain_bytes)
            .byte_budget(settings.capacity.saturating_mul(settings.retain_bytes))
            .build(move || Arena::new(settings.chunk_bytes, settings.limit_bytes));
        // The pool caps its capacity (`Pool`'s builder says where): report what it retains.
        settings.capacity = pool.capacity();
        Ok(ArenaPool {
            pool: Arc::new(pool),
            settings,
            tallies: Tallies::default(),
        })
    }
}
