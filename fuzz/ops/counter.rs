//! Op-sequence interpreter for `thrifty::counter`, shared by the cargo-fuzz target and
//! `tests/fuzz_corpus.rs`. Bytes are parsed by hand: byte 0 picks the cell count, then each op is
//! one code byte and its arguments. A `Counter` (also through a `LocalCounter` handle), a `Gauge`
//! and a `PerCpu` run beside plain integers; every read is checked against them, including after
//! bursts on two threads. A second `Counter` takes bursts on four threads (striping, doubling)
//! and `compact`. A registry of 24 counters (three to each entry of a thread's striped-hint
//! table) takes adds, bursts that stripe some of them, and being dropped and made again while
//! threads still remember the old ones.

use thrifty::counter::{Counter, Gauge, PerCpu};

#[path = "bytes.rs"]
mod bytes;
use bytes::Bytes;

/// Runs the ops encoded in `data`; panics if any read disagrees with the model.
pub fn run(data: &[u8]) {
    let mut b = Bytes(data);
    let cells = 1usize << (b.u8() % 5);
    let counter = Counter::with_cells(cells);
    // A second counter that the ops grow (bursts on four threads) and compact (`&mut`).
    let mut grown = Counter::with_cells(cells);
    let mut grown_count = 0u64;
    let gauge = Gauge::with_cells(cells);
    let per_cpu = PerCpu::with_slots(cells, || 0u64);
    let (mut count, mut level, mut slots_total) = (0u64, 0i64, 0u64);
    // Made before any expansion and kept across takes, resets and bursts.
    let mut local = counter.local();
    let mut registry: Vec<Counter> = (0..REGISTRY).map(|_| Counter::new()).collect();
    let mut registry_counts = [0u64; REGISTRY];
    let mut ops = 0;
    while !b.0.is_empty() && ops < 256 {
        ops += 1;
        match b.u8() % 15 {
            0 => {
                let n = b.u64();
                counter.add(n);
                count = count.wrapping_add(n);
            }
            1 => {
                counter.incr();
                count = count.wrapping_add(1);
            }
            2 => {
                assert_eq!(counter.take(), count, "take");
                count = 0;
            }
            3 => {
                counter.reset();
                count = 0;
            }
            4 => assert_eq!(counter.sum(), count, "sum"),
            5 => {
                let n = b.u64() as i64;
                gauge.add(n);
                level = level.wrapping_add(n);
            }
            6 => {
                let n = b.u64() as i64;
                gauge.sub(n);
                level = level.wrapping_sub(n);
            }
            7 => {
                let v = b.u64() as i64;
                gauge.set(v);
                level = v;
            }
            8 => assert_eq!(gauge.value(), level, "value"),
            9 => {
                let n = u64::from(b.u8());
                per_cpu.with(|v| *v += n);
                slots_total += n;
                assert_eq!(per_cpu.fold(0, |a, v| a + v), slots_total, "fold");
            }
            10 => {
                let n = b.u64();
                local.add(n);
                count = count.wrapping_add(n);
            }
            12 => {
                // Four threads at once: contention that lasts stripes it, sharers double it.
                let reps = u64::from(b.u8()) * 64 + 1;
                let n = u64::from(b.u8());
                let grown = &grown;
                std::thread::scope(|s| {
                    for _ in 0..4 {
                        s.spawn(move || (0..reps).for_each(|_| grown.add(n)));
                    }
                });
                grown_count = grown_count.wrapping_add(4 * reps * n);
                assert_eq!(grown.sum(), grown_count, "grown sum");
                let cells = grown.cells();
                assert!(cells == 0 || (cells.is_power_of_two() && cells <= grown.max_cells()));
            }
            14 => {
                let (i, action) = (usize::from(b.u8()) % REGISTRY, b.u8() % 4);
                let n = u64::from(b.u8());
                match action {
                    0 => registry[i].add(n),
                    1 => {
                        // Two threads at once: enough of them stripe it.
                        let reps = u64::from(b.u8()) * 64 + 1;
                        let c = &registry[i];
                        std::thread::scope(|s| {
                            for _ in 0..2 {
                                s.spawn(move || (0..reps).for_each(|_| c.add(n)));
                            }
                        });
                        registry_counts[i] = registry_counts[i].wrapping_add(2 * reps * n);
                    }
                    2 => {
                        // Made again: this thread may still remember old addresses as striped.
                        registry = (0..REGISTRY).map(|_| Counter::new()).collect();
                        registry_counts = [0; REGISTRY];
                    }
                    _ => {
                        for (c, &want) in registry.iter().zip(&registry_counts) {
                            assert_eq!(c.sum(), want, "registry sum");
                        }
                    }
                }
                if action == 0 {
                    registry_counts[i] = registry_counts[i].wrapping_add(n);
                }
                assert_eq!(registry[i].sum(), registry_counts[i], "registry counter");
            }
            13 => {
                grown.compact();
                assert_eq!((grown.cells(), grown.heap_bytes()), (0, 0), "compacted");
                assert_eq!(grown.sum(), grown_count, "compact keeps the count");
            }
            _ => {
                // A burst on two threads: contention, striping, owned and shared cells.
                let reps = u64::from(b.u8() % 64) + 1;
                let n = u64::from(b.u8());
                let (counter, gauge, per_cpu) = (&counter, &gauge, &per_cpu);
                std::thread::scope(|s| {
                    for t in 0..2 {
                        s.spawn(move || {
                            // One thread adds through a handle, the other through the counter.
                            let mut local = (t == 1).then(|| counter.local());
                            for _ in 0..reps {
                                match local.as_mut() {
                                    Some(local) => local.add(n),
                                    None => counter.add(n),
                                }
                                gauge.sub(n as i64);
                                per_cpu.with(|v| *v += 1);
                            }
                        });
                    }
                });
                count = count.wrapping_add(2 * reps * n);
                level = level.wrapping_sub(2 * (reps * n) as i64);
                slots_total += 2 * reps;
            }
        }
    }
    assert_eq!(counter.sum(), count, "final sum");
    assert_eq!(grown.sum(), grown_count, "final grown sum");
    assert_eq!(gauge.value(), level, "final value");
    assert_eq!(per_cpu.fold(0, |a, v| a + v), slots_total, "final fold");
    for (c, &want) in registry.iter().zip(&registry_counts) {
        assert_eq!(c.sum(), want, "final registry sum");
    }
}

/// Counters in the registry: 16 bytes each, so three map to each of the 8 hint entries.
const REGISTRY: usize = 24;
