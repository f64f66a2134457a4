//! An exhaustive sweep of `CowMap` writes whose key `Hash`, key `Clone` or value `Clone` panics,
//! at every call in turn: the 1st call of that kind the write makes, then the 2nd, and so on,
//! until a write completes without reaching the planned panic. `tests/panics_map.rs` plans panics
//! at chosen calls, one path at a time; this file tries every call of every write kind
//! (`insert` of an absent and of a present key, `remove` of a present key by key and by a
//! borrowed `u64`, `remove` of an absent key, an `update` batch, `store`, `clear`, `trim`),
//! for maps of 0 to 40 entries (across the table's growth boundaries: 3, 7, 14 and 28 entries
//! fill a table), down every path a write takes to build its copy: a whole copy (with and
//! without a `Reader`), a copy into the spare a reader left, a replay of the last `insert`
//! (of a new or a present key) or `remove` into the spare, a spare a `Snapshot` pins (so the
//! write copies afresh), and a table with over four times the room its entries need (rebuilt
//! to fit, hashing every key).
//!
//! Keys and values are [`C`]s, census copies counted by serial (keys and values apart), hashed
//! and compared by id: a drop of a copy that is not alive (dropped already, or never made) is a
//! failure. After each try the planned panic, and no other, must have reached the caller, and
//! the map must hold what `CowMap::update`'s Panics section promises of a write whose `Clone` or
//! `Hash` panics: nothing published, "the map is unchanged and usable". So its contents (by a
//! snapshot, plain reads and a `Reader` made before the sweep, which reads after every write),
//! its `len` and its version are those before the write, checked against a `std` `HashMap`
//! model; a write that completes leaves the model after it. Either way a `Snapshot` taken just
//! before the write still reads the old contents, and the old versions kept stay within the
//! documented bound (one per live `Reader` and `Snapshot`). Then the same write, retried (which
//! would panic as re-entrant if the thread's mark inside the map's writes outlived the panic, and
//! hang if the writers' lock did: the sweep runs under a deadline), and one more `insert` must
//! work; and, with the `Reader` moved on, the `Snapshot` dropped and the map trimmed, the live
//! copies must be exactly the map's entries (the model holds ids, no copies): none leaked, none
//! dropped twice. Every map and reader is dropped at the end, and the census must be back to
//! zero. A sweep also checks that the write that completes made exactly one call fewer than the
//! panic planned for it (every call was tried), and, where the path fixes it, how many calls that
//! was (the premise that the path under test is the one taken).
//!
//! Under Miri the sweep runs on maps of 2 entries only.

#![cfg(not(loom))]
// `C` keys hold their census (a mutex), but hash and compare by `id` alone.
#![allow(clippy::mutable_key_type)]

#[path = "common/deadline.rs"]
mod deadline;
#[path = "common/panics.rs"]
mod panics;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};
use thrifty::map::{CowMap, Reader, Snapshot};

/// The start of every planned panic's message (the rest names the site and the call).
const PLANNED: &str = "panics_map_sweep: planned";

/// The map sizes swept: 0, 1, a few, each side of the sizes that fill a table (3, 7, 14, 28:
/// an `insert` into a copy of such a table grows it, rehashing every key), and 40. Under Miri,
/// a few of them.
const SIZES: &[u64] = if cfg!(miri) {
    &[2]
} else {
    &[0, 1, 2, 3, 4, 7, 8, 9, 14, 15, 28, 29, 40]
};

/// The sizes at which the tables the sweep builds (by `insert`s in key order, or
/// `with_capacity(len)`) are full: an `insert` into a copy of one grows it.
const FULL: &[u64] = &[3, 7, 14, 28];

/// More tries than any write makes calls: a sweep that reaches it never completes a write.
const MOST_TRIES: usize = 1000;

/// The first value id: key `k` of a base map holds value `VALUE + k`.
const VALUE: u64 = 1000;
/// A key no map holds when a write begins (the new key an `insert` brings).
const NEW: u64 = 500;
/// The key the arrangements add and remove around the base map.
const EXTRA: u64 = 600;
/// The key the write after each try inserts.
const NEXT: u64 = 700;
/// The keys an `update` batch inserts: `BATCH..BATCH + 3`.
const BATCH: u64 = 800;
/// The new key a `store`d map holds.
const STORED: u64 = 900;
/// A key never inserted.
const ABSENT: u64 = 999;

