//! The one panic behind every "`build` is `try_build` or a panic" and "`alloc` is `try_alloc` or
//! a panic" in the crate: out of line, so the happy paths stay small, and `track_caller`, so the
//! message points at the user's call.

use std::fmt::Display;

/// Panics with `error`'s message.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn fail(error: impl Display) -> ! {
    panic!("{error}")
}
