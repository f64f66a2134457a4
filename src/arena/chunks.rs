//! [`Arena`]: the value an [`ArenaPool`](super::ArenaPool) pools — one `bumpalo::Bump` with its
//! limit and its history — and the chunk bookkeeping around it: sizing a chunk under a cap,
//! measuring a round, and settling an arena on return (rebuilt to one chunk, or shrunk).
//!
//! Every chunk an arena ever holds is made by bumpalo under an allocation limit that is already
//! set, and no chunk is ever kept past the limit, so bumpalo's own check (made when it grabs a
//! chunk: the chunks' capacities plus the new one's must fit the limit) always applies. That
//! rules out the case where bumpalo ignores its limit: a limit set below what the arena already
//! holds (fitzgen/bumpalo#244; bumpalo 3 treats it as no limit at all).

use super::{ArenaFull, ArenaStats, Refused};
use bumpalo::Bump;
use std::alloc::Layout;
use std::cell::Cell;

/// The alignment of every chunk's end in bumpalo: a chunk's data and its capacity are both
/// multiples of it.
const CHUNK_ALIGN: usize = 16;

/// How an arena's round used its chunks, measured before a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Chunks held.
    pub(crate) chunks: usize,
    /// Bytes in use in all chunks, alignment padding included: handed out, less the blocks
    /// bumpalo took back because they were the newest in the current chunk when freed or
    /// shrunk (a `collections::Vec` dropped).
    pub(crate) used: usize,
    /// Free bytes left in the current (newest) chunk.
    pub(crate) room: usize,
    /// Capacity of all chunks (bumpalo's `allocated_bytes`): what `limit_bytes` bounds.
    pub(crate) held: usize,
}

impl Usage {
    /// The most the round can have had in use at once, bounded from what is left to see:
    /// bumpalo bumps only in its current chunk, so the earlier chunks still hold all they ever
    /// held, and the current one held at most its capacity (`used` + `room`). Its freed blocks
    /// are gone from `used` (bumpalo rewinds over the newest block when it is freed), so `used`
    /// alone can be far less than the round needed: a `Vec` grown to 256 KiB and dropped leaves
    /// nothing of its last buffer in `used`. At most `held`.
    pub(crate) fn peak_bound(&self) -> usize {
        self.used.saturating_add(self.room)
    }
}

/// What the reset that handed an arena out again made in place of the chunks its last round
/// freed when it was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Made {
    /// The round held several chunks: one chunk that holds the whole round (or as much of it
    /// as the retain cap allows, which is at least what the round had in use at its end).
    Rebuilt,
    /// The round needed more than the retain cap (or no chunk under it held the round): one
    /// chunk of at most `chunk_bytes`.
    Shrunk,
}

/// The chunk a settled arena's next round starts with, made by [`Arena::reset`] when the pool
/// hands the arena out again: an arena the pool drops on return makes none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// A chunk of at least `peak` bytes under `cap`, else the largest under `cap` that holds
    /// `least`, else one of at most `fallback`.
    Rebuild {
        peak: usize,
        least: usize,
        cap: usize,
        fallback: usize,
    },
    /// A chunk of at most this many bytes.
    Shrink(usize),
}

impl Plan {
    /// The `Bump`, limited to `limit`, that the plan asks for, and what it is.
    fn make(self, limit: usize) -> (Bump, Made) {
        let most = match self {
            Plan::Rebuild {
                peak,
                least,
                cap,
                fallback,
            } => match chunk_at_least(peak, cap, limit).or_else(|| chunk_within(least, cap, limit))
            {
                Some(bump) => return (bump, Made::Rebuilt),
                None => fallback,
            },
            Plan::Shrink(most) => most,
        };
        (chunk_at_most(most, limit), Made::Shrunk)
    }
}

