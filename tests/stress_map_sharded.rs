//! Bounded multi-thread stress of `thrifty::map::ShardedMap` in the shapes user code has:
//! counters bumped from every thread while another walks and filters the map, keys handed from
//! producer threads to consumer threads, short-lived threads, thousands of small maps, and
//! threads extending one map at once.
//! Each checks that nothing is lost or counted twice; none measures time.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::Barrier;
use std::time::{Duration, Instant};
use thrifty::map::{Compute, ShardedMap};

#[test]
fn counters_from_every_thread_lose_nothing_while_a_walker_runs() {
    const THREADS: u64 = 4;
    const ROUNDS: u64 = if cfg!(miri) { 200 } else { 20_000 };
    /// The sum of every value once the writers are done: three adds a round.
    const ALL: u64 = THREADS * ROUNDS * 3;
    let map: ShardedMap<u64, u64> = ShardedMap::with_shards(4);
    let done = Barrier::new(THREADS as usize + 1);
    let writers_done = AtomicBool::new(false);
    // Walks that saw some of the writes and not all: the walker ran while they did.
    let partial_walks = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (map, done, partial_walks) = (&map, &done, &partial_walks);
            s.spawn(move || {
                for i in 0..ROUNDS {
                    // Halfway, wait for the walker to have seen the map mid-write, so the second
                    // half of the writes runs while it walks, however the threads are scheduled
                    // (bounded: a walker that never sees a partial total fails the test below).
                    if i == ROUNDS / 2 {
                        let began = Instant::now();
                        while partial_walks.load(SeqCst) == 0
                            && began.elapsed() < Duration::from_secs(60)
                        {
                            std::thread::yield_now();
                        }
                    }
                    // Shared hot keys and keys of one's own, through three different calls.
                    map.get_or_insert_with(i % 16, || 0, |n| *n += 1);
                    map.compute(1000 + t, |n| match n {
                        Some(n) => {
                            *n += 1;
                            Compute::Keep
                        }
                        None => Compute::Set(1),
                    });
                    if map.update(&(2000 + t), |n| *n += 1).is_none() {
                        map.insert(2000 + t, 1);
                    }
                }
                done.wait();
            });
        }
        // The walker: reads, walks and a retain that keeps everything, until the writers end
        // (and once more after).
        let walker = s.spawn(|| loop {
            let ended = writers_done.load(SeqCst);
            // Keys are only ever added: a walk sees each at most once, none invented.
            let mut seen = std::collections::HashSet::new();
            let mut total = 0;
            map.for_each(|k, v| {
                assert!(seen.insert(*k), "key {k} walked twice");
                total += v;
            });
            assert!(seen.len() <= 16 + 2 * THREADS as usize);
            assert!(total <= ALL, "walked {total} of {ALL} adds");
            if 0 < total && total < ALL {
                partial_walks.fetch_add(1, SeqCst);
            }
            map.retain(|_, _| true);
            assert!(map.len() <= 16 + 2 * THREADS as usize);
            if ended {
                break;
            }
        });
        done.wait();
        writers_done.store(true, SeqCst);
        walker.join().unwrap();
    });
    assert!(
        partial_walks.load(SeqCst) > 0,
        "no walk ran while the writers did"
    );
    let mut hot = 0;
    map.for_each(|k, v| {
        if *k < 16 {
            hot += v;
        } else {
            assert_eq!(*v, ROUNDS, "key {k}");
        }
    });
    assert_eq!(hot, THREADS * ROUNDS, "shared counts lost or doubled");
    assert_eq!(map.len(), 16 + 2 * THREADS as usize);
}

