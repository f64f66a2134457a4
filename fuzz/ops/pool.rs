//! Op-sequence interpreter for `thrifty::pool`, shared by the cargo-fuzz target and
//! `tests/fuzz_corpus.rs`. Parses raw bytes by hand (no `arbitrary`), so it builds on stable.
//!
//! Layout: byte 0 is the pool: capacity (bits 0–2), reset on return (bit 3), a `keep_if` that
//! refuses objects longer than [`KEEP_MAX`] (bit 4), weighed by the buffer's capacity (bit 5),
//! and which of [`WEIGHED`]'s budgets (bits 6–7). Every later byte is an op (low 4 bits) with
//! its argument (high 4 bits, and for some ops the next byte); at most [`MAX_OPS`] run.
//!
//! Ops run one at a time, on the fuzzing thread or, for a few ops at a time, on a helper
//! thread (a fresh one each time, which exits after them, leaving its cache behind), so the
//! pool's answers are exact. The interpreter knows which objects exist (a census of ids) and
//! which ones it holds, so the objects the pool retains are the others, and it checks after
//! every op: `len()` is exactly that count (nothing lost or duplicated), at most the capacity,
//! their weights at most the byte budget; every object handed out is reset and has one holder;
//! the counters are exact. Per op: a get while the pool retains objects is a hit (whatever
//! cache holds them, except a live thread's hot object, which is left to it), a get while it
//! retains none a miss; `try_get` is `Some` under the same rule; a returned object that fits is retained exactly when the retained objects
//! and bytes leave room for it; `prefill`, `trim` and `clear` leave exactly what they say.
//! A reset panics on an object whose first byte is [`POISON`]: the object is dropped and
//! counted as discarded, and the pool goes on.

use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use thrifty::pool::{Pool, Pooled, PooledOwned};

/// A byte that makes the reset panic when it is the object's first byte.
const POISON: u8 = 0xEE;
/// With the `keep_if` flag on, objects longer than this are refused on return.
const KEEP_MAX: usize = 16;
/// Ops run at most per input: each may start a thread.
const MAX_OPS: usize = 128;
/// Weighed pools' settings, picked by bits 6–7 of byte 0: byte budget, `max_object_bytes`,
/// and the capacity of the factory's buffers.
const WEIGHED: [(usize, Option<usize>, usize); 4] = [
    (48, None, 0),
    (96, None, 8),
    (160, Some(40), 16),
    (16, None, 4),
];

/// Which objects exist: ids in order of making, removed when dropped.
#[derive(Default)]
struct Census {
    made: AtomicUsize,
    alive: Mutex<BTreeSet<usize>>,
}

impl Census {
    fn make(self: &Arc<Self>, data: Vec<u8>) -> Obj {
        let id = self.made.fetch_add(1, SeqCst);
        lock(&self.alive).insert(id);
        Obj {
            id,
            data,
            census: self.clone(),
        }
    }

    fn made(&self) -> usize {
        self.made.load(SeqCst)
    }

    fn alive(&self) -> BTreeSet<usize> {
        lock(&self.alive).clone()
    }

    fn is_alive(&self, id: usize) -> bool {
        lock(&self.alive).contains(&id)
    }
}

/// Locks `m`, ignoring poison (the reset panics on purpose).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Obj {
    id: usize,
    data: Vec<u8>,
    census: Arc<Census>,
}

impl Drop for Obj {
    fn drop(&mut self) {
        let known = lock(&self.census.alive).remove(&self.id);
        if !known && !std::thread::panicking() {
            panic!("object {} dropped twice", self.id);
        }
    }
}

/// The pool's settings, as the model needs them.
#[derive(Clone, Copy)]
struct Config {
    capacity: usize,
    reset_on_return: bool,
    keep_if: bool,
    weighed: bool,
    budget: usize,
    max_object: usize,
    /// The capacity of the factory's buffers.
    factory: usize,
}

impl Config {
    fn parse(byte: u8) -> Self {
        let (budget, max_object, factory) = WEIGHED[usize::from(byte >> 6)];
        let weighed = byte & 32 != 0;
        Self {
            capacity: usize::from(byte & 7),
            reset_on_return: byte & 8 != 0,
            keep_if: byte & 16 != 0,
            weighed,
            budget: if weighed { budget } else { usize::MAX },
            max_object: max_object.filter(|_| weighed).unwrap_or(usize::MAX),
            factory: if weighed { factory } else { 0 },
        }
    }

