//! proptest: random op sequences on 2–3 simulated threads against a plain model of the pool.
//!
//! Each simulated thread is a long-lived worker driven over a channel; the driver sends one op at a
//! time and waits for it to finish, so a run is sequential and deterministic, and the pool's
//! answers are exact. A worker can exit (its cache stays in the pool) while the others go on. The
//! fresh worker that replaces it claims a thread slot either after the exit (it then usually
//! inherits the exited one's slot and cache) or, in half the exits, before it, so that only a
//! reclaim finds what the exited one cached. What the pool retains is then known object by object:
//! every object carries an id and a census records which are alive, so the objects the pool retains
//! are the live ones nobody holds (not lent out, detached, handed back by `try_put`, or leaked with
//! `mem::forget`). Against that the run checks the promises of issue #10, after every op:
//! - retained objects ≤ capacity, retained bytes ≤ byte budget, and `len()` is exactly the
//!   model's count (nothing lost, nothing duplicated: made − dropped = retained + held +
//!   detached + forgotten);
//! - a get while `len() > 0` is a hit, on whatever thread, unless the retained objects are
//!   no more than the other live workers' hot slots hold (one each: a live thread's hot object
//!   is left to it, a documented trade-off); a get while `len() == 0` is a miss; `try_get`
//!   is `Some` under the same rule; every object handed out is reset;
//! - a returned object that fits (`keep_if`, `max_object_bytes`) is retained exactly when the
//!   retained objects and bytes leave room for it: objects lent out, idle and exited threads'
//!   caches, `into_inner` and `mem::forget` never make the pool refuse;
//! - `prefill(n)` adds `n`, or fewer where the objects or bytes retained reach the ceiling, or
//!   none if a factory object would be refused on return (`keep_if`, `max_object_bytes`: it is
//!   dropped and counted as discarded); `clear` and
//!   `trim(k)` leave 0 and `min(len, k)` objects and drop the rest;
//! - the counters: `hits + misses` is the number of gets, `returned` the returns kept,
//!   `discarded` the drops and puts refused.
//!
//! One pool kind per test: counted only, and weighed (`weigh` by the buffer's capacity, a
//! small byte budget, sometimes `max_object_bytes`) with buffers of random capacity.
//!
//! `PROPTEST_CASES=n` sets the case count (default 128 per test) for a longer campaign.

#![cfg(not(loom))]

