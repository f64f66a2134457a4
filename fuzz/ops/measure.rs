//! Op-sequence interpreter for `thrifty::measure`, shared by the cargo-fuzz target and
//! `tests/fuzz_corpus.rs`. Bytes are parsed by hand: each op is one code byte and its arguments;
//! at most [`MAX_OPS`] run.
//!
//! A `CountingAlloc` of the interpreter's own (not the global allocator) wraps a recording
//! inner allocator, and the ops call it directly through
//! `GlobalAlloc`: `alloc` and `alloc_zeroed` of 1 to [`MAX_SIZE`] bytes at alignments 1 to 4096,
//! `realloc` of a live block to a larger or smaller size, `dealloc`, an injected failure of the
//! inner allocator's next `alloc`/`realloc`, `pause` guards taken and dropped in any order (a stack
//! of at most [`MAX_GUARDS`]), the read-outs, and a helper thread that calls a `CountingAlloc` of
//! its own, paused or not. Each block is filled with a pattern picked by its id. Checked after
//! every op: the call reached the inner allocator exactly once, as the same call with the same
//! layout and size, and its pointer came back unchanged (null for a failed call, which leaves the
//! block alive and intact); every pointer is aligned; `alloc_zeroed` memory is zero; `realloc`
//! keeps the contents up to the smaller size; `is_paused` is exactly "a guard is alive", on this
//! thread only; `installed()` never turns true from direct calls; and the inner allocator's live
//! blocks and bytes are the interpreter's. At the end every block is freed through the
//! `CountingAlloc` and the inner allocator holds nothing.
//!
//! The counts are read through the global one, which both binaries (the fuzz target and
//! `tests/fuzz_corpus.rs`) install: each direct call is checked against them exactly:
//! each direct call moves the calling thread's `thread_stats` by exactly what `AllocStats`'s
//! field docs define (an `alloc`/`alloc_zeroed` or a `realloc` only if it succeeded, its new size
//! in `bytes_allocated` and its old size in `bytes_deallocated`), or by nothing while paused;
//! `total_stats` never trails `thread_stats`; `count` around an `alloc` reports just that alloc,
//! or panics while paused; the helper thread's own counts are exact whatever this thread's pause.
//! Run from a binary without it, `thread_stats`, `total_stats` and `count` must panic instead,
//! naming themselves and `#[global_allocator]`, which the read-out op then checks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use thrifty::measure::{self, AllocStats, CountingAlloc, Paused};

#[path = "bytes.rs"]
mod bytes;
use bytes::Bytes;

/// Ops run at most per input.
const MAX_OPS: usize = 256;
/// The largest block asked for (the inner allocator's mmap path included).
const MAX_SIZE: usize = 384 << 10;
/// Bytes filled and checked per input at most: once spent, every size is 1, so one input stays
/// well under a millisecond.
const BUDGET: usize = 1 << 20;
/// Live blocks at most; an alloc beyond them is skipped.
const MAX_LIVE: usize = 32;
/// Live `pause` guards at most.
const MAX_GUARDS: usize = 8;
/// Read-outs per input at most: without `CountingAlloc` each is a panic, caught, and every
/// unwind costs ASan a garbage collection of its fake stacks (about 0.2 ms).
const MAX_READS: usize = 4;
/// Helper threads per input at most.
const MAX_THREADS: usize = 4;
/// What `alloc_zeroed` memory is compared with.
static ZEROS: [u8; MAX_SIZE] = [0; MAX_SIZE];

/// One call as the inner allocator saw it, with the pointer it returned (`new` for `realloc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Alloc {
        layout: Layout,
        zeroed: bool,
        ptr: *mut u8,
    },
    Dealloc {
        ptr: *mut u8,
        layout: Layout,
    },
    Realloc {
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        new: *mut u8,
    },
}