    fn build(&self, census: &Arc<Census>) -> Pool<Obj> {
        let mut builder = Pool::builder()
            .capacity(self.capacity)
            .reset_on_return(self.reset_on_return)
            .reset(|o: &mut Obj| {
                let poisoned = o.data.first() == Some(&POISON);
                o.data.clear();
                assert!(!poisoned, "poisoned object (expected by the fuzzer)");
            });
        if self.keep_if {
            builder = builder.keep_if(|o: &Obj| o.data.len() <= KEEP_MAX);
        }
        if self.weighed {
            builder = builder
                .weigh(|o: &Obj| o.data.capacity())
                .byte_budget(self.budget);
            if self.max_object != usize::MAX {
                builder = builder.max_object_bytes(self.max_object);
            }
        }
        let (c, factory) = (census.clone(), self.factory);
        builder.build(move || c.make(Vec::with_capacity(factory)))
    }

    fn weight(&self, o: &Obj) -> usize {
        if self.weighed {
            o.data.capacity()
        } else {
            0
        }
    }
}

/// The counters `stats()` should show.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    hits: u64,
    misses: u64,
    returned: u64,
    discarded: u64,
    retained: usize,
}

/// What came of giving an object back.
enum Returned {
    /// A guard's drop or a `put` finished (the object was kept or dropped).
    Done,
    /// `try_put` finished: what it gave back.
    Try(Option<Obj>),
    /// The reset on return panicked.
    Panicked,
}

/// An object about to go back, as the model sees it before the return hooks run.
struct Going {
    id: usize,
    weight: usize,
    poisoned: bool,
    len: usize,
}

impl Going {
    fn of(cfg: &Config, o: &Obj) -> Self {
        Self {
            id: o.id,
            weight: cfg.weight(o),
            poisoned: o.data.first() == Some(&POISON),
            len: o.data.len(),
        }
    }
}

/// One input's pool, what the interpreter holds, and the model.
struct Run<'p> {
    cfg: Config,
    pool: &'p Arc<Pool<Obj>>,
    census: &'p Arc<Census>,
    held: Vec<Pooled<'p, Obj>>,
    owned: Vec<PooledOwned<Obj>>,
    /// Objects out of the pool for good (until put back): `into_inner`, refused `try_put`.
    detached: Vec<Obj>,
    /// Weight, and whether it was poisoned, of each object when it went into the pool.
    entered: HashMap<usize, (usize, bool)>,
    counts: Counts,
    on_helper: bool,
    ops: usize,
}

/// Runs the ops encoded in `data`; panics if an invariant breaks.
pub fn run(data: &[u8]) {
    let Some((&config, mut ops)) = data.split_first() else {
        return;
    };
    let cfg = Config::parse(config);
    let census = Arc::new(Census::default());
    let pool = Arc::new(cfg.build(&census));
    let mut run = Run {
        cfg,
        pool: &pool,
        census: &census,
        held: Vec::new(),
        owned: Vec::new(),
        detached: Vec::new(),
        entered: HashMap::new(),
        counts: Counts::default(),
        on_helper: false,
        ops: 0,
    };
    while !ops.is_empty() && run.ops < MAX_OPS {
        run.step(&mut ops);
    }
    run.finish();
    drop(pool);
    assert!(census.alive().is_empty(), "objects made != objects dropped");
}

/// Takes the first byte off `ops` (0 when there is none).
fn next_byte(ops: &mut &[u8]) -> u8 {
    match ops.split_first() {
        Some((&b, rest)) => {
            *ops = rest;
            b
        }
        None => 0,
    }
}

impl<'p> Run<'p> {
    /// Ids of the objects the pool must be retaining: alive, and held by nobody.
    fn retained(&self) -> BTreeSet<usize> {
        let mut ids = self.census.alive();
        let held = self.held.iter().map(|o| o.id);
        let owned = self.owned.iter().map(|o| o.id);
        for id in held.chain(owned).chain(self.detached.iter().map(|o| o.id)) {
            assert!(ids.remove(&id), "object {id} held but not alive");
        }
        ids
    }

