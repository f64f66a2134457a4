//! `CowMap` in the shapes user code has: readers on threads that come and go, a reader handed
//! between threads, many snapshots held at once, thousands of maps, a reader stuck inside
//! a read while writers go on, and a configuration reloaded whole (`store`) while read. Bounded; checks counts and contents, never timings (except a
//! generous deadline that only a writer waiting for a reader would miss).

#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;
use thrifty::map::{CowMap, FastRandomState};

/// A value that counts the live copies of itself.
struct Tracked(Arc<AtomicUsize>);

impl Tracked {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, SeqCst);
        Self(live.clone())
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self::new(&self.0)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[test]
fn a_writer_never_waits_for_a_reader_stuck_in_a_read() {
    let map = Arc::new(CowMap::from_iter([(0u64, 0u64)]));
    let (entered, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let stuck = {
        let (map, entered, release) = (map.clone(), entered.clone(), release.clone());
        std::thread::spawn(move || {
            map.read(&0, |v| {
                entered.wait();
                release.wait(); // held inside the read until the writes are done
                *v
            })
        })
    };
    entered.wait();
    let (done, writes) = mpsc::channel();
    let writer = {
        let map = map.clone();
        std::thread::spawn(move || {
            for i in 1..=100 {
                map.insert(0, i);
            }
            done.send(()).unwrap();
        })
    };
    writes
        .recv_timeout(Duration::from_secs(30))
        .expect("the writer waited for a reader");
    writer.join().unwrap();
    assert_eq!(
        map.retired_versions(),
        1,
        "only the version the stuck read uses is kept"
    );
    release.wait();
    assert_eq!(
        stuck.join().unwrap(),
        Some(0),
        "the stuck read saw its own version"
    );
    map.trim();
    assert_eq!(map.retired_versions(), 0);
}

#[test]
fn readers_on_threads_that_come_and_go() {
    let live = Arc::new(AtomicUsize::new(0));
    let map = Arc::new(CowMap::from_iter(
        (0..64u64).map(|k| (k, Tracked::new(&live))),
    ));
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..200u64 {
                map.insert(i % 64, Tracked::new(&live));
            }
        });
        for round in 0..20 {
            let handles: Vec<_> = (0..3)
                .map(|t| {
                    let map = &map;
                    s.spawn(move || {
                        let mut reader = map.reader();
                        for k in 0..64 {
                            assert!(reader.contains_key(&k));
                            assert!(map.contains_key(&((k + round + t) % 64)));
                        }
                        // exits holding its version: the drop lets go of it
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        }
    });
    map.trim();
    assert_eq!(
        map.retired_versions(),
        0,
        "an exited reader left a version behind"
    );
    assert_eq!(
        live.load(SeqCst),
        64,
        "only the current version's values are alive"
    );
    let slots = format!("{map:?}");
    // At most: 3 readers, the writer's own reads (none) and this thread: slots stay few.
    let n: usize = slots
        .split("hazard_slots: ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(n <= 8, "{n} hazard slots for at most 6 reads at once");
    drop(map);
    assert_eq!(live.load(SeqCst), 0);
}

#[test]
fn a_reader_handed_between_threads_follows_the_map() {
    let map = Arc::new(CowMap::from_iter([("v", 0u64)]));
    let mut reader = map.reader();
    for i in 1..=10u64 {
        map.insert("v", i);
        reader = std::thread::spawn(move || {
            assert_eq!(reader.get_cloned("v"), Some(i));
            reader
        })
        .join()
        .unwrap();
    }
    drop(map);
    assert_eq!(
        reader.get_cloned("v"),
        Some(10),
        "a reader outlives its map"
    );
}

/// Worker threads that each take a `Reader` in turn, read, let go of its version and hand it
/// on while they idle (the shape of a pool of workers waiting for work): every read sees the
/// latest write, the map keeps one old version however many hand-offs, and a worker that exits
/// holding the reader drops it, after which no old version is left.
#[test]
fn a_reader_that_lets_go_between_hand_offs_keeps_one_old_version() {
    let map = Arc::new(CowMap::from_iter([("v", 0u64)]));
    let mut reader = map.reader();
    for i in 1..=20u64 {
        map.insert("v", i);
        reader = std::thread::spawn(move || {
            assert_eq!(reader.get_cloned("v"), Some(i));
            reader.let_go();
            reader
        })
        .join()
        .unwrap();
        assert!(
            map.retired_versions() <= 1,
            "{} old versions",
            map.retired_versions()
        );
    }
    let m = map.clone();
    std::thread::spawn(move || {
        let _exits_holding = reader;
        m.insert("v", 21);
    })
    .join()
    .unwrap();
    assert_eq!(
        map.retired_versions(),
        0,
        "an old version outlived the last reader"
    );
    assert_eq!(map.get_cloned("v"), Some(21));
}

#[test]
fn many_snapshots_held_at_once_each_pin_one_version() {
    let live = Arc::new(AtomicUsize::new(0));
    let map = CowMap::from_iter([(0u8, Tracked::new(&live))]);
    let mut held = Vec::new();
    for i in 1..=10u8 {
        held.push(map.snapshot());
        map.insert(i, Tracked::new(&live));
    }
    assert_eq!(map.retired_versions(), 10);
    for (i, snap) in held.iter().enumerate() {
        assert_eq!(snap.len(), i + 1);
    }
    // Every held version shares nothing with the others: each holds its own copies.
    assert_eq!(live.load(SeqCst), (1..=11).sum::<usize>());
    held.truncate(5);
    assert_eq!(map.retired_versions(), 5);
    held.clear();
    assert_eq!(map.retired_versions(), 0);
    assert_eq!(live.load(SeqCst), 11);
}

#[test]
fn thousands_of_maps_free_everything() {
    let live = Arc::new(AtomicUsize::new(0));
    let maps: Vec<_> = (0..if cfg!(miri) { 100 } else { 2000 })
        .map(|i| CowMap::from_iter([(i, Tracked::new(&live))]))
        .collect();
    let readers: Vec<_> = maps.iter().map(CowMap::reader).collect();
    let snaps: Vec<_> = maps.iter().map(CowMap::snapshot).collect();
    for (i, map) in maps.iter().enumerate() {
        map.insert(i + 1, Tracked::new(&live));
    }
    assert!(maps.iter().all(|m| m.retired_versions() == 1));
    drop(maps);
    drop(snaps);
    assert!(
        live.load(SeqCst) > 0,
        "the readers still hold their versions"
    );
    drop(readers);
    assert_eq!(live.load(SeqCst), 0);
}

/// A `Reader` dropped while another thread's `remove` of an absent key holds the writers' lock:
/// the drop cannot take the lock and leaves a flag, and the early return of that `remove` must
/// see it (with real threads, where loom's few schedules rarely make `try_lock` fail).
#[test]
fn a_reader_dropped_while_a_remove_of_nothing_holds_the_lock_leaves_no_old_version() {
    let mut lost = 0;
    for _ in 0..if cfg!(miri) { 20 } else { 500 } {
        let map = std::sync::Arc::new(CowMap::from_iter([(1u64, 1u64)]));
        let r = map.reader();
        map.insert(2, 2); // version 0 retired, held by `r`
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (m, s) = (map.clone(), stop.clone());
        let t = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(m.remove(&99), None);
            }
        });
        std::thread::yield_now();
        drop(r);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        t.join().unwrap();
        if map.retired_versions() != 0 {
            lost += 1;
        }
    }
    assert_eq!(
        lost, 0,
        "{lost}/500 runs left an old version with no reader alive"
    );
}