/// One pooled arena: a `Bump` whose allocation limit is always set, and its statistics.
#[derive(Debug)]
pub(crate) struct Arena {
    pub(crate) bump: Bump,
    /// The arena's `limit_bytes`, re-applied on every reset.
    limit: usize,
    /// The most bytes any round of this arena had in use at its end (`Usage::used` when it
    /// was settled).
    high_water: usize,
    /// How many times this arena has been handed out.
    rounds: u64,
    /// The largest alignment of a value the guard's methods allocated this round, at least
    /// [`CHUNK_ALIGN`]; zero-sized values, which take no byte, are not counted. (A `Cell` as
    /// bumpalo's own bump pointer is: an `Arena` is used by one thread at a time.)
    align: Cell<usize>,
    /// How many of this round's allocations through the guard's methods were aligned above
    /// [`CHUNK_ALIGN`] (saturating): at most that many of its chunks held one, and a rebuilt
    /// chunk allows `align` of padding for each of those only (`settle_slow`).
    overaligned: Cell<usize>,
    /// Set when the arena is settled with its chunks freed: the chunk its next round starts
    /// with.
    plan: Option<Plan>,
    /// What the last reset made of a plan, until the pool counts it ([`Arena::take_made`]).
    made: Option<Made>,
}

impl Arena {
    /// A fresh arena with one chunk of at most `chunk_bytes` (none for 0), limited to `limit`.
    pub(crate) fn new(chunk_bytes: usize, limit: usize) -> Self {
        Self {
            bump: chunk_at_most(chunk_bytes, limit),
            limit,
            high_water: 0,
            rounds: 1,
            align: Cell::new(CHUNK_ALIGN),
            overaligned: Cell::new(0),
            plan: None,
            made: None,
        }
    }

    /// What the last reset made in place of the chunks the arena's settling freed, once: for
    /// the pool's statistics.
    #[inline(always)]
    pub(crate) fn take_made(&mut self) -> Option<Made> {
        debug_assert!(self.plan.is_none(), "an arena handed out before its reset");
        self.made.take()
    }

