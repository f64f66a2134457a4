//! What each piece of a compact `Counter`'s add costs in a registry, measured by taking the
//! pieces apart: an `AtomicU64` padded to 16 bytes (a compact counter's size), then with the
//! per-thread sample tick beside it; a compact counter's two words (total and state) with the
//! add alone, so the rows after it differ from it only in what they add; then with the tick,
//! with the state word read before the add, with both, with a process-wide table of hints read
//! instead of the state word, with the state word read after the add instead of before, with
//! the line asked for in the exclusive state (`prefetchw`) before the state read, and with no
//! state read at all: the striped flag in the total's word, tested in the add's result, alone
//! or behind a check of a per-thread memo of striped counters (eight keys, one key, or the memo
//! choosing the add's target). These are designs measured and not adopted (see JOURNAL.md). Last,
//! thrifty's `Counter`.
//!
//! `cargo run --release --example counter_parts -- [counters] [threads] [rounds]` (defaults:
//! 100 000, 2, 20). Each round runs every candidate once, in a rotating order, with fresh
//! threads; the table gives the median time per add per thread and its ratio to the padded
//! `AtomicU64`. All candidates live in one process, so they share its memory placement: compare
//! rows within a run, and runs with each other only by their ratios.

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use std::time::Instant;
use thrifty::counter::Counter;

#[path = "common/summary.rs"]
mod summary;
use summary::summary;

/// An `AtomicU64` that takes as much room as a compact `Counter`.
#[repr(align(16))]
struct Padded(AtomicU64);

/// A compact counter's two words, with none of its logic: the total and the state word.
#[repr(align(16))]
struct TwoWords {
    base: AtomicU64,
    state: AtomicUsize,
}

/// The hint table: one byte per 16-byte address bucket, 0 where no counter ever striped.
static HINTS: [std::sync::atomic::AtomicU8; 1024] =
    [const { std::sync::atomic::AtomicU8::new(0) }; 1024];

thread_local! {
    /// The sample tick: a thread-local word read before the add and written after it.
    static TICK: Cell<u32> = const { Cell::new(0) };
    /// A memo keyed by counter address, as a thread's record of the striped counters it owns
    /// cells in would be: the tick beside eight keys.
    static MEMO: (Cell<u32>, [Cell<usize>; 8]) =
        const { (Cell::new(0), [const { Cell::new(0) }; 8]) };
}

/// Adds `n` to `word` between the tick's read and its write, as the compact add does.
#[inline(always)]
fn ticked_add(word: &AtomicU64, n: u64) {
    let next = TICK.with(|t| t.get().wrapping_add(1 << 19));
    word.fetch_add(n, Relaxed);
    TICK.with(|t| t.set(next));
}

/// Adds 1 to `word` and tests the striped flag (the top bit) in the result, as an add that
/// keeps the flag in the total's word would.
#[inline(always)]
fn flag_add(word: &AtomicU64) {
    let old = word.fetch_add(black_box(1), Relaxed);
    if old >> 63 != 0 {
        black_box(word);
    }
}

/// The memo rows' add: to the cell the memo names if it `matched` (never here), else to `w`'s
/// total with the flag tested, and the tick stored (`next`) after it.
#[inline(always)]
fn memo_then_flag_add(w: &TwoWords, matched: bool, next: u32) {
    if matched {
        black_box(w);
    } else {
        flag_add(&w.base);
        MEMO.with(|m| m.0.set(next));
    }
}

/// xorshift64 mapped onto `0..n`, as the shootout's registry table does.
#[inline(always)]
fn next(x: &mut u64, n: u64) -> usize {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    (((*x >> 32) * n) >> 32) as usize
}

