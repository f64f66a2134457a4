//! `ArenaPool` lends each arena to one holder at a time, hands it out reset, keeps it under its
//! limit and keeps no more memory than its bounds, while `trim` and `clear` run nonstop beside
//! the threads that use it.
//!
//! Each pool gets random settings (capacity, `limit_bytes`, `retain_bytes`, `chunk_bytes`) and
//! a few rounds; each round spawns fresh user threads and one more thread that calls `clear`,
//! `trim` and `stats` in a loop until the users are done. A user holds one to three guards at
//! once, borrowed and owned, some kept across steps. Into each it writes a pattern of its thread
//! and a sequence number, in allocations of many sizes and alignments (bytes, words, strings,
//! 64-byte-aligned values, zero-sized values aligned to 64, bumpalo's own `try_alloc_layout`
//! through `Deref`), and `reset`s a guard now and then. Some guards it hands to the next user
//! over a channel, some to a fresh thread that exits once it has dropped them. Checked:
//! - **One holder at a time.** Every holder finds every pattern written into its arena intact
//!   after writing into all the arenas it holds and before it lets the guard go (a second holder
//!   would have reset the arena or written over it), and the arenas on loan, by the address of
//!   their `Bump` (which stays in the pool's box while on loan), never include one twice.
//! - **Handed out reset**, and after `ArenaGuard::reset`: nothing in use, one chunk at most, of
//!   at most `retain_bytes` (what a returned arena keeps), and the pool's limit.
//! - **The limit, exactly as `ArenaStats::limit_bytes` puts it**: an arena's `chunk_bytes` never
//!   exceeds `limit_bytes` after any allocation, granted or refused; a request larger than the
//!   limit is always refused, and a refusal from the guard's methods says
//!   `ArenaFull { requested, limit }` with its own size.
//! - **At quiescence** (after each round): every get counted once (`created + reused`), at most
//!   `capacity` arenas and `capacity × retain_bytes` bytes retained, `len` and `is_empty` agreeing
//!   with the stats, and the heap the process gained since the pool was built no less than the
//!   chunk bytes the pool says it retains and no more than those plus a box and a footer per
//!   retained arena and the pool's caches. After `clear`, nothing retained, and no more left on
//!   the heap than the pool's caches may hold (nothing at all, in every run seen); dropping the
//!   pool gives back every byte allocated since it was built.
//!
//! `tests/stress_arena.rs` and `tests/shapes_arena.rs` check sharing and bounds without
//! `trim` or `clear` running meanwhile; `tests/claims_arena.rs` runs them beside idle threads
//! only; `tests/model_arena.rs` checks the limit on one thread. Sizes are cut down under Miri.
//!
//! The settings and choices come from a seed, printed first and named in every failure message:
//! a fixed one, so that every run (CI's included) tries the same settings, unless
//! `EXCLUSIVE_ARENA_SEED=<seed>` names another (`random` for a fresh one each run, to explore;
//! a failed run's seed runs its settings again, though the threads' interleaving differs).

#![cfg(not(loom))]

use std::alloc::Layout;
use std::collections::HashSet;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Barrier, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Scope, ScopedJoinHandle};
use thrifty::arena::{ArenaFull, ArenaGuard, ArenaGuardOwned, ArenaPool, Bump};
use thrifty::measure::{self, AllocStats, CountingAlloc};

#[path = "common/rng.rs"]
mod rng;
use rng::{splitmix, XorShift};

#[path = "common/scaled.rs"]
mod scaled;
use scaled::scaled;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// Pools, each with settings of its own.
const POOLS: usize = scaled(6, 2);
/// Rounds per pool, each with fresh threads.
const ROUNDS: usize = scaled(3, 1);
/// User threads per round (plus the trimming thread, and the short-lived threads guards move
/// to).
const USERS: usize = scaled(4, 3);
/// Steps each user takes per round.
const STEPS: usize = scaled(80, 4);
/// Most guards a user takes for itself at once (those handed over come on top).
const HOLD: usize = 3;
/// Longest slice of an ordinary allocation, in elements.
const SLICE: usize = scaled(400, 24);
/// Largest "large" allocation: a limit past this is exercised by refused requests only.
const LARGE: usize = scaled(1 << 20, 4 << 10);

