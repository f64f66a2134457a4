//! Panics from the user's types inside the maps' writes: a key's or value's `Clone` or `Hash`
//! that panics part-way through a `CowMap` write (a whole copy, a copy into the spare, the
//! spare's replay, a copy that grows or rehashes in place), with and without readers reading,
//! and a key's `Hash` that panics while a `ShardedMap` shard rehashes in place or shrinks. Also
//! a `Drop` that panics while a `CowMap` write frees what it replaced or while a `ShardedMap`'s
//! `clear` or drop drops its entries or its `IntoIter` drops what it has left, and code a
//! `CowMap` runs that writes the same map: a write inside a write (which must panic, not
//! deadlock), and a value's `Drop` (which must be free to). And a call nested inside more maps
//! than the re-entrancy check tracks.
//!
//! Every key and value is a [`T`], which files each copy of itself by serial number in its
//! test's [`Probe`]: so each test can say exactly how many are alive, that nothing was dropped
//! twice, and (after dropping the map) that everything made was dropped. Each test checks that
//! the planned panic, and no other, reaches the caller, what the map holds after it, that the
//! next write works, and the books.

#![cfg(not(loom))]
// `T` keys hold their probe (atomics, a mutex), but hash and compare by `id` alone.
#![allow(clippy::mutable_key_type)]

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::ops::Range;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use thrifty::map::{Compute, CowMap, Reader, ShardedMap};

const CLONE_PANIC: &str = "panics_map: planned Clone panic";
const HASH_PANIC: &str = "panics_map: planned Hash panic";
const UPDATE_PANIC: &str = "panics_map: planned panic in an update's closure";
const DROP_PANIC: &str = "panics_map: planned Drop panic";

/// How long a scenario may take before it counts as hung: far past what any takes (a
/// millisecond), so that a thread stalled for seconds on a busy machine does not fail a test; it
/// costs only a failing run.
const HANG: Duration = Duration::from_secs(60);

/// A countdown shared by every copy of a test's objects: 0 is disarmed; armed with `n`, the
/// `n`th call to `spring` from then on returns `true` and disarms it.
#[derive(Default)]
struct Trap(AtomicUsize);

impl Trap {
    fn arm(&self, n: usize) {
        assert!(n > 0);
        self.0.store(n, SeqCst);
    }

    fn disarm(&self) {
        self.0.store(0, SeqCst);
    }

    #[allow(deprecated)] // `try_update` from Rust 1.95 on; the crate builds with 1.80
    fn spring(&self) -> bool {
        self.0.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)) == Ok(1)
    }
}

/// One test's books on its [`T`]s.
#[derive(Default)]
struct Probe {
    next_serial: AtomicU64,
    /// Serials of the copies alive now.
    live: Mutex<HashSet<u64>>,
    made: AtomicUsize,
    dropped: AtomicUsize,
    /// Drops of a serial that was not alive.
    double_drops: AtomicUsize,
    clones: AtomicUsize,
    hashes: AtomicUsize,
    clone_trap: Trap,
    hash_trap: Trap,
    drop_trap: Trap,
}

impl Probe {
    fn new() -> Arc<Self> {
        Arc::default()
    }

    fn live(&self) -> usize {
        self.made.load(SeqCst) - self.dropped.load(SeqCst)
    }

    fn clones(&self) -> usize {
        self.clones.load(SeqCst)
    }

    fn hashes(&self) -> usize {
        self.hashes.load(SeqCst)
    }

    #[track_caller]
    fn assert_no_double_drop(&self) {
        assert_eq!(
            self.double_drops.load(SeqCst),
            0,
            "a copy was dropped twice"
        );
        assert!(self.dropped.load(SeqCst) <= self.made.load(SeqCst));
    }

    /// For after the map is dropped: every copy made was dropped, once.
    #[track_caller]
    fn assert_all_dropped(&self) {
        self.assert_no_double_drop();
        assert_eq!(
            self.made.load(SeqCst),
            self.dropped.load(SeqCst),
            "copies leaked"
        );
        assert!(self.live.lock().unwrap().is_empty());
    }
}

/// A key or value: compared and hashed by `id` alone (so `&u64` looks it up without making a
/// `T`), counted in its probe when made, cloned, hashed and dropped; its `Clone` and `Hash`
/// panic when the probe's trap for them springs.
struct T {
    id: u64,
    serial: u64,
    probe: Arc<Probe>,
}

impl T {
    fn new(id: u64, probe: &Arc<Probe>) -> Self {
        let serial = probe.next_serial.fetch_add(1, SeqCst);
        probe.live.lock().unwrap().insert(serial);
        probe.made.fetch_add(1, SeqCst);
        T {
            id,
            serial,
            probe: probe.clone(),
        }
    }
}

impl Clone for T {
    fn clone(&self) -> Self {
        self.probe.clones.fetch_add(1, SeqCst);
        if self.probe.clone_trap.spring() {
            panic!("{CLONE_PANIC}");
        }
        T::new(self.id, &self.probe)
    }
}

impl Drop for T {
    fn drop(&mut self) {
        self.probe.dropped.fetch_add(1, SeqCst);
        let mut live = self.probe.live.lock().unwrap_or_else(|e| e.into_inner());
        if !live.remove(&self.serial) {
            self.probe.double_drops.fetch_add(1, SeqCst);
        }
        drop(live);
        if self.probe.drop_trap.spring() {
            panic!("{DROP_PANIC}");
        }
    }
}

impl Hash for T {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.probe.hashes.fetch_add(1, SeqCst);
        if self.probe.hash_trap.spring() {
            panic!("{HASH_PANIC}");
        }
        // As `u64` hashes: `Borrow<u64>` lookups find the same slot.
        self.id.hash(state);
    }
}

impl PartialEq for T {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for T {}

impl Borrow<u64> for T {
    fn borrow(&self) -> &u64 {
        &self.id
    }
}

/// Hashes a `u64` (all a [`T`] hashes) to itself: keys `0..n` of a table with more than `n`
/// buckets sit in slots `0..n`, in order, so a test can lay out where tombstones go.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64s are hashed here");
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Every map here hashes with [`IdHasher`].
type Id = BuildHasherDefault<IdHasher>;

/// Runs `f`, which must panic with `msg`: any other panic, or none, fails the test.
#[track_caller]
fn expect_panic<R>(msg: &str, f: impl FnOnce() -> R) {
    let Err(payload) = catch_unwind(AssertUnwindSafe(f)) else {
        panic!("expected the planned panic `{msg}`; the call returned");
    };
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("<not a string>");
    assert_eq!(text, msg, "the panic that reached the caller");
}

/// Runs `f` on a new thread and waits at most [`HANG`] for it, so a map left locked fails the
/// test instead of hanging it.
fn on_another_thread<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, finished) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let r = f();
        let _ = done.send(());
        r
    });
    match finished.recv_timeout(HANG) {
        Ok(()) | Err(RecvTimeoutError::Disconnected) => {}
        Err(RecvTimeoutError::Timeout) => panic!("{what}: not done after {HANG:?} (a deadlock?)"),
    }
    handle.join().unwrap_or_else(|e| resume_unwind(e))
}

/// Waits (yielding) until `ready`, failing after [`HANG`].
#[track_caller]
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + HANG;
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not after {HANG:?}");
        std::thread::yield_now();
    }
}

/// Sets its flag when dropped, panics included.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// CowMap

type Cow = CowMap<T, T, Id>;
/// What the map should hold, by ids.
type Model = BTreeMap<u64, u64>;

/// A map of keys `0..n`, each with value `10 * key`, built without a write (version 0).
fn cow_of(probe: &Arc<Probe>, n: u64) -> (Cow, Model) {
    let model: Model = (0..n).map(|k| (k, k * 10)).collect();
    let map = model
        .iter()
        .map(|(&k, &v)| (T::new(k, probe), T::new(v, probe)))
        .collect();
    (map, model)
}

/// Asserts the current version holds exactly `model`.
#[track_caller]
fn assert_contents(map: &Cow, model: &Model) {
    let snap = map.snapshot();
    let got: Model = snap.iter().map(|(k, v)| (k.id, v.id)).collect();
    assert_eq!(
        got.len(),
        snap.len(),
        "a key twice in version {}",
        snap.version()
    );
    assert_eq!(&got, model, "contents of version {}", snap.version());
    assert_eq!(map.len(), model.len());
}

/// [`assert_contents`], then, after `trim` (no `Reader` may hold an old version), that the
/// `T`s alive are exactly the map's keys and values: `trim` also lets go of the key the last
/// `insert` or `remove` recorded for the next write to replay.
#[track_caller]
fn assert_cow(map: &Cow, model: &Model, probe: &Probe) {
    assert_contents(map, model);
    map.trim();
    assert_eq!(map.retired_versions(), 0, "an old version outlived trim");
    assert_eq!(probe.live(), 2 * model.len(), "Ts alive beyond the map's");
    probe.assert_no_double_drop();
}

