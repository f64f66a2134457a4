//! A striped counter for a timed run's setup, in the shootout and the benches (`#[path]`-included
//! by both: not an example of its own).

use std::hint::black_box;
use std::time::{Duration, Instant};
use thrifty::counter::Counter;

/// Has two threads bump `counter` until it stripes: for 5 seconds at most, since on a busy
/// machine they may not run at once, and then they do not contend. A counter left compact is
/// said on standard error, since the rows that use it then time a compact counter. True if
/// striped.
pub fn stripe(counter: &Counter) -> bool {
    let began = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !counter.is_striped() && began.elapsed() < Duration::from_secs(5) {
                    (0..10_000).for_each(|_| counter.add(black_box(1)));
                }
            });
        }
    });
    if !counter.is_striped() {
        eprintln!("counter: two threads did not stripe a counter in 5 s (a busy machine?)");
    }
    counter.is_striped()
}
