//! `thrifty::pool` where threads meet: buffers taken on one thread and dropped on another, and
//! two busy threads beside many idle ones. Buffers are 4 KiB with one byte written.
//!
//! - Cross-thread: one producer takes a buffer and sends it through a bounded channel to a
//!   consumer thread that drops it: std's `sync_channel`, then thrifty's `channel::bounded`. The
//!   pool's capacity (8, then 256) is the channel's depth plus 2, so it covers every buffer in
//!   flight (the channel's, the one being received, the one being sent). Candidates: allocating
//!   per message, thrifty's `get_owned`, `lockfree-object-pool`'s `pull_owned`; both pools
//!   start with `capacity` buffers (thrifty's `prefill`). With std's channel, small depths make
//!   both threads park and wake on almost every message: the channel's cost, paid alike by
//!   every candidate, hides the pools'. thrifty's channel spins before it parks, so its rows
//!   show more of the pools' own cost.
//! - Idle threads: the one-byte workload of `pool.rs` on 2 busy threads, beside the same with
//!   64 other threads alive and asleep, each having used another `BufferPool` once, so each
//!   holds a thread slot and the busy threads' slots are above theirs.
//!
//! The harness runs a candidate's body on its measuring threads only and has no setup hook per
//! workload, so the extra threads live here: each cross-thread candidate owns a consumer thread,
//! spawned when the workload is built and joined when it is dropped, which drops values only
//! while a round of its candidate runs. Between rounds the channel stays full, so a round of
//! `ops` sends lasts as long as the consumer takes to drop `ops` values: the stream's steady
//! rate, with no drain and refill at the round's edges. The idle threads are spawned before
//! their workload and joined after it. The harness counts the allocations of its measuring
//! threads, i.e. the producer's: the allocs/op column is the producer side. Each consumer
//! counts its own in the harness's counting run (it is paused otherwise, as the producer is),
//! and a note under the table prints them beside the messages it dropped meanwhile.
//!
//! Two rows here measure the machine more than the candidates; both were seen on a 2-core VM
//! (the figures below are from 2026-11-30, when this table was added in commit d8e8064f):
//! - Allocating per message (capacity 256) took 0.9 to 2.8 µs in these rounds, with 17,000 to
//!   25,000 page faults per run: glibc gives the heap's top back to the OS as the consumer frees,
//!   and the producer faults it back in. With `MALLOC_TRIM_THRESHOLD_=1000000000` in the
//!   environment a run took 1,100 page faults and 0.13 to 0.22 µs per message, as criterion's
//!   `pool/get_put/cross_thread_bounded` measures it.
//! - Every candidate's rounds last about 10 ms, so the time the barrier takes to release the two
//!   measuring threads with 64 others alive is a small share of each round; the bound row,
//!   which touches no pool, shows what remains of the idle threads' effect on the machine.
//!   Criterion's `pool/get_put/2_threads_idle_crowd` measures the same with long samples.

use crate::harness::{Candidate, Harness};
use crate::pool::{candidates, pools, SIZE};
use std::hint::black_box;
use std::sync::atomic::Ordering::Release;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle};
use thrifty::measure;
use thrifty::pool::BufferPool;

pub fn run(h: &mut Harness) {
    cross_thread(h);
    idle_threads(h);
}