/// Readers made, used and dropped on four threads while a writer writes: every old version is
/// freed by the time the last reader is gone, with no `trim` (each drop reclaims, or leaves the
/// writer a flag).
#[test]
fn readers_coming_and_going_leave_no_old_version_behind() {
    let map = CowMap::from_iter((0..64u64).map(|k| (k, k)));
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (map, done) = (&map, &done);
            s.spawn(move || {
                let mut i = t;
                while !done.load(SeqCst) {
                    let mut reader = map.reader();
                    for _ in 0..(i % 7) {
                        assert!(reader.read(&(i % 64), |v| *v).is_some());
                    }
                    if i % 5 == 0 {
                        let snap = reader.snapshot();
                        assert_eq!(snap.len(), 64);
                    }
                    i += 1;
                }
            });
        }
        for i in 0..if cfg!(miri) { 500 } else { 20_000u64 } {
            map.insert(i % 64, i);
        }
        done.store(true, SeqCst);
    });
    assert_eq!(
        map.retired_versions(),
        0,
        "an old version outlived every reader"
    );
}

/// The most old versions alive at once while 64 writer threads (many more than CPUs) each
/// insert 1 000 times into a map of plain data (no drop glue) and `readers` threads read
/// through a `Reader` each; checks that none is left once the readers are gone.
fn most_old_versions_with_many_writers(readers: u64) -> usize {
    let map = CowMap::from_iter((0..64u64).map(|k| (k, k)));
    let (done, most) = (
        std::sync::atomic::AtomicBool::new(false),
        AtomicUsize::new(0),
    );
    std::thread::scope(|s| {
        let (map, done, most) = (&map, &done, &most);
        for t in 0..readers {
            s.spawn(move || {
                let mut reader = map.reader();
                let mut i = t;
                while !done.load(SeqCst) {
                    assert!(reader.read(&(i % 64), |v| *v).is_some());
                    i += 1;
                }
            });
        }
        s.spawn(move || {
            while !done.load(SeqCst) {
                most.fetch_max(map.retired_versions(), SeqCst);
                std::thread::yield_now();
            }
        });
        let writers: Vec<_> = (0..if cfg!(miri) { 8 } else { 64u64 })
            .map(|t| {
                s.spawn(move || {
                    for i in 0..if cfg!(miri) { 50 } else { 1_000 } {
                        map.insert((t + i) % 64, i);
                    }
                })
            })
            .collect();
        // Every writer joined before `done`, even one that panicked: the readers stop either way.
        let joined: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        done.store(true, SeqCst);
        joined.into_iter().for_each(|w| w.unwrap());
    });
    assert_eq!(
        map.retired_versions(),
        0,
        "an old version outlived the readers"
    );
    most.into_inner()
}

