//! Which lock-holding objects the calling thread is inside, so a primitive that runs a caller's
//! closure while it holds a lock can refuse a call back into itself instead of deadlocking.
//!
//! A thread [`enter`]s an object (named by a `usize` id, such as its address) before it takes
//! the object's lock and leaves it when the returned [`Inside`] drops, after the lock is
//! released. `enter` refuses an id the thread is already inside. The ids form a stack, at most
//! [`MAX_DEPTH`] deep, because guards are scoped: an `Inside` never leaves the function that
//! made it. The id 0 is reserved.
//!
//! The per-thread state is `const`-initialised and has no destructor, so entering never
//! allocates, registers nothing at thread exit, and works during thread teardown. Under loom it
//! is loom's thread-local, so models see a fresh stack per thread.

use super::thread_local;
use std::cell::Cell;
use std::marker::PhantomData;

/// How many objects one thread can be inside at once (closures nested across that many maps).
pub(crate) const MAX_DEPTH: usize = 8;

/// One thread's stack of ids, innermost last: `outer` (0 when the thread is inside nothing),
/// then `ids[..depth]` for objects entered from inside `outer`. The outermost entry is the
/// common one, so it is a single word: entering and leaving it is one load and one store each.
struct Stack {
    outer: Cell<usize>,
    depth: Cell<usize>,
    ids: [Cell<usize>; MAX_DEPTH - 1],
}

#[cfg(not(loom))]
thread_local! {
    static STACK: Stack = const {
        Stack {
            outer: Cell::new(0),
            depth: Cell::new(0),
            ids: [const { Cell::new(0) }; MAX_DEPTH - 1],
        }
    };
}

#[cfg(loom)]
thread_local! {
    // loom's macro takes no `const` initialiser.
    static STACK: Stack = Stack { outer: Cell::new(0), depth: Cell::new(0), ids: Default::default() };
}

/// Why [`enter`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The thread is already inside this id: the call came from inside one of its closures.
    Reentered,
    /// The thread is already inside [`MAX_DEPTH`] objects.
    TooDeep,
}

/// Proof that the calling thread is inside an id; leaves it on drop (also while unwinding).
///
/// Neither `Send` nor `Sync`: it must drop on the thread whose stack it pushed.
#[derive(Debug)]
pub(crate) struct Inside {
    /// Whether this is the thread's outermost entry (else the top of `ids`).
    outer: bool,
    _not_send: PhantomData<*const ()>,
}

/// Marks the calling thread as inside `id` (nonzero), unless it already is or is too deep.
#[inline]
pub(crate) fn enter(id: usize) -> Result<Inside, Refused> {
    debug_assert_ne!(id, 0, "0 marks an empty stack");
    STACK.with(|s| {
        if s.outer.get() != 0 {
            return enter_nested(s, id);
        }
        s.outer.set(id);
        Ok(Inside {
            outer: true,
            _not_send: PhantomData,
        })
    })
}

/// [`enter`], or the panic that explains its refusal: a primitive that runs a caller's closure
/// under its lock calls this before taking the lock. `who` names the primitive, and `reentered`
/// says what a call from inside its own closure was and why it is refused.
///
/// # Panics
/// If [`enter`] refuses `id`, with a message that starts `"{who}: {reentered}"` for a
/// re-entrant call.
#[inline]
#[track_caller]
pub(crate) fn enter_or_panic(id: usize, who: &'static str, reentered: &'static str) -> Inside {
    match enter(id) {
        Ok(inside) => inside,
        Err(why) => refused(why, who, reentered),
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn refused(why: Refused, who: &str, reentered: &str) -> ! {
    match why {
        Refused::Reentered => panic!("{who}: {reentered}"),
        Refused::TooDeep => panic!(
            "{who}: a call nested inside {MAX_DEPTH} maps' closures at once on one thread; the \
             limit of the re-entrancy check. Nest fewer maps, or copy values out and call the \
             inner map after the closure returns"
        ),
    }
}

/// [`enter`] from inside another object.
#[cold]
#[inline(never)]
fn enter_nested(s: &Stack, id: usize) -> Result<Inside, Refused> {
    let depth = s.depth.get();
    if s.outer.get() == id || s.ids[..depth].iter().any(|held| held.get() == id) {
        return Err(Refused::Reentered);
    }
    let slot = s.ids.get(depth).ok_or(Refused::TooDeep)?;
    slot.set(id);
    s.depth.set(depth + 1);
    Ok(Inside {
        outer: false,
        _not_send: PhantomData,
    })
}

impl Drop for Inside {
    #[inline]
    fn drop(&mut self) {
        // Guards drop in reverse order of creation (each lives in one stack frame), so the
        // innermost entry is this guard's.
        STACK.with(|s| {
            if self.outer {
                s.outer.set(0);
            } else {
                s.depth.set(s.depth.get() - 1);
            }
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_id_it_is_inside_and_forgets_it_on_drop() {
        let a = enter(1).unwrap();
        let b = enter(2).unwrap();
        assert_eq!(enter(1).unwrap_err(), Refused::Reentered);
        assert_eq!(enter(2).unwrap_err(), Refused::Reentered);
        drop(b);
        drop(enter(2).unwrap());
        drop(a);
        drop(enter(1).unwrap());
    }

    #[test]
    fn enter_or_panic_names_the_primitive_and_the_reason() {
        let message = |id| {
            let payload = std::panic::catch_unwind(|| {
                drop(enter_or_panic(id, "Thing", "re-entrant call: the reason"));
            })
            .unwrap_err();
            payload.downcast_ref::<String>().cloned().unwrap()
        };
        let outer = enter_or_panic(1, "Thing", "unused");
        assert_eq!(message(1), "Thing: re-entrant call: the reason");
        let mut nested: Vec<Inside> = (2..=MAX_DEPTH).map(|i| enter(i).unwrap()).collect();
        assert!(message(99).starts_with("Thing: a call nested inside 8 maps' closures"));
        while let Some(inside) = nested.pop() {
            drop(inside); // innermost first, as scoped guards drop
        }
        drop(outer);
    }

    #[test]
    fn refuses_past_max_depth() {
        let mut held: Vec<Inside> = (0..MAX_DEPTH).map(|i| enter(100 + i).unwrap()).collect();
        assert_eq!(enter(7).unwrap_err(), Refused::TooDeep);
        assert_eq!(enter(100).unwrap_err(), Refused::Reentered);
        while let Some(inside) = held.pop() {
            drop(inside); // innermost first, as scoped guards drop
        }
        drop(enter(7).unwrap());
    }

    #[test]
    fn each_thread_has_its_own_stack() {
        let _a = enter(1).unwrap();
        std::thread::spawn(|| drop(enter(1).unwrap()))
            .join()
            .unwrap();
    }
}
