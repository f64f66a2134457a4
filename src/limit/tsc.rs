//! The time-stamp counter (TSC) as a nanosecond clock: what [`MonotonicClock`] reads on x86-64
//! Linux when the kernel keeps its own time on the TSC.
//!
//! [`MonotonicClock`]: super::MonotonicClock
//!
//! # Why it is safe to use there
//!
//! A TSC is only a clock if it ticks at a constant rate and agrees across cores. Linux checks
//! both before it makes the TSC its clocksource (the boot-time synchronisation check, then a
//! watchdog that demotes it if it drifts), and std's `Instant::now()` on such a machine is
//! itself the TSC, read through the vDSO and scaled. So reading the counter directly inherits
//! exactly the kernel's cross-core guarantee; what this file adds is the scale, measured once
//! per process (below), and a cheaper read (no vDSO call, no sequence lock). Where
//! the kernel uses any other clocksource (a VM with an unstable TSC, `hpet`, `kvm-clock`), or
//! `/sys` cannot be read, [`Tsc::start`] returns `None` and the clock stays on `Instant`:
//! governor's users hit exactly that case with an unconditional TSC clock
//! (boinkor-net/governor#299).
//!
//! # Never ahead of the kernel's clocks
//!
//! A limiter whose clock runs fast admits more than its rate, so the scale is a *lower* bound
//! of nanoseconds per tick, never an estimate. Calibration measures it against two clocks:
//! `Instant` (`CLOCK_MONOTONIC`, which NTP disciplines and may slew) and `CLOCK_MONOTONIC_RAW`
//! (the counter at the rate the kernel measured at boot, never slewed). Each end of the
//! calibration brackets one reading of each clock between two fenced TSC reads, and each scale
//! divides the nanoseconds between the clock's two readings by the *most* ticks that can lie
//! between them. The clock takes the lower of the two scales, and then
//! [`bound::MARGIN_SHIFT`]'s share less, room for a later change in NTP's correction (`ntpd`
//! slews by at most 500 ppm).
//!
//! Calibration is refused, and the clock stays on `Instant`, when the brackets leave more than
//! 0.1% of doubt or the two scales differ by more than 0.1%: a large slew was in progress
//! (chrony slews by up to 8.3% to correct a large offset, after boot or resume), and neither
//! clock can be trusted for the process's life. So the TSC clock runs at most about 0.2% slower
//! than both clocks ran during calibration, never faster: a bucket admits its rate or up to
//! 0.2% less. During a later large slew `Instant` runs fast or slow by the slew, while the TSC
//! clock keeps the hardware's rate.
//!
//! # A counter that jumps
//!
//! Firmware may reset the TSC when a machine sleeps (ACPI S3), and Linux then keeps time across
//! the gap; this clock does not know. A reading below a clock's start by more than
//! [`RESET_TICKS`] (far more than cross-core skew) is taken as such a reset: from then on every
//! TSC clock of the process reads `Instant` (measured from the same moment), for good. Without
//! that, the clock would return to the counter once it climbed past its start again, and jump
//! back by the time the process had run, stalling every limiter that long. A counter reset to a
//! value still above a clock's start, or one that climbs past it before any read, is not seen,
//! and the clock jumps back: servers do not sleep; on machines that do, use
//! `MonotonicClock::std_instant`.
//!
//! # Reads and ordering
//!
//! A read is a bare `RDTSC`, as quanta's (governor's clock) is. Fencing it (`LFENCE; RDTSC`, the
//! kernel's `rdtsc_ordered`) makes it take 13.4 ns instead of 7.6 on the machine of the
//! README's tables (the "clock read" rows of `cargo run --release --example shootout -- --only
//! limit`), where a whole unfenced `try_acquire` takes 20.0 ns; in a request the fenced read
//! also waits for the bucket's last compare-and-swap to retire.
//!
//! Unfenced, a read runs ahead of the instructions before it for as long as the slowest of
//! them takes: a load of a line another core is writing can finish microseconds after the
//! counter was read. So a thread can load a time another thread read, and then read an older
//! one: by up to about 2 µs on the 2-core VMs this crate is measured on (8 threads handing
//! readings through one atomic, as the `clocks_made_at_once_agree...` test in
//! `tests/stress_limit.rs` does without its fence; the repository's JOURNAL.md has the runs), and
//! not once in millions of reads with `LFENCE` before the read. A limiter treats such a reading as
//! it treats another thread's older one (the [`Clock`] contract): it may let through the tokens the
//! difference is worth at its rate, under one token for 2 µs at any rate below 500 000 per second.
//! Where that matters, use `MonotonicClock::std_instant`: the kernel fences its own reads.
//! Calibration fences its reads, since there the order is the measurement.
//!
//! [`Clock`]: super::Clock

