//! Asymmetric fences: a nearly free *light* fence for a path that runs millions of times a
//! second, paired with an expensive [`heavy`] fence for a path that runs rarely.
//!
//! The pattern they serve is Dekker's: one side stores a flag and then loads the other's, and
//! the two must never both read the old value. That needs a store-load fence on *both* sides,
//! and on x86-64 a full fence (`mfence` or a locked instruction) costs more than the rest of a
//! pool's get and put together (`bash scripts/instructions.sh` shows `lockfree-object-pool`,
//! whose get takes one, fewer instructions and more time per get+put). Linux's
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` moves that cost to the rare side: it makes
//! every thread of the process that is running execute a full fence before it returns, so the
//! frequent side only has to keep the compiler from reordering (a compiler fence). This is the
//! scheme of folly's `asymmetricLightBarrier`/`asymmetricHeavyBarrier` and of userspace RCU.
//!
//! Where `membarrier` is missing (other systems, a kernel or sandbox without it, Miri, loom), or
//! the environment says `THRIFTY_MEMBARRIER=0` when the first pool is built, both sides take a real
//! `fence(SeqCst)`: correct everywhere, slower on the frequent side. Loom models that symmetric
//! form, which is the same protocol with the heavy fence's effect written as an ordinary fence.
//!
//! Contract: for a frequent side `A: store X; light(); load Y` and a rare side
//! `B: store Y; heavy(); load X`, at least one of the two loads sees the other side's store.

use super::{fence, Ordering};

/// The heavy side is `membarrier`, the light side a compiler fence.
#[cfg(all(target_os = "linux", not(loom), not(miri)))]
const ASYMMETRIC: usize = 1;
/// Both sides are `fence(SeqCst)`.
const SYMMETRIC: usize = 2;

/// Which scheme this process uses: 0 until [`init`] has run, then [`ASYMMETRIC`] or
/// [`SYMMETRIC`], never changed again.
#[cfg(all(target_os = "linux", not(loom), not(miri)))]
static MODE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Chooses the scheme, once per process; call it before either side can run (a pool calls it
/// when it is built). Cheap after the first call.
pub(crate) fn init() {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    {
        // Relaxed: `MODE` is written once, before any fence pair that depends on it can run
        // (the caller builds its structure after this returns and publishes it to other threads
        // through a synchronising operation, which carries this store along).
        if MODE.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            let mode = if membarrier_wanted() && membarrier::register() {
                ASYMMETRIC
            } else {
                SYMMETRIC
            };
            // Several threads may race here; they all compute the same answer.
            MODE.store(mode, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Whether the environment leaves `membarrier` on: anything but `THRIFTY_MEMBARRIER=0`.
/// Read once, by the first [`init`].
#[cfg(all(target_os = "linux", not(loom), not(miri)))]
fn membarrier_wanted() -> bool {
    std::env::var_os("THRIFTY_MEMBARRIER").map_or(true, |v| v != "0")
}

/// Whether the light fence is only a compiler fence in this process; final once [`init`] returned, so
/// a structure built after `init` may keep a copy and pass it to [`light_as`].
#[inline(always)]
pub(crate) fn asymmetric() -> bool {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    {
        // Relaxed: see `init`; the value is final before any caller can get here.
        MODE.load(std::sync::atomic::Ordering::Relaxed) == ASYMMETRIC
    }
    #[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
    {
        false
    }
}

/// The frequent side's fence: a compiler fence where [`heavy`] is `membarrier`, else a full
/// fence. The hot paths use [`light_as`] or [`light_fast`]; this reads the scheme itself.
#[cfg(test)]
pub(crate) fn light() {
    if asymmetric() {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        // SeqCst: as in `light_as`.
        fence(Ordering::SeqCst);
    }
}

/// The frequent side's fence, with the scheme given: `asymmetric` is a copy of [`asymmetric`]
/// taken after [`init`], kept where the caller's hot path already reads (one load fewer than
/// reading the scheme here): a compiler fence where [`heavy`] is `membarrier`, else a full
/// fence.
#[inline(always)]
pub(crate) fn light_as(asymmetric: bool) {
    if asymmetric {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        // SeqCst: the store-load order of Dekker's pattern; pairs with the SeqCst fence in
        // `heavy`.
        fence(Ordering::SeqCst);
    }
}

/// The frequent side's fence for a hot path that has already checked, from a copy taken after
/// [`init`], that [`light_fast_suffices`]: on Linux outside loom and Miri, a compiler fence,
/// valid only after that check (which there means [`heavy`] is `membarrier`); on other targets,
/// and under loom and Miri (which model no `membarrier`), a full fence, so they check the hot
/// paths as they are.
#[inline(always)]
pub(crate) fn light_fast() {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
    // SeqCst: as in `light_as`.
    #[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
    fence(Ordering::SeqCst);
}

/// Whether [`light_fast`] pairs with [`heavy`] in this process: where it is a compiler fence,
/// only if [`heavy`] is `membarrier`; elsewhere it is a full fence and always does. Final once
/// [`init`] returned.
pub(crate) fn light_fast_suffices() -> bool {
    asymmetric() || cfg!(not(all(target_os = "linux", not(loom), not(miri))))
}

/// The rare side's fence: `membarrier` (every running thread of the process passes a full
/// fence before it returns), else a full fence. Costs a system call and an interrupt per CPU
/// running this process's threads: microseconds, so keep it off any per-operation path.
pub(crate) fn heavy() {
    if asymmetric() {
        #[cfg(all(target_os = "linux", not(loom), not(miri)))]
        membarrier::expedited();
    } else {
        // SeqCst: pairs with the SeqCst fence in `light`.
        fence(Ordering::SeqCst);
    }
}

#[cfg(all(target_os = "linux", not(loom), not(miri)))]
mod membarrier {
    // From linux/membarrier.h.
    const CMD_QUERY: libc::c_long = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    fn call(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: `membarrier(cmd, flags = 0, cpu_id = 0)` reads and writes no memory of ours;
        // an unknown command or a kernel without the call returns -1.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        }
    }

    /// Registers the process for private expedited barriers; false if the kernel (or a
    /// sandbox's system-call filter) does not offer them.
    pub(super) fn register() -> bool {
        let supported = call(CMD_QUERY);
        supported >= 0
            && supported & CMD_PRIVATE_EXPEDITED != 0
            && call(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
    }

    /// A full fence on every running thread of this process.
    pub(super) fn expedited() {
        // Registration succeeded, so the kernel guarantees this call succeeds; if it ever did
        // not, the light side would be unprotected, so stop rather than go on unsound.
        assert!(
            call(CMD_PRIVATE_EXPEDITED) == 0,
            "thrifty: membarrier failed after a successful registration"
        );
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::CachePadded;
    use std::sync::atomic::{
        AtomicUsize,
        Ordering::{Relaxed, SeqCst},
    };

    #[test]
    fn init_chooses_a_scheme_and_both_fences_run() {
        init();
        init();
        light();
        heavy();
        #[cfg(all(target_os = "linux", not(miri)))]
        assert_ne!(MODE.load(Relaxed), 0, "init chose nothing");
    }

    /// Dekker's pattern with the two fences, many times over: the two loads never both miss
    /// the other side's store. The two threads live through a batch of rounds and meet at a
    /// barrier before each, so that their stores and loads overlap (threads spawned per round
    /// run one after the other). Batches run until enough rounds overlapped or a bound is
    /// reached: threads that share one CPU (a loaded machine) never overlap, and the test then
    /// says it tested little. With no hardware fence on either side, overlapping rounds in
    /// which both loads miss are common on x86-64.
    #[test]
    fn the_two_loads_never_both_miss() {
        init();
        let (rounds, batches) = if cfg!(miri) { (20, 1) } else { (10_000, 20) };
        // Threads kept apart (one CPU, a loaded machine) overlap seldom, and each of their
        // rounds waits out a spin at the barrier: a few seconds of batches, then say so.
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut overlapped = 0;
        for _ in 0..batches {
            let (hits, missed) = dekker_rounds(rounds);
            assert_eq!(
                missed, 0,
                "both loads missed the other side's store in {missed} of {rounds} rounds"
            );
            overlapped += hits;
            if overlapped >= 200 || std::time::Instant::now() > give_up {
                break;
            }
        }
        if overlapped < 200 && !cfg!(miri) {
            crate::at_once::not_tested(&format!(
                "sync::fence: the two sides overlapped in {overlapped} Dekker rounds, not 200"
            ));
        }
    }

    /// `rounds` rounds of Dekker's pattern, light side against heavy side: how many rounds
    /// both loads saw the other side's store, and how many both missed it.
    fn dekker_rounds(rounds: usize) -> (usize, usize) {
        // Round `r` stores `r`: a load of `r` or more saw the other side's store of this round.
        // Each word on a line of its own, as the pool's are.
        let (x, y) = (
            CachePadded::new(AtomicUsize::new(0)),
            CachePadded::new(AtomicUsize::new(0)),
        );
        let arrived = CachePadded::new(AtomicUsize::new(0));
        // Both threads at the barrier before round `r` (`arrived` reaches `2 * r`); then one
        // side waits a few spins, a different number each round (odd rounds the light side,
        // even ones the heavy side): the last to arrive leaves the barrier first, and the
        // offsets let the two sides' windows meet.
        let meet = |r: usize, light_side: bool| {
            arrived.fetch_add(1, SeqCst);
            let mut spins = 0u32;
            while arrived.load(Relaxed) < 2 * r {
                spins += 1;
                if spins % 4096 == 0 {
                    std::thread::yield_now(); // the other side may be descheduled
                } else {
                    std::hint::spin_loop();
                }
            }
            if light_side == (r % 2 == 1) {
                (0..r / 2 % 32).for_each(|_| std::hint::spin_loop());
            }
        };
        let side = |mine: &AtomicUsize, theirs: &AtomicUsize, light_side: bool| {
            (1..=rounds)
                .map(|r| {
                    meet(r, light_side);
                    mine.store(r, Relaxed);
                    if light_side {
                        light();
                    } else {
                        heavy();
                    }
                    theirs.load(Relaxed) >= r
                })
                .collect::<Vec<bool>>()
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| side(&x, &y, true));
            let b = s.spawn(|| side(&y, &x, false));
            (a.join().unwrap(), b.join().unwrap())
        });
        let count = |saw: bool| {
            a.iter()
                .zip(&b)
                .filter(|&(&a, &b)| a == saw && b == saw)
                .count()
        };
        (count(true), count(false))
    }
}
