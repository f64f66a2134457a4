//! The std traits the public API implements today, pinned so none can silently regress: a
//! crossbeam, dashmap, arc-swap, bumpalo or governor user relies on `Debug` everywhere,
//! `Send`/`Sync` on what crosses threads, `Error + Send + Sync + 'static` on every error (so
//! `?` into `Box<dyn Error + Send + Sync>` and anyhow works), `Clone`/`Copy`/`Eq` on plain
//! values, `Default` where `new()` takes nothing, the iterator and conversion traits, and the
//! `const fn` constructors usable in a `static`.
//!
//! Nearly all checks are static: a function generic over the trait, instantiated per type, so
//! a lost impl is a compile error here. A few `!Send`/`!Sync` checks pin what soundness needs
//! (thread-bound guards). The runtime tests only make sure `Debug` and `Display` format.
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, System};
use std::borrow::{Borrow, BorrowMut};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::error::Error;
use std::fmt::{Debug, Display};
use std::hash::{BuildHasher, Hash, Hasher};
use std::iter::FusedIterator;
use std::ops::{Add, AddAssign, Deref, DerefMut, Sub, SubAssign};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use thrifty::arena::{
    self, ArenaFull, ArenaGuard, ArenaGuardOwned, ArenaPool, ArenaStats, Refused,
};
use thrifty::channel::{
    self, IntoIter as ChanIntoIter, Iter as ChanIter, Receiver, RecvError, RecvTimeoutError,
    RecyclingReceiver, RecyclingSender, SendError, SendTimeoutError, Sender, TryIter, TryRecvError,
    TrySendError,
};
use thrifty::counter::{Counter, Gauge, LocalCounter, LocalGauge, PerCpu};
use thrifty::limit::{
    AcquireError, AcquireTimeoutError, Clock, Fairness, InFlight, InFlightPermit,
    InsufficientCapacity, KeyedLimiter, LimitError, ManualClock, MonotonicClock,
    OwnedInFlightPermit, OwnedPermit, Permit, RateError, RateLimited, Semaphore, TokenBucket,
    Tokens, TryAcquireError,
};
use thrifty::map::{
    self, Compute, CowMap, FastHasher, FastRandomState, Reader, ShardedMap, Snapshot,
};
use thrifty::measure::{AllocStats, Allocations, CountingAlloc, Paused};
use thrifty::pool::{
    self, BufferBuilder, BufferPool, Buffers, Closures, Hooks, Pool, Pooled, PooledBuffer,
    PooledBufferOwned, PooledOwned,
};
use thrifty::reset::{ByReset, Reset, Resetter};

// The generic checks. Each is instantiated per type below; calling it does nothing.

fn is_debug<T: ?Sized + Debug>() {}
fn is_send<T: ?Sized + Send>() {}
fn is_send_sync<T: ?Sized + Send + Sync>() {}
fn is_static<T: 'static>() {}
fn is_clone<T: Clone>() {}
fn is_copy<T: Copy>() {}
fn is_eq<T: Eq>() {}
fn is_hash<T: Hash>() {}
fn is_default<T: Default>() {}
fn is_unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}
/// What `?` into `Box<dyn Error + Send + Sync>` or `anyhow::Error` needs.
fn is_error<E: Error + Display + Debug + Send + Sync + 'static>() {}
fn is_iter<I: Iterator<Item = T>, T>() {}
fn is_fused<I: FusedIterator>() {}
fn is_exact<I: ExactSizeIterator>() {}
fn is_into_iter<I: IntoIterator<Item = T>, T>() {}
fn is_from_iter<C: FromIterator<T>, T>() {}
fn is_extend<C: Extend<T>, T>() {}
fn is_from<To: From<F>, F>() {}
fn derefs_to<D: ?Sized + Deref<Target = T>, T: ?Sized>() {}
fn derefs_mut_to<D: ?Sized + DerefMut<Target = T>, T: ?Sized>() {}

/// Compiles only if `$t` does NOT implement `$tr` (the `static_assertions` trick: with the
/// impl, the two blanket impls make `_` ambiguous).
macro_rules! assert_not_impl {
    ($t:ty: $tr:path) => {
        const _: fn() = || {
            trait AmbiguousIfImpl<A> {
                fn some_item() {}
            }
            impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
            #[allow(dead_code)]
            struct Invalid;
            impl<T: ?Sized + $tr> AmbiguousIfImpl<Invalid> for T {}
            let _ = <$t as AmbiguousIfImpl<_>>::some_item;
        };
    };
}