use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{channel, sync_channel, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use thrifty::pool::{Pool, Pooled, PooledOwned};

/// Objects whose buffer is longer than this are refused by `keep_if` (when the case sets one).
const KEEP_MAX: usize = 8;

/// Which objects exist: ids are handed out in order, and each object removes its id when it is
/// dropped, so a double drop or a drop of a never-made object fails at once.
#[derive(Debug, Default)]
struct Census {
    made: AtomicUsize,
    alive: Mutex<BTreeSet<usize>>,
}

impl Census {
    fn make(self: &Arc<Self>, buf: Vec<u8>) -> Obj {
        let id = self.made.fetch_add(1, SeqCst);
        assert!(lock(&self.alive).insert(id));
        Obj {
            id,
            buf,
            census: Arc::clone(self),
        }
    }

    fn alive(&self) -> BTreeSet<usize> {
        lock(&self.alive).clone()
    }

    fn made(&self) -> usize {
        self.made.load(SeqCst)
    }
}

#[derive(Debug)]
struct Obj {
    id: usize,
    buf: Vec<u8>,
    census: Arc<Census>,
}

impl Drop for Obj {
    fn drop(&mut self) {
        let known = lock(&self.census.alive).remove(&self.id);
        // Not an `assert!`: a second panic while a failed case unwinds would abort.
        if !known && !std::thread::panicking() {
            panic!("object {} dropped twice", self.id);
        }
    }
}

/// Locks `m`, ignoring poison: a failed case must not break the next one.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A long-lived thread that runs the jobs it is sent, one at a time.
struct Worker {
    jobs: Option<Sender<Box<dyn FnOnce() + Send>>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn() -> Self {
        let (jobs, rx) = channel::<Box<dyn FnOnce() + Send>>();
        let thread = std::thread::spawn(move || rx.into_iter().for_each(|job| job()));
        Self {
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }

    /// Runs `f` on this worker and waits for its result.
    fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = sync_channel(1);
        let job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs.as_ref().unwrap().send(job).unwrap();
        rx.recv().expect("the job panicked on its worker")
    }
}

impl Drop for Worker {
    /// The thread exits: its thread-locals are destroyed and its slot index given back before
    /// `join` returns.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// `get_owned` on a worker; the guard is held, with that worker as its home.
    Get(usize),
    /// `try_get` on a worker; a guard it gets is detached with `into_inner` (`true`) or
    /// dropped at once, on that worker (`try_get` guards borrow the pool, so they stay there).
    TryGet(usize, bool),
    /// Appends bytes to a held guard's buffer (it may grow: a new weight).
    Fill(usize, usize, usize),
    /// Drops a held guard on its home worker.
    Drop(usize, usize),
    /// Hands a held guard to another worker (`+ 1 + n` after its home) and drops it there.
    Hand(usize, usize, usize),
    IntoInner(usize, usize),
    Forget(usize, usize),
    /// `put` of a new buffer of this capacity, with this many bytes in it.
    Put(usize, usize, usize),
    TryPut(usize, usize, usize),
    /// `put` of a detached object (from `into_inner` or a refused `try_put`).
    PutDetached(usize, usize),
    Prefill(usize, usize),
    Clear(usize),
    Trim(usize, usize),
    /// The worker exits; a fresh one takes its place (and its guards as their home). With `true`
    /// the fresh one claims a thread slot of its own first, so it cannot inherit the exited
    /// one's slot and cache: what the exited thread cached is found only by a reclaim.
    Exit(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let w = 0usize..3;
    let i = any::<usize>();
    prop_oneof![
        6 => w.clone().prop_map(Op::Get),
        2 => (w.clone(), any::<bool>()).prop_map(|(w, keep)| Op::TryGet(w, keep)),
        3 => (w.clone(), i, 0usize..24).prop_map(|(w, i, n)| Op::Fill(w, i, n)),
        5 => (w.clone(), i).prop_map(|(w, i)| Op::Drop(w, i)),
        3 => (w.clone(), i, 0usize..2).prop_map(|(w, i, to)| Op::Hand(w, i, to)),
        1 => (w.clone(), i).prop_map(|(w, i)| Op::IntoInner(w, i)),
        1 => (w.clone(), i).prop_map(|(w, i)| Op::Forget(w, i)),
        2 => (w.clone(), 0usize..48, 0usize..12).prop_map(|(w, c, n)| Op::Put(w, c, n)),
        2 => (w.clone(), 0usize..48, 0usize..12).prop_map(|(w, c, n)| Op::TryPut(w, c, n)),
        1 => (w.clone(), i).prop_map(|(w, i)| Op::PutDetached(w, i)),
        1 => (w.clone(), 0usize..8).prop_map(|(w, n)| Op::Prefill(w, n)),
        1 => w.clone().prop_map(Op::Clear),
        1 => (w.clone(), 0usize..7).prop_map(|(w, k)| Op::Trim(w, k)),
        2 => (w, any::<bool>()).prop_map(|(w, aside)| Op::Exit(w, aside)),
    ]
}

/// A pool's settings. Unweighed pools weigh every object 0 against an unlimited budget.
#[derive(Debug, Clone)]
struct Config {
    threads: usize,
    capacity: usize,
    /// `Some((byte_budget, max_object_bytes))` for a weighed pool.
    weighed: Option<(usize, Option<usize>)>,
    keep_if: bool,
    reset_on_return: bool,
    /// The capacity of the factory's buffers.
    factory: usize,
}

impl Config {
    fn budget(&self) -> usize {
        self.weighed.map_or(usize::MAX, |(budget, _)| budget)
    }

    fn max_object(&self) -> usize {
        self.weighed.and_then(|(_, max)| max).unwrap_or(usize::MAX)
    }

    /// What a returned buffer weighs, and whether the pool may keep it at all.
    fn fit(&self, buf: &[u8], capacity: usize) -> Fit {
        let weight = if self.weighed.is_some() { capacity } else { 0 };
        // `keep_if` sees the buffer after the reset when it is reset on return.
        let keep = !self.keep_if || self.reset_on_return || buf.len() <= KEEP_MAX;
        Fit {
            weight,
            fits: keep && weight <= self.max_object(),
        }
    }

    fn build(&self, census: &Arc<Census>) -> Pool<Obj> {
        let mut builder = Pool::builder()
            .capacity(self.capacity)
            .reset(|o: &mut Obj| o.buf.clear())
            .reset_on_return(self.reset_on_return);
        if self.keep_if {
            builder = builder.keep_if(|o: &Obj| o.buf.len() <= KEEP_MAX);
        }
        if let Some((budget, max)) = self.weighed {
            builder = builder
                .weigh(|o: &Obj| o.buf.capacity())
                .byte_budget(budget);
            if let Some(max) = max {
                builder = builder.max_object_bytes(max);
            }
        }
        let (c, factory) = (Arc::clone(census), self.factory);
        builder.build(move || c.make(Vec::with_capacity(factory)))
    }
}

/// The counters the pool should report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    hits: u64,
    misses: u64,
    returned: u64,
    discarded: u64,
    retained: usize,
}

/// Runs one case: the pool, its workers, what the driver holds, and the model.
struct Run {
    cfg: Config,
    census: Arc<Census>,
    pool: Arc<Pool<Obj>>,
    workers: Vec<Worker>,
    /// `held[w]`: guards whose home is worker `w`.
    held: Vec<Vec<PooledOwned<Obj>>>,
    /// Objects out of the pool for good (until put back): `into_inner`, refused `try_put`.
    detached: Vec<Obj>,
    /// Ids of objects leaked with `mem::forget` of their guard: alive forever.
    forgotten: BTreeSet<usize>,
    /// The weight each object went into the pool with (what it weighs while retained).
    weights: HashMap<usize, usize>,
    /// The factory's buffers' weight.
    factory_weight: usize,
    counts: Counts,
    /// `made_by[w]`: objects worker `w`'s gets made (its cache's misses).
    made_by: Vec<u64>,
    /// `grow_until[w]`: after a get of worker `w` took objects by a reclaim, its gets may make
    /// objects until `made_by[w]` reaches this, while other live threads' stacks hold some
    /// (`GROW_BEFORE_RECLAIM` in the pool).
    grow_until: Vec<u64>,
}

impl Run {
    fn new(cfg: Config) -> Self {
        let threads = cfg.threads;
        let census = Arc::new(Census::default());
        let pool = Arc::new(cfg.build(&census));
        let factory_weight = if cfg.weighed.is_some() {
            Vec::<u8>::with_capacity(cfg.factory).capacity()
        } else {
            0
        };
        Self {
            workers: (0..cfg.threads).map(|_| Worker::spawn()).collect(),
            held: (0..cfg.threads).map(|_| Vec::new()).collect(),
            cfg,
            census,
            pool,
            detached: Vec::new(),
            forgotten: BTreeSet::new(),
            weights: HashMap::new(),
            factory_weight,
            counts: Counts::default(),
            made_by: vec![0; threads],
            grow_until: vec![0; threads],
        }
    }

    /// Ids of the objects the pool must be retaining: alive, and held by nobody.
    fn retained(&self) -> BTreeSet<usize> {
        let mut ids = self.census.alive();
        for g in self.held.iter().flatten() {
            assert!(ids.remove(&g.id), "held object {} is not alive", g.id);
        }
        for o in &self.detached {
            assert!(ids.remove(&o.id), "detached object {} is not alive", o.id);
        }
        for id in &self.forgotten {
            assert!(ids.remove(id), "forgotten object {id} was dropped");
        }
        ids
    }

    fn bytes(&self, retained: &BTreeSet<usize>) -> usize {
        retained
            .iter()
            .map(|id| match self.weights.get(id) {
                Some(&w) => w,
                None => panic!("retained object {id} never went into the pool"),
            })
            .sum()
    }

    /// The whole-state check after every op.
    fn check(&self, op: &Op) {
        let retained = self.retained();
        let len = self.pool.len();
        assert_eq!(
            len,
            retained.len(),
            "after {op:?}: len() is not the objects made, not dropped and held by nobody"
        );
        assert!(len <= self.cfg.capacity, "after {op:?}: {len} retained");
        assert_eq!(self.pool.is_empty(), len == 0);
        let bytes = self.bytes(&retained);
        assert!(
            bytes <= self.cfg.budget(),
            "after {op:?}: {bytes} bytes retained"
        );
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
        assert_eq!(seen, want, "after {op:?}: stats");
        let mut ids = BTreeSet::new();
        for g in self.held.iter().flatten() {
            assert!(ids.insert(g.id), "object {} handed to two holders", g.id);
        }
    }

    fn worker(&self, w: usize) -> usize {
        w % self.cfg.threads
    }

    /// Takes guard `i` (modulo) of worker `w`'s held list, if it has any.
    fn take_held(&mut self, w: usize, i: usize) -> Option<PooledOwned<Obj>> {
        let held = &mut self.held[w];
        (!held.is_empty()).then(|| held.swap_remove(i % held.len()))
    }

    fn step(&mut self, op: &Op) {
        let before = self.retained();
        let (len0, bytes0) = (before.len(), self.bytes(&before));
        match *op {
            Op::Get(w) => {
                let w = self.worker(w);
                let made = self.census.made();
                let reclaims = self.pool.stats().reclaims;
                let pool = Arc::clone(&self.pool);
                let g = self.workers[w].run(move || pool.get_owned());
                assert!(g.buf.is_empty(), "{op:?}: object {} not reset", g.id);
                // A live thread's hot object is left to it (see `Pool`'s docs): a get may miss
                // while the retained objects are no more than the other workers' hot slots
                // can hold, one each. And a thread whose get took objects by a reclaim makes its
                // next few objects rather than take live threads' stacks again.
                let hidden = self.workers.len() - 1;
                let growing = self.made_by[w] < self.grow_until[w];
                if len0 > 0 && !(g.id == made && (len0 <= hidden || growing)) {
                    if self.pool.stats().reclaims != reclaims {
                        self.grow_until[w] = self.made_by[w] + 8;
                    }
                    assert!(
                        before.contains(&g.id),
                        "{op:?}: a get while {len0} were retained called the factory \
                         (object {})",
                        g.id
                    );
                    self.counts.hits += 1;
                } else {
                    assert_eq!(
                        g.id, made,
                        "{op:?}: a get from an empty pool made no object"
                    );
                    self.counts.misses += 1;
                    self.made_by[w] += 1;
                }
                self.held[w].push(g);
            }
            Op::TryGet(w, keep) => {
                let w = self.worker(w);
                let made = self.census.made();
                let reclaims = self.pool.stats().reclaims;
                let pool = Arc::clone(&self.pool);
                let cfg = self.cfg.clone();
                let got = self.workers[w].run(move || {
                    let g = pool.try_get()?;
                    let seen = (g.id, g.buf.is_empty(), cfg.fit(&g.buf, g.buf.capacity()));
                    Some(match keep {
                        true => (seen, Some(Pooled::into_inner(g))),
                        false => (seen, None),
                    })
                });
                assert_eq!(self.census.made(), made, "{op:?} called the factory");
                // A `try_get` that took objects by a reclaim opens the same window as a get's:
                // the thread's next few gets make objects rather than take live stacks again.
                if self.pool.stats().reclaims != reclaims {
                    self.grow_until[w] = self.made_by[w] + 8;
                }
                match got {
                    None => assert!(
                        len0 < self.workers.len(),
                        "{op:?}: None while {len0} were retained"
                    ),
                    Some(((id, reset, fit), kept)) => {
                        assert!(before.contains(&id), "{op:?}: not a retained object");
                        assert!(reset, "{op:?}: object {id} not reset");
                        self.counts.hits += 1;
                        match kept {
                            Some(o) => self.detached.push(o),
                            // Dropped on the worker right after the get.
                            None => self.returned(op, id, fit, len0 - 1, None),
                        }
                    }
                }
            }
            Op::Fill(w, i, n) => {
                let w = self.worker(w);
                let held = &mut self.held[w];
                if !held.is_empty() {
                    let at = i % held.len();
                    held[at].buf.extend(std::iter::repeat(0xAB).take(n));
                }
            }
            Op::Drop(w, i) | Op::Hand(w, i, _) => {
                let w = self.worker(w);
                let on = match *op {
                    Op::Hand(_, _, to) if self.cfg.threads > 1 => {
                        (w + 1 + to % (self.cfg.threads - 1)) % self.cfg.threads
                    }
                    _ => w,
                };
                if let Some(g) = self.take_held(w, i) {
                    let (id, fit) = (g.id, self.cfg.fit(&g.buf, g.buf.capacity()));
                    self.workers[on].run(move || drop(g));
                    self.returned(op, id, fit, len0, None);
                }
            }
            Op::IntoInner(w, i) => {
                let w = self.worker(w);
                if let Some(g) = self.take_held(w, i) {
                    let o = self.workers[w].run(move || PooledOwned::into_inner(g));
                    self.detached.push(o);
                }
            }
            Op::Forget(w, i) => {
                let w = self.worker(w);
                if let Some(g) = self.take_held(w, i) {
                    self.forgotten.insert(g.id);
                    self.workers[w].run(move || forget(g));
                }
            }
            Op::Put(w, capacity, n) | Op::TryPut(w, capacity, n) => {
                let mut buf = Vec::with_capacity(capacity);
                buf.extend(std::iter::repeat(0xCD).take(n));
                let o = self.census.make(buf);
                self.put(op, w, o, matches!(op, Op::TryPut(..)), len0);
            }
            Op::PutDetached(w, i) => {
                if !self.detached.is_empty() {
                    let o = self.detached.swap_remove(i % self.detached.len());
                    self.put(op, w, o, false, len0);
                }
            }
            Op::Prefill(w, n) => {
                let w = self.worker(w);
                let made = self.census.made();
                let pool = Arc::clone(&self.pool);
                let added = self.workers[w].run(move || pool.prefill(n));
                let by_count = self.cfg.capacity - len0;
                let by_bytes = match self.factory_weight {
                    0 => usize::MAX,
                    fw => (self.cfg.budget() - bytes0) / fw,
                };
                // A fresh factory object, vetted as a return would vet it.
                let fresh = self
                    .cfg
                    .fit(&[], Vec::<u8>::with_capacity(self.cfg.factory).capacity());
                let room = if fresh.fits {
                    by_count.min(by_bytes)
                } else {
                    0
                };
                assert_eq!(
                    added,
                    n.min(room),
                    "{op:?}: {len0} objects and {bytes0} bytes retained, objects weigh {}",
                    self.factory_weight
                );
                let made_now = self.census.made() - made;
                assert!(
                    made_now == added || (added < n && made_now == added + 1),
                    "{op:?}: added {added} but made {made_now}"
                );
                // A full pool has no count to spare: nothing is made for it.
                if len0 >= self.cfg.capacity {
                    assert_eq!(made_now, 0, "{op:?}: made {made_now} for a full pool");
                }
                // One made and not kept (refused as a return would refuse it, or finding no
                // room left) is counted as discarded.
                if made_now > added {
                    self.counts.discarded += 1;
                }
                for id in made..self.census.made() {
                    self.weights.insert(id, self.factory_weight);
                }
            }
            Op::Clear(w) => {
                let pool = Arc::clone(&self.pool);
                self.workers[self.worker(w)].run(move || pool.clear());
                assert_eq!(self.pool.len(), 0, "{op:?}");
                let alive = self.census.alive();
                assert!(
                    before.iter().all(|id| !alive.contains(id)),
                    "{op:?}: a retained object was not dropped"
                );
            }
            Op::Trim(w, k) => {
                let pool = Arc::clone(&self.pool);
                self.workers[self.worker(w)].run(move || pool.trim(k));
                assert_eq!(self.pool.len(), len0.min(k), "{op:?}: {len0} were retained");
                let alive = self.census.alive();
                let kept = before.iter().filter(|id| alive.contains(id)).count();
                assert_eq!(kept, len0.min(k), "{op:?}: objects beyond {k} not dropped");
            }
            Op::Exit(w, aside) => {
                let w = self.worker(w);
                let fresh = Worker::spawn();
                if aside {
                    // A pool of its own claims the fresh thread's slot while the old one lives.
                    fresh.run(|| drop(Pool::new(Vec::<u8>::new).get()));
                }
                drop(std::mem::replace(&mut self.workers[w], fresh));
                // The new thread's cache (its own slot's, or its predecessor's) starts its
                // pacing afresh: it claims the cache (`Section::claim`).
                (self.made_by[w], self.grow_until[w]) = (0, 0);
            }
        }
        self.check(op);
    }

    /// `put` (or `try_put`) of `o` on worker `w`, checked against the model.
    fn put(&mut self, op: &Op, w: usize, o: Obj, try_put: bool, len0: usize) {
        let w = self.worker(w);
        let (id, fit) = (o.id, self.cfg.fit(&o.buf, o.buf.capacity()));
        let pool = Arc::clone(&self.pool);
        let back = match try_put {
            false => {
                self.workers[w].run(move || pool.put(o));
                None
            }
            true => Some(self.workers[w].run(move || pool.try_put(o).err())),
        };
        self.returned(op, id, fit, len0, back);
    }

    /// Checks a return against the model: kept exactly when it fits and the retained objects
    /// and bytes leave room for it.
    ///
    /// `len0`: objects retained before the return; `back`: `None` for a guard's drop or a
    /// `put`, else what `try_put` gave back.
    fn returned(&mut self, op: &Op, id: usize, ok: Fit, len0: usize, back: Option<Option<Obj>>) {
        let bytes0 = {
            let mut before = self.retained();
            before.remove(&id);
            self.bytes(&before)
        };
        let room = len0 < self.cfg.capacity && ok.weight <= self.cfg.budget() - bytes0;
        let keep = ok.fits && room;
        let len = self.pool.len();
        let state = format!(
            "{op:?}: object {id} weighing {} (fits: {}), {len0} objects and {bytes0} bytes \
             retained, capacity {}, budget {}",
            ok.weight,
            ok.fits,
            self.cfg.capacity,
            self.cfg.budget()
        );
        if keep {
            assert_eq!(len, len0 + 1, "not retained: {state}");
            self.weights.insert(id, ok.weight);
            self.counts.returned += 1;
            if let Some(back) = back {
                assert!(back.is_none(), "try_put refused: {state}");
            }
        } else {
            assert_eq!(len, len0, "retained: {state}");
            match back {
                None => {
                    assert!(
                        !lock(&self.census.alive).contains(&id),
                        "not dropped: {state}"
                    );
                    self.counts.discarded += 1;
                }
                Some(back) => {
                    let back = back.unwrap_or_else(|| panic!("try_put kept: {state}"));
                    assert_eq!(back.id, id, "try_put gave back another object: {state}");
                    self.detached.push(back);
                }
            }
        }
    }

    /// Gives everything back, empties the pool, and checks that only leaked objects live on.
    fn finish(mut self) {
        for w in 0..self.cfg.threads {
            for g in std::mem::take(&mut self.held[w]) {
                self.workers[w].run(move || drop(g));
            }
        }
        self.detached.clear();
        let pool = Arc::clone(&self.pool);
        self.workers[0].run(move || pool.clear());
        assert_eq!(self.pool.len(), 0);
        assert_eq!(
            self.census.alive(),
            self.forgotten,
            "objects lost or leaked"
        );
        self.workers.clear();
        drop(self.pool);
        if self.forgotten.is_empty() {
            assert!(
                self.census.alive().is_empty(),
                "dropping the pool dropped everything"
            );
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Fit {
    weight: usize,
    fits: bool,
}

/// `mem::forget`s a guard; under Miri, keeps it in [`FORGOTTEN`] instead, where its drop never
/// runs either: the pool sees the same leak, and Miri's leak check, which counts what a static
/// reaches as live, does not report the deliberately leaked object, pool and census.
fn forget(g: PooledOwned<Obj>) {
    if cfg!(miri) {
        lock(&FORGOTTEN).push(g);
    } else {
        std::mem::forget(g);
    }
}

/// The guards [`forget`] kept under Miri, never dropped.
static FORGOTTEN: Mutex<Vec<PooledOwned<Obj>>> = Mutex::new(Vec::new());

/// Cases run one at a time: slot indices are process-wide, and a run is only reproducible if
/// no other case's threads take them meanwhile.
static SERIAL: Mutex<()> = Mutex::new(());

fn run(cfg: Config, ops: &[Op]) {
    let _serial = lock(&SERIAL);
    let mut run = Run::new(cfg);
    for op in ops {
        run.step(op);
    }
    run.finish();
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if cfg!(miri) { 4 } else { 128 })
}

fn config(weighed: bool) -> impl Strategy<Value = Config> {
    let weighed = if weighed {
        (0usize..160, prop::option::of(8usize..48))
            .prop_map(Some)
            .boxed()
    } else {
        Just(None).boxed()
    };
    (
        2usize..4,
        0usize..7,
        weighed,
        any::<bool>(),
        any::<bool>(),
        0usize..32,
    )
        .prop_map(
            |(threads, capacity, weighed, keep_if, reset_on_return, factory)| Config {
                threads,
                capacity,
                weighed,
                keep_if,
                reset_on_return,
                factory,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn counted_pool_keeps_its_promises_across_threads(
        cfg in config(false),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        run(cfg, &ops);
    }

    #[test]
    fn weighed_pool_keeps_its_promises_across_threads(
        cfg in config(true),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        run(cfg, &ops);
    }
}

/// A weighed pool of `capacity` objects and 32 bytes, factory buffers of `factory` bytes.
fn weighed(capacity: usize, factory: usize) -> Config {
    Config {
        threads: 2,
        capacity,
        weighed: Some((32, None)),
        keep_if: false,
        reset_on_return: false,
        factory,
    }
}

/// The shortest case the fuzzer found (`fuzz/ops/pool.rs` input `2e 00 ca 00 02 02`): one
/// thread lends out A (0 bytes) and B (32 bytes, which went through its hot slot); A comes back
/// first, into the hot slot, which still reserves B's 32 bytes; then B is refused, with 1
/// object and 0 bytes retained out of 2 and 32.
#[test]
fn issue_10_stranded_bytes_never_refuse_a_guard() {
    let ops = [
        Op::Get(0),           // a miss: A, 0 bytes
        Op::TryPut(0, 32, 0), // B, 32 bytes, retained in thread 0's hot slot
        Op::Get(0),           // a hit: B
        Op::Drop(0, 0),       // A back, into the hot slot
        Op::Drop(0, 0),       // B back: 0 bytes retained, room for 32
    ];
    run(weighed(2, 0), &ops);
}

/// Thread 0's hot slot holds an object of 0 bytes under a reservation of more than 20: A
/// went through the hot slot at that weight and is lent out again, B took its place. 1 object
/// and 0 bytes are retained (capacity 2, 32 bytes), so `then` has room for one more object of
/// up to 32 bytes.
fn stranded_hot_bytes(then: Op) {
    let ops = [
        Op::Get(0),         // a miss: A, 12 bytes
        Op::Fill(0, 0, 21), // A grows past 20 bytes
        Op::Drop(0, 0),     // A retained in thread 0's hot slot
        Op::Get(0),         // a hit: A lent out again
        Op::Put(0, 0, 0),   // B, 0 bytes, retained in the hot slot
        then,
    ];
    run(weighed(2, 12), &ops);
}

#[test]
fn issue_10_stranded_bytes_never_refuse_a_put_on_the_same_thread() {
    stranded_hot_bytes(Op::Put(0, 16, 0));
}

#[test]
fn issue_10_stranded_bytes_never_refuse_a_put_on_another_thread() {
    stranded_hot_bytes(Op::Put(1, 16, 0));
}

#[test]
fn issue_10_stranded_bytes_never_cut_a_prefill_short() {
    stranded_hot_bytes(Op::Prefill(1, 1));
}

/// The same through the stack: thread 0's stack reserves 24 bytes for an object of 0, and
/// thread 1 gives back 16 bytes.
#[test]
fn issue_10_stranded_stack_bytes_never_refuse_a_put() {
    let ops = [
        Op::Get(0),         // a miss: A, 0 bytes
        Op::Get(0),         // a miss: B, 0 bytes
        Op::Fill(0, 0, 24), // A grows to 24 bytes
        Op::Drop(0, 1),     // B retained in the hot slot
        Op::Drop(0, 0),     // A retained on the stack, which reserves 24 bytes
        Op::Get(0),         // B lent out again (the hot slot)
        Op::Get(0),         // A lent out again (the stack)
        Op::Put(0, 0, 0),   // C, 0 bytes, in the hot slot
        Op::Put(0, 0, 0),   // D, 0 bytes, on the stack under A's 24 bytes
        Op::Put(1, 16, 0),  // 2 objects and 0 bytes retained: room for 16 bytes
    ];
    run(weighed(3, 0), &ops);
}
