//! A pool whose hooks panic, on several threads at once. The factory, `reset`, `keep_if` and
//! `weigh` each panic on about one call in 200, while four threads at a time drive one
//! `Arc<Pool>` through every way in and out of it: `get`, `try_get`, `get_owned` (guards sent to
//! another thread and dropped there), `into_inner` then `put` or `try_put`, values built outside
//! the pool, `prefill`, `trim` and `clear`. Every call that may run a hook is wrapped in
//! `catch_unwind`, and a panic caught there must be the planned one, from a hook that the call's
//! docs say it runs.
//!
//! The other pool tests make hooks panic on one thread, one call at a time (`claims_pool.rs`,
//! the unit tests), or run many threads with hooks that never panic (`stress_pool.rs`); this one
//! checks that the pool's promises under panics ("Behaviour under panics" in the module docs)
//! hold while other threads race with the unwinding one:
//! - no object has two users at once, and every object handed out is in reset state;
//! - the pool never retains more than its capacity (exactly, once the threads are joined; within
//!   a cache-full per thread while they run, as `len()` sums the caches one by one), nor more
//!   bytes than its byte budget;
//! - an object a hook panicked on is dropped there and then, exactly once, except the one case the
//!   docs name: a guard's drop whose first `weigh` panics leaks its object;
//! - nothing else is lost: once the threads are joined, the objects alive are exactly those the
//!   pool retains (plus those leaked), and after the pool is dropped every object made was
//!   dropped exactly once (those leaked never);
//! - the units of the budget that panics left counted (the reservation or ticket of a leaked
//!   object) all come back with a `clear`: the pool then takes exactly `capacity` objects (and
//!   exactly its byte budget) and refuses the next.
//!
//! Each pool runs three generations of fresh threads, so threads exit with objects in their
//! caches for the next generation (and `clear`, `trim`, a dry get) to find. The random choices
//! come from a xorshift generator seeded per pool and per thread; which hook calls panic depends
//! on how the threads interleave, so no two runs are quite alike, but every assertion holds for
//! every interleaving: nothing here measures time.

#![cfg(not(loom))]

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Once};
use std::thread;
use thrifty::pool::{Pool, Pooled, PooledOwned};

#[path = "common/rng.rs"]
mod rng;
use rng::{splitmix, XorShift};

/// Pools built, one per case, each with its own settings: every combination of the optional
/// hooks (`reset_on_return`, `keep_if`, `weigh`) comes up three times, with random capacities
/// and budgets. Under Miri, a few steps of the two with the most hooks.
const CASES: u64 = if cfg!(miri) { 2 } else { 24 };
/// Generations of fresh threads per pool.
const GENERATIONS: usize = if cfg!(miri) { 2 } else { 3 };
/// Threads per generation, all on one pool.
const THREADS: usize = if cfg!(miri) { 2 } else { 4 };
/// Steps each thread takes.
const STEPS: usize = if cfg!(miri) { 40 } else { 500 };
/// The most objects a thread holds at once.
const MAX_HELD: usize = 6;
/// A hook call panics with this odds (one in ...). More often under Miri, whose run is short.
const PANIC_ONE_IN: u64 = if cfg!(miri) { 16 } else { 200 };
/// Objects a case may make (the census has a slot for each); far more than a case makes.
const MAX_OBJECTS: usize = if cfg!(miri) { 1 << 12 } else { 1 << 15 };
/// Whether a guard's drop may panic in its first `weigh`, which leaks the object: not under
/// Miri, which reports leaked memory as an error.
const LEAKS_ALLOWED: bool = !cfg!(miri);

/// The start of every planned panic's message.
const PLANNED: &str = "planned hook panic";

