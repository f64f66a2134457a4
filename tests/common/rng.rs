//! The random choices of the randomised tests: Marsaglia's xorshift64, started from a seed
//! through SplitMix64's finaliser, so neighbouring seeds (rounds, threads) start far apart and a
//! failing run's choices replay from its seed (its threads' interleaving does not).
#![allow(dead_code)] // each binary uses what it needs

/// SplitMix64's finaliser: well-spread bits from a counter or a seed.
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Marsaglia's xorshift64: small, deterministic, good enough to pick among a few choices.
pub struct XorShift(u64);

impl XorShift {
    /// A generator started from `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        // Never 0, which xorshift would keep.
        XorShift(splitmix(seed) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 for an `n` of 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True once in `n` draws, on average.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}