/// Inserts `k -> v` (expected to succeed), checks the write is visible, and returns the
/// clones and hashes the insert itself made.
#[track_caller]
fn cow_insert(map: &Cow, model: &mut Model, probe: &Arc<Probe>, k: u64, v: u64) -> (usize, usize) {
    let version = map.version();
    let (key, value) = (T::new(k, probe), T::new(v, probe));
    let (clones, hashes) = (probe.clones(), probe.hashes());
    let old = map.insert(key, value).map(|old| old.id);
    let made = (probe.clones() - clones, probe.hashes() - hashes);
    assert_eq!(old, model.insert(k, v));
    assert_eq!(map.version(), version + 1);
    assert_eq!(map.read(&k, |v| v.id), Some(v), "the write is not visible");
    made
}

/// A write that must panic with `msg` and leave the map as it was: same version, contents
/// `model`, no `T` alive beyond the map's (see [`assert_cow`]).
#[track_caller]
fn cow_write_panics(map: &Cow, model: &Model, probe: &Probe, msg: &str, write: impl FnOnce()) {
    let version = map.version();
    expect_panic(msg, write);
    probe.clone_trap.disarm();
    probe.hash_trap.disarm();
    assert_eq!(map.version(), version, "a failed write published a version");
    assert_cow(map, model, probe);
}

/// How [`spare_after`] writes its key.
enum By {
    /// `insert`: the new version records the insert, for the next write to replay.
    Insert,
    /// `update`: a version that records no change, so the next write copies the
    /// current version into the spare.
    Update,
}

/// Leaves `map` with a spare one write behind: `reader` holds the current version while a
/// write of `k` (value `10 * k`) replaces it, then moves on to the new one, so the next write
/// builds in the version the reader left (how, [`By`] says).
#[track_caller]
fn spare_after(
    by: By,
    map: &Cow,
    model: &mut Model,
    probe: &Arc<Probe>,
    reader: &mut Reader<T, T, Id>,
    k: u64,
) {
    reader.refresh();
    match by {
        By::Insert => {
            cow_insert(map, model, probe, k, k * 10);
        }
        By::Update => {
            let (key, value) = (T::new(k, probe), T::new(k * 10, probe));
            assert!(map.update(|m| m.insert(key, value)).is_none());
            model.insert(k, k * 10);
        }
    }
    assert_eq!(map.retired_versions(), 1, "the reader's version is kept");
    reader.refresh();
}

/// An `update` whose copy must panic in a `Clone` (the `at`th from now), leaving the map as
/// [`cow_write_panics`] checks; its closure must never run.
#[track_caller]
fn cow_update_clone_panics(map: &Cow, model: &Model, probe: &Probe, at: usize) {
    let ran = AtomicBool::new(false);
    probe.clone_trap.arm(at);
    cow_write_panics(map, model, probe, CLONE_PANIC, || {
        map.update(|m| {
            ran.store(true, SeqCst);
            m.clear();
        })
    });
    assert!(!ran.load(SeqCst), "update ran its closure on a failed copy");
}

/// The writes after a failed one, each building in a spare (`reader` refreshes first):
/// `count` inserts of `next, next + 1, ...` (value `10 * key`), with, if `removes`, every
/// third one a remove of the model's `i`th key instead; the contents checked after each,
/// then, the reader on the last version, the books.
#[track_caller]
fn cow_writes_into_spares(
    map: &Cow,
    model: &mut Model,
    probe: &Arc<Probe>,
    reader: &mut Reader<T, T, Id>,
    next: &mut u64,
    count: usize,
    removes: bool,
) {
    for i in 0..count {
        reader.refresh();
        if removes && i % 3 == 2 {
            let gone = *model.keys().nth(i).unwrap();
            assert_eq!(map.remove(&gone).map(|v| v.id), model.remove(&gone));
        } else {
            cow_insert(map, model, probe, *next, *next * 10);
            *next += 1;
        }
        assert_contents(map, model);
    }
    reader.refresh();
    assert_cow(map, model, probe);
}

/// No reader, so every write copies the whole map (`HashMap::clone`, 2 clones an entry, then
/// `insert` clones its key once more to record it). A key's or value's `Clone` panics at
/// the first, second, middle and last clones of the copy and at the record's: through
/// `insert` and through `update` (whose closure must never run). Fails if the panic is lost
/// or replaced, if anything is published, if a clone made before the panic survives it or
/// one of the map's is dropped, if the map's writer lock stays held (a write from another
/// thread, with a deadline), or if dropping the map leaves a `T` undropped.
#[test]
fn cow_clone_panic_while_a_write_copies_the_whole_map() {
    let probe = Probe::new();
    let (map, mut model) = cow_of(&probe, 40);
    let map = Arc::new(map);
    let len = model.len();
    assert_eq!(
        cow_insert(&map, &mut model, &probe, 1000, 1),
        (2 * len + 1, 1),
        "premise: a whole copy"
    );
    assert_cow(&map, &model, &probe);

    for (round, next) in (0..6).zip(2000..) {
        let len = model.len();
        let mid = len | 1; // odd: a key; mid + 1: its value
        let at = [1, 2, mid, mid + 1, 2 * len, 2 * len + 1][round];
        probe.clone_trap.arm(at);
        cow_write_panics(&map, &model, &probe, CLONE_PANIC, || {
            map.insert(T::new(next, &probe), T::new(7, &probe));
        });

        if at <= 2 * len {
            cow_update_clone_panics(&map, &model, &probe, at);
        }

        // The next write works, from another thread too (the writers' lock is free).
        if round == 0 {
            let (m, p) = (map.clone(), probe.clone());
            let old = on_another_thread("an insert after the panic", move || {
                m.insert(T::new(1, &p), T::new(11, &p)).map(|v| v.id)
            });
            assert_eq!(old, model.insert(1, 11));
            assert_cow(&map, &model, &probe);
        }
        cow_insert(&map, &mut model, &probe, next, next * 10);
        assert_cow(&map, &model, &probe);
    }
    drop(Arc::into_inner(map).expect("the thread's handle is gone"));
    probe.assert_all_dropped();
}

/// A reader leaves a spare (the version before an `update`), so the next write copies the
/// current version into the spare's `Arc` (for `T`s, which have drop glue, into a new table,
/// the spare's old entries dropped after the unlock). A key's or value's `Clone` panics at the
/// first, second, middle and last clones of that copy. Fails if the panic is lost, if the
/// half-rebuilt spare is published or kept (the contents or the count of live `T`s would be
/// off), if a clone is dropped twice or leaks, or if the writes after it (some replaying into
/// spares) go wrong.
#[test]
fn cow_clone_panic_while_a_write_clone_froms_the_spare() {
    let probe = Probe::new();
    let (map, mut model) = cow_of(&probe, 30);
    let mut reader = map.reader();
    spare_after(By::Update, &map, &mut model, &probe, &mut reader, 100);
    // Premise: the write copies into the spare (dropping its entries), not afresh.
    let len = model.len();
    let (clones, drops) = (probe.clones(), probe.dropped.load(SeqCst));
    let (key, value) = (T::new(101, &probe), T::new(1010, &probe));
    map.update(|m| m.insert(key, value));
    model.insert(101, 1010);
    assert_eq!(probe.clones() - clones, 2 * len, "premise: one copy");
    assert_eq!(
        probe.dropped.load(SeqCst) - drops,
        2 * (len - 1),
        "premise: the copy went into the spare, whose old entries it dropped"
    );
    reader.refresh();
    assert_cow(&map, &model, &probe);

    let mut next = 200;
    for round in 0..5 {
        spare_after(By::Update, &map, &mut model, &probe, &mut reader, next);
        next += 1;
        let len = model.len();
        let at = [1, 2, len | 1, (len | 1) + 1, 2 * len][round];
        cow_update_clone_panics(&map, &model, &probe, at);
        // Writes after it, each with a spare (the reader refreshes), replaying or copying.
        cow_writes_into_spares(&map, &mut model, &probe, &mut reader, &mut next, 3, false);
    }
    drop(reader);
    drop(map);
    probe.assert_all_dropped();
}

