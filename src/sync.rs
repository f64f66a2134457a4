//! The one door to synchronisation: atomics, `Arc`, locks, `UnsafeCell`, thread-locals, spin
//! hints, cache padding and the per-thread slot index.
//!
//! Every other module imports these names from `crate::sync`, never from `std`, `parking_lot` or
//! `loom` directly; `.ci/run` fails if a file outside `src/sync*` names an original. (clippy's
//! `disallowed-types` cannot enforce this: it resolves a re-export to the original type and so
//! would flag the shim's own users.) In a normal build they are std's
//! atomics and `parking_lot`'s locks; under `RUSTFLAGS="--cfg loom"` they are loom's, so the
//! model checker sees every access; under Miri the locks are std's (parking_lot's contended
//! paths are outside strict provenance). The swap follows `tokio/src/loom/mod.rs`.
//!
//! Differences papered over here, so callers write one spelling:
//! - `Mutex::lock` returns the guard directly (parking_lot's shape). loom's and std's locks can
//!   report poisoning; a poisoned lock is still handed over, as parking_lot has no poisoning.
//! - [`UnsafeCell`] has loom's closure API (`with`, `with_mut`) in both builds.
//! - Under loom, [`cpus`] is fixed at 2, so a model explores the same shapes every run.
//! - The per-thread slot index is the same registry, claims and tokens in both builds, so loom
//!   sees a slot pass from an exited thread to the next; `slot.rs` ("Under loom") lists the few
//!   differences its statics and thread-locals need.
//!
//! [`plain`] holds std's types for the one caller that must never be modelled: the counting
//! global allocator in `measure`, which runs outside any loom model and may not allocate.
// Not every primitive uses every name; the shim stays complete so a new one needs no edit here.
#![allow(dead_code, unused_imports)]

pub(crate) use crossbeam_utils::CachePadded;

#[cfg(not(loom))]
pub(crate) use std::{
    hint::spin_loop,
    sync::{
        atomic::{fence, AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering},
        Arc, OnceLock, Weak,
    },
    thread::yield_now,
    thread_local,
};

#[cfg(not(any(loom, miri)))]
pub(crate) use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

// Under Miri the locks are std's, behind the same wrappers as loom's: parking_lot's contended
// paths cast integers to pointers, which `-Zmiri-strict-provenance` rejects, so any test whose
// threads happened to meet on a lock failed there, by scheduling.
#[cfg(all(miri, not(loom)))]
pub(crate) use std::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

/// The lock types the wrappers below adapt to parking_lot's shape: loom's, or std's under Miri.
#[cfg(loom)]
use loom::sync as lock_imp;
#[cfg(all(miri, not(loom)))]
use std::sync as lock_imp;

#[cfg(loom)]
pub(crate) use loom::{
    hint::spin_loop,
    sync::{
        atomic::{fence, AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering},
        Arc, MutexGuard, RwLockReadGuard, RwLockWriteGuard,
    },
    thread::yield_now,
    thread_local,
};

/// Thread parking, for blocking waits (`channel`'s waiters). Under loom a timed park cannot be
/// modelled (loom has no clock): [`park_timeout`] yields and returns, a spurious wake-up, so a
/// caller re-checks its deadline against the real clock; loom models use deadlines that have
/// passed by their first look (zero, or 1 ns where a zero timeout would not wait at all).
#[cfg(not(loom))]
pub(crate) use std::thread::{current as current_thread, park, park_timeout, Thread};

#[cfg(loom)]
pub(crate) use loom::thread::{current as current_thread, park, Thread};

/// loom's stand-in for `std::thread::park_timeout`: a spurious wake-up (see above).
#[cfg(loom)]
pub(crate) fn park_timeout(_timeout: std::time::Duration) {
    loom::thread::yield_now();
}

/// Unmodelled std atomics and one thread-local, for code that runs outside any loom model.
///
/// For `measure`'s global allocator above all: loom itself calls the allocator, so loom's
/// types would recurse, and the allocator must not allocate, which rules out anything lazily
/// initialised. Also for process-wide flags that no loom model exercises (the TSC clock's
/// reset flag). All are relaxed: they carry statistics and hints, never publish
/// data.
pub(crate) mod plain {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// A relaxed `u64` statistic.
    #[derive(Debug)]
    pub(crate) struct RelaxedU64(AtomicU64);