/// A writer that the scheduler makes wait between unlocking and running on holds no old
/// version of plain data: those are freed under the lock. So with no reader the only old
/// version is the one the write in progress replaces, and with four `Reader`s there is one per
/// `Reader` besides. One test, the shapes in turn: run side by side, they leave each other's
/// writers fewer chances to wait, and the old code's excess shows less often.
#[test]
fn many_writers_on_few_cpus_keep_plain_data_within_the_readers_bound() {
    for readers in [0, 4] {
        let most = most_old_versions_with_many_writers(readers);
        assert!(
            most <= readers as usize + 1,
            "{most} old versions alive at once with {readers} readers"
        );
    }
}

/// A configuration reloaded whole (`store`) between single-key edits and `trim`s, while reader
/// threads read it through `Reader`s (some letting go between batches), plain reads and
/// snapshots: every version a reader sees is whole (each reload writes one generation into
/// every key, and an edit touches only key 0), a reader never goes back a generation, and at
/// the end only the current version's values are alive.
#[test]
fn reloads_by_store_race_readers_edits_and_trims() {
    const KEYS: u64 = 32;
    let live = Arc::new(AtomicUsize::new(0));
    // Values: (generation, a tracked payload); a reload sets every key to its generation.
    let reload = |generation: u64| {
        let mut next = std::collections::HashMap::with_hasher(FastRandomState::default());
        next.extend((0..KEYS).map(|k| (k, (generation, Tracked::new(&live)))));
        next
    };
    let map = CowMap::from_map(reload(0));
    let done = std::sync::atomic::AtomicBool::new(false);
    let reads = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..3 {
            let (map, done, reads) = (&map, &done, &reads);
            s.spawn(move || {
                let mut reader = map.reader();
                let mut last = 0;
                while !done.load(SeqCst) {
                    let seen = reader.map();
                    let generation = seen[&1].0;
                    assert!(generation >= last, "went back from {last} to {generation}");
                    last = generation;
                    for k in 1..KEYS {
                        assert_eq!(seen[&k].0, generation, "a torn reload at key {k}");
                    }
                    let snap = map.snapshot();
                    let g = snap[&2].0;
                    assert!((1..KEYS).all(|k| snap[&k].0 == g), "a torn snapshot");
                    assert!(map.read(&3, |v| v.0).is_some());
                    if t == 0 {
                        reader.let_go();
                    }
                    reads.fetch_add(1, SeqCst);
                }
            });
        }
        // At least 10 000 reloads, and on until the readers have read 300 times between them
        // (on 2 cores they may start late); bounded, so a stuck reader fails the assert below.
        let mut generation = 0u64;
        let (least, reads_wanted) = if cfg!(miri) { (100, 30) } else { (10_000, 300) };
        while generation < least || (reads.load(SeqCst) < reads_wanted && generation < 1_000_000) {
            generation += 1;
            map.store(reload(generation));
            map.insert(0, (u64::MAX, Tracked::new(&live))); // an edit: key 0 only
            if generation % 7 == 0 {
                map.remove(&0);
            }
            if generation % 11 == 0 {
                map.trim();
            }
        }
        done.store(true, SeqCst);
        assert!(reads.load(SeqCst) >= reads_wanted, "the readers hardly ran");
    });
    map.trim();
    assert_eq!(
        map.retired_versions(),
        0,
        "a reader's exit left a version behind"
    );
    assert_eq!(
        live.load(SeqCst),
        map.len(),
        "only the current version's values are alive"
    );
    drop(map);
    assert_eq!(live.load(SeqCst), 0);
}
