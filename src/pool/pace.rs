//! Pacing of the passes over every cache the pool has made: a get that found its cache and the
//! store empty looks for objects other caches hold, and a put that found the budget full looks
//! for reservations that hold no object. Each pass costs a load or two per cache, microseconds
//! once a thousand threads have used the pool, so a thread whose pass found nothing skips its
//! next few of the same kind while nothing of its own has changed.

use super::{Tally, LOOK_CACHES, MAX_SKIPPED_LOOKS};

/// Which pass: each keeps its pacing in its half of the thread's pacing word.
#[derive(Clone, Copy, Debug)]
pub(super) enum Pass {
    /// A get's look for objects cached elsewhere.
    Get = 0,
    /// A put's look for reservations that hold no object.
    Put = 32,
}

/// Bits of a half-word that hold a snapshot of the events count; the skips left sit above.
const SNAPSHOT: u32 = 26;

/// Runs `look` (a pass over the `made()` caches the pool has made) unless this thread's last
/// pass of the same kind found nothing and `events` (the thread's hits for a get, its kept
/// returns for a put) has not moved since. A pass that found nothing skips the thread's next
/// `⌈made / LOOK_CACHES⌉ - 1` passes of its kind (at most [`MAX_SKIPPED_LOOKS`]) while `events`
/// stays put, so a thread whose gets keep missing (it consumes its objects), or whose puts keep
/// finding the budget full, pays about `LOOK_CACHES` caches' worth of pass each time, however
/// many threads used the pool. A pool of at most `LOOK_CACHES` caches (8 for each range of 8
/// thread slots that used it: threads of slot index below 64, say) never skips. A skipped pass
/// returns false, as one that found nothing.
///
/// `dry` and `events` are the calling thread's cache's words (or the cacheless threads' shared
/// ones, where a lost update only moves the pacing); `dry` packs, in `pass`'s half, the skips
/// left over the low bits of `events` when they were set. A thread that takes a cache over
/// clears its `dry` (`Section::claim`): the pacing is the last owner's.
pub(super) fn look_elsewhere(
    dry: &Tally,
    pass: Pass,
    events: &Tally,
    made: impl FnOnce() -> usize,
    look: impl FnOnce() -> bool,
) -> bool {
    let shift = pass as u32;
    let word = dry.get();
    let half = (word >> shift) as u32;
    let seen = events.get() as u32 & ((1 << SNAPSHOT) - 1);
    let set = |skip: u32| {
        let half = u64::from(skip << SNAPSHOT | seen);
        dry.set(word & !(u64::from(u32::MAX) << shift) | half << shift);
    };
    let skip = half >> SNAPSHOT;
    if skip > 0 && half & ((1 << SNAPSHOT) - 1) == seen {
        set(skip - 1);
        return false;
    }
    let found = look();
    set(match found {
        true => 0,
        false => (made().div_ceil(LOOK_CACHES) - 1).min(MAX_SKIPPED_LOOKS) as u32,
    });
    found
}

const _: () = assert!(MAX_SKIPPED_LOOKS < 1 << (32 - SNAPSHOT));