/// Asks for `p`'s cache line in the exclusive state, as a write would (x86 `prefetchw`; a
/// no-op elsewhere), so that a load and then a locked add on the line take one trip.
#[inline(always)]
fn prefetch_write<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing the program sees, never faults, and
    // `p` is a valid reference anyway.
    unsafe {
        std::arch::asm!(
            "prefetchw [{0}]",
            in(reg) p as *const T,
            options(nostack, preserves_flags, readonly)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

const NAMES: [&str; 14] = [
    "AtomicU64 in 16 B",
    "  + tick",
    "two words: the add",
    "  + tick",
    "  + state read",
    "  + state read + tick",
    "  + hint read + tick",
    "  + tick, state read after",
    "  + prefetchw, state read + tick",
    "  + memo key check + tick, flag in result",
    "  + tick, flag in result",
    "  + one-key check + tick, flag in result",
    "  + branchless memo target + tick, flag",
    "thrifty Counter",
];

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let n = args.next().unwrap_or(100_000);
    let threads = args.next().unwrap_or(2);
    let rounds = args.next().unwrap_or(20).max(2);
    let adds: u64 = 2_000_000;
    let padded: Vec<Padded> = (0..n).map(|_| Padded(AtomicU64::new(0))).collect();
    let words: Vec<TwoWords> = (0..n)
        .map(|_| TwoWords {
            base: AtomicU64::new(0),
            state: AtomicUsize::new(0),
        })
        .collect();
    let counters: Vec<Counter> = (0..n).map(|_| Counter::new()).collect();
    let run = |which: usize, t: usize| {
        let mut x = (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut pick = || next(&mut x, n as u64);
        for _ in 0..adds {
            let i = pick();
            match which {
                0 => drop(padded[i].0.fetch_add(black_box(1), Relaxed)),
                1 => ticked_add(&padded[i].0, black_box(1)),
                2 => drop(words[i].base.fetch_add(black_box(1), Relaxed)),
                3 => ticked_add(&words[i].base, black_box(1)),
                4 => {
                    let w = &words[i];
                    // The counter's state word, read with Acquire as `Counter::add` reads it;
                    // never nonzero here, so the add always goes to `base`.
                    if w.state.load(Acquire) == 0 {
                        w.base.fetch_add(black_box(1), Relaxed);
                    }
                }
                5 => {
                    let w = &words[i];
                    if w.state.load(Acquire) == 0 {
                        ticked_add(&w.base, black_box(1));
                    }
                }
                6 => {
                    let w = &words[i];
                    let hint = HINTS[(w as *const TwoWords as usize >> 4) & 1023].load(Relaxed);
                    if hint == 0 || w.state.load(Acquire) == 0 {
                        ticked_add(&w.base, black_box(1));
                    }
                }
                7 => {
                    // The add first, then the state word (the line is ours by then), as an add
                    // that learns afterwards whether the counter had striped would make.
                    let w = &words[i];
                    let next = TICK.with(|t| t.get().wrapping_add(1 << 19));
                    w.base.fetch_add(black_box(1), Relaxed);
                    if w.state.load(Acquire) != 0 {
                        black_box(w);
                    }
                    TICK.with(|t| t.set(next));
                }
                8 => {
                    // The state read, with the line asked for in the exclusive state first.
                    let w = &words[i];
                    prefetch_write(w);
                    if w.state.load(Acquire) == 0 {
                        ticked_add(&w.base, black_box(1));
                    }
                }
                9 => {
                    // No state read: a thread's memo of eight counter addresses, checked before
                    // the add (a striped counter it owns a cell in would be there), and the
                    // striped flag in the total's word, tested in the add's result. No key is
                    // ever stored here, so every add goes to `base`.
                    let w = &words[i];
                    let addr = w as *const TwoWords as usize;
                    let (next, key) = MEMO.with(|m| {
                        (
                            m.0.get().wrapping_add(1 << 19),
                            m.1[((addr >> 4) ^ (addr >> 7)) & 7].get(),
                        )
                    });
                    memo_then_flag_add(w, key == addr, next);
                }
                10 => {
                    // The flag in the result alone, with no memo: a hot striped counter's adds
                    // would all go to `base` first.
                    let w = &words[i];
                    let next = TICK.with(|t| t.get().wrapping_add(1 << 19));
                    flag_add(&w.base);
                    TICK.with(|t| t.set(next));
                }
                11 => {
                    // As 9 with a memo of one key at a fixed place.
                    let w = &words[i];
                    let addr = w as *const TwoWords as usize;
                    let (next, key) = MEMO.with(|m| {
                        // SAFETY: the cell's own pointer, read on its thread. Volatile: a load
                        // on every add, as the memo's writers on the slow path would force.
                        let key = unsafe { m.1[0].as_ptr().read_volatile() };
                        (m.0.get().wrapping_add(1 << 19), key)
                    });
                    memo_then_flag_add(w, key == addr, next);
                }
                12 => {
                    // As 9, with the memo choosing the add's target instead of a branch (a
                    // select the add's address waits for).
                    let w = &words[i];
                    let addr = w as *const TwoWords as usize;
                    let slot = ((addr >> 4) ^ (addr >> 7)) & 7;
                    let (next, key, cell) = MEMO.with(|m| {
                        (
                            m.0.get().wrapping_add(1 << 19),
                            m.1[slot].get(),
                            m.1[slot ^ 1].get(),
                        )
                    });
                    let target = if key == addr {
                        cell
                    } else {
                        &w.base as *const AtomicU64 as usize
                    };
                    // SAFETY: no key is ever stored, so the memo never matches and `target` is
                    // `w.base`; the select is what is measured.
                    flag_add(unsafe { &*(target as *const AtomicU64) });
                    MEMO.with(|m| m.0.set(next));
                }
                _ => counters[i].add(black_box(1)),
            }
        }
    };
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); NAMES.len()];
    for round in 0..rounds {
        for k in 0..NAMES.len() {
            let which = (round + k) % NAMES.len();
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..threads {
                    let run = &run;
                    s.spawn(move || run(which, t));
                }
            });
            // Round 0 warms every candidate's memory up.
            if round > 0 {
                ns[which].push(start.elapsed().as_nanos() as f64 / adds as f64);
            }
        }
    }
    let median = |v: &mut Vec<f64>| summary(v).0;
    let base = median(&mut ns[0]);
    println!(
        "{n} counters, {threads} thread(s), median of {} rounds",
        rounds - 1
    );
    for (name, v) in NAMES.iter().zip(&mut ns) {
        let m = median(v);
        println!("{name:42} {m:6.2} ns per add  {:.2}x", m / base);
    }
}
