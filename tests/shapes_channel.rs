//! `thrifty::channel` used the way programs use it: thousands of small channels, a pipeline of
//! stages with more threads than cores, threads that exit mid-stream, a channel idle for a while
//! then busy, a recycling channel whose receivers hold slots for a long time, and bad settings.
//! Each test is one shape, named for what it shows; each checks exact counts (every message
//! received or dropped exactly once) and runs its scenario on a spawned thread with a deadline,
//! so a lost wake-up or a deadlock fails the test instead of hanging it.
//! Under Miri, which runs some thousand times slower, the counts of channels and messages are a
//! tenth of the native ones (`cfg!(miri)`).

#![cfg(not(loom))]

#[path = "common/deadline.rs"]
mod deadline;
use deadline::{within, DEADLINE};
#[path = "common/panics.rs"]
mod panics;
use panics::{quiet_panics_containing, Ids};

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use thrifty::channel::{
    bounded, recycling, Receiver, RecvTimeoutError, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};

/// Time for a thread that found a channel empty or full to get past its spin and park.
const LET_THEM_PARK: Duration = Duration::from_millis(200);

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// 2 000 channels of capacity 1-4, four receiver threads each working through its own quarter
/// (parked in `recv` on whichever channel it is at), two sender threads feeding every channel
/// three laps of its capacity in a random order with `try_send`, putting a channel back at the
/// end of their list when it is full. Each message arrives exactly once and in order on its
/// channel, and each channel's `full_sends` equals the `Full` answers its senders got. Then the
/// receivers park on one channel each and dropping the 2 000 senders wakes all four with
/// `Disconnected`, with nothing left in any channel. Fails on a lost, duplicated or reordered
/// message, a miscounted full send, or a receiver left asleep after the disconnect.
#[test]
fn thousands_of_small_channels_deliver_everything_and_wake_on_disconnect() {
    const CHANNELS: usize = if cfg!(miri) { 200 } else { 2_000 };
    const RECEIVERS: usize = 4;
    const LAPS: usize = 3;
    within("thousands", || {
        let capacity = |ch: usize| 1 + (ch * 7 + ch / 5) % 4;
        let (txs, rxs): (Vec<Sender<u64>>, Vec<Receiver<u64>>) =
            (0..CHANNELS).map(|ch| bounded(capacity(ch))).unzip();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Each receiver owns a random quarter of the channels and takes them in a random order.
        let mut order: Vec<usize> = (0..CHANNELS).collect();
        rng.shuffle(&mut order);
        let (drained_tx, drained) = mpsc::channel();
        let (woken_tx, woken) = mpsc::channel();
        let receivers: Vec<_> = order
            .chunks(CHANNELS / RECEIVERS)
            .map(|mine| {
                let mine: Vec<(usize, Receiver<u64>)> =
                    mine.iter().map(|&ch| (ch, rxs[ch].clone())).collect();
                let (drained_tx, woken_tx) = (drained_tx.clone(), woken_tx.clone());
                thread::spawn(move || {
                    let mut got = 0;
                    for (ch, rx) in &mine {
                        for seq in 0..LAPS * capacity(*ch) {
                            let v = rx.recv().expect("a sender is still alive");
                            assert_eq!(
                                v,
                                (*ch * 16 + seq) as u64,
                                "channel {ch}: wrong, lost or repeated message"
                            );
                            got += 1;
                        }
                    }
                    drained_tx.send(got).unwrap();
                    // Park on one channel until every sender is dropped.
                    let parked = mine[mine.len() / 2].1.recv();
                    woken_tx.send(parked.is_err()).unwrap();
                    // Nothing may be left behind in any of them.
                    for (ch, rx) in &mine {
                        assert_eq!(rx.recv(), Err(thrifty::channel::RecvError), "channel {ch}");
                        assert_eq!(rx.len(), 0, "channel {ch}");
                    }
                })
            })
            .collect();
        drop(rxs);
        let full_answers: Vec<AtomicUsize> = (0..CHANNELS).map(|_| AtomicUsize::new(0)).collect();
        thread::scope(|s| {
            for (part, seed) in order.chunks(CHANNELS / 2).zip([11u64, 29]) {
                let (txs, full_answers) = (&txs, &full_answers);
                s.spawn(move || {
                    let mut rng = Rng(seed);
                    let mut work: Vec<usize> = part
                        .iter()
                        .flat_map(|&ch| std::iter::repeat(ch).take(LAPS * capacity(ch)))
                        .collect();
                    rng.shuffle(&mut work);
                    let mut next_seq = vec![0usize; CHANNELS];
                    while !work.is_empty() {
                        let mut deferred = Vec::new();
                        for ch in work {
                            let v = (ch * 16 + next_seq[ch]) as u64;
                            match txs[ch].try_send(v) {
                                Ok(()) => next_seq[ch] += 1,
                                Err(TrySendError::Full(_)) => {
                                    full_answers[ch].fetch_add(1, SeqCst);
                                    deferred.push(ch);
                                }
                                Err(TrySendError::Disconnected(_)) => panic!("receiver gone"),
                            }
                        }
                        if !deferred.is_empty() {
                            thread::yield_now();
                        }
                        work = deferred;
                    }
                });
            }
        });
        let mut total = 0;
        for _ in 0..RECEIVERS {
            total += drained
                .recv_timeout(DEADLINE)
                .expect("a receiver never got all its messages");
        }
        let expected: usize = (0..CHANNELS).map(|ch| LAPS * capacity(ch)).sum();
        assert_eq!(total, expected, "messages lost or duplicated");
        for (ch, tx) in txs.iter().enumerate() {
            let stats = tx.stats();
            assert_eq!(
                stats.full_sends,
                full_answers[ch].load(SeqCst) as u64,
                "channel {ch}: {stats:?}"
            );
            assert!(stats.high_water <= capacity(ch), "channel {ch}: {stats:?}");
            assert_eq!(stats.len, 0, "channel {ch}: {stats:?}");
        }
        thread::sleep(LET_THEM_PARK);
        drop(txs);
        let woke = (0..RECEIVERS)
            .map_while(|_| woken.recv_timeout(WAIT).ok())
            .collect::<Vec<bool>>();
        assert_eq!(
            woke, [true; RECEIVERS],
            "receivers left asleep (or given a message) after every sender was dropped"
        );
        receivers.into_iter().for_each(|r| r.join().unwrap());
    });
}