    /// The arena's `limit_bytes`.
    #[inline(always)]
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Empties the arena for its next user (the pool's reset-on-get), making the chunk its
    /// settling planned if it freed its chunks, and re-applies the limit, in case a user changed
    /// it through the `Bump`.
    pub(crate) fn reset(&mut self) {
        match self.plan.take() {
            Some(plan) => {
                (self.bump, self.made) = {
                    let (bump, made) = plan.make(self.limit);
                    (bump, Some(made))
                }
            }
            None => self.bump.reset(),
        }
        self.bump.set_allocation_limit(Some(self.limit));
        self.rounds += 1;
        self.align.set(CHUNK_ALIGN);
        self.overaligned.set(0);
    }

    /// Notes that this round allocates `T`s, so that a rebuilt chunk allows for their alignment.
    /// A constant condition: compiled away for a `T` aligned to 16 bytes or less.
    #[inline(always)]
    fn note_align<T>(&self) {
        if std::mem::align_of::<T>() > CHUNK_ALIGN && std::mem::size_of::<T>() > 0 {
            self.align
                .set(self.align.get().max(std::mem::align_of::<T>()));
            self.overaligned
                .set(self.overaligned.get().saturating_add(1));
        }
    }

    /// Chunks, bytes handed out and bytes held, now.
    pub(crate) fn usage(&self) -> Usage {
        let mut usage = Usage {
            chunks: 0,
            used: 0,
            room: self.bump.chunk_capacity(),
            held: self.bump.allocated_bytes(),
        };
        // SAFETY: `iter_allocated_chunks_raw`'s contract is that nothing is allocated from the
        // arena while the iterator lives, and that the chunks' data is read only with care. This
        // loop allocates nothing, reads only the (pointer, length) pairs the iterator yields and
        // never dereferences a pointer; no other thread can allocate meanwhile, because an
        // `Arena` is reached only through `&mut` (settling) or through a guard, which is not
        // `Sync`.
        for (_, len) in unsafe { self.bump.iter_allocated_chunks_raw() } {
            usage.chunks += 1;
            usage.used += len;
        }
        usage
    }

    /// This arena's statistics now.
    pub(crate) fn stats(&self) -> ArenaStats {
        let usage = self.usage();
        ArenaStats {
            allocated_bytes: usage.used,
            chunk_bytes: usage.held,
            chunks: usage.chunks,
            high_water_bytes: self.high_water.max(usage.used),
            limit_bytes: self.limit,
            rounds: self.rounds,
        }
    }

    /// Settles the arena at the end of a round, before the pool weighs it: an arena of several
    /// chunks frees them, and its next reset makes one chunk that holds the round at its peak
    /// ([`Usage::peak_bound`]), so the next round like this one allocates nothing
    /// (`Bump::reset` would keep only the last chunk, and the round would spill again); an
    /// arena whose round needs more than `retain` frees its chunks, and its next reset makes
    /// one of `chunk_bytes`. The new chunk waits for the reset so that an arena the pool drops
    /// on return (full, or of capacity 0) makes none.
    #[inline]
    pub(crate) fn settle(&mut self, retain: usize, chunk_bytes: usize) {
        let usage = self.usage();
        self.high_water = self.high_water.max(usage.used);
        if usage.chunks > 1 || usage.held > retain {
            self.settle_slow(usage, retain, chunk_bytes);
        }
    }

    #[cold]
    #[inline(never)]
    fn settle_slow(&mut self, usage: Usage, retain: usize, chunk_bytes: usize) {
        // `try_build` caps `retain_bytes` at `limit_bytes`.
        debug_assert!(retain <= self.limit, "retain_bytes is capped at the limit");
        let cap = retain;
        // One chunk holds the round with its alignment padding laid out afresh. The run of
        // allocations each chunk held costs as much in the one chunk, plus, where the run now
        // starts (not at a chunk's end, aligned to 16), up to its largest alignment less one:
        // so allow 16 bytes per chunk, raised to the round's largest alignment for as many chunks
        // as the round made allocations aligned above 16 (no more chunks can have held one: a
        // charge for every chunk took rounds with a single such value past `retain_bytes`,
        // JOURNAL.md says how). The guard's methods note alignments above 16 (`note_align`);
        // bumpalo's own methods, reached through `Deref`, cannot, and for them the room left in the
        // round's last chunk, counted in its peak, is the only margin.
        let over = usage.chunks.min(self.overaligned.get());
        let pad = usage
            .chunks
            .saturating_mul(CHUNK_ALIGN)
            .saturating_add(over.saturating_mul(self.align.get() - CHUNK_ALIGN));
        // The least a kept chunk must hold: what the round still has in use.
        let least = usage.used.saturating_add(pad);
        // The old chunks go now (no chunk, no allocation: bumpalo's empty `Bump`, limited like
        // every `Bump` an arena holds), so the pool weighs an arena that holds none, and the
        // process never holds both.
        self.bump = Bump::new();
        self.bump.set_allocation_limit(Some(self.limit));
        let fallback = chunk_bytes.min(cap);
        if usage.chunks > 1 && least <= cap {
            // A chunk for the round's peak, which may be far above what is still in use (a
            // `Vec` grown and dropped); if the cap is below that, the largest chunk under it.
            self.plan = Some(Plan::Rebuild {
                peak: usage.peak_bound().saturating_add(pad),
                least,
                cap,
                fallback,
            });
        } else {
            self.plan = Some(Plan::Shrink(fallback));
        }
    }

    /// Allocates `value`, or says the limit (or the system allocator) refused.
    #[inline(always)]
    // Each call returns a fresh allocation, disjoint from every other (bumpalo's own shape).
    #[allow(clippy::mut_from_ref)]
    pub(crate) fn try_alloc<T>(&self, value: T) -> Result<&mut T, Refused<T>> {
        const { assert_no_drop::<T>() };
        self.note_align::<T>();
        // The room first, then the move: a refusal hands `value` back (bumpalo's own
        // `try_alloc` would consume it).
        match self.bump.try_alloc_layout(Layout::new::<T>()) {
            Ok(room) => {
                let room = room.cast::<T>();
                // SAFETY: `room` is a fresh allocation of `T`'s layout in this arena, so it is
                // aligned, valid for a write of `T`, and no other reference to it exists; it
                // lives as long as `&self` borrows the arena (a reset needs `&mut`).
                unsafe {
                    room.as_ptr().write(value);
                    Ok(&mut *room.as_ptr())
                }
            }
            Err(_) => Err(Refused {
                value,
                full: self.full(std::mem::size_of::<T>()),
            }),
        }
    }

    /// Allocates `value`, or says the limit (or the system allocator) refused, dropping
    /// `value` (plain data: `T` needs no drop). Not handing the value back lets the compiler
    /// build it straight into the arena, where [`try_alloc`](Self::try_alloc), which must
    /// keep it for the refusal, builds it on the stack and copies it (the repository's JOURNAL.md
    /// has what that cost in `cargo bench --bench arena -- request`).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)] // as `try_alloc`
    pub(crate) fn alloc_or_full<T>(&self, value: T) -> Result<&mut T, ArenaFull> {
        const { assert_no_drop::<T>() };
        self.note_align::<T>();
        match self.bump.try_alloc_layout(Layout::new::<T>()) {
            Ok(room) => {
                let room = room.as_ptr().cast::<T>();
                // SAFETY: as in `try_alloc`: a fresh allocation of `T`'s layout, aligned and
                // unaliased, living as long as `&self` borrows the arena.
                unsafe {
                    write_in_place(room, value);
                    Ok(&mut *room)
                }
            }
            Err(_) => Err(self.full(std::mem::size_of::<T>())),
        }
    }

    /// Copies `s` into the arena, or says the limit (or the system allocator) refused.
    #[inline(always)]
    pub(crate) fn try_alloc_str(&self, s: &str) -> Result<&mut str, ArenaFull> {
        match self.bump.try_alloc_str(s) {
            Ok(s) => Ok(s),
            Err(_) => Err(self.full(s.len())),
        }
    }

    /// Copies `src` into the arena, or says the limit (or the system allocator) refused.
    #[inline(always)]
    pub(crate) fn try_alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], ArenaFull> {
        self.note_align::<T>();
        match self.bump.try_alloc_slice_copy(src) {
            Ok(s) => Ok(s),
            Err(_) => Err(self.full(std::mem::size_of_val(src))),
        }
    }