    fn bytes(&self, ids: &BTreeSet<usize>) -> usize {
        ids.iter().map(|id| self.entered[id].0).sum()
    }

    /// The whole-state check after every op.
    fn check(&self, op: u8) {
        let retained = self.retained();
        let len = self.pool.len();
        assert_eq!(len, retained.len(), "op {op:#04x}: len() is not the model's");
        assert!(len <= self.cfg.capacity, "op {op:#04x}: {len} retained");
        let bytes = self.bytes(&retained);
        assert!(bytes <= self.cfg.budget, "op {op:#04x}: {bytes} bytes retained");
        let s = self.pool.stats();
        let seen = Counts {
            hits: s.hits,
            misses: s.misses,
            returned: s.returned,
            discarded: s.discarded,
            retained: s.retained,
        };
        let want = Counts {
            retained: len,
            ..self.counts
        };
        assert_eq!(seen, want, "op {op:#04x}: stats");
        let mut ids = BTreeSet::new();
        for id in self.held.iter().map(|o| o.id).chain(self.owned.iter().map(|o| o.id)) {
            assert!(ids.insert(id), "object {id} handed to two holders");
        }
    }

    fn step(&mut self, ops: &mut &[u8]) {
        let op = next_byte(ops);
        self.ops += 1;
        let arg = usize::from(op >> 4);
        let pool: &'p Pool<Obj> = self.pool;
        let before = self.retained();
        match op & 15 {
            0 => {
                let made = self.census.made();
                let got = catch_unwind(AssertUnwindSafe(|| pool.get()));
                if let Some(o) = self.took(op, &before, made, got.ok().map(Some), true) {
                    self.held.push(o);
                }
            }
            1 => {
                let made = self.census.made();
                let got = catch_unwind(AssertUnwindSafe(|| Pool::get_owned(self.pool)));
                if let Some(o) = self.took(op, &before, made, got.ok().map(Some), true) {
                    self.owned.push(o);
                }
            }
            8 => {
                let made = self.census.made();
                let got = catch_unwind(AssertUnwindSafe(|| pool.try_get()));
                if let Some(o) = self.took(op, &before, made, got.ok(), false) {
                    self.held.push(o);
                }
            }
            2 if !self.held.is_empty() => {
                let o = self.held.swap_remove(arg % self.held.len());
                let going = Going::of(&self.cfg, &o);
                let done = catch_unwind(AssertUnwindSafe(|| drop(o)));
                self.gave(op, &before, going, done.map_or(Returned::Panicked, |_| Returned::Done));
            }
            3 if !self.owned.is_empty() => {
                // Given back on a fresh thread, which exits.
                let o = self.owned.swap_remove(arg % self.owned.len());
                let going = Going::of(&self.cfg, &o);
                let done = std::thread::spawn(move || drop(o)).join();
                self.gave(op, &before, going, done.map_or(Returned::Panicked, |_| Returned::Done));
            }
            4 => {
                // Write: the next byte is the value, `arg` the length.
                let value = next_byte(ops);
                let total = self.held.len() + self.owned.len();
                if total > 0 {
                    let at = arg % total;
                    let data = if at < self.held.len() {
                        &mut self.held[at].data
                    } else {
                        &mut self.owned[at - self.held.len()].data
                    };
                    data.extend(std::iter::repeat(value).take(arg));
                }
            }
            5 if !self.held.is_empty() => {
                let o = self.held.swap_remove(arg % self.held.len());
                self.detached.push(Pooled::into_inner(o));
            }
            6 => {
                let keep = arg % 8;
                pool.trim(keep);
                self.trimmed(op, &before, keep);
            }
            7 => {
                pool.clear();
                self.trimmed(op, &before, 0);
            }
            9 | 10 => {
                // A new value of capacity `4 * arg`, put (9) or try_put (10).
                let o = self.census.make(Vec::with_capacity(4 * arg));
                self.put(op, &before, o, op & 15 == 10);
            }
            11 | 15 if !self.detached.is_empty() => {
                // A detached object (perhaps dirty, perhaps poisoned), put (11) or try_put (15).
                let o = self.detached.swap_remove(arg % self.detached.len());
                self.put(op, &before, o, op & 15 == 15);
            }
            12 => {
                let n = arg % 8;
                let made = self.census.made();
                let added = pool.prefill(n);
                self.prefilled(op, &before, made, n, added);
            }
            13 => {
                // len and is_empty on the current thread.
                let len = pool.len();
                assert_eq!(len, before.len(), "op {op:#04x}: len()");
                assert_eq!(pool.is_empty(), len == 0, "op {op:#04x}: is_empty()");
            }
            14 if !self.on_helper => {
                // The next `arg % 8 + 1` ops run on a helper thread, which then exits.
                let n = arg % 8 + 1;
                std::thread::scope(|s| {
                    let helper = s.spawn(|| {
                        self.on_helper = true;
                        for _ in 0..n {
                            if ops.is_empty() || self.ops >= MAX_OPS {
                                break;
                            }
                            self.step(ops);
                        }
                        self.on_helper = false;
                    });
                    if let Err(panic) = helper.join() {
                        resume_unwind(panic);
                    }
                });
            }
            _ => {}
        }
        self.check(op);
    }