/// A pipeline: one producer, three stages of two threads each and a sink (8 threads on 2
/// cores), joined by channels of capacity 2, handing on `String`s that each stage parses and
/// rewrites. The sink sees every number exactly once and an exact sum; dropping the producer's
/// sender then shuts the stages down in order: every thread of a stage finishes before any
/// thread of the next one (a stage ends only when all of the previous one's senders are gone).
/// Fails on a lost or duplicated message, a stage ending while its input still had senders, or
/// a stage left waiting after its input disconnected.
#[test]
fn a_three_stage_pipeline_of_strings_is_exact_and_shuts_down_in_order() {
    const N: u64 = if cfg!(miri) { 2_000 } else { 20_000 };
    const STAGES: usize = 3;
    const PER_STAGE: usize = 2;
    within("pipeline", || {
        let ticket = Arc::new(AtomicUsize::new(0));
        let (first_tx, mut input) = bounded::<String>(2);
        let producer = {
            let ticket = Arc::clone(&ticket);
            thread::spawn(move || {
                for i in 0..N {
                    first_tx.send(format!("{i}")).unwrap();
                }
                let t = ticket.fetch_add(1, SeqCst);
                drop(first_tx); // the shutdown starts here
                t
            })
        };
        let mut stages = Vec::new();
        for stage in 0..STAGES {
            let (tx, rx) = bounded::<String>(2);
            let workers: Vec<_> = (0..PER_STAGE)
                .map(|_| {
                    let (input, tx, ticket) = (input.clone(), tx.clone(), Arc::clone(&ticket));
                    thread::spawn(move || {
                        let mut out = 0u64;
                        for s in &input {
                            let n: u64 = s.trim_start_matches('v').parse().unwrap();
                            // Stage 0 triples, stage 1 adds one, stage 2 tags the string.
                            let next = match stage {
                                0 => format!("{}", n * 3),
                                1 => format!("{}", n + 1),
                                _ => format!("v{n}"),
                            };
                            tx.send(next).expect("the next stage is alive");
                            out += 1;
                        }
                        let t = ticket.fetch_add(1, SeqCst);
                        drop(tx); // after the ticket: the next stage cannot end before it
                        (t, out)
                    })
                })
                .collect();
            stages.push(workers);
            input = rx;
            drop(tx);
        }
        let sink = {
            let ticket = Arc::clone(&ticket);
            thread::spawn(move || {
                let mut seen = vec![false; N as usize];
                let (mut count, mut sum) = (0u64, 0u64);
                for s in input.iter() {
                    let v: u64 = s
                        .strip_prefix('v')
                        .expect("went through stage 3")
                        .parse()
                        .unwrap();
                    assert_eq!(v % 3, 1, "{s}");
                    let i = ((v - 1) / 3) as usize;
                    assert!(!std::mem::replace(&mut seen[i], true), "{i} arrived twice");
                    count += 1;
                    sum += v;
                }
                (ticket.fetch_add(1, SeqCst), count, sum)
            })
        };
        let producer_ticket = producer.join().unwrap();
        let stage_results: Vec<Vec<(usize, u64)>> = stages
            .into_iter()
            .map(|w| w.into_iter().map(|h| h.join().unwrap()).collect())
            .collect();
        let (sink_ticket, count, sum) = sink.join().unwrap();
        assert_eq!(count, N, "messages lost or duplicated");
        assert_eq!(sum, 3 * (N * (N - 1) / 2) + N);
        for (stage, workers) in stage_results.iter().enumerate() {
            let handled: u64 = workers.iter().map(|&(_, out)| out).sum();
            assert_eq!(handled, N, "stage {stage}");
        }
        // Shutdown order: producer < stage 0 < stage 1 < stage 2 < sink.
        let mut last_of_previous = producer_ticket;
        for (stage, workers) in stage_results.iter().enumerate() {
            let first = workers.iter().map(|&(t, _)| t).min().unwrap();
            assert!(
                first > last_of_previous,
                "stage {stage} ended before the stage feeding it: {stage_results:?}"
            );
            last_of_previous = workers.iter().map(|&(t, _)| t).max().unwrap();
        }
        assert!(sink_ticket > last_of_previous, "the sink ended early");
    });
}

/// Per-message bookkeeping for [`Tracked`]: made, accepted by a send, received, dropped.
struct Ledger {
    created: Vec<AtomicBool>,
    accepted: Vec<AtomicBool>,
    received: Vec<AtomicBool>,
    drops: Vec<AtomicU8>,
}

impl Ledger {
    fn new(n: usize) -> Arc<Self> {
        let flags = || (0..n).map(|_| AtomicBool::new(false)).collect();
        Arc::new(Self {
            created: flags(),
            accepted: flags(),
            received: flags(),
            drops: (0..n).map(|_| AtomicU8::new(0)).collect(),
        })
    }

    fn count(flags: &[AtomicBool]) -> usize {
        flags.iter().filter(|f| f.load(SeqCst)).count()
    }
}

/// A message that records its own drop.
struct Tracked {
    id: usize,
    ledger: Arc<Ledger>,
}