/// Heap a retained arena holds beyond its chunks' capacity, at most: the pool's
/// cache-line-padded box and bumpalo's chunk footer (176 bytes on x86-64: 128 and 48).
const ARENA_OVERHEAD: usize = 512;
/// Heap the pool may hold beside its arenas, grown after its build and kept until it drops: a
/// cache leaf of 3 KiB for each range of 8 thread slots that used it, and an empty box for each
/// cache (`ArenaPool`'s "Allocation" section and `Pool`'s).
const CACHES_OVERHEAD: usize = 32 << 10;

/// What the byte allocations copy from before they write their pattern: big enough for any
/// request past the largest limit.
static ZEROS: [u8; 256 << 10] = [0; 256 << 10];
/// As [`ZEROS`], for the word allocations.
static ZERO_WORDS: [u32; 1 << 10] = [0; 1 << 10];

/// A value aligned to 64 bytes, above the 16 bumpalo aligns its chunks to: the arena notes such
/// alignments for the chunk it rebuilds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(64))]
struct Line([u64; 8]);

/// A zero-sized value aligned to 64: no bytes, but an aligned address all the same.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
struct Nothing64;

/// Byte `i` of the pattern for `tag` (tags are spread by [`splitmix`], so two holders' patterns
/// differ in nearly every byte).
fn byte(tag: u64, i: usize) -> u8 {
    (tag as u8).wrapping_add((i as u8).wrapping_mul(31)) ^ (tag >> 8) as u8
}

/// Word `i` of the pattern for `tag`.
fn word(tag: u64, i: usize) -> u32 {
    (tag as u32) ^ (i as u32).wrapping_mul(0x9e37_79b9)
}

/// The 64-byte-aligned value for `tag`.
fn line(tag: u64) -> Line {
    Line(std::array::from_fn(|i| tag.rotate_left(i as u32 * 8)))
}

/// Character `i` of the string for `tag`: a lowercase ASCII letter.
fn letter(tag: u64, i: usize) -> char {
    char::from(b'a' + byte(tag, i) % 26)
}

/// An arena on loan, through either kind of guard.
enum Guard<'p> {
    Borrowed(ArenaGuard<'p>),
    Owned(ArenaGuardOwned),
}

/// Evaluates `$body` with `$a` bound to the guard in `$guard` (a `&Guard` or `&mut Guard`),
/// whichever kind it is: the two guards have the same methods but no trait in common.
macro_rules! with {
    ($guard:expr, |$a:ident| $body:expr) => {
        match $guard {
            Guard::Borrowed($a) => $body,
            Guard::Owned($a) => $body,
        }
    };
}

/// One allocation a holder made in its arena: where it lies, and the tag of the pattern it
/// must still hold.
enum Mark {
    Bytes(NonNull<[u8]>, u64),
    Words(NonNull<[u32]>, u64),
    Line(NonNull<Line>, u64),
    /// A string's bytes (read only).
    Str(NonNull<[u8]>, u64),
    /// Zero-sized values: only their address (aligned) and count to check.
    Nothing(NonNull<[Nothing64]>, usize),
}

impl Mark {
    /// Bytes the allocation takes in the arena, padding aside.
    fn bytes(&self) -> usize {
        match self {
            Mark::Bytes(at, _) => at.len(),
            Mark::Words(at, _) => 4 * at.len(),
            Mark::Line(..) => 64,
            Mark::Str(at, _) => at.len(),
            Mark::Nothing(..) => 0,
        }
    }