/// Whether hooks panic at all: on while threads run, off for the checks at the end of a case,
/// and off for good as soon as anything else panics (a failed assertion), so that the guards
/// a failing thread drops as it unwinds do not panic again, which would abort the process.
static ARMED: AtomicBool = AtomicBool::new(false);
/// Every hook call takes a number from this counter; a scramble of it picks the ones that
/// panic.
static HOOK_CALLS: AtomicU64 = AtomicU64::new(0);
/// The current case's planned panics that made the pool drop the object the hook was given
/// (all but the factory's and the leaks): each is counted in `Stats::discarded`, which counts
/// refusals besides, so this is a lower bound only (it still passed with a `prefill` that did
/// not count its hooks' panics, which refusals outnumbered; `claims_pool.rs` checks the exact
/// count on one thread).
static HOOK_DROPS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The hook that last panicked on purpose on this thread, and the object it was given.
    static PLANNED_LAST: Cell<Option<Planned>> = const { Cell::new(None) };
    /// While this thread drops a guard: its object's id, and how many times `weigh` has run
    /// in that drop so far (the drop's first `weigh` is the one whose panic leaks the object).
    static GUARD_DROP: Cell<Option<(usize, u32)>> = const { Cell::new(None) };
}

/// The user code a pool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    Factory,
    Reset,
    KeepIf,
    Weigh,
}

impl Hook {
    /// The message of this hook's planned panic.
    fn message(self) -> &'static str {
        match self {
            Hook::Factory => "planned hook panic in the factory",
            Hook::Reset => "planned hook panic in reset",
            Hook::KeepIf => "planned hook panic in keep_if",
            Hook::Weigh => "planned hook panic in weigh",
        }
    }
}

/// A planned panic: the hook, and the id of the object it was given (none for the factory).
#[derive(Debug, Clone, Copy)]
struct Planned {
    hook: Hook,
    id: Option<usize>,
}

/// Whether the hook being called now panics: about one call in `PANIC_ONE_IN`, while armed.
fn unlucky() -> bool {
    ARMED.load(Relaxed) && splitmix(HOOK_CALLS.fetch_add(1, Relaxed)) % PANIC_ONE_IN == 0
}

/// Panics on purpose in `hook`, given the object `id`, after noting both for the caller (and
/// counting an object dropped for it in [`HOOK_DROPS`] unless the caller says it leaks).
fn fire(hook: Hook, id: Option<usize>, leaks: bool) -> ! {
    if id.is_some() && !leaks {
        HOOK_DROPS.fetch_add(1, SeqCst);
    }
    PLANNED_LAST.with(|p| p.set(Some(Planned { hook, id })));
    panic::panic_any(hook.message())
}

/// The text of a panic's payload.
fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

/// Installs, once, a panic hook that keeps the planned panics out of the output and disarms
/// the hooks on any other panic, before it unwinds (see [`ARMED`]).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !message(info.payload()).starts_with(PLANNED) {
                ARMED.store(false, SeqCst);
                default(info);
            }
        }));
    });
}

/// Runs `op`, one call into the pool named `what` whose docs say it may run the hooks in
/// `may_run`. Returns the planned panic if a hook panicked on purpose; fails the test if that
/// hook is not one of `may_run`, and passes any other panic on.
fn guarded<R>(what: &str, may_run: &[Hook], op: impl FnOnce() -> R) -> Result<R, Planned> {
    PLANNED_LAST.with(|p| p.set(None));
    let payload = match catch_unwind(AssertUnwindSafe(op)) {
        Ok(done) => return Ok(done),
        Err(payload) => payload,
    };
    let msg = message(&*payload);
    if !msg.starts_with(PLANNED) {
        panic::resume_unwind(payload);
    }
    let planned = PLANNED_LAST.with(Cell::take).unwrap_or_else(|| {
        panic!("{what}: a planned panic ({msg}) that no hook on this thread made")
    });
    assert_eq!(msg, planned.hook.message(), "{what}: not the panic planned");
    assert!(
        may_run.contains(&planned.hook),
        "{what} ran {:?}, which its docs do not say it runs",
        planned.hook
    );
    Err(planned)
}

/// The fate of every object a case makes, in atomics any thread may update.
struct Census {
    made: AtomicUsize,
    /// One per object, by id.
    slots: Box<[Slot]>,
}

/// What the census knows of one object.
#[derive(Default)]
struct Slot {
    /// The tag of the thread that holds it (1 and up), or 0 while the pool does.
    holder: AtomicUsize,
    /// How many times it was dropped: 1 in the end, or 0 if it was leaked.
    drops: AtomicU32,
    /// Set when a guard's drop panicked in its first `weigh` on it: the docs say it is leaked.
    leak_expected: AtomicBool,
    /// Set if it was dropped while a thread held it.
    dropped_held: AtomicBool,
}