/// Where a planned panic fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Site {
    KeyHash,
    KeyClone,
    ValueClone,
}

/// Whether a [`C`] is a key or a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Key,
    Value,
}

/// A census's books, behind its lock.
#[derive(Default)]
struct Books {
    /// Every copy ever made, by serial: whether it is alive.
    alive: Vec<bool>,
    /// Live copies, keys then values.
    live: [usize; 2],
    /// Drops of a copy that was not alive: dropped already, or never made.
    bad_drops: usize,
    /// Calls made at each site, in `Site` order.
    calls: [usize; 3],
    /// The planned panic: its site, the call it fires at, and how many calls at that site to
    /// go until it does (0 once it fired).
    plan: Option<(Site, usize, usize)>,
}

/// One sweep's census of its [`C`]s, and the countdown that plans its panic.
#[derive(Default)]
struct Census(Mutex<Books>);

impl Census {
    fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The books, even after a failed assertion elsewhere poisoned the lock.
    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Files a new copy; returns its serial.
    fn made(&self, role: Role) -> usize {
        let mut books = self.books();
        books.alive.push(true);
        books.live[role as usize] += 1;
        books.alive.len() - 1
    }

    /// Files the drop of copy `serial`: a failure (counted, asserted later) if it is not alive.
    fn dropped(&self, serial: usize, role: Role) {
        let mut books = self.books();
        match books.alive.get_mut(serial) {
            Some(alive) if *alive => {
                *alive = false;
                books.live[role as usize] -= 1;
            }
            _ => books.bad_drops += 1,
        }
    }

    /// Counts a call at `site`; returns the panic message if it is the planned one.
    fn call(&self, site: Site) -> Option<String> {
        let mut books = self.books();
        books.calls[site as usize] += 1;
        match &mut books.plan {
            Some((planned, at, left)) if *planned == site && *left > 0 => {
                *left -= 1;
                (*left == 0).then(|| planned_message(site, *at))
            }
            _ => None,
        }
    }

    /// Plans a panic at the `at`th call at `site` from now.
    fn arm(&self, site: Site, at: usize) {
        assert!(at > 0);
        self.books().plan = Some((site, at, at));
    }

    /// Calls made at `site` so far.
    fn calls(&self, site: Site) -> usize {
        self.books().calls[site as usize]
    }

    /// Cancels the plan; returns whether its panic fired.
    fn disarm(&self) -> bool {
        matches!(self.books().plan.take(), Some((_, _, 0)))
    }

    /// Asserts that no copy was dropped when not alive, and that `keys` keys and `values`
    /// values are alive.
    #[track_caller]
    fn assert_live(&self, keys: usize, values: usize, case: &dyn fmt::Display) {
        let books = self.books();
        assert_eq!(
            books.bad_drops, 0,
            "{case}: a copy dropped twice, or never made"
        );
        assert_eq!(books.live, [keys, values], "{case}: live [keys, values]");
    }
}

/// The message of the panic planned at the `at`th call at `site`.
fn planned_message(site: Site, at: usize) -> String {
    format!("{PLANNED} {site:?} panic at call {at}")
}

/// A census copy, a key or a value: hashed and compared by `id` alone (so a `&u64` looks a key
/// up without making one), filed in its census when made and dropped; its `Clone` (and, for a
/// key, its `Hash`) counts the call and panics where the census plans it.
struct C {
    id: u64,
    role: Role,
    serial: usize,
    census: Arc<Census>,
}

impl C {
    fn new(id: u64, role: Role, census: &Arc<Census>) -> Self {
        C {
            id,
            role,
            serial: census.made(role),
            census: census.clone(),
        }
    }

    fn key(id: u64, census: &Arc<Census>) -> Self {
        C::new(id, Role::Key, census)
    }

    fn value(id: u64, census: &Arc<Census>) -> Self {
        C::new(id, Role::Value, census)
    }
}

impl Clone for C {
    fn clone(&self) -> Self {
        let site = match self.role {
            Role::Key => Site::KeyClone,
            Role::Value => Site::ValueClone,
        };
        if let Some(message) = self.census.call(site) {
            panic!("{message}");
        }
        C::new(self.id, self.role, &self.census)
    }
}

