//! [`Snapshot`]: one version of a map, kept alive as long as the snapshot is.

use super::version::Version;
use crate::map::FastRandomState;
use crate::sync::Arc;
use std::collections::hash_map;
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;

/// An immutable view of one version of a [`CowMap`](super::CowMap): later writes do not change
/// it. Dereferences to the `HashMap`, so every read method of `HashMap` works on it.
///
/// # When to use
/// Several reads that must agree with each other (a check and then a use), iteration, or
/// handing a consistent view to another thread or task.
///
/// # When not to use
/// Keeping one for long: it keeps its version alive (one old version per snapshot) after
/// writes replace it. Hold it for an operation, not for the program's life.
///
/// # Examples
/// ```
/// let map = thrifty::map::CowMap::from_iter([("min", 1), ("max", 9)]);
/// let snap = map.snapshot();
/// map.update(|m| { m.insert("min", 5); m.insert("max", 6); });
/// assert!(snap["min"] <= snap["max"]); // both from the same version
/// let mut keys: Vec<_> = snap.keys().copied().collect();
/// keys.sort();
/// assert_eq!(keys, ["max", "min"]);
/// ```
///
/// # Allocation
/// Nothing to take, clone or read. Dropping the last holder of a replaced version frees that
/// version (the whole map).
///
/// # Cost
/// Taking one: a hazard slot claimed and freed plus one reference-count increment (from a
/// [`Reader`](super::Reader): the increment only). Cloning: one increment; dropping: one
/// decrement. Reads through it are plain `HashMap` reads.
pub struct Snapshot<K, V, S = FastRandomState> {
    version: Arc<Version<K, V, S>>,
}

impl<K, V, S> Snapshot<K, V, S> {
    pub(super) fn new(version: Arc<Version<K, V, S>>) -> Self {
        Self { version }
    }

    /// This version's number: 0 for the map's first, one more per write.
    pub fn version(&self) -> u64 {
        self.version.seq
    }
}

impl<K, V, S> Deref for Snapshot<K, V, S> {
    type Target = HashMap<K, V, S>;

    #[inline]
    fn deref(&self) -> &HashMap<K, V, S> {
        self.version.map()
    }
}

impl<'a, K, V, S> IntoIterator for &'a Snapshot<K, V, S> {
    type Item = (&'a K, &'a V);
    type IntoIter = hash_map::Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.version.map().iter()
    }
}

impl<K, V, S> Clone for Snapshot<K, V, S> {
    fn clone(&self) -> Self {
        Self {
            version: self.version.clone(),
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for Snapshot<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version.seq)
            .field("map", self.version.map())
            .finish()
    }
}