/// What [`Census::audit`] counted.
#[derive(Debug)]
struct Audit {
    /// Objects alive that were not leaked.
    live: usize,
    /// Objects leaked by a guard's drop whose first `weigh` panicked.
    leaked: usize,
}

impl Census {
    fn new() -> Arc<Self> {
        Arc::new(Census {
            made: AtomicUsize::new(0),
            slots: (0..MAX_OBJECTS).map(|_| Slot::default()).collect(),
        })
    }

    /// A new object, held by no one; `dirty` if it stands for a used one.
    fn make(self: &Arc<Self>, dirty: bool, weight: usize) -> Obj {
        let id = self.made.fetch_add(1, SeqCst);
        assert!(
            id < MAX_OBJECTS,
            "more than {MAX_OBJECTS} objects: raise MAX_OBJECTS"
        );
        Obj {
            id,
            dirty,
            weight,
            outlier: false,
            census: Arc::clone(self),
        }
    }

    fn slot(&self, id: usize) -> &Slot {
        &self.slots[id]
    }

    /// Checks every object made so far, at a moment when no thread holds one: none dropped
    /// twice, none dropped while held, none marked held, and the leaked ones never dropped.
    fn audit(&self) -> Audit {
        let made = self.made.load(SeqCst);
        let mut audit = Audit { live: 0, leaked: 0 };
        for (id, slot) in self.slots[..made].iter().enumerate() {
            let drops = slot.drops.load(SeqCst);
            assert!(
                !slot.dropped_held.load(SeqCst),
                "object {id} dropped while held"
            );
            assert_eq!(slot.holder.load(SeqCst), 0, "object {id} still marked held");
            if slot.leak_expected.load(SeqCst) {
                assert_eq!(
                    drops, 0,
                    "object {id}, which the docs say leaks, was dropped"
                );
                audit.leaked += 1;
            } else {
                assert!(drops <= 1, "object {id} dropped {drops} times");
                audit.live += usize::from(drops == 0);
            }
        }
        audit
    }

    /// Asserts that object `id`, on which `what` just panicked, was dropped exactly once.
    #[track_caller]
    fn assert_dropped(&self, id: usize, what: &str) {
        let drops = self.slot(id).drops.load(SeqCst);
        assert_eq!(
            drops, 1,
            "object {id}: dropped {drops} times after {what} panicked on it"
        );
    }
}

/// A pooled object that reports to the census.
struct Obj {
    id: usize,
    /// Set by each user, cleared by `reset`: an object handed out must have it clear.
    dirty: bool,
    /// What `weigh` says it weighs (a buffer's capacity, say): `reset` keeps it.
    weight: usize,
    /// `keep_if` refuses it when set (a buffer that grew too much, say): `reset` keeps it.
    outlier: bool,
    census: Arc<Census>,
}

impl Obj {
    fn slot(&self) -> &Slot {
        self.census.slot(self.id)
    }

    /// Asserts that no thread holds this object: the pool has it, so only its hooks see it.
    #[track_caller]
    fn assert_unheld(&self, hook: Hook) {
        let holder = self.slot().holder.load(SeqCst);
        assert_eq!(
            holder, 0,
            "{hook:?} ran on object {} held by thread {holder}",
            self.id
        );
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        // No assertion here: a panic in a drop during an unwind aborts. The audit reads these.
        let slot = self.slot();
        if slot.holder.load(SeqCst) != 0 {
            slot.dropped_held.store(true, SeqCst);
        }
        slot.drops.fetch_add(1, SeqCst);
    }
}

/// Takes `obj`, just handed out, for the thread tagged `tag`: it must be clean and held by no
/// one else. Dirties it, as a user does.
#[track_caller]
fn claim(obj: &mut Obj, tag: usize) {
    assert!(!obj.dirty, "object {} handed out without a reset", obj.id);
    take(obj, tag);
    obj.dirty = true;
}

/// Marks `obj` as held by the thread tagged `tag`; it must be held by no one else.
#[track_caller]
fn take(obj: &Obj, tag: usize) {
    let before = obj.slot().holder.swap(tag, SeqCst);
    assert_eq!(
        before, 0,
        "object {} taken by thread {tag} while thread {before} holds it",
        obj.id
    );
}

