//! `thrifty::map` used the way programs use it, one test per shape. `ShardedMap`: thousands of
//! small maps, 50 threads writing disjoint and overlapping keys, a walker running while writers
//! churn, shard counts at their edges, and memory given back after a peak. `CowMap`: many
//! `Reader`s held at once, `Reader`s kept per thread in thread-locals of threads that exit,
//! `Reader`s handed between threads, a `Reader` idle while writers go on, thousands of maps
//! (held, and read at random by the same threads while replaced in rounds), and 50 threads on a
//! couple of CPUs. Each checks what the docs promise (entries, old versions alive, hazard slots,
//! bytes), by counts and bytes, never by time.

#![cfg(not(loom))]

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use thrifty::map::{BuildError, Compute, CowMap, Reader, ShardedMap};
use thrifty::measure::{self, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

#[path = "common/scaled.rs"]
mod scaled;
use scaled::scaled;

/// A cache-padded block (a shard's slot, a hazard slot), where the docs give its size.
const PADDED: Option<usize> = if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
    Some(128)
} else {
    None
};

/// A value that counts its live copies: lost or duplicated values, and versions kept alive,
/// show in the count.
struct Tracked(Arc<AtomicUsize>, u64);

impl Tracked {
    fn new(live: &Arc<AtomicUsize>, v: u64) -> Self {
        live.fetch_add(1, SeqCst);
        Self(live.clone(), v)
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self::new(&self.0, self.1)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// (hazard slots for plain reads, slots `Reader`s hold), from the map's `Debug`.
fn slots<K, V, S>(map: &CowMap<K, V, S>) -> (usize, usize) {
    let text = format!("{map:?}");
    let field = |name: &str| -> usize {
        text.split(&format!("{name}: "))
            .nth(1)
            .and_then(|rest| rest.split([',', ' ', '}']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    (field("hazard_slots"), field("reader_slots"))
}

// ---------------------------------------------------------------------------------------------
// ShardedMap
// ---------------------------------------------------------------------------------------------

/// A map per connection: 5 000 maps of 2 shards. Each is one allocation of two padded shard
/// slots when made (128 bytes each on x86-64), a small table per shard once written, back to
/// the shard array alone after its entries are removed and `shrink_to_fit` runs, and nothing
/// once dropped. The default shard count is `64 × CPUs`, at most 1024, a power of two, one
/// padded slot each.
#[test]
fn thousands_of_small_sharded_maps_cost_their_shards_and_free_everything() {
    let n = scaled(5_000, 10);
    let (maps, made) = measure::count(|| {
        (0..n)
            .map(|_| ShardedMap::<u32, u32>::with_shards(2))
            .collect::<Vec<_>>()
    });
    let array = n * std::mem::size_of::<ShardedMap<u32, u32>>();
    assert_eq!(made.allocs, n as u64 + 1, "one block per map: {made}");
    if let Some(padded) = PADDED {
        assert_eq!(made.net_bytes() as usize, array + n * 2 * padded, "{made}");
    }
    let ((), written) = measure::count(|| {
        for (i, m) in maps.iter().enumerate() {
            for k in 0..3u32 {
                assert_eq!(m.insert(k, i as u32), None);
            }
            m.get_or_insert_with(0, || 0, |v| *v += 1);
        }
    });
    // Three (u32, u32) entries need at most two tables of 4 buckets (8-byte entries, 4 + 16
    // control bytes): under 128 bytes each.
    assert!(
        written.net_bytes() as usize <= n * 2 * 128,
        "{} bytes of tables per map of 3 entries",
        written.net_bytes() as usize / n
    );
    for (i, m) in maps.iter().enumerate() {
        assert_eq!(m.len(), 3);
        assert_eq!(m.get_cloned(&0), Some(i as u32 + 1));
    }
    let ((), shrunk) = measure::count(|| {
        for m in &maps {
            (0..3u32).for_each(|k| assert!(m.remove(&k).is_some()));
            m.shrink_to_fit();
        }
    });
    assert_eq!(
        shrunk.net_bytes(),
        -written.net_bytes(),
        "shrink_to_fit of emptied maps kept table memory"
    );
    let ((), dropped) = measure::count(|| drop(maps));
    assert_eq!(
        made.net_bytes() + written.net_bytes() + shrunk.net_bytes() + dropped.net_bytes(),
        0,
        "bytes outlived {n} maps"
    );

    let (default, made) = measure::count(ShardedMap::<u64, u64>::new);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(
        default.shard_count(),
        (64 * cpus).min(1024).next_power_of_two()
    );
    if let Some(padded) = PADDED {
        assert_eq!(
            made.net_bytes() as usize,
            default.shard_count() * padded,
            "{made}"
        );
    }
}

/// 50 threads (far more than the CPUs) write one map at once: each inserts its own 400 keys
/// (disjoint), bumps 16 shared counters (overlapping), and takes and releases references on 8
/// shared keys through `compute` (an entry removed at zero). Nothing is lost or duplicated:
/// every own key holds its writer's value, the counters sum to every bump, the reference
/// table ends empty, `len` is exact, and the live values are exactly the map's.
#[test]
fn fifty_threads_write_disjoint_and_overlapping_keys() {
    const THREADS: u64 = 50;
    let own = scaled(400, 4) as u64;
    let bumps = scaled(2_000, 10) as u64;
    let live = Arc::new(AtomicUsize::new(0));
    let map: ShardedMap<u64, Tracked> = ShardedMap::with_shards(8);
    let start = Barrier::new(THREADS as usize);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (map, live, start) = (&map, &live, &start);
            s.spawn(move || {
                start.wait();
                for i in 0..own {
                    assert!(map
                        .insert(t * 1_000_000 + i, Tracked::new(live, t))
                        .is_none());
                }
                for i in 0..bumps {
                    let counter = (1 << 40) + (t + i) % 16;
                    map.get_or_insert_with(counter, || Tracked::new(live, 0), |v| v.1 += 1);
                    let r = (2 << 40) + (t * 3 + i) % 8;
                    map.compute(r, |v| match v {
                        Some(v) => {
                            v.1 += 1;
                            Compute::Keep
                        }
                        None => Compute::Set(Tracked::new(live, 1)),
                    });
                    map.compute(r, |v| match v {
                        Some(v) if v.1 > 1 => {
                            v.1 -= 1;
                            Compute::Keep
                        }
                        Some(_) => Compute::Remove,
                        None => panic!("released a reference nobody took"),
                    });
                }
            });
        }
    });
    for t in 0..THREADS {
        for i in 0..own {
            assert_eq!(map.read(&(t * 1_000_000 + i), |v| v.1), Some(t));
        }
    }
    let total: u64 = (0..16)
        .map(|c| map.read(&((1 << 40) + c), |v| v.1).unwrap())
        .sum();
    assert_eq!(total, THREADS * bumps, "counter bumps lost");
    for r in 0..8 {
        assert!(!map.contains_key(&((2 << 40) + r)), "reference {r} left");
    }
    assert_eq!(map.len() as u64, THREADS * own + 16);
    assert_eq!(
        live.load(SeqCst),
        map.len(),
        "values leaked or dropped twice"
    );
    drop(map);
    assert_eq!(live.load(SeqCst), 0);
}

/// A walker runs `for_each` over and over while 4 writers churn their own keys (insert, update,
/// remove) and a fifth filters with `retain`. `for_each` is not a snapshot, but shard by shard
/// under each shard's lock: each of the 2 000 keys nobody touches is seen exactly once per walk
/// with its value, a churned key at most once, and `len` never drops below the untouched keys.
#[test]
fn a_walker_sees_untouched_keys_exactly_once_while_writers_churn() {
    let stable = scaled(2_000, 20) as u64;
    let churn = scaled(20_000, 40) as u64;
    let map: ShardedMap<u64, u64> = ShardedMap::with_shards(16);
    for k in 0..stable {
        map.insert(k, k * 3);
    }
    let done = AtomicBool::new(false);
    let walks = std::thread::scope(|s| {
        let (map, done) = (&map, &done);
        let writers: Vec<_> = (0..4u64)
            .map(|t| {
                s.spawn(move || {
                    for i in 0..churn {
                        let k = (1 << 32) + t * 1_000 + i % 500;
                        match i % 3 {
                            0 => drop(map.insert(k, i)),
                            1 => drop(map.update(&k, |v| *v += 1)),
                            _ => drop(map.remove(&k)),
                        }
                    }
                })
            })
            .collect();
        let filter = s.spawn(move || {
            let mut n = 0;
            while !done.load(SeqCst) {
                map.retain(|k, v| *k < stable || *v % 2 == 0);
                n += 1;
            }
            n
        });
        let walker = s.spawn(move || {
            let mut walks = 0;
            let mut seen = vec![0u8; stable as usize];
            let mut churned = HashMap::new();
            while !done.load(SeqCst) || walks == 0 {
                seen.iter_mut().for_each(|c| *c = 0);
                churned.clear();
                map.for_each(|k, v| {
                    if *k < stable {
                        assert_eq!(*v, k * 3, "untouched key {k} changed");
                        seen[*k as usize] += 1;
                    } else {
                        *churned.entry(*k).or_insert(0u32) += 1;
                    }
                });
                assert!(
                    seen.iter().all(|&c| c == 1),
                    "an untouched key missed or doubled"
                );
                assert!(
                    churned.values().all(|&c| c == 1),
                    "a churned key seen twice"
                );
                assert!(map.len() as u64 >= stable, "len below the untouched keys");
                walks += 1;
            }
            walks
        });
        writers.into_iter().for_each(|w| w.join().unwrap());
        done.store(true, SeqCst);
        filter.join().unwrap();
        walker.join().unwrap()
    });
    assert!(walks >= 1);
    let mut n = 0;
    map.for_each(|_, _| n += 1);
    assert_eq!(n, map.len(), "len disagrees with a quiet walk");
}

/// Shard counts at their edges: 0 and above 65 536 (up to `usize::MAX`) are typed errors (and
/// `build` panics with their message), an odd count rounds up, 1 shard serves 50 threads,
/// 65 536 shards cost one padded slot each; a capacity no allocator can serve is an error, not
/// an abort.
#[test]
fn shard_counts_and_capacities_at_their_edges() {
    type M = ShardedMap<u64, u64>;
    assert_eq!(
        M::builder().shards(0).try_build().unwrap_err(),
        BuildError::ZeroShards
    );
    for n in [65_537, 1 << 40, usize::MAX] {
        assert_eq!(
            M::builder().shards(n).try_build().unwrap_err(),
            BuildError::TooManyShards(n)
        );
    }
    let panic = std::panic::catch_unwind(|| M::with_shards(0)).expect_err("shards(0)");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("shards(0)"), "{message}");
    for shards in [1, 8] {
        // 2^60 entries fit a layout and reach the allocator, which refuses them (Miri stops
        // there instead: it checks only the two whose size overflows).
        for n in [usize::MAX, usize::MAX / 2, 1 << 60] {
            if cfg!(miri) && n == 1 << 60 {
                continue;
            }
            assert_eq!(
                M::builder()
                    .shards(shards)
                    .capacity(n)
                    .try_build()
                    .unwrap_err(),
                BuildError::Capacity(n),
                "{shards} shards, capacity {n}"
            );
        }
    }
    assert_eq!(M::with_shards(3).shard_count(), 4);
    if !cfg!(miri) {
        let (wide, made) = measure::count(|| M::with_shards(65_536));
        assert_eq!(wide.shard_count(), 65_536);
        if let Some(padded) = PADDED {
            assert_eq!(made.net_bytes() as usize, 65_536 * padded);
        }
        wide.insert(1, 1);
        assert_eq!(wide.len(), 1);
    }
    // One shard, 50 threads: one lock for all, nothing lost.
    let one = M::with_shards(1);
    let per = scaled(500, 5) as u64;
    std::thread::scope(|s| {
        for t in 0..50u64 {
            let one = &one;
            s.spawn(move || {
                for i in 0..per {
                    one.insert(t * per + i, t);
                    one.get_or_insert_with(u64::MAX, || 0, |n| *n += 1);
                }
            });
        }
    });
    assert_eq!(one.len() as u64, 50 * per + 1);
    assert_eq!(one.get_cloned(&u64::MAX), Some(50 * per));
}

/// A map that peaked at 100 000 entries and is then used for a few: `clear` keeps the tables
/// (re-filling allocates nothing), `shrink_to_fit` gives them back down to the shard array and
/// a small table per shard still in use, and it runs safely while other threads write (no
/// entry lost): two writers, started before the `retain` and the shrink and going on until
/// both are done, remove and put back their own keys all along, and end with every key in.
#[test]
fn after_a_peak_clear_keeps_and_shrink_to_fit_gives_memory_back() {
    let peak = scaled(100_000, 200) as u64;
    let (map, made) = measure::count(|| ShardedMap::<u64, u64>::with_shards(16));
    let ((), filled) =
        measure::count(|| (0..peak).for_each(|k| assert!(map.insert(k, k).is_none())));
    assert!(filled.net_bytes() as u64 >= peak * 16, "{filled}");
    let ((), cleared) = measure::count(|| map.clear());
    assert!(map.is_empty());
    assert_eq!(
        cleared.calls() + cleared.deallocs,
        0,
        "clear freed or made: {cleared}"
    );
    let ((), refilled) =
        measure::count(|| (0..peak).for_each(|k| assert!(map.insert(k, k).is_none())));
    assert_eq!(
        refilled.calls(),
        0,
        "refilling a cleared map allocated: {refilled}"
    );
    // Down to a few keys, shrunk while 2 threads keep writing their own keys.
    let own = scaled(100, 10) as u64;
    let (started, shrunk) = (Barrier::new(3), AtomicBool::new(false));
    let writes = AtomicUsize::new(0);
    let during = std::thread::scope(|s| {
        for t in 0..2u64 {
            let (map, started, shrunk, writes) = (&map, &started, &shrunk, &writes);
            s.spawn(move || {
                let key = |i: u64| (1 << 40) + t * own + i % own;
                started.wait();
                // Until the shrink is done, then one more pass, so every key ends inserted.
                let (mut i, mut until) = (0, u64::MAX);
                while i < until {
                    if i % 3 == 2 {
                        map.remove(&key(i));
                    }
                    map.insert(key(i), i);
                    writes.fetch_add(1, SeqCst);
                    i += 1;
                    if until == u64::MAX && shrunk.load(SeqCst) {
                        until = i + own;
                    }
                }
            });
        }
        started.wait();
        map.retain(|k, _| *k >= 1 << 40 || *k < 8);
        // Shrunk while a writer is seen writing (whether a write lands inside it is up to the
        // scheduler: printed, not asserted).
        let (before, since) = (writes.load(SeqCst), std::time::Instant::now());
        while writes.load(SeqCst) < before + 2 {
            if since.elapsed().as_secs() >= 120 {
                shrunk.store(true, SeqCst); // lets a writer that still runs finish
                panic!("the writers stopped writing");
            }
            std::thread::yield_now();
        }
        let before = writes.load(SeqCst);
        map.shrink_to_fit();
        let during = writes.load(SeqCst) - before;
        shrunk.store(true, SeqCst);
        during
    });
    eprintln!("{during} writes while shrink_to_fit ran");
    assert_eq!(
        map.len() as u64,
        8 + 2 * own,
        "entries lost around shrink_to_fit"
    );
    for k in 0..8 {
        assert_eq!(map.get_cloned(&k), Some(k));
    }
    for k in 0..2 * own {
        assert!(map.get_cloned(&((1 << 40) + k)).is_some(), "key {k} lost");
    }
    // What the map holds now is what its drop frees.
    let ((), dropped) = measure::count(|| drop(map));
    let table_bound = 16 * (32 * 17 + 16);
    assert!(
        -dropped.net_bytes() <= made.net_bytes() + table_bound as i64,
        "{} bytes freed by dropping a map of 208 entries shrunk to fit (at most {} for the \
         shard array and 16 tables of 32 buckets)",
        -dropped.net_bytes(),
        made.net_bytes() + table_bound as i64
    );
}

// ---------------------------------------------------------------------------------------------
// CowMap
// ---------------------------------------------------------------------------------------------

/// 1 000 `Reader`s held at once (one per connection, the shape the docs warn against but must
/// still bound): making them adds one padded slot each and nothing else; an old version stays
/// alive only while a reader holds it (at most one per reader), each freed when the last
/// reader on it drops, with no `trim`; and `Reader`s made again reuse the slots.
#[test]
fn many_readers_held_at_once_each_pin_at_most_one_version() {
    let n = scaled(1_000, 8);
    let live = Arc::new(AtomicUsize::new(0));
    let map = CowMap::from_iter((0..8u64).map(|k| (k, Tracked::new(&live, k))));
    let (mut readers, made) = measure::count(|| (0..n).map(|_| map.reader()).collect::<Vec<_>>());
    assert_eq!(made.allocs, n as u64 + 1, "a slot per Reader: {made}");
    if let Some(padded) = PADDED {
        assert_eq!(
            made.net_bytes() as usize,
            n * (padded + std::mem::size_of::<Reader<u64, Tracked>>()),
            "{made}"
        );
    }
    assert_eq!(slots(&map).1, n);
    for r in &mut readers {
        assert_eq!(r.read(&3, |v| v.1), Some(3));
    }
    for i in 0..10 {
        map.insert(100 + i, Tracked::new(&live, i));
    }
    // Every reader holds version 0; the nine in between are freed.
    assert_eq!(map.retired_versions(), 1);
    assert_eq!(live.load(SeqCst), 8 + 18, "versions 0 and 10 alone alive");
    // Half the readers move on to version 10; the next write keeps it for them.
    for r in &mut readers[..n / 2] {
        assert_eq!(r.len(), 18);
    }
    map.insert(200, Tracked::new(&live, 0));
    assert_eq!(map.retired_versions(), 2);
    assert_eq!(live.load(SeqCst), 8 + 18 + 19);
    // The readers still on version 0 go: it is freed by their drops.
    readers.truncate(n / 2);
    assert_eq!(map.retired_versions(), 1, "version 0 outlived its readers");
    assert_eq!(live.load(SeqCst), 18 + 19);
    readers.clear();
    assert_eq!(map.retired_versions(), 0, "version 10 outlived its readers");
    assert_eq!(live.load(SeqCst), 19);
    // Made again: the slots are reused, nothing allocated but the Vec.
    let (readers, again) = measure::count(|| (0..n).map(|_| map.reader()).collect::<Vec<_>>());
    assert_eq!(
        again.allocs, 1,
        "Readers made again allocated slots: {again}"
    );
    assert_eq!(slots(&map).1, n);
    drop(readers);
    drop(map);
    assert_eq!(live.load(SeqCst), 0);
}

static TLS_MAP: std::sync::LazyLock<CowMap<u64, u64>> =
    std::sync::LazyLock::new(|| CowMap::from_iter((0..16u64).map(|k| (k, 0))));

thread_local! {
    /// The docs' pattern: one `Reader` per thread, kept for the thread's life.
    static TLS_READER: RefCell<Option<Reader<u64, u64>>> = const { RefCell::new(None) };
}

/// Waves of 25 threads each keep a `Reader` in a thread-local (the docs' "one per thread"),
/// read while a writer writes between their reads, and exit: the thread-local's destructor
/// drops the `Reader`, which frees the version it held. After each wave, with no `trim`, no old
/// version is left, and the map holds no more reader slots than threads were alive at once.
#[test]
fn per_thread_readers_in_thread_locals_of_exiting_threads_leave_nothing() {
    const WAVE: usize = 25;
    let waves = scaled(8, 2);
    for wave in 0..waves as u64 {
        let read = Barrier::new(WAVE + 1);
        let written = Barrier::new(WAVE + 1);
        std::thread::scope(|s| {
            let threads: Vec<_> = (0..WAVE)
                .map(|_| {
                    let (read, written) = (&read, &written);
                    s.spawn(move || {
                        TLS_READER.with(|r| {
                            let mut r = r.borrow_mut();
                            let reader = r.get_or_insert_with(|| TLS_MAP.reader());
                            assert!(reader.get_cloned(&0).unwrap() >= wave);
                        });
                        read.wait();
                        written.wait();
                        TLS_READER.with(|r| {
                            let mut r = r.borrow_mut();
                            let reader = r.as_mut().unwrap();
                            assert_eq!(reader.get_cloned(&0), Some(wave + 1));
                        });
                        // Exits holding the reader: the thread-local's destructor drops it.
                    })
                })
                .collect();
            read.wait();
            TLS_MAP.insert(0, wave + 1);
            TLS_MAP.insert(1, wave + 1);
            written.wait();
            threads.into_iter().for_each(|t| t.join().unwrap());
        });
        assert_eq!(
            TLS_MAP.retired_versions(),
            0,
            "wave {wave}: a version outlived the exited threads' readers"
        );
        let (reads, readers) = slots(&TLS_MAP);
        assert!(
            readers <= WAVE && reads <= WAVE + 1,
            "wave {wave}: {readers} reader slots, {reads} read slots"
        );
    }
}

/// Four `Reader`s shared by eight worker threads: a worker takes one, reads, and puts it back
/// for whichever worker comes next, while a writer publishes whole generations (every key at
/// once, in one `update`). Each read sees a whole generation, never older than the last this
/// reader saw, whatever thread it moved from; the map keeps at most one old version per reader,
/// and none once they drop.
#[test]
fn readers_handed_between_threads_stay_consistent_and_bounded() {
    const KEYS: u64 = 16;
    let gens = scaled(2_000, 20) as u64;
    let map = CowMap::from_iter((0..KEYS).map(|k| (k, 0u64)));
    let pool = Mutex::new((0..4).map(|_| (map.reader(), 0u64)).collect::<Vec<_>>());
    let done = AtomicBool::new(false);
    let most = std::thread::scope(|s| {
        let (map, pool, done) = (&map, &pool, &done);
        for _ in 0..8 {
            s.spawn(move || {
                while !done.load(SeqCst) {
                    let taken = pool.lock().unwrap().pop();
                    let Some((mut reader, last)) = taken else {
                        std::thread::yield_now();
                        continue;
                    };
                    let m = reader.map();
                    let gen = m[&0];
                    assert!((0..KEYS).all(|k| m[&k] == gen), "a torn generation");
                    assert!(gen >= last, "a reader went back from {last} to {gen}");
                    pool.lock().unwrap().push((reader, gen));
                }
            });
        }
        let mut most = 0;
        for g in 1..=gens {
            map.update(|m| m.values_mut().for_each(|v| *v = g));
            most = most.max(map.retired_versions());
        }
        done.store(true, SeqCst);
        most
    });
    assert!(most <= 4, "{most} old versions with 4 readers");
    drop(pool);
    assert_eq!(map.retired_versions(), 0, "a version outlived every reader");
}

/// A `Reader` read once and then left idle while a writer makes 1 000 writes: it pins one old
/// version, no more (the count of live values says which), and frees it when it drops. One
/// that lets go of its version before idling pins none, and from the second write on the
/// writes build in the spare the map keeps for it: a map of plain data allocates nothing.
#[test]
fn an_idle_reader_pins_one_version_and_frees_it_when_dropped() {
    let writes = scaled(1_000, 10) as u64;
    let live = Arc::new(AtomicUsize::new(0));
    let map = CowMap::from_iter((0..64u64).map(|k| (k, Tracked::new(&live, k))));
    let mut idle = map.reader();
    assert_eq!(idle.len(), 64);
    for i in 0..writes {
        map.insert(i % 64, Tracked::new(&live, i));
        assert_eq!(map.retired_versions(), 1, "write {i}");
    }
    assert_eq!(
        live.load(SeqCst),
        2 * 64,
        "the current version and the idle reader's"
    );
    // Read again: it moves to the current version; the old one waits for the next write.
    assert_eq!(idle.read(&0, |v| v.1), map.read(&0, |v| v.1));
    assert!(map.retired_versions() <= 1);
    map.insert(0, Tracked::new(&live, 0));
    assert!(map.retired_versions() <= 1);
    drop(idle);
    assert_eq!(
        map.retired_versions(),
        0,
        "the idle reader's version outlived it"
    );
    assert_eq!(live.load(SeqCst), 64);

    let plain = CowMap::from_iter((0..1_000u64).map(|k| (k, k)));
    let mut reader = plain.reader();
    assert_eq!(reader.get_cloned(&7), Some(7));
    reader.let_go();
    plain.insert(0, 1);
    let ((), span) = measure::count(|| {
        for i in 0..writes {
            plain.insert(i % 1_000, i);
            assert!(plain.retired_versions() <= 1);
        }
    });
    assert_eq!(
        span.calls(),
        0,
        "writes while a reader idles let go allocated: {span}"
    );
    assert_eq!(reader.get_cloned(&((writes - 1) % 1_000)), Some(writes - 1));
}

/// 2 000 maps (a map per tenant), each with a `Reader`, a `Snapshot` taken and dropped, and
/// two writes: each keeps at most the one old version its reader holds, one reader slot and
/// one read slot, and everything is freed once maps and readers are dropped (readers last, as
/// a `Reader` may outlive its map).
#[test]
fn thousands_of_cow_maps_each_bounded_and_freed() {
    let n = scaled(2_000, 10);
    let live = Arc::new(AtomicUsize::new(0));
    let ((maps, readers), made) = measure::count(|| {
        let maps: Vec<_> = (0..n as u64)
            .map(|i| CowMap::from_iter((0..4).map(|k| (k, Tracked::new(&live, i)))))
            .collect();
        let mut readers: Vec<_> = maps.iter().map(CowMap::reader).collect();
        for (i, (m, r)) in maps.iter().zip(&mut readers).enumerate() {
            assert_eq!(r.read(&0, |v| v.1), Some(i as u64));
            drop(m.snapshot());
            m.insert(10, Tracked::new(&live, 0));
            m.insert(11, Tracked::new(&live, 0));
        }
        (maps, readers)
    });
    for m in &maps {
        assert_eq!(m.retired_versions(), 1);
        assert_eq!(slots(m), (1, 1));
    }
    assert_eq!(live.load(SeqCst), n * (4 + 6));
    let ((), freed) = measure::count(|| {
        drop(maps);
        // A `Reader` outlives its map and reads its last version: each reader keeps the
        // version it holds and the current one, nothing else.
        assert_eq!(
            live.load(SeqCst),
            n * (4 + 6),
            "a map's drop freed a reachable version"
        );
        drop(readers);
    });
    assert_eq!(live.load(SeqCst), 0);
    assert_eq!(
        made.net_bytes() + freed.net_bytes(),
        0,
        "bytes outlived {n} maps and their readers"
    );
}

/// 50 threads on a couple of CPUs: 5 writers each raise their own key from 1 to N while 45
/// readers (a `Reader` each, with plain reads and snapshots besides) check that no key ever goes
/// back and every snapshot agrees with itself. At the end every key holds N, no old version is
/// left once the readers are gone (no `trim`), and the map holds no more slots than threads.
#[test]
fn fifty_threads_on_few_cpus_read_and_write_consistently() {
    const WRITERS: u64 = 5;
    const READERS: usize = 45;
    let n = scaled(2_000, 10) as u64;
    let live = Arc::new(AtomicUsize::new(0));
    let map = CowMap::from_iter((0..WRITERS).map(|k| (k, Tracked::new(&live, 0))));
    let done = AtomicBool::new(false);
    let start = Barrier::new(READERS + WRITERS as usize);
    std::thread::scope(|s| {
        let (map, done, start, live) = (&map, &done, &start, &live);
        let readers: Vec<_> = (0..READERS)
            .map(|t| {
                s.spawn(move || {
                    let mut reader = map.reader();
                    let mut last = [0u64; WRITERS as usize];
                    let mut version = 0;
                    start.wait();
                    let mut i = 0;
                    while !done.load(SeqCst) {
                        let v = reader.version();
                        assert!(v >= version, "the reader's version went back");
                        version = v;
                        for (k, seen) in last.iter_mut().enumerate() {
                            let now = reader.read(&(k as u64), |v| v.1).unwrap();
                            assert!(now >= *seen, "key {k} went back");
                            *seen = now;
                        }
                        if (t + i) % 16 == 0 {
                            let plain = map.read(&((i % WRITERS as usize) as u64), |v| v.1);
                            assert!(plain.is_some());
                            let snap = map.snapshot();
                            assert_eq!(snap.len(), WRITERS as usize);
                            assert!(
                                snap.version() >= version,
                                "a snapshot older than the reader"
                            );
                        }
                        i += 1;
                        if i % 64 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|k| {
                s.spawn(move || {
                    start.wait();
                    for v in 1..=n {
                        map.insert(k, Tracked::new(live, v));
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        done.store(true, SeqCst);
        readers.into_iter().for_each(|r| r.join().unwrap());
    });
    for k in 0..WRITERS {
        assert_eq!(map.read(&k, |v| v.1), Some(n));
    }
    assert_eq!(
        map.retired_versions(),
        0,
        "an old version outlived the readers"
    );
    assert_eq!(live.load(SeqCst), WRITERS as usize);
    let (reads, readers) = slots(&map);
    assert!(
        readers <= READERS,
        "{readers} reader slots for {READERS} readers"
    );
    assert!(
        reads <= READERS + 1,
        "{reads} read slots for {READERS} reading threads"
    );
}

/// Plain reads, as a server's handlers make them: each of 8 threads reads one hot map again and
/// again (its thread's last slot serves it) and, every fourth read, one of three other maps in
/// turn (its last slot names another map, so it walks), while a writer per map publishes rising
/// values. Every read sees a whole version (a thread never sees a key's value go back), each
/// map's read slots stay at most the reading threads (reads at once), each map keeps at most
/// one old version (the spare, until `trim`), and every value is freed at the end.
#[test]
fn threads_reading_several_maps_by_turns_see_whole_versions_and_bounded_slots() {
    const READERS: usize = 8;
    const MAPS: usize = 4; // map 0 is the hot one
    let n = scaled(3_000, 10) as u64;
    let live = Arc::new(AtomicUsize::new(0));
    let maps: Vec<_> = (0..MAPS)
        .map(|_| CowMap::from_iter((0..4u64).map(|k| (k, Tracked::new(&live, 0)))))
        .collect();
    let done = AtomicBool::new(false);
    let start = Barrier::new(READERS + MAPS);
    std::thread::scope(|s| {
        let (maps, done, start, live) = (&maps, &done, &start, &live);
        let readers: Vec<_> = (0..READERS)
            .map(|t| {
                s.spawn(move || {
                    let mut last = [[0u64; 4]; MAPS];
                    start.wait();
                    let mut i = t;
                    while !done.load(SeqCst) {
                        let m = if i % 4 == 3 {
                            1 + i / 4 % (MAPS - 1)
                        } else {
                            0
                        };
                        let k = i % 4;
                        let now = maps[m]
                            .read(&(k as u64), |v| v.1)
                            .expect("every key is there");
                        assert!(now >= last[m][k], "map {m} key {k} went back");
                        last[m][k] = now;
                        i += 1;
                        if i % 64 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let writers: Vec<_> = maps
            .iter()
            .map(|map| {
                s.spawn(move || {
                    start.wait();
                    for v in 1..=n {
                        map.insert(v % 4, Tracked::new(live, v));
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        done.store(true, SeqCst);
        readers.into_iter().for_each(|r| r.join().unwrap());
    });
    for map in &maps {
        let (reads, readers) = slots(map);
        // A read adds a slot when its walk finds every slot busy, which reads that end and start
        // again behind it can make it find with fewer at once; Miri, which switches threads
        // between any two steps, makes that far likelier than native runs do.
        let bound = if cfg!(miri) { 2 * READERS } else { READERS };
        assert!(
            reads <= bound,
            "{reads} read slots for {READERS} reading threads"
        );
        assert_eq!(readers, 0);
        // `CowMap`'s Memory: one old version per read in progress at the last write (a read
        // descheduled across two writes holds one older than the spare), besides the spare it
        // kept; `trim` frees them.
        assert!(
            map.retired_versions() <= READERS + 1,
            "an old version outlived the reads"
        );
        map.trim();
        assert_eq!(map.retired_versions(), 0);
    }
    assert_eq!(live.load(SeqCst), MAPS * 4);
    drop(maps);
    assert_eq!(live.load(SeqCst), 0);
}

/// A registry of small `CowMap`s (a config per tenant) read at random by the same threads for
/// their whole life, while the maps are replaced in rounds: each round drops every map and makes
/// new ones, which the allocator may place where the dropped ones were. A thread's read-slot hints
/// then name maps that are gone, and far more maps than its hint table holds share its entries;
/// a read must follow a hint only into the map that made it. In every round each thread reads
/// hundreds of maps while a writer raises values in them: no value goes back, each map holds at
/// most as many read slots as threads read it at once (the readers), old versions stay within
/// the documented bound, and every value is freed once the maps are dropped.
#[test]
fn threads_reading_thousands_of_maps_replaced_in_rounds_follow_no_stale_hint() {
    const READERS: usize = 4;
    let (maps_per_round, rounds, reads) = (scaled(1_000, 12), scaled(4, 2), scaled(20_000, 40));
    let live = Arc::new(AtomicUsize::new(0));
    // The round's maps, handed to the long-lived readers; `None` tells them to exit.
    type Round = Option<Arc<Vec<CowMap<u64, Tracked>>>>;
    let round: Mutex<Round> = Mutex::new(None);
    let (start, end) = (Barrier::new(READERS + 1), Barrier::new(READERS + 1));
    let written = AtomicBool::new(false);
    // What went wrong, from any thread: recorded, not asserted, so that every thread still
    // meets the barriers and a failure fails the test instead of hanging it.
    let problems = Mutex::new(Vec::<String>::new());
    let problem = |p: String| problems.lock().unwrap().push(p);
    std::thread::scope(|s| {
        let (round, start, end, written, problem) = (&round, &start, &end, &written, &problem);
        for t in 0..READERS {
            s.spawn(move || loop {
                start.wait();
                let Some(maps) = round.lock().unwrap().clone() else {
                    return;
                };
                let mut last = vec![[0u64; 2]; maps.len()];
                let mut x = 0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1);
                // At least `reads` reads, and on until the round's writes are done.
                let read = catch_unwind(AssertUnwindSafe(|| {
                    for i in 0.. {
                        if i >= reads && written.load(SeqCst) {
                            return;
                        }
                        let m = next(&mut x) as usize % maps.len();
                        let k = (x >> 32) as usize % 2;
                        match maps[m].read(&(k as u64), |v| v.1) {
                            None => return problem(format!("map {m} lost key {k}")),
                            Some(now) if now < last[m][k] => {
                                return problem(format!("map {m} key {k} went back"))
                            }
                            Some(now) => last[m][k] = now,
                        }
                    }
                }));
                if read.is_err() {
                    problem(format!("reader {t} panicked"));
                }
                drop(maps);
                end.wait();
            });
        }
        let live = &live;
        for r in 0..rounds {
            let maps: Arc<Vec<_>> = Arc::new(
                (0..maps_per_round)
                    .map(|_| CowMap::from_iter((0..2u64).map(|k| (k, Tracked::new(live, 0)))))
                    .collect(),
            );
            *round.lock().unwrap() = Some(maps.clone());
            written.store(false, SeqCst);
            start.wait();
            // The writer: every map raised a few times, in an order of its own.
            let mut x = 0x2545_f491_4f6c_dd1d ^ (r as u64 + 1);
            for v in 1..=4 * maps_per_round as u64 {
                let m = next(&mut x) as usize % maps_per_round;
                maps[m].insert(v % 2, Tracked::new(live, v));
            }
            written.store(true, SeqCst);
            end.wait();
            *round.lock().unwrap() = None;
            for (i, map) in maps.iter().enumerate() {
                let (read_slots, reader_slots) = slots(map);
                let bound = if cfg!(miri) { 2 * READERS } else { READERS };
                if read_slots > bound || reader_slots != 0 {
                    problem(format!(
                        "round {r} map {i}: {read_slots} read slots, {reader_slots} reader \
                         slots, for {READERS} reading threads"
                    ));
                }
                // `CowMap`'s Memory: one old version per read in progress at the last write,
                // besides the spare it kept.
                let retired = map.retired_versions();
                if retired > READERS + 1 {
                    problem(format!("round {r} map {i}: {retired} old versions kept"));
                }
            }
            match Arc::into_inner(maps) {
                Some(maps) => drop(maps),
                None => problem(format!("round {r}: a reader kept the round's maps")),
            }
            let alive = live.load(SeqCst);
            if alive != 0 {
                problem(format!("round {r}: {alive} values outlived their maps"));
            }
        }
        start.wait(); // `round` is `None`: the readers exit.
    });
    let problems = problems.into_inner().unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// xorshift64, for the order of a test's steps.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// A server's `Reader`s and `Snapshot`s in every order it can use them, on one thread: readers
/// made, read through, left idle, let go, refreshed, cloned and dropped; snapshots taken and
/// dropped; writes of every kind (`insert`, `remove`, `update`, `store`, `clear`) and `trim`.
/// After each step the old versions alive stay within the documented bound (one per live
/// `Reader` and `Snapshot`: nothing is in progress), and the live values never exceed what the
/// alive versions can hold; once every handle is gone and the map trimmed, only the current
/// version's values are alive.
#[test]
fn readers_and_snapshots_in_any_order_stay_within_one_version_each() {
    let steps = scaled(20_000, 300);
    for seed in 1..=scaled(8, 1) as u64 {
        let live = Arc::new(AtomicUsize::new(0));
        let map = CowMap::from_iter((0..8u64).map(|k| (k, Tracked::new(&live, k))));
        let mut readers: Vec<Reader<u64, Tracked>> = Vec::new();
        let mut snaps = Vec::new();
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for step in 0..steps {
            let r = next(&mut x);
            let pick = |n: usize| (r >> 16) as usize % n.max(1);
            // Bits of their own (the low ones choose the step, and would fix the key).
            let (key, other, size) = ((r >> 32) % 24, (r >> 8) % 24, (r >> 40) % 12);
            match r % 16 {
                0 | 1 if readers.len() < 12 => readers.push(map.reader()),
                2 if !readers.is_empty() => drop(readers.swap_remove(pick(readers.len()))),
                3 | 4 if !readers.is_empty() => {
                    let i = pick(readers.len());
                    assert_eq!(readers[i].len(), map.len());
                }
                5 if !readers.is_empty() => {
                    let i = pick(readers.len());
                    readers[i].let_go();
                }
                6 if !readers.is_empty() => {
                    let i = pick(readers.len());
                    readers[i].refresh();
                    let clone = readers[i].clone();
                    readers.push(clone);
                }
                7 if snaps.len() < 6 => snaps.push(map.snapshot()),
                8 if !snaps.is_empty() => drop(snaps.swap_remove(pick(snaps.len()))),
                9 | 10 => drop(map.insert(key, Tracked::new(&live, r))),
                11 => drop(map.remove(&key)),
                12 => map.update(|m| {
                    m.insert(key, Tracked::new(&live, r));
                    m.remove(&other);
                }),
                13 if r % 64 == 13 => map.clear(),
                14 => {
                    let mut fresh = HashMap::with_hasher(thrifty::map::FastRandomState::default());
                    for k in 0..size {
                        fresh.insert(k, Tracked::new(&live, k));
                    }
                    map.store(fresh);
                }
                15 => map.trim(),
                _ => {}
            }
            let bound = readers.len() + snaps.len();
            let retired = map.retired_versions();
            assert!(
                retired <= bound,
                "seed {seed} step {step}: {retired} old versions for {} readers and {} snapshots",
                readers.len(),
                snaps.len()
            );
            assert!(
                live.load(SeqCst) <= (retired + 1) * 24,
                "seed {seed} step {step}: {} live values in {} versions",
                live.load(SeqCst),
                retired + 1
            );
        }
        drop(snaps);
        drop(readers);
        assert_eq!(
            map.retired_versions(),
            0,
            "seed {seed}: left after the last handle"
        );
        map.trim();
        assert_eq!(live.load(SeqCst), map.len(), "seed {seed}");
        drop(map);
        assert_eq!(live.load(SeqCst), 0);
    }
}
