//! What each piece of a compact `Counter`'s add costs in a registry, measured by taking the
//! pieces apart: an `AtomicU64` padded to 16 bytes (a compact counter's size), then with the
//! per-thread sample tick beside it; a compact counter's two words (total and state) with the
//! add alone, so the rows after it differ from it only in what they add; then with the tick,
//! with the state word read before the add, with both, with a process-wide table of hints read
//! instead of the state word, with the state word read after the add instead of before (two
//! designs that were measured and not adopted: see the CHANGELOG), and thrifty's `Counter`.
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
}

/// Adds `n` to `word` between the tick's read and its write, as the compact add does.
#[inline(always)]
fn ticked_add(word: &AtomicU64, n: u64) {
    let next = TICK.with(|t| t.get().wrapping_add(1 << 19));
    word.fetch_add(n, Relaxed);
    TICK.with(|t| t.set(next));
}

/// xorshift64 mapped onto `0..n`, as the shootout's registry table does.
#[inline(always)]
fn next(x: &mut u64, n: u64) -> usize {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    (((*x >> 32) * n) >> 32) as usize
}

const NAMES: [&str; 9] = [
    "AtomicU64 in 16 B",
    "  + tick",
    "two words: the add",
    "  + tick",
    "  + state read",
    "  + state read + tick",
    "  + hint read + tick",
    "  + tick, state read after",
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
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&mut ns[0]);
    println!(
        "{n} counters, {threads} thread(s), median of {} rounds",
        rounds - 1
    );
    for (name, v) in NAMES.iter().zip(&mut ns) {
        let m = median(v);
        println!("{name:28} {m:6.2} ns per add  {:.2}x", m / base);
    }
}
