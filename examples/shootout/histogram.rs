//! Tails: a histogram of nanosecond values that lives on the stack (no allocation inside a timed
//! round), for the tables that print percentiles (the semaphore's waits, a channel's latency).

/// Nanoseconds as microseconds, with three significant figures or fewer.
pub fn fmt_us(ns: u64) -> String {
    let us = ns as f64 / 1e3;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 100.0 {
        format!("{us:.1} µs")
    } else {
        format!("{us:.0} µs")
    }
}

/// Buckets per power of two, as a power of two: 32.
const SUB: u32 = 5;
const BUCKETS: usize = ((64 - SUB as usize) + 1) << SUB;

/// Nanoseconds in log-linear buckets: exact below 32, then 32 buckets per power of two (each
/// under 1/32 of its value wide), plus the exact maximum. On the stack: no allocation.
pub struct Histogram {
    counts: [u64; BUCKETS],
    /// Values recorded.
    pub total: u64,
    /// The largest value recorded.
    pub max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: [0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < 1 << SUB {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        (((e - SUB + 1) as usize) << SUB) + ((v >> (e - SUB)) as usize & ((1 << SUB) - 1))
    }

    /// The largest value that falls in bucket `i`.
    fn upper(i: usize) -> u64 {
        if i < 1 << SUB {
            return i as u64;
        }
        let e = (i >> SUB) as u32 + SUB - 1;
        let sub = (i & ((1 << SUB) - 1)) as u128;
        let next = ((1 << SUB) + sub + 1) << (e - SUB);
        u64::try_from(next - 1).unwrap_or(u64::MAX)
    }

    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The upper edge of the bucket holding the `q` quantile (never above the maximum).
    pub fn quantile(&self, q: f64) -> u64 {
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }
}