impl Tracked {
    fn new(id: usize, ledger: &Arc<Ledger>) -> Self {
        assert!(!ledger.created[id].swap(true, SeqCst));
        Self {
            id,
            ledger: Arc::clone(ledger),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ledger.drops[self.id].fetch_add(1, SeqCst);
    }
}

/// Threads that exit mid-stream, on both sides: four senders each send their own number of
/// messages (or stop at the first refused send) and return, dropping their clone; three
/// receivers each take their own number and return. In one setting all the receivers leave
/// while the senders still send (the last one drops what is queued; the senders blocked on a
/// full channel wake and get their message back), in the other the last receiver stays until
/// `Disconnected`. At capacities 1, 8 and 64, every message made is dropped exactly once,
/// every received one was accepted by a send, none is received twice, and the counts are
/// exact: all the receivers' quotas were met, at most `capacity` accepted messages went
/// unreceived (none when a receiver drained), at most one refused send per sender. Fails on a
/// lost message (dropped 0 times: leaked), a double drop, a duplicate, or a thread left asleep.
#[test]
fn senders_and_receivers_exiting_mid_stream_lose_nothing() {
    const PER_SENDER: [usize; 4] = [600, 1_200, 1_800, 2_400];
    const TOTAL: usize = 6_000;
    within("exiting", || {
        for capacity in [1, 8, 64] {
            for last_drains in [false, true] {
                let quotas = [250, 900, if last_drains { usize::MAX } else { 1_600 }];
                let ledger = Ledger::new(TOTAL);
                let (tx, rx) = bounded::<Tracked>(capacity);
                let senders: Vec<_> = PER_SENDER
                    .iter()
                    .scan(0, |start, &k| {
                        let ids = *start..*start + k;
                        *start += k;
                        Some(ids)
                    })
                    .map(|ids| {
                        let (tx, ledger) = (tx.clone(), Arc::clone(&ledger));
                        thread::spawn(move || {
                            for id in ids {
                                match tx.send(Tracked::new(id, &ledger)) {
                                    Ok(()) => ledger.accepted[id].store(true, SeqCst),
                                    Err(SendError(back)) => {
                                        assert_eq!(back.id, id, "another message came back");
                                        return 1; // `back` drops here: refused, not lost
                                    }
                                }
                            }
                            0
                        })
                    })
                    .collect();
                drop(tx);
                let receivers: Vec<_> = quotas
                    .iter()
                    .map(|&quota| {
                        let (rx, ledger) = (rx.clone(), Arc::clone(&ledger));
                        thread::spawn(move || {
                            let mut got = 0;
                            while got < quota {
                                let Ok(m) = rx.recv() else { break };
                                assert!(
                                    !ledger.received[m.id].swap(true, SeqCst),
                                    "{} received twice",
                                    m.id
                                );
                                got += 1;
                            }
                            got
                        })
                    })
                    .collect();
                drop(rx);
                let refused: usize = senders.into_iter().map(|h| h.join().unwrap()).sum();
                let got: Vec<usize> = receivers.into_iter().map(|h| h.join().unwrap()).collect();
                let setting = format!("capacity {capacity}, last receiver drains: {last_drains}");
                let (created, accepted, received) = (
                    Ledger::count(&ledger.created),
                    Ledger::count(&ledger.accepted),
                    Ledger::count(&ledger.received),
                );
                for id in 0..TOTAL {
                    let made = ledger.created[id].load(SeqCst);
                    let drops = ledger.drops[id].load(SeqCst);
                    assert_eq!(
                        drops, made as u8,
                        "{setting}: message {id} dropped {drops}×"
                    );
                    if ledger.received[id].load(SeqCst) {
                        assert!(ledger.accepted[id].load(SeqCst), "{setting}: {id}");
                    }
                }
                assert_eq!(received, got.iter().sum::<usize>(), "{setting}");
                assert_eq!(created, accepted + refused, "{setting}");
                if last_drains {
                    assert!(got.iter().zip(quotas).all(|(&g, q)| g <= q), "{setting}");
                    assert_eq!(
                        (created, accepted, received, refused),
                        (TOTAL, TOTAL, TOTAL, 0),
                        "{setting}"
                    );
                } else {
                    assert_eq!(got, quotas, "{setting}: a receiver stopped short");
                    assert!(
                        accepted - received <= capacity,
                        "{setting}: {accepted} accepted, {received} received"
                    );
                    assert!(refused <= PER_SENDER.len(), "{setting}");
                    assert!(created < TOTAL, "{setting}: no sender saw the disconnect");
                }
            }
        }
    });
}

/// A channel idle for a while, then busy, then idle again: one receiver loops on
/// `recv_timeout(400 ms)`, timing out at least three times before the first message; then 200
/// messages come, some back to back, some a millisecond apart (the receiver parks between
/// them), some after 450 ms (it times out again first); then the sender drops. Every message
/// arrives once and in order, and no wake-up is missed: no call ends in `Timeout` while a
/// message sent before its deadline waits for a later call, and no call that a send (or the
/// drop) should have woken sleeps on to its deadline (a waiter whose wake-up is lost wakes at
/// its deadline, retries, and returns the message late). The margin of 300 ms tolerates a busy
/// scheduler, as when the other tests of this file run beside it on 2 cores: a woken receiver
/// must run within 300 ms. Fails on a missed wake-up, a lost or repeated message, or a receiver
/// that sleeps through the disconnect.
#[test]
fn a_channel_idle_for_a_while_then_busy_misses_no_wake_up() {
    const TIMEOUT: Duration = Duration::from_millis(400);
    const MARGIN: Duration = Duration::from_millis(300);
    const MESSAGES: usize = 200;
    within("idle_then_busy", || {
        let (tx, rx) = bounded::<usize>(4);
        let timeouts = Arc::new(AtomicUsize::new(0));
        // One `recv_timeout` call: when it started, when it returned, and what it returned.
        type Call = (Instant, Instant, Result<usize, RecvTimeoutError>);
        let receiver = {
            let timeouts = Arc::clone(&timeouts);
            thread::spawn(move || {
                let mut calls: Vec<Call> = Vec::new();
                loop {
                    let start = Instant::now();
                    let got = rx.recv_timeout(TIMEOUT);
                    calls.push((start, Instant::now(), got));
                    match got {
                        Ok(_) => {}
                        Err(RecvTimeoutError::Timeout) => {
                            timeouts.fetch_add(1, SeqCst);
                        }
                        Err(RecvTimeoutError::Disconnected) => return calls,
                    }
                }
            })
        };
        // Idle: wait for three time-outs (each about 400 ms), by a deadline.
        let idle_until = Instant::now() + WAIT;
        while timeouts.load(SeqCst) < 3 {
            assert!(Instant::now() < idle_until, "recv_timeout never timed out");
            thread::sleep(Duration::from_millis(5));
        }
        // Busy, in bursts with pauses.
        let mut sent_at = Vec::with_capacity(MESSAGES);
        for i in 0..MESSAGES {
            if i % 50 == 25 {
                thread::sleep(TIMEOUT + Duration::from_millis(50));
            } else if i % 3 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
            tx.send(i).unwrap();
            sent_at.push(Instant::now()); // after the send returned
        }
        // Let the receiver take the last message and park again, well before its deadline.
        while !tx.is_empty() {
            thread::yield_now();
        }
        thread::sleep(Duration::from_millis(5));
        let dropped_at = Instant::now();
        drop(tx);
        let calls = receiver.join().unwrap();
        let received: Vec<usize> = calls.iter().filter_map(|c| c.2.ok()).collect();
        assert_eq!(
            received,
            (0..MESSAGES).collect::<Vec<_>>(),
            "lost or out of order"
        );
        let first_message = calls.iter().position(|c| c.2.is_ok()).unwrap();
        assert!(
            first_message >= 3,
            "only {first_message} time-outs while idle"
        );
        assert_eq!(calls.last().unwrap().2, Err(RecvTimeoutError::Disconnected));
        // Missed wake-ups, from what each call could have returned and since when.
        let mut next = 0; // the next message not yet received
        let mut missed = Vec::new();
        for (k, &(start, end, got)) in calls.iter().enumerate() {
            let deadline = start + TIMEOUT; // the call's own deadline is no earlier
            let ready_at = if next < MESSAGES {
                sent_at[next]
            } else {
                dropped_at
            };
            let available = ready_at.max(start);
            if got == Err(RecvTimeoutError::Timeout) && ready_at < deadline {
                missed.push(format!("call {k} timed out though {next} was ready before"));
            }
            let woke = got.is_ok() || got == Err(RecvTimeoutError::Disconnected);
            if woke && end >= deadline && available + MARGIN < deadline {
                missed.push(format!(
                    "call {k} ({got:?}) returned {:?} after it could, at its deadline",
                    end - available
                ));
            }
            if let Ok(v) = got {
                next = v + 1;
            }
        }
        assert!(missed.is_empty(), "missed wake-ups: {missed:#?}");
        let later_timeouts = calls[first_message..]
            .iter()
            .filter(|c| c.2 == Err(RecvTimeoutError::Timeout))
            .count();
        assert!(
            later_timeouts >= 1,
            "never timed out during the pauses of TIMEOUT + 50 ms"
        );
    });
}

/// A recycling channel of `String`s with two senders and two receivers: receiver A holds its
/// slot for 3 ms inside `recv_with` for its first 40 messages (a slow handler) while receiver
/// B keeps receiving the messages queued behind it. Every message is processed exactly once,
/// B gets messages while A holds a slot, each `send_with` gets its slot's value reset (empty,
/// with the capacity the factory gave it), the factory runs exactly `capacity` times, and the
/// receivers only ever see `capacity` distinct buffers: the slots keep theirs. Fails on a lost
/// or duplicated message, a dirty slot, a buffer reallocated, or a receiver stuck behind the
/// slow one.
#[test]
fn a_recycling_channel_with_a_slow_receiver_processes_each_message_once_in_kept_buffers() {
    const CAPACITY: usize = 4;
    const PER_SENDER: usize = if cfg!(miri) { 250 } else { 2_500 };
    const SLOW: usize = 40;
    within("recycling_slow", || {
        let made = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = {
            let made = Arc::clone(&made);
            recycling(CAPACITY, move || {
                made.fetch_add(1, SeqCst);
                String::with_capacity(32)
            })
        };
        assert_eq!(
            made.load(SeqCst),
            CAPACITY,
            "the factory runs once per slot, at once"
        );
        let seen: Arc<Vec<AtomicU8>> =
            Arc::new((0..2 * PER_SENDER).map(|_| AtomicU8::new(0)).collect());
        let buffers = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let b_count = Arc::new(AtomicUsize::new(0));
        let senders: Vec<_> = (0..2)
            .map(|s| {
                let tx = tx.clone();
                thread::spawn(move || {
                    let mut dirty = 0;
                    for i in s * PER_SENDER..(s + 1) * PER_SENDER {
                        tx.send_with(|buf| {
                            if !buf.is_empty() || buf.capacity() < 32 {
                                dirty += 1;
                            }
                            write!(buf, "message {i:>10}").unwrap();
                        })
                        .unwrap();
                    }
                    dirty
                })
            })
            .collect();
        drop(tx);
        let read = {
            let (seen, buffers) = (Arc::clone(&seen), Arc::clone(&buffers));
            move |buf: &mut String| {
                let i: usize = buf["message ".len()..].trim().parse().unwrap();
                seen[i].fetch_add(1, SeqCst);
                buffers.lock().unwrap().insert(buf.as_ptr() as usize);
            }
        };
        let a = {
            let (rx, read, b_count) = (rx.clone(), read.clone(), Arc::clone(&b_count));
            thread::spawn(move || {
                let (mut got, mut b_moved) = (0, 0);
                while let Ok(()) = rx.recv_with(|buf| {
                    if got < SLOW {
                        let before = b_count.load(SeqCst);
                        thread::sleep(Duration::from_millis(3));
                        b_moved += (b_count.load(SeqCst) > before) as usize;
                    }
                    read(buf);
                }) {
                    got += 1;
                }
                (got, b_moved)
            })
        };
        let b = thread::spawn(move || {
            let mut got = 0;
            while let Ok(()) = rx.recv_with(&read) {
                got += 1;
                b_count.fetch_add(1, SeqCst);
            }
            got
        });
        let dirty: usize = senders.into_iter().map(|h| h.join().unwrap()).sum();
        let (a_got, b_moved) = a.join().unwrap();
        let b_got = b.join().unwrap();
        assert_eq!(dirty, 0, "send_with got a slot that was not reset");
        assert_eq!(a_got + b_got, 2 * PER_SENDER, "lost or duplicated messages");
        assert!(a_got > 0, "A never got a message");
        assert!(b_moved > 0, "B never received while A held a slot");
        let counts: Vec<u8> = seen.iter().map(|c| c.load(SeqCst)).collect();
        assert!(
            counts.iter().all(|&c| c == 1),
            "a message processed 0 or 2 times"
        );
        assert_eq!(made.load(SeqCst), CAPACITY, "the factory ran again");
        assert_eq!(
            buffers.lock().unwrap().len(),
            CAPACITY,
            "the slots did not keep their buffers"
        );
    });
}

/// A recycling channel of capacity 3, three senders and two receivers, where resets panic
/// before clearing: after some receives (the receiver's reset), after some failed sends (the
/// sender's guard's reset) and, for some messages, twice or three times in a row, so the next
/// send into that slot fails too. Some `fill`s and `read`s panic as well. Every `fill` must get
/// an empty value, every message received must hold exactly the one id its `fill` wrote, and
/// the ids received are exactly those whose `send_with` returned `Ok`, once each. Fails on a
/// message carrying an earlier one's contents, a lost or duplicated message, or a hang.
#[test]
fn a_recycling_channel_whose_resets_panic_never_hands_out_stale_contents() {
    const PER_SENDER: usize = if cfg!(miri) { 300 } else { 3_000 };
    const SENDERS: usize = 3;
    quiet_panics_containing("expected:");
    within("recycling_reset_panics", || {
        let n = SENDERS * PER_SENDER;
        let sent: Arc<Vec<AtomicU8>> = Arc::new((0..n).map(|_| AtomicU8::new(0)).collect());
        let got: Arc<Vec<AtomicU8>> = Arc::new((0..n).map(|_| AtomicU8::new(0)).collect());
        let (tx, rx) = recycling(3, Ids::default);
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let (tx, sent) = (tx.clone(), Arc::clone(&sent));
                thread::spawn(move || {
                    let mut stale = 0;
                    for id in s * PER_SENDER..(s + 1) * PER_SENDER {
                        let fill = |v: &mut Ids| {
                            stale += !v.ids.is_empty() as usize;
                            v.ids.push(id);
                            // The reset after this message (the receiver's, or the guard's
                            // below) fails 1, 2 or 3 times.
                            v.failing = [0, 0, 0, 1, 0, 2, 0, 3][id % 8];
                            if id % 11 == 0 {
                                panic!("expected: fill failed");
                            }
                        };
                        if let Ok(Ok(())) = catch_unwind(AssertUnwindSafe(|| tx.send_with(fill))) {
                            sent[id].fetch_add(1, SeqCst);
                        }
                    }
                    stale
                })
            })
            .collect();
        drop(tx);
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let (rx, got) = (rx.clone(), Arc::clone(&got));
                thread::spawn(move || {
                    let mut wrong = Vec::new();
                    loop {
                        let read = |v: &mut Ids| {
                            if v.ids.len() != 1 {
                                wrong.push(v.ids.clone());
                            }
                            if let Some(&id) = v.ids.first() {
                                got[id].fetch_add(1, SeqCst);
                                if id % 13 == 0 {
                                    panic!("expected: read failed");
                                }
                            }
                        };
                        // A `read` or reset panic still consumed the message; only a clean
                        // `Err` ends the loop.
                        if let Ok(Err(_)) = catch_unwind(AssertUnwindSafe(|| rx.recv_with(read))) {
                            return wrong;
                        }
                    }
                })
            })
            .collect();
        drop(rx);
        let stale: usize = senders.into_iter().map(|h| h.join().unwrap()).sum();
        let wrong: Vec<Vec<usize>> = receivers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(stale, 0, "`fill` got a value that was not reset");
        assert!(wrong.is_empty(), "messages not holding one id: {wrong:?}");
        let (mut delivered, mut failed) = (0, 0);
        for id in 0..n {
            let (s, g) = (sent[id].load(SeqCst), got[id].load(SeqCst));
            assert_eq!(s, g, "id {id}: sent {s} times, received {g} times");
            delivered += s as usize;
            failed += (s == 0) as usize;
        }
        // Each `fill` panic (1 id in 11) fails its send; so does each send into a slot whose
        // reset fails again (after ids 5 and 7 mod 8). Most sends still go through.
        assert!(failed >= n / 11, "only {failed} sends failed");
        assert!(delivered > n / 2, "only {delivered} of {n} delivered");
    });
}