/// Marks `obj` as held by no thread, before it goes back to the pool or is dropped.
#[track_caller]
fn release(obj: &Obj) {
    let before = obj.slot().holder.swap(0, SeqCst);
    assert_ne!(
        before, 0,
        "object {} released, but no thread held it",
        obj.id
    );
}

/// A case's pool settings.
#[derive(Debug, Clone, Copy)]
struct Config {
    capacity: usize,
    reset_on_return: bool,
    keep_if: bool,
    weigh: bool,
    /// Set only with `weigh`.
    byte_budget: Option<usize>,
    /// Set only with `weigh`; at least 1.
    max_object_bytes: Option<usize>,
}

impl Config {
    /// Case `case`'s settings: its optional hooks from its number, the rest drawn.
    fn draw(case: u64, rng: &mut XorShift) -> Self {
        let hooks = 7 - case % 8;
        let weigh = hooks & 4 != 0;
        let capacity = 1 + rng.below(64);
        Config {
            capacity,
            reset_on_return: hooks & 1 != 0,
            keep_if: hooks & 2 != 0,
            weigh,
            byte_budget: (weigh && !rng.one_in(4)).then(|| 1 + rng.below(capacity * 6)),
            max_object_bytes: (weigh && rng.one_in(3)).then(|| 1 + rng.below(8)),
        }
    }

    /// The hooks a get may run: the factory, and `reset` unless it runs on return.
    fn get_hooks(&self) -> Vec<Hook> {
        let mut hooks = vec![Hook::Factory];
        hooks.extend((!self.reset_on_return).then_some(Hook::Reset));
        hooks
    }

    /// The hooks a `try_get` may run: `reset` unless it runs on return.
    fn try_get_hooks(&self) -> Vec<Hook> {
        (!self.reset_on_return)
            .then_some(Hook::Reset)
            .into_iter()
            .collect()
    }

    /// The hooks a return may run (a guard's drop, `put`, `try_put`).
    fn return_hooks(&self) -> Vec<Hook> {
        let mut hooks = Vec::new();
        hooks.extend(self.reset_on_return.then_some(Hook::Reset));
        hooks.extend(self.keep_if.then_some(Hook::KeepIf));
        hooks.extend(self.weigh.then_some(Hook::Weigh));
        hooks
    }

    /// The hooks `prefill` may run: the factory and the return hooks.
    fn prefill_hooks(&self) -> Vec<Hook> {
        let mut hooks = self.return_hooks();
        hooks.push(Hook::Factory);
        hooks
    }

    /// The pool, with hooks that panic now and then and check what they are given.
    fn build(&self, census: &Arc<Census>) -> Pool<Obj> {
        let made = Arc::clone(census);
        let builder = Pool::builder()
            .capacity(self.capacity)
            .reset_on_return(self.reset_on_return)
            .reset(|obj: &mut Obj| {
                obj.assert_unheld(Hook::Reset);
                if unlucky() {
                    // Half done, sometimes: the object must be dropped all the same.
                    if obj.id % 2 == 0 {
                        obj.dirty = false;
                    }
                    fire(Hook::Reset, Some(obj.id), false);
                }
                obj.dirty = false;
            });
        let builder = match self.keep_if {
            true => builder.keep_if(|obj: &Obj| {
                obj.assert_unheld(Hook::KeepIf);
                if unlucky() {
                    fire(Hook::KeepIf, Some(obj.id), false);
                }
                !obj.outlier
            }),
            false => builder,
        };
        let builder = match self.weigh {
            true => builder.weigh(weigh),
            false => builder,
        };
        let builder = match self.byte_budget {
            Some(bytes) => builder.byte_budget(bytes),
            None => builder,
        };
        let builder = match self.max_object_bytes {
            Some(bytes) => builder.max_object_bytes(bytes),
            None => builder,
        };
        builder.build(move || {
            if unlucky() {
                fire(Hook::Factory, None, false);
            }
            let mut obj = made.make(false, 0);
            obj.weight = 1 + obj.id % 4;
            obj
        })
    }
}

