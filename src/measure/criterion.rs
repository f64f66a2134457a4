//! `Allocations`: a criterion `Measurement` reporting allocator calls per iteration.

use super::{assert_counting, total_stats};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::Throughput;

/// A criterion [`Measurement`] that reports allocator calls (`allocs + reallocs`) per
/// iteration instead of time.
///
/// It counts process-wide ([`total_stats`](super::total_stats)), so allocations made by
/// threads a benchmark spawns are included, unless such a thread [pauses](super::pause) itself;
/// run allocation groups without unrelated threads allocating beside them, and join the threads
/// an iteration spawns with `join` if they allocate as they exit (in a thread-local destructor,
/// say): the end of a `thread::scope` does not wait for a thread's exit, so those calls would
/// land in a later iteration (see [`total_stats`](super::total_stats)). Frees are not
/// reported here. The binary must install [`CountingAlloc`](super::CountingAlloc).
///
/// Use it for a criterion group whose question is "how many allocator calls per iteration";
/// not for timing (run the group again with the default `WallTime`), and not for an exact
/// count of one closure on one thread ([`count`](super::count) is per-thread and exact).
///
/// # Examples
/// ```no_run
/// use criterion::Criterion;
/// use thrifty::measure::{Allocations, CountingAlloc};
///
/// #[global_allocator]
/// static ALLOC: CountingAlloc = CountingAlloc::new();
///
/// fn allocs(c: &mut Criterion<Allocations>) {
///     c.bench_function("vec_with_capacity", |b| {
///         b.iter(|| Vec::<u8>::with_capacity(std::hint::black_box(64)))
///     });
/// }
///
/// fn main() {
///     let mut c = Criterion::default().with_measurement(Allocations).configure_from_args();
///     allocs(&mut c);
///     c.final_summary();
/// }
/// ```
///
/// Criterion calls `start` and `end` around each sample; called by hand, they give the allocator
/// calls made between them, process-wide:
/// ```
/// use criterion::measurement::Measurement;
/// use thrifty::measure::{Allocations, CountingAlloc};
///
/// #[global_allocator]
/// static ALLOC: CountingAlloc = CountingAlloc::new();
///
/// let started = Allocations.start();
/// let v = std::hint::black_box(Vec::<u8>::with_capacity(64));
/// assert_eq!(Allocations.end(started), 1);
/// # drop(v);
/// ```
///
/// # Allocation and cost
/// Allocates nothing itself; each sample reads the process-wide totals twice (80 relaxed loads
/// each: five counters in each of 16 stripes).
///
/// A sample with no allocator call is reported as 1e-9 calls (printed `0.0000 allocs`):
/// criterion refuses samples of exactly zero, and zero is the result this measurement exists to
/// show. Criterion divides that floor by the sample's iteration count, which it picks from the
/// bench's speed, so for a bench that allocates nothing its "change" verdict against a saved
/// baseline follows the timing, not the count (it can say "Performance has regressed" at
/// `0.0000 allocs` both times): read the printed count, not the verdict. A bench whose count is
/// the same every iteration prints `p = NaN` for its change (identical samples). Counts below
/// 0.00005 per iteration (a rare amortised allocation) also print as `0.0000 allocs`. Under
/// `--quick` a bench that allocates nothing runs its whole measurement time: the quick mode
/// stops once a sample of twice the iterations reads about twice as much, which the constant
/// floor never does.
///
/// Machine-readable output (`--output-format bencher`, and criterion's CSV) is in thousandths
/// of a call, `milliallocs`: the bencher format prints whole numbers, and 0.9 calls per iteration
/// (a bench that allocates on nine iterations in ten) would print as 0. So `900
/// milliallocs/iter` is 0.9 calls per iteration. The bencher format cuts the fraction off rather
/// than rounding, so a figure can read one millialloc low (`99` for one call in ten iterations,
/// whose samples' iteration counts are not all multiples of ten).
///
/// With a [`Throughput`] set, the `thrpt:` line shows calls per element (`allocs/elem`, or per
/// byte or bit), but criterion lays that line out for time, where throughput falls as the value
/// rises: its interval prints high to low, and its change is `1 / (1 + r) - 1` of the count's
/// change `r` (a count up 90.9% reads -47.6% there). Read the `time:` line for the change.
///
/// # Panics
/// When a measurement starts without `CountingAlloc` installed, or while counting is paused on
/// the thread that runs the benchmark, and when it ends after the routine paused counting on
/// that thread (what it allocated while paused would be missing from the count, as
/// [`count`](super::count) refuses too).
#[derive(Debug, Default, Clone, Copy)]
pub struct Allocations;

impl Measurement for Allocations {
    type Intermediate = (u64, u64);
    type Value = u64;

    fn start(&self) -> (u64, u64) {
        assert_counting("Allocations");
        (total_stats().calls(), super::pause::pauses_taken())
    }