/// The panic message of `f`, which must panic (not abort, not return).
fn panic_message<R>(what: &str, f: impl FnOnce() -> R) -> String {
    let panic = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("{what}: did not panic"),
        Err(panic) => panic,
    };
    if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else {
        panic!("{what}: a panic without a message")
    }
}

/// Bad settings a program can pass: capacity 0 (documented to panic: no rendezvous mode), a
/// capacity beyond any address space (2^58 `u64` slots, 4 EiB, so no overcommit setting
/// grants it: a panic that names the request, not an
/// abort, and the recycling factory never runs), capacities past the ring's arithmetic
/// (`usize::MAX`: "too large"), and the edge timeouts and batch size: `Duration::ZERO` answers
/// at once, `Duration::MAX` waits without a deadline and is woken by a send, `recv_many` with
/// `max` 0 returns 0 without waiting. Fails on an abort (the whole test binary dies), a wrong
/// message, or a hang.
/// Channels whose slots cannot be allocated panic with the numbers, and a recycling one runs
/// no factory.
fn cannot_allocate() {
    let message = panic_message("bounded(1 << 58)", || bounded::<u64>(1 << 58));
    assert!(message.contains("cannot allocate"), "{message}");
    assert!(message.contains("288230376151711744"), "{message}");
    let made = AtomicUsize::new(0);
    let message = panic_message("recycling(1 << 56)", || {
        recycling(1 << 56, || {
            made.fetch_add(1, SeqCst);
            Vec::<u64>::new()
        })
    });
    assert!(message.contains("cannot allocate"), "{message}");
    assert_eq!(
        made.load(SeqCst),
        0,
        "the factory ran for a channel never made"
    );
}