    /// Whether the allocation still holds its pattern (and lies where its type needs).
    ///
    /// # Safety
    /// The arena the mark was made in is still on loan to the caller, not reset since.
    unsafe fn intact(&self) -> bool {
        match self {
            Mark::Bytes(at, tag) => {
                // SAFETY: the caller's contract: the allocation lives until the guard drops or
                // resets, and no one else may write to it while the caller holds the guard.
                let s = unsafe { at.as_ref() };
                s.iter().enumerate().all(|(i, &b)| b == byte(*tag, i))
            }
            Mark::Words(at, tag) => {
                // SAFETY: as for `Bytes`.
                let s = unsafe { at.as_ref() };
                s.iter().enumerate().all(|(i, &w)| w == word(*tag, i))
            }
            Mark::Line(at, tag) => {
                // SAFETY: as for `Bytes`.
                *unsafe { at.as_ref() } == line(*tag)
            }
            Mark::Str(at, tag) => {
                // SAFETY: as for `Bytes`.
                let s = unsafe { at.as_ref() };
                let letters = s.iter().map(|&c| char::from(c));
                letters.enumerate().all(|(i, c)| c == letter(*tag, i))
            }
            // Aligned, as its type needs, and as many as were asked for.
            Mark::Nothing(at, n) => at.as_ptr().cast::<u8>() as usize % 64 == 0 && at.len() == *n,
        }
    }
}

/// A guard, the marks its holders have made in its arena this round, and the arena's identity.
struct Held<'p> {
    guard: Guard<'p>,
    marks: Vec<Mark>,
    /// The address of the arena's `Bump`, inside the pool's box: the same while it is on loan.
    addr: usize,
}

// SAFETY: a `Held` is its guard (`Send`) and the marks' pointers into that guard's arena, which
// are read only by whoever holds the `Held`, after it has the guard: they move with the arena,
// as the `&mut` references they were made from would with a scoped borrow of the guard.
unsafe impl Send for Held<'_> {}

/// What every thread of a pool's rounds shares.
struct Ctx<'p> {
    pool: &'p Arc<ArenaPool>,
    /// The addresses of the arenas on loan now.
    on_loan: &'p Mutex<HashSet<usize>>,
    /// Gets made, for the pool's `created + reused`.
    gets: AtomicU64,
    /// Ids for the threads' [`Me`]s, unique across the pool's rounds.
    next_who: AtomicU64,
    /// For messages: the pool's settings.
    about: String,
}

impl Ctx<'_> {
    /// A fresh [`Me`] for a thread.
    fn me(&self, seed: u64) -> Me {
        Me::new(self.next_who.fetch_add(1, Ordering::Relaxed), seed)
    }

    /// The loan list, locked.
    fn on_loan(&self) -> MutexGuard<'_, HashSet<usize>> {
        // A holder that failed an assertion while holding the lock has already failed the
        // test: the set is still what the others need to finish.
        self.on_loan.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The address of an arena's `Bump`.
fn address(bump: &Bump) -> usize {
    std::ptr::from_ref(bump) as usize
}

/// A user's own state: its id (unique among the threads of the pool's rounds), its random
/// choices and its next tag.
struct Me {
    who: u64,
    rng: XorShift,
    marks_made: u64,
}

impl Me {
    /// Thread `who`'s state, its choices drawn from `seed` and `who`.
    fn new(who: u64, seed: u64) -> Self {
        Me {
            who,
            rng: XorShift::new(seed ^ who.wrapping_mul(0x1000_0000_01b3)),
            marks_made: 0,
        }
    }

    /// A fresh tag: this thread's id and sequence number, spread.
    fn tag(&mut self) -> u64 {
        self.marks_made += 1;
        splitmix((self.who << 40) ^ self.marks_made)
    }
}