    impl RelaxedU64 {
        pub(crate) const fn new() -> Self {
            Self(AtomicU64::new(0))
        }
        #[inline(always)]
        pub(crate) fn add(&self, n: u64) {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
        #[inline(always)]
        pub(crate) fn get(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    /// A relaxed `usize` used as a flag or a counter.
    #[derive(Debug)]
    pub(crate) struct RelaxedUsize(AtomicUsize);

    impl RelaxedUsize {
        pub(crate) const fn new() -> Self {
            Self(AtomicUsize::new(0))
        }
        #[inline(always)]
        pub(crate) fn get(&self) -> usize {
            self.0.load(Ordering::Relaxed)
        }
        #[inline(always)]
        pub(crate) fn set(&self, n: usize) {
            self.0.store(n, Ordering::Relaxed);
        }
        pub(crate) fn increment(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        /// Adds one; returns the value before.
        pub(crate) fn fetch_increment(&self) -> usize {
            self.0.fetch_add(1, Ordering::Relaxed)
        }
    }

    /// How many per-thread cells [`with_thread_cells`] offers (`measure` keeps its five counts,
    /// its two pause words, its probe flag and its stripe of the totals in them; it names each
    /// index).
    pub(crate) const THREAD_CELLS: usize = 9;

    std::thread_local! {
        // `const`-initialised and without a destructor: access never allocates, never
        // registers a destructor and works during thread teardown.
        static CELLS: [Cell<u64>; THREAD_CELLS] = const { [const { Cell::new(0) }; THREAD_CELLS] };
    }

    /// Runs `f` on the calling thread's cells; `None` only if the platform has
    /// already torn the thread's storage down.
    #[inline(always)]
    pub(crate) fn with_thread_cells<R>(
        f: impl FnOnce(&[Cell<u64>; THREAD_CELLS]) -> R,
    ) -> Option<R> {
        CELLS.try_with(f).ok()
    }
}

/// A mutex whose `lock` hands back the guard, matching `parking_lot::Mutex` under loom and Miri.
#[cfg(any(loom, miri))]
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(lock_imp::Mutex<T>);

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(lock_imp::Mutex::new(value))
    }
}

#[cfg(all(miri, not(loom)))]
impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(lock_imp::Mutex::new(value))
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(any(loom, miri))]
impl<T> Mutex<T> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        // parking_lot has no poisoning; hand over a poisoned lock the same way.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // As `lock`: a poisoned lock is handed over, so a panic under it changes nothing here.
        match self.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    pub(crate) fn into_inner(self) -> T {
        self.0
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A reader-writer lock whose `read`/`write` hand back guards, matching `parking_lot::RwLock`.
#[cfg(any(loom, miri))]
#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(lock_imp::RwLock<T>);

#[cfg(any(loom, miri))]
impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(lock_imp::RwLock::new(value))
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `std::cell::UnsafeCell` with loom's closure API, so one spelling serves both builds.
#[cfg(not(loom))]
#[derive(Debug, Default)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T: ?Sized>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    #[inline(always)]
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    #[inline(always)]
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[cfg(not(loom))]
impl<T: ?Sized> UnsafeCell<T> {
    /// Runs `f` with a shared raw pointer to the value; the caller's `unsafe` deref must be
    /// justified by the type that owns the cell.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable raw pointer to the value; see [`UnsafeCell::with`].
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }

    /// Safe access through `&mut self`: no other reference can exist.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }
}

/// The number of CPUs this process may run on, cached after the first call; never 0.
///
/// Under loom it is fixed at 2, so models are deterministic.
pub(crate) fn cpus() -> usize {
    #[cfg(loom)]
    {
        2
    }
    #[cfg(not(loom))]
    {
        // Asked once per process, as the docs promise: threads whose first waits overlap wait
        // for the one asking (microseconds, on a path about to park anyway) rather than each
        // ask the OS again, which allocates.
        static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

mod backoff;
pub(crate) mod fence;
pub(crate) use backoff::{backoff, backoff_even, contention_pause, spin, spin_on};
mod hints;
pub(crate) use hints::{forget_memo, with_thread_hints, ThreadHints, MEMO_SLOTS, SEED, SEEN_WORDS};
#[cfg(all(test, not(loom)))]
pub(crate) use hints::{hot_add_pause, set_hot_add_pause};
mod hot;

/// loom's model runner and threads, for the loom models in `src`.
#[cfg(all(test, loom))]
pub(crate) mod loom_model {
    pub(crate) use super::slot::claim_untracked;
    pub(crate) use loom::thread;

    /// Runs `f` in `loom::model`; fails if loom explored only one execution, which checks no
    /// interleaving. loom's first schedule runs the main thread until it blocks, and if the
    /// threads racing it have only loaded by then, loom may find no race to reorder and stop
    /// (tokio-rs/loom#392, #166): the main thread writing before it waits avoids it.
    pub(crate) fn model(f: impl Fn() + Send + Sync + 'static) {
        let runs: &'static super::plain::RelaxedUsize =
            Box::leak(Box::new(super::plain::RelaxedUsize::new()));
        loom::model(move || {
            runs.increment();
            f();
        });
        let n = runs.get();
        eprintln!("explored {n} executions");
        assert!(n > 1, "loom explored only {n} execution: a vacuous model");
    }
}
mod inside;
mod last_slot;
pub(crate) use inside::{enter, enter_or_panic, Inside, Refused, MAX_DEPTH as MAX_INSIDE};
pub(crate) use last_slot::{last_slot, set_last_slot, unique_id, WAYS as LAST_SLOT_WAYS};
mod slot;
#[cfg(test)]
pub(crate) use slot::hot_words_of_free_slots;
pub(crate) use slot::{
    register_hot_word, thread_claim_id, thread_slot, thread_slot_hint, thread_token, token_is_live,
    try_thread_slot, try_thread_token, void_hot_words, TRACKED_SLOTS,
};
