//! Unit tests of `CowMap`, sized to run under Miri (`cargo +nightly miri test --lib map`).

use super::*;
use crate::sync::{Arc, AtomicUsize, Ordering::SeqCst};
use std::panic::{catch_unwind, AssertUnwindSafe};

const ROUNDS: u64 = if cfg!(miri) { 20 } else { 2000 };

/// A value that counts itself: +1 when made or cloned, -1 when dropped.
#[derive(Debug)]
struct Tracked {
    id: u64,
    live: Arc<AtomicUsize>,
}

impl Tracked {
    fn new(id: u64, live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, SeqCst);
        Self {
            id,
            live: live.clone(),
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self::new(self.id, &self.live)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.fetch_sub(1, SeqCst);
    }
}

#[test]
fn reads_see_writes() {
    let map = CowMap::new();
    assert!(map.is_empty());
    assert_eq!(map.insert("a", 1), None);
    assert_eq!(map.insert("a", 2), Some(1));
    assert_eq!(map.get_cloned("a"), Some(2));
    assert_eq!(map.read("a", |v| v * 10), Some(20));
    assert!(map.contains_key("a") && !map.contains_key("b"));
    assert_eq!(map.remove("a"), Some(2));
    assert_eq!((map.len(), map.version()), (0, 3));
    // Removing an absent key copies nothing and publishes nothing.
    assert_eq!(map.remove("a"), None);
    assert_eq!(map.version(), 3);
}

#[test]
fn update_is_one_version_and_returns_its_result() {
    let map: CowMap<u32, u32> = (0..4).map(|i| (i, i)).collect();
    let n = map.update(|m| {
        m.retain(|k, _| k % 2 == 0);
        m.insert(10, 10);
        m.len()
    });
    assert_eq!((n, map.len(), map.version()), (3, 3, 1));
}

#[test]
fn a_snapshot_keeps_its_version() {
    let map = CowMap::from_iter([(1, "one")]);
    let snap = map.snapshot();
    let copy = snap.clone();
    map.insert(2, "two");
    map.remove(&1);
    assert_eq!((snap.len(), snap.version(), snap[&1]), (1, 0, "one"));
    assert_eq!(copy.iter().count(), 1);
    assert_eq!((map.len(), map.version()), (1, 2));
    assert_eq!(map.retired_versions(), 1, "the snapshots share one version");
    drop((snap, copy));
    assert_eq!(map.retired_versions(), 0);
}

#[test]
fn a_reader_follows_writes_and_pins_at_most_one_old_version() {
    let map = CowMap::from_iter([(1, 1)]);
    let mut reader = map.reader();
    assert_eq!(reader.get_cloned(&1), Some(1));
    for i in 2..10 {
        map.insert(1, i);
        // The reader holds the version it last read, whatever happened since.
        assert_eq!(map.retired_versions(), 1);
    }
    assert_eq!((reader.get_cloned(&1), reader.version()), (Some(9), 8));
    assert_eq!(
        map.retired_versions(),
        1,
        "the read let go of the old version, which the map keeps as its spare"
    );
    map.trim();
    assert_eq!(map.retired_versions(), 0, "trim frees the spare");
    map.insert(1, 10);
    reader.refresh();
    assert_eq!(map.retired_versions(), 1, "the spare again");
    map.insert(1, 11);
    assert_eq!(
        map.retired_versions(),
        1,
        "the write was built in the spare; the reader holds the version before"
    );
    reader.refresh();
    assert_eq!(
        (reader.get_cloned(&1), map.retired_versions()),
        (Some(11), 1)
    );
    map.trim();
    assert_eq!(reader.map().len(), 1);
    // The spare counts against the readers on the current version: a reader's drop keeps it
    // while another is on the current version, and the last one's drop frees it.
    let mut other = map.reader();
    map.insert(1, 13);
    other.refresh();
    reader.refresh();
    assert_eq!(map.retired_versions(), 1, "the spare");
    drop(other);
    assert_eq!(
        map.retired_versions(),
        1,
        "a reader's drop freed the spare another reader on the current version counts for"
    );
    let mut last = reader.clone();
    drop(reader);
    assert_eq!(
        map.retired_versions(),
        1,
        "`last` is on the current version"
    );
    last.let_go();
    drop(last);
    assert_eq!(
        map.retired_versions(),
        0,
        "the spare outlived the last reader"
    );
    // A plain read on the current version does not keep it for itself: it ends at once.
    map.insert(1, 14);
    let gone = map.reader(); // on the current version
    map.insert(1, 15); // `gone` holds the version before
    map.read(&1, |_| drop(gone));
    assert_eq!(
        map.retired_versions(),
        0,
        "the last reader's drop, during a plain read, kept a version for the read"
    );
    let reader = map.reader();
    let clone = reader.clone();
    map.insert(1, 12);
    assert_eq!(
        map.retired_versions(),
        1,
        "two readers on one version pin it once"
    );
    drop((reader, clone));
    assert_eq!(map.retired_versions(), 0);
}

