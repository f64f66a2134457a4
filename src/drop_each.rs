//! Dropping every item of a drain, going on past one whose `Drop` panics, as `Vec`'s drop does
//! (hashbrown's `clear` and drop, and a loop of `drop` calls, stop at the panic and leave the
//! rest). The maps' and the pool's teardown and the channel's last receiver use it.

/// Drops every item of `items`, going on past one whose `Drop` panics: a guard drops the rest
/// as that panic unwinds, and the panic then goes on. A second one, raised while the first
/// unwinds, aborts the process, as in std's collections.
///
/// Items are taken from `items` until its first `None`, with or without drop glue, so a drain
/// that frees slots or updates counts as it goes always runs to its end;
/// [`drop_each_if_needed`] skips the drain when there is nothing to drop. `items`' own `next`
/// must not panic: the guard would call it again.
pub(crate) fn drop_each<I: Iterator>(items: I) {
    /// Drops what the iterator has left: on the way out of a panic in the loop below.
    struct Rest<I: Iterator>(I);

    impl<I: Iterator> Drop for Rest<I> {
        fn drop(&mut self) {
            self.0.by_ref().for_each(drop);
        }
    }

    // Fused: the guard's walk, which also runs after the loop ends, stops at that `None`.
    let mut rest = Rest(items.fuse());
    rest.0.by_ref().for_each(drop);
}

/// [`drop_each`] of the iterator `drain` returns, for a drain that is there only to drop its
/// items: for items without drop glue there is nothing to drop and `drain` is not called, so a
/// caller that must leave its collection empty empties it itself.
pub(crate) fn drop_each_if_needed<I: Iterator>(drain: impl FnOnce() -> I) {
    if std::mem::needs_drop::<I::Item>() {
        drop_each(drain());
    }
}