#[test]
fn bad_settings_panic_with_their_documented_messages() {
    within("bad_settings", || {
        for message in [
            panic_message("bounded(0)", || bounded::<u64>(0)),
            panic_message("recycling(0)", || recycling(0, String::new)),
        ] {
            assert!(message.contains("capacity must be at least 1"), "{message}");
            assert!(message.contains("rendezvous"), "{message}");
        }
        // Miri stops at an allocation larger than its memory rather than fail it, so it skips
        // the two that must fail.
        if !cfg!(miri) {
            cannot_allocate();
        }
        for capacity in [usize::MAX, isize::MAX as usize, isize::MAX as usize / 8] {
            let message = panic_message("huge capacity", || bounded::<u8>(capacity));
            assert!(message.contains("too large"), "{capacity}: {message}");
            let message = panic_message("huge capacity", || recycling(capacity, String::new));
            assert!(message.contains("too large"), "{capacity}: {message}");
        }
        // Edge timeouts and batch sizes on a working channel.
        let (tx, rx) = bounded::<u32>(1);
        assert_eq!(
            rx.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Timeout)
        );
        let mut batch = Vec::new();
        assert_eq!(rx.recv_many(&mut batch, 0), 0, "max 0 must not wait");
        tx.send_timeout(1, Duration::MAX).unwrap();
        assert!(tx.send_timeout(2, Duration::ZERO).unwrap_err().is_timeout());
        assert_eq!(rx.recv_timeout(Duration::MAX), Ok(1));
        let late = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            tx.send(3).unwrap();
            tx // keep it alive until joined
        });
        assert_eq!(
            rx.recv_timeout(Duration::MAX),
            Ok(3),
            "Duration::MAX never woke"
        );
        let tx = late.join().unwrap();
        drop(tx);
        assert_eq!(
            rx.recv_timeout(Duration::MAX),
            Err(RecvTimeoutError::Disconnected)
        );
    });
}