    #[cold]
    #[inline(never)]
    fn full(&self, requested: usize) -> ArenaFull {
        ArenaFull {
            requested,
            limit: self.limit,
        }
    }
}

/// Writes `value` to `dst`, in a function of its own: LLVM then tends to build the value
/// straight in `dst` rather than on the stack first (bumpalo's `alloc_with` does the same).
///
/// # Safety
/// `dst` is valid for a write of `T` and aligned for it.
#[inline(always)]
unsafe fn write_in_place<T>(dst: *mut T, value: T) {
    // SAFETY: the caller's contract.
    unsafe { dst.write(value) }
}

/// Fails to compile for a `T` that needs `Drop`: an arena never runs destructors, so a `Vec`,
/// `String` or `Box` stored in one would leak its heap memory (fitzgen/bumpalo#147).
pub(crate) const fn assert_no_drop<T>() {
    assert!(
        !std::mem::needs_drop::<T>(),
        "thrifty::arena: this type needs Drop, which an arena never runs, so its heap memory \
         would leak; store plain data, or use bumpalo::collections::{{Vec, String}} (arena-backed, \
         nothing to drop), or bumpalo::boxed::Box (drops its value when the Box is dropped)"
    );
}

/// A `Bump` limited to `limit` whose one chunk has a capacity of at most `target` (and as close
/// to it as bumpalo's chunk sizes allow); no chunk for a `target` of 0, or below bumpalo's
/// smallest chunk.
pub(crate) fn chunk_at_most(target: usize, limit: usize) -> Bump {
    chunk_within(1, target, limit).unwrap_or_else(|| {
        let bump = Bump::new();
        bump.set_allocation_limit(Some(limit));
        bump
    })
}