#[test]
fn a_write_during_a_read_keeps_the_version_until_a_later_write() {
    let map = CowMap::from_iter([(1, 1)]);
    let seen = map.read(&1, |v| {
        // Our read's hazard holds version 0: the writer must keep it, without waiting.
        map.insert(1, 2);
        assert_eq!(map.inner.writer.lock().len(), 1);
        assert_eq!(map.retired_versions(), 1);
        *v
    });
    assert_eq!(
        seen,
        Some(1),
        "the read finished on the version it started with"
    );
    assert_eq!(
        map.retired_versions(),
        1,
        "kept until a write or trim retries it"
    );
    map.trim();
    assert_eq!(map.retired_versions(), 0);
    assert_eq!(map.inner.writer.lock().len(), 0);
}

#[test]
fn the_hazard_registry_grows_with_reads_at_once_and_no_further() {
    let map = CowMap::from_iter([(1, 1)]);
    for _ in 0..3 {
        map.read(&1, |_| map.read(&1, |v| *v));
    }
    assert_eq!(
        map.inner.hazards.slots(),
        2,
        "two reads at once, two slots, reused"
    );
    let mut reader = map.reader();
    map.insert(1, 2);
    reader.refresh();
    assert_eq!(
        map.inner.hazards.slots(),
        2,
        "the reader holds a slot of its own, apart from the reads'"
    );
}

#[test]
fn readers_by_the_thousand_reuse_the_slots_of_dropped_ones() {
    let map = CowMap::from_iter([(1, 1)]);
    let n = if cfg!(miri) { 20 } else { 2000 };
    for round in 0..3 {
        let mut readers: Vec<_> = (0..n).map(|_| map.reader()).collect();
        map.insert(1, round);
        for r in &mut readers {
            assert_eq!(r.get_cloned(&1), Some(round));
        }
        assert_eq!(
            map.inner.hazards.held_slots(),
            n,
            "one slot per live reader"
        );
        assert!(
            map.inner.hazards.slots() <= 1,
            "reads look for a free slot apart from the readers' slots"
        );
        drop(readers);
        assert_eq!(
            map.retired_versions(),
            0,
            "no reader left to hold an old version"
        );
    }
    assert_eq!(
        map.inner.hazards.held_slots(),
        n,
        "dropped readers' slots were reused"
    );
}

#[test]
fn a_panicking_update_publishes_nothing() {
    let map = CowMap::from_iter([(1, 1)]);
    let result = catch_unwind(AssertUnwindSafe(|| {
        map.update(|m| {
            m.insert(2, 2);
            panic!("boom");
        })
    }));
    assert!(result.is_err());
    assert_eq!((map.len(), map.version()), (1, 0));
    assert_eq!(map.insert(3, 3), None, "the writer lock was released");
}

#[test]
fn a_reader_dropped_in_a_panicking_update_leaves_no_old_version() {
    let map = CowMap::from_iter([(1, 1)]);
    let reader = map.reader(); // holds version 0
    map.insert(2, 2); // version 0 retired, held by `reader`
    assert_eq!(map.retired_versions(), 1);
    let result = catch_unwind(AssertUnwindSafe(|| {
        map.update(|_| {
            drop(reader); // try_lock fails (we hold it): sets the flag
            panic!("boom");
        })
    }));
    assert!(result.is_err());
    // No Reader, Snapshot or read is alive: the module doc's bound says 0.
    assert_eq!(
        map.retired_versions(),
        0,
        "the unwinding writer did not reclaim for the drop"
    );
}

/// A panic under the writers' lock leaves it as it was: a `Reader` dropped after it still frees
/// the old version only it held. (Under Miri and loom the crate's lock is std's, which a panic
/// poisons; the shim hands a poisoned lock over, as parking_lot has no poisoning, for `try_lock`
/// as for `lock`.)
#[test]
fn a_reader_dropped_after_a_panicking_update_frees_its_old_version() {
    let map = CowMap::from_iter([(1, 1)]);
    let result = catch_unwind(AssertUnwindSafe(|| map.update(|_| panic!("boom"))));
    assert!(result.is_err());
    let reader = map.reader(); // holds version 0
    map.insert(2, 2); // version 0 retired, held by `reader`
    assert_eq!(map.retired_versions(), 1);
    drop(reader); // takes the lock with `try_lock` and frees version 0
    assert_eq!(
        map.retired_versions(),
        0,
        "the dropped reader's old version is still alive"
    );
}