impl Drop for C {
    fn drop(&mut self) {
        self.census.dropped(self.serial, self.role);
    }
}

impl Hash for C {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if self.role == Role::Key {
            if let Some(message) = self.census.call(Site::KeyHash) {
                panic!("{message}");
            }
        }
        // As `u64` hashes: `Borrow<u64>` lookups find the same slot.
        self.id.hash(state);
    }
}

impl PartialEq for C {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for C {}

impl Borrow<u64> for C {
    fn borrow(&self) -> &u64 {
        &self.id
    }
}

/// A fixed hash of a `u64` (all a [`C`] hashes): every run lays tables out alike, so every
/// try of a sweep takes the same path and makes the same calls.
#[derive(Default)]
struct Mix(u64);

impl Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64s are hashed here");
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ 0x5bd1_e995).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Mixed = BuildHasherDefault<Mix>;
type Cow = CowMap<C, C, Mixed>;
type Table = HashMap<C, C, Mixed>;
/// What a map holds, by ids. It keeps no census copies.
type Model = HashMap<u64, u64>;

/// The base map of `n` entries: keys `0..n`, key `k` holding value `VALUE + k`.
fn base(n: u64) -> Model {
    (0..n).map(|k| (k, VALUE + k)).collect()
}

/// A table of fresh copies holding `model`, made with room for `capacity` entries and filled in
/// key order (so alike every time).
fn table(census: &Arc<Census>, model: &Model, capacity: usize) -> Table {
    let mut entries: Vec<_> = model.iter().map(|(&k, &v)| (k, v)).collect();
    entries.sort_unstable();
    let mut table = Table::with_capacity_and_hasher(capacity, Mixed::default());
    for (k, v) in entries {
        table.insert(C::key(k, census), C::value(v, census));
    }
    table
}

/// What a table holds, by ids; fails if it holds a key twice.
#[track_caller]
fn ids(table: &Table, case: &dyn fmt::Display) -> Model {
    let model: Model = table.iter().map(|(k, v)| (k.id, v.id)).collect();
    assert_eq!(model.len(), table.len(), "{case}: a key twice");
    model
}

/// How the map is made ready for the write under test, so that the write builds its copy down
/// one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// No spare: a whole copy of the current version (`HashMap::clone`).
    Copy,
    /// The reader left the version before a `store`: the copy goes into that spare (for types
    /// with drop glue, into a new table, the spare's old one dropped after the lock).
    IntoSpare,
    /// The spare is one `insert` of a new key behind: the write replays it (cloning its key
    /// and value).
    ReplayInsert,
    /// The spare is one `insert` of a present key behind: the replay clones its value.
    ReplayReplace,
    /// The spare is one `remove` behind: the replay takes the entry out, cloning nothing.
    ReplayRemove,
    /// The spare is one `remove` behind but a `Snapshot` holds it: the write copies afresh.
    PinnedSpare,
    /// The current table has over four times the room its entries need: the copy is rebuilt
    /// to fit, hashing every key.
    Sparse,
}

impl Path {
    /// The paths a map with a reader takes (without one, only `Copy` and `Sparse`: a spare is
    /// what a reader leaves).
    const ALL: [Path; 7] = [
        Path::Copy,
        Path::IntoSpare,
        Path::ReplayInsert,
        Path::ReplayReplace,
        Path::ReplayRemove,
        Path::PinnedSpare,
        Path::Sparse,
    ];

    /// Whether a map of `n` entries can take this path: replaying an `insert` that leaves the
    /// base map needs a key in it.
    fn fits(self, n: u64) -> bool {
        n > 0 || !matches!(self, Path::ReplayInsert | Path::ReplayReplace)
    }
}

/// A write under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    /// `insert` of a key the map does not hold.
    InsertNew,
    /// `insert` of a key the map holds (the middle one).
    InsertPresent,
    /// `remove` of a present key (the middle one), looked up by a key.
    Remove,
    /// `remove` of a present key (the last), looked up by its `u64` id.
    RemoveById,
    /// `remove` of an absent key, by a key: publishes nothing.
    RemoveAbsent,
    /// An `update` that inserts three new keys, replaces key 0 and removes key 1.
    Update,
    /// `store` of a map built before the write: clones and hashes nothing.
    Store,
    /// `clear`: clones the hasher only.
    Clear,
    /// `trim`: changes no contents.
    Trim,
}