/// The inner allocator's state: it forwards to `System`, remembers the last call and the live
/// blocks and bytes, and fails its next `alloc`, `alloc_zeroed` or `realloc` on request. It
/// never allocates through the global allocator, so it adds nothing to a count around a direct
/// call.
#[derive(Default)]
struct Recorder {
    last: Cell<Option<Call>>,
    /// Calls seen since the last [`take`](Self::take), to catch one forwarded twice.
    calls: Cell<usize>,
    live_blocks: Cell<usize>,
    live_bytes: Cell<usize>,
    fail_next: Cell<bool>,
}

impl Recorder {
    fn saw(&self, call: Call) {
        self.last.set(Some(call));
        self.calls.set(self.calls.get() + 1);
    }

    /// The one call seen since the last take; panics if there were several.
    fn take(&self) -> Option<Call> {
        assert!(
            self.calls.replace(0) <= 1,
            "one call forwarded more than once"
        );
        self.last.take()
    }

    fn grant(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        let ptr = if self.fail_next.replace(false) {
            std::ptr::null_mut()
        } else if zeroed {
            // SAFETY: the caller's `GlobalAlloc` contract (non-zero size) is passed on.
            unsafe { System.alloc_zeroed(layout) }
        } else {
            // SAFETY: as above.
            unsafe { System.alloc(layout) }
        };
        if !ptr.is_null() {
            self.live_blocks.set(self.live_blocks.get() + 1);
            self.live_bytes.set(self.live_bytes.get() + layout.size());
        }
        self.saw(Call::Alloc {
            layout,
            zeroed,
            ptr,
        });
        ptr
    }
}

/// The inner allocator the `CountingAlloc` wraps: a [`Recorder`] borrowed, so the interpreter
/// can read it (`CountingAlloc` keeps its inner allocator private).
struct Inner<'a>(&'a Recorder);

// SAFETY: every call is `System`'s with the caller's arguments, or a null "out of memory".
unsafe impl GlobalAlloc for Inner<'_> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.grant(layout, false)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.0.grant(layout, true)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract: `ptr` is a live block of ours (so `System`'s).
        unsafe { System.dealloc(ptr, layout) };
        let r = self.0;
        r.live_blocks.set(r.live_blocks.get() - 1);
        r.live_bytes.set(r.live_bytes.get() - layout.size());
        r.saw(Call::Dealloc { ptr, layout });
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let r = self.0;
        let new = if r.fail_next.replace(false) {
            std::ptr::null_mut()
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { System.realloc(ptr, layout, new_size) }
        };
        if !new.is_null() {
            r.live_bytes
                .set(r.live_bytes.get() - layout.size() + new_size);
        }
        r.saw(Call::Realloc {
            ptr,
            layout,
            new_size,
            new,
        });
        new
    }
}

/// A live block: its pointer and layout, and the seed of its pattern.
struct Block {
    ptr: *mut u8,
    layout: Layout,
    seed: u8,
}

/// The bytes every block's contents are cut from: each byte a hash of its offset, so a block
/// copied to the wrong offset shows; a block starts at `61 * seed` in it, so another block's
/// bytes show too. Filled and compared by `memcpy` and `memcmp`, fast even under ASan.
fn pattern(seed: u8) -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    let all = PATTERN.get_or_init(|| {
        (0..MAX_SIZE as u32 + 61 * 256)
            .map(|i| (i.wrapping_mul(0x9E37_79B1) >> 24) as u8)
            .collect()
    });
    &all[61 * usize::from(seed)..]
}

/// Writes the pattern over bytes `from..to` of the block at `ptr`.
///
/// # Safety
/// `ptr` is a live block of at least `to` bytes.
unsafe fn fill(ptr: *mut u8, from: usize, to: usize, seed: u8) {
    // SAFETY: the caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, to) };
    bytes[from..].copy_from_slice(&pattern(seed)[from..to]);
}

/// Panics unless the first `len` bytes of the block at `ptr` hold the pattern.
///
/// # Safety
/// `ptr` is a live block of at least `len` initialised bytes.
unsafe fn check(ptr: *const u8, len: usize, seed: u8, what: &str) {
    // SAFETY: the caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    let want = &pattern(seed)[..len];
    if bytes != want {
        let i = (0..len).find(|&i| bytes[i] != want[i]).unwrap();
        panic!("{what}: byte {i} of {len} lost its contents");
    }
}