#[test]
fn a_panicking_read_frees_its_hazard() {
    let map = CowMap::from_iter([(1, 1)]);
    let result = catch_unwind(AssertUnwindSafe(|| map.read(&1, |_| panic!("boom"))));
    assert!(result.is_err());
    map.insert(1, 2);
    assert_eq!(
        map.retired_versions(),
        0,
        "no hazard was left holding version 0"
    );
}

#[test]
fn everything_is_freed_whoever_lets_go_last() {
    let live = Arc::new(AtomicUsize::new(0));
    let map: CowMap<u64, Tracked> = (0..3).map(|i| (i, Tracked::new(i, &live))).collect();
    let mut reader = map.reader();
    let snap = map.snapshot();
    map.update(|m| {
        m.insert(3, Tracked::new(3, &live));
    });
    map.read(&0, |_| map.insert(4, Tracked::new(4, &live)));
    assert_eq!(reader.read(&3, |t| t.id), Some(3));
    drop(map);
    // The reader outlives the map and still reads its last version.
    assert_eq!(reader.len(), 5);
    assert_eq!(snap.len(), 3);
    drop(snap);
    drop(reader);
    assert_eq!(live.load(SeqCst), 0, "a value leaked");
}

#[test]
fn readers_on_threads_see_whole_batches_in_order() {
    let map = CowMap::from_iter([("a", 0u64), ("b", 0)]);
    std::thread::scope(|s| {
        for plain in [false, true] {
            let map = &map;
            s.spawn(move || {
                let mut reader = map.reader();
                let mut last = 0;
                while last < ROUNDS {
                    let (a, b, seq) = if plain {
                        let snap = map.snapshot();
                        (snap["a"], snap["b"], snap.version())
                    } else {
                        let m = reader.map();
                        let (a, b) = (m["a"], m["b"]);
                        (a, b, reader.version())
                    };
                    assert_eq!(a, b, "a torn batch");
                    // A reader's `version` refreshes again: it may be newer than its last map.
                    assert!(
                        a == seq || (!plain && a < seq),
                        "{a} is not from version {seq}"
                    );
                    assert!(a >= last, "went back from version {last} to {a}");
                    last = a;
                }
            });
        }
        for i in 1..=ROUNDS {
            map.update(|m| {
                m.insert("a", i);
                m.insert("b", i);
            });
        }
    });
    assert!(map.retired_versions() <= 2);
}

#[test]
fn writes_that_replay_the_last_change_into_the_spare_keep_every_version_whole() {
    // One reader that refreshes after every write hands the version before the current one
    // back as the spare, so inserts and removes replay the previous write into it instead of
    // copying; a second reader that refreshes only now and then makes the spare older than
    // that, which must fall back to a copy; `update`s record no change. After each step both
    // readers' views and the map equal a plain `HashMap` given the same operations.
    let map: CowMap<u64, u64> = CowMap::new();
    let mut model = std::collections::HashMap::new();
    let (mut eager, mut lazy) = (map.reader(), map.reader());
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for step in 0..ROUNDS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = x % 16;
        match x % 5 {
            0 | 1 => assert_eq!(map.insert(key, step), model.insert(key, step)),
            2 | 3 => assert_eq!(map.remove(&key), model.remove(&key)),
            _ => {
                map.update(|m| m.insert(key + 100, step));
                model.insert(key + 100, step);
            }
        }
        eager.refresh();
        let seen: std::collections::HashMap<u64, u64> =
            eager.snapshot().iter().map(|(&k, &v)| (k, v)).collect();
        assert_eq!(seen, model, "step {step}: the eager reader's version");
        if step % 7 == 0 {
            lazy.refresh();
            let seen: std::collections::HashMap<u64, u64> =
                lazy.snapshot().iter().map(|(&k, &v)| (k, v)).collect();
            assert_eq!(seen, model, "step {step}: the lazy reader's version");
        }
    }
}