/// A message of 64 KiB held inline, so a sender takes a while to move it into its slot; counts
/// the live ones.
struct Wide {
    _bytes: [u64; 8192],
    live: Arc<AtomicUsize>,
}

impl Wide {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, SeqCst);
        Self {
            _bytes: [7; 8192],
            live: Arc::clone(live),
        }
    }
}

impl Drop for Wide {
    fn drop(&mut self) {
        self.live.fetch_sub(1, SeqCst);
    }
}

/// The last receiver drops while four senders keep sending wide messages: once every send has
/// returned, no message is alive. Pushes close before the receiver drains, and the drain waits
/// for a slot a sender is still moving its message into, rather than leaving that message and
/// the queue behind it for the last sender's drop.
#[test]
fn the_last_receiver_drops_what_is_queued_past_a_slot_being_filled() {
    const SENDERS: usize = 4;
    within("last receiver", || {
        let live = Arc::new(AtomicUsize::new(0));
        let mut kept = Vec::new();
        for _ in 0..150 {
            let (tx, rx) = bounded::<Wide>(16);
            let (sent, release) = (
                Arc::new(std::sync::Barrier::new(SENDERS + 1)),
                Arc::new(std::sync::Barrier::new(SENDERS + 1)),
            );
            let senders: Vec<_> = (0..SENDERS)
                .map(|_| {
                    let (tx, live) = (tx.clone(), Arc::clone(&live));
                    let (sent, release) = (Arc::clone(&sent), Arc::clone(&release));
                    thread::spawn(move || {
                        while tx.send(Wide::new(&live)).is_ok() {}
                        sent.wait();
                        release.wait(); // holds `tx` until the count is taken
                    })
                })
                .collect();
            for _ in 0..8 {
                drop(rx.recv().unwrap());
            }
            drop(rx);
            sent.wait();
            kept.push(live.load(SeqCst));
            release.wait();
            senders.into_iter().for_each(|s| s.join().unwrap());
            drop(tx);
            assert_eq!(
                live.load(SeqCst),
                0,
                "every message dropped with the channel"
            );
        }
        kept.sort_unstable();
        assert!(
            kept.iter().all(|&k| k == 0),
            "alive after the last receiver left, per round (sorted): {kept:?}"
        );
    });
}

/// A queued message whose drop panics: the last receiver's drop drops every other queued
/// message at once, each once, while senders are still alive, then lets that panic go on.
#[test]
fn the_last_receiver_drops_every_queued_message_past_one_whose_drop_panics() {
    struct Fragile {
        panics: bool,
        drops: Arc<AtomicUsize>,
    }
    impl Drop for Fragile {
        fn drop(&mut self) {
            self.drops.fetch_add(1, SeqCst);
            if self.panics {
                panic!("expected: a message's drop panics");
            }
        }
    }
    quiet_panics_containing("expected:");
    let drops: Vec<_> = (0..5).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let (tx, rx) = bounded(8);
    for (i, drops) in drops.iter().enumerate() {
        let drops = Arc::clone(drops);
        tx.send(Fragile {
            panics: i == 2,
            drops,
        })
        .unwrap();
    }
    let payload = catch_unwind(AssertUnwindSafe(|| drop(rx))).unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"expected: a message's drop panics"),
        "the message's own panic goes on"
    );
    let counts = || drops.iter().map(|d| d.load(SeqCst)).collect::<Vec<_>>();
    assert_eq!(
        counts(),
        [1; 5],
        "each message dropped once, with `tx` alive"
    );
    assert_eq!(tx.len(), 0, "the ring is left empty");
    assert!(tx.is_disconnected());
    drop(tx);
    assert_eq!(counts(), [1; 5], "none dropped again with the channel");
}

#[test]
fn recv_many_without_a_limit_returns_while_senders_keep_the_channel_full() {
    const CAP: usize = 4;
    const SENT: u64 = if cfg!(miri) { 1_000 } else { 10_000 };
    let (tx, rx) = bounded::<u64>(CAP);
    let total = within("recv_many", move || {
        // A sender that never parks: it retries a refused send at once.
        let sender = thread::spawn(move || {
            for i in 0..SENT {
                let mut m = i;
                let mut refused = 0u32;
                while let Err(full) = tx.try_send(m) {
                    m = full.into_inner();
                    // On two CPUs the receiver frees a slot within a few tries, so the sender
                    // refills the channel while a batch is taken. Where both share one CPU the
                    // receiver runs only when the sender yields: without a yield, each batch of
                    // 4 would wait out a time slice there.
                    refused += 1;
                    if refused % 4096 == 0 {
                        thread::yield_now();
                    }
                }
            }
        });
        let mut out = Vec::new();
        loop {
            let before = out.len();
            let n = rx.recv_many(&mut out, usize::MAX);
            if n == 0 {
                break;
            }
            assert!(n <= CAP, "a batch of {n} from a channel of {CAP}");
            assert_eq!(out.len() - before, n);
        }
        sender.join().unwrap();
        assert!(
            out.iter().copied().eq(0..SENT),
            "every message once, in order"
        );
        out.len() as u64
    });
    assert_eq!(total, SENT);
}

/// The timeout of waits that a wake-up or a disconnect should end (the tests below, and a few
/// above): long, since a wait that is woken ends at once and costs nothing of it, and a thread
/// stalled for seconds on a busy machine must not pass for one left asleep.
const WAIT: Duration = Duration::from_secs(60);

/// The longest a disconnect may take to reach a waiter in the tests below, far under their
/// timeouts ([`WAIT`]): a waiter the disconnect does not wake sits out its whole timeout instead.
const WOKEN_WELL_BEFORE: Duration = Duration::from_secs(30);