// Types with interior mutability that is not `Sync`: the containers' `Sync` needs only
// `T: Send` where a lock or slot hands each value to one thread at a time.
type NotSync = Cell<u64>;
type NotSyncBuf = RefCell<Vec<u8>>;

// --- pool ---

#[test]
fn pool_traits() {
    // Debug on every public type.
    is_debug::<Pool<Vec<u8>>>();
    is_debug::<Pooled<'static, Vec<u8>>>();
    is_debug::<PooledOwned<Vec<u8>>>();
    is_debug::<BufferPool>();
    is_debug::<PooledBuffer<'static>>();
    is_debug::<PooledBufferOwned>();
    is_debug::<BufferBuilder>();
    is_debug::<pool::Builder<Vec<u8>>>();
    is_debug::<pool::BuildError>();
    is_debug::<pool::Stats>();
    is_debug::<Buffers>();
    is_debug::<Closures<Vec<u8>>>();

    // Threads: a pool is shared like a `Mutex` (T: Send suffices for Sync); guards move.
    is_send_sync::<Pool<Vec<u8>>>();
    is_send_sync::<Pool<NotSyncBuf>>();
    is_send_sync::<Arc<Pool<NotSyncBuf>>>();
    is_send_sync::<BufferPool>();
    is_send_sync::<Pooled<'static, Vec<u8>>>();
    is_send::<Pooled<'static, NotSyncBuf>>();
    is_send_sync::<PooledOwned<Vec<u8>>>();
    is_send::<PooledOwned<NotSyncBuf>>();
    is_static::<PooledOwned<Vec<u8>>>();
    is_send_sync::<PooledBufferOwned>();
    is_send_sync::<pool::Builder<Vec<u8>>>();
    is_send_sync::<pool::Stats>();
    // A panic leaves nothing half-changed that a get could see (objects are reset first).
    is_unwind_safe::<Pool<Vec<u8>>>();
    is_unwind_safe::<Pool<NotSyncBuf>>();
    is_unwind_safe::<BufferPool>();

    // Guards are smart pointers.
    derefs_mut_to::<Pooled<'static, String>, String>();
    derefs_mut_to::<PooledOwned<String>, String>();
    fn borrows<P: Borrow<T> + BorrowMut<T>, T>() {}
    borrows::<Pooled<'static, String>, String>();
    borrows::<PooledOwned<String>, String>();
    fn byte_buffer<P: AsRef<[u8]> + AsMut<[u8]> + std::io::Write>() {}
    byte_buffer::<Pooled<'static, Vec<u8>>>();
    byte_buffer::<PooledOwned<Vec<u8>>>();
    byte_buffer::<PooledBuffer<'static>>();
    byte_buffer::<PooledBufferOwned>();
    derefs_to::<BufferPool, Pool<Vec<u8>, Buffers>>();

    // Hooks: the two implementors.
    fn hooks<H: Hooks<T>, T>() {}
    hooks::<Closures<String>, String>();
    hooks::<Buffers, Vec<u8>>();

    // Plain values.
    is_default::<BufferPool>();
    is_default::<BufferBuilder>();
    is_clone::<BufferBuilder>();
    is_copy::<Buffers>();
    is_copy::<pool::Stats>();
    is_eq::<pool::Stats>();
    is_hash::<pool::Stats>();
    is_default::<pool::Stats>();
    is_error::<pool::BuildError>();
    is_clone::<pool::BuildError>();
    is_eq::<pool::BuildError>();
    is_copy::<pool::BuildError>();
    is_hash::<pool::BuildError>();
}

// --- reset ---

