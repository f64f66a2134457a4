//! A condition variable that works with the shim's [`Mutex`](super::Mutex) in both builds.
//!
//! The guard goes in by value and comes back, the shape loom's `Condvar` needs; in a normal
//! build this wraps `parking_lot::Condvar`, which never allocates to wait or notify (parking_lot
//! keeps its per-thread parking data itself). Under loom a timed wait is an untimed one: loom
//! cannot model time, so models must not rely on a timeout firing.

use super::MutexGuard;
use std::time::Instant;

/// A condition variable paired with [`super::Mutex`].
#[derive(Debug, Default)]
pub(crate) struct Condvar {
    #[cfg(not(any(loom, miri)))]
    inner: parking_lot::Condvar,
    #[cfg(loom)]
    inner: loom::sync::Condvar,
    // Under Miri, std's, as the shim's `Mutex` is there (see `sync.rs`).
    #[cfg(all(miri, not(loom)))]
    inner: std::sync::Condvar,
}

impl Condvar {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Blocks until notified (or spuriously woken), with the lock released meanwhile.
    #[cfg(not(any(loom, miri)))]
    pub(crate) fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.inner.wait(&mut guard);
        guard
    }

    /// As [`wait`](Self::wait), giving up at `deadline`; the flag says whether it timed out.
    #[cfg(not(any(loom, miri)))]
    pub(crate) fn wait_until<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        deadline: Instant,
    ) -> (MutexGuard<'a, T>, bool) {
        let timed_out = self.inner.wait_until(&mut guard, deadline).timed_out();
        (guard, timed_out)
    }

    /// Blocks until notified (or spuriously woken), with the lock released meanwhile.
    #[cfg(any(loom, miri))]
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.inner
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Under loom: an untimed wait that never reports a timeout.
    #[cfg(loom)]
    pub(crate) fn wait_until<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        _deadline: Instant,
    ) -> (MutexGuard<'a, T>, bool) {
        (self.wait(guard), false)
    }

    /// As [`wait`](Self::wait), giving up at `deadline`; the flag says whether it timed out.
    #[cfg(all(miri, not(loom)))]
    pub(crate) fn wait_until<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Instant,
    ) -> (MutexGuard<'a, T>, bool) {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (guard, result) = self
            .inner
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (guard, result.timed_out())
    }

    pub(crate) fn notify_all(&self) {
        self.inner.notify_all();
    }

    pub(crate) fn notify_one(&self) {
        self.inner.notify_one();
    }
}
