//! The std alternative to `thrifty::limit::Semaphore` in the shootout and `benches/limit.rs`
//! (`#[path]`-included by both: not an example of its own).

use std::sync::{Condvar, Mutex};

/// The textbook semaphore: a count behind a `Mutex`, waiters on a `Condvar`, notified only
/// when someone waits (std's `notify_one` makes a system call even with no waiter). Unfair: a
/// releasing thread may take the permit straight back.
pub struct CondvarSemaphore {
    /// Free permits and waiting threads.
    state: Mutex<(u32, u32)>,
    freed: Condvar,
}

impl CondvarSemaphore {
    pub fn new(permits: u32) -> Self {
        Self {
            state: Mutex::new((permits, 0)),
            freed: Condvar::new(),
        }
    }

    pub fn acquire(&self) {
        let mut s = self.state.lock().unwrap();
        while s.0 == 0 {
            s.1 += 1;
            s = self.freed.wait(s).unwrap();
            s.1 -= 1;
        }
        s.0 -= 1;
    }

    pub fn release(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        let waiting = s.1 > 0;
        drop(s);
        if waiting {
            self.freed.notify_one();
        }
    }
}