/// A reader leaves a spare one `insert` behind, so the next `insert` replays the last one
/// into it: clones of that key and value (1, 2), then the new key's record clone (3), each
/// made to panic; then the same after a `remove`. Fails if the panic is lost, if the spare,
/// changed or not, is published or kept for a later write to build on (the later writes,
/// which replay into spares, would show stale or extra entries), or if a `T` leaks or is
/// dropped twice.
#[test]
fn cow_clone_panic_while_a_write_replays_into_the_spare() {
    let probe = Probe::new();
    let (map, mut model) = cow_of(&probe, 20);
    let mut reader = map.reader();
    spare_after(By::Insert, &map, &mut model, &probe, &mut reader, 100);
    let (clones, _) = cow_insert(&map, &mut model, &probe, 101, 1010);
    assert_eq!(
        clones, 3,
        "premise: the insert replays the last one into the spare"
    );
    reader.refresh();
    assert_cow(&map, &model, &probe);

    let mut next = 200;
    for (round, at) in [1, 2, 3, 1].into_iter().enumerate() {
        if round < 3 {
            spare_after(By::Insert, &map, &mut model, &probe, &mut reader, next);
        } else {
            // A spare one remove behind: the replay clones nothing; the record's clone panics.
            reader.refresh();
            let gone = *model.keys().next().unwrap();
            assert_eq!(map.remove(&gone).map(|v| v.id), model.remove(&gone));
            reader.refresh();
        }
        next += 1;
        probe.clone_trap.arm(at);
        cow_write_panics(&map, &model, &probe, CLONE_PANIC, || {
            map.insert(T::new(next + 1000, &probe), T::new(5, &probe));
        });
        cow_writes_into_spares(&map, &mut model, &probe, &mut reader, &mut next, 6, true);
    }
    drop(reader);
    drop(map);
    probe.assert_all_dropped();
}

/// Two threads read continuously, one through a `Reader` (its whole map) and one through
/// snapshots, while the writer publishes `update`s that set every one of 32 keys to the
/// generation `2 * version`, and, between them, tries writes whose copy panics in a
/// `Clone` and writes whose closure panics after changing half its copy (both with odd
/// generations). Each read checks a whole version: 32 keys, one generation, even, equal to
/// twice the snapshot's version, never older than the last seen. Fails on a torn or failed
/// version seen, on more old versions kept than the documented bound (one per live `Reader`
/// plus one per read in progress at the last write, while parked; one per read at the last
/// write once the readers are gone), or on a leaked or twice-dropped `T`.
#[test]
fn cow_clone_panics_with_two_readers_reading_see_only_whole_versions() {
    const N: u64 = 32;
    const ROUNDS: u64 = 400;
    let probe = Probe::new();
    let map: Cow = (0..N)
        .map(|k| (T::new(k, &probe), T::new(0, &probe)))
        .collect();
    let (done, release) = (AtomicBool::new(false), AtomicBool::new(false));
    let (started, parked) = (AtomicUsize::new(0), AtomicUsize::new(0));

    /// The generation of a whole version: every key `0..N` once, all with one even value.
    fn generation<'a>(len: usize, entries: impl Iterator<Item = (&'a T, &'a T)>) -> u64 {
        assert_eq!(len, N as usize, "a version without every key");
        let mut keys = 0u64;
        let mut generation = None;
        for (k, v) in entries {
            assert!(
                k.id < N && keys & (1 << k.id) == 0,
                "a stray or repeated key"
            );
            keys |= 1 << k.id;
            assert_eq!(*generation.get_or_insert(v.id), v.id, "a torn version");
        }
        let generation = generation.unwrap();
        assert_eq!(generation % 2, 0, "a failed write's version was seen");
        generation
    }

    /// Counts itself in `started`, then reads whole versions (`read` checks one and returns its
    /// generation) until a read begun after `done` was set, failing if a generation goes back;
    /// returns the last generation and the number of reads.
    fn read_until_done(
        started: &AtomicUsize,
        done: &AtomicBool,
        who: &str,
        mut read: impl FnMut() -> u64,
    ) -> (u64, u64) {
        let (mut last, mut reads) = (0, 0u64);
        started.fetch_add(1, SeqCst);
        loop {
            let stop = done.load(SeqCst);
            let g = read();
            assert!(g >= last, "{who} went back from {last} to {g}");
            (last, reads) = (g, reads + 1);
            if stop {
                break;
            }
        }
        (last, reads)
    }

    let set_all = |m: &mut std::collections::HashMap<T, T, _>, generation: u64, upto: u64| {
        for k in 0..upto {
            m.insert(T::new(k, &probe), T::new(generation, &probe));
        }
    };

    std::thread::scope(|s| {
        s.spawn(|| {
            let mut reader = map.reader();
            let (last, reads) = read_until_done(&started, &done, "the reader", || {
                let m = reader.map();
                generation(m.len(), m.iter())
            });
            assert_eq!(
                last,
                2 * map.version(),
                "the reader's last read is not the last version"
            );
            assert!(reads > 1);
            parked.fetch_add(1, SeqCst);
            wait_until("the writer's release", || release.load(SeqCst));
        });
        s.spawn(|| {
            let (_, reads) = read_until_done(&started, &done, "snapshots", || {
                let snap = map.snapshot();
                let g = generation(snap.len(), snap.iter());
                assert_eq!(g, 2 * snap.version(), "contents of another version");
                g
            });
            assert!(reads > 1);
            parked.fetch_add(1, SeqCst);
            wait_until("the writer's release", || release.load(SeqCst));
        });

        // Whatever happens, the readers stop and leave: a failure fails, never hangs.
        let _stop = SetOnDrop(&done);
        let _release = SetOnDrop(&release);
        wait_until("the readers' start", || started.load(SeqCst) == 2);
        let (mut failed, mut published) = (0, 0);
        for round in 1..=ROUNDS {
            let version = map.version();
            let g = 2 * (version + 1);
            match round % 4 {
                0 => {
                    probe
                        .clone_trap
                        .arm(1 + (round as usize * 7) % (2 * N as usize));
                    expect_panic(CLONE_PANIC, || map.update(|m| set_all(m, g + 1, N)));
                    failed += 1;
                }
                1 => {
                    expect_panic(UPDATE_PANIC, || {
                        map.update(|m| {
                            set_all(m, g + 1, N / 2);
                            panic!("{UPDATE_PANIC}");
                        })
                    });
                    failed += 1;
                }
                _ => {
                    map.update(|m| set_all(m, g, N));
                    published += 1;
                }
            }
            assert_eq!(map.version(), version + (round % 4 > 1) as u64);
            probe.assert_no_double_drop();
        }
        assert_eq!((failed, published), (ROUNDS / 2, ROUNDS / 2));
        done.store(true, SeqCst);
        wait_until("the readers' last reads", || parked.load(SeqCst) == 2);
        // One live `Reader`, no snapshot, and at most two reads in progress at the last write.
        let kept = map.retired_versions();
        assert!(
            kept <= 3,
            "{kept} old versions kept with one Reader and two readers' reads"
        );
        release.store(true, SeqCst);
    });
    let kept = map.retired_versions();
    assert!(kept <= 2, "{kept} old versions kept after the readers left");
    map.trim();
    assert_eq!(map.retired_versions(), 0);
    assert_eq!(probe.live(), 2 * N as usize, "Ts alive beyond the map's");
    assert_eq!(map.version(), ROUNDS / 2);
    drop(map);
    probe.assert_all_dropped();
}

/// A key's `Hash` panics in a write: hashing the new key into the copy; in `remove`, on the
/// current version (before any copy) and in the copy; half-way and at the end of the
/// rehash of a copy that grows (the map at capacity); and, with a spare one insert behind,
/// at each of the replay's two hashes and the new key's. Fails if the panic is lost, if a
/// version is published, if the map's contents change, if a `T` is leaked or dropped twice,
/// or if the next write (checked to take the same path, by its hash count) fails.
#[test]
fn cow_hash_panic_in_a_write_leaves_the_map_unchanged() {
    let probe = Probe::new();
    let (map, mut model) = cow_of(&probe, 20);

    // The new key's hash.
    assert_eq!(
        cow_insert(&map, &mut model, &probe, 500, 1).1,
        1,
        "premise: one hash"
    );
    probe.hash_trap.arm(1);
    cow_write_panics(&map, &model, &probe, HASH_PANIC, || {
        map.insert(T::new(501, &probe), T::new(2, &probe));
    });
    cow_insert(&map, &mut model, &probe, 501, 2);

    // `remove`: 1 on the current version, 2 in the copy.
    for at in [1, 2] {
        probe.hash_trap.arm(at);
        cow_write_panics(&map, &model, &probe, HASH_PANIC, || {
            map.remove(&T::new(3, &probe));
        });
    }
    let hashes = probe.hashes();
    assert_eq!(
        map.remove(&T::new(3, &probe)).map(|v| v.id),
        model.remove(&3)
    );
    assert_eq!(probe.hashes() - hashes, 2, "premise: remove hashes twice");
    assert_cow(&map, &model, &probe);

    // A copy that grows: the new key's hash, then every key's.
    let mut next = 600;
    while map.snapshot().capacity() > map.len() {
        cow_insert(&map, &mut model, &probe, next, next * 10);
        next += 1;
    }
    let len = model.len();
    for at in [1 + len / 2, 1 + len] {
        probe.hash_trap.arm(at);
        cow_write_panics(&map, &model, &probe, HASH_PANIC, || {
            map.insert(T::new(next, &probe), T::new(3, &probe));
        });
    }
    let (_, hashes) = cow_insert(&map, &mut model, &probe, next, next * 10);
    next += 1;
    assert_eq!(
        hashes,
        1 + len,
        "premise: the copy grew, rehashing every key"
    );
    assert_cow(&map, &model, &probe);

    // The replay into a spare: the last key looked up (1) and inserted (2), the new key (3).
    let mut reader = map.reader();
    for at in [1, 2, 3] {
        spare_after(By::Insert, &map, &mut model, &probe, &mut reader, next);
        next += 1;
        probe.hash_trap.arm(at);
        cow_write_panics(&map, &model, &probe, HASH_PANIC, || {
            map.insert(T::new(next, &probe), T::new(4, &probe));
        });
    }
    spare_after(By::Insert, &map, &mut model, &probe, &mut reader, next);
    let (clones, hashes) = cow_insert(&map, &mut model, &probe, next + 1, 4);
    assert_eq!(
        (clones, hashes),
        (3, 3),
        "premise: the insert replayed into the spare"
    );
    reader.refresh();
    assert_cow(&map, &model, &probe);
    drop(reader);
    drop(map);
    probe.assert_all_dropped();
}

