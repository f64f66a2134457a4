//! [`CowMap`]: a copy-on-write map whose readers never wait, with [`Reader`] handles and
//! [`Snapshot`] views.
//!
//! The promises, each kept by a test or a model:
//! - Reads never wait: not for a writer, not for another reader. A [`Reader`]'s read performs
//!   no atomic read-modify-write and writes nothing shared.
//! - A write copies the map once per [`update`](CowMap::update) batch and publishes it with one
//!   atomic swap: readers see all of a batch or none of it (`tests/loom_map_cow.rs`), and a
//!   reader never sees a version older than one it has seen.
//! - A writer never waits for a reader, and nothing is freed while read or leaked. A
//!   `Reader` that lets go of the last count on an old version usually hands it to the map,
//!   whose next write reuses that memory (the spare), instead of freeing it on its read path.
//! - Old versions alive at once: at most one per live [`Reader`], [`Snapshot`] and read in
//!   progress, reported by [`CowMap::retired_versions`] (the spare counts against the reader
//!   that left it, which holds the current version). There is no fixed budget of readers,
//!   per thread or per map, beyond which anything becomes slower.
//!
//! # How it works
//!
//! Each version is an `Arc` holding the `HashMap` and a sequence number. The map holds a
//! pointer to the current version (`Arc::into_raw`, carrying the map's own strong count) on a
//! cache line of its own, written once per write.
//!
//! **Writers** take a lock among themselves, clone the current map, apply the batch, wrap the
//! copy in a new `Arc` and swap the pointer. The old version's strong count now belongs to
//! the writer, which drops it unless a *hazard* (below) says a read is using it; then it keeps
//! the count in a retired list that every later write and [`CowMap::trim`] retry. It never
//! waits: an old version some reader still needs is simply kept, and freed later by the last
//! holder of a count. Writers serialise on the lock instead of retrying a CAS, so a write
//! copies the map once, however many writers contend.
//!
//! **Taking a version safely** (`hazard.rs`) is Michael's hazard pointers. A read claims a
//! free slot in the map's registry with one CAS that also writes the pointer it loaded, then
//! loads the map's pointer again: if it is unchanged, any writer that swaps it out later will
//! see the slot and keep the version. (Both sides fence with SeqCst; `hazard.rs` spells out the
//! argument.) Without that step, the reader would load a pointer and add to the count of a
//! version a writer may have freed in between: the use-after-free that a plain
//! `AtomicPtr<Arc>` swap has. The registry is a grow-only list of cache-padded slots: it
//! grows when every slot is busy, to as many slots as reads ever ran at once, so a read is
//! never refused a slot or sent to a slower path; a slot is held only while a read runs.
//!
//! **Plain reads** ([`CowMap::read`], `get_cloned`, `contains_key`, `len`) look the key up
//! while the hazard is set and clear it after: no reference count. **Snapshots** add one
//! count under the hazard and clear it; the count keeps the version alive as long as the
//! snapshot, however many writes happen meanwhile.
//!
//! **A `Reader`** holds a count on the version it last read. Each read loads the map's
//! pointer (relaxed) and compares it with its own version's address: equal means no write
//! happened, and the held version is read directly. The comparison cannot be fooled by a
//! freed and reused address, because the held count keeps the version's memory alive. The
//! map's pointer is its only per-read access to shared memory, and it changes only when a
//! write publishes, so readers on other cores keep the line cached. When the pointer
//! differs, the reader takes the new version as a snapshot does and lets go of the old one: a
//! reader pins at most one old version. If its count looks like the last (`strong_count` is
//! 1), it hands the version to the map as the *spare* with one CAS into an empty slot, instead
//! of freeing a whole map in the middle of a read. If the slot is taken (readers a version
//! apart), it drops its count, and that frees the version if it was the last: the one case
//! where a read still frees a map. The next write takes the spare and, if `Arc::get_mut`
//! confirms that nobody else holds it, brings it up to the current map and publishes it. If the
//! spare is the version just before the current one and the current one records the single
//! insert or remove that made it (`Version::change`: the key, and whether it was inserted), the
//! write replays that change into the spare, copying one entry; otherwise it copies the whole
//! map with `clone_from` (which keeps the table's allocation at equal capacity). Versions never
//! change once published, and each is its predecessor plus one write, so the replay yields the
//! current contents exactly (`tests.rs` checks it against a `HashMap` over thousands of writes,
//! with a second reader that lags so the spare is sometimes older). Why `get_mut`
//! sees every holder: a count on a replaced version comes only from an existing count (a
//! clone of a `Reader` or `Snapshot`), or from a `load` whose hazard was confirmed while the
//! version was current, and the writer's reclaim saw that hazard and kept its own count on the
//! version until the next write, by when the load has its own count. (A hazard slot may hold
//! a guessed pointer to any version, but it is never followed before it is confirmed.)
//! (The sequence numbers are not needed for that check; they number versions for users and
//! for the loom model's "never older" property.)
//!
//! **The bound on old versions.** An old version stays alive only while a `Reader` or
//! `Snapshot` holds a count on it (one each), or while a hazard held it when it was replaced
//! (one per read in progress then; the next write or `trim` frees it once the read is done),
//! or while it is the spare (one; the next write reuses it, `trim` or any `Reader`'s drop
//! frees it). The spare may stay only while the reader that handed it back is alive and holds
//! the current version, so the bound stays one per live reader or snapshot, plus the current.
//! A write can publish while a reader parks its old version, leaving that reader on a replaced
//! version; so the reader re-reads the map's pointer after parking (and takes the spare back
//! if it moved), and the writer drops any spare it finds after publishing. Both look after a
//! SeqCst fence, so at least one sees the other (`tests/loom_map_cow.rs` models the race).
//! A shared counter that versions increment when made and decrement when freed gives
//! [`CowMap::retired_versions`]; only writers and the last holder of a version touch it.
//!
//! **Under loom**, each version carries a modelled cell that every read touches and the
//! version's drop writes, so a read not ordered before the free is reported as a race;
//! loom's `Arc` reports leaks and double frees. Miri runs the unit tests in `tests.rs`.

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