impl Write {
    const ALL: [Write; 9] = [
        Write::InsertNew,
        Write::InsertPresent,
        Write::Remove,
        Write::RemoveById,
        Write::RemoveAbsent,
        Write::Update,
        Write::Store,
        Write::Clear,
        Write::Trim,
    ];

    /// Whether a map of `n` entries can take this write: those of a present key need one.
    fn fits(self, n: u64) -> bool {
        n > 0
            || !matches!(
                self,
                Write::InsertPresent | Write::Remove | Write::RemoveById
            )
    }

    /// Whether the write publishes a version when it completes.
    fn publishes(self) -> bool {
        !matches!(self, Write::RemoveAbsent | Write::Trim)
    }

    /// Whether the write copies the map (builds a version from the current one).
    fn copies(self) -> bool {
        matches!(
            self,
            Write::InsertNew
                | Write::InsertPresent
                | Write::Remove
                | Write::RemoveById
                | Write::Update
        )
    }
}

/// What a write gave back, by ids: the value an `insert` replaced or a `remove` took out, or
/// what an `update`'s closure replaced and removed.
type Returned = Vec<Option<u64>>;

/// A write's call on the map.
type Run = Box<dyn FnOnce(&Cow) -> Returned>;

/// A write ready to run: its call, what it must give back, and the model after it.
struct Prepared {
    run: Run,
    returns: Returned,
    after: Model,
}

/// Makes `write` ready for a map holding `before`: the copies it takes (and, for `store`, the
/// table it publishes) are made now, so the planned panic can only fire inside the map.
fn prepare(write: Write, census: &Arc<Census>, before: &Model) -> Prepared {
    let n = before.len() as u64;
    let mut after = before.clone();
    let (key, value) = (|k| C::key(k, census), |v| C::value(v, census));
    let (run, returns): (Run, Returned) = match write {
        Write::InsertNew => {
            let (k, v) = (key(NEW), value(VALUE + NEW));
            let returns = vec![after.insert(NEW, VALUE + NEW)];
            (Box::new(|m| vec![m.insert(k, v).map(|v| v.id)]), returns)
        }
        Write::InsertPresent => {
            let (k, v) = (key(n / 2), value(2 * VALUE + n / 2));
            let returns = vec![after.insert(n / 2, 2 * VALUE + n / 2)];
            (Box::new(|m| vec![m.insert(k, v).map(|v| v.id)]), returns)
        }
        Write::Remove => {
            let k = key(n / 2);
            let returns = vec![after.remove(&(n / 2))];
            (Box::new(move |m| vec![m.remove(&k).map(|v| v.id)]), returns)
        }
        Write::RemoveById => {
            let returns = vec![after.remove(&(n - 1))];
            (
                Box::new(move |m| vec![m.remove(&(n - 1)).map(|v| v.id)]),
                returns,
            )
        }
        Write::RemoveAbsent => {
            let k = key(ABSENT);
            (
                Box::new(move |m| vec![m.remove(&k).map(|v| v.id)]),
                vec![None],
            )
        }
        Write::Update => {
            let new: Vec<_> = (BATCH..BATCH + 3)
                .map(|k| (key(k), value(VALUE + k)))
                .collect();
            let replacing = (key(0), value(3 * VALUE));
            for k in BATCH..BATCH + 3 {
                after.insert(k, VALUE + k);
            }
            let returns = vec![after.insert(0, 3 * VALUE), after.remove(&1)];
            let run = move |m: &Cow| {
                let (replaced, removed) = m.update(|t| {
                    for (k, v) in new {
                        assert!(t.insert(k, v).is_none(), "a batch key was present");
                    }
                    (t.insert(replacing.0, replacing.1), t.remove(&1))
                });
                vec![replaced.map(|v| v.id), removed.map(|v| v.id)]
            };
            (Box::new(run), returns)
        }
        Write::Store => {
            after.retain(|&k, _| k % 2 == 0);
            after.values_mut().for_each(|v| *v += VALUE);
            after.insert(STORED, VALUE + STORED);
            let stored = table(census, &after, 0);
            let run = move |m: &Cow| {
                m.store(stored);
                vec![]
            };
            (Box::new(run), vec![])
        }
        Write::Clear => {
            after.clear();
            let run = |m: &Cow| {
                m.clear();
                vec![]
            };
            (Box::new(run), vec![])
        }
        Write::Trim => {
            let run = |m: &Cow| {
                m.trim();
                vec![]
            };
            (Box::new(run), vec![])
        }
    };
    Prepared {
        run,
        returns,
        after,
    }
}