#[test]
fn reset_traits() {
    fn resets<T: Reset>() {}
    resets::<Vec<u8>>();
    resets::<String>();
    resets::<std::ffi::OsString>();
    resets::<std::path::PathBuf>();
    resets::<std::collections::VecDeque<u8>>();
    resets::<std::collections::BinaryHeap<u8>>();
    resets::<HashMap<u8, u8>>();
    resets::<std::collections::HashSet<u8>>();
    resets::<std::collections::BTreeMap<u8, u8>>();
    resets::<std::collections::BTreeSet<u8>>();
    resets::<Box<Vec<u8>>>();
    resets::<Option<String>>();

    fn resetter<R: Resetter<T>, T>() {}
    resetter::<ByReset, Vec<u8>>();
    // Any `Fn(&mut T)` is a resetter (what `pool::Builder::reset` takes).
    fn closure_resetter<T, F: Fn(&mut T) + Resetter<T>>(_: &F) {}
    closure_resetter::<Vec<u8>, _>(&|v: &mut Vec<u8>| v.clear());

    is_debug::<ByReset>();
    is_copy::<ByReset>();
    is_default::<ByReset>();
    is_eq::<ByReset>();
    is_send_sync::<ByReset>();
}

// --- arena ---

#[test]
fn arena_traits() {
    is_debug::<ArenaPool>();
    is_debug::<arena::Builder>();
    is_debug::<ArenaGuard<'static>>();
    is_debug::<ArenaGuardOwned>();
    is_debug::<ArenaStats>();
    is_debug::<arena::Stats>();
    is_debug::<ArenaFull>();
    is_debug::<Refused<String>>();
    is_debug::<arena::BuildError>();

    is_send_sync::<ArenaPool>();
    is_send_sync::<Arc<ArenaPool>>();
    is_unwind_safe::<ArenaPool>();
    // A guard moves to another thread but is not shared: bumpalo's `Bump` is `!Sync`.
    is_send::<ArenaGuard<'static>>();
    is_send::<ArenaGuardOwned>();
    is_static::<ArenaGuardOwned>();
    derefs_to::<ArenaGuard<'static>, arena::Bump>();
    derefs_to::<ArenaGuardOwned, arena::Bump>();

    is_default::<ArenaPool>();
    is_default::<arena::Builder>();
    is_clone::<arena::Builder>();
    is_send_sync::<arena::Builder>();

    is_copy::<ArenaStats>();
    is_eq::<ArenaStats>();
    is_hash::<ArenaStats>();
    is_default::<ArenaStats>();
    is_copy::<arena::Stats>();
    is_eq::<arena::Stats>();
    is_hash::<arena::Stats>();
    is_default::<arena::Stats>();

    is_error::<ArenaFull>();
    is_copy::<ArenaFull>();
    is_eq::<ArenaFull>();
    // `Refused<T>` is an error whatever `T` is (its `Debug` does not print the value).
    is_error::<Refused<String>>();
    is_error::<Refused<Vec<std::fs::File>>>();
    is_copy::<Refused<u64>>();
    is_clone::<Refused<String>>();
    is_eq::<Refused<String>>();
    is_error::<arena::BuildError>();
    is_clone::<arena::BuildError>();
    is_eq::<arena::BuildError>();
    is_copy::<arena::BuildError>();
    is_hash::<arena::BuildError>();
}