fn cross_thread(h: &mut Harness) {
    let title = "get on one thread, drop on another (4 KiB, 1 byte written)";
    let mut t = h.table("pool", title);
    t.no_tails("each call opens and closes the consumer's round, a wake-up per batch");
    t.note(
        "The consumers' allocator calls in the counting run, in so many messages dropped \
         (allocs/op above counts the producer only):"
            .to_owned(),
    );
    for (capacity, link) in [
        (8, Link::Std),
        (256, Link::Std),
        (8, Link::Thrifty),
        (256, Link::Thrifty),
    ] {
        let depth = capacity - 2;
        let (pool, lockfree) = pools(capacity);
        // Both pools start with `capacity` buffers, so the rounds measure the steady state:
        // grown by misses alone, a pool reaches it only when the producer outruns the consumer.
        pool.prefill(capacity);
        drop((0..capacity).map(|_| lockfree.pull()).collect::<Vec<_>>());
        let (to_std, to_thrifty, to_lockfree) = (
            Consumer::spawn(depth, link),
            Consumer::spawn(depth, link),
            Consumer::spawn(depth, link),
        );
        let tallies = [
            ("std", to_std.tally.clone()),
            ("thrifty", to_thrifty.tally.clone()),
            ("lockfree-object-pool", to_lockfree.tally.clone()),
        ];
        let name = format!("capacity {capacity}, {} channel {depth}", link.name());
        // One producer: the thread count is fixed, whatever `--threads` says.
        t.workload(
            &name,
            1,
            vec![
                Candidate::std("Vec::with_capacity, dropped there", move |_, ops| {
                    to_std.send(ops, || {
                        let mut v = Vec::<u8>::with_capacity(black_box(SIZE));
                        v.push(1);
                        v
                    })
                }),
                Candidate::new("thrifty BufferPool get_owned", move |_, ops| {
                    to_thrifty.send(ops, || {
                        let mut b = pool.get_owned();
                        b.push(1);
                        b
                    })
                }),
                Candidate::new("lockfree-object-pool pull_owned", move |_, ops| {
                    to_lockfree.send(ops, || {
                        let mut b = lockfree.pull_owned();
                        b.push(1);
                        b
                    })
                }),
            ],
        );
        // The workload has dropped its candidates, so every consumer has finished its tally.
        let tallied: Vec<String> = tallies
            .iter()
            .map(|(who, tally)| {
                let (calls, messages) = (tally.calls.load(Relaxed), tally.messages.load(Relaxed));
                format!("{who} {calls} in {messages}")
            })
            .collect();
        t.note(format!("  {name}: {}", tallied.join(", ")));
    }
}

fn idle_threads(h: &mut Harness) {
    let title =
        "get + put on every thread while idle threads hold thread slots (4 KiB, 1 byte written)";
    let mut t = h.table("pool", title);
    let other = Arc::new(BufferPool::default());
    for idle in [0, 64] {
        let other = Arc::clone(&other);
        let crowd = Idle::spawn(idle, move || drop(other.get()));
        for threads in t.threads(&[2]) {
            let name = format!("{idle} idle threads");
            t.workload(&name, threads, candidates::<1, false>(threads));
        }
        drop(crowd);
    }
}

/// Which bounded channel carries the buffers.
#[derive(Clone, Copy)]
enum Link {
    Std,
    Thrifty,
}

impl Link {
    fn name(self) -> &'static str {
        match self {
            Link::Std => "std",
            Link::Thrifty => "thrifty",
        }
    }
}

/// A channel's sending end, either kind.
enum Tx<T> {
    Std(SyncSender<T>),
    Thrifty(thrifty::channel::Sender<T>),
}

impl<T> Tx<T> {
    #[inline]
    fn send(&self, value: T) {
        let sent = match self {
            Tx::Std(tx) => tx.send(value).is_ok(),
            Tx::Thrifty(tx) => tx.send(value).is_ok(),
        };
        assert!(sent, "the consumer is gone");
    }
}

/// What a consumer counted of its own allocations in the harness's counting run.
#[derive(Default)]
struct Tally {
    /// Set by the producer for each round: true in the counting run (its thread unpaused).
    counting: AtomicBool,
    /// Allocator calls the consumer made while counting, added when it stops counting.
    calls: AtomicU64,
    /// Messages the consumer dropped while counting.
    messages: AtomicU64,
}