    /// Checks a get (`make`) or a `try_get` against the model; `got` is `None` if it panicked
    /// (a poisoned object's reset), else what it handed out.
    fn took<G: std::ops::Deref<Target = Obj>>(
        &mut self,
        op: u8,
        before: &BTreeSet<usize>,
        made: usize,
        got: Option<Option<G>>,
        make: bool,
    ) -> Option<G> {
        if !make {
            assert_eq!(self.census.made(), made, "op {op:#04x}: try_get called the factory");
        }
        // A live thread's hot object is left to it (see `Pool`'s docs): a get on the helper
        // may miss while the retained objects are no more than the one the fuzzing thread's
        // hot slot can hold. (The helpers that ran before have exited: theirs are taken.)
        let hidden = usize::from(self.on_helper);
        let missed = match &got {
            Some(Some(o)) => o.id == made,
            Some(None) => true,
            None => false,
        };
        if before.is_empty() || (missed && before.len() <= hidden) {
            return match got {
                Some(Some(o)) => {
                    assert!(make, "op {op:#04x}: try_get of an empty pool gave object {}", o.id);
                    assert_eq!(o.id, made, "op {op:#04x}: a miss gave an old object");
                    assert!(o.data.is_empty(), "op {op:#04x}: a fresh object is dirty");
                    self.counts.misses += 1;
                    Some(o)
                }
                Some(None) => None,
                None => panic!("op {op:#04x}: a get of an empty pool panicked"),
            };
        }
        // The pool retains objects: a hit, never a factory call.
        self.counts.hits += 1;
        assert_eq!(self.census.made(), made, "op {op:#04x}: a miss with {} retained", before.len());
        match got {
            Some(Some(o)) => {
                assert!(before.contains(&o.id), "op {op:#04x}: object {} was not retained", o.id);
                assert!(o.data.is_empty(), "op {op:#04x}: object {} handed out dirty", o.id);
                Some(o)
            }
            Some(None) => panic!("op {op:#04x}: try_get found nothing, {} retained", before.len()),
            None => {
                // The reset panicked: the object it got is gone, and was poisoned.
                assert!(!self.cfg.reset_on_return, "op {op:#04x}: a get reset on return");
                let gone: Vec<_> = before.iter().filter(|id| !self.census.is_alive(**id)).collect();
                assert_eq!(gone.len(), 1, "op {op:#04x}: a panicking get dropped {gone:?}");
                assert!(self.entered[gone[0]].1, "op {op:#04x}: reset panicked on a clean object");
                self.counts.discarded += 1;
                None
            }
        }
    }

    /// `put` or `try_put` of `o` on the current thread, checked.
    fn put(&mut self, op: u8, before: &BTreeSet<usize>, o: Obj, try_put: bool) {
        let going = Going::of(&self.cfg, &o);
        let pool = self.pool;
        let returned = if try_put {
            catch_unwind(AssertUnwindSafe(|| pool.try_put(o).err())).map(Returned::Try)
        } else {
            catch_unwind(AssertUnwindSafe(|| pool.put(o))).map(|()| Returned::Done)
        };
        self.gave(op, before, going, returned.unwrap_or(Returned::Panicked));
    }

