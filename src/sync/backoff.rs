//! The bounded spin that blocking waits try before they park (the channel's waiters and the
//! semaphore's line): 127 `spin_loop` hints, then a few yields; and the pause a lock-free claim
//! takes after losing a race.
//!
//! The spin is the same length however many threads the process has, and with one CPU it only
//! yields, because spinning there waits on a thread that cannot run until we stop.

use super::{cpus, spin_loop, yield_now};

/// Spin steps with more than one CPU: between tries `1 << step` hints, `step < SPIN_STEPS`.
#[cfg(not(loom))]
const SPIN_STEPS: u32 = 7;
/// Yields after the spin (the only retries with one CPU).
#[cfg(not(loom))]
const YIELDS: u32 = 3;
// Under loom a retry loop only multiplies the interleavings; the park path is what needs
// modelling, so loom skips straight to it.
#[cfg(loom)]
const SPIN_STEPS: u32 = 0;
#[cfg(loom)]
const YIELDS: u32 = 0;

/// Retries `attempt` with growing pauses between tries until it returns `Some`; `None` once the
/// spin and the yields are spent (the caller then parks). The caller has already tried once.
pub(crate) fn backoff<R>(mut attempt: impl FnMut() -> Option<R>) -> Option<R> {
    let steps = if cpus() > 1 { SPIN_STEPS } else { 0 };
    for round in 0..steps + YIELDS {
        if round < steps {
            for _ in 0..1u32 << round {
                spin_loop();
            }
        } else {
            yield_now();
        }
        if let Some(r) = attempt() {
            return Some(r);
        }
    }
    None
}

/// After losing a compare-and-swap race: `1 << step` spin hints, doubling up to 64 as the
/// caller keeps losing (it starts `step` at 0 for each operation), so the winners' cache line
/// settles before the next try. Under loom it does nothing: the retry is what a model needs.
#[inline(always)]
pub(crate) fn contention_pause(step: &mut u32) {
    #[cfg(not(loom))]
    {
        for _ in 0..1u32 << *step {
            spin_loop();
        }
        if *step < 6 {
            *step += 1;
        }
    }
    #[cfg(loom)]
    let _ = step;
}