/// What one call adds to the counts, as `AllocStats`'s field docs define them.
fn event(
    allocs: u64,
    deallocs: u64,
    reallocs: u64,
    bytes_in: usize,
    bytes_out: usize,
) -> AllocStats {
    AllocStats {
        allocs,
        deallocs,
        reallocs,
        bytes_allocated: bytes_in as u64,
        bytes_deallocated: bytes_out as u64,
    }
}

/// The calling thread's counts, where they can be read (a `CountingAlloc` installed); else zero.
fn snapshot(installed: bool) -> AllocStats {
    if installed {
        measure::thread_stats()
    } else {
        AllocStats::default()
    }
}

/// Panics unless `f` panics as a read-out without `CountingAlloc` must: naming the function
/// and how to install it (or, for `count` on a paused thread, the pause).
fn refused<R>(what: &str, paused: bool, f: impl FnOnce() -> R) {
    let Err(err) = catch_unwind(AssertUnwindSafe(f)) else {
        panic!("measure::{what} answered without CountingAlloc installed");
    };
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("");
    let named = msg.contains(&format!("thrifty::measure::{what}"));
    let says_why = msg.contains("#[global_allocator]") || (paused && msg.contains("paused"));
    assert!(named && says_why, "unhelpful refusal from {what}: {msg:?}");
}

/// The size argument: one of four scales, at most what is left of the budget, at least 1.
fn size(b: &mut Bytes, budget: usize) -> usize {
    let n = match b.u8() % 4 {
        0 => usize::from(b.u8()),
        1 => usize::from(b.u16()) % 4096,
        2 => usize::from(b.u16()),
        _ => b.u32() as usize % (MAX_SIZE + 1),
    };
    n.min(budget).max(1)
}

/// The alignment argument: a power of two from 1 to 4096.
fn align(b: &mut Bytes) -> usize {
    1 << (b.u8() % 13)
}

