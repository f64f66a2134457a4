//! The bounded spin that blocking waits try before they park (the channel's waiters and the
//! semaphore's line): 127 `spin_loop` hints, then a few yields, and 896 more hints for a waiter
//! next in line for a hand-off ([`spin_on`]); and the pause a lock-free claim takes after losing
//! a race.
//!
//! The spin is the same length however many threads the process has, and with one CPU it only
//! yields, because spinning there waits on a thread that cannot run until we stop.

use super::{cpus, spin_loop, yield_now};

/// Spin steps of [`backoff`] with more than one CPU: between tries `1 << step` hints,
/// `step < SPIN_STEPS` (127 hints in all).
#[cfg(not(loom))]
const SPIN_STEPS: u32 = 7;
/// Hints between two tries of [`backoff_even`] and [`spin_on`]: a change they wait for is seen
/// within about 70 ns where a hint takes 9 ns.
const EVEN_HINTS: u32 = 8;
/// Rounds of [`backoff_even`]: 16 of [`EVEN_HINTS`], [`backoff`]'s 127 hints or so.
#[cfg(not(loom))]
const EVEN_ROUNDS: u32 = 16;
/// Rounds of [`spin_on`]: 112 of [`EVEN_HINTS`], 896 hints.
#[cfg(not(loom))]
const LONG_ROUNDS: u32 = 112;
/// Yields after the spin (the only retries with one CPU).
#[cfg(not(loom))]
const YIELDS: u32 = 3;
// Under loom a retry loop only multiplies the interleavings; the park path is what needs
// modelling, so loom skips straight to it.
#[cfg(loom)]
const SPIN_STEPS: u32 = 0;
#[cfg(loom)]
const EVEN_ROUNDS: u32 = 0;
#[cfg(loom)]
const LONG_ROUNDS: u32 = 0;
#[cfg(loom)]
const YIELDS: u32 = 0;

/// Retries `attempt` with growing pauses between tries until it returns `Some`; `None` once the
/// spin and the yields are spent (the caller then parks). The caller has already tried once.
pub(crate) fn backoff<R>(mut attempt: impl FnMut() -> Option<R>) -> Option<R> {
    spin(&mut attempt).or_else(|| yields(attempt))
}

/// [`backoff`] without the yields: for a waiter that the threads it would yield to cannot
/// serve (the semaphore's waiters far back in line). None with one CPU.
pub(crate) fn spin<R>(mut attempt: impl FnMut() -> Option<R>) -> Option<R> {
    let steps = if cpus() > 1 { SPIN_STEPS } else { 0 };
    for step in 0..steps {
        for _ in 0..1u32 << step {
            spin_loop();
        }
        if let Some(r) = attempt() {
            return Some(r);
        }
    }
    None
}

/// [`backoff`] at an even pace: a try every [`EVEN_HINTS`] hints for about as long, then the
/// yields. For a waiter whose change is likely to come within that spin (the semaphore's front
/// waiter, whose holder may release at once), which `backoff`'s doubling gaps would see up to
/// as late again as it came: a grant a few hundred nanoseconds in, seen up to 500 ns later.
pub(crate) fn backoff_even<R>(mut attempt: impl FnMut() -> Option<R>) -> Option<R> {
    spin_evenly(EVEN_ROUNDS, &mut attempt).or_else(|| yields(attempt))
}

/// The long spin that follows [`backoff`] or [`backoff_even`] for a waiter that one change of
/// another thread will serve (the semaphore's front waiter; a channel's, where both sides wait by
/// turns), whose parking would make that change wait for a wake-up: tens of microseconds on a VM,
/// whose idle vCPU the host must schedule again. [`LONG_ROUNDS`] rounds of [`EVEN_HINTS`] hints,
/// a try after each: 896 hints, about 8 µs where a `spin_loop` hint takes 9 ns. None with one
/// CPU. The callers let one waiter at a time spin so, whatever the number of threads. The yields
/// come before it, not after: a thread waited for that shares our CPU gets it after about a
/// microsecond, not nine.
pub(crate) fn spin_on<R>(mut attempt: impl FnMut() -> Option<R>) -> Option<R> {
    spin_evenly(LONG_ROUNDS, &mut attempt)
}

/// `rounds` rounds of [`EVEN_HINTS`] hints and a try (none with one CPU).
fn spin_evenly<R>(rounds: u32, attempt: &mut impl FnMut() -> Option<R>) -> Option<R> {
    let rounds = if cpus() > 1 { rounds } else { 0 };
    for _ in 0..rounds {
        for _ in 0..EVEN_HINTS {
            spin_loop();
        }
        if let Some(r) = attempt() {
            return Some(r);
        }
    }
    None
}

/// [`YIELDS`] yields, a try after each.
// Under loom `YIELDS` is 0, so the range is empty on purpose.
#[cfg_attr(loom, allow(clippy::reversed_empty_ranges))]
fn yields<R>(mut attempt: impl FnMut() -> Option<R>) -> Option<R> {
    for _ in 0..YIELDS {
        yield_now();
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