/// The `weigh` hook: an object's `weight` field. A guard's drop weighs its object first of
/// all; if that call panics, the docs say the object is leaked, so it is noted as such.
fn weigh(obj: &Obj) -> usize {
    obj.assert_unheld(Hook::Weigh);
    let first_in_a_guards_drop = GUARD_DROP.with(|current| match current.get() {
        Some((id, calls)) => {
            assert_eq!(
                id, obj.id,
                "a guard's drop weighed another object than its own"
            );
            current.set(Some((id, calls + 1)));
            calls == 0
        }
        None => false,
    });
    if (LEAKS_ALLOWED || !first_in_a_guards_drop) && unlucky() {
        if first_in_a_guards_drop {
            obj.slot().leak_expected.store(true, SeqCst);
        }
        fire(Hook::Weigh, Some(obj.id), first_in_a_guards_drop);
    }
    obj.weight
}

/// What a thread holds between its steps.
enum Held<'p> {
    Guard(Pooled<'p, Obj>),
    Owned(PooledOwned<Obj>),
    /// Taken out of its guard with `into_inner`, or handed back by `try_put`.
    Detached(Obj),
}

impl Held<'_> {
    fn obj(&mut self) -> &mut Obj {
        match self {
            Held::Guard(guard) => guard,
            Held::Owned(guard) => guard,
            Held::Detached(obj) => obj,
        }
    }
}

/// One thread's run over the pool.
struct Worker<'p> {
    pool: &'p Arc<Pool<Obj>>,
    census: &'p Arc<Census>,
    cfg: Config,
    /// This thread's tag in the census (1 and up).
    tag: usize,
    rng: XorShift,
    held: Vec<Held<'p>>,
    /// To the next thread, which drops the guards it receives; `None` once done.
    to_next: Option<Sender<PooledOwned<Obj>>>,
}

impl<'p> Worker<'p> {
    /// Takes `STEPS` random steps, gives back what it holds, then drops every guard the
    /// previous thread sends until that thread is done.
    fn run(mut self, from_previous: Receiver<PooledOwned<Obj>>) {
        for _ in 0..STEPS {
            self.step(&from_previous);
        }
        while !self.held.is_empty() {
            self.give_back_one();
        }
        self.to_next = None;
        for guard in from_previous {
            self.drop_received(guard);
        }
    }

    fn step(&mut self, from_previous: &Receiver<PooledOwned<Obj>>) {
        match self.rng.below(100) {
            0..=19 => self.get(),
            20..=27 => self.try_get(),
            28..=39 => self.get_owned(),
            40..=57 => self.give_back_one(),
            58..=64 => self.detach_one(),
            65..=72 => self.use_one(),
            73..=79 => {
                let weight = self.rng.below(10);
                let obj = self.census.make(true, weight);
                take(&obj, self.tag);
                self.put(obj);
            }
            80..=86 => {
                if let Ok(guard) = from_previous.try_recv() {
                    self.drop_received(guard);
                }
            }
            87..=90 => {
                let n = self.rng.below(self.cfg.capacity + 2);
                match guarded("prefill", &self.cfg.prefill_hooks(), || {
                    self.pool.prefill(n)
                }) {
                    Ok(added) => assert!(added <= n, "prefill({n}) added {added}"),
                    Err(Planned { id: None, .. }) => {} // the factory's
                    Err(Planned { hook, id: Some(id) }) => {
                        // On the object it just made: the docs keep the earlier ones, and
                        // `claims_pool.rs` checks that this one is dropped.
                        self.census
                            .assert_dropped(id, &format!("prefill's {hook:?}"));
                    }
                }
            }
            91..=94 => {
                // `guarded` fails the test if either runs a hook.
                let keep = self.rng.below(self.cfg.capacity + 1);
                let _ = guarded("trim", &[], || self.pool.trim(keep));
            }
            95 => {
                let _ = guarded("clear", &[], || self.pool.clear());
            }
            _ => {}
        }
        while self.held.len() > MAX_HELD {
            self.give_back_one();
        }
        self.check_retained();
    }

    /// The pool never retains more than its capacity. `len()` sums the store and every cache
    /// at slightly different instants, so objects moving from the store into a cache (at most a
    /// cache-full, 9 objects, per thread) may be counted twice while threads run, as in
    /// `stress_pool.rs`; the exact bound is checked once they are joined.
    fn check_retained(&self) {
        let len = self.pool.len();
        let bound = self.cfg.capacity + THREADS * 9;
        assert!(
            len <= bound,
            "{len} retained, capacity {}",
            self.cfg.capacity
        );
    }

