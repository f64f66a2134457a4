//! A striped counter for a timed run's setup, in the shootout and the benches (`#[path]`-included
//! by both: not an example of its own).

use std::hint::black_box;
use std::time::{Duration, Instant};
use thrifty::counter::Counter;

#[path = "pin.rs"]
mod pin;

/// Has two threads bump `counter` until it stripes: each pinned to a CPU of its own (the first
/// two it may run on), so that a busy process beside them cannot have the scheduler keep both on
/// one CPU, taking turns without contending; and for 5 seconds at most, since even so they may
/// not run at once. A counter left compact is said on standard error, since the rows that use it
/// then time a compact counter. True if striped.
pub fn stripe(counter: &Counter) -> bool {
    let began = Instant::now();
    std::thread::scope(|s| {
        for cpu in 0..2 {
            s.spawn(move || {
                pin::pin_to_nth_cpu(cpu);
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