#[test]
fn a_reader_that_let_go_holds_nothing_and_reads_on() {
    let map = CowMap::from_iter([(1, 1)]);
    let mut reader = map.reader();
    assert_eq!(reader.get_cloned(&1), Some(1));
    reader.let_go();
    assert!(
        format!("{reader:?}").contains("version: none (let go)"),
        "{reader:?}"
    );
    map.insert(1, 2);
    assert_eq!(
        map.retired_versions(),
        1,
        "the version the reader let go of, kept as the spare for it"
    );
    for i in 3..10 {
        map.insert(1, i);
        assert_eq!(map.retired_versions(), 1, "one spare, however many writes");
    }
    assert_eq!(
        reader.version(),
        8,
        "the next read takes the current version"
    );
    assert_eq!(reader.snapshot()[&1], 9);
    reader.let_go();
    assert_eq!((reader.len(), reader.get_cloned(&1)), (1, Some(9)));
    reader.let_go();
    reader.let_go(); // twice in a row: still nothing held
    map.trim();
    assert_eq!(map.retired_versions(), 0, "trim frees the spare");
    assert_eq!(reader.map()[&1], 9);
    // Two readers that let go: one spare between them.
    let mut other = reader.clone();
    assert_eq!(other.get_cloned(&1), Some(9));
    other.let_go();
    reader.let_go();
    map.insert(1, 10);
    map.insert(1, 11);
    assert_eq!(
        map.retired_versions(),
        1,
        "one spare for two readers that let go"
    );
    // One that let go and one idling on an old version: that version and the spare.
    assert_eq!(other.get_cloned(&1), Some(11));
    map.insert(1, 12);
    map.insert(1, 13);
    assert_eq!(
        map.retired_versions(),
        2,
        "the idle reader's version and the spare"
    );
    assert_eq!(
        (reader.get_cloned(&1), other.get_cloned(&1)),
        (Some(13), Some(13))
    );
    drop(other);
    reader.let_go();
    drop(reader);
    map.insert(1, 14);
    assert_eq!(map.retired_versions(), 0, "no reader left: no spare kept");
}

#[test]
fn debug_output_names_the_state() {
    let map = CowMap::from_iter([(1, 1)]);
    let text = format!("{map:?} {:?} {:?}", map.reader(), map.snapshot());
    assert!(
        text.contains("len: 1") && text.contains("version: 0"),
        "{text}"
    );
}

#[test]
fn handles_are_send_and_sync_as_the_contents_are() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<CowMap<String, Vec<u8>>>();
    send_sync::<Snapshot<String, Vec<u8>>>();
    send::<Reader<String, Vec<u8>>>();
}

/// A panic leaves the map on a whole version, so the handles may cross `catch_unwind` when the
/// entries may (as `HashMap`).
#[test]
fn handles_are_unwind_safe_as_the_contents_are() {
    use std::panic::{RefUnwindSafe, UnwindSafe};
    fn both<T: UnwindSafe + RefUnwindSafe>() {}
    both::<CowMap<String, Vec<u8>>>();
    both::<Reader<String, Vec<u8>>>();
    both::<Snapshot<String, Vec<u8>>>();
    let map = CowMap::from_iter([(1, 1)]);
    let failed = std::panic::catch_unwind(|| {
        map.update(|m| {
            m.insert(2, 2);
            panic!("half a batch");
        })
    });
    assert!(failed.is_err());
    assert_eq!(
        (map.len(), map.get_cloned(&2)),
        (1, None),
        "nothing published"
    );
}

#[test]
fn a_write_copies_the_entries_not_a_mostly_empty_table() {
    let mut table = std::collections::HashMap::with_capacity_and_hasher(
        1 << 14,
        crate::map::FastRandomState::default(),
    );
    table.insert(0u64, 0u64);
    let map = CowMap::from_map(table);
    map.insert(1, 1);
    let capacity = map.reader().map().capacity();
    assert!(capacity < 64, "2 entries copied into a table of {capacity}");
    // A map emptied in place: the next write copies what is left, not the table it left.
    map.update(|m| m.extend((0..1000).map(|i| (i, i))));
    map.update(|m| m.clear());
    map.insert(2, 2);
    let capacity = map.reader().map().capacity();
    assert!(capacity < 64, "1 entry copied into a table of {capacity}");
    assert_eq!(map.get_cloned(&2), Some(2));
}

/// A key whose `Eq` is not reflexive, as a float's is for NaN: `HashMap` keeps every such
/// entry and never finds one.
#[derive(Clone, Copy, Debug)]
struct Float(f64);

impl PartialEq for Float {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Float {}

impl std::hash::Hash for Float {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.to_bits().hash(h);
    }
}

