//! The spread of repeated measurements, shared by the examples that alternate candidates
//! round by round (`#[path]`-included: not an example of its own).

/// (median, lowest, highest) of `xs`, which it sorts.
pub fn summary(xs: &mut [f64]) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}
