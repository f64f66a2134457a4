//! Runs a scenario on its own thread under a deadline, so that a lost wake-up fails the test
//! instead of hanging it: included with `#[path = "common/deadline.rs"] mod deadline;`.
#![allow(dead_code)] // each binary uses what it needs

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// Longest a scenario may take: far past what any takes here (under a second), because a
/// scenario of many blocking hand-offs beside CPU-bound work (another test's threads, a busy
/// machine) waits out a time slice at many of them: one that takes 0.3 s alone took 14 s beside
/// one busy process on its CPU. A hang fails only after it, which costs time only when something
/// is broken. Under Miri an hour: its clock moves with the code it runs (20 s of it is a few
/// million steps, less than some scenarios take there), and when every thread waits it skips to
/// the next timeout, so a real hang still fails at once.
pub const DEADLINE: Duration = Duration::from_secs(if cfg!(miri) { 3600 } else { 120 });

/// Runs `scenario` on its own thread and returns its result, failing (not hanging) if it takes
/// over [`DEADLINE`]; a panic in it is the test's panic.
pub fn within<T: Send + 'static>(what: &str, scenario: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(what.to_owned())
        .spawn(move || {
            let _ = tx.send(scenario());
        })
        .unwrap();
    match rx.recv_timeout(DEADLINE) {
        Ok(result) => {
            handle.join().unwrap();
            result
        }
        Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the scenario returned without sending"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("{what}: no result in {DEADLINE:?}: it hangs"),
    }
}