/// Names one try, for failure messages (formatted only when one fails).
#[derive(Clone, Copy)]
struct Case {
    site: Site,
    n: u64,
    reader: bool,
    path: Path,
    write: Write,
    at: usize,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reader = if self.reader { "with" } else { "without" };
        write!(
            f,
            "{:?} of a map of {} ({reader} a reader, path {:?}), {:?} panic planned at call {}",
            self.write, self.n, self.path, self.site, self.at
        )
    }
}

/// A snapshot that pins the spare ([`Path::PinnedSpare`]), with what it holds.
type Pin = (Snapshot<C, C, Mixed>, Model);

/// One map (and, if asked, one `Reader` made before any write) that every try of a sweep runs
/// on, in turn.
struct Sweep {
    census: Arc<Census>,
    map: Cow,
    reader: Option<Reader<C, C, Mixed>>,
}

impl Sweep {
    fn new(reader: bool) -> Self {
        let census = Census::new();
        let map = Cow::with_hasher(Mixed::default());
        let reader = reader.then(|| map.reader());
        Sweep {
            census,
            map,
            reader,
        }
    }

    /// The reader reads the current version, if there is a reader.
    fn refresh(&mut self) {
        if let Some(reader) = &mut self.reader {
            reader.refresh();
        }
    }

    /// Asserts that the map's current version, `len`, plain reads and the reader (which moves
    /// on to the current version) all show `model`.
    #[track_caller]
    fn assert_holds(&mut self, model: &Model, case: &dyn fmt::Display) {
        assert_eq!(
            &ids(&self.map.snapshot(), case),
            model,
            "{case}: the map's contents"
        );
        assert_eq!(self.map.len(), model.len(), "{case}: len");
        for (k, v) in model {
            assert_eq!(self.map.read(k, |v| v.id), Some(*v), "{case}: read of {k}");
        }
        assert!(
            !self.map.contains_key(&ABSENT),
            "{case}: an absent key found"
        );
        if let Some(reader) = &mut self.reader {
            assert_eq!(
                reader.version(),
                self.map.version(),
                "{case}: the reader's version"
            );
            assert_eq!(
                &ids(reader.map(), case),
                model,
                "{case}: the reader's contents"
            );
        }
    }

    /// Runs `write` on a map holding `before` with no panic planned, and checks what it gave
    /// back; returns the model after it.
    #[track_caller]
    fn write(&mut self, write: Write, before: &Model, case: &dyn fmt::Display) -> Model {
        let prepared = prepare(write, &self.census, before);
        assert_eq!(
            (prepared.run)(&self.map),
            prepared.returns,
            "{case}: {write:?} gave back"
        );
        self.refresh();
        prepared.after
    }