assert_not_impl!(ArenaGuard<'static>: Sync);
assert_not_impl!(ArenaGuardOwned: Sync);

// --- channel ---

#[test]
fn channel_traits() {
    is_debug::<Sender<u64>>();
    is_debug::<Receiver<u64>>();
    is_debug::<RecyclingSender<Vec<u8>>>();
    is_debug::<RecyclingReceiver<Vec<u8>>>();
    is_debug::<ChanIter<'static, u64>>();
    is_debug::<TryIter<'static, u64>>();
    is_debug::<ChanIntoIter<u64>>();
    is_debug::<channel::Stats>();

    // Like crossbeam: both ends are Send + Sync + Clone for any T: Send, even !Sync T.
    is_send_sync::<Sender<NotSync>>();
    is_send_sync::<Receiver<NotSync>>();
    is_send_sync::<RecyclingSender<Vec<u8>>>();
    is_send_sync::<RecyclingReceiver<Vec<u8>>>();
    is_static::<Sender<u64>>();
    is_static::<Receiver<u64>>();
    is_clone::<Sender<u64>>();
    is_clone::<Receiver<u64>>();
    is_clone::<RecyclingSender<Vec<u8>>>();
    is_clone::<RecyclingReceiver<Vec<u8>>>();
    is_unwind_safe::<Sender<u64>>();
    is_unwind_safe::<Receiver<u64>>();
    is_unwind_safe::<RecyclingSender<Vec<u8>>>();
    is_unwind_safe::<RecyclingReceiver<Vec<u8>>>();
    is_send_sync::<ChanIter<'static, u64>>();
    is_send_sync::<TryIter<'static, u64>>();
    is_send_sync::<ChanIntoIter<u64>>();

    // Iteration, as with crossbeam and std's mpsc.
    is_iter::<ChanIter<'static, u64>, u64>();
    is_iter::<TryIter<'static, u64>, u64>();
    is_iter::<ChanIntoIter<u64>, u64>();
    // Fused: their first `None` (empty, every sender gone) lasts. `TryIter`'s does not.
    is_fused::<ChanIter<'static, u64>>();
    is_fused::<ChanIntoIter<u64>>();
    is_into_iter::<Receiver<u64>, u64>();
    is_into_iter::<&Receiver<u64>, u64>();

    is_copy::<channel::Stats>();
    is_eq::<channel::Stats>();
    is_hash::<channel::Stats>();
    is_default::<channel::Stats>();

    // Errors: Error + Send + Sync + 'static for a Send + Sync + 'static payload; Debug, Clone,
    // Copy, Eq whatever the payload allows (Debug even without `T: Debug`, as crossbeam).
    is_error::<SendError<u64>>();
    is_error::<TrySendError<u64>>();
    is_error::<SendTimeoutError<u64>>();
    is_error::<RecvError>();
    is_error::<TryRecvError>();
    is_error::<RecvTimeoutError>();
    struct NoDebug;
    is_debug::<SendError<NoDebug>>();
    is_debug::<TrySendError<NoDebug>>();
    is_debug::<SendTimeoutError<NoDebug>>();
    is_copy::<SendError<u64>>();
    is_copy::<TrySendError<u64>>();
    is_copy::<SendTimeoutError<u64>>();
    is_clone::<SendError<String>>();
    is_eq::<SendError<String>>();
    is_eq::<TrySendError<String>>();
    is_eq::<SendTimeoutError<String>>();
    is_copy::<RecvError>();
    is_copy::<TryRecvError>();
    is_copy::<RecvTimeoutError>();
    is_eq::<RecvError>();
    is_eq::<TryRecvError>();
    is_eq::<RecvTimeoutError>();
    // The recycling channel hands the fill closure back in its send errors.
    fn recycling_send_error<F: Fn(&mut Vec<u8>) + Send + Sync + 'static>() {
        is_error::<SendError<F>>();
        is_error::<TrySendError<F>>();
        is_error::<SendTimeoutError<F>>();
    }
    let _ = recycling_send_error::<fn(&mut Vec<u8>)>;

    // Conversions between the errors, as crossbeam.
    is_from::<TrySendError<u64>, SendError<u64>>();
    is_from::<SendTimeoutError<u64>, SendError<u64>>();
    is_from::<TryRecvError, RecvError>();
    is_from::<RecvTimeoutError, RecvError>();
}

// --- counter ---

#[cfg(not(loom))]
static STATIC_COUNTER: Counter = Counter::new();
#[cfg(not(loom))]
static STATIC_GAUGE: Gauge = Gauge::new();

#[test]
fn counter_traits() {
    is_debug::<Counter>();
    is_debug::<Gauge>();
    is_debug::<LocalCounter<'static>>();
    is_debug::<LocalGauge<'static>>();
    is_debug::<PerCpu<u64>>();

    is_send_sync::<Counter>();
    is_send_sync::<Gauge>();
    is_unwind_safe::<Counter>();
    is_unwind_safe::<Gauge>();
    // Each slot is locked while one thread uses it: T: Send suffices.
    is_send_sync::<PerCpu<NotSync>>();

    is_default::<Counter>();
    is_default::<Gauge>();
    is_default::<PerCpu<u64>>();

    // Usable in a `static`.
    STATIC_COUNTER.incr();
    STATIC_GAUGE.incr();
    assert!(STATIC_COUNTER.sum() >= 1);
}