/// Lays out a copy that must rehash in place (the case where hashbrown drops the entries
/// it has not yet placed when a `Hash` panics): keys `0..224` fill a 256-bucket table (no
/// room left), then removing keys `16..208` leaves tombstones (no empty slot within a group
/// of any of them), so the table stays out of room with 32 keys, and the next insert's copy
/// rehashes in place; the key `Hash` panics at the third key rehashed. The dropped entries
/// are the copy's, so the map must be unchanged. Fails if the panic is lost, if the map
/// loses or changes an entry, if a `T` is dropped twice or leaks, or if the next insert
/// (which must rehash in place too: 1 + len hashes, capacity kept) fails.
#[test]
fn cow_hash_panic_while_a_copy_rehashes_in_place_leaves_the_map_unchanged() {
    let probe = Probe::new();
    let (map, mut model) = cow_of(&probe, 224);
    // `capacity` is entries + room left.
    assert_eq!(map.snapshot().capacity(), 224, "premise: 256 buckets, full");
    for k in 16..208 {
        assert_eq!(map.remove(&k).map(|v| v.id), model.remove(&k));
    }
    assert_eq!(
        map.snapshot().capacity(),
        32,
        "premise: tombstones, no room"
    );
    for at in [1 + 3, 1 + 32] {
        probe.hash_trap.arm(at);
        cow_write_panics(&map, &model, &probe, HASH_PANIC, || {
            map.insert(T::new(1000, &probe), T::new(1, &probe));
        });
    }
    let (_, hashes) = cow_insert(&map, &mut model, &probe, 1000, 10_000);
    assert_eq!(hashes, 1 + 32, "premise: the insert rehashed every key");
    assert_eq!(
        map.snapshot().capacity(),
        224,
        "premise: in place, not grown"
    );
    assert_cow(&map, &model, &probe);
    drop(map);
    probe.assert_all_dropped();
}

/// Inserts `next -> next * 10` with the drop trap armed to spring at the `at`-th drop, which
/// the write's freeing of what it let go of reaches: the insert panics, and the model takes it.
fn insert_through_a_drop_panic(
    map: &Cow,
    model: &mut Model,
    probe: &Arc<Probe>,
    next: u64,
    at: usize,
) {
    probe.drop_trap.arm(at);
    expect_panic(DROP_PANIC, || {
        map.insert(T::new(next, probe), T::new(next * 10, probe));
    });
    assert_eq!(
        probe.drop_trap.0.load(SeqCst),
        0,
        "premise: the trap sprang"
    );
    model.insert(next, next * 10);
}

/// A key's or value's `Drop` panics while a write frees what it let go of: the version it
/// replaced (no reader), at the first, fifth and last `T` of it; then a spare's old table,
/// which a copy after an `update` replaces (a reader leaves the spare). The write is
/// published and the writers' lock free by then: the panic reaches the caller, the map holds
/// the write and works from another thread, and every other `T` of the freed table is dropped,
/// once (a drop that stopped at the panic, as hashbrown's does, would leave the rest of the
/// table's `T`s alive).
#[test]
fn cow_drop_panic_while_a_write_frees_comes_after_the_write() {
    let probe = Probe::new();
    let (map, mut model) = cow_of(&probe, 30);
    let map = Arc::new(map);
    cow_insert(&map, &mut model, &probe, 100, 1000); // a version that records its insert
    let mut next = 200;
    let freed = 2 * model.len() + 1; // the replaced version's keys, values and record
    for at in [1, 5, freed] {
        let version = map.version();
        insert_through_a_drop_panic(&map, &mut model, &probe, next, at);
        next += 1;
        assert_eq!(map.version(), version + 1, "the write was not published");
        assert_cow(&map, &model, &probe);
        let (m, p) = (map.clone(), probe.clone());
        on_another_thread("an insert after the panic", move || {
            m.insert(T::new(1, &p), T::new(11, &p)).map(|v| v.id)
        });
        model.insert(1, 11);
        assert_cow(&map, &model, &probe);
    }

    let mut reader = map.reader();
    spare_after(By::Update, &map, &mut model, &probe, &mut reader, next);
    next += 1;
    insert_through_a_drop_panic(&map, &mut model, &probe, next, 3);
    reader.refresh();
    assert_cow(&map, &model, &probe);
    drop(reader);
    drop(Arc::into_inner(map).expect("the thread's handle is gone"));
    probe.assert_all_dropped();
}

// ---------------------------------------------------------------------------------------------
// CowMap: writes from code the map runs (an update's closure, a value's `Clone` or `Drop`)

/// The start of the panic a `CowMap` write raises when called from inside a write of the same
/// map.
const COW_REENTRY: &str = "CowMap: re-entrant write";

/// Runs `f` on a new thread and fails the test if it has not finished after [`HANG`] (a
/// deadlock; the stuck thread is left behind). Returns what `f` returned, or its panic's message.
fn finishes<R: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, String> {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let result = catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "<not a string>".to_string())
        });
        let _ = done.send(result);
    });
    match finished.recv_timeout(HANG) {
        Ok(result) => result,
        Err(_) => panic!("{what}: not done after {HANG:?} (a deadlock)"),
    }
}

/// A key never inserted: [`Unregister`]'s drop removes it, a write that publishes nothing, so
/// drops do not cascade.
const ABSENT: u64 = u64::MAX;

/// A value whose `Drop` writes the map it lives in, as a registry entry that unregisters
/// itself would: it calls `remove` (which takes the writers' lock) and counts the calls
/// that returned. Every copy does, so each freed version counts one call per entry.
#[derive(Clone)]
struct Unregister {
    map: Weak<CowMap<u64, Unregister>>,
    calls: Arc<AtomicUsize>,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        unregister(&self.map, &self.calls);
    }
}

/// What the `Unregister*` types' drops do: remove [`ABSENT`] from `map` if it is alive (a write
/// that publishes nothing), and count the call once it returned.
fn unregister<K, V, S>(map: &Weak<CowMap<K, V, S>>, calls: &AtomicUsize)
where
    K: Eq + Hash + Clone + Borrow<u64>,
    V: Clone,
    S: std::hash::BuildHasher + Clone,
{
    if let Some(map) = map.upgrade() {
        assert!(map.remove(&ABSENT).is_none());
        calls.fetch_add(1, SeqCst);
    }
}

/// A map of [`Unregister`] values, with `value` making one and `calls` reading the count.
struct Registry {
    map: Arc<CowMap<u64, Unregister>>,
    calls: Arc<AtomicUsize>,
}

impl Registry {
    fn new() -> Self {
        Registry {
            map: Arc::new(CowMap::new()),
            calls: Arc::default(),
        }
    }

    fn value(&self) -> Unregister {
        Unregister {
            map: Arc::downgrade(&self.map),
            calls: self.calls.clone(),
        }
    }

    /// How many `Unregister` drops wrote the map during `f`.
    fn calls_during<R>(&self, f: impl FnOnce() -> R) -> (R, usize) {
        let before = self.calls.load(SeqCst);
        let r = f();
        (r, self.calls.load(SeqCst) - before)
    }
}

/// A value's `Drop` that writes its own map, freed by the write that replaced its version
/// (no reader): the write must finish (freeing the version under the writers' lock would make
/// the drop's write wait for that lock for ever) and run the one drop, whose write returned.
#[test]
fn cow_a_value_drop_may_write_its_own_map_when_a_write_frees_it() {
    let outcome = finishes("a write that frees a version", || {
        let reg = Registry::new();
        reg.map.insert(1, reg.value());
        // Version 1 is freed: its one entry's drop writes the map.
        let (old, calls) = reg.calls_during(|| reg.map.insert(2, reg.value()));
        assert!(old.is_none());
        (calls, reg.map.len(), reg.map.retired_versions())
    });
    assert_eq!(outcome, Ok((1, 2, 0)));
}