use crate::sync::plain::RelaxedUsize;

/// Set once any TSC clock of the process has read the counter [`RESET_TICKS`] below its start:
/// the counter was reset, and no TSC clock trusts it again.
static RESET: RelaxedUsize = RelaxedUsize::new();

/// How far below a clock's start a reading must be to count as a reset rather than another
/// core's counter trailing (2^20 ticks: about 0.3 ms at 3 GHz; the kernel keeps cores' counters
/// far closer than that).
const RESET_TICKS: u64 = 1 << 20;

/// A started TSC clock: its first reading and the process's scale.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tsc {
    /// The counter when the clock was made: its epoch.
    start: u64,
    /// Nanoseconds per tick in 32.32 fixed point: `ns = ticks * mul >> 32`.
    mul: u64,
}

impl Tsc {
    /// A TSC clock starting now, or `None` where the kernel does not keep time on the TSC (and
    /// on every other target, and under loom and Miri), or once the counter was seen reset.
    #[inline]
    pub(super) fn start() -> Option<Tsc> {
        if RESET.get() != 0 {
            return None;
        }
        let mul = imp::scale()?;
        Some(Tsc {
            start: imp::read(),
            mul,
        })
    }

    /// Whether the clocks of the process still trust the counter: no TSC clock has seen it
    /// reset (after which every [`nanos`](Tsc::nanos) returns `None`).
    #[inline]
    pub(super) fn trusted() -> bool {
        RESET.get() == 0
    }

    /// Nanoseconds since [`start`](Tsc::start), or `None` if the counter reads below the
    /// start: another core's counter trailing ours by a few ticks just after `start` (the
    /// kernel tolerates that much skew), or a counter reset by a sleep, after which every call
    /// returns `None` (the module doc). The caller reads `Instant` instead.
    #[inline(always)]
    pub(super) fn nanos(&self) -> Option<u64> {
        self.nanos_at(imp::read(), &RESET)
    }

    /// [`nanos`](Tsc::nanos) for the counter value `counter`, with `reset` as the process's
    /// reset flag (a test passes its own).
    #[inline(always)]
    fn nanos_at(&self, counter: u64, reset: &RelaxedUsize) -> Option<u64> {
        if reset.get() != 0 {
            return None;
        }
        let Some(ticks) = counter.checked_sub(self.start) else {
            if self.start - counter > RESET_TICKS {
                reset.set(1);
            }
            return None;
        };
        // A u64 times a u64 fits a u128; the result fits a u64 for 584 years of nanoseconds.
        Some(((u128::from(ticks) * u128::from(self.mul)) >> 32) as u64)
    }
}

/// The counter and the calibration, on the one target that has them: x86-64 Linux, outside
/// loom models (whose time is not real) and Miri (which has no `RDTSC`).
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(loom), not(miri)))]
mod imp {
    use crate::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// How long calibration waits between its two brackets (one `sleep`, once per process).
    const WINDOW: Duration = Duration::from_millis(1);

    /// The process's scale, calibrated by the first call: `None` where the TSC is not usable.
    pub(super) fn scale() -> Option<u64> {
        static SCALE: OnceLock<Option<u64>> = OnceLock::new();
        *SCALE.get_or_init(calibrate)
    }

    /// Reads the counter. Not fenced: the read may run ahead of the instructions before it by as
    /// long as the slowest of them takes (microseconds for a contended load; see the module
    /// doc), which makes it an older time, never a later one.
    #[inline(always)]
    pub(super) fn read() -> u64 {
        // SAFETY: RDTSC is in the x86-64 baseline and touches no memory.
        unsafe { std::arch::x86_64::_rdtsc() }
    }

    /// Reads the counter after every earlier instruction has finished and before any later one
    /// starts: for calibration, whose brackets must hold the `Instant` reading between them.
    fn read_fenced() -> u64 {
        use std::arch::x86_64::{_mm_lfence, _rdtsc};
        // SAFETY: LFENCE (SSE2) and RDTSC are in the x86-64 baseline; neither touches memory.
        unsafe {
            _mm_lfence();
            let t = _rdtsc();
            _mm_lfence();
            t
        }
    }

    /// Whether the kernel keeps time on the TSC: only then is the counter synchronised across
    /// cores and constant in rate (the kernel checked both and watches them).
    fn kernel_uses_tsc() -> bool {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc")
    }

