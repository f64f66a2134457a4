//! `ShardedMap`'s documented panics and guarantees that no other test drives: `compute` ("If
//! `f` panics, the entry is as `f` left it"), `get_or_insert_with_ref` ("a panic there leaves
//! the map as it was, and what was already made is dropped there"), `Debug` ("Formatting a map
//! from inside one of its own closures" panics), `Extend` ("The iterator itself runs with no
//! shard locked, so it may read the map"; a call from inside a closure panics) and
//! `FromIterator` ("If the iterator panics (the entries collected so far are dropped)").

#![cfg(not(loom))]

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use thrifty::map::{Compute, ShardedMap};

#[path = "common/panics.rs"]
mod panics;

fn quiet() {
    panics::quiet_panics_containing("expected:");
}

#[track_caller]
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("no panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_compute_whose_f_panics_leaves_the_entry_as_f_left_it() {
    quiet();
    let map = ShardedMap::with_shards(4);
    map.insert(1u64, 10u64);
    let msg = panic_message(|| {
        map.compute(1, |v| {
            *v.unwrap() = 11;
            panic!("expected: compute failed");
        });
    });
    assert!(msg.contains("compute failed"));
    assert_eq!(map.get_cloned(&1), Some(11), "the entry as f left it");
    assert_eq!(map.len(), 1);
    // An absent key: nothing inserted.
    let _ = panic_message(|| {
        map.compute(2, |v| {
            assert!(v.is_none());
            panic!("expected: compute failed");
        });
    });
    assert_eq!((map.get_cloned(&2), map.len()), (None, 1));
    // The shard was unlocked: the map is usable.
    assert_eq!(map.compute(1, |_| Compute::Remove), Some(11));
    assert!(map.is_empty());
}

/// A borrowed key whose owned form counts its live instances.
#[derive(PartialEq, Eq, Hash)]
#[repr(transparent)]
struct Name(str);

struct Owned {
    name: String,
    live: Arc<AtomicUsize>,
}

static LIVE_OWNED: std::sync::OnceLock<Arc<AtomicUsize>> = std::sync::OnceLock::new();

impl Name {
    fn new(s: &str) -> &Name {
        // SAFETY: `Name` is a `repr(transparent)` newtype of `str`, so the two have one layout
        // and pointer metadata; the cast keeps the lifetime.
        unsafe { &*(s as *const str as *const Name) }
    }
}

impl ToOwned for Name {
    type Owned = Owned;
    fn to_owned(&self) -> Owned {
        let live = LIVE_OWNED.get_or_init(Default::default).clone();
        live.fetch_add(1, SeqCst);
        Owned {
            name: self.0.to_string(),
            live,
        }
    }
}

impl Borrow<Name> for Owned {
    fn borrow(&self) -> &Name {
        Name::new(&self.name)
    }
}

impl PartialEq for Owned {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Owned {}
impl Hash for Owned {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let name: &Name = self.borrow();
        name.hash(h);
    }
}
impl Drop for Owned {
    fn drop(&mut self) {
        self.live.fetch_sub(1, SeqCst);
    }
}

#[test]
fn a_get_or_insert_with_ref_whose_make_panics_leaves_the_map_and_drops_the_owned_key() {
    quiet();
    let live = LIVE_OWNED.get_or_init(Default::default).clone();
    let map: ShardedMap<Owned, u64> = ShardedMap::with_shards(4);
    map.get_or_insert_with_ref(Name::new("present"), || 1, |_| ());
    assert_eq!(live.load(SeqCst), 1);
    let msg = panic_message(|| {
        map.get_or_insert_with_ref(
            Name::new("absent"),
            || panic!("expected: make failed"),
            |_| (),
        );
    });
    assert!(msg.contains("make failed"));
    assert_eq!(
        live.load(SeqCst),
        1,
        "the owned key made before make was dropped"
    );
    assert_eq!(map.len(), 1, "the map as it was");
    assert!(!map.contains_key(Name::new("absent")));
    // Unlocked and usable, for the same shard's keys too.
    let n = map.get_or_insert_with_ref(Name::new("absent"), || 5, |v| *v);
    assert_eq!((n, map.len(), live.load(SeqCst)), (5, 2, 2));
    drop(map);
    assert_eq!(live.load(SeqCst), 0);
}

#[test]
fn formatting_a_map_inside_its_own_closure_panics() {
    let map = ShardedMap::with_shards(2);
    map.insert(1u64, 1u64);
    let msg = panic_message(|| {
        map.read(&1, |_| format!("{map:?}"));
    });
    assert!(msg.contains("re-entrant"), "{msg}");
    assert_eq!(format!("{map:?}"), "{1: 1}", "usable afterwards");
}

#[test]
fn extend_runs_its_iterator_unlocked_and_panics_inside_a_closure() {
    let map = ShardedMap::with_shards(2);
    map.insert(0u64, 0u64);
    // The iterator reads the map (every shard) while extend runs.
    (&map).extend((1..100u64).map(|i| {
        assert_eq!(map.get_cloned(&(i - 1)), Some(i - 1));
        assert_eq!(map.len() as u64, i);
        (i, i)
    }));
    assert_eq!(map.len(), 100);
    let msg = panic_message(|| {
        map.read(&0, |_| (&map).extend([(1000, 1000)]));
    });
    assert!(msg.contains("re-entrant"), "{msg}");
    assert!(!map.contains_key(&1000));
}

#[test]
fn collect_drops_what_it_collected_when_the_iterator_panics() {
    quiet();
    let live = Arc::new(AtomicUsize::new(0));
    struct Value(Arc<AtomicUsize>);
    impl Drop for Value {
        fn drop(&mut self) {
            self.0.fetch_sub(1, SeqCst);
        }
    }
    let msg = panic_message(|| {
        let _map: ShardedMap<u64, Value> = (0..100u64)
            .map(|i| {
                assert!(i != 50, "expected: the iterator failed");
                live.fetch_add(1, SeqCst);
                (i, Value(live.clone()))
            })
            .collect();
    });
    assert!(msg.contains("iterator failed"));
    assert_eq!(
        live.load(SeqCst),
        0,
        "the 50 entries collected were dropped"
    );
}

/// The default shard count the README and the CHANGELOG give ("64 per CPU, at most 1 024", a
/// power of two): 16 KiB of shard headers on 2 CPUs, never more than 128 KiB.
#[test]
fn the_default_shard_count_is_64_per_cpu_at_most_1024() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let expected = (64 * cpus).min(1024).next_power_of_two();
    assert!(expected <= 1024);
    assert_eq!(ShardedMap::<u64, u64>::new().shard_count(), expected);
    assert_eq!(ShardedMap::<u64, u64>::default().shard_count(), expected);
    assert_eq!(
        ShardedMap::<u64, u64>::with_capacity(1000).shard_count(),
        expected
    );
}
