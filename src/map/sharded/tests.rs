//! Unit tests: each operation against its contract, the shard arithmetic, the refused settings
//! and the re-entrancy panics.

use super::*;
use crate::map::{BuildError, Compute};
use std::collections::HashSet;
use std::hash::BuildHasherDefault;

/// A hasher whose hash is the key itself, so a test can pick which shard a key lands in.
#[derive(Default)]
struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdMap = ShardedMap<u64, u64, BuildHasherDefault<Identity>>;

fn id_map(shards: usize) -> IdMap {
    ShardedMap::builder()
        .shards(shards)
        .hasher(BuildHasherDefault::default())
        .build()
}

#[test]
fn operations_follow_their_contracts() {
    let map = ShardedMap::with_shards(4);
    assert!(map.is_empty());
    assert_eq!(map.insert("a".to_string(), 1), None);
    assert_eq!(map.insert("a".to_string(), 2), Some(1));
    assert_eq!(map.read("a", |v| *v * 10), Some(20));
    assert_eq!(map.update("a", |v| std::mem::replace(v, 3)), Some(2));
    assert_eq!(map.update("b", |v| *v = 9), None);
    assert!(!map.contains_key("b"));
    assert_eq!(map.get_or_insert_with("b".into(), || 5, |v| *v), 5);
    assert_eq!(map.get_or_insert_with("b".into(), || 99, |v| *v), 5);
    assert_eq!(map.len(), 2);
    assert_eq!(map.remove("a"), Some(3));
    assert_eq!(map.remove("a"), None);
    assert_eq!(map.compute("c".into(), |_| Compute::Keep), None);
    assert!(
        !map.contains_key("c"),
        "Keep on an absent key inserts nothing"
    );
    assert_eq!(map.compute("c".into(), |_| Compute::Remove), None);
    assert_eq!(map.compute("c".into(), |_| Compute::Set(1)), None);
    assert_eq!(map.compute("c".into(), |_| Compute::Set(2)), Some(1));
    assert_eq!(
        map.compute("c".into(), |v| {
            *v.unwrap() += 1;
            Compute::Keep
        }),
        None
    );
    assert_eq!(map.get_cloned("c"), Some(3));
    assert_eq!(map.compute("c".into(), |_| Compute::Remove), Some(3));
    assert_eq!(map.len(), 1);
    map.clear();
    assert!(map.is_empty());
    assert_eq!(format!("{map:?}"), "{}");
}

#[test]
fn whole_map_operations_visit_every_shard() {
    let map = ShardedMap::with_shards(8);
    (0..1000u64).for_each(|i| assert!(map.insert(i, i).is_none()));
    let mut seen = HashSet::new();
    map.for_each(|k, v| {
        assert_eq!(k, v);
        assert!(seen.insert(*k));
    });
    assert_eq!(seen.len(), 1000);
    map.retain(|k, v| {
        *v += 1;
        k % 3 == 0
    });
    assert_eq!(map.len(), 334);
    assert_eq!(map.get_cloned(&999), Some(1000));
    map.shrink_to_fit();
    assert_eq!(map.len(), 334);
    map.clear();
    map.shrink_to_fit();
    assert!(map.is_empty());
}

#[test]
fn shard_bits_sit_below_hashbrowns_tag() {
    let map = id_map(4);
    assert_eq!(map.shard_index(0), 0);
    assert_eq!(map.shard_index(u64::MAX), 3);
    assert_eq!(map.shard_index(1 << 56), 2, "bit 56 is the top shard bit");
    assert_eq!(map.shard_index(1 << 55), 1);
    assert_eq!(
        map.shard_index(0xFE00_0000_0000_0000),
        0,
        "tag bits ignored"
    );
    assert_eq!(map.shard_index(0x00FF_FFFF_FFFF), 0, "low bits ignored");
    let one = id_map(1);
    assert_eq!(
        one.shard_index(u64::MAX),
        0,
        "one shard: no overflowing shift"
    );
    if !cfg!(miri) {
        let most: ShardedMap<u8, u8> = ShardedMap::with_shards(MAX_SHARDS);
        assert_eq!(most.shard_index(u64::MAX), MAX_SHARDS - 1);
    }
}