    /// Checks a return against the model: with reset on return a poisoned object panics and is
    /// dropped; else it is kept exactly when it fits and the retained objects and bytes leave
    /// room for it.
    fn gave(&mut self, op: u8, before: &BTreeSet<usize>, o: Going, returned: Returned) {
        let (len0, bytes0) = (before.len(), self.bytes(before));
        let len = self.pool.len();
        let state = format!(
            "op {op:#04x}: object {} of {} bytes and length {}, {len0} objects and {bytes0} \
             bytes retained",
            o.id, o.weight, o.len
        );
        if self.cfg.reset_on_return && o.poisoned {
            assert!(matches!(returned, Returned::Panicked), "no panic: {state}");
            assert!(!self.census.is_alive(o.id), "kept a poisoned object: {state}");
            assert_eq!(len, len0, "{state}");
            self.counts.discarded += 1;
            return;
        }
        let keep_if = !self.cfg.keep_if || self.cfg.reset_on_return || o.len <= KEEP_MAX;
        let fits = keep_if && o.weight <= self.cfg.max_object;
        let room = len0 < self.cfg.capacity && o.weight <= self.cfg.budget - bytes0;
        if fits && room {
            assert_eq!(len, len0 + 1, "not retained: {state}");
            match returned {
                Returned::Done => {}
                Returned::Try(back) => assert!(back.is_none(), "try_put refused: {state}"),
                Returned::Panicked => panic!("panicked: {state}"),
            }
            let poisoned = o.poisoned && !self.cfg.reset_on_return;
            self.entered.insert(o.id, (o.weight, poisoned));
            self.counts.returned += 1;
        } else {
            assert_eq!(len, len0, "retained: {state} (fits: {fits})");
            match returned {
                Returned::Done => {
                    assert!(!self.census.is_alive(o.id), "not dropped: {state}");
                    self.counts.discarded += 1;
                }
                Returned::Try(Some(back)) => {
                    assert_eq!(back.id, o.id, "try_put gave back another object: {state}");
                    self.detached.push(back);
                }
                Returned::Try(None) => panic!("try_put kept: {state}"),
                Returned::Panicked => panic!("panicked: {state}"),
            }
        }
    }

    fn prefilled(&mut self, op: u8, before: &BTreeSet<usize>, made: usize, n: usize, added: usize) {
        let (len0, bytes0) = (before.len(), self.bytes(before));
        let weight = if self.cfg.weighed {
            Vec::<u8>::with_capacity(self.cfg.factory).capacity()
        } else {
            0
        };
        let by_bytes = (self.cfg.budget - bytes0).checked_div(weight).unwrap_or(usize::MAX);
        let room = (self.cfg.capacity - len0).min(by_bytes);
        assert_eq!(
            added,
            n.min(room),
            "op {op:#04x}: prefill({n}) with {len0} objects and {bytes0} bytes retained"
        );
        let made_now = self.census.made() - made;
        assert!(
            made_now == added || (added < n && made_now == added + 1),
            "op {op:#04x}: prefill added {added} and made {made_now}"
        );
        // A full pool has no count to spare: nothing is made for it.
        if len0 >= self.cfg.capacity {
            assert_eq!(made_now, 0, "op {op:#04x}: prefill made {made_now} for a full pool");
        }
        // One made and not kept (no room left for it) is counted as discarded.
        if made_now > added {
            self.counts.discarded += 1;
        }
        for id in made..self.census.made() {
            self.entered.insert(id, (weight, false));
        }
    }

    fn trimmed(&self, op: u8, before: &BTreeSet<usize>, keep: usize) {
        let kept = before.iter().filter(|id| self.census.is_alive(**id)).count();
        assert_eq!(kept, before.len().min(keep), "op {op:#04x}: trim({keep}) kept {kept}");
    }

    /// Gives everything back and checks the pool's bound once more.
    fn finish(mut self) {
        // One at a time: a poisoned object's reset-on-return panics in its guard's drop, and a
        // second panic while a `Vec` of guards unwinds would abort.
        for o in std::mem::take(&mut self.held) {
            let _ = catch_unwind(AssertUnwindSafe(|| drop(o)));
        }
        for o in std::mem::take(&mut self.owned) {
            let _ = catch_unwind(AssertUnwindSafe(|| drop(o)));
        }
        self.detached.clear();
        let s = self.pool.stats();
        assert!(s.retained <= self.cfg.capacity, "{s:?}");
        let retained = self.retained();
        assert_eq!(s.retained, retained.len(), "{s:?}");
    }
}
