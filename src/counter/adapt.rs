//! The contention rule: when a compact counter stripes and when a striped one doubles its cells.
//!
//! # The rule
//!
//! A thread *probes* on every [`SAMPLE`]-th add it makes (to any counter: a per-thread tick, so
//! the sampling costs the same whatever the values added). A probe watches the word the add just
//! wrote (the compact total, or for a thread that shares a cell the cell's line) for
//! [`PROBE_LOADS`] loads: if another thread writes it meanwhile, the probe *hits*. The counter
//! keeps a score of its last probes (in its state word while compact, in its newest block of
//! cells once striped), and adapts once [`HITS`] of at most [`WINDOW`] consecutive probes have
//! hit; a window that ends with fewer hits starts the score again. So the window is measured in
//! the counter's own sampled adds, not in time.
//!
//! Why this discriminates: a probe hits only if another thread writes the *same* counter within
//! the probe's window (its 512 loads). Two threads hammering one counter do that on most
//! probes; two threads spreading adds over a registry of `m` counters do it on about `k / m` of
//! them, where `k` is how many adds the other thread makes during one window, so four hits in
//! eight probes of one counter is about `70 (k/m)^4` of windows: for example, if `k` were 15,
//! once in about 3 × 10^9 windows at 10 000 counters (the counter module doc's "How it works"
//! gives the same derivation).
//!
//! Under loom the constants are cut down so a model can reach both outcomes in a few adds.

use crate::sync::{with_thread_hints, AtomicU64, Ordering, HINT_WORDS};
use std::hint::black_box;

/// A thread probes on every `SAMPLE`-th add it makes (a power of two).
///
/// A probe makes its [`PROBE_LOADS`] loads whatever it finds, so their wait is spread over
/// `SAMPLE` adds: at 4096 a registry's add takes 1.06x an `AtomicU64`'s time on one thread
/// (`cargo run --release --example counter_loop -- counter` against `-- atomic`), where a probe
/// every 1024th add made it 1.10x and every 8192th gained nothing measurable. The price of the
/// interval is the reaction time: two threads hammering a counter stripe it after about 8 000
/// adds of each thread, well under a millisecond at full speed.
#[cfg(not(any(loom, miri)))]
pub(super) const SAMPLE: u32 = 4096;
/// Under loom every add probes, so two adds per thread can show both outcomes (and under Miri,
/// far slower, so tests that wait for striping end).
#[cfg(any(loom, miri))]
pub(super) const SAMPLE: u32 = 1;

/// Loads a probe makes of the words it watches: longer than a cache line's trip between cores,
/// so another thread's write lands inside it. Plain loads of a line in our cache, no spin hint
/// (a `PAUSE` alone would take a large part of the window on some x86 cores).
#[cfg(all(not(loom), not(miri)))]
pub(super) const PROBE_LOADS: usize = 512;
/// Under Miri: a few loads; its scheduler switches threads often enough to see a writer.
#[cfg(all(not(loom), miri))]
pub(super) const PROBE_LOADS: usize = 8;
/// Under loom one load is the window: loom explores every interleaving around it anyway.
#[cfg(loom)]
pub(super) const PROBE_LOADS: usize = 1;

/// Hits within one window that make the counter adapt.
#[cfg(not(loom))]
pub(super) const HITS: u32 = 4;
/// Under loom: two hits (two threads contending once make one at most).
#[cfg(loom)]
pub(super) const HITS: u32 = 2;

/// Probes per window.
#[cfg(not(loom))]
pub(super) const WINDOW: u32 = 8;
/// Under loom: a window as long as a model's probes.
#[cfg(loom)]
pub(super) const WINDOW: u32 = 8;

/// Entries in a thread's table of counters it has seen striped (`sync`'s hint words): each
/// holds the address of a counter this thread last saw striped, direct-mapped by address. A
/// hint only: a wrong entry (the counter dropped, another compact one at its address) costs one
/// look at the state word, which clears it. The thread's add tick sits beside them.
const HINTS: usize = HINT_WORDS;

/// The hint table's entry for the counter at `addr` (counters are 16-byte aligned).
#[inline(always)]
fn entry(addr: usize) -> usize {
    (addr >> 4) % HINTS
}

/// Whether this thread last saw the counter at `addr` striped: if so its add reads the state
/// first; otherwise it adds to the compact total first and looks at the state after.
#[inline(always)]
pub(super) fn seen_striped(addr: usize) -> bool {
    with_thread_hints(|l| l.words[entry(addr)].get() == addr).unwrap_or(false)
}