#[test]
fn shard_counts_round_up_and_bad_ones_are_refused() {
    for (asked, got) in [(1, 1), (2, 2), (3, 4), (12, 16), (1000, 1024)] {
        let map: ShardedMap<u8, u8> = ShardedMap::with_shards(asked);
        assert_eq!(map.shard_count(), got);
    }
    let default: ShardedMap<u8, u8> = ShardedMap::new();
    assert_eq!(default.shard_count(), builder::default_shards());
    let shards = default.shard_count();
    assert!(
        shards.is_power_of_two() && shards <= 1024,
        "{shards} shards"
    );
    assert!(
        shards >= (64 * crate::sync::cpus()).min(1024),
        "{shards} shards"
    );
    let err = ShardedMap::<u8, u8>::builder().shards(0).try_build();
    assert_eq!(err.unwrap_err(), BuildError::ZeroShards);
    let err = ShardedMap::<u8, u8>::builder()
        .shards(MAX_SHARDS + 1)
        .try_build();
    assert_eq!(err.unwrap_err(), BuildError::TooManyShards(MAX_SHARDS + 1));
    let err = ShardedMap::<u64, u64>::builder()
        .capacity(usize::MAX)
        .try_build();
    assert_eq!(err.unwrap_err(), BuildError::Capacity(usize::MAX));
    let err = ShardedMap::<u64, u64>::builder()
        .shards(1)
        .capacity(usize::MAX / 4)
        .try_build();
    assert_eq!(err.unwrap_err(), BuildError::Capacity(usize::MAX / 4));
}

#[test]
#[cfg_attr(
    target_pointer_width = "64",
    should_panic(expected = "capacity(18446744073709551615): the tables for")
)]
#[cfg_attr(
    target_pointer_width = "32",
    should_panic(expected = "capacity(4294967295): the tables for")
)]
fn an_impossible_capacity_panics_with_the_setting() {
    let _: ShardedMap<u64, u64> = ShardedMap::with_capacity(usize::MAX);
}

#[test]
#[should_panic(expected = "shards(0): a map needs at least one shard")]
fn zero_shards_panics_with_the_setting() {
    let _: ShardedMap<u8, u8> = ShardedMap::with_shards(0);
}

#[test]
fn per_shard_capacity_has_slack_for_an_even_spread() {
    assert_eq!(per_shard(0, 8), 0);
    assert_eq!(per_shard(100, 1), 100, "one shard needs no slack");
    assert_eq!(per_shard(8000, 8), 1000 + 4 * 32 + 8);
    assert!(per_shard(usize::MAX, 2) > usize::MAX / 2, "no overflow");
}

/// SipHash (std's `RandomState`), not the default foldhash: the slack is sized for an even
/// spread, which foldhash's fast hash of sequential keys did not always give (see the
/// CHANGELOG's entry on this test).
#[test]
fn presized_shards_hold_their_share_without_growing() {
    let n = if cfg!(miri) { 800 } else { 80_000 };
    let map: ShardedMap<u64, u64, std::collections::hash_map::RandomState> = ShardedMap::builder()
        .shards(8)
        .capacity(n)
        .hasher(std::collections::hash_map::RandomState::new())
        .build();
    let caps: Vec<usize> = map.shards.iter().map(|s| s.read(1).capacity()).collect();
    (0..n as u64).for_each(|i| {
        map.insert(i, i);
    });
    let after: Vec<usize> = map.shards.iter().map(|s| s.read(1).capacity()).collect();
    assert_eq!(caps, after, "a shard grew");
}

#[test]
#[should_panic(expected = "re-entrant call")]
fn reentry_on_the_same_shard_panics() {
    let map = id_map(2);
    map.insert(0, 0);
    map.update(&0, |_| map.read(&0, |v| *v));
}

#[test]
#[should_panic(expected = "re-entrant call")]
fn reentry_on_another_shard_panics() {
    let map = id_map(2);
    map.insert(0, 0);
    map.insert(u64::MAX, 0);
    assert_ne!(map.shard_index(0), map.shard_index(u64::MAX));
    map.read(&0, |_| map.insert(u64::MAX, 1));
}

#[test]
#[should_panic(expected = "re-entrant call")]
fn reentry_from_for_each_panics() {
    let map = id_map(2);
    map.insert(1, 1);
    map.for_each(|k, _| {
        map.remove(k);
    });
}