#[test]
fn a_key_not_equal_to_itself_is_kept_as_hash_map_keeps_it() {
    let map: CowMap<Float, u32> = CowMap::new();
    let mut model = std::collections::HashMap::new();
    let mut reader = map.reader();
    for (i, k) in [1.0, f64::NAN, 2.0, 3.0, f64::NAN, 4.0]
        .into_iter()
        .enumerate()
    {
        map.insert(Float(k), i as u32);
        model.insert(Float(k), i as u32);
        reader.refresh();
        assert_eq!(reader.len(), model.len(), "after insert {i}");
    }
    let mut values: Vec<u32> = map.snapshot().values().copied().collect();
    values.sort_unstable();
    assert_eq!(values, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn an_emptied_map_with_a_refreshing_reader_publishes_fitted_tables() {
    // Far more than the 6 entries below: a table over four times what they need, and more.
    let once = if cfg!(miri) { 2_000 } else { 100_000 };
    let map: CowMap<u64, u64> = CowMap::new();
    let mut reader = map.reader();
    map.update(|m| m.extend((0..once).map(|i| (i, i))));
    reader.refresh();
    map.update(|m| m.clear());
    reader.refresh();
    // Each write now finds a spare (the reader moved on), the version before it: the first
    // is the emptied map's table.
    let mut published = Vec::new();
    for k in 0..6u64 {
        map.insert(k, k);
        reader.refresh();
        published.push((reader.len(), reader.map().capacity()));
    }
    map.trim();
    published.push((reader.len(), reader.map().capacity()));
    assert!(
        published.iter().all(|&(_, capacity)| capacity < 64),
        "(len, capacity) of each version after the clear, then after `trim`: {published:?}"
    );
    assert_eq!(map.snapshot().len(), 6);
}

/// Set once the dropper thread is inside a [`Slow`] destructor; set by the test to let it out.
static DROPPING: crate::sync::AtomicBool = crate::sync::AtomicBool::new(false);
static LET_GO: crate::sync::AtomicBool = crate::sync::AtomicBool::new(false);

/// A value whose drop, on the thread named `dropper`, waits for [`LET_GO`].
#[derive(Clone, Debug)]
struct Slow;

impl Drop for Slow {
    fn drop(&mut self) {
        if std::thread::current().name() == Some("dropper") {
            DROPPING.store(true, SeqCst);
            while !LET_GO.load(SeqCst) {
                crate::sync::yield_now();
            }
        }
    }
}

#[test]
fn a_dropped_reader_frees_old_versions_without_keeping_a_writer_waiting() {
    let map: CowMap<u64, Slow> = CowMap::new();
    map.insert(1, Slow);
    let mut reader = map.reader();
    map.insert(2, Slow);
    reader.refresh(); // holds the version with both entries
    map.update(|m| drop(m.remove(&2))); // which is retired, held by the reader
    let wrote = crate::sync::AtomicBool::new(false);
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("dropper".into())
            .spawn_scoped(s, move || drop(reader)) // frees that version: `Slow` waits
            .unwrap();
        while !DROPPING.load(SeqCst) {
            crate::sync::yield_now();
        }
        s.spawn(|| {
            map.insert(3, Slow);
            wrote.store(true, SeqCst);
        });
        let start = std::time::Instant::now();
        // Long: a write that is not held up ends at once; one held up fails only after this, and a
        // writer stalled for seconds on a busy machine must not pass for one held up.
        while !wrote.load(SeqCst) && start.elapsed() < std::time::Duration::from_secs(30) {
            crate::sync::yield_now();
        }
        let done = wrote.load(SeqCst);
        LET_GO.store(true, SeqCst);
        assert!(done, "the write waited for an old version's destructors");
    });
    assert_eq!(map.len(), 2);
}

/// Making a `Reader` takes a free slot off a stack, or adds one: it never walks the slots of
/// the live ones. After a crowd of `Reader`s has gone, as many new ones take its slots back
/// and add none.
#[test]
#[cfg_attr(miri, ignore = "too many Readers for Miri")]
fn readers_made_after_a_crowd_take_its_slots_back() {
    let map = CowMap::from_iter([(1, 1)]);
    let readers: Vec<_> = (0..20_000).map(|_| map.reader()).collect();
    assert_eq!(map.inner.hazards.held_slots(), 20_000);
    drop(readers);
    // Every new one pops a slot the crowd gave back: none is added.
    let readers: Vec<_> = (0..20_000).map(|_| map.reader()).collect();
    assert_eq!(map.inner.hazards.held_slots(), 20_000);
    drop(readers);
}

