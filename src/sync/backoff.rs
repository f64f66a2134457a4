//! The bounded spin that blocking waits try before they park (the channel's waiters and the
//! semaphore's line): 127 `spin_loop` hints, then a few yields, and 896 more hints for a waiter
//! next in line for a hand-off ([`spin_on`]); and the pause a lock-free claim takes after losing
//! a race.
//!
//! The spin is the same length however many threads the process has, and with one CPU it only
//! yields, because spinning there waits on a thread that cannot run until we stop.

use super::{cpus, spin_loop, yield_now};

/// Spin steps with more than one CPU: between tries `1 << step` hints, `step < SPIN_STEPS`.
#[cfg(not(loom))]
const SPIN_STEPS: u32 = 7;
/// Rounds of [`spin_on`]: 14 of 64 hints, a try after each, so a change is seen within about
/// half a microsecond.
#[cfg(not(loom))]
const LONG_ROUNDS: u32 = 14;
/// Yields after the spin (the only retries with one CPU).
#[cfg(not(loom))]
const YIELDS: u32 = 3;
// Under loom a retry loop only multiplies the interleavings; the park path is what needs
// modelling, so loom skips straight to it.
#[cfg(loom)]
const SPIN_STEPS: u32 = 0;
#[cfg(loom)]
const LONG_ROUNDS: u32 = 0;
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

/// The long spin that follows [`backoff`] for a waiter that one change of another thread will serve
/// (the semaphore's front waiter; a channel's, where both sides wait by turns), whose parking would
/// make that change wait for a wake-up: tens of microseconds on a VM, whose idle vCPU the host must
/// schedule again. [`LONG_ROUNDS`] rounds of 64 hints, a try after each. With `backoff`'s, 1 023
/// hints: about 9 µs where a `spin_loop` hint takes 9 ns. None with one CPU. The callers let one
/// waiter at a time spin so, whatever the number of threads. (A yield after each round, so that a
/// thread waited for that waits for a CPU would get one, measured slower for the semaphore's
/// hand-over and no better with 4 threads on 2 cores.)
pub(crate) fn spin_on<R>(mut attempt: impl FnMut() -> Option<R>) -> Option<R> {
    let rounds = if cpus() > 1 { LONG_ROUNDS } else { 0 };
    for _ in 0..rounds {
        for _ in 0..64 {
            spin_loop();
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