// The batching handles are bound to the thread that made them.
// A closure given `&mut` to a shared value can leave it half-changed when it panics, for the next
// caller to see; neither poisons (as parking_lot's locks and dashmap do not).
assert_not_impl!(PerCpu<u64>: std::panic::RefUnwindSafe);
assert_not_impl!(LocalCounter<'static>: Send);
assert_not_impl!(LocalCounter<'static>: Sync);
assert_not_impl!(LocalGauge<'static>: Send);
assert_not_impl!(LocalGauge<'static>: Sync);

// --- limit ---

#[test]
fn limit_traits() {
    is_debug::<TokenBucket>();
    is_debug::<TokenBucket<ManualClock>>();
    is_debug::<Tokens>();
    is_debug::<KeyedLimiter<String>>();
    is_debug::<KeyedLimiter<String, ManualClock>>();
    is_debug::<Semaphore>();
    is_debug::<Permit<'static>>();
    is_debug::<OwnedPermit>();
    is_debug::<InFlight>();
    is_debug::<InFlightPermit<'static>>();
    is_debug::<OwnedInFlightPermit>();
    is_debug::<ManualClock>();
    is_debug::<MonotonicClock>();

    is_send_sync::<TokenBucket>();
    is_send_sync::<TokenBucket<ManualClock>>();
    is_send_sync::<Tokens>();
    is_send_sync::<KeyedLimiter<String>>();
    is_send_sync::<KeyedLimiter<u64, ManualClock>>();
    is_send_sync::<Semaphore>();
    is_unwind_safe::<Semaphore>();
    is_unwind_safe::<KeyedLimiter<String>>();
    is_send_sync::<Permit<'static>>();
    is_send_sync::<OwnedPermit>();
    is_static::<OwnedPermit>();
    is_send_sync::<InFlight>();
    is_send_sync::<InFlightPermit<'static>>();
    is_send_sync::<OwnedInFlightPermit>();
    is_static::<OwnedInFlightPermit>();
    is_send_sync::<ManualClock>();
    is_send_sync::<MonotonicClock>();

    fn clock<C: Clock>() {}
    clock::<MonotonicClock>();
    clock::<ManualClock>();
    is_default::<MonotonicClock>();
    is_default::<ManualClock>();
    // A plain setting: copied into a config, compared, hashed, `Strict` by default.
    is_debug::<Fairness>();
    is_send_sync::<Fairness>();
    is_copy::<Fairness>();
    is_eq::<Fairness>();
    is_hash::<Fairness>();
    is_default::<Fairness>();
    is_copy::<MonotonicClock>();
    // Clones share one time: a test advances the clock a limiter holds.
    is_clone::<ManualClock>();
    is_eq::<Tokens>();

    is_error::<LimitError>();
    is_clone::<LimitError>();
    is_eq::<LimitError>();
    is_copy::<LimitError>();
    is_hash::<LimitError>();
    is_error::<RateError>();
    is_error::<RateLimited>();
    is_error::<InsufficientCapacity>();
    is_error::<AcquireError>();
    is_error::<TryAcquireError>();
    is_error::<AcquireTimeoutError>();
    is_copy::<RateError>();
    is_copy::<RateLimited>();
    is_copy::<InsufficientCapacity>();
    is_copy::<AcquireError>();
    is_copy::<TryAcquireError>();
    is_copy::<AcquireTimeoutError>();
    is_eq::<RateError>();
    is_eq::<RateLimited>();
    is_eq::<InsufficientCapacity>();
    is_eq::<AcquireError>();
    is_eq::<TryAcquireError>();
    is_eq::<AcquireTimeoutError>();
}

// --- map ---

#[test]
fn map_traits() {
    is_debug::<ShardedMap<String, u64>>();
    is_debug::<map::Builder<String, u64>>();
    is_debug::<map::BuildError>();
    is_debug::<map::IntoIter<String, u64>>();
    is_debug::<Compute<u64>>();
    is_debug::<CowMap<String, u64>>();
    is_debug::<Reader<String, u64>>();
    is_debug::<Snapshot<String, u64>>();
    is_debug::<FastHasher>();
    is_debug::<FastRandomState>();

    // ShardedMap: like dashmap.
    is_send_sync::<ShardedMap<String, u64>>();
    is_send_sync::<Arc<ShardedMap<String, Vec<u8>>>>();
    is_send_sync::<map::IntoIter<String, u64>>();
    // No poisoning: a closure that panics mid-update leaves the value as it left it.
    assert_not_impl!(ShardedMap<String, u64>: std::panic::RefUnwindSafe);
    is_send_sync::<map::Builder<String, u64>>();
    is_default::<ShardedMap<String, u64>>();
    is_from_iter::<ShardedMap<String, u64>, (String, u64)>();
    is_extend::<ShardedMap<String, u64>, (String, u64)>();
    is_extend::<&ShardedMap<String, u64>, (String, u64)>();
    is_from::<ShardedMap<String, u64>, HashMap<String, u64, FastRandomState>>();
    is_from::<ShardedMap<String, u64, std::hash::RandomState>, HashMap<String, u64>>();
    is_into_iter::<ShardedMap<String, u64>, (String, u64)>();
    is_iter::<map::IntoIter<String, u64>, (String, u64)>();
    is_exact::<map::IntoIter<String, u64>>();
    is_fused::<map::IntoIter<String, u64>>();
    is_clone::<Compute<u64>>();
    is_eq::<Compute<u64>>();
    is_error::<map::BuildError>();
    is_clone::<map::BuildError>();
    is_eq::<map::BuildError>();
    is_copy::<map::BuildError>();
    is_hash::<map::BuildError>();

    // CowMap: shared like an ArcSwap; readers and snapshots cross threads.
    is_send_sync::<CowMap<String, u64>>();
    is_send_sync::<Reader<String, u64>>();
    is_send_sync::<Snapshot<String, u64>>();
    is_static::<Reader<String, u64>>();
    is_static::<Snapshot<String, u64>>();
    is_unwind_safe::<CowMap<String, u64>>();
    is_unwind_safe::<Reader<String, u64>>();
    is_clone::<Reader<String, u64>>();
    is_clone::<Snapshot<String, u64>>();
    is_default::<CowMap<String, u64>>();
    is_from_iter::<CowMap<String, u64>, (String, u64)>();
    is_from::<CowMap<String, u64>, HashMap<String, u64, FastRandomState>>();
    derefs_to::<Snapshot<String, u64>, HashMap<String, u64, FastRandomState>>();
    is_into_iter::<&Snapshot<String, u64>, (&String, &u64)>();

    // The hasher.
    fn build_hasher<S: BuildHasher<Hasher = H>, H: Hasher>() {}
    build_hasher::<FastRandomState, FastHasher>();
    is_default::<FastRandomState>();
    is_clone::<FastRandomState>();
    is_clone::<FastHasher>();
    is_send_sync::<FastRandomState>();
    is_send_sync::<FastHasher>();
}

// --- measure ---

#[cfg(not(loom))]
static _CONST_ALLOC: CountingAlloc = CountingAlloc::new();
#[cfg(not(loom))]
static _CONST_WRAP: CountingAlloc<System> = CountingAlloc::wrap(System);

#[test]
fn measure_traits() {
    is_debug::<CountingAlloc>();
    is_debug::<Allocations>();
    is_debug::<Paused>();
    is_debug::<AllocStats>();

    fn global_alloc<A: GlobalAlloc + Send + Sync>() {}
    global_alloc::<CountingAlloc>();
    global_alloc::<CountingAlloc<System>>();
    is_default::<CountingAlloc>();
    is_copy::<CountingAlloc>();

    fn measurement<M: criterion::measurement::Measurement>() {}
    measurement::<Allocations>();
    is_default::<Allocations>();
    is_copy::<Allocations>();

    is_copy::<AllocStats>();
    is_eq::<AllocStats>();
    is_hash::<AllocStats>();
    is_default::<AllocStats>();
    is_send_sync::<AllocStats>();
    fn arithmetic<
        T: Add<Output = T> + Sub<Output = T> + AddAssign + SubAssign + std::iter::Sum + Display,
    >() {
    }
    arithmetic::<AllocStats>();
}

// Pausing is per thread: the guard cannot leave it.
assert_not_impl!(Paused: Send);
assert_not_impl!(Paused: Sync);

// --- runtime: Debug and Display format without panicking ---

fn formats_debug<T: Debug>(value: &T) {
    assert!(!format!("{value:?}").is_empty());
    assert!(!format!("{value:#?}").is_empty());
}

fn formats_error<E: Error>(err: &E) {
    formats_debug(err);
    assert!(!err.to_string().is_empty(), "{err:?} displays as nothing");
}

#[test]
fn debug_and_display_format() {
    let pool = Arc::new(Pool::new(Vec::<u8>::new));
    formats_debug(&pool);
    formats_debug(&pool.get());
    formats_debug(&pool.get_owned());
    formats_debug(&pool.stats());
    let buffers = Arc::new(BufferPool::new());
    formats_debug(&buffers);
    formats_debug(&buffers.get());
    formats_debug(&buffers.get_owned());
    formats_debug(&BufferPool::builder());
    formats_debug(&Pool::<Vec<u8>>::builder());

    let arenas = Arc::new(ArenaPool::new());
    formats_debug(&arenas);
    formats_debug(&arenas.get());
    formats_debug(&ArenaPool::get_owned(&arenas));
    formats_debug(&arenas.stats());
    formats_debug(&ArenaPool::builder());

    let (tx, rx) = channel::bounded::<u64>(2);
    formats_debug(&tx);
    formats_debug(&rx);
    formats_debug(&rx.iter());
    formats_debug(&rx.try_iter());
    formats_debug(&tx.stats());
    let (rtx, rrx) = channel::recycling(2, Vec::<u8>::new);
    formats_debug(&rtx);
    formats_debug(&rrx);
    formats_error(&SendError(1_u64));
    formats_error(&TrySendError::Full(1_u64));
    formats_error(&TrySendError::Disconnected(1_u64));
    formats_error(&SendTimeoutError::Timeout(1_u64));
    formats_error(&SendTimeoutError::Disconnected(1_u64));
    formats_error(&RecvError);
    formats_error(&TryRecvError::Empty);
    formats_error(&TryRecvError::Disconnected);
    formats_error(&RecvTimeoutError::Timeout);
    formats_error(&RecvTimeoutError::Disconnected);
    formats_debug(&rx.into_iter());

    let counter = Counter::new();
    formats_debug(&counter);
    formats_debug(&counter.local());
    let gauge = Gauge::new();
    formats_debug(&gauge);
    formats_debug(&gauge.local());
    formats_debug(&PerCpu::new(|| 0_u64));

    let clock = ManualClock::new();
    let bucket = TokenBucket::with_clock(10, 5, clock.clone()).unwrap();
    formats_debug(&bucket);
    formats_debug(&bucket.try_acquire(1).unwrap());
    formats_error(&TokenBucket::new(0, 1).unwrap_err());
    formats_error(&bucket.try_acquire(6).unwrap_err());
    for _ in 0..4 {
        let _ = bucket.try_acquire(1);
    }
    formats_error(&bucket.try_acquire(1).unwrap_err());
    formats_error(&bucket.acquire(6).unwrap_err());
    let keyed = KeyedLimiter::<String, _>::with_clock(10, 5, clock).unwrap();
    formats_debug(&keyed);
    let sem = Arc::new(Semaphore::new(1));
    formats_debug(&sem);
    formats_debug(&sem.try_acquire(1).unwrap());
    formats_debug(&sem.try_acquire_owned(1).unwrap());
    formats_error(&sem.try_acquire(2).unwrap_err());
    let held = sem.try_acquire(1).unwrap();
    formats_error(&sem.try_acquire(1).unwrap_err());
    formats_error(&sem.acquire_timeout(1, Duration::ZERO).unwrap_err());
    drop(held);
    sem.close();
    formats_error(&sem.acquire(1).unwrap_err());
    let inflight = Arc::new(InFlight::new(1));
    formats_debug(&inflight);
    formats_debug(&inflight.try_enter().unwrap());
    formats_debug(&inflight.try_enter_owned().unwrap());
    formats_debug(&MonotonicClock::new());

    let sharded: ShardedMap<String, u64> = [("a".to_string(), 1)].into_iter().collect();
    formats_debug(&sharded);
    formats_debug(&ShardedMap::<String, u64>::builder());
    formats_error(
        &ShardedMap::<String, u64>::builder()
            .shards(0)
            .try_build()
            .unwrap_err(),
    );
    formats_debug(&sharded.into_iter());
    formats_debug(&Compute::Set(1_u64));
    let cow: CowMap<String, u64> = [("a".to_string(), 1)].into_iter().collect();
    formats_debug(&cow);
    formats_debug(&cow.reader());
    formats_debug(&cow.snapshot());
    formats_debug(&FastRandomState::new());
    formats_debug(&FastRandomState::new().build_hasher());

    formats_debug(&CountingAlloc::new());
    formats_debug(&Allocations);
    formats_debug(&thrifty::measure::pause());
    formats_debug(&AllocStats::default());
    assert!(!AllocStats::default().to_string().is_empty());
}