    /// Nanoseconds of `CLOCK_MONOTONIC_RAW`: the counter at the rate the kernel measured at
    /// boot, never slewed by NTP. `None` if the call fails.
    fn raw_nanos() -> Option<u64> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `timespec` for the call to fill; the clock id is a
        // constant every Linux since 2.6.28 knows (an unknown one is an error, not UB).
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_RAW, &mut ts) } != 0 {
            return None;
        }
        let secs = u64::try_from(ts.tv_sec).ok()?;
        let nanos = u64::try_from(ts.tv_nsec).ok()?;
        secs.checked_mul(1_000_000_000)?.checked_add(nanos)
    }

    /// One reading of `clock` and the counter just before and just after it: the narrowest of
    /// a few tries, so a preemption in one does not widen the bound. `None` if the clock fails.
    fn bracket(clock: &dyn Fn() -> Option<u64>) -> Option<(u64, u64, u64)> {
        let mut best: Option<(u64, u64, u64)> = None;
        for _ in 0..8 {
            let before = read_fenced();
            let at = clock()?;
            let after = read_fenced();
            let width = after.wrapping_sub(before);
            let narrower = match best {
                Some((b, _, a)) => width < a.wrapping_sub(b),
                None => true,
            };
            if narrower {
                best = Some((before, at, after));
            }
        }
        best
    }

    /// Measures the scale over [`WINDOW`] against `Instant` and `CLOCK_MONOTONIC_RAW`, or
    /// `None` if the TSC is not the kernel's clock or the measurement is refused (see the
    /// module doc).
    pub(super) fn calibrate() -> Option<u64> {
        if !kernel_uses_tsc() {
            return None;
        }
        let base = Instant::now();
        let mono = || u64::try_from(base.elapsed().as_nanos()).ok();
        let (m0, r0) = (bracket(&mono)?, bracket(&raw_nanos)?);
        std::thread::sleep(WINDOW);
        let (m1, r1) = (bracket(&mono)?, bracket(&raw_nanos)?);
        let mono = super::bound::scale(m0.0, m0.2, m1.0, m1.2, u128::from(m1.1.checked_sub(m0.1)?));
        let raw = super::bound::scale(r0.0, r0.2, r1.0, r1.2, u128::from(r1.1.checked_sub(r0.1)?));
        super::bound::lower_if_agreed(mono?, raw?)
    }
}

/// Everywhere else: no TSC clock is ever made.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(loom), not(miri))))]
mod imp {
    pub(super) fn scale() -> Option<u64> {
        None
    }

    pub(super) fn read() -> u64 {
        unreachable!("no TSC clock is made on this target")
    }
}

/// The arithmetic of calibration: a scale that is a lower bound, and the pick between two.
/// Pure functions, so they are tested on every target.
#[cfg_attr(
    not(all(target_arch = "x86_64", target_os = "linux", not(loom), not(miri))),
    allow(dead_code) // used by calibration, which only that target has; tested everywhere
)]
mod bound {
    /// The part of the scale taken off for a change in NTP's correction after calibration:
    /// 1/1024, about 977 ppm, beyond `ntpd`'s 500 ppm limit on a slew.
    pub(super) const MARGIN_SHIFT: u32 = 10;

    /// The scale from two brackets `[b0, a0]`, `[b1, a1]` of counter values around two clock
    /// readings `nanos` apart: `nanos` over the most ticks that can separate the readings, less
    /// the margin. `None` when the brackets are wide enough to make it more than 0.1% low, or
    /// nonsensical.
    pub(super) fn scale(b0: u64, a0: u64, b1: u64, a1: u64, nanos: u128) -> Option<u64> {
        let most = a1.checked_sub(b0)?; // the ticks between the readings are at most this
        let least = b1.checked_sub(a0)?; // and at least this
        if least == 0 || nanos == 0 || most.checked_sub(least)? > most / 1000 {
            return None;
        }
        let mul = (nanos << 32) / u128::from(most);
        let mul = u64::try_from(mul).ok().filter(|&m| m > 0)?;
        Some(mul - (mul >> MARGIN_SHIFT))
    }

    /// The lower of the scales measured against `Instant` and the raw clock, or `None` if they
    /// differ by more than 0.1% (a large slew of `Instant` was in progress).
    pub(super) fn lower_if_agreed(mono: u64, raw: u64) -> Option<u64> {
        let (lo, hi) = (mono.min(raw), mono.max(raw));
        (hi - lo <= hi / 1000).then_some(lo)
    }
}

#[cfg(test)]
mod tests {
    use super::bound::{lower_if_agreed, scale, MARGIN_SHIFT};
    use super::*;
    use std::time::Instant;

