//! A work queue with far more receivers than messages in flight: one sender at the lowest
//! priority (nice 19) sends `u64`s with no pause through a 64-slot channel to `r` receiver
//! threads that loop on `recv` until it disconnects. The cost here is CPU, not time: receivers
//! that find nothing spin, register, park and are woken, and a wake-up that another receiver
//! beat spends CPU for nothing. It prints each candidate's process CPU time (user + system)
//! per message, median and range over the rounds, the candidates in an order that rotates
//! round by round:
//! std's `sync_channel` (its receiver shared behind a `Mutex`, the usual std work queue),
//! crossbeam-channel, flume and thrifty's `bounded`.
//!
//! `cargo run --release --example channel_crowd -- 4,16,100` (receiver counts; the default).
//! Linux only (`getrusage`, `setpriority`). Expect a bimodal spread: a round where spinning
//! receivers starve the nice-19 sender costs many times the usual.

#[cfg(target_os = "linux")]
#[path = "common/summary.rs"]
mod summary;

#[cfg(target_os = "linux")]
mod crowd {
    use super::summary::summary;
    use std::hint::black_box;
    use std::sync::Mutex;

    const MESSAGES: u64 = 50_000;
    const CAP: usize = 64;
    const ROUNDS: usize = 5;

    /// The process's CPU time so far, user and system, in seconds.
    fn cpu_seconds() -> f64 {
        // SAFETY: `getrusage` writes the struct it is given; zero is a valid `rusage`.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        secs(usage.ru_utime) + secs(usage.ru_stime)
    }

    /// One round: a nice-19 sender of `MESSAGES` values and `receivers` threads each running
    /// `recv` until it fails; CPU µs per message. `send` consumes the sending end, so the
    /// channel disconnects when it returns.
    fn round<T: Send, R: Sync>(
        receivers: usize,
        tx: T,
        rx: &R,
        send: impl FnOnce(T) + Send,
        recv: impl Fn(&R) -> Option<u64> + Sync,
    ) -> f64 {
        let start = cpu_seconds();
        std::thread::scope(|s| {
            for _ in 0..receivers {
                s.spawn(|| {
                    let mut sum = 0u64;
                    while let Some(v) = recv(rx) {
                        sum = sum.wrapping_add(v);
                    }
                    black_box(sum);
                });
            }
            s.spawn(move || {
                // SAFETY: plain call; 0 names the calling thread (Linux: a thread's own nice).
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
                send(tx);
            });
        });
        (cpu_seconds() - start) / MESSAGES as f64 * 1e6
    }

    pub fn main() {
        let counts: Vec<usize> = std::env::args()
            .nth(1)
            .unwrap_or_else(|| "4,16,100".to_owned())
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("a list of receiver counts, e.g. 4,16,100")
            })
            .collect();
        let names = [
            "std sync_channel",
            "crossbeam-channel",
            "flume",
            "thrifty bounded",
        ];
        println!("| receivers | candidate | CPU µs/msg, median (min-max) |");
        println!("| --- | --- | --- |");
        for r in counts {
            let mut cpu: [Vec<f64>; 4] = Default::default();
            for n in 0..ROUNDS {
                // Candidate `$i`: its channel's ends from `$make`, its receive as `$recv`.
                macro_rules! candidate {
                    ($i:expr, $make:expr, $recv:expr) => {{
                        let (tx, rx) = $make;
                        cpu[$i].push(round(
                            r,
                            tx,
                            &rx,
                            |tx| (0..MESSAGES).for_each(|k| tx.send(black_box(k)).unwrap()),
                            $recv,
                        ));
                    }};
                }
                // A rotating order: each round starts at the next candidate.
                for k in 0..names.len() {
                    match (n + k) % names.len() {
                        0 => candidate!(
                            0,
                            {
                                let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(CAP);
                                (tx, Mutex::new(rx))
                            },
                            |rx| rx.lock().unwrap().recv().ok()
                        ),
                        1 => candidate!(1, crossbeam_channel::bounded::<u64>(CAP), |rx| rx
                            .recv()
                            .ok()),
                        2 => candidate!(2, flume::bounded::<u64>(CAP), |rx| rx.recv().ok()),
                        _ => candidate!(3, thrifty::channel::bounded::<u64>(CAP), |rx| rx
                            .recv()
                            .ok()),
                    }
                }
            }
            for (name, xs) in names.iter().zip(cpu.iter_mut()) {
                let (median, lo, hi) = summary(xs);
                println!("| {r} | {name} | {median:.2} ({lo:.2}-{hi:.2}) |");
            }
        }
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    crowd::main();
    #[cfg(not(target_os = "linux"))]
    eprintln!("channel_crowd measures CPU time with getrusage: Linux only");
}