/// As above, for the entries a write drops while it builds in the spare a reader left:
/// replaying an insert that replaced a value, replaying a remove, and copying over the
/// spare's entries after an `update`. Each write must finish and drop exactly those.
#[test]
fn cow_a_value_drop_may_write_its_own_map_when_a_write_reuses_its_version() {
    let outcome = finishes("writes that build in a reader's spare", || {
        let reg = Registry::new();
        for k in 0..4 {
            reg.map.insert(k, reg.value());
        }
        let mut reader = reg.map.reader();
        let mut spare_after = |write: &dyn Fn() -> Option<Unregister>| {
            reader.refresh();
            let returned = write();
            assert_eq!(
                reg.map.retired_versions(),
                1,
                "premise: the reader kept one"
            );
            reader.refresh();
            returned
        };
        // An insert that replaced a value: the next write swaps that value in the spare.
        let replaced = spare_after(&|| reg.map.insert(1, reg.value()));
        let (_, on_replay) = reg.calls_during(|| reg.map.insert(10, reg.value()));
        drop(replaced);
        // A remove: the next write removes that entry from the spare.
        let removed = spare_after(&|| reg.map.remove(&2));
        let (_, on_remove) = reg.calls_during(|| reg.map.insert(11, reg.value()));
        drop(removed);
        // An update: the next write copies over the spare's entries.
        spare_after(&|| reg.map.update(|m| m.insert(12, reg.value())));
        let spare_len = reg.map.len() - 1; // the version before the update
        let (_, on_copy) = reg.calls_during(|| reg.map.insert(13, reg.value()));
        drop(reader);
        (on_replay, on_remove, on_copy, spare_len)
    });
    let (on_replay, on_remove, on_copy, spare_len) = outcome.unwrap();
    assert_eq!((on_replay, on_remove), (1, 1));
    assert_eq!(on_copy, spare_len, "the spare's entries, each dropped once");
}

/// A hasher whose `Drop` writes the map it hashes for (as [`Unregister`] does for values): it
/// calls `remove` of an absent key and counts the calls that returned.
#[derive(Clone)]
struct UnregisterHasher {
    map: Weak<CowMap<u64, u64, UnregisterHasher>>,
    calls: Arc<AtomicUsize>,
}

impl std::hash::BuildHasher for UnregisterHasher {
    type Hasher = std::hash::DefaultHasher;

    fn build_hasher(&self) -> Self::Hasher {
        std::hash::DefaultHasher::new()
    }
}

impl Drop for UnregisterHasher {
    fn drop(&mut self) {
        unregister(&self.map, &self.calls);
    }
}

/// A write that copies over a reader's spare replaces the spare's hasher too (each version's
/// table has its own): a hasher with drop glue goes with the spare's table, dropped after the
/// lock is let go, so its `Drop` may write the map, as a value's may. (Copied in place with
/// `clone_from`, the old hasher was dropped under the lock and its write panicked.)
#[test]
fn cow_a_hashers_drop_may_write_its_own_map_when_a_write_reuses_its_version() {
    let outcome = finishes("a write that copies over the spare", || {
        let calls = Arc::new(AtomicUsize::new(0));
        let map = Arc::new_cyclic(|map| {
            CowMap::with_hasher(UnregisterHasher {
                map: map.clone(),
                calls: calls.clone(),
            })
        });
        for k in 0..4 {
            map.insert(k, k);
        }
        let mut reader = map.reader();
        map.update(|m| m.insert(4, 4)); // no single change: the next write copies, not replays
        reader.refresh(); // the version before the update is now unheld: the spare
        let before = calls.load(SeqCst);
        map.insert(5, 5);
        let on_copy = calls.load(SeqCst) - before;
        assert_eq!(
            map.retired_versions(),
            1,
            "premise: the reader holds one version"
        );
        drop(reader);
        assert_eq!(map.len(), 6);
        on_copy
    });
    assert_eq!(
        outcome,
        Ok(1),
        "the spare's hasher, dropped once, after the lock"
    );
}

/// A key whose `Drop` writes the map it lives in (a removed session's handle that logs out),
/// as [`Unregister`] for values; hashes and compares by `id`.
#[derive(Clone)]
struct UnregisterKey {
    id: u64,
    map: Weak<CowMap<UnregisterKey, u64>>,
    calls: Arc<AtomicUsize>,
}

impl PartialEq for UnregisterKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for UnregisterKey {}
impl Hash for UnregisterKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}
impl Borrow<u64> for UnregisterKey {
    fn borrow(&self) -> &u64 {
        &self.id
    }
}
impl Drop for UnregisterKey {
    fn drop(&mut self) {
        unregister(&self.map, &self.calls);
    }
}