/// A thread that drops what it is sent through a channel of bounded depth, only while a round
/// runs: between rounds it pauses, leaving the channel full for the next round.
struct Consumer<T> {
    /// The sending end, for one producer at a time; `None` once dropping.
    tx: Mutex<Option<Tx<T>>>,
    /// True while a round runs.
    open: Arc<AtomicBool>,
    /// The consumer's own allocation count, read once it has been joined.
    tally: Arc<Tally>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Consumer<T> {
    fn spawn(depth: usize, link: Link) -> Self {
        let open = Arc::new(AtomicBool::new(false));
        let gate = Arc::clone(&open);
        let tally = Arc::new(Tally::default());
        let mine = Arc::clone(&tally);
        // The receiving end as a closure: `None` once every sender is gone.
        let (tx, recv): (Tx<T>, Box<dyn FnMut() -> Option<T> + Send>) = match link {
            Link::Std => {
                let (tx, rx) = mpsc::sync_channel::<T>(depth);
                (Tx::Std(tx), Box::new(move || rx.recv().ok()))
            }
            Link::Thrifty => {
                let (tx, rx) = thrifty::channel::bounded::<T>(depth);
                (Tx::Thrifty(tx), Box::new(move || rx.recv().ok()))
            }
        };
        let thread = thread::spawn(move || {
            let mut recv = recv;
            // Pausing is per thread: paused except in the counting run, so that in the timed
            // rounds its frees cost what they cost uncounted. `since` is the thread's count
            // when it started counting, `None` while paused.
            let mut paused = Some(measure::pause());
            let (mut since, mut messages) = (None, 0u64);
            let stop_counting = |since: &mut Option<measure::AllocStats>, messages: &mut u64| {
                if let Some(before) = since.take() {
                    let calls = (measure::thread_stats() - before).calls();
                    mine.calls.fetch_add(calls, Relaxed);
                    mine.messages.fetch_add(std::mem::take(messages), Relaxed);
                }
            };
            loop {
                // Acquire: pairs with the producer's Release store of `open`, so the load of
                // `counting` below sees the value stored before it. The channel carries the
                // values; the flag only says when to take them.
                while !gate.load(Acquire) {
                    thread::park();
                }
                // Relaxed: ordered by the Acquire above. A consumer blocked in `recv` across
                // a round's end takes the next round's first message in its old state: off by
                // a message, which the tally can afford.
                if mine.counting.load(Relaxed) != since.is_some() {
                    if since.is_none() {
                        paused = None;
                        since = Some(measure::thread_stats());
                    } else {
                        stop_counting(&mut since, &mut messages);
                        paused = Some(measure::pause());
                    }
                }
                match recv() {
                    Some(value) => {
                        drop(value);
                        messages += u64::from(since.is_some());
                    }
                    None => break, // the sender is gone
                }
            }
            stop_counting(&mut since, &mut messages);
            drop(paused);
        });
        Self {
            tx: Mutex::new(Some(tx)),
            open,
            tally,
            thread: Some(thread),
        }
    }

    /// One round: lets the consumer run, sends `ops` values from `make`, pauses the consumer.
    /// With the channel full at both ends of the round, `ops` sends take as long as the
    /// consumer takes to drop `ops` values: the pipeline's steady rate.
    #[inline]
    fn send(&self, ops: u64, make: impl Fn() -> T) {
        let tx = self.tx.lock().unwrap();
        let tx = tx.as_ref().unwrap();
        // The harness pauses every round but the counting run, on this thread. Relaxed: the
        // Release store of `open` below publishes it.
        self.tally.counting.store(!measure::is_paused(), Relaxed);
        self.open.store(true, Release);
        self.thread.as_ref().unwrap().thread().unpark();
        for _ in 0..ops {
            tx.send(black_box(make()));
        }
        self.open.store(false, Release);
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        *self.tx.lock().unwrap() = None; // the thread drains the channel, then sees it closed
        self.open.store(true, Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            t.join().expect("consumer panicked");
        }
    }
}

/// Threads that run a setup closure once, then sleep until the crowd is dropped (as
/// `benches/common/mod.rs`'s `Idle`).
pub struct Idle {
    wake: Vec<mpsc::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Idle {
    /// Spawns `n` threads that each run `setup`; returns once every `setup` has returned.
    pub fn spawn(n: usize, setup: impl Fn() + Send + Sync + 'static) -> Self {
        let (setup, ready) = (Arc::new(setup), Arc::new(Barrier::new(n + 1)));
        let (mut wake, mut threads) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (tx, rx) = mpsc::channel::<()>();
            let (setup, ready) = (Arc::clone(&setup), Arc::clone(&ready));
            threads.push(thread::spawn(move || {
                setup();
                ready.wait();
                let _ = rx.recv(); // asleep until the crowd is dropped
            }));
            wake.push(tx);
        }
        ready.wait();
        Self { wake, threads }
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        self.wake.clear(); // every `recv` fails: the threads exit
        for t in self.threads.drain(..) {
            t.join().expect("idle thread panicked");
        }
    }
}