/// Takes an arena from the pool (an owned guard, or a borrowed one), records it as on loan
/// (failing if it already is) and checks that it was handed out reset.
fn take<'p>(ctx: &Ctx<'p>, owned: bool) -> Held<'p> {
    let guard = match owned {
        true => Guard::Owned(ctx.pool.get_owned()),
        false => Guard::Borrowed(ctx.pool.get()),
    };
    ctx.gets.fetch_add(1, Ordering::Relaxed);
    let addr = with!(&guard, |a| address(a));
    assert!(
        ctx.on_loan().insert(addr),
        "{}: the arena at {addr:#x} was lent while another holder had it",
        ctx.about
    );
    let held = Held {
        guard,
        marks: Vec::new(),
        addr,
    };
    assert_reset(ctx, &held, "handed out");
    held
}

/// Asserts that `held`'s arena is as the pool hands arenas out: nothing in use, at most one
/// chunk, of at most `retain_bytes`, and the pool's limit.
fn assert_reset(ctx: &Ctx<'_>, held: &Held<'_>, when: &str) {
    let stats = with!(&held.guard, |a| a.stats());
    let limit = with!(&held.guard, |a| a.limit_bytes());
    assert!(
        stats.allocated_bytes == 0
            && stats.chunks <= 1
            && stats.chunk_bytes <= ctx.pool.retain_bytes()
            && stats.limit_bytes == ctx.pool.limit_bytes()
            && limit == ctx.pool.limit_bytes(),
        "{}: an arena {when} is not reset: {stats:?}",
        ctx.about
    );
}

/// Asserts that a refusal names the request's size and the pool's limit.
fn assert_refusal(ctx: &Ctx<'_>, full: ArenaFull, requested: usize) {
    assert_eq!(
        full,
        ArenaFull {
            requested,
            limit: ctx.pool.limit_bytes()
        },
        "{}",
        ctx.about
    );
}

/// A length for an allocation of `elem`-byte elements: mostly small, now and then up to
/// [`LARGE`] or half the limit, whichever is less.
fn length(ctx: &Ctx<'_>, me: &mut Me, elem: usize) -> usize {
    match me.rng.below(16) {
        0 => me
            .rng
            .below(ctx.pool.limit_bytes().min(LARGE) / 2 / elem + 1),
        1..=4 => me.rng.below(16),
        _ => me.rng.below(SLICE + 1),
    }
}