/// The key a write records for the next write's replay is let go of after the lock, like
/// everything else a write frees: when a write reuses the spare whose record was a removed key
/// (the map's last copy of it), that key's `Drop` may write the map. (Dropped under the lock,
/// the `Drop`'s write panicked as re-entrant, and the write that reused the spare was lost.)
#[test]
fn cow_a_removed_keys_drop_may_write_its_own_map_when_a_write_reuses_its_record() {
    let outcome = finishes("writes that reuse a spare recording a removed key", || {
        let map: Arc<CowMap<UnregisterKey, u64>> = Arc::new(CowMap::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let key = |id| UnregisterKey {
            id,
            map: Arc::downgrade(&map),
            calls: calls.clone(),
        };
        let mut idle = map.reader();
        idle.let_go(); // the map keeps a spare, and writes build in it
        map.insert(key(1), 1);
        map.insert(key(5), 5);
        map.insert(key(6), 6);
        assert_eq!(map.remove(&5), Some(5)); // its version records the removed key 5
        for id in 7..10 {
            map.insert(key(id), id); // one of them reuses that version as its spare
        }
        map.trim();
        assert_eq!(map.len(), 5); // 1, 6, 7, 8, 9
        assert!(
            map.read(&9, |v| *v == 9).unwrap(),
            "every write was published"
        );
        drop(idle);
        calls.load(SeqCst)
    });
    assert!(outcome.expect("no key's drop ran inside a write") > 0);
}

/// As above, for `trim`, a `Snapshot`'s drop and a `Reader`'s drop.
#[test]
fn cow_a_value_drop_may_write_its_own_map_when_trim_or_a_handle_frees_it() {
    let outcome = finishes("trim, a snapshot's drop, a reader's drop", || {
        let reg = Registry::new();
        reg.map.insert(1, reg.value());
        let mut reader = reg.map.reader();
        let snap = reg.map.snapshot();
        reg.map.insert(2, reg.value()); // the first version: held by both
        let (_, by_snapshot) = reg.calls_during(|| drop(snap));
        reader.refresh();
        let (_, by_trim) = reg.calls_during(|| reg.map.trim());
        reg.map.insert(3, reg.value()); // version 2: held by the reader
        let (_, by_reader) = reg.calls_during(|| drop(reader));
        (by_snapshot, by_trim, by_reader, reg.map.retired_versions())
    });
    // The snapshot let go first, but the map's own count kept the version for `trim`.
    assert_eq!(outcome, Ok((0, 1, 2, 0)));
}

/// Runs `case` (a write of the map from inside a write of it) on a map `{1: 1}`: it must
/// panic with the re-entrancy message, publish nothing, and leave the map usable from this
/// thread and others (waiting for the writers' lock, which its own thread holds, would wait
/// for ever).
fn reentrant_write_panics(what: &str, case: fn(&CowMap<u64, u64>)) {
    let map = Arc::new(CowMap::from_iter([(1u64, 1u64)]));
    let m = map.clone();
    let message = finishes(what, move || case(&m)).expect_err(what);
    assert!(
        message.starts_with(COW_REENTRY),
        "{what}: panicked with {message:?}"
    );
    assert_eq!(
        (map.version(), map.get_cloned(&1), map.len()),
        (0, Some(1), 1),
        "{what}: published"
    );
    // Usable: from another thread (the lock is free), and from this one.
    let m = map.clone();
    assert_eq!(finishes(what, move || m.insert(3, 3)), Ok(None));
    assert_eq!(map.insert(4, 4), None);
    assert_eq!(map.version(), 2);
}

#[test]
fn cow_an_insert_inside_update_panics() {
    reentrant_write_panics("insert inside update", |m| {
        m.update(|_| m.insert(2, 2));
    });
    reentrant_write_panics("remove inside update", |m| {
        m.update(|_| m.remove(&1));
    });
    reentrant_write_panics("update inside update", |m| m.update(|_| m.update(|_| ())));
}

#[test]
fn cow_a_trim_inside_update_panics() {
    reentrant_write_panics("trim inside update", |m| m.update(|_| m.trim()));
}

/// A value's `Clone` runs under the writers' lock too, while a write copies the map: a `trim`
/// from there must panic as above.
#[test]
fn cow_a_trim_inside_a_values_clone_panics() {
    #[derive(Debug)]
    struct Echo(Weak<CowMap<u64, Echo>>);
    impl Clone for Echo {
        fn clone(&self) -> Self {
            if let Some(map) = self.0.upgrade() {
                map.trim();
            }
            Echo(self.0.clone())
        }
    }
    let message = finishes("trim inside a value's Clone", || {
        let map = Arc::new(CowMap::new());
        map.insert(1, Echo(Arc::downgrade(&map)));
        map.insert(2, Echo(Weak::new())); // copies 1's value: its clone trims
    })
    .expect_err("trim inside a value's Clone");
    assert!(message.starts_with(COW_REENTRY), "{message:?}");
}

/// What stays allowed inside a write: reads of the map, `Reader`s and `Snapshot`s of it
/// (made, read and dropped), and writes of another map.
#[test]
fn cow_reads_and_other_maps_writes_inside_update_are_fine() {
    let (map, other) = (CowMap::from_iter([(1u64, 10u64)]), CowMap::new());
    let seen = map.update(|m| {
        let mut reader = map.reader();
        let seen = (
            map.get_cloned(&1),
            reader.get_cloned(&1),
            map.snapshot().len(),
        );
        other.insert(1, 1);
        m.insert(2, 20);
        seen
    });
    assert_eq!(seen, (Some(10), Some(10), 1));
    assert_eq!((map.len(), map.version(), other.len()), (2, 1, 1));
}

/// Runs `inner` inside the read closures of `maps`, nested in turn on this thread.
fn nested<R>(maps: &[ShardedMap<u64, u64>], inner: &dyn Fn() -> R) -> R {
    match maps.split_first() {
        None => inner(),
        Some((outer, rest)) => outer.read(&0, |_| nested(rest, inner)).unwrap(),
    }
}

/// The re-entrancy check tracks 8 maps at once on a thread: a call inside 7 maps' closures
/// works, and a ninth map panics with the message the docs describe, whether it is a map the
/// caller made or the `ShardedMap` inside a `KeyedLimiter`.
#[test]
fn a_call_inside_eight_maps_closures_panics_for_maps_and_the_keyed_limiter() {
    const TOO_DEEP: &str = "ShardedMap: a call nested inside 8 maps' closures at once on one \
                            thread; the limit of the re-entrancy check. Nest fewer maps, or \
                            copy values out and call the inner map after the closure returns";
    let maps: Vec<ShardedMap<u64, u64>> = (0..8).map(|_| ShardedMap::with_shards(1)).collect();
    for map in &maps {
        map.insert(0, 0);
    }
    let ninth = ShardedMap::<u64, u64>::with_shards(1);
    let keyed = thrifty::limit::KeyedLimiter::<u64>::new(10, 10).unwrap();
    assert_eq!(nested(&maps[..7], &|| ninth.insert(1, 1)), None);
    assert!(nested(&maps[..7], &|| keyed.try_acquire(&1, 1).is_ok()));
    expect_panic(TOO_DEEP, || nested(&maps, &|| ninth.insert(2, 2)));
    expect_panic(TOO_DEEP, || nested(&maps, &|| keyed.try_acquire(&1, 1)));
    // Each caught panic left every map, and the limiter, usable.
    assert_eq!(ninth.len(), 1);
    assert!(maps.iter().all(|m| m.insert(0, 1) == Some(0)));
    assert!(keyed.try_acquire(&1, 1).is_ok());
}

// ---------------------------------------------------------------------------------------------
// ShardedMap

type Sharded = ShardedMap<T, T, Id>;

/// A one-shard map of keys `0..n`, each with value `10 * key`, inserted one by one, then the
/// keys `removed` removed again; and its model.
#[track_caller]
fn one_shard_of(
    n: u64,
    removed: Range<u64>,
    keys: &Arc<Probe>,
    values: &Arc<Probe>,
) -> (Arc<Sharded>, Model) {
    let map: Arc<Sharded> = Arc::new(
        ShardedMap::builder()
            .shards(1)
            .hasher(Id::default())
            .build(),
    );
    let mut model = Model::new();
    for k in 0..n {
        assert!(map
            .insert(T::new(k, keys), T::new(k * 10, values))
            .is_none());
        model.insert(k, k * 10);
    }
    for k in removed {
        assert_eq!(map.remove(&k).map(|v| v.id), model.remove(&k));
    }
    (map, model)
}

/// Checks a `ShardedMap` after a panic that may have lost entries (the documented loss):
/// what it holds is a subset of `model`, each survivor with its value and found by its key;
/// `len` counts exactly the survivors; the live keys and values are exactly the survivors'
/// (each lost entry was dropped, once). Brings `model` down to the survivors and returns how
/// many were lost.
#[track_caller]
fn sharded_survivors(map: &Sharded, model: &mut Model, keys: &Probe, values: &Probe) -> usize {
    let mut held = Model::new();
    map.for_each(|k, v| assert!(held.insert(k.id, v.id).is_none(), "a key twice"));
    for (k, v) in &held {
        assert_eq!(model.get(k), Some(v), "an entry the map never had");
        assert_eq!(
            map.read(k, |v| v.id),
            Some(*v),
            "a survivor not found by its key"
        );
    }
    let lost = model.len() - held.len();
    for k in model.keys().filter(|k| !held.contains_key(k)) {
        assert!(!map.contains_key(k));
    }
    assert_eq!(map.len(), held.len(), "len counts entries that are gone");
    keys.assert_no_double_drop();
    values.assert_no_double_drop();
    assert_eq!(keys.live(), held.len(), "keys alive beyond the map's");
    assert_eq!(values.live(), held.len(), "values alive beyond the map's");
    *model = held;
    lost
}

/// After a panic: the map's shard is unlocked (an insert, read and remove from another
/// thread finish within a deadline) and the panicking thread is not left marked as inside
/// the map (its own insert is not refused as re-entrant).
fn sharded_still_usable(
    map: &Arc<Sharded>,
    model: &mut Model,
    keys: &Arc<Probe>,
    values: &Arc<Probe>,
) {
    let (m, k, v) = (map.clone(), keys.clone(), values.clone());
    on_another_thread("insert, read and remove after the panic", move || {
        assert!(m.insert(T::new(90_000, &k), T::new(1, &v)).is_none());
        assert_eq!(m.read(&90_000, |v| v.id), Some(1));
        assert_eq!(m.remove(&90_000).map(|v| v.id), Some(1));
    });
    assert!(map
        .insert(T::new(90_001, keys), T::new(2, values))
        .is_none());
    assert_eq!(map.read(&90_001, |v| v.id), Some(2));
    model.insert(90_001, 2);
    assert_eq!(map.len(), model.len());
}

/// A one-shard map laid out to rehash in place: keys `0..224` fill its 256-bucket table
/// (no room left), then removing keys `16..208` leaves tombstones (no empty slot within a
/// group of any of them), so with 32 keys it is still out of room, and the next insert
/// rehashes the shard in place; a key's `Hash` panics at the fifth key rehashed. The documented
/// outcome: the process aborts, after the panic's message and the map's. hashbrown 0.16,
/// unwinding out of a rehash in place, dropped the entries it had not placed yet with the
/// shard locked, and with keys and values without drop glue left the table counting them, so
/// that a later walk (`for_each`) read past the table (a SIGSEGV in a release build, undefined
/// behaviour under Miri). Each shape runs in a child process (this test binary again, with
/// `CHILD` naming the shape): `T` keys and values, with drop glue, and plain ones without.
/// Fails if a child ends any other way than by `SIGABRT` after both messages.
#[cfg(unix)]
#[test]
// Miri cannot spawn the child; its shapes can be run under Miri by hand, with the variable set
// and forwarded (`-Zmiri-env-forward=PANICS_MAP_REHASH_IN_PLACE`): each must end in an abort.
#[cfg_attr(miri, ignore = "spawns a child process")]
fn sharded_hash_panic_while_a_shard_rehashes_in_place_aborts() {
    use std::os::unix::process::ExitStatusExt;
    const CHILD: &str = "PANICS_MAP_REHASH_IN_PLACE";
    const NAME: &str = "sharded_hash_panic_while_a_shard_rehashes_in_place_aborts";
    match std::env::var(CHILD).as_deref() {
        Ok("drop glue") => {
            let (keys, values) = (Probe::new(), Probe::new());
            let (map, _) = one_shard_of(224, 16..208, &keys, &values);
            // 1: the new key, hashed before the lock; then the shard's keys as it rehashes.
            keys.hash_trap.arm(1 + 5);
            map.insert(T::new(1000, &keys), T::new(10_000, &values));
            std::process::exit(3); // not reached: the insert aborts
        }
        Ok("plain") => {
            let map: ShardedMap<Plain, u64, Id> = ShardedMap::builder()
                .shards(1)
                .hasher(Id::default())
                .build();
            for k in 0..224 {
                map.insert(Plain(k), k);
            }
            for k in 16..208 {
                map.remove(&Plain(k));
            }
            PLAIN_TRAP.with(|t| t.set(1 + 5));
            map.insert(Plain(1000), 1000);
            let mut walked = 0;
            map.for_each(|_, _| walked += 1);
            std::process::exit(3 + walked.min(100)); // not reached: the insert aborts
        }
        _ => {}
    }
    for shape in ["drop glue", "plain"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, shape)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(6), // SIGABRT
            "{shape}: the child ended with {:?}:\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains(HASH_PANIC) && stderr.contains("so the process aborts"),
            "{shape}: the panic's message, then the map's:\n{stderr}"
        );
    }
}