/// Waits (up to [`DEADLINE`]) until `full_sends` has reached `n`: a send counts itself there as
/// it enters its slow path, so it is then past its fast-path check and about to wait.
fn wait_for_full_sends(stats: impl Fn() -> thrifty::channel::Stats, n: u64) {
    let start = Instant::now();
    while stats().full_sends < n {
        assert!(
            start.elapsed() < DEADLINE,
            "no send ever found the channel full"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Spawns a thread that drops `other_side` once a send is waiting: `full_sends`, read through
/// `stats`, shows the send in its slow path, and 20 ms more have passed. So the test sees the
/// wait's disconnect, not the first try's.
fn drop_once_a_send_waits<S: Send + 'static>(
    stats: impl Fn() -> thrifty::channel::Stats + Send + 'static,
    other_side: S,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        wait_for_full_sends(stats, 1);
        thread::sleep(Duration::from_millis(20));
        drop(other_side);
    })
}

/// A `send_timeout` waiting on a full `bounded(1)` returns `Disconnected` with its message once
/// another thread drops the last receiver, long before its timeout. The receiver is
/// dropped only after the send has entered its slow path (its `full_sends` count), so this is
/// the wait's disconnect, not the first try's. Fails if the drop does not wake the waiter (it
/// would wait out the timeout and say `Timeout`) or if the message is not handed back.
#[test]
fn a_timed_send_waiting_on_a_full_channel_fails_disconnected_when_the_receivers_go() {
    let (sent, took) = within("timed send, receivers go", || {
        let (tx, rx) = bounded::<u32>(1);
        tx.send(1).unwrap();
        let tx2 = tx.clone();
        let dropper = drop_once_a_send_waits(move || tx2.stats(), rx);
        let start = Instant::now();
        let sent = tx.send_timeout(2, WAIT);
        let took = start.elapsed();
        dropper.join().unwrap();
        assert!(tx.is_disconnected());
        (sent, took)
    });
    assert_eq!(sent, Err(SendTimeoutError::Disconnected(2)));
    assert!(took < WOKEN_WELL_BEFORE, "woken after {took:?}");
}

/// A recycling channel's `send_with_timeout` fails `Disconnected` without running its `fill`,
/// and hands that `fill` back, both ways: waiting on a full channel when another thread drops
/// the last receiver (woken long before its timeout), and at once once the receivers are
/// gone. Fails if a waiter sleeps through the disconnect, if `fill` runs on a channel nobody
/// reads, or if the error holds some other closure.
#[test]
fn a_timed_recycling_send_fails_disconnected_without_running_fill() {
    let (ran, took) = within("timed recycling send, receivers go", || {
        let (tx, rx) = recycling(1, String::new);
        tx.send_with(|s| s.push_str("queued")).unwrap();
        let tx2 = tx.clone();
        let dropper = drop_once_a_send_waits(move || tx2.stats(), rx);
        let ran = AtomicUsize::new(0);
        let fill = |s: &mut String| {
            ran.fetch_add(1, SeqCst);
            s.push_str("never sent");
        };
        let start = Instant::now();
        let waited = tx.send_with_timeout(fill, WAIT);
        let took = start.elapsed();
        dropper.join().unwrap();
        let Err(SendTimeoutError::Disconnected(fill)) = waited else {
            panic!("waiting send: {waited:?}, not Disconnected");
        };
        assert_eq!(ran.load(SeqCst), 0, "fill ran on a disconnected channel");
        // The closure handed back is the caller's own: running it counts.
        fill(&mut String::new());
        assert_eq!(ran.load(SeqCst), 1);
        // Already disconnected: the first try refuses.
        let again = tx.send_with_timeout(|_: &mut String| ran.fetch_add(1, SeqCst), Duration::MAX);
        assert!(again.unwrap_err().is_disconnected());
        (ran.load(SeqCst), took)
    });
    assert_eq!(ran, 1, "a fill ran after the receivers were gone");
    assert!(took < WOKEN_WELL_BEFORE, "woken after {took:?}");
}

/// A recycling channel's `recv_with_timeout`, waiting on an empty channel, returns
/// `Disconnected` without running `read` once another thread drops the last sender 20 ms in,
/// long before its timeout (and not before the drop: it really waited). Fails if the
/// receiver sleeps through the disconnect or `read` runs on nothing.
#[test]
fn a_timed_recycling_receive_fails_disconnected_when_the_senders_go() {
    let (got, took) = within("timed recycling receive, senders go", || {
        let (tx, rx) = recycling(2, String::new);
        let start = Instant::now();
        let dropper = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            drop(tx);
        });
        let ran = AtomicBool::new(false);
        let got = rx.recv_with_timeout(|_| ran.store(true, SeqCst), WAIT);
        let took = start.elapsed();
        dropper.join().unwrap();
        assert!(!ran.load(SeqCst), "read ran with no message");
        assert!(rx.is_disconnected());
        (got, took)
    });
    assert_eq!(got, Err(RecvTimeoutError::Disconnected));
    assert!(
        took >= Duration::from_millis(20),
        "returned before the drop"
    );
    assert!(took < WOKEN_WELL_BEFORE, "woken after {took:?}");
}

/// With its receivers gone, a recycling channel's `try_send_with` fails `Disconnected`, hands
/// `fill` back unrun, and both ends say they are disconnected (the sender once the receivers
/// go, the receiver once the senders go, with its queued message still there to take). Fails
/// if `fill` runs, if the error is `Full`, or if `is_disconnected` answers for the wrong side.
#[test]
fn a_recycling_try_send_after_the_receivers_go_fails_disconnected_without_running_fill() {
    let (tx, rx) = recycling(2, String::new);
    assert!(
        !tx.is_disconnected() && !rx.is_disconnected(),
        "both sides alive"
    );
    tx.send_with(|s| s.push_str("left")).unwrap();
    let rx2 = rx.clone();
    drop(rx);
    assert!(!tx.is_disconnected(), "a receiver is still alive");
    drop(rx2);
    assert!(tx.is_disconnected());
    let ran = std::cell::Cell::new(false);
    let sent = tx.try_send_with(|s: &mut String| {
        ran.set(true);
        s.len()
    });
    let Err(TrySendError::Disconnected(fill)) = sent else {
        panic!("{sent:?}, not Disconnected");
    };
    assert!(!ran.get(), "fill ran on a disconnected channel");
    // The closure handed back is the caller's own.
    assert_eq!(fill(&mut "abc".to_string()), 3);
    assert!(ran.get());

    let (tx, rx) = recycling(2, String::new);
    tx.send_with(|s| s.push_str("queued")).unwrap();
    drop(tx);
    assert!(rx.is_disconnected(), "every sender is gone");
    assert_eq!(rx.try_recv_with(|s| s.clone()), Ok("queued".to_string()));
    assert_eq!(
        rx.try_recv_with(|s| s.clone()),
        Err(TryRecvError::Disconnected)
    );
}

