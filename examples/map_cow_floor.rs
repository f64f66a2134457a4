//! What a write costs a `CowMap` reader's tail, against the floors of any design that swaps a
//! pointer between tables: one reader thread times 64-read batches while a writer changes one
//! entry every 100 µs, and the table gives each candidate's batch percentiles with the writer
//! and without it, and the ratio of the two p99.9s (the map issue asked for at most 1.5x).
//!
//! The floors share thrifty's reader loop and hasher, and swap between two tables built once:
//! - *pointer swap*: the writer flips the pointer and changes nothing, and the reader only sees
//!   the new pointer (one line the writer wrote);
//! - *+ hazard slot*: the reader also moves a slot of its own to the new table, with a full
//!   fence, and the writer reads that slot after each flip (the reclamation a map needs to
//!   reuse or free the table a reader left);
//! - *+ the write's entries*: the writer also stores into the table it is about to publish the
//!   values of the two keys a double-buffered map writes there (this write's key and the
//!   previous write's, which the other table got last time), so the reader finds those two
//!   lines written by the other core. This is what a `CowMap` write that replays does;
//! - *+ every entry on 1 write in 300*: as the last, and one write in 300 also stores every
//!   entry, so the reader then finds the whole table written by the other core, as it does
//!   after a `CowMap` write that copied the map (one that found no spare, below).
//!
//! With the writer, the table also counts the reader's batches that took over 50 µs (it was
//! descheduled or interrupted), and the writes that allocated: a `CowMap` write allocates (and
//! copies the whole map) when it finds no spare, the version its readers left: the first write
//! (there is none yet), and a write that comes while the reader still holds an older version (as
//! when it was descheduled for a write's period or more).
//!
//! `cargo run --release --example map_cow_floor -- [entries] [rounds]` (defaults: 1 000, 3).
//! Each round runs every candidate with and without the writer, with fresh tables and threads.
//! Compare rows within a round: the figures move with the machine's load and with where the
//! tables land in memory.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};
use thrifty::map::{CowMap, FastRandomState, Reader};
use thrifty::measure::{self, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// Reads per timed batch, as in `benches/map_cow.rs`'s latency table.
const BATCH: u64 = 64;
/// How often the writer writes.
const EVERY: Duration = Duration::from_micros(100);
/// How long each row reads.
const RUN_FOR: Duration = Duration::from_millis(700);
/// The last floor rewrites every entry on one write in this many, to stand for the writes that
/// copy the whole map in the `CowMap` row (its last column counts them; compare the two).
const REWRITE_EVERY: u64 = 300;
/// A batch slower than this (ns) was not just reads: the reader was descheduled or interrupted.
const STALL: u32 = 50_000;

/// The floors' tables: atomic values, so the writer may store into a table a late reader still
/// reads.
type Table = HashMap<u64, AtomicU64, FastRandomState>;

/// The key the reader looks up on its `i`-th read, spread over `entries`.
fn key(i: u64, entries: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) % entries
}

/// A value on a cache-line block of its own.
#[repr(align(128))]
struct Line<T>(T);

#[derive(Clone, Copy, PartialEq)]
enum Candidate {
    CowMap,
    PointerSwap,
    HazardSlot,
    WrittenEntries,
    Rewrites,
}

impl Candidate {
    const ALL: [Candidate; 5] = [
        Candidate::CowMap,
        Candidate::PointerSwap,
        Candidate::HazardSlot,
        Candidate::WrittenEntries,
        Candidate::Rewrites,
    ];

    fn name(self) -> &'static str {
        match self {
            Candidate::CowMap => "thrifty CowMap Reader",
            Candidate::PointerSwap => "floor: pointer swap",
            Candidate::HazardSlot => "floor: + hazard slot",
            Candidate::WrittenEntries => "floor: + hazard slot + the write's 2 entries",
            Candidate::Rewrites => "floor: the same + every entry on 1 write in 300",
        }
    }
}

/// Two tables with the same contents, one of them current. On the heap, as a `Version` is, so
/// `current` may point at them while the `Floor` moves.
struct Floor {
    tables: Box<[Table; 2]>,
    current: Line<AtomicPtr<Table>>,
    slot: Line<AtomicPtr<Table>>,
    kind: Candidate,
}

impl Floor {
    fn new(entries: u64, kind: Candidate) -> Self {
        let table = || {
            (0..entries)
                .map(|k| (k, AtomicU64::new(k)))
                .collect::<Table>()
        };
        let floor = Floor {
            tables: Box::new([table(), table()]),
            current: Line(AtomicPtr::default()),
            slot: Line(AtomicPtr::default()),
            kind,
        };
        let first = std::ptr::from_ref(&floor.tables[0]).cast_mut();
        floor.current.0.store(first, Relaxed);
        floor
    }

    /// The writer's step: `i` is the write's number, `flips` how many flips it made.
    fn write(&self, i: u64, entries: u64, flips: &mut u64) {
        *flips += 1;
        let next = &self.tables[(*flips % 2) as usize];
        if matches!(self.kind, Candidate::WrittenEntries | Candidate::Rewrites) {
            for k in [i % entries, (i + entries - 1) % entries] {
                next[&k].store(i, Relaxed);
            }
        }
        if self.kind == Candidate::Rewrites && i % REWRITE_EVERY == 0 {
            // As a write that copies the whole map leaves it: every line written by this core.
            for value in next.values() {
                value.store(value.load(Relaxed), Relaxed);
            }
        }
        self.current
            .0
            .store(std::ptr::from_ref(next).cast_mut(), Release);
        if self.kind != Candidate::PointerSwap {
            fence(SeqCst);
            black_box(self.slot.0.load(Acquire));
        }
    }
}

