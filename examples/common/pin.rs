//! Pins a thread to a CPU of its own, for runs whose threads must run at once: the tests'
//! `Together::spread` (tests/common/at_once.rs) and the striping setup of the shootout and the
//! benches (`stripe.rs`). `#[path]`-included by both: not an example of its own.

/// Pins the calling thread to the `i`-th CPU (counted round) of those it may run on. Where
/// another process keeps a CPU busy, the scheduler may otherwise place two threads that must run
/// at once together on the other one for minutes (threads spawned afresh are placed anew each
/// time), and they then take turns. Does nothing where the thread may use one CPU only or the
/// calls fail, off Linux, or under Miri (which runs every thread on one).
pub fn pin_to_nth_cpu(i: usize) {
    #[cfg(all(target_os = "linux", not(miri)))]
    // SAFETY: `cpu_set_t` is plain bits (zeroed is the empty set); the calls read and write only
    // the set passed by pointer with its size, and pid 0 names the calling thread.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return;
        }
        // Counted, not collected: a thread pins itself inside the span a dhat test measures.
        let cpus = || (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &allowed));
        let count = cpus().count();
        if count < 2 {
            return;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus().nth(i % count).unwrap(), &mut one);
        libc::sched_setaffinity(0, size, &one);
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    let _ = i;
}