/// Makes one to five allocations of random kinds in `held`'s arena, each filled with a fresh
/// tag's pattern, and checks the limit after each.
fn write(ctx: &Ctx<'_>, me: &mut Me, held: &mut Held<'_>) {
    let limit = ctx.pool.limit_bytes();
    for _ in 0..1 + me.rng.below(5) {
        let tag = me.tag();
        let mark = match me.rng.below(8) {
            0 | 1 => {
                let n = length(ctx, me, 1);
                match with!(&held.guard, |a| a.try_alloc_slice_copy(&ZEROS[..n])) {
                    Ok(s) => {
                        s.iter_mut()
                            .enumerate()
                            .for_each(|(i, b)| *b = byte(tag, i));
                        Some(Mark::Bytes(NonNull::from(s), tag))
                    }
                    Err(full) => {
                        assert_refusal(ctx, full, n);
                        None
                    }
                }
            }
            2 => {
                let n = length(ctx, me, 4).min(ZERO_WORDS.len());
                match with!(&held.guard, |a| a.try_alloc_slice_copy(&ZERO_WORDS[..n])) {
                    Ok(s) => {
                        s.iter_mut()
                            .enumerate()
                            .for_each(|(i, w)| *w = word(tag, i));
                        Some(Mark::Words(NonNull::from(s), tag))
                    }
                    Err(full) => {
                        assert_refusal(ctx, full, 4 * n);
                        None
                    }
                }
            }
            3 => match with!(&held.guard, |a| a.try_alloc(line(tag))) {
                Ok(v) => {
                    let at = NonNull::from(v);
                    assert_eq!(at.as_ptr() as usize % 64, 0, "{}", ctx.about);
                    Some(Mark::Line(at, tag))
                }
                Err(refused) => {
                    assert_eq!(refused.value, line(tag), "{}", ctx.about);
                    assert_refusal(ctx, refused.full, 64);
                    None
                }
            },
            4 => {
                let text: String = (0..length(ctx, me, 1)).map(|i| letter(tag, i)).collect();
                match with!(&held.guard, |a| a.try_alloc_str(&text)) {
                    Ok(s) => Some(Mark::Str(NonNull::from(s.as_bytes()), tag)),
                    Err(full) => {
                        assert_refusal(ctx, full, text.len());
                        None
                    }
                }
            }
            5 => {
                // Zero-sized values take no byte, but the one aligned to 64 may need padding,
                // and so a chunk, that the limit refuses.
                let n = me.rng.below(4);
                match with!(&held.guard, |a| a.try_alloc(())) {
                    Ok(_) => {}
                    Err(refused) => assert_refusal(ctx, refused.full, 0),
                }
                match with!(&held.guard, |a| a.try_alloc(Nothing64)) {
                    Ok(v) => {
                        let at = NonNull::from(std::slice::from_mut(v));
                        held.marks.push(Mark::Nothing(at, 1));
                    }
                    Err(refused) => assert_refusal(ctx, refused.full, 0),
                }
                let src = [Nothing64; 3];
                match with!(&held.guard, |a| a.try_alloc_slice_copy(&src[..n])) {
                    Ok(s) => Some(Mark::Nothing(NonNull::from(s), n)),
                    Err(full) => {
                        assert_refusal(ctx, full, 0);
                        None
                    }
                }
            }
            6 => {
                // bumpalo's own method, through `Deref`: the limit holds there too.
                let n = length(ctx, me, 1);
                let align = 1 << me.rng.below(8);
                let layout = Layout::from_size_align(n, align).unwrap();
                match with!(&held.guard, |a| a.try_alloc_layout(layout)) {
                    Ok(p) => {
                        assert_eq!(p.as_ptr() as usize % align, 0, "{}", ctx.about);
                        let at = NonNull::slice_from_raw_parts(p, n);
                        // SAFETY: a fresh allocation of `n` bytes in the arena, which no one
                        // else can reach while this thread holds the guard.
                        let s = unsafe { &mut *at.as_ptr() };
                        s.iter_mut()
                            .enumerate()
                            .for_each(|(i, b)| *b = byte(tag, i));
                        Some(Mark::Bytes(at, tag))
                    }
                    Err(_) => None,
                }
            }
            _ => {
                // Over the limit: no chunk can hold it, so it is always refused.
                let n = limit + 1 + me.rng.below(limit);
                let through_bump = me.rng.below(2) == 0;
                if through_bump {
                    let layout = Layout::from_size_align(n, 1).unwrap();
                    let got = with!(&held.guard, |a| a.try_alloc_layout(layout));
                    assert!(got.is_err(), "{}: {n} bytes granted", ctx.about);
                } else {
                    match with!(&held.guard, |a| a.try_alloc_slice_copy(&ZEROS[..n])) {
                        Ok(_) => panic!("{}: {n} bytes granted", ctx.about),
                        Err(full) => assert_refusal(ctx, full, n),
                    }
                }
                None
            }
        };
        held.marks.extend(mark);
        let stats = with!(&held.guard, |a| a.stats());
        assert!(
            stats.chunk_bytes <= limit && stats.limit_bytes == limit,
            "{}: an arena's chunks past its limit: {stats:?}",
            ctx.about
        );
    }
}