    /// Holds a guard just handed out, or gives it back at once (a get-use-drop).
    fn hold(&mut self, mut item: Held<'p>) {
        claim(item.obj(), self.tag);
        if self.rng.one_in(3) {
            self.give_back(item);
        } else {
            self.held.push(item);
        }
    }

    fn get(&mut self) {
        let pool: &'p Pool<Obj> = self.pool;
        match guarded("get", &self.cfg.get_hooks(), || pool.get()) {
            Ok(guard) => self.hold(Held::Guard(guard)),
            Err(planned) => self.after_get_panicked("get", planned),
        }
    }

    fn try_get(&mut self) {
        let pool: &'p Pool<Obj> = self.pool;
        match guarded("try_get", &self.cfg.try_get_hooks(), || pool.try_get()) {
            Ok(Some(guard)) => self.hold(Held::Guard(guard)),
            Ok(None) => {}
            Err(planned) => self.after_get_panicked("try_get", planned),
        }
    }

    /// Gets an owned guard; holds it, or sends it to the next thread, which drops it.
    fn get_owned(&mut self) {
        let pool = self.pool;
        let mut guard = match guarded("get_owned", &self.cfg.get_hooks(), || pool.get_owned()) {
            Ok(guard) => guard,
            Err(planned) => return self.after_get_panicked("get_owned", planned),
        };
        if self.rng.one_in(2) {
            return self.hold(Held::Owned(guard));
        }
        claim(&mut guard, self.tag);
        if let Some(Err(unsent)) = self.to_next.as_ref().map(|tx| tx.send(guard)) {
            // The next thread failed: give it back here.
            self.give_back(Held::Owned(unsent.0));
        }
    }

    /// After a get's planned panic: a `reset` drops the object it was given.
    fn after_get_panicked(&self, what: &str, planned: Planned) {
        match planned {
            Planned {
                hook: Hook::Factory,
                id,
            } => assert_eq!(id, None),
            Planned { hook, id } => {
                let id = id.expect("a hook given an object");
                self.census
                    .assert_dropped(id, &format!("{what}'s {hook:?}"));
            }
        }
    }

    /// Gives back a random held object: a guard by dropping it, a detached one by `put` or
    /// `try_put`.
    fn give_back_one(&mut self) {
        if !self.held.is_empty() {
            let at = self.rng.below(self.held.len());
            let item = self.held.swap_remove(at);
            self.give_back(item);
        }
    }

    fn give_back(&mut self, item: Held<'p>) {
        match item {
            Held::Guard(guard) => {
                release(&guard);
                self.drop_guard(guard.id, move || drop(guard));
            }
            Held::Owned(guard) => self.drop_received(guard),
            Held::Detached(obj) => self.put(obj),
        }
    }

    /// Drops the guard of object `id`, which is released already. If a hook panics, the docs
    /// say the object is dropped, unless the panic was in the drop's first `weigh`, which
    /// leaks it.
    fn drop_guard(&mut self, id: usize, drop_it: impl FnOnce()) {
        GUARD_DROP.with(|current| current.set(Some((id, 0))));
        let dropped = guarded("a guard's drop", &self.cfg.return_hooks(), drop_it);
        GUARD_DROP.with(|current| current.set(None));
        let Err(Planned { hook, id: on }) = dropped else {
            return;
        };
        assert_eq!(
            on,
            Some(id),
            "the drop of object {id}'s guard ran {hook:?} on {on:?}"
        );
        let slot = self.census.slot(id);
        if slot.leak_expected.load(SeqCst) {
            let drops = slot.drops.load(SeqCst);
            assert_eq!(
                drops, 0,
                "object {id}: dropped although its guard's first weigh panicked"
            );
        } else {
            self.census
                .assert_dropped(id, &format!("a guard's {hook:?}"));
        }
    }

    /// Drops an owned guard: one this thread holds, or one the previous thread sent.
    fn drop_received(&mut self, guard: PooledOwned<Obj>) {
        release(&guard);
        self.drop_guard(guard.id, move || drop(guard));
    }