    /// Makes the map hold the base map of `n` entries, ready for its next write to take `path`;
    /// returns the base model, and, for `PinnedSpare`, the snapshot that pins the spare with
    /// what it holds.
    fn arrange(&mut self, path: Path, n: u64, case: &Case) -> (Model, Option<Pin>) {
        let base = base(n);
        let census = &self.census.clone();
        let mut pin = None;
        // What the map holds before the last arranging write, and that write.
        let (first, last) = match path {
            Path::Copy | Path::IntoSpare => (table(census, &base, 0), None),
            Path::Sparse => (table(census, &base, 4 * n as usize + 64), None),
            Path::ReplayInsert => {
                let mut first = base.clone();
                first.remove(&(n - 1));
                (
                    table(census, &first, 0),
                    Some((C::key(n - 1, census), VALUE + n - 1)),
                )
            }
            Path::ReplayReplace => {
                let mut first = base.clone();
                first.insert(0, 2 * VALUE);
                (table(census, &first, 0), Some((C::key(0, census), VALUE)))
            }
            Path::ReplayRemove | Path::PinnedSpare => {
                let mut first = base.clone();
                first.insert(EXTRA, VALUE + EXTRA);
                (table(census, &first, 0), None)
            }
        };
        let first_model = ids(&first, case);
        self.map.store(first);
        if path == Path::PinnedSpare {
            // Through the reader (it takes the current version, as a refresh does), if any.
            let snap = match &mut self.reader {
                Some(reader) => reader.snapshot(),
                None => self.map.snapshot(),
            };
            pin = Some((snap, first_model));
        }
        self.refresh();
        if path != Path::IntoSpare {
            // No spare, no recorded change: the next write copies (or builds on what follows).
            self.map.trim();
        }
        match (path, last) {
            (_, Some((key, value))) => {
                self.map.insert(key, C::value(value, census));
                self.refresh();
            }
            (Path::ReplayRemove | Path::PinnedSpare, _) => {
                assert!(self.map.remove(&EXTRA).is_some());
                self.refresh();
            }
            _ => {}
        }
        let spare = usize::from(!matches!(path, Path::Copy | Path::Sparse));
        let kept = if self.reader.is_some() { spare } else { 0 };
        assert_eq!(
            self.map.retired_versions(),
            kept,
            "{case}: premise: versions kept"
        );
        if path == Path::Sparse {
            let room = self.map.snapshot().capacity();
            assert!(
                room > 4 * n as usize + 32,
                "{case}: premise: a sparse table ({room})"
            );
        }
        (base, pin)
    }

    /// One try: `case.write` on a map arranged for `case.path`, with a panic planned at call
    /// `case.at` at `case.site`. Returns `None` if the panic fired, else how many calls at the
    /// site the write made.
    fn try_once(&mut self, case: &Case) -> Option<usize> {
        let (before, pin) = self.arrange(case.path, case.n, case);
        let snap = self.map.snapshot();
        let Prepared {
            run,
            returns,
            after,
        } = prepare(case.write, &self.census, &before);
        let version = self.map.version();
        let calls = self.census.calls(case.site);
        self.census.arm(case.site, case.at);
        let outcome = catch_unwind(AssertUnwindSafe(|| run(&self.map)));
        let fired = self.census.disarm();
        let calls = self.census.calls(case.site) - calls;
        let (mut model, completed) = match outcome {
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("<not a string>");
                assert_eq!(
                    message,
                    planned_message(case.site, case.at),
                    "{case}: the panic"
                );
                assert!(fired, "{case}: premise: the plan fired");
                assert_eq!(calls, case.at, "{case}: calls to the panic");
                // A write that panics in a `Clone` or `Hash` publishes nothing.
                assert_eq!(
                    self.map.version(),
                    version,
                    "{case}: a failed write published"
                );
                self.assert_holds(&before, case);
                (before.clone(), None)
            }
            Ok(got) => {
                assert!(
                    !fired,
                    "{case}: the planned panic fired but did not reach the caller"
                );
                assert_eq!(got, returns, "{case}: what the write gave back");
                let published = u64::from(case.write.publishes());
                assert_eq!(self.map.version(), version + published, "{case}: version");
                self.assert_holds(&after, case);
                (after.clone(), Some(calls))
            }
        };
        // The snapshot taken before the write (and the one pinning the spare) still read their
        // versions; old versions kept: at most one per live `Reader` and `Snapshot`.
        assert_eq!(
            ids(&snap, case),
            before,
            "{case}: the snapshot taken before the write"
        );
        assert_eq!(snap.version(), version, "{case}: the snapshot's version");
        let held = usize::from(self.reader.is_some()) + 1 + usize::from(pin.is_some());
        let kept = self.map.retired_versions();
        assert!(
            kept <= held,
            "{case}: {kept} old versions kept, for {held} readers"
        );
        if let Some((pin, pinned)) = pin {
            assert_eq!(
                ids(&pin, case),
                pinned,
                "{case}: the snapshot pinning the spare"
            );
        }
        drop(snap);
        // The same write again, if it failed, then one more: the map still works.
        self.refresh();
        if completed.is_none() {
            model = self.write(case.write, &model, case);
            assert_eq!(model, after, "{case}: the retried write");
            self.assert_holds(&model, case);
        }
        let mut next = model.clone();
        let (k, v) = (
            C::key(NEXT, &self.census),
            C::value(VALUE + NEXT, &self.census),
        );
        assert_eq!(
            self.map.insert(k, v).map(|v| v.id),
            next.insert(NEXT, VALUE + NEXT)
        );
        self.refresh();
        self.assert_holds(&next, case);
        // Nothing beyond the map's entries: no old version (the reader moved on, the snapshots
        // are gone), no recorded key (`trim` lets go of it).
        self.map.trim();
        assert_eq!(
            self.map.retired_versions(),
            0,
            "{case}: an old version outlived trim"
        );
        self.census.assert_live(next.len(), next.len(), case);
        completed
    }
}