/// Notes that the counter at `addr` is striped (or, with `striped` false, that it is not).
#[cold]
#[inline(never)]
pub(super) fn note_striped(addr: usize, striped: bool) {
    let _ = with_thread_hints(|l| {
        let e = &l.words[entry(addr)];
        if striped {
            e.set(addr);
        } else if e.get() == addr {
            e.set(0);
        }
    });
}

/// What one add moves the tick by: `2^32 / SAMPLE`, so the tick wraps to exactly 0 on every
/// [`SAMPLE`]-th add and the test is the add's own zero flag (0 when `SAMPLE` is 1: always 0).
const TICK_STEP: u32 = (u32::MAX / SAMPLE).wrapping_add(1);

/// Counts one add on this thread; true on every [`SAMPLE`]-th: this add should probe.
#[inline(always)]
pub(super) fn tick() -> bool {
    with_thread_hints(|l| {
        let t = l.tick.get().wrapping_add(TICK_STEP);
        l.tick.set(t);
        t == 0
    })
    .unwrap_or(false)
}

/// Whether another thread writes `a` or `b` within [`PROBE_LOADS`] loads, given that they held
/// `a_seen` and `b_seen` (what this thread last wrote or read there).
pub(super) fn others_write(a: &AtomicU64, a_seen: u64, b: &AtomicU64, b_seen: u64) -> bool {
    for _ in 0..PROBE_LOADS {
        // Relaxed: a change is a hint for the contention score; nothing is read through it.
        // `black_box`: without it the compiler may fold the repeated relaxed loads into one,
        // and the window shrinks to nothing.
        let (a_now, b_now) = (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed));
        if black_box(a_now) != a_seen || black_box(b_now) != b_seen {
            return true;
        }
    }
    false
}

/// A score of the last probes: `(probes, hits)` within the current window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) struct Score {
    pub(super) probes: u32,
    pub(super) hits: u32,
}

impl Score {
    /// Bits each field takes when packed (both stay at most [`WINDOW`]).
    pub(super) const BITS: u32 = 5;

    /// Records one probe. Returns the new score and whether the counter should adapt now.
    pub(super) fn record(self, hit: bool) -> (Score, bool) {
        let hits = self.hits + u32::from(hit);
        if hits >= HITS {
            return (Score::default(), true);
        }
        let probes = self.probes + 1;
        if probes >= WINDOW {
            return (Score::default(), false);
        }
        (Score { probes, hits }, false)
    }

    /// The score in `2 * BITS` bits.
    pub(super) fn pack(self) -> u64 {
        u64::from(self.probes) | u64::from(self.hits) << Self::BITS
    }

    /// The score packed by [`pack`](Score::pack) in the low bits of `bits`.
    pub(super) fn unpack(bits: u64) -> Score {
        let mask = (1 << Self::BITS) - 1;
        Score {
            probes: (bits & mask) as u32,
            hits: (bits >> Self::BITS & mask) as u32,
        }
    }
}

const _: () = assert!(WINDOW < 1 << Score::BITS && HITS <= WINDOW && SAMPLE.is_power_of_two());

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn hits_within_a_window_adapt_and_a_quiet_window_starts_again() {
        let mut s = Score::default();
        for _ in 0..HITS - 1 {
            let (next, adapt) = s.record(true);
            assert!(!adapt);
            s = next;
        }
        assert!(s.record(true).1, "the HITS-th hit adapts");
        // Fewer hits than HITS in a whole window: the score starts again.
        let mut s = Score::default();
        for i in 0..WINDOW {
            let (next, adapt) = s.record(i < HITS - 1);
            assert!(!adapt);
            s = next;
        }
        assert_eq!(s, Score::default());
        assert_eq!(
            Score::unpack(Score { probes: 7, hits: 3 }.pack()),
            Score { probes: 7, hits: 3 }
        );
    }

    #[test]
    #[cfg_attr(miri, ignore)] // SAMPLE is 1 under Miri
    fn one_add_in_sample_probes() {
        let probes = (0..SAMPLE * 4).filter(|_| tick()).count();
        assert_eq!(probes, 4);
    }

    #[test]
    fn hints_are_per_address() {
        let (a, b) = (0x1000usize, 0x1000 + 16 * HINTS);
        note_striped(a, true);
        assert!(seen_striped(a));
        assert!(!seen_striped(b), "same entry, other address");
        note_striped(b, false); // not b's entry: a stays
        assert!(seen_striped(a));
        note_striped(a, false);
        assert!(!seen_striped(a));
    }
}