    /// Gives `obj`, held by this thread, to the pool with `put` or `try_put`. A value
    /// `try_put` hands back is this thread's again: held, or dropped.
    fn put(&mut self, obj: Obj) {
        release(&obj);
        let (id, pool) = (obj.id, self.pool);
        let hooks = self.cfg.return_hooks();
        let refused = if self.rng.one_in(2) {
            guarded("put", &hooks, move || pool.put(obj)).map(|()| None)
        } else {
            guarded("try_put", &hooks, move || pool.try_put(obj).err())
        };
        match refused {
            Ok(None) => {}
            Ok(Some(mut back)) => {
                assert_eq!(back.id, id, "try_put handed back another object");
                assert!(
                    !self.cfg.reset_on_return || !back.dirty,
                    "try_put handed back object {id} unreset, but the pool resets on return"
                );
                take(&back, self.tag);
                back.dirty = true;
                if self.held.len() < MAX_HELD && self.rng.one_in(2) {
                    self.held.push(Held::Detached(back));
                } else {
                    release(&back);
                    drop(back);
                }
            }
            Err(Planned { hook, id: on }) => {
                assert_eq!(on, Some(id), "a put of object {id} ran {hook:?} on {on:?}");
                self.census.assert_dropped(id, &format!("a put's {hook:?}"));
            }
        }
    }

    /// Detaches a random held guard's object with `into_inner`; it goes back later with `put`
    /// or `try_put`.
    fn detach_one(&mut self) {
        let Some(at) = (!self.held.is_empty()).then(|| self.rng.below(self.held.len())) else {
            return;
        };
        let obj = match self.held.swap_remove(at) {
            Held::Guard(guard) => guarded("into_inner", &[], || Pooled::into_inner(guard)),
            Held::Owned(guard) => guarded("into_inner", &[], || PooledOwned::into_inner(guard)),
            Held::Detached(obj) => Ok(obj),
        };
        let obj = obj.expect("into_inner runs no hook");
        self.held.push(Held::Detached(obj));
    }

    /// Uses a random held object: dirties it, and may change its weight or make it an outlier.
    fn use_one(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let at = self.rng.below(self.held.len());
        let (weight, outlier) = (self.rng.below(10), self.rng.one_in(6));
        let obj = self.held[at].obj();
        obj.dirty = true;
        obj.weight = weight;
        obj.outlier = outlier;
    }
}

/// Checks a case's pool once its threads are joined: no guard left holding the pool, no more
/// retained than the capacity and the byte budget allow, and no object lost: every object alive
/// is retained by the pool or was leaked as the docs say.
fn check_joined(pool: &Arc<Pool<Obj>>, census: &Census, cfg: &Config, when: &str) -> Audit {
    assert_eq!(
        Arc::strong_count(pool),
        1,
        "{when}: a guard still holds the pool"
    );
    let stats = pool.stats();
    assert_eq!(stats.retained, pool.len(), "{when}: {stats:?}");
    assert!(
        stats.retained <= cfg.capacity,
        "{when}: over the capacity: {stats:?}"
    );
    if let Some(bytes) = cfg.byte_budget {
        assert!(
            stats.retained_bytes <= bytes,
            "{when}: over the byte budget: {stats:?}"
        );
    }
    let audit = census.audit();
    assert_eq!(
        audit.live, stats.retained,
        "{when}: objects lost: {audit:?}, {stats:?}"
    );
    let hook_drops = HOOK_DROPS.load(SeqCst);
    assert!(
        stats.discarded >= hook_drops,
        "{when}: {hook_drops} objects dropped for a hook's panic, {stats:?}"
    );
    audit
}

/// With the hooks disarmed and no other thread about: `pool`'s retained bytes are the weights
/// of the objects it retains, every one of which comes out reset.
fn check_retained_bytes(pool: &Pool<Obj>, cfg: &Config) {
    let stats = pool.stats();
    // Every cache's objects to the store, none dropped; then this thread takes them all.
    pool.trim(usize::MAX);
    let mut held: Vec<_> = std::iter::from_fn(|| pool.try_get()).collect();
    assert_eq!(held.len(), stats.retained, "{stats:?}");
    let weights: usize = held.iter().map(|obj| obj.weight).sum();
    let expected = if cfg.weigh { weights } else { 0 };
    assert_eq!(stats.retained_bytes, expected, "{stats:?}");
    for obj in &mut held {
        claim(obj, usize::MAX);
        release(obj);
    }
}