/// The free slots of dropped `Reader`s are taken again, whatever order the drops came in,
/// and no slot is shared: each `Reader` keeps the version it holds, and a write keeps each
/// version some `Reader` holds. Threads make and drop `Reader`s at once, to exercise the
/// stack's concurrent pushes and pops.
#[test]
fn dropped_readers_slots_are_reused_in_any_order_and_never_shared() {
    let map = CowMap::from_iter([(0u64, 0u64)]);
    let n = if cfg!(miri) { 6 } else { 200 };
    let mut readers: Vec<_> = (0..n).map(|_| map.reader()).collect();
    // Drop every other one, then the rest backwards: the free stack holds all n slots.
    let mut odd = Vec::new();
    for (i, r) in readers.drain(..).enumerate() {
        if i % 2 == 1 {
            odd.push(r);
        }
    }
    odd.into_iter().rev().for_each(drop);
    let mut readers: Vec<_> = (0..n).map(|_| map.reader()).collect();
    assert_eq!(
        map.inner.hazards.held_slots(),
        n,
        "the free slots were taken again"
    );
    // Each reader pins its own version: one slot each, none shared.
    for (i, r) in (0u64..).zip(&mut readers) {
        map.insert(0, i + 1);
        assert_eq!(r.get_cloned(&0), Some(i + 1));
    }
    map.insert(0, 0);
    assert_eq!(map.retired_versions(), n, "a version per reader, each kept");
    drop(readers);
    assert_eq!(map.retired_versions(), 0);

    let rounds = if cfg!(miri) { 3 } else { 300 };
    std::thread::scope(|s| {
        for t in 0..3 {
            let map = &map;
            s.spawn(move || {
                let mut mine = Vec::new();
                for i in 0..rounds {
                    mine.push(map.reader());
                    if i % 3 == t % 3 {
                        mine.remove(0);
                    }
                    for r in &mut mine {
                        assert!(r.get_cloned(&0).is_some());
                    }
                }
            });
        }
        for i in 0..rounds as u64 {
            map.insert(0, i);
        }
    });
    map.trim();
    assert_eq!(
        map.retired_versions(),
        0,
        "a slot was left holding a version"
    );
    // Each thread holds at most `rounds - rounds / 3 + 1` `Reader`s at once (it drops one in
    // three rounds), and a new `Reader` adds a slot only when none is free: so the list holds
    // no more than all three threads' most at once, plus one a thread for a `Reader` made while
    // another's drop was still pushing its slot (or the `n` slots it had). (Each `reader()` adds
    // at most one slot: `n + 3 * rounds` would hold whatever the reuse.)
    let most = 3 * (rounds - rounds / 3 + 2);
    let held = map.inner.hazards.held_slots();
    assert!(
        held <= most.max(n),
        "{held} slots for at most {most} Readers alive at once: dropped ones were not reused"
    );
}

/// A value whose `Drop` writes the map it lives in.
#[derive(Clone)]
struct Unregister(crate::sync::Weak<CowMap<u64, Unregister>>, Arc<AtomicUsize>);

impl Drop for Unregister {
    fn drop(&mut self) {
        if let Some(map) = self.0.upgrade() {
            // Absent: publishes nothing, so the drops do not cascade.
            assert!(map.remove(&u64::MAX).is_none());
            self.1.fetch_add(1, SeqCst);
        }
    }
}

