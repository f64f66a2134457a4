//! Test sizes cut down under Miri, which runs the same cases far slower.

/// `native`, or `miri` under Miri.
pub const fn scaled(native: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        native
    }
}
