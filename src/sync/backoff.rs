//! The bounded spin that blocking waits try before they park (the channel's waiters and the
//! semaphore's line): 127 `spin_loop` hints, then a few yields, or 1 023 hints for a waiter next
//! in line for a hand-off ([`backoff_front`]); and the pause a lock-free claim takes after
//! losing a race.
//!
//! The spin is the same length however many threads the process has, and with one CPU it only
//! yields, because spinning there waits on a thread that cannot run until we stop.

use super::{cpus, spin_loop, yield_now};

/// Spin rounds with more than one CPU: before the try of round `r`, `1 << min(r, 6)` hints, so
/// 1, 2, 4 ... 64 (127 in all), and 64 a round after that.
#[cfg(not(loom))]
const SPIN_STEPS: u32 = 7;
/// Spin rounds for [`backoff_front`]: the plain 7 and 14 of 64 hints, 1 023 hints in all; a
/// try at least every 64 hints, so a hand-off is seen within about half a microsecond.
#[cfg(not(loom))]
const FRONT_SPIN_STEPS: u32 = 21;
/// Yields after the spin (the only retries with one CPU).
#[cfg(not(loom))]
const YIELDS: u32 = 3;
// Under loom a retry loop only multiplies the interleavings; the park path is what needs
// modelling, so loom skips straight to it.
#[cfg(loom)]
const SPIN_STEPS: u32 = 0;
#[cfg(loom)]
const FRONT_SPIN_STEPS: u32 = 0;
#[cfg(loom)]
const YIELDS: u32 = 0;

/// Retries `attempt` with growing pauses between tries until it returns `Some`; `None` once the
/// spin and the yields are spent (the caller then parks). The caller has already tried once.
pub(crate) fn backoff<R>(attempt: impl FnMut() -> Option<R>) -> Option<R> {
    spin_then_yield(SPIN_STEPS, attempt)
}

/// [`backoff`] with a longer spin, for a waiter whom the next hand-off serves (the semaphore's
/// front waiter): its wait is the holder's, and parking would make the hand-off a wake-up, which
/// costs tens of microseconds on a VM, whose idle vCPU the host must schedule again. The spin is
/// about 9 µs where a `spin_loop` hint takes 9 ns; one waiter spins so, whatever the number of
/// threads.
pub(crate) fn backoff_front<R>(attempt: impl FnMut() -> Option<R>) -> Option<R> {
    spin_then_yield(FRONT_SPIN_STEPS, attempt)
}

/// The loop of [`backoff`] and [`backoff_front`]: `steps` rounds of spins doubling up to 64
/// hints (none with one CPU), then the yields.
fn spin_then_yield<R>(steps: u32, mut attempt: impl FnMut() -> Option<R>) -> Option<R> {
    let steps = if cpus() > 1 { steps } else { 0 };
    for round in 0..steps + YIELDS {
        if round < steps {
            for _ in 0..1u32 << round.min(6) {
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