    /// A reading far below the start is a reset: the clock stays on `Instant` from then on,
    /// rather than jump back to the counter's small values once it passes the start again.
    #[test]
    fn a_reset_counter_is_never_trusted_again() {
        let reset = RelaxedUsize::new();
        let start = 1u64 << 40;
        let tsc = Tsc {
            start,
            mul: 1 << 32, // 1 ns per tick
        };
        assert_eq!(tsc.nanos_at(start + 7, &reset), Some(7));
        assert_eq!(tsc.nanos_at(start - 3, &reset), None, "skew");
        assert_eq!(
            tsc.nanos_at(start + 9, &reset),
            Some(9),
            "skew is not a reset"
        );
        assert_eq!(tsc.nanos_at(5, &reset), None, "reset");
        assert_eq!(
            tsc.nanos_at(start + 9, &reset),
            None,
            "no jump back to 9 ns"
        );
        assert_eq!(reset.get(), 1);
    }

    #[test]
    fn the_scale_is_a_lower_bound_less_the_margin() {
        // 1 000 000 ns over 2 000 000 to 2 000 100 ticks: 0.5 ns per tick at most.
        let mul = scale(100, 150, 2_000_100, 2_000_200, 1_000_000).unwrap();
        let exact = (1_000_000u128 << 32) / 2_000_100;
        assert_eq!(u128::from(mul), exact - (exact >> MARGIN_SHIFT));
        // Converted back: the ticks of the widest case give no more than the nanoseconds.
        assert!((u128::from(2_000_100u64) * u128::from(mul)) >> 32 <= 1_000_000);
        assert!((u128::from(2_000_100u64) * u128::from(mul)) >> 32 >= 998_000);
    }

    #[test]
    fn implausible_brackets_give_no_scale() {
        // (b0, a0, b1, a1, nanos), whether a scale comes out, and why.
        let cases = [
            (
                (100, 150, 1_000, 1_100, 1_000_000),
                false,
                "bracket too wide",
            ),
            (
                (0, 1_500, 1_000_000, 1_001_000, 1_000_000),
                false,
                "0.25% of doubt",
            ),
            (
                (0, 400, 1_000_000, 1_000_400, 1_000_000),
                true,
                "0.08% of doubt",
            ),
            ((100, 150, 90, 95, 1_000_000), false, "counter went back"),
            (
                (100, 150, 2_000_200, 2_000_100, 1_000_000),
                false,
                "an inverted bracket",
            ),
            ((100, 150, 2_000_100, 2_000_200, 0), false, "no time passed"),
        ];
        for ((b0, a0, b1, a1, nanos), some, why) in cases {
            assert_eq!(scale(b0, a0, b1, a1, nanos).is_some(), some, "{why}");
        }
    }

    /// The TSC clock is used only where the kernel keeps time on the TSC, and there a
    /// calibration succeeds (one of ten, 1 ms each: each may be refused on a busy machine or
    /// during a slew, which is what the process-wide scale would then do, safely).
    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux", not(loom), not(miri)))]
    fn the_tsc_is_used_where_the_kernel_uses_it() {
        let path = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
        let kernel = std::fs::read_to_string(path).is_ok_and(|s| s.trim() == "tsc");
        if Tsc::start().is_some() {
            assert!(
                kernel,
                "the TSC clock is used where the kernel does not keep time on it"
            );
        }
        let calibrated = (0..10).any(|_| imp::calibrate().is_some());
        assert_eq!(calibrated, kernel);
    }

    #[test]
    fn scales_that_disagree_are_refused_and_the_lower_is_kept() {
        assert_eq!(lower_if_agreed(1_000_000, 999_500), Some(999_500));
        assert_eq!(lower_if_agreed(999_500, 1_000_000), Some(999_500));
        assert_eq!(
            lower_if_agreed(1_000_000, 998_000),
            None,
            "0.2% apart: a slew"
        );
    }

    /// Over a sleep, the TSC clock's elapsed time is never more than `Instant`'s around it,
    /// and at most about 0.2% less (checked on the closest of five tries, since a preemption
    /// between the two clocks' reads widens the gap on a busy machine).
    #[test]
    fn the_tsc_clock_never_runs_ahead_of_instant() {
        let Some(tsc) = Tsc::start() else {
            return; // not the kernel's clock here: nothing to compare
        };
        let mut closest = 0.0f64;
        for _ in 0..5 {
            let i0 = Instant::now();
            let t0 = tsc.nanos().expect("the counter read below its start");
            std::thread::sleep(std::time::Duration::from_millis(20));
            let t1 = tsc.nanos().expect("the counter read below its start");
            let i1 = Instant::now();
            let real = i1.duration_since(i0).as_nanos() as u64;
            assert!(t1 - t0 <= real, "ahead: {} ns against {real}", t1 - t0);
            closest = closest.max((t1 - t0) as f64 / real as f64);
        }
        assert!(
            closest > 0.997,
            "the TSC clock ran {closest} of Instant's speed"
        );
    }
}