/// How many calls at `site` a completed `write` makes down `path` on a map of `n` entries,
/// where the path fixes it: the calls a sweep tries.
fn expected_calls(site: Site, path: Path, write: Write, n: u64) -> Option<usize> {
    let n = n as usize;
    let full = FULL.contains(&(n as u64));
    let insert = matches!(write, Write::InsertNew | Write::InsertPresent);
    if !write.copies() {
        // `remove` of an absent key hashes it once, on the current version, unless that is
        // empty (`HashMap` looks nothing up in an empty table).
        let hashes = usize::from(write == Write::RemoveAbsent && n > 0);
        return Some(if site == Site::KeyHash { hashes } else { 0 });
    }
    // The copy's calls: a whole copy clones every key and value; a replay, one entry's.
    let (keys, values) = match path {
        Path::ReplayInsert => (1, 1),
        Path::ReplayReplace => (0, 1),
        Path::ReplayRemove => (0, 0),
        _ => (n, n),
    };
    match site {
        // The record of an `insert` clones its key once more.
        Site::KeyClone => Some(keys + usize::from(insert)),
        Site::ValueClone => Some(values),
        // The new key's hash, and, where the copy is full, every key's as it grows.
        Site::KeyHash if write == Write::InsertNew && path == Path::Copy => {
            Some(1 + if full { n } else { 0 })
        }
        // A sparse copy is rebuilt to fit, hashing every key, and full where the others are.
        Site::KeyHash if write == Write::InsertNew && path == Path::Sparse => {
            Some(n + 1 + if full { n } else { 0 })
        }
        Site::KeyHash => None,
    }
}

/// Sweeps the panic over every call at `site` of every write of every size and path, on maps
/// with a reader (`reader`) or without; checks each try ([`Sweep::try_once`]) and, at the end,
/// that dropping the map and the reader leaves no copy alive. Under a deadline: a writers' lock
/// that a panic left held would make the next write wait for ever.
fn sweep(site: Site, reader: bool) {
    panics::quiet_panics_containing(PLANNED);
    deadline::within("sweep", move || {
        let paths: &[Path] = if reader {
            &Path::ALL
        } else {
            &[Path::Copy, Path::Sparse]
        };
        for &n in SIZES {
            let mut sweep = Sweep::new(reader);
            for &path in paths.iter().filter(|p| p.fits(n)) {
                for &write in Write::ALL.iter().filter(|w| w.fits(n)) {
                    let mut case = Case {
                        site,
                        n,
                        reader,
                        path,
                        write,
                        at: 1,
                    };
                    let calls = loop {
                        assert!(case.at < MOST_TRIES, "{case}: the write never completes");
                        if let Some(calls) = sweep.try_once(&case) {
                            break calls;
                        }
                        case.at += 1;
                    };
                    assert_eq!(calls, case.at - 1, "{case}: calls of the completed write");
                    if let Some(expected) = expected_calls(site, path, write, n) {
                        assert_eq!(calls, expected, "{case}: premise: the calls on this path");
                    }
                }
            }
            let census = sweep.census.clone();
            drop(sweep);
            census.assert_live(0, 0, &format_args!("{site:?}, {n}: after the map's drop"));
        }
    });
}

#[test]
fn key_hash_panics_at_every_call_with_a_reader() {
    sweep(Site::KeyHash, true);
}

#[test]
fn key_clone_panics_at_every_call_with_a_reader() {
    sweep(Site::KeyClone, true);
}

#[test]
fn value_clone_panics_at_every_call_with_a_reader() {
    sweep(Site::ValueClone, true);
}

#[test]
fn every_site_panics_at_every_call_without_a_reader() {
    for site in [Site::KeyHash, Site::KeyClone, Site::ValueClone] {
        sweep(site, false);
    }
}