/// Every way a write, `trim` or a `Reader` frees a version or an entry runs the destructors
/// after unlocking: a value's `Drop` may write the map (the integration tests in
/// `tests/panics_map.rs` check each with a deadline; here for Miri).
#[test]
fn a_value_drop_may_write_its_own_map() {
    let map = Arc::new(CowMap::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let value = || Unregister(Arc::downgrade(&map), calls.clone());
    /// How many `Unregister` drops wrote the map during `f`.
    fn counted(calls: &AtomicUsize, f: impl FnOnce()) -> usize {
        let before = calls.load(SeqCst);
        f();
        calls.load(SeqCst) - before
    }
    map.insert(1, value());
    assert_eq!(
        counted(&calls, || drop(map.insert(2, value()))),
        1,
        "the replaced version"
    );
    let mut reader = map.reader();
    let mut spare_after = |write: &dyn Fn()| {
        reader.refresh();
        write();
        reader.refresh();
    };
    spare_after(&|| drop(map.insert(1, value())));
    assert_eq!(
        counted(&calls, || drop(map.insert(3, value()))),
        1,
        "a replayed replace"
    );
    spare_after(&|| drop(map.remove(&1)));
    assert_eq!(
        counted(&calls, || drop(map.insert(4, value()))),
        1,
        "a replayed remove"
    );
    spare_after(&|| drop(map.update(|m| m.insert(5, value()))));
    assert_eq!(
        counted(&calls, || drop(map.insert(6, value()))),
        3,
        "a copy over the spare"
    );
    reader.refresh();
    assert_eq!(
        counted(&calls, || map.trim()),
        4,
        "trim: the version the reader left"
    );
    map.insert(7, value());
    assert_eq!(counted(&calls, || drop(reader)), 5, "the reader's version");
    assert_eq!(map.retired_versions(), 0);
}

/// A write or `trim` from inside an `update` of the same map panics, publishes nothing and
/// leaves the map usable.
#[test]
fn a_write_inside_a_write_of_the_same_map_panics() {
    let map = CowMap::from_iter([(1, 1)]);
    for case in [
        &(|| {
            map.update(|_| map.insert(2, 2));
        }) as &dyn Fn(),
        &|| map.update(|_| map.trim()),
    ] {
        let result = catch_unwind(AssertUnwindSafe(case));
        let payload = result.expect_err("panics");
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .expect("a message");
        assert!(message.starts_with("CowMap: re-entrant write"), "{message}");
        assert_eq!((map.version(), map.len()), (0, 1));
    }
    assert_eq!(map.insert(2, 2), None);
}

/// The current version records the key of the write that made it, for the next write's replay:
/// a removed key stays alive until the next write or `trim`, and `trim` lets go of it (a key
/// that holds a resource is not kept by a map that no longer holds it). A replacing `insert`
/// records the key the map kept, never the one passed in, which the map dropped. Replays after
/// `trim` still build whole versions.
#[test]
fn trim_lets_go_of_a_removed_key_and_a_replaced_insert_keeps_no_extra_key() {
    let map: CowMap<Arc<str>, u64> = CowMap::new();
    let key: Arc<str> = "session-42".into();
    let gone = Arc::downgrade(&key);
    map.insert(key, 1);
    assert_eq!(map.remove("session-42"), Some(1));
    assert!(
        gone.upgrade().is_some(),
        "recorded for the next write's replay"
    );
    map.trim();
    assert!(gone.upgrade().is_none(), "trim let go of the removed key");

    let (kept, passed): (Arc<str>, Arc<str>) = ("k".into(), "k".into());
    let (kept_weak, passed_weak) = (Arc::downgrade(&kept), Arc::downgrade(&passed));
    map.insert(kept, 1);
    assert_eq!(map.insert(passed, 2), Some(1));
    assert!(
        passed_weak.upgrade().is_none(),
        "the key passed in outlived its insert"
    );
    assert!(kept_weak.upgrade().is_some());

    // Writes after `trim` (no record to replay) and after a replace still agree with a model.
    let mut model = std::collections::HashMap::from([("k".to_string(), 2)]);
    for i in 0..20u64 {
        let k = format!("k{}", i % 5);
        if i % 3 == 0 {
            assert_eq!(map.remove(k.as_str()), model.remove(&k));
        } else {
            assert_eq!(map.insert(k.as_str().into(), i), model.insert(k, i));
        }
        if i % 7 == 0 {
            map.trim();
        }
        let now = map.snapshot();
        assert_eq!(now.len(), model.len());
        assert!(model.iter().all(|(k, v)| now.get(k.as_str()) == Some(v)));
    }
}

/// A removed key lives until the next write even when a `Reader` keeps the remove's version as
/// that write's spare (it let go): the write that replaces a version lets go of its record,
/// whichever kind of write it is. (Kept in the retired version, the key outlived the write
/// until a later one reused it or `trim`.)
#[test]
fn the_next_write_lets_go_of_a_removed_key_whatever_keeps_the_old_version() {
    let map: CowMap<Arc<str>, u64> = CowMap::new();
    let mut idle = map.reader();
    for write in 0..3 {
        let key: Arc<str> = format!("session-{write}").into();
        let gone = Arc::downgrade(&key);
        map.insert(key, 1);
        assert_eq!(map.remove(&*format!("session-{write}")), Some(1));
        idle.let_go(); // the remove's version stays as the next write's spare
        match write {
            0 => assert_eq!(map.insert("x".into(), 2), None),
            1 => assert_eq!(map.update(|m| m.insert("y".into(), 3)), None),
            _ => map.store(std::collections::HashMap::default()),
        }
        assert!(
            map.retired_versions() >= 1,
            "premise: a version kept as the spare"
        );
        assert!(
            gone.upgrade().is_none(),
            "write {write} left the removed key alive"
        );
    }
}

/// `store` publishes a map built elsewhere as it is, for values that cannot be cloned: readers
/// move to it whole, a snapshot keeps the old version, and every value is dropped once.
#[test]
fn store_publishes_a_whole_map_without_copying() {
    /// Not `Clone`: `store` must not need it.
    struct Owned(Tracked);
    let live = Arc::new(AtomicUsize::new(0));
    let owned = |id| Owned(Tracked::new(id, &live));
    let map: CowMap<u64, Owned> = (0..3).map(|k| (k, owned(k))).collect();
    let mut reader = map.reader();
    assert_eq!(reader.read(&2, |v| v.0.id), Some(2));
    let before = map.snapshot();
    let mut next = std::collections::HashMap::with_hasher(crate::map::FastRandomState::default());
    next.insert(7, owned(70));
    map.store(next);
    assert_eq!((map.len(), map.version()), (1, 1));
    assert_eq!(reader.read(&7, |v| v.0.id), Some(70));
    assert_eq!(
        reader.read(&2, |v| v.0.id),
        None,
        "the old entries are gone"
    );
    assert_eq!(
        before.get(&2).map(|v| v.0.id),
        Some(2),
        "a snapshot keeps its version"
    );
    assert_eq!(live.load(SeqCst), 4);
    drop(before);
    map.trim();
    assert_eq!(
        live.load(SeqCst),
        1,
        "the old version is freed once nothing holds it"
    );
    map.store(std::collections::HashMap::default());
    assert!(reader.read(&7, |_| ()).is_none() && map.is_empty());
    map.store((0..3).map(|k| (k, owned(k))).collect());
    assert_eq!(live.load(SeqCst), 3);
    map.clear(); // `FastRandomState` clones: the empty map keeps the hasher
    assert!(map.is_empty() && reader.read(&1, |_| ()).is_none());
    map.trim();
    assert_eq!(live.load(SeqCst), 0, "clear freed the entries");
    drop((reader, map));
    assert_eq!(live.load(SeqCst), 0);
}

/// A value whose every copy panics when dropped, while `armed` is set; counts its drops, and
/// those made while a panic unwinds.
#[derive(Clone)]
struct Fussy {
    drops: Arc<AtomicUsize>,
    in_unwind: Arc<AtomicUsize>,
    armed: Arc<AtomicUsize>,
}

impl Drop for Fussy {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
        if std::thread::panicking() {
            self.in_unwind.fetch_add(1, SeqCst);
        }
        if self.armed.load(SeqCst) != 0 {
            panic!("Fussy refuses to drop");
        }
    }
}