/// After a `clear`, `pool` keeps exactly as many objects of weight 1 as its capacity and byte
/// budget allow and refuses the next; and, weighed, exactly one object of its whole byte
/// budget. A unit that a panic left counted for good refuses one too early; one given back
/// twice keeps one too many.
fn check_budget_is_exact(pool: &Pool<Obj>, census: &Arc<Census>, cfg: &Config) {
    pool.clear();
    let stats = pool.stats();
    assert_eq!((stats.retained, stats.retained_bytes), (0, 0), "{stats:?}");
    let room = cfg
        .byte_budget
        .map_or(cfg.capacity, |bytes| bytes.min(cfg.capacity));
    for kept in 0..room {
        let kept_now = pool.try_put(census.make(false, 1)).is_ok();
        assert!(kept_now, "a unit was lost: {kept} of {room} kept");
    }
    let over = pool.try_put(census.make(false, 1));
    assert!(
        over.is_err(),
        "a unit was given back twice: {room} kept and one more"
    );
    drop(over);
    if let Some(bytes) = cfg.byte_budget {
        if cfg.max_object_bytes.map_or(true, |max| max >= bytes) {
            pool.clear();
            let whole = pool.try_put(census.make(false, bytes));
            assert!(whole.is_ok(), "bytes were lost: {bytes} refused");
            let over = pool.try_put(census.make(false, 1));
            assert!(
                over.is_err(),
                "bytes given back twice: {bytes} kept and one more"
            );
        }
    }
    pool.clear();
}

/// One pool through `GENERATIONS` generations of `THREADS` threads, then the end checks.
fn run_case(case: u64) {
    let mut rng = XorShift::new(0x686f_6f6b_735f_706f ^ case);
    let cfg = Config::draw(case, &mut rng);
    let census = Census::new();
    let pool = Arc::new(cfg.build(&census));
    let mut leaked = 0;
    HOOK_DROPS.store(0, SeqCst);
    ARMED.store(true, SeqCst);
    for generation in 0..GENERATIONS {
        // A ring: thread t sends its guards to thread t + 1.
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel()).unzip();
        let threads: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(t, from_previous)| {
                let worker_pool = Arc::clone(&pool);
                let census = Arc::clone(&census);
                let to_next = senders[(t + 1) % THREADS].clone();
                let seed = splitmix((case << 32) | ((generation as u64) << 16) | t as u64);
                let tag = 1 + generation * THREADS + t;
                thread::Builder::new()
                    .name(format!("case {case}, generation {generation}, thread {t}"))
                    .spawn(move || {
                        let worker = Worker {
                            pool: &worker_pool,
                            census: &census,
                            cfg,
                            tag,
                            rng: XorShift::new(seed),
                            held: Vec::new(),
                            to_next: Some(to_next),
                        };
                        worker.run(from_previous);
                    })
                    .expect("spawn")
            })
            .collect();
        drop(senders);
        for thread in threads {
            if let Err(payload) = thread.join() {
                let msg = message(&*payload);
                panic!("case {case} ({cfg:?}), generation {generation}: a thread failed: {msg}");
            }
        }
        let when = format!("case {case} ({cfg:?}) after generation {generation}");
        leaked = check_joined(&pool, &census, &cfg, &when).leaked;
    }
    assert!(ARMED.swap(false, SeqCst), "disarmed by a panic");
    check_retained_bytes(&pool, &cfg);
    check_budget_is_exact(&pool, &census, &cfg);
    let when = format!("case {case} ({cfg:?}) at the end");
    check_joined(&pool, &census, &cfg, &when);
    drop(pool);
    let audit = census.audit();
    assert_eq!(audit.live, 0, "{when}: objects never dropped: {audit:?}");
    assert_eq!(audit.leaked, leaked, "{when}");
}

#[test]
fn hooks_that_panic_on_several_threads_lose_nothing_and_drop_nothing_twice() {
    install_panic_hook();
    for case in 0..CASES {
        run_case(case);
    }
}
