//! The maps' default hasher: foldhash's fast hash, seeded at random per map.

use std::hash::{BuildHasher, Hasher};

/// Builds [`FastHasher`]s with a random seed: the default `S` of the maps in this module.
///
/// It is foldhash's `fast::RandomState`: a few instructions for an integer key and a quality
/// that hashbrown's probing needs, seeded from process-wide randomness mixed with a per-instance
/// value, so two maps hash differently and an outsider cannot predict a map's hash.
///
/// # When to use
/// Keys the program controls or trusts (integers, internal ids, names from a config file): it
/// is the default, so a map built with `new` already uses it.
///
/// # When not to use
/// When keys come from an adversary who can observe timing (request headers, user names on a
/// public service) and a flood of colliding keys would hurt: foldhash is not designed to resist
/// HashDoS. Pass std's SipHash instead, at a higher cost per hash:
/// `ShardedMap::with_hasher(std::hash::RandomState::new())`.
///
/// # Examples
/// ```
/// use std::hash::BuildHasher;
/// use thrifty::map::FastRandomState;
///
/// let s = FastRandomState::default();
/// assert_eq!(s.hash_one(42u64), s.hash_one(42u64));
/// ```
///
/// # Allocation and cost
/// No allocation: the state is a few words inside the map (but for the process's first `new`,
/// where foldhash seeds its process-wide randomness: one allocation, once). `new` reads that
/// randomness once per state; each hash is a few instructions for an integer key.
#[derive(Clone, Debug, Default)]
pub struct FastRandomState(foldhash::fast::RandomState);

impl FastRandomState {
    /// A state with a fresh random seed.
    pub fn new() -> Self {
        Self::default()
    }
}

impl BuildHasher for FastRandomState {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0.build_hasher())
    }
}

/// The hasher [`FastRandomState`] builds (foldhash's fast hasher).
///
/// Built fresh for each hash, a few words on the stack. Hashers from one state agree;
/// another state has another seed. It appears only as [`FastRandomState`]'s `Hasher`; use it
/// directly only to hash a key the way a map does.
///
/// # Examples
/// ```
/// use std::hash::{BuildHasher, Hash, Hasher};
/// use thrifty::map::FastRandomState;
///
/// let state = FastRandomState::new();
/// let mut h = state.build_hasher();
/// "key".hash(&mut h);
/// assert_eq!(h.finish(), state.hash_one("key"));
/// ```
///
/// # Allocation and cost
/// No allocation; a few words on the stack and a few instructions per integer key.
#[derive(Clone)]
pub struct FastHasher(foldhash::fast::FoldHasher<'static>);

impl std::fmt::Debug for FastHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastHasher").finish_non_exhaustive()
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.finish()
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes)
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0.write_u8(i)
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.0.write_u16(i)
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0.write_u32(i)
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0.write_u64(i)
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.0.write_u128(i)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0.write_usize(i)
    }
}