/// 64 reads through a `Reader`; returns their sum.
#[inline(never)]
fn cow_batch(reader: &mut Reader<u64, u64>, i: &mut u64, entries: u64) -> u64 {
    let mut sum = 0u64;
    for _ in 0..BATCH {
        let value = reader.get_cloned(&black_box(key(*i, entries)));
        sum = sum.wrapping_add(value.unwrap_or(0));
        *i += 1;
    }
    sum
}

/// 64 reads of a floor, each checking the current pointer as a `Reader` does; `held` is the
/// table the reader last took.
#[inline(never)]
fn floor_batch(floor: &Floor, held: &mut *mut Table, i: &mut u64, entries: u64) -> u64 {
    let mut sum = 0u64;
    for _ in 0..BATCH {
        let mut table = floor.current.0.load(Relaxed);
        if table != *held {
            if floor.kind != Candidate::PointerSwap {
                floor.slot.0.store(table, Release);
                fence(SeqCst);
            }
            table = floor.current.0.load(Acquire);
            *held = table;
        }
        // SAFETY: `current` points at one of `floor.tables`, boxed, which live as long as
        // `floor`, and `floor` outlives the batch.
        let value = unsafe { &*table }.get(&black_box(key(*i, entries)));
        sum = sum.wrapping_add(value.map_or(0, |v| v.load(Relaxed)));
        *i += 1;
    }
    sum
}

/// One row: the reader's batch times in ns a read, as (p50, p99, p99.9); its batches that took
/// over [`STALL`] ns (the reader was descheduled or interrupted); and the writes made and how
/// many of them allocated (a `CowMap` write that found no spare copies the whole map).
fn run(kind: Candidate, entries: u64, writer: bool) -> ([f64; 3], usize, (u64, u64)) {
    let cow = CowMap::from_iter((0..entries).map(|k| (k, k)));
    let floor = Floor::new(entries, kind);
    let stop = AtomicBool::new(false);
    let mut times: Vec<u32> = Vec::with_capacity(1 << 22);
    let writes = std::thread::scope(|s| {
        let writer = writer.then(|| {
            let (cow, floor, stop) = (&cow, &floor, &stop);
            s.spawn(move || {
                let (mut next, mut i, mut flips, mut allocating) = (Instant::now(), 0, 0, 0);
                while !stop.load(Relaxed) {
                    let ((), allocs) = measure::count(|| match kind {
                        Candidate::CowMap => drop(black_box(cow.insert(i % entries, i))),
                        _ => floor.write(i, entries, &mut flips),
                    });
                    allocating += u64::from(allocs.allocs > 0);
                    i += 1;
                    next += EVERY;
                    let now = Instant::now();
                    match next.checked_duration_since(now) {
                        Some(wait) => std::thread::sleep(wait),
                        None => next = now,
                    }
                }
                (i, allocating)
            })
        });
        let mut reader = cow.reader();
        let (mut held, mut i, mut sum) = (std::ptr::null_mut(), 0u64, 0u64);
        let start = Instant::now();
        while start.elapsed() < RUN_FOR {
            let t0 = Instant::now();
            sum = sum.wrapping_add(match kind {
                Candidate::CowMap => cow_batch(&mut reader, &mut i, entries),
                _ => floor_batch(&floor, &mut held, &mut i, entries),
            });
            times.push(u32::try_from(t0.elapsed().as_nanos()).unwrap_or(u32::MAX));
            if times.len() == times.capacity() {
                break; // a fast machine: no reallocation while the writer runs
            }
        }
        black_box(sum);
        stop.store(true, Relaxed);
        writer.map_or((0, 0), |w| w.join().unwrap())
    });
    times.sort_unstable();
    let at = |p: f64| {
        let i = ((times.len() as f64 * p) as usize).min(times.len() - 1);
        f64::from(times[i]) / BATCH as f64
    };
    let stalls = times.len() - times.partition_point(|&t| t <= STALL);
    ([at(0.5), at(0.99), at(0.999)], stalls, writes)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let entries: u64 = args
        .next()
        .map_or(1_000, |a| a.parse().expect("entries: a number"));
    let rounds: u32 = args
        .next()
        .map_or(3, |a| a.parse().expect("rounds: a number"));
    assert!(entries > 0, "entries: at least 1");
    println!("{entries} entries, 1 reader thread, a write every {EVERY:?} or none");
    println!(concat!(
        "| round | candidate | no writer: p50 | p99 | p99.9 ",
        "| writer: p50 | p99 | p99.9 | p99.9 ratio | batches over 50 µs | writes that allocated |"
    ));
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for round in 1..=rounds {
        for kind in Candidate::ALL {
            let ([a50, a99, a999], _, _) = run(kind, entries, false);
            let ([b50, b99, b999], stalls, (writes, allocating)) = run(kind, entries, true);
            let name = kind.name();
            let ratio = b999 / a999;
            print!("| {round} | {name} | {a50:.1} | {a99:.1} | {a999:.1} ");
            print!("| {b50:.1} | {b99:.1} | {b999:.1} | {ratio:.2}x ");
            println!("| {stalls} | {allocating} of {writes} |");
        }
    }
}
