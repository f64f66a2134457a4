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