thread_local! {
    /// Hashes of [`Plain`] keys left before one panics (0: never).
    static PLAIN_TRAP: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A key without drop glue whose `Hash` panics as [`PLAIN_TRAP`] says.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Plain(u64);

impl Hash for Plain {
    fn hash<H: Hasher>(&self, state: &mut H) {
        PLAIN_TRAP.with(|t| match t.get() {
            0 => {}
            1 => {
                t.set(0);
                panic!("{HASH_PANIC}");
            }
            n => t.set(n - 1),
        });
        state.write_u64(self.0);
    }
}

/// A one-shard map of 100 keys cut to 10 is shrunk, with a key's `Hash` panicking at the
/// third key rehashed; then at the last. The docs allow entries to be lost (dropped) here
/// too; this holds the map to that: the panic reaches the caller, survivors are found by
/// their keys, `len` counts exactly them, whatever was lost was dropped once, the map is
/// unlocked and usable, and a shrink without the trap then rehashes every key. Fails on a
/// double drop, a leak, a stale `len`, a misplaced survivor or a deadlock.
#[test]
fn sharded_hash_panic_while_a_shard_shrinks() {
    let (keys, values) = (Probe::new(), Probe::new());
    let (map, mut model) = one_shard_of(100, 10..100, &keys, &values);
    for round in 0..2 {
        // The third key rehashed, then the last.
        keys.hash_trap.arm(if round == 0 { 3 } else { model.len() });
        expect_panic(HASH_PANIC, || map.shrink_to_fit());
        keys.hash_trap.disarm();
        sharded_survivors(&map, &mut model, &keys, &values);
    }
    sharded_still_usable(&map, &mut model, &keys, &values);
    let hashes = keys.hashes();
    map.shrink_to_fit();
    assert_eq!(
        keys.hashes() - hashes,
        model.len(),
        "premise: a shrink rehashes every key"
    );
    assert_eq!(sharded_survivors(&map, &mut model, &keys, &values), 0);
    drop(Arc::into_inner(map).expect("the thread's handle is gone"));
    keys.assert_all_dropped();
    values.assert_all_dropped();
}

/// A map of `shards` shards holding keys `0..100`, each with value `10 * key`: the map spreads
/// their identity hashes over the shards (4 shards hold 27, 24, 25 and 24 keys), and their low
/// bits spread them over each shard's slots.
fn spread_over(shards: usize, keys: &Arc<Probe>, values: &Arc<Probe>) -> Arc<Sharded> {
    let map: Arc<Sharded> = Arc::new(
        ShardedMap::builder()
            .shards(shards)
            .hasher(Id::default())
            .build(),
    );
    for k in 0..100u64 {
        assert!(map
            .insert(T::new(k, keys), T::new(k * 10, values))
            .is_none());
    }
    assert_eq!(map.len(), 100);
    map
}

/// Runs `f` with the `at`th value drop from now set to panic: the planned panic, and no other,
/// reaches the caller, the trap sprang, and nothing was dropped twice.
fn drop_panics_once(case: &str, keys: &Probe, values: &Probe, at: usize, f: impl FnOnce()) {
    values.drop_trap.arm(at);
    expect_panic(DROP_PANIC, f);
    assert_eq!(
        values.drop_trap.0.load(SeqCst),
        0,
        "{case}: premise: the trap sprang"
    );
    keys.assert_no_double_drop();
    values.assert_no_double_drop();
}

/// A value's `Drop` panics while `clear`, then the map's drop, drops 100 entries: at the first,
/// the 40th and the last value dropped, in maps of 1 and 4 shards (with 4, the panic lands in
/// the first, a middle and the last shard). Each time the panic reaches the caller, once, and every
/// other key and value is dropped, once: `clear` goes on with the rest of the shard and the
/// later shards and leaves the map empty (`len` 0, nothing found) and usable; the map's drop
/// leaves no `T` alive.
#[test]
fn sharded_drop_panic_in_clear_or_the_maps_drop_leaks_nothing() {
    for shards in [1, 4] {
        for at in [1, 40, 100] {
            let case = format!("{shards} shards, the panic at drop {at}");
            let (keys, values) = (Probe::new(), Probe::new());
            let map = spread_over(shards, &keys, &values);
            drop_panics_once(&case, &keys, &values, at, || map.clear());
            assert_eq!(keys.live(), 0, "{case}: keys left alive by clear");
            assert_eq!(values.live(), 0, "{case}: values left alive by clear");
            assert_eq!(map.len(), 0, "{case}: len after clear");
            assert!(map.is_empty());
            map.for_each(|k, _| panic!("{case}: key {} survived clear", k.id));
            let mut model = Model::new();
            sharded_still_usable(&map, &mut model, &keys, &values);
            drop(Arc::into_inner(map).expect("the thread's handle is gone"));
            keys.assert_all_dropped();
            values.assert_all_dropped();

            let map = spread_over(shards, &keys, &values);
            drop_panics_once(&case, &keys, &values, at, || drop(map));
            keys.assert_all_dropped();
            values.assert_all_dropped();
        }
    }
}

/// A value's `Drop` panics while a `ShardedMap`'s `IntoIter`, dropped after yielding `taken`
/// entries (none, mid-shard, all but one), drops the rest: at the first, a middle and the last
/// value it drops, in maps of 1 and 4 shards. The panic reaches the caller, once, and every
/// other key and value is dropped, once: nothing leaks, nothing is dropped twice.
#[test]
fn sharded_drop_panic_while_into_iter_drops_the_rest_leaks_nothing() {
    for shards in [1, 4] {
        for taken in [0, 30, 99] {
            let left: usize = 100 - taken;
            for at in [1, left.div_ceil(2), left] {
                let case = format!("{shards} shards, {taken} taken, the panic at drop {at}");
                let (keys, values) = (Probe::new(), Probe::new());
                let map = Arc::into_inner(spread_over(shards, &keys, &values)).unwrap();
                let mut entries = map.into_iter();
                let yielded: Vec<(T, T)> = entries.by_ref().take(taken).collect();
                assert_eq!(entries.len(), left, "{case}");
                drop_panics_once(&case, &keys, &values, at, || drop(entries));
                assert_eq!(keys.live(), taken, "{case}: keys left alive");
                assert_eq!(values.live(), taken, "{case}: values left alive");
                drop(yielded);
                keys.assert_all_dropped();
                values.assert_all_dropped();
            }
        }
    }
}

/// A key whose `Drop` panics while `boom` is set; hashes and compares by `id`, and its clones
/// are quiet. The thread that makes, clones and drops it counts them ([`booms_live`]).
struct Boom {
    id: u64,
    boom: bool,
}

thread_local! {
    /// `Boom`s made (and cloned) on this thread, less those dropped on it.
    static BOOMS_LIVE: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
}

/// How many `Boom`s this thread made and has not dropped (each test runs on a thread of its
/// own, and the maps here drop keys on the calling thread).
fn booms_live() -> isize {
    BOOMS_LIVE.with(std::cell::Cell::get)
}

impl Boom {
    fn new(id: u64, boom: bool) -> Self {
        BOOMS_LIVE.with(|n| n.set(n.get() + 1));
        Boom { id, boom }
    }
}

impl Hash for Boom {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl PartialEq for Boom {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Boom {}

impl Clone for Boom {
    fn clone(&self) -> Self {
        Boom::new(self.id, false)
    }
}

impl Drop for Boom {
    fn drop(&mut self) {
        BOOMS_LIVE.with(|n| n.set(n.get() - 1));
        if self.boom {
            panic!("{DROP_PANIC}");
        }
    }
}

/// Something whose drops are counted (a map's value, a closure's result or capture).
struct Dropped(Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// `get_or_insert_with_ref` of a key already present, with a `make` (left unused) that holds a
/// key whose `Drop` panics, and an `f` that returns `result()`.
fn ref_call_leaving_a_make_that_panics_in_drop<R>(result: impl FnOnce() -> R) -> R {
    let map = ShardedMap::<String, u32>::new();
    map.insert("k".to_string(), 0);
    let capture = Boom::new(9, true);
    let make = move || {
        drop(capture);
        0
    };
    map.get_or_insert_with_ref("k", make, |_| result())
}

/// How many `Dropped` a call whose key's (or unused closure's) `Drop` panics drops: the call
/// must unwind with that panic and drop what it was about to return, not leak it (a value in
/// the return place when a local's drop panics is leaked: rust-lang/rust#47949).
fn drops_in_a_panicking_call(call: impl FnOnce(&Arc<AtomicUsize>)) -> usize {
    let drops = Arc::new(AtomicUsize::new(0));
    expect_panic(DROP_PANIC, || call(&drops));
    drops.load(SeqCst)
}

/// `ShardedMap`'s calls drop a spare key, a removed key and an unused `make` after the lock,
/// while what they return is still a local: where one of those `Drop`s panics, the replaced or
/// removed value, or `f`'s result, is dropped by the unwind, once.
#[test]
fn sharded_key_drop_panics_after_a_call_leak_nothing_it_returned() {
    type Map = ShardedMap<Boom, Dropped>;
    let key = Boom::new;
    let keys = booms_live();
    let with_one = |drops: &Arc<AtomicUsize>, boom| {
        let map = Map::new();
        map.insert(key(1, boom), Dropped(drops.clone()));
        map
    };
    let insert = drops_in_a_panicking_call(|d| {
        with_one(d, false).insert(key(1, true), Dropped(d.clone()));
    });
    assert_eq!(insert, 2, "insert: the replaced value, then the map's");
    let set = drops_in_a_panicking_call(|d| {
        let map = with_one(d, false);
        map.compute(key(1, true), |_| Compute::Set(Dropped(d.clone())));
    });
    assert_eq!(set, 2, "compute Set: the replaced value, then the map's");
    let removed = drops_in_a_panicking_call(|d| {
        let map = with_one(d, true); // the stored key panics when the entry's removal drops it
        map.compute(key(1, false), |_| Compute::Remove);
    });
    assert_eq!(removed, 1, "compute Remove: the removed value");
    let kept = drops_in_a_panicking_call(|d| {
        let map = with_one(d, false);
        map.compute(key(2, true), |_| Compute::Keep); // absent, nothing inserted
    });
    assert_eq!(kept, 1, "compute Keep of an absent key: the map's value");
    let spare = drops_in_a_panicking_call(|d| {
        let map = with_one(d, false);
        map.get_or_insert_with(key(1, true), || unreachable!(), |_| Dropped(d.clone()));
    });
    assert_eq!(
        spare, 2,
        "get_or_insert_with: f's result, then the map's value"
    );
    let unused = drops_in_a_panicking_call(|d| {
        let map = with_one(d, false);
        let capture = key(9, true); // dropped with the unused `make`
        map.get_or_insert_with(
            key(1, false),
            move || -> Dropped {
                drop(capture);
                unreachable!()
            },
            |_| Dropped(d.clone()),
        );
    });
    assert_eq!(
        unused, 2,
        "get_or_insert_with, `make` unused: f's result, the map's value"
    );
    let unused_ref = drops_in_a_panicking_call(|d| {
        ref_call_leaving_a_make_that_panics_in_drop(|| Dropped(d.clone()));
    });
    assert_eq!(
        unused_ref, 1,
        "get_or_insert_with_ref, `make` unused: f's result"
    );
    assert_eq!(booms_live(), keys, "keys left undropped");
}

/// A value or closure result whose `Drop` panics (with [`SECOND_DROP_PANIC`]) while `armed`;
/// counts its drops, and those made while a panic unwinds.
struct Loud {
    drops: Arc<AtomicUsize>,
    in_unwind: Arc<AtomicUsize>,
    armed: bool,
}

impl Drop for Loud {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
        if std::thread::panicking() {
            self.in_unwind.fetch_add(1, SeqCst);
        }
        if self.armed {
            panic!("{SECOND_DROP_PANIC}");
        }
    }
}

const SECOND_DROP_PANIC: &str = "panics_map: planned Drop panic while another unwinds";

/// The calls of [`sharded_key_drop_panics_after_a_call_leak_nothing_it_returned`] where what
/// the call would return panics in `Drop` too (and, for `compute`'s removal and
/// `get_or_insert_with`'s unused `make`, the key it drops next): the key's panic reaches the
/// caller, and each of the others is dropped once, as it unwinds, its own panic let go. Each
/// second panic, escaping, aborted the process.
#[test]
fn sharded_calls_whose_key_and_result_both_panic_in_drop_reach_the_caller() {
    type Map = ShardedMap<Boom, Loud>;
    let key = Boom::new;
    let (drops, in_unwind) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let loud = |armed| Loud {
        drops: drops.clone(),
        in_unwind: in_unwind.clone(),
        armed,
    };
    // The map's one entry: key 1 (its `Drop` panics if `boom`) with a value armed or not.
    let with_one = |boom, armed| {
        let map = Map::new();
        map.insert(key(1, boom), loud(armed));
        map
    };
    // Runs `call`, which must unwind with the key's panic, having dropped `louds` `Loud`s, each
    // in the unwind; then drops the map and checks that it held `left` `Loud`s, and that every
    // key made since the map (and the map's own) was dropped.
    let case = |what: &str, map: Map, louds: usize, left: usize, call: &dyn Fn(&Map)| {
        let keys = booms_live();
        let (d, u) = (drops.load(SeqCst), in_unwind.load(SeqCst));
        expect_panic(DROP_PANIC, || call(&map));
        assert_eq!(drops.load(SeqCst) - d, louds, "{what}: drops");
        assert_eq!(
            in_unwind.load(SeqCst) - u,
            louds,
            "{what}: drops in the unwind"
        );
        assert_eq!(map.len(), left, "{what}: entries left");
        let d = drops.load(SeqCst);
        drop(map);
        assert_eq!(drops.load(SeqCst) - d, left, "{what}: the map's drop");
        assert_eq!(booms_live(), keys - 1, "{what}: keys left undropped");
    };
    case("insert", with_one(false, true), 1, 1, &|m| {
        m.insert(key(1, true), loud(false));
    });
    case("remove", with_one(true, true), 1, 0, &|m| {
        m.remove(&key(1, false));
    });
    case("compute Set", with_one(false, true), 1, 1, &|m| {
        m.compute(key(1, true), |_| Compute::Set(loud(false)));
    });
    // The removed key panics, then the given key (a `Boom` too) as it unwinds.
    case("compute Remove", with_one(true, true), 1, 0, &|m| {
        m.compute(key(1, true), |_| Compute::Remove);
    });
    case("get_or_insert_with", with_one(false, false), 1, 1, &|m| {
        m.get_or_insert_with(key(1, true), || unreachable!(), |_| loud(true));
    });
    // The unused `make`'s capture panics, then the spare key as it unwinds.
    case(
        "get_or_insert_with, make unused",
        with_one(false, false),
        1,
        1,
        &|m| {
            let capture = key(9, true);
            m.get_or_insert_with(
                key(1, true),
                move || -> Loud {
                    drop(capture);
                    unreachable!()
                },
                |_| loud(true),
            );
        },
    );
    let (d, u, keys) = (drops.load(SeqCst), in_unwind.load(SeqCst), booms_live());
    expect_panic(DROP_PANIC, || {
        ref_call_leaving_a_make_that_panics_in_drop(|| loud(true))
    });
    assert_eq!(
        (drops.load(SeqCst) - d, in_unwind.load(SeqCst) - u),
        (1, 1),
        "get_or_insert_with_ref, make unused: f's result, in the unwind"
    );
    assert_eq!(
        booms_live(),
        keys,
        "get_or_insert_with_ref: the capture left undropped"
    );
}

/// `CowMap::insert` of a present key drops the key passed in while the replaced value (a copy
/// the write made) is still a local: where that `Drop` panics, the write publishes nothing and
/// the copy of the value is dropped, not leaked.
#[test]
fn cow_insert_whose_key_drop_panics_leaks_no_copy_of_the_value() {
    /// A value whose drops (its clones' too) are counted.
    #[derive(Clone)]
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let map = CowMap::new();
    map.insert(Boom::new(1, false), Counted(drops.clone()));
    map.trim();
    let before = drops.load(SeqCst);
    let value = Counted(drops.clone());
    expect_panic(DROP_PANIC, || map.insert(Boom::new(1, true), value));
    assert_eq!(map.len(), 1);
    map.trim();
    // The new value (moved into the discarded copy) and the copy of the old one, each once.
    assert_eq!(
        drops.load(SeqCst) - before,
        2,
        "a copy of a value was leaked"
    );
}