/// A `Bump` limited to `limit` whose one chunk has a capacity of at most `most` (and as close to
/// it as bumpalo's chunk sizes allow) and at least `least`, or `None`, having allocated nothing,
/// if no chunk of bumpalo's sizes lies between (or a `least` past `most`).
///
/// bumpalo rounds a chunk up (to a power of two, or a page, less its overhead), so asking it for
/// `most` bytes can make a larger chunk. Instead the chunk is made by an allocation under a
/// temporary limit of `most`: bumpalo only makes chunks that fit its limit, and a request it
/// cannot fit allocates nothing, so the request shrinks (to `least` at the last) until bumpalo
/// finds a chunk size that fits, then the arena is reset. A size the allocator cannot serve
/// (more than the machine's memory) is halved until it is served (see [`smaller`]).
pub(crate) fn chunk_within(least: usize, most: usize, limit: usize) -> Option<Bump> {
    let mut bump = Bump::new();
    let most = most.min(limit);
    let least = least.max(1);
    if least > most {
        return None;
    }
    bump.set_allocation_limit(Some(most));
    let mut size = most;
    let mut misses = 0;
    while !grow(&bump, size) {
        if size == least {
            return None;
        }
        misses += 1;
        size = smaller(size, misses).max(least);
    }
    bump.reset();
    bump.set_allocation_limit(Some(limit));
    Some(bump)
}

/// bumpalo's page, to which it rounds a chunk of a page or more.
const PAGE: usize = 4096;

/// The size [`chunk_within`] tries after `size` failed, its `misses`-th failure.
///
/// Fine steps (1/64) first: bumpalo rounds a chunk up to a power of two below a page and to
/// whole pages above, so the first size whose chunk fits the target is within a step of the best
/// (a few steps below 64 pages); cold code, and a miss allocates nothing. From 64 pages up, a
/// fine step is a page or more, so a second miss there is the allocator refusing a chunk larger
/// than memory: halve from then on. A target of 1 TiB then costs 7 refused allocations on a
/// machine of 24 GiB (the unit test `a_target_beyond_memory_is_halved_not_stepped`), where fine
/// steps alone cost about 240.
pub(crate) fn smaller(size: usize, misses: u32) -> usize {
    if misses >= 2 && size >= 64 * PAGE {
        size / 2
    } else {
        size - (size / 64).clamp(1, size)
    }
}

/// A `Bump` limited to `limit` with one chunk of at least `size` bytes and at most `cap`, or
/// `None` if bumpalo's chunk for `size` would be over `cap` (it allocates nothing then).
pub(crate) fn chunk_at_least(size: usize, cap: usize, limit: usize) -> Option<Bump> {
    let mut bump = Bump::new();
    bump.set_allocation_limit(Some(cap));
    debug_assert!(
        size > 0,
        "one chunk of at least `size` bytes: callers ask for 1 or more"
    );
    if !grow(&bump, size) {
        return None;
    }
    bump.reset();
    bump.set_allocation_limit(Some(limit));
    Some(bump)
}

/// Allocates `size` bytes (alignment 1) from a chunkless `bump`, making its first chunk.
fn grow(bump: &Bump, size: usize) -> bool {
    match Layout::from_size_align(size, 1) {
        Ok(layout) => bump.try_alloc_layout(layout).is_ok(),
        Err(_) => false,
    }
}