/// Asserts that every pattern written into `held`'s arena this round is intact, that the arena
/// counts at least their bytes as in use, and that it has not moved.
fn check(ctx: &Ctx<'_>, held: &Held<'_>, when: &str) {
    assert_eq!(
        with!(&held.guard, |a| address(a)),
        held.addr,
        "{}: {when}: an arena on loan moved",
        ctx.about
    );
    for (i, mark) in held.marks.iter().enumerate() {
        // SAFETY: the caller holds `held`, whose guard lends the arena the marks were made
        // in; marks are cleared whenever the arena is reset.
        let intact = unsafe { mark.intact() };
        assert!(
            intact,
            "{}: {when}: allocation {i} of {} in the arena at {:#x} was written over by \
             another holder",
            ctx.about,
            held.marks.len(),
            held.addr
        );
    }
    let marked: usize = held.marks.iter().map(Mark::bytes).sum();
    let stats = with!(&held.guard, |a| a.stats());
    assert!(
        stats.allocated_bytes >= marked,
        "{}: {when}: the arena at {:#x} holds {marked} bytes of its holder's but counts {stats:?}",
        ctx.about,
        held.addr
    );
}

/// Checks `held` a last time, takes it off the loan list and drops its guard, giving the arena
/// back from this thread.
fn release(ctx: &Ctx<'_>, held: Held<'_>) {
    check(ctx, &held, "before release");
    assert!(
        ctx.on_loan().remove(&held.addr),
        "{}: the arena at {:#x} was not on loan",
        ctx.about,
        held.addr
    );
    drop(held);
}

/// Takes over a guard another thread held: its patterns are intact, and this thread's are
/// added.
fn adopt(ctx: &Ctx<'_>, me: &mut Me, held: &mut Held<'_>) {
    check(ctx, held, "handed over");
    write(ctx, me, held);
}

/// Counts a user out when it ends, panicking or not, so the trimming thread always stops.
struct Done<'a>(&'a AtomicUsize);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// One user's round: takes, writes into, checks and lets go of guards for [`STEPS`] steps,
/// handing some to the next user (`next`) and to fresh threads, then lets go of all it holds
/// and of whatever the previous user still hands it (`inbox`), until that user is done.
fn user<'scope, 'env, 'p: 'scope>(
    s: &'scope Scope<'scope, 'env>,
    ctx: &'scope Ctx<'p>,
    me: &mut Me,
    inbox: Receiver<Held<'p>>,
    next: SyncSender<Held<'p>>,
) {
    let mut held: Vec<Held<'p>> = Vec::with_capacity(2 * HOLD + 4);
    let mut mover: Option<ScopedJoinHandle<'scope, ()>> = None;
    for _ in 0..STEPS {
        while let Ok(mut h) = inbox.try_recv() {
            adopt(ctx, me, &mut h);
            held.push(h);
        }
        let want = 1 + me.rng.below(HOLD);
        while held.len() < want {
            let owned = me.rng.below(2) == 0;
            held.push(take(ctx, owned));
        }
        for h in &mut held {
            write(ctx, me, h);
        }
        // Every arena written, then every arena checked: one lent to two of them would show.
        for h in &held {
            check(ctx, h, "held");
        }
        if me.rng.below(6) == 0 {
            let i = me.rng.below(held.len());
            let h = &mut held[i];
            check(ctx, h, "before reset");
            h.marks.clear();
            with!(&mut h.guard, |a| a.reset());
            assert_reset(ctx, h, "after reset");
            write(ctx, me, h);
        }
        for _ in 0..me.rng.below(held.len() + 1) {
            let h = held.swap_remove(me.rng.below(held.len()));
            match me.rng.below(6) {
                0 => match next.try_send(h) {
                    Ok(()) => {}
                    Err(TrySendError::Full(h) | TrySendError::Disconnected(h)) => release(ctx, h),
                },
                1 => {
                    if let Some(t) = mover.take() {
                        t.join().unwrap();
                    }
                    let mut other = ctx.me(me.rng.next());
                    mover = Some(s.spawn(move || {
                        let mut h = h;
                        adopt(ctx, &mut other, &mut h);
                        release(ctx, h);
                    }));
                }
                _ => release(ctx, h),
            }
        }
    }
    for h in held {
        release(ctx, h);
    }
    drop(next);
    // Until the previous user is done and has dropped its sender.
    for mut h in inbox {
        adopt(ctx, me, &mut h);
        release(ctx, h);
    }
    if let Some(t) = mover {
        t.join().unwrap();
    }
}

