//! The spare box: the emptied box of an object that left the pool, kept by its thread's cache
//! for the next object the thread boxes.
//!
//! Each object lives in a box the pool allocates ([`Item`]: 128 bytes aligned to 128 on
//! x86-64, which glibc serves through `posix_memalign`, several times a plain `malloc`'s
//! cost). An object leaves the pool for good when its guard is detached (`into_inner`) or
//! its return is refused (full, too heavy, `keep_if`), and its box would be freed; a thread
//! whose objects keep leaving would then allocate a box for every object the factory makes
//! it. So the box stays, empty, in the thread's cache (one at most: `Cache::spare`), and the
//! thread's next box comes from there: a get that calls the factory, a `put`/`try_put` that
//! boxes its value, or a `prefill` (whose refused objects leave their boxes here too). The
//! cache's holder alone touches it (inside a section, or a reclaimer); every full reclaim
//! (`clear`, `trim`, a return that reclaims for room, a get's every 64th full reclaim) frees
//! it, and so does the pool's drop.

use super::local::Local;
use super::ticket::Held;
use super::{item, Hooks, Item, Pool};
use crate::sync::CachePadded;
use std::mem::MaybeUninit;

/// An object's box with no value in it: an [`Item`]'s allocation, ready for another value.
pub(super) type Spare<T> = Box<MaybeUninit<CachePadded<Held<T>>>>;

/// `value` boxed as the pool holds it, with no ticket, in `spare`.
fn fill<T>(mut spare: Spare<T>, value: T) -> Item<T> {
    spare.write(CachePadded::new(Held::new(value)));
    // SAFETY: the box's value was initialised just above, and `MaybeUninit<X>` has `X`'s size
    // and alignment, so the allocation is the one a `Box<X>` would free.
    unsafe { Box::from_raw(Box::into_raw(spare).cast()) }
}

/// The value out of `obj`, and `obj`'s box, empty.
fn empty<T>(obj: Item<T>) -> (T, Spare<T>) {
    let raw = Box::into_raw(obj);
    // SAFETY: `raw` comes from a box that holds an initialised value, read out once, here; the
    // box below treats it as uninitialised from then on, so it is never read or dropped again.
    let held = unsafe { raw.read() };
    // SAFETY: `raw` is the box's allocation, owned here; `MaybeUninit<X>` has `X`'s layout, so
    // the new box frees it as it was allocated.
    let spare = unsafe { Box::from_raw(raw.cast::<MaybeUninit<CachePadded<Held<T>>>>()) };
    (CachePadded::into_inner(held).into_value(), spare)
}

impl<T, H: Hooks<T>> Pool<T, H> {
    /// `value` boxed as the pool holds it, with no ticket: in the calling thread's spare box
    /// if its cache keeps one, else in a new box.
    pub(super) fn boxed(&self, value: T) -> Item<T> {
        match self.take_spare() {
            Some(spare) => fill(spare, value),
            None => item(value),
        }
    }

    /// The calling thread's spare box, if its cache exists, is open, and keeps one.
    fn take_spare(&self) -> Option<Spare<T>> {
        let local: &Local<T> = self.local_fast()?;
        // SAFETY: `local_fast` is the cache of the calling thread's slot, and none of its
        // sections is open: sections run no user code (`Section`), so none encloses this.
        let section = unsafe { local.enter(&self.gate) }?;
        section.take_spare()
    }

    /// The value out of `obj`, an object that leaves the pool for good (detached, or refused
    /// on return); its box becomes the calling thread's spare if the thread's cache has none,
    /// and is freed otherwise. The caller drops the value, if it does, after this returns:
    /// a destructor may re-enter the pool.
    pub(super) fn unbox(&self, obj: Item<T>) -> T {
        let (value, spare) = empty(obj);
        if let Some(local) = self.local_fast() {
            // SAFETY: as in `take_spare`.
            if let Some(section) = unsafe { local.enter(&self.gate) } {
                let left = section.keep_spare(spare);
                drop(section);
                drop(left);
                return value;
            }
        }
        drop(spare);
        value
    }
}