/// Runs the ops encoded in `data`; panics if any call, content or count disagrees with the
/// model.
pub fn run(data: &[u8]) {
    let mut b = Bytes(data);
    let installed = measure::installed();
    let recorder = Recorder::default();
    let a = CountingAlloc::wrap(Inner(&recorder));
    let mut live: Vec<Block> = Vec::new();
    let mut guards: Vec<Paused> = Vec::new();
    let (mut next_id, mut budget, mut reads, mut threads) = (0usize, BUDGET, 0, 0);
    // Checks a direct call's span of this thread's counts against `want`: exact, or nothing
    // while paused (only readable where `CountingAlloc` is installed).
    let counted = |span: AllocStats, want: AllocStats, paused: bool, what: &str| {
        if installed {
            let want = if paused { AllocStats::default() } else { want };
            assert_eq!(span, want, "{what} counted {span}");
        }
    };
    let mut ops = 0;
    while !b.0.is_empty() && ops < MAX_OPS {
        ops += 1;
        let paused = !guards.is_empty();
        match b.u8() % 9 {
            code @ (0 | 1) => {
                let zeroed = code == 1;
                let n = size(&mut b, budget);
                let layout = Layout::from_size_align(n, align(&mut b)).unwrap();
                if live.len() == MAX_LIVE {
                    continue;
                }
                let before = snapshot(installed);
                // SAFETY: `layout` has a non-zero size.
                let ptr = unsafe {
                    if zeroed {
                        a.alloc_zeroed(layout)
                    } else {
                        a.alloc(layout)
                    }
                };
                let span = snapshot(installed) - before;
                assert_eq!(
                    recorder.take(),
                    Some(Call::Alloc {
                        layout,
                        zeroed,
                        ptr
                    }),
                    "forwarded unchanged"
                );
                if ptr.is_null() {
                    counted(span, AllocStats::default(), paused, "a failed alloc");
                    continue;
                }
                counted(span, event(1, 0, 0, n, 0), paused, "alloc");
                assert_eq!(ptr as usize % layout.align(), 0, "misaligned {layout:?}");
                if zeroed {
                    // SAFETY: `alloc_zeroed` returned `n` initialised bytes.
                    let bytes = unsafe { std::slice::from_raw_parts(ptr, n) };
                    assert!(bytes == &ZEROS[..n], "alloc_zeroed not zeroed");
                }
                let seed = next_id as u8 ^ 0x5a;
                next_id += 1;
                // SAFETY: a live block of `n` bytes.
                unsafe { fill(ptr, 0, n, seed) };
                budget = budget.saturating_sub(n * (1 + usize::from(zeroed)));
                live.push(Block { ptr, layout, seed });
            }
            2 => {
                let i = usize::from(b.u8());
                let n = size(&mut b, budget);
                if live.is_empty() {
                    continue;
                }
                let len = live.len();
                let block = &mut live[i % len];
                let old = block.layout;
                let before = snapshot(installed);
                // SAFETY: a live block of this allocator with this layout; `n` is non-zero and
                // small, so the new layout is valid.
                let new = unsafe { a.realloc(block.ptr, old, n) };
                let span = snapshot(installed) - before;
                assert_eq!(
                    recorder.take(),
                    Some(Call::Realloc {
                        ptr: block.ptr,
                        layout: old,
                        new_size: n,
                        new
                    }),
                    "forwarded unchanged"
                );
                if new.is_null() {
                    // The block is left as it was; `dealloc` checks its contents later.
                    counted(span, AllocStats::default(), paused, "a failed realloc");
                    continue;
                }
                counted(span, event(0, 0, 1, n, old.size()), paused, "realloc");
                assert_eq!(new as usize % old.align(), 0, "realloc lost the alignment");
                let kept = old.size().min(n);
                // SAFETY: `realloc` kept the first `kept` of the old block's bytes, all
                // initialised, and the new block has `n` bytes.
                unsafe {
                    check(new, kept, block.seed, "realloc");
                    fill(new, kept, n, block.seed);
                }
                budget = budget.saturating_sub(n);
                block.ptr = new;
                block.layout = Layout::from_size_align(n, old.align()).unwrap();
            }
            3 => {
                let i = usize::from(b.u8());
                if live.is_empty() {
                    continue;
                }
                let block = live.swap_remove(i % live.len());
                let layout = block.layout;
                // SAFETY: a live block of `layout.size()` bytes, all filled.
                unsafe { check(block.ptr, layout.size(), block.seed, "dealloc") };
                budget = budget.saturating_sub(layout.size());
                let before = snapshot(installed);
                // SAFETY: a live block of this allocator with this layout.
                unsafe { a.dealloc(block.ptr, layout) };
                let span = snapshot(installed) - before;
                assert_eq!(
                    recorder.take(),
                    Some(Call::Dealloc {
                        ptr: block.ptr,
                        layout
                    }),
                    "forwarded unchanged"
                );
                counted(span, event(0, 1, 0, 0, layout.size()), paused, "dealloc");
            }
            4 => {
                if guards.len() < MAX_GUARDS {
                    guards.push(measure::pause());
                }
            }
            5 => {
                let i = usize::from(b.u8());
                if !guards.is_empty() {
                    // Any guard, not only the last: guards nest by count, not by order.
                    drop(guards.remove(i % guards.len()));
                }
            }
            6 => recorder.fail_next.set(true),
            7 => {
                let what = b.u8() % 3;
                let n = size(&mut b, budget.min(4096));
                if reads == MAX_READS {
                    continue;
                }
                reads += 1;
                match (what, installed) {
                    (0, false) => refused("thread_stats", paused, measure::thread_stats),
                    (1, false) => refused("total_stats", paused, measure::total_stats),
                    (0 | 1, true) => {
                        let (mine, all) = (measure::thread_stats(), measure::total_stats());
                        assert_eq!(measure::thread_stats(), mine, "reading counted a call");
                        // Every call this thread had counted is in the totals too.
                        let behind = [
                            all.allocs < mine.allocs,
                            all.deallocs < mine.deallocs,
                            all.reallocs < mine.reallocs,
                            all.bytes_allocated < mine.bytes_allocated,
                            all.bytes_deallocated < mine.bytes_deallocated,
                        ];
                        assert!(!behind.contains(&true), "totals {all} behind thread {mine}");
                    }
                    _ => {
                        // An alloc inside `count`; the block is kept if the closure ran.
                        if live.len() == MAX_LIVE {
                            continue;
                        }
                        let layout = Layout::from_size_align(n, 8).unwrap();
                        let made = Cell::new(std::ptr::null_mut());
                        // SAFETY: `layout` has a non-zero size.
                        let alloc = || made.set(unsafe { a.alloc(layout) });
                        if installed && !paused {
                            let ((), stats) = measure::count(alloc);
                            let want = match made.get().is_null() {
                                true => AllocStats::default(),
                                false => event(1, 0, 0, n, 0),
                            };
                            assert_eq!(stats, want, "count around one alloc: {stats}");
                        } else {
                            refused("count", paused, || measure::count(alloc));
                        }
                        let ptr = made.get();
                        match recorder.take() {
                            None => assert!(ptr.is_null()),
                            Some(call) => assert_eq!(
                                call,
                                Call::Alloc {
                                    layout,
                                    zeroed: false,
                                    ptr
                                },
                                "forwarded unchanged"
                            ),
                        }
                        if !ptr.is_null() {
                            assert_eq!(ptr as usize % 8, 0, "misaligned");
                            let seed = next_id as u8 ^ 0x5a;
                            next_id += 1;
                            // SAFETY: a live block of `n` bytes.
                            unsafe { fill(ptr, 0, n, seed) };
                            budget = budget.saturating_sub(n);
                            live.push(Block { ptr, layout, seed });
                        }
                    }
                }
            }
            _ => {
                let arg = b.u8();
                let layout = Layout::from_size_align(size(&mut b, 4096), align(&mut b)).unwrap();
                if threads == MAX_THREADS {
                    continue;
                }
                threads += 1;
                let pause_there = arg & 1 != 0;
                std::thread::spawn(move || {
                    assert!(!measure::is_paused(), "a pause reached another thread");
                    let guard = pause_there.then(measure::pause);
                    assert_eq!(measure::is_paused(), pause_there);
                    let there = CountingAlloc::new();
                    let before = snapshot(installed);
                    // SAFETY: a non-zero size; freed with the same layout.
                    unsafe {
                        let p = there.alloc(layout);
                        assert!(!p.is_null());
                        assert_eq!(p as usize % layout.align(), 0, "misaligned {layout:?}");
                        there.dealloc(p, layout);
                    }
                    let span = snapshot(installed) - before;
                    if installed {
                        let n = layout.size();
                        let want = match pause_there {
                            true => AllocStats::default(),
                            false => event(1, 1, 0, n, n),
                        };
                        assert_eq!(span, want, "the helper thread's own counts");
                    }
                    drop(guard);
                    assert!(!measure::is_paused());
                })
                .join()
                .unwrap();
            }
        }
        assert_eq!(
            measure::is_paused(),
            !guards.is_empty(),
            "is_paused vs guards"
        );
        assert_eq!(
            measure::installed(),
            installed,
            "a direct call installed it"
        );
        assert_eq!(recorder.live_blocks.get(), live.len(), "live blocks");
        let bytes: usize = live.iter().map(|b| b.layout.size()).sum();
        assert_eq!(recorder.live_bytes.get(), bytes, "live bytes");
    }
    drop(guards);
    assert!(!measure::is_paused(), "a guard outlived its drop");
    recorder.fail_next.set(false);
    for block in live.drain(..) {
        // SAFETY: a live block of this allocator with this layout, all filled.
        unsafe {
            check(
                block.ptr,
                block.layout.size(),
                block.seed,
                "the final dealloc",
            );
            a.dealloc(block.ptr, block.layout);
        }
        let (ptr, layout) = (block.ptr, block.layout);
        assert_eq!(recorder.take(), Some(Call::Dealloc { ptr, layout }));
    }
    assert_eq!(recorder.live_blocks.get(), 0, "a block leaked");
    assert_eq!(recorder.live_bytes.get(), 0, "bytes leaked");
}
