//! The spread of repeated measurements, shared by the examples that alternate candidates
//! round by round (`#[path]`-included: not an example of its own).

/// (median, lowest, highest) of `xs`, which it sorts; the median of an even count is the mean
/// of the two middle values. Panics if `xs` is empty.
pub fn summary(xs: &mut [f64]) -> (f64, f64, f64) {
    assert!(!xs.is_empty(), "no measurements to summarise");
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    let median = if xs.len() % 2 == 0 {
        (xs[mid - 1] + xs[mid]) / 2.0
    } else {
        xs[mid]
    };
    (median, xs[0], xs[xs.len() - 1])
}

/// Runs `a` and `b` once each, `a` first in even rounds and `b` first in odd ones, so an order
/// effect (a warmer cache, a CPU's frequency, the other's threads still exiting) falls on both
/// alike. Not every example that includes this file alternates two candidates.
#[allow(dead_code)]
pub fn in_turn<A, B>(round: usize, a: impl FnOnce() -> A, b: impl FnOnce() -> B) -> (A, B) {
    if round % 2 == 0 {
        let a = a();
        (a, b())
    } else {
        let b = b();
        (a(), b)
    }
}