/// A write that returns a copy of a value it replaced, where the original, freed by the write
/// once published, panics in `Drop`, and so does the copy: the panic reaches the caller (the
/// copy's panic, which once aborted the process, is let go), the write is published, and both
/// the original and the copy are dropped, once, the copy as the panic unwinds (as it would have
/// been in the caller: a `MutexGuard` in a result is poisoned).
#[test]
fn a_write_whose_freed_value_and_returned_copy_both_panic_in_drop_reaches_the_caller() {
    for op in ["insert", "remove", "update"] {
        let drops = Arc::new(AtomicUsize::new(0));
        let (in_unwind, armed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let fussy = Fussy {
            drops: drops.clone(),
            in_unwind: in_unwind.clone(),
            armed: armed.clone(),
        };
        let map = CowMap::from_iter([(1u32, fussy)]);
        // A copy for `insert` to store, made unarmed (the others take none: an armed copy
        // that the closure dropped would panic a second time as the first unwound).
        let calm = (op == "insert").then(|| map.get_cloned(&1).unwrap());
        armed.store(1, SeqCst);
        let result = catch_unwind(AssertUnwindSafe(|| match op {
            "insert" => drop(map.insert(1, calm.unwrap())),
            "remove" => drop(map.remove(&1)),
            _ => drop(map.update(|m| m.remove(&1))),
        }));
        assert!(
            result.is_err(),
            "{op}: the Drop's panic did not reach the caller"
        );
        assert_eq!(map.version(), 1, "{op}: the write was not published");
        // The original (freed with the version it was in) and the copy the write would have
        // returned.
        assert_eq!(drops.load(SeqCst), 2, "{op}: drops");
        assert_eq!(
            in_unwind.load(SeqCst),
            1,
            "{op}: the copy was not dropped in the unwind"
        );
        armed.store(0, SeqCst);
        assert_eq!(map.len(), usize::from(op == "insert"), "{op}");
        drop(map);
        assert_eq!(drops.load(SeqCst), 2 + usize::from(op == "insert"), "{op}");
    }
}