/// Calls `clear`, `trim` and `stats` in turn, at random, until no user is `active`.
fn trimmer(pool: &ArenaPool, active: &AtomicUsize, seed: u64) {
    let mut rng = XorShift::new(seed);
    loop {
        match rng.below(4) {
            0 => pool.clear(),
            1 => pool.trim(rng.below(pool.capacity() + 2)),
            2 => {
                std::hint::black_box((pool.stats(), pool.len(), pool.is_empty()));
            }
            _ => thread::yield_now(),
        }
        if active.load(Ordering::Acquire) == 0 {
            break;
        }
    }
}

/// One round: [`USERS`] fresh user threads in a ring (each hands guards to the next) and the
/// trimming thread, all joined by hand so their exits are over when it returns.
fn round(ctx: &Ctx<'_>, seed: u64) {
    let active = AtomicUsize::new(USERS);
    let start = Barrier::new(USERS + 1);
    let (mut senders, inboxes): (Vec<_>, Vec<_>) = (0..USERS).map(|_| sync_channel(2)).unzip();
    // User `i` reads inbox `i` and sends to inbox `i + 1`.
    senders.rotate_left(1);
    thread::scope(|s| {
        let (active, start) = (&active, &start);
        let users: Vec<_> = inboxes
            .into_iter()
            .zip(senders)
            .map(|(inbox, next)| {
                s.spawn(move || {
                    let _done = Done(active);
                    let mut me = ctx.me(seed);
                    start.wait();
                    user(s, ctx, &mut me, inbox, next);
                })
            })
            .collect();
        let trimming = s.spawn(move || {
            start.wait();
            trimmer(ctx.pool, active, seed);
        });
        for t in users {
            t.join().unwrap();
        }
        trimming.join().unwrap();
    });
}

/// Random settings for a pool: capacity, `limit_bytes`, `chunk_bytes`, `retain_bytes` (which
/// the pool caps at the limit).
fn settings(rng: &mut XorShift) -> (usize, usize, usize, usize) {
    let capacity = [0, 1, 2, 3, 5, 8, 16, 64][rng.below(8)];
    let limit = match rng.below(6) {
        0 => 1000,
        1 => 4096,
        2 => 6000,
        3 => 16 << 10,
        4 => 64 << 10,
        _ => 2048 + rng.below(100_000),
    };
    let chunk = [0, 256, 1024, 4096][rng.below(4)].min(limit);
    let retain = chunk + rng.below(limit + 1);
    (capacity, limit, chunk, retain)
}