/// A send that times out on a full channel of 64 slots, which first spins waiting for a batch
/// of 4 free slots (`refill_batch`), then waits as any send does: `Timeout` with the message
/// back, within 2 s of a 5 ms timeout, and at once with a zero timeout; the same for a
/// recycling channel's `send_with_timeout`, whose `fill` never runs. Nothing queued is lost or
/// reordered, and each refused send counts as a full send. Fails if a timed send waits past
/// its deadline for a receiver that never comes, in the batch wait or after it, or if a
/// timed-out send changed the queue. The batch wait is a bounded spin (microseconds), so the
/// 5 ms deadline passes in the park after it; the spin's own deadline check, which only cuts it
/// short for the zero timeout, is beyond what this test can see.
#[test]
fn a_timed_send_on_a_full_channel_of_64_slots_times_out() {
    const CAP: usize = 64;
    let took = within("timed send, 64 slots", || {
        let (tx, rx) = bounded::<usize>(CAP);
        (0..CAP).for_each(|i| tx.send(i).unwrap());
        let start = Instant::now();
        let sent = tx.send_timeout(CAP, Duration::from_millis(5));
        let took = start.elapsed();
        assert_eq!(sent, Err(SendTimeoutError::Timeout(CAP)));
        assert_eq!(
            tx.send_timeout(CAP + 1, Duration::ZERO),
            Err(SendTimeoutError::Timeout(CAP + 1))
        );
        assert_eq!(tx.stats().full_sends, 2);
        assert!(rx.try_iter().eq(0..CAP), "the queue changed");

        let (tx, rx) = recycling(CAP, String::new);
        for i in 0..CAP {
            tx.send_with(|s| write!(s, "{i}").unwrap()).unwrap();
        }
        let ran = AtomicUsize::new(0);
        let fill = |s: &mut String| {
            ran.fetch_add(1, SeqCst);
            s.push_str("late");
        };
        let start = Instant::now();
        let sent = tx.send_with_timeout(fill, Duration::from_millis(5));
        let took_recycling = start.elapsed();
        assert!(sent.unwrap_err().is_timeout());
        let sent = tx.send_with_timeout(fill, Duration::ZERO);
        assert!(sent.unwrap_err().is_timeout());
        assert_eq!(ran.load(SeqCst), 0, "fill ran on a full channel");
        assert_eq!(tx.stats().full_sends, 2);
        for i in 0..CAP {
            assert_eq!(rx.try_recv_with(|s| s.clone()), Ok(i.to_string()));
        }
        assert!(rx.try_recv_with(|s| s.clone()).unwrap_err().is_empty());
        took.max(took_recycling)
    });
    assert!(
        took < Duration::from_secs(2),
        "a 5 ms timeout took {took:?}"
    );
}

/// Every end's `Debug` names the end and shows the channel's counts (depth, capacity, live
/// senders and receivers) without needing `T: Debug`, and its accessors agree: `len`,
/// `is_empty`, `is_full`, `capacity`, `stats`. Fails if an end prints another's name or stale
/// counts, or an accessor disagrees with the queue.
#[test]
fn every_end_debugs_its_counts_and_answers_its_accessors() {
    struct Opaque;
    let (tx, rx) = bounded::<Opaque>(2);
    let tx2 = tx.clone();
    assert!(tx.is_empty() && rx.is_empty() && !tx.is_full());
    tx.send(Opaque).unwrap();
    tx.send(Opaque).unwrap();
    assert!(tx.is_full() && !rx.is_empty());
    assert_eq!(
        (tx.len(), rx.len(), tx.capacity(), rx.capacity()),
        (2, 2, 2, 2)
    );
    assert_eq!(rx.stats(), tx.stats());
    assert_eq!((rx.stats().len, rx.stats().capacity), (2, 2));
    let sender = format!("{tx:?}");
    let receiver = format!("{rx:?}");
    for (text, name) in [(&sender, "Sender {"), (&receiver, "Receiver {")] {
        assert!(text.starts_with(name), "{text}");
        assert!(text.contains("len: 2, capacity: 2"), "{text}");
        assert!(text.contains("senders: 2, receivers: 1"), "{text}");
    }
    drop(tx2);
    assert!(format!("{rx:?}").contains("senders: 1, receivers: 1"));
    // The iterators' `Debug` is derived, so it needs `T: Debug` (the ends' does not).
    let (tx, rx) = bounded::<u8>(2);
    tx.send(7).unwrap();
    assert!(format!("{:?}", rx.iter()).starts_with("Iter { rx: Receiver {"));
    assert!(format!("{:?}", rx.try_iter()).starts_with("TryIter { rx: Receiver {"));
    let owned = format!("{:?}", rx.into_iter());
    assert!(owned.starts_with("IntoIter { rx: Receiver {"), "{owned}");
    assert!(owned.contains("len: 1, capacity: 2"), "{owned}");

    let (tx, rx) = recycling(3, String::new);
    tx.send_with(|s| s.push('x')).unwrap();
    let rx2 = rx.clone();
    assert!(!tx.is_empty() && !tx.is_full() && !rx.is_empty());
    assert_eq!(
        (tx.len(), rx.len(), tx.capacity(), rx.capacity()),
        (1, 1, 3, 3)
    );
    assert_eq!(tx.stats(), rx2.stats());
    let sender = format!("{tx:?}");
    let receiver = format!("{rx:?}");
    for (text, name) in [
        (&sender, "RecyclingSender {"),
        (&receiver, "RecyclingReceiver {"),
    ] {
        assert!(text.starts_with(name), "{text}");
        assert!(text.contains("len: 1, capacity: 3"), "{text}");
        assert!(text.contains("senders: 1, receivers: 2"), "{text}");
    }
    assert_eq!(rx2.recv_with(|s| s.clone()), Ok("x".to_string()));
    assert!(rx.is_empty() && tx.is_empty());
}
