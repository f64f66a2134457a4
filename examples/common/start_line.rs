//! Where a timed run's threads wait for each other before they start their clocks, in the
//! shootout and the benches (`#[path]`-included by both: not an example of its own).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// A start line for `threads` threads: each spins (and yields, once it has spun a while) until
/// every one has arrived, so none is asleep when the last one arrives.
///
/// `std::sync::Barrier` puts the early arrivals to sleep, and on a virtual machine waking one
/// can take milliseconds: long enough, in a 10 ms round, for a candidate whose cost is
/// contention to run much of its round on one thread, and so to look cheaper than it is
/// (JOURNAL.md has the rounds measured both ways).
pub struct StartLine {
    arrived: AtomicUsize,
    threads: usize,
}

impl StartLine {
    pub fn new(threads: usize) -> Self {
        Self {
            arrived: AtomicUsize::new(0),
            threads,
        }
    }

    /// Returns once all `threads` threads have called it. One use per start line.
    pub fn wait(&self) {
        // Relaxed: the count orders nothing; the threads share no data through it (whatever
        // they share was made before they were spawned, and spawning orders it).
        self.arrived.fetch_add(1, Relaxed);
        let mut spins = 0u32;
        while self.arrived.load(Relaxed) < self.threads {
            if spins < 1 << 10 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                // More threads than cores: let the ones still to arrive run.
                std::thread::yield_now();
            }
        }
    }
}
