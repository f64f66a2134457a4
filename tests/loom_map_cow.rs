//! loom models of `thrifty::map::CowMap`: readers taking versions while a writer publishes and
//! reclaims. Each version carries a modelled cell that reads touch and the free writes (see
//! the module doc's "How it works"), so a read not ordered before its version's free fails
//! the model, as does a leaked or doubly freed version (loom's `Arc`).
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_map_cow -- loom`
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use std::alloc::{GlobalAlloc, Layout, System};
use thrifty::map::{CowMap, Reader};

#[path = "common/loom.rs"]
mod loom_model;

fn model(f: impl Fn() + Sync + Send + 'static) {
    loom_model::model(f);
}

/// An allocator that never reuses an address: frees are dropped on the floor.
///
/// loom replays schedules and requires every replay to branch the same way. The hazard
/// protocol compares version addresses, and with a reusing allocator a freed version's address
/// may or may not come back for a later version depending on what loom itself allocated in
/// earlier executions, so two replays of one schedule could compare differently (loom stops
/// with "Is the model fully deterministic?"). Never reusing an address makes every compare a
/// function of the schedule. The models here are small (a few thousand executions), so the
/// memory never returned stays in the tens of megabytes.
struct NoReuse;

// SAFETY: forwards allocation to `System`; never freeing is always allowed.
unsafe impl GlobalAlloc for NoReuse {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOC: NoReuse = NoReuse;

/// A map whose every batch writes the same number under "a" and "b": a read that finds them
/// different saw half a batch.
fn pair_map() -> Arc<CowMap<&'static str, u64>> {
    Arc::new(CowMap::from_iter([("a", 0), ("b", 0)]))
}

fn write_pair(map: &CowMap<&'static str, u64>, n: u64) {
    map.update(|m| {
        m.insert("a", n);
        m.insert("b", n);
    });
}

/// Plain reads (hazard, no count) and a snapshot, while the writer publishes twice: the
/// second publish retries whatever the first had to retire.
#[test]
fn loom_plain_reads_while_a_writer_publishes_and_reclaims() {
    model(|| {
        let map = pair_map();
        let m = map.clone();
        let reader = thread::spawn(move || {
            let a = m.read("a", |v| *v).unwrap();
            let snap = m.snapshot();
            assert_eq!(snap["a"], snap["b"], "torn batch");
            assert!(snap["a"] >= a, "went back from {a} to {}", snap["a"]);
            snap["a"]
        });
        write_pair(&map, 1);
        write_pair(&map, 2);
        let seen = reader.join().unwrap();
        assert!(seen <= 2);
        map.trim();
        assert_eq!(map.retired_versions(), 0, "a version outlived every reader");
    });
}

/// A `Reader` handle across two publishes: its fast path (a relaxed compare) and its slow path
/// (its hazard slot moved to the new version, letting go of the old one) race the writer's
/// reclaim.
#[test]
fn loom_reader_handle_never_goes_back_and_never_sees_half_a_batch() {
    model(|| {
        let map = pair_map();
        let mut handle = map.reader();
        let reader = thread::spawn(move || {
            let mut last = 0;
            for _ in 0..2 {
                let m = handle.map();
                let (a, b) = (m["a"], m["b"]);
                assert_eq!(a, b, "torn batch");
                assert!(a >= last, "went back from {last} to {a}");
                last = a;
            }
        });
        write_pair(&map, 1);
        write_pair(&map, 2);
        reader.join().unwrap();
        // A version a hazard held when it was replaced waits for the next write or trim.
        map.trim();
        assert_eq!(
            map.retired_versions(),
            0,
            "the reader's last version outlived it"
        );
    });
}

/// A snapshot taken on one thread while the map itself is dropped on another: the snapshot
/// keeps its version, and whichever side lets go last frees it.
#[test]
fn loom_snapshot_outlives_the_map() {
    model(|| {
        let map = pair_map();
        let m = map.clone();
        let reader = thread::spawn(move || {
            let snap = m.snapshot();
            drop(m);
            snap["a"] + snap["b"]
        });
        write_pair(&map, 1);
        drop(map);
        let sum = reader.join().unwrap();
        assert!(sum == 0 || sum == 2, "torn batch: {sum}");
    });
}

/// Two writers and a plain reader: writers serialise, versions number every batch once, and
/// the read holds its version while both writers try to retire it.
#[test]
fn loom_two_writers_and_a_reader() {
    model(|| {
        let map = pair_map();
        let (m1, m2) = (map.clone(), map.clone());
        let w = thread::spawn(move || write_pair(&m1, 1));
        let r = thread::spawn(move || m2.read("a", |a| *a).unwrap());
        write_pair(&map, 2);
        w.join().unwrap();
        assert!(r.join().unwrap() <= 2);
        assert_eq!(map.version(), 2);
        let snap = map.snapshot();
        assert_eq!(snap["a"], snap["b"]);
    });
}

/// Two plain readers race to claim hazard slots (both may push a new slot at once) while the
/// writer publishes: each read is whole, and the registry ends with at most two slots.
#[test]
fn loom_two_readers_race_for_slots_while_a_writer_publishes() {
    model(|| {
        let map = pair_map();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let m = map.clone();
                thread::spawn(move || {
                    let snap = m.snapshot();
                    assert_eq!(snap["a"], snap["b"], "torn batch");
                })
            })
            .collect();
        write_pair(&map, 1);
        for r in readers {
            r.join().unwrap();
        }
        map.trim();
        assert_eq!(map.retired_versions(), 0);
        assert!(
            format!("{map:?}").contains("hazard_slots: 1")
                || format!("{map:?}").contains("hazard_slots: 2")
        );
    });
}

/// Two `Reader` handles on one version let go of it as a writer publishes twice: once neither
/// slot holds it, the second write builds its copy in that memory (the spare, `Arc::get_mut`)
/// while the other handle may still be reading the version it holds. A write into memory a
/// reader still reads fails the model through the version's cell; a version dropped twice or
/// never, through loom's `Arc`.
#[test]
fn loom_a_write_builds_in_the_version_readers_let_go_of() {
    model(|| {
        let map = pair_map();
        let mut mine = map.reader();
        let mut theirs = mine.clone();
        let reader = thread::spawn(move || {
            let m = theirs.map();
            assert_eq!(m["a"], m["b"], "torn batch");
            m["a"]
        });
        write_pair(&map, 1);
        let m = mine.map();
        assert_eq!((m["a"], m["b"]), (1, 1));
        write_pair(&map, 2);
        let m = mine.map();
        assert_eq!((m["a"], m["b"]), (2, 2));
        assert!(reader.join().unwrap() <= 2);
        drop(mine);
        map.trim();
        assert_eq!(map.retired_versions(), 0, "a version outlived every reader");
    });
}

/// Plain reads and a snapshot (hazards) on another thread while this thread's reader moves on
/// from version to version and three writes build in the versions it left: a hazard taken on
/// a version just before it is replaced keeps it from being reused (the writer's retired list
/// holds a count on it).
#[test]
fn loom_hazard_reads_race_writes_that_reuse_versions() {
    model(|| {
        let map = pair_map();
        let mut mine = map.reader();
        let m = map.clone();
        let other = thread::spawn(move || {
            let a = m.read("a", |v| *v).unwrap();
            let snap = m.snapshot();
            assert_eq!(snap["a"], snap["b"], "torn batch");
            assert!(snap["a"] >= a, "went back from {a} to {}", snap["a"]);
            snap["a"]
        });
        for n in 1..=3 {
            write_pair(&map, n);
            mine.refresh();
        }
        assert!(other.join().unwrap() <= 3);
        drop(mine);
        map.trim();
        assert_eq!(map.retired_versions(), 0);
    });
}

/// A reader's refresh races a write: the write's scan of the hazard slots may run while the
/// reader's slot moves from version 0 to 1 (and on to 2). Each slot is read once per scan, so
/// the slot counts at one pointer: the write keeps at most one old version for this one
/// reader, whichever it holds. A reader that took version 2 before the write's scan left
/// version 1 for the next write to build in: the write keeps it (freeing it would make the
/// next write copy the whole map), as it keeps it when the scan comes first.
#[test]
fn loom_a_refresh_racing_a_write_keeps_one_old_version_per_reader() {
    model(|| {
        let map = pair_map();
        let mut mine = map.reader();
        write_pair(&map, 1); // `mine` holds version 0; version 1 is current
        let reader = thread::spawn(move || {
            mine.refresh();
            mine
        });
        write_pair(&map, 2);
        let mine = reader.join().unwrap();
        let (old, held) = (map.retired_versions(), format!("{mine:?}"));
        assert!(old <= 1, "{held}: {old} old versions for one reader");
        if held.contains("version: 1") {
            assert_eq!(old, 1, "{held}: the version it holds is alive");
        }
        if held.contains("version: 2") {
            // The one it held at the scan, or the spare it left if it moved before the scan.
            assert_eq!(
                old, 1,
                "{held}: the spare it left, or the version it held, is gone"
            );
        }
    });
}

/// A reader on another thread moves on with `move_on` (and so may leave the write a spare to
/// keep for it) and then drops while the map's second write runs: its drop, or the write's
/// unlock, frees that spare as well, so no old version outlives it.
fn a_reader_that_moves_on_then_drops_leaves_no_old_version(
    move_on: fn(&mut Reader<&'static str, u64>),
) {
    model(move || {
        let map = pair_map();
        let mut mine = map.reader();
        write_pair(&map, 1); // `mine` holds version 0; version 1 is current
        let reader = thread::spawn(move || {
            move_on(&mut mine);
            drop(mine);
        });
        write_pair(&map, 2);
        reader.join().unwrap();
        assert_no_old_version(&map);
    });
}

/// It takes the new version, perhaps before the write's scan (the write keeps the version it
/// left as the spare).
#[test]
fn loom_a_reader_that_left_the_spare_then_dropped_leaves_no_old_version() {
    a_reader_that_moves_on_then_drops_leaves_no_old_version(Reader::refresh);
}

/// It lets go of its version (a write then keeps a spare for it).
#[test]
fn loom_a_reader_that_let_go_and_dropped_leaves_no_old_version() {
    a_reader_that_moves_on_then_drops_leaves_no_old_version(Reader::let_go);
}

/// A plain read on another thread during a write: whichever version its hazard holds at the
/// write's scan, the write keeps at most one old version for it (the old one it read, or the
/// spare if it read the new one), and `trim` frees it once the read is done.
#[test]
fn loom_a_plain_read_during_a_write_keeps_at_most_one_old_version() {
    model(|| {
        let map = pair_map();
        let m = map.clone();
        let other = thread::spawn(move || m.read("a", |v| *v).unwrap());
        write_pair(&map, 1);
        assert!(
            map.retired_versions() <= 1,
            "{} old versions",
            map.retired_versions()
        );
        assert!(other.join().unwrap() <= 1);
        map.trim();
        assert_no_old_version(&map);
    });
}

/// A reader that lets go of its version (holding nothing) on another thread while two writes
/// run: its next read takes the current version, never half a batch and never older than what
/// it read before; the map keeps at most one old version for it (the one it holds, or the spare
/// kept while it held nothing), and its drop frees that. (The writes are `update`s, which copy
/// into the spare rather than replay it; `loom_a_write_builds_in_the_version_readers_let_go_of`
/// runs the same build path.)
#[test]
fn loom_a_reader_that_let_go_reads_on_while_writes_reuse_the_spare() {
    model(|| {
        let map = pair_map();
        let mut mine = map.reader();
        let reader = thread::spawn(move || {
            let first = mine.map()["a"];
            mine.let_go();
            let m = mine.map();
            assert_eq!(m["a"], m["b"], "torn batch");
            assert!(m["a"] >= first, "went back from {first} to {}", m["a"]);
            mine
        });
        write_pair(&map, 1);
        write_pair(&map, 2);
        let mine = reader.join().unwrap();
        let old = map.retired_versions();
        assert!(old <= 1, "{mine:?}: {old} old versions for one reader");
        drop(mine);
        assert_no_old_version(&map);
    });
}

/// With no `Reader`, `Snapshot` or read left, only the current version may be alive.
fn assert_no_old_version(map: &CowMap<&'static str, u64>) {
    assert_eq!(
        map.retired_versions(),
        0,
        "an old version outlived its last reader"
    );
}

/// A `Reader` dropped on another thread while a write runs: the version only it held is freed
/// by its drop, or, if the write holds the writers' lock then, by the writer once it lets go.
/// Either way no old version outlives the last reader.
#[test]
fn loom_a_reader_dropped_during_a_write_leaves_no_old_version() {
    model(|| {
        let map = pair_map();
        let mine = map.reader(); // holds version 0
        let t = thread::spawn(move || drop(mine));
        write_pair(&map, 1);
        t.join().unwrap();
        assert_no_old_version(&map);
    });
}

/// Two `Reader`s dropped at once: the one that wins the writers' lock may reclaim before the
/// other has released its slot; the other's flag makes it check again after it unlocks.
#[test]
fn loom_two_readers_dropped_at_once_leave_no_old_version() {
    model(|| {
        let map = pair_map();
        let a = map.reader();
        let b = map.reader();
        write_pair(&map, 1); // version 0 retired, held by both
        let t = thread::spawn(move || drop(a));
        drop(b);
        t.join().unwrap();
        assert_no_old_version(&map);
    });
}

/// A `Reader` dropped while a `remove` of an absent key holds the writers' lock: that early
/// return checks the flag too (every holder's guard does, on every exit).
#[test]
fn loom_a_reader_dropped_during_a_remove_of_nothing_leaves_no_old_version() {
    model(|| {
        let map = pair_map();
        let mine = map.reader();
        write_pair(&map, 1); // version 0 retired, held by `mine`
        let t = thread::spawn(move || drop(mine));
        assert_eq!(map.remove("absent"), None);
        t.join().unwrap();
        assert_no_old_version(&map);
    });
}

/// A `Reader` that holds an old version dropped on another thread while a `remove` of an absent
/// key holds the writers' lock, beside a `Reader` on the current version: whether the drop's
/// `try_lock` or the remover's unlock frees, the old version stays as the next write's spare
/// (it counts against the reader on the current version), the write builds in it, and the last
/// reader's drop frees what is left.
#[test]
fn loom_a_reader_dropped_beside_one_on_the_current_version_leaves_the_spare() {
    model(|| {
        let map = pair_map();
        let passing = map.reader(); // holds version 0
        let mut stays = map.reader();
        write_pair(&map, 1);
        assert_eq!(stays.map()["a"], 1); // on the current version
        let t = thread::spawn(move || drop(passing));
        assert_eq!(map.remove("absent"), None);
        t.join().unwrap();
        assert_eq!(
            map.retired_versions(),
            1,
            "the version only the dropped reader held: the spare"
        );
        write_pair(&map, 2); // builds in the spare; `stays` holds version 1
        assert_eq!(stays.map()["b"], 2);
        assert_eq!(map.retired_versions(), 1, "version 1: the next spare");
        drop(stays);
        assert_no_old_version(&map);
    });
}

/// `Reader`s dropped and made at once on two threads while a write publishes: the stack of
/// free slots (lock-free pushes, pops one at a time) must hand each slot to one `Reader` only.
/// Each new `Reader` reads a whole version across the write; had two shared a slot, one's
/// move would unprotect the other's version and the write could free it under the read (the
/// modelled cell reports it). No old version outlives the readers.
#[test]
fn loom_readers_made_and_dropped_at_once_never_share_a_slot() {
    model(|| {
        let map = pair_map();
        let (a, b) = (map.reader(), map.reader());
        let m = map.clone();
        let t = thread::spawn(move || {
            drop(a);
            let mut c = m.reader();
            let pair = c.map();
            assert_eq!(pair["a"], pair["b"], "half a batch");
            c
        });
        drop(b);
        let mut d = map.reader();
        write_pair(&map, 1);
        let pair = d.map();
        assert_eq!((pair["a"], pair["b"]), (1, 1));
        // Frees what no slot holds: with a shared slot, what `c` may still be reading.
        write_pair(&map, 2);
        let c = t.join().unwrap();
        drop((c, d));
        assert_no_old_version(&map);
    });
}

/// Inserts and removes record their key for the next write, which replays that one change into
/// the spare, and `trim` takes the record away (the models above write with `update`, which
/// records nothing). A `Reader`, a plain read and a snapshot on another thread see whole
/// versions throughout; a replayed write that touched the spare while a read held it, or a
/// record read without the writers' lock, fails the model.
#[test]
fn loom_replayed_inserts_and_removes_race_readers() {
    model(|| {
        let map = Arc::new(CowMap::from_iter([(1u64, 10u64), (2, 20)]));
        let mut idle = map.reader();
        idle.let_go(); // writes build in the spare it leaves
        let mut reader = map.reader();
        let m = map.clone();
        let t = thread::spawn(move || {
            let one = reader.get_cloned(&1);
            let two = m.read(&2, |v| *v);
            let snap = m.snapshot();
            // Key 2 is 20 in every version; key 1 is 10, 11 or gone; key 3 is 30 or absent.
            assert_eq!(snap.get(&2), Some(&20));
            assert!(matches!(snap.get(&1), None | Some(&10) | Some(&11)));
            assert!(matches!(snap.get(&3), None | Some(&30)));
            assert!(matches!(one, None | Some(10) | Some(11)));
            assert_eq!(two, Some(20));
        });
        map.insert(1, 11); // a replace: records key 1
        map.insert(3, 30); // replays the replace into the spare, records 3
        assert_eq!(map.remove(&1), Some(11)); // replays the insert, records the removed 1
        map.trim(); // lets go of the record
        t.join().unwrap();
        assert_eq!(idle.get_cloned(&3), Some(30));
        assert_eq!(idle.get_cloned(&1), None);
        drop(idle);
        map.trim();
        assert_eq!(map.retired_versions(), 0);
    });
}

/// Two writers on two threads, one inserting then trimming, the other removing: each replays
/// the other's record under the lock, or `trim` takes it first, while a `Reader` reads.
#[test]
fn loom_two_writers_replay_each_others_records() {
    model(|| {
        let map = Arc::new(CowMap::from_iter([(1u64, 1u64)]));
        let mut idle = map.reader();
        idle.let_go();
        let m = map.clone();
        let w = thread::spawn(move || {
            m.insert(2, 2);
            m.trim();
        });
        let mut reader = map.reader();
        map.remove(&1);
        assert!(reader.map().len() <= 2);
        w.join().unwrap();
        assert_eq!(reader.get_cloned(&2), Some(2));
        assert_eq!(reader.get_cloned(&1), None);
        drop((reader, idle));
        map.trim();
        assert_eq!(map.retired_versions(), 0);
    });
}

/// `store` publishes a map built aside while a `Reader` and a plain read race it: each sees the
/// old map or the new one whole, and the old version is freed once neither holds it.
#[test]
fn loom_store_races_readers() {
    model(|| {
        let map = Arc::new(CowMap::from_iter([("a", 1u64), ("b", 1)]));
        let mut reader = map.reader();
        let m = map.clone();
        let t = thread::spawn(move || {
            let m2 = m.read("a", |a| *a);
            let seen = reader.map();
            assert_eq!(seen.get("a"), seen.get("b"), "a torn map");
            assert!(matches!(m2, Some(1) | Some(2)));
        });
        let mut next = std::collections::HashMap::with_hasher(Default::default());
        next.extend([("a", 2u64), ("b", 2)]);
        map.store(next);
        t.join().unwrap();
        assert_eq!(map.get_cloned("a"), Some(2));
        map.trim();
        assert_eq!(map.retired_versions(), 0);
    });
}