#[test]
#[should_panic(expected = "re-entrant call")]
fn reentry_from_a_value_drop_panics() {
    use std::rc::{Rc, Weak};
    /// A value whose drop reads the map that holds it.
    struct Touch(Weak<ShardedMap<u64, Option<Touch>>>);
    impl Drop for Touch {
        fn drop(&mut self) {
            if let Some(map) = self.0.upgrade() {
                map.len(); // lock-free: allowed
                map.contains_key(&1);
            }
        }
    }
    let map = Rc::new(ShardedMap::with_shards(2));
    map.insert(1, None);
    map.insert(2, Some(Touch(Rc::downgrade(&map))));
    map.clear(); // drops the Touch with a shard locked
}

#[test]
fn keys_taken_out_are_dropped_after_the_shard_is_unlocked() {
    use std::rc::{Rc, Weak};
    /// A key whose drop reads the map that holds it, once it holds a link to it.
    struct Key(u64, Option<Weak<ShardedMap<Key, u64>>>);
    impl PartialEq for Key {
        fn eq(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }
    impl Eq for Key {}
    impl std::hash::Hash for Key {
        fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
            self.0.hash(h);
        }
    }
    impl Drop for Key {
        fn drop(&mut self) {
            if let Some(map) = self.1.as_ref().and_then(Weak::upgrade) {
                map.contains_key(&Key(u64::MAX, None));
            }
        }
    }
    let map = Rc::new(ShardedMap::with_shards(2));
    let key = |k| Key(k, Some(Rc::downgrade(&map)));
    map.insert(key(1), 1);
    map.insert(key(2), 2);
    // A present key's spare, and the key of the entry each call takes out.
    assert_eq!(map.insert(key(1), 10), Some(1));
    assert_eq!(map.get_or_insert_with(key(1), || 0, |v| *v), 10);
    assert_eq!(map.compute(key(1), |_| Compute::Remove), Some(10));
    assert_eq!(map.remove(&Key(2, None)), Some(2));
    assert!(map.is_empty());
    // A `make` that panics: the key it was to go with is the caller's still.
    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        map.get_or_insert_with(key(3), || panic!("make fails"), |v| *v)
    }));
    assert!(made.is_err());
    assert!(map.is_empty());
}

#[test]
fn a_caught_reentry_panic_leaves_the_map_usable() {
    let map = id_map(2);
    map.insert(0, 0);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        map.update(&0, |v| {
            *v = 1;
            map.len(); // lock-free reads are allowed
            map.insert(u64::MAX, 1)
        })
    }));
    assert!(caught.is_err());
    assert_eq!(
        map.get_cloned(&0),
        Some(1),
        "the update ran up to the panic"
    );
    assert_eq!(
        map.insert(u64::MAX, 2),
        None,
        "lock released, thread left the map"
    );
}

#[test]
fn a_panic_in_retain_keeps_len_exact() {
    let map = ShardedMap::with_shards(4);
    (0..100u64).for_each(|i| {
        map.insert(i, i);
    });
    let mut seen = 0;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        map.retain(|_, _| {
            seen += 1;
            assert!(seen < 60, "boom");
            false
        })
    }));
    assert!(caught.is_err());
    let mut walked = 0;
    map.for_each(|_, _| walked += 1);
    assert_eq!(map.len(), walked);
    assert_eq!(walked, 41);
}

#[test]
fn closures_may_use_other_maps() {
    let a = ShardedMap::with_shards(2);
    let b = ShardedMap::with_shards(2);
    (0..10u64).for_each(|i| {
        a.insert(i, i);
    });
    a.for_each(|k, v| {
        b.insert(*k, *v * 2);
    });
    assert_eq!(b.len(), 10);
    b.update(&3, |v| a.update(&3, |w| *w += *v));
    assert_eq!(a.get_cloned(&3), Some(9));
}

#[test]
fn send_and_sync_exactly_as_sound() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ShardedMap<String, Vec<u8>>>();
    send_sync::<Builder<String, Vec<u8>>>();
    send_sync::<BuildError>();
    // A value that is Send but not Sync (Cell) makes the map Send but not Sync, as RwLock does.
    fn send<T: Send>() {}
    send::<ShardedMap<u8, std::cell::Cell<u8>>>();
}