/// Spawns threads that take thread slots and park at once, twice, more of them than any round
/// runs: thrifty's slot registry and (outside Miri) parking_lot's table of parked threads grow
/// once for good here, not inside a measured span.
fn warm_up_threads() {
    const N: usize = 24;
    let pool = ArenaPool::new();
    for _ in 0..2 {
        let (parked, go) = (parking_lot::Mutex::new(0), parking_lot::Condvar::new());
        let all = Barrier::new(N);
        thread::scope(|s| {
            let threads: Vec<_> = (0..N)
                .map(|_| {
                    s.spawn(|| {
                        drop(pool.get());
                        all.wait();
                        if !cfg!(miri) {
                            let mut n = parked.lock();
                            *n += 1;
                            if *n == N {
                                go.notify_all();
                            }
                            while *n < N {
                                go.wait(&mut n);
                            }
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
        });
    }
}

/// The variable that sets the test's seed, to run the pools and choices of a failed run again.
const SEED: &str = "EXCLUSIVE_ARENA_SEED";

/// The seed when [`SEED`] is not set.
const DEFAULT_SEED: u64 = 0x7e57_a4e4_a000_0001;

/// The seed: [`SEED`]'s value (decimal or `0x` hex, or `random` for a fresh one), else
/// [`DEFAULT_SEED`]. Failure messages name it.
fn seed() -> u64 {
    match std::env::var(SEED) {
        Ok(v) if v == "random" => {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(0u8)
        }
        Ok(v) => match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => v.parse(),
        }
        .unwrap_or_else(|e| panic!("{SEED}={v}: {e}")),
        Err(_) => DEFAULT_SEED,
    }
}

/// Live heap bytes gained since `base`, on every thread.
fn gained(base: AllocStats) -> i64 {
    (measure::total_stats() - base).net_bytes()
}

// The only test in this binary, and it must stay so: its heap checks read the whole process's
// allocations (`measure::total_stats`), which another test running beside it would disturb.
#[test]
fn arenas_are_lent_to_one_holder_at_a_time_while_trim_and_clear_run() {
    warm_up_threads();
    let seed = seed();
    eprintln!("{SEED}={seed:#x}");
    let mut rng = XorShift::new(seed);
    let on_loan = Mutex::new(HashSet::with_capacity(256));
    for case in 0..POOLS {
        let (capacity, limit, chunk, retain) = settings(&mut rng);
        let about = format!(
            "{SEED}={seed:#x}, pool {case}: capacity {capacity}, limit_bytes {limit}, \
             chunk_bytes {chunk}, retain_bytes {retain}"
        );
        let before_build = measure::total_stats();
        let pool = Arc::new(
            ArenaPool::builder()
                .capacity(capacity)
                .limit_bytes(limit)
                .chunk_bytes(chunk)
                .retain_bytes(retain)
                .try_build()
                .unwrap_or_else(|e| panic!("{about}: {e}")),
        );
        let ctx = Ctx {
            pool: &pool,
            on_loan: &on_loan,
            gets: AtomicU64::new(0),
            next_who: AtomicU64::new(1),
            about,
        };
        let built = measure::total_stats();
        let retain = pool.retain_bytes();
        for r in 0..ROUNDS {
            round(&ctx, rng.next());
            // Read before this thread allocates its message.
            let (stats, heap) = (pool.stats(), gained(built));
            let about = format!("{}, after round {r}", ctx.about);
            let gets = ctx.gets.load(Ordering::Relaxed);
            assert_eq!(stats.created + stats.reused, gets, "{about}: {stats:?}");
            assert!(
                stats.retained <= capacity && stats.retained_bytes <= capacity * retain,
                "{about}: retains past its bounds: {stats:?}"
            );
            assert_eq!(
                (pool.len(), pool.is_empty()),
                (stats.retained, stats.retained == 0),
                "{about}: {stats:?}"
            );
            assert!(ctx.on_loan().is_empty(), "{about}: arenas still on loan");
            let most = stats.retained_bytes + stats.retained * ARENA_OVERHEAD + CACHES_OVERHEAD;
            assert!(
                heap >= stats.retained_bytes as i64 && heap <= most as i64,
                "{about}: the heap gained {heap} bytes since the build, for a pool that \
                 retains {stats:?} (at most {most} expected)"
            );
        }
        pool.clear();
        let stats = pool.stats();
        assert_eq!(
            (
                stats.retained,
                stats.retained_bytes,
                pool.len(),
                pool.is_empty()
            ),
            (0, 0, 0, true),
            "{}: clear left {stats:?}",
            ctx.about
        );
        let heap = gained(built);
        // Only what the caches may hold is left (0 in every run seen: no chunk, no box).
        assert!(
            heap <= CACHES_OVERHEAD as i64,
            "{}: {heap} bytes gained since the build are still held after clear",
            ctx.about
        );
        let about = ctx.about;
        drop(Arc::into_inner(pool).expect("no guard outlives its round"));
        let outlived = gained(before_build);
        assert_eq!(outlived, 0, "{about}: bytes outlived the pool");
    }
}