#[test]
fn keys_handed_between_threads_arrive_once() {
    const PRODUCERS: u64 = 2;
    const KEYS: u64 = if cfg!(miri) { 500 } else { 20_000 };
    let map: ShardedMap<u64, u64> = ShardedMap::with_capacity(1024);
    let (tx, rx) = mpsc::sync_channel::<u64>(64);
    let rx = std::sync::Mutex::new(rx);
    let taken: u64 = std::thread::scope(|s| {
        for p in 0..PRODUCERS {
            let (map, tx) = (&map, tx.clone());
            s.spawn(move || {
                for i in 0..KEYS {
                    let k = p * KEYS + i;
                    assert!(map.insert(k, k * 3).is_none(), "key {k} inserted twice");
                    tx.send(k).unwrap();
                }
            });
        }
        drop(tx);
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let (map, rx) = (&map, &rx);
                s.spawn(move || {
                    let mut sum = 0;
                    loop {
                        let Ok(k) = rx.lock().unwrap().recv() else {
                            return sum;
                        };
                        // The insert happened-before the send: the key must be there.
                        assert_eq!(map.remove(&k), Some(k * 3), "key {k}");
                        sum += 1;
                    }
                })
            })
            .collect();
        consumers.into_iter().map(|c| c.join().unwrap()).sum()
    });
    assert_eq!(taken, PRODUCERS * KEYS);
    assert!(map.is_empty(), "{} keys left behind", map.len());
}

#[test]
fn short_lived_threads_leave_no_state_behind() {
    let map: ShardedMap<u64, u64> = ShardedMap::with_shards(2);
    let rounds = if cfg!(miri) { 20 } else { 200u64 };
    for round in 0..rounds {
        std::thread::scope(|s| {
            s.spawn(|| {
                map.get_or_insert_with(round % 7, || 0, |n| *n += 1);
                // A thread that exits inside nothing: the next thread starts clean.
            });
        });
        // This thread was never inside the map: every call works.
        map.read(&(round % 7), |n| assert!(*n >= 1));
    }
    let mut total = 0;
    map.for_each(|_, n| total += n);
    assert_eq!(total, rounds);
}

#[test]
fn thousands_of_small_maps() {
    // A map per connection: 10,000 maps of 2 shards, each with a few keys, used from 2 threads.
    let maps: Vec<ShardedMap<u32, u32>> = (0..if cfg!(miri) { 200 } else { 10_000 })
        .map(|_| ShardedMap::with_shards(2))
        .collect();
    std::thread::scope(|s| {
        for t in 0..2u32 {
            let maps = &maps;
            s.spawn(move || {
                for (i, m) in maps.iter().enumerate() {
                    m.insert(t, i as u32);
                    m.get_or_insert_with(9, || 0, |n| *n += 1);
                }
            });
        }
    });
    for (i, m) in maps.iter().enumerate() {
        assert_eq!(m.len(), 3);
        assert_eq!(m.get_cloned(&0), Some(i as u32));
        assert_eq!(m.get_cloned(&9), Some(2));
    }
}

/// Four threads `extend` one map through `&map`, over key ranges that overlap by half, each
/// value naming its writer; then `into_iter` takes it apart: every key once, each holding the
/// value of one of the threads that wrote it.
#[test]
fn threads_extending_one_map_lose_nothing() {
    const THREADS: u64 = 4;
    const KEYS: u64 = if cfg!(miri) { 500 } else { 20_000 };
    let map: ShardedMap<u64, u64> = ShardedMap::with_shards(8);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let mut map = &map;
            s.spawn(move || {
                let start = t * KEYS / 2;
                map.extend((start..start + KEYS).map(|k| (k, t)));
            });
        }
    });
    let total = (THREADS + 1) * KEYS / 2;
    assert_eq!(map.len() as u64, total);
    let mut seen = vec![false; total as usize];
    let entries = map.into_iter();
    assert_eq!(entries.len() as u64, total);
    for (k, t) in entries {
        assert!(
            !std::mem::replace(&mut seen[k as usize], true),
            "key {k} twice"
        );
        let writers = (k / (KEYS / 2)).saturating_sub(1)..=(k / (KEYS / 2)).min(THREADS - 1);
        assert!(
            writers.contains(&t),
            "key {k} holds {t}, not one of its writers"
        );
    }
    assert!(seen.iter().all(|&s| s), "a key lost");
}
