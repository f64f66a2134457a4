//! [`CowMap`]: a copy-on-write map whose readers never wait, with [`Reader`] handles and
//! [`Snapshot`] views.
//!
//! The promises, each kept by a test or a model:
//! - Reads never wait: not for a writer, not for another reader. A plain read retries its
//!   hazard once for each write that publishes during it (lock-free: only a writer that keeps
//!   publishing delays it); a [`Reader`]'s read of an unchanged version does not retry, performs
//!   no atomic read-modify-write and writes nothing shared.
//! - A write copies the map once per [`update`](CowMap::update) batch and publishes it with one
//!   atomic swap: readers see all of a batch or none of it (`tests/loom_map_cow.rs`), and a
//!   reader never sees a version older than one it has seen.
//! - A writer never waits for a read, and nothing is freed while read or leaked. What a write,
//!   [`trim`](CowMap::trim) or a dropped `Reader` frees is taken out under the writers' lock and
//!   dropped after letting go (old versions; for a write, also the spare's old entries, the entry a
//!   replay displaced and the key the replaced version recorded; for `trim`, the current version's
//!   recorded key), so no writer waits for destructors another call runs, and a value's `Drop` may
//!   write the map. (Plain data, with no drop glue in keys, values or hasher, is freed before
//!   letting go: deallocation only, no destructor. Still under the lock: what an `update`'s closure
//!   drops itself, the key an `insert` of a present key drops, what a panicking `Clone` or `Hash`
//!   had cloned of a half-made copy, and, as a panic in a write unwinds, what the call held there:
//!   the key and value an `insert` was given, or, where the key's `Clone` that records it panics
//!   after an `insert` of a present key, the value it displaced.) The lock's holder does scan the
//!   hazard slots (below) under it, and so does a dropped `Reader`: a writer may wait for such a
//!   scan. A `Reader`'s read never frees a version: the next write reuses the memory of the old
//!   version the readers left (the spare) or frees it.
//! - A write or `trim` of a map from code that runs under its writers' lock (an `update`'s
//!   closure, a key's or value's `Clone`, `Hash` or `Eq`, the hasher's `Clone` or `build_hasher`,
//!   during a write) panics instead of waiting for itself: the thread marks itself inside the
//!   map's writes before it locks, as [`ShardedMap`](crate::map::ShardedMap) does
//!   (`src/sync/inside.rs`).
//! - Old versions alive at once: at most one per live [`Reader`] and [`Snapshot`] and per read in
//!   progress (now, or when the last write ran), reported by [`CowMap::retired_versions`] (the
//!   spare counts against a reader or read that held the current version when it was kept), plus
//!   the one the write in progress replaces. For keys, values or a hasher with drop glue, add those
//!   a write or a `Reader`'s drop let go of and has not finished freeing: it frees them after it
//!   unlocks, so their destructors never run under the lock, and a thread that waits to run between
//!   the two (many more writer threads than CPUs) holds them until it runs again: one write's worth
//!   per such thread. Plain data (no drop glue) is freed under the lock, where freeing runs no
//!   destructor.
//! - What readers cost the writers: every write (twice, when it builds in a kept version), `trim`
//!   and `Reader` drop scans every hazard slot, and slots are kept until the map drops: one per
//!   read that ever ran at once, and one per `Reader` that was ever alive at once. So the scan is
//!   `O(most Readers ever alive at once)`: thousands of `Reader`s made once (one per connection,
//!   say) slow every later write and each `Reader` drop, even after they are gone. Share `Reader`s
//!   per thread. Making a `Reader` is `O(1)` (a stack of free slots) whatever the number alive.
//!
//! # How it works
//!
//! Each version is an `Arc` holding the `HashMap` and a sequence number. The map holds a
//! pointer to the current version (`Arc::into_raw`, carrying the map's own strong count) on a
//! cache line of its own, written once per write.
//!
//! **Writers** take a lock among themselves, clone the current map, apply the batch, wrap the copy
//! in a new `Arc` and swap the pointer. The old version's strong count now belongs to the writer,
//! which lets go of it unless a *hazard* (below) says a read is using it, or that a read already
//! uses the new one (then the newest unused old version is kept as the next write's spare); a kept
//! version's count waits in a retired list that every later write and [`CowMap::trim`] retry. It
//! never waits for a read: an old version some reader still needs is simply kept, and freed later
//! by the last holder of a count. Writers serialise on the lock instead of retrying a CAS, so a
//! write copies the map once, however many writers contend.
//!
//! **Freeing after unlocking.** What the lock's holder lets go of (the counts on old
//! versions, the spare's old table, the entry a replay displaced, a version built by an
//! `update` whose closure panicked) goes to a *trash* (`inner.rs`) that the lock's guard,
//! `Locked`, drops after it unlocks and after the thread leaves the map's re-entrancy mark: so
//! an entry's `Drop` may write the map, and no writer waits for destructors. When no key, value
//! or hasher has drop glue, freeing is deallocation only, and `Locked` empties the trash before
//! it unlocks: a writer made to wait after unlocking then holds no old version. The trash keeps
//! four versions inline (a `SmallVec`): the write path allocates nothing for it unless more
//! old versions than that become free at once. A version's drop drops its entries one by one
//! (`version.rs`, `drop_entries`), going on past one whose `Drop` panics, as `Vec` does, where
//! `HashMap`'s own drop would leak the rest of the table.
//!
//! **Taking a version safely** (`hazard.rs`) is Michael's hazard pointers. A read claims a free
//! slot in the map's registry with one CAS that also writes the pointer it loaded, then loads the
//! map's pointer again: if it is unchanged, any writer that swaps it out later will see the slot
//! and keep the version. (Both sides fence with SeqCst; `hazard.rs` spells out the argument.)
//! Without that step, the reader would load a pointer and add to the count of a version a writer
//! may have freed in between: the use-after-free that a plain `AtomicPtr<Arc>` swap has. The
//! registry is a grow-only list of cache-padded slots: a read adds one when its walk found every
//! slot busy, so the list holds about as many slots as reads ever ran at once (reads that end and
//! start again behind a walk can make it find that with fewer at once, and add one more), and a
//! read is never refused a slot or sent to a slower path. `Reader`s keep their slots in a second
//! list, so a read looking for a free slot never walks past thousands of them; a dropped `Reader`
//! pushes its slot on a stack of free ones, from which the next `Reader` takes it, so making a
//! `Reader` walks no list either.
//!
//! **Plain reads** ([`CowMap::read`], `get_cloned`, `contains_key`, `len`) look the key up
//! while the hazard is set and clear it after: no reference count. **Snapshots** add one
//! count under the hazard and clear it; the count keeps the version alive as long as the
//! snapshot, however many writes happen meanwhile.
//!
//! **A `Reader`** keeps a hazard slot of its own for its whole life, protecting the version
//! it last read: no reference count. Each read loads the map's pointer (relaxed) and compares
//! it with its own version's address: equal means no write happened, and the held version is
//! read directly. The comparison cannot be fooled by a freed and reused address, because the
//! slot keeps the version alive. The map's pointer is its only per-read access to shared
//! memory, and it changes only when a write publishes, so readers on other cores keep the
//! line cached. When the pointer differs, the reader moves its slot to the new version (a
//! store, a SeqCst fence and a re-load, the protocol of `hazard.rs`): a reader pins at most
//! one old version, and letting go of it writes nothing but the reader's own slot. An earlier
//! design held a reference count per `Reader` and handed the old version back to the map
//! with a CAS; every refresh then wrote two reference counts and the handover slot, lines
//! that all readers and the writer share.
//!
//! **The spare.** The writer's retired list keeps each replaced version that a slot held when it
//! was replaced, and, if a slot (a `Reader`'s or a read's) already holds the new version or is a
//! `Reader`'s that let go of its version (it holds nothing: `Reader::let_go`), the newest replaced
//! version no slot holds (a reader that refreshed between the swap and the scan left it, or one
//! that let go of its version asks for it; freeing it would leave the next write no spare; a
//! `Reader`'s drop keeps one by the same rule, counting `Reader`s' slots only). When readers move
//! on, such a version is reachable by no read: the next write scans the slots, takes the newest
//! retired version that none holds (preferring one whose only count is the map's: a `Snapshot`'s
//! count would make it unusable), and, if `Arc::get_mut` confirms that nobody else holds a count (a
//! `Snapshot` may), brings it up to the current map and publishes it; the other unreachable ones it
//! frees. If the spare is the version just before the current one and the current one records the
//! single insert or remove that made it (`Version::change`: the key, and whether it was inserted
//! new, replaced or removed), the write replays that change into the spare, copying one entry (the
//! value a replace displaces, or the entry a remove takes out, goes to the trash); otherwise it
//! copies the whole map with `clone_from` (which keeps the table's allocation at equal capacity;
//! for entries with drop glue, which `clone_from` would drop under the lock, into a new table, the
//! spare's old one going to the trash), or, if the current table has over four times the room its
//! entries need (emptied in place, or made with a large capacity), into a table built to fit them,
//! so a copy costs the entries, not the table. Versions never change once published, and each is
//! its predecessor plus one write, so the replay yields the current contents exactly (`tests.rs`
//! checks it against a `HashMap` over thousands of writes, with a second reader that lags so the
//! spare is sometimes older). Why `get_mut` sees every holder: a count on a replaced version comes
//! only from an existing count (a clone of a `Snapshot`), or from a `load` whose hazard was
//! confirmed while the version was current, and the spare is a version no slot held after the
//! writer's fence, when it was no longer current: no such load is in progress and none can begin.
//! (A hazard slot may hold a guessed pointer to any version, but it is never followed before it is
//! confirmed.) (The sequence numbers are not needed for that check; they number versions for users
//! and for the loom model's "never older" property.)
//!
//! **The bound on old versions.** An old version stays alive only while a `Snapshot` holds a count
//! on it (one each), or a `Reader`'s slot holds it (one each), or while it waits in the retired
//! list: a slot held it when it was replaced (one per `Reader` or read in progress then), or a slot
//! held the new version then or held nothing for a `Reader` that let go (one such version per
//! write, counted against that slot, which held no old one), and the next write reuses or frees it,
//! or `trim`. The writer reads each slot once per scan, so a slot that moves during the scan counts
//! for one version, not two. A `Reader` that has moved on to the current version since has left at
//! most one version there (the spare counts against it). A dropped `Reader` frees what only it held
//! or left, keeping the newest such version as the spare when another `Reader`'s slot is on the
//! current version or let go (counted against that reader, as a write's spare is; a plain read's
//! slot does not count here, since the read ends at once and would leave the spare to nobody): its
//! drop takes those versions out under the writers' lock if the lock is free (and drops them after
//! unlocking), and otherwise sets a flag that the lock's holder checks after it lets go, on every
//! exit (the lock's guard, `Locked`, does it in its drop: early returns and panics included; it
//! re-checks after each unlock). Both look after a SeqCst fence, so one of them sees the other; the
//! drop never waits, since the holder may be its own thread inside an `update`. So the bound is one
//! old version per live `Reader` and `Snapshot` and per read in progress (now, or at the last
//! write), plus the current, plus what writers and dropping `Reader`s that have unlocked are still
//! freeing (the list above). A shared counter that versions increment when made and decrement when
//! freed gives [`CowMap::retired_versions`]; only writers and the last holder of a version touch
//! it.
//!
//! **Under loom**, each version carries a modelled cell that every read touches and the
//! version's drop writes, so a read not ordered before the free is reported as a race;
//! loom's `Arc` reports leaks and double frees. Miri runs the unit tests in `tests.rs`.
//!
//! ## Allocation and cost, in detail
//!
//! [`CowMap`]'s Allocation and Cost sections give the figures; this is what stands behind them.
//!
//! - **Hazard slots.** `Reader`s keep slots of their own, apart from the reads', so each list
//!   grows to its own most at once.
//! - **Writes in the spare.** A write builds its copy in the *spare*, the newest old version that
//!   no read can reach any more (its readers have moved on), when there is one: then a map of
//!   plain keys, values and hasher (`u64`, no heap inside, no drop glue) allocates nothing for
//!   the write (`clone_from` into a table of the same size). With keys, values or a hasher that
//!   have drop glue, a write that copies the whole map builds a new table beside the spare (one
//!   allocation, besides what their clones allocate), so that the spare's old entries are dropped
//!   after the lock is let go; an `insert` or `remove` that replays into the spare allocates
//!   nothing of its own either way (unless the spare's table is full and grows), only what
//!   cloning keys and values allocates: the write clones the key it records, the replay an
//!   inserted key and value or a replacing value. A write with no spare allocates its copy of the
//!   table and one block for the version (the first write also the writers' list of retired
//!   versions). A `Reader` that let go of its version makes the map keep a spare for it: after
//!   the first write, writes while it idles build in that spare, allocating nothing for keys and
//!   values without heap or drop glue. The versions a write frees wait in a list that holds four
//!   without allocating (the trash, above).
//! - **Freeing.** Reads never free a version. A write frees the old versions no read can reach
//!   (besides the spare it reuses, and, if a read already holds the new version or a `Reader` let
//!   go of its version, the newest one it replaced: the next write's spare); a `Snapshot`'s drop
//!   frees its version if it was the last holder; a `Reader`'s drop frees what only it held, or
//!   has the write in progress do it, keeping the newest such version as the spare if another
//!   `Reader` is on the current version or let go; [`trim`](CowMap::trim) frees what no read
//!   holds. Each drops them after letting go of the writers' lock, so no destructor runs under
//!   it; where keys, values and hasher have no drop glue (dropping them only deallocates), before
//!   letting go.
//! - **Memory.** The spare counts against a reader or read that held the current version when
//!   the write kept it, or a `Reader` that had let go of its version (which then costs the same
//!   as one holding an old version): the next write reuses it, and [`trim`](CowMap::trim) frees
//!   it, as does a `Reader`'s drop that leaves no reader on the current version or let go (one
//!   that leaves some keeps it for them, so readers that come and go do not make writes copy).
//!   So a map whose readers refresh holds two copies between writes, and so may a map read only
//!   with [`read`](CowMap::read) while writes run (a read on the new version when a write ends
//!   keeps the spare) until the next write or `trim`. Besides, with keys, values or a hasher that
//!   have drop glue, what writers that have unlocked have not finished freeing: one write's worth
//!   per writer thread made to wait there. [`retired_versions`](CowMap::retired_versions) counts
//!   them all. And one key: the current version records the key of the `insert` or `remove` that
//!   made it (a clone of the key the map holds; for a `remove`, the removed key itself), so that
//!   the next write can replay that one change into the spare instead of copying the map. The
//!   next write replaces it, and [`trim`](CowMap::trim) lets go of it (that write then copies the
//!   map).
//! - **Plain reads.** `read`, `get_cloned`, `contains_key` and `len` claim a hazard slot and free
//!   it around the lookup, with no reference count. Each thread remembers the last slot it took
//!   in each of up to 8 maps (a table of 8 entries, 16 bytes each, indexed by the map's id:
//!   `sync::last_slot`), and tries that slot first, so threads reading the same maps at once
//!   each come back to slots of their own, whose lines stay in their cores' caches: about
//!   `ArcSwap::load`'s time (`cargo run --release --example shootout -- --only map`, the
//!   `map_cow` table; the README has the figures). A thread whose entry names another
//!   map (it reads more than 8 by turns, or two whose ids share an entry) walks from the newest
//!   slot. The hint holds no slot: a slot stays free between reads, for any thread to take.
//! - **Writes.** A write (`store` aside: it moves the given map in and clones nothing) costs a
//!   clone of the whole map (`K: Clone, V: Clone`), a scan of the hazard slots (two when old
//!   versions are kept: one to pick the spare to build in, one after publishing), and freeing the
//!   replaced version unless a read holds it (or holds the new one: the spare), after unlocking,
//!   or under the lock for plain data (no drop glue: deallocation only). A scan reads every slot
//!   the map ever needed, one per read that ran at once and one per `Reader` alive at once, at the
//!   most: `O(most Readers ever alive at once)` for every write, [`trim`](CowMap::trim) and
//!   `Reader` drop (which scans under the writers' lock when it has versions to free), for the
//!   map's whole life; many thousands of `Reader`s made once keep slowing every write after they
//!   are gone. Making a `Reader` takes a free slot off a stack. An [`insert`](CowMap::insert) or
//!   [`remove`](CowMap::remove) that finds, as its spare, the version just before the current one
//!   copies nothing: the two differ by the previous write's one entry, which it replays into the
//!   spare before making its own change. An [`update`](CowMap::update) records no change, so the
//!   write after it copies.

mod hazard;
mod inner;
mod map;
mod reader;
mod snapshot;
mod version;
mod write;

pub use map::CowMap;
pub use reader::Reader;
pub use snapshot::Snapshot;

#[cfg(all(test, not(loom)))]
mod tests;