    fn end(&self, (start, pauses): (u64, u64)) -> u64 {
        let calls = total_stats().calls().wrapping_sub(start);
        super::assert_not_paused_since("Allocations", pauses);
        calls
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        // criterion rejects a sample of exactly zero ("took zero time"), and zero is the answer
        // this measurement exists to show, so a zero count is handed over as 1e-9 allocator
        // calls per sample: printed as 0.0000 allocs, and a billionth of one call off at most.
        if *value == 0 {
            ZERO_FLOOR
        } else {
            *value as f64
        }
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &AllocsFormatter
    }
}

/// What a sample of zero calls is reported as; see `to_f64`.
const ZERO_FLOOR: f64 = 1e-9;

/// Prints counts as "allocs", never scaled into misleading units.
struct AllocsFormatter;

impl ValueFormatter for AllocsFormatter {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "allocs"
    }

    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let (per, unit) = match *t {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (n, "allocs/byte"),
            Throughput::Elements(n) => (n, "allocs/elem"),
            Throughput::ElementsAndBytes { elements, .. } => (elements, "allocs/elem"),
            Throughput::Bits(n) => (n, "allocs/bit"),
        };
        values.iter_mut().for_each(|v| *v /= per.max(1) as f64);
        unit
    }

    fn scale_for_machines(&self, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v *= 1000.0);
        "milliallocs"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_output_keeps_fractions_of_a_call_as_whole_milliallocs() {
        // criterion's bencher format prints `value as u64`: 0.9 calls must not print as 0.
        let mut values = [0.9, 1.5, 0.0002];
        assert_eq!(
            AllocsFormatter.scale_for_machines(&mut values),
            "milliallocs"
        );
        assert_eq!(values.map(|v| v.round() as u64), [900, 1500, 0]);
        assert_eq!(values[0] as u64, 900);
    }

    /// The measurement's arithmetic as criterion uses it: `add` and `zero` sum counts, a count
    /// of 0 reaches criterion as a tiny positive number (it rejects zero samples) while any
    /// other count is exact, and its formatter labels values "allocs" without rescaling them.
    /// Fails if zero is handed over as 0 (criterion would refuse the bench) or as something
    /// that prints above `0.0000`, or if a count is scaled into other units.
    #[test]
    fn counts_reach_criterion_exact_and_zero_as_a_tiny_floor() {
        let m = Allocations;
        assert_eq!(m.add(&m.zero(), &3), 3);
        assert_eq!(m.add(&2, &5), 7);
        let floor = m.to_f64(&0);
        assert!(floor > 0.0 && floor < 1e-6, "zero reported as {floor}");
        assert_eq!(format!("{floor:.4}"), "0.0000");
        assert_eq!(m.to_f64(&3), 3.0);
        assert_eq!(m.to_f64(&u64::from(u32::MAX)), f64::from(u32::MAX));
        let mut values = [0.5, 3.0, 1.0e6];
        assert_eq!(m.formatter().scale_values(1.0e6, &mut values), "allocs");
        assert_eq!(values, [0.5, 3.0, 1.0e6], "counts are never rescaled");
    }

    /// With a throughput set, each count is divided by the elements (or bytes, or bits) per
    /// iteration and labelled per that unit; `ElementsAndBytes` counts per element, and a
    /// throughput of 0 divides by 1 rather than making infinities. Fails if a kind divides by
    /// the wrong number or names the wrong unit.
    #[test]
    fn throughput_divides_by_each_kinds_count() {
        let cases = [
            (Throughput::Bytes(4), "allocs/byte", 4.0),
            (Throughput::BytesDecimal(5), "allocs/byte", 5.0),
            (Throughput::Bits(8), "allocs/bit", 8.0),
            (Throughput::Elements(2), "allocs/elem", 2.0),
            (
                Throughput::ElementsAndBytes {
                    elements: 10,
                    bytes: 4096,
                },
                "allocs/elem",
                10.0,
            ),
            (Throughput::Elements(0), "allocs/elem", 1.0),
            (Throughput::Bytes(0), "allocs/byte", 1.0),
        ];
        for (throughput, unit, per) in cases {
            let mut values = [40.0, 1.0];
            let got = Allocations
                .formatter()
                .scale_throughputs(40.0, &throughput, &mut values);
            assert_eq!(got, unit, "{throughput:?}");
            assert_eq!(values, [40.0 / per, 1.0 / per], "{throughput:?}");
        }
    }

    #[test]
    fn throughput_is_calls_per_element() {
        let mut values = [21.0, 10.0];
        let unit = AllocsFormatter.scale_throughputs(1.0, &Throughput::Elements(10), &mut values);
        assert_eq!((unit, values), ("allocs/elem", [2.1, 1.0]));
    }
}
