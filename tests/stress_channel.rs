//! Bounded multi-thread storms on `thrifty::channel`, in the shapes users' programs have. Each
//! checks that nothing is lost or duplicated and that no thread hangs; none measures time.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::Duration;
use thrifty::channel::{bounded, recycling, RecvTimeoutError, TryRecvError};

/// Sums what the consumers got and checks it against what the producers sent.
fn check_sum(per_consumer: Vec<(u64, u64)>, producers: u64, per: u64) {
    let (count, sum): (u64, u64) = per_consumer
        .into_iter()
        .fold((0, 0), |(c, s), (c2, s2)| (c + c2, s + s2));
    assert_eq!(count, producers * per, "lost or duplicated messages");
    assert_eq!(sum, producers * (per * (per - 1) / 2));
}

/// Many producers and consumers, more threads than cores, tiny and larger capacities.
#[test]
fn more_threads_than_cores() {
    let threads = 2 * thread::available_parallelism().map_or(2, |n| n.get()) + 2;
    const PER: u64 = if cfg!(miri) { 50 } else { 5_000 };
    for cap in [1, 3, 256] {
        let (tx, rx) = bounded::<u64>(cap);
        let got = thread::scope(|s| {
            for _ in 0..threads {
                let tx = tx.clone();
                s.spawn(move || (0..PER).for_each(|i| tx.send(i).unwrap()));
            }
            drop(tx);
            let consumers: Vec<_> = (0..threads)
                .map(|_| {
                    let rx = rx.clone();
                    s.spawn(move || rx.iter().fold((0, 0), |(c, s), v| (c + 1, s + v)))
                })
                .collect();
            consumers.into_iter().map(|h| h.join().unwrap()).collect()
        });
        check_sum(got, threads as u64, PER);
    }
}

/// Work handed between threads through a pipeline of two stages, mixed blocking, try and
/// timeout calls, with batches taken by `recv_many`.
#[test]
fn pipeline_with_mixed_calls() {
    const N: u64 = if cfg!(miri) { 300 } else { 30_000 };
    let (a_tx, a_rx) = bounded::<u64>(8);
    let (b_tx, b_rx) = bounded::<u64>(2);
    let total = thread::scope(|s| {
        s.spawn(move || {
            for i in 0..N {
                let mut v = i;
                loop {
                    match a_tx.try_send(v) {
                        Ok(()) => break,
                        Err(e) => v = e.into_inner(),
                    }
                    thread::yield_now();
                }
            }
        });
        for _ in 0..2 {
            let (a_rx, b_tx) = (a_rx.clone(), b_tx.clone());
            s.spawn(move || {
                let mut batch = Vec::with_capacity(16);
                while a_rx.recv_many(&mut batch, 16) > 0 {
                    for v in batch.drain(..) {
                        let mut v = v * 2;
                        while let Err(e) = b_tx.send_timeout(v, Duration::from_micros(50)) {
                            v = e.into_inner();
                        }
                    }
                }
            });
        }
        drop((a_rx, b_tx));
        let mut total = 0;
        loop {
            match b_rx.recv_timeout(Duration::from_millis(1)) {
                Ok(v) => total += v,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break total,
            }
        }
    });
    assert_eq!(total, N * (N - 1));
}

/// Ends dropped while the other side is blocked: every blocked thread wakes, and every message
/// is received or dropped exactly once.
#[test]
fn drop_while_blocked() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Msg;
    impl Drop for Msg {
        fn drop(&mut self) {
            DROPS.fetch_add(1, SeqCst);
        }
    }
    for round in 0..if cfg!(miri) { 5 } else { 50 } {
        DROPS.store(0, SeqCst);
        let (tx, rx) = bounded::<Msg>(2);
        let sent = AtomicUsize::new(0);
        let received = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..3 {
                let tx = tx.clone();
                let sent = &sent;
                s.spawn(move || {
                    while tx.send(Msg).is_ok() {
                        sent.fetch_add(1, SeqCst);
                    }
                });
            }
            drop(tx);
            let rx2 = rx.clone();
            let received = &received;
            s.spawn(move || {
                for _ in 0..round {
                    if rx2.recv().is_ok() {
                        received.fetch_add(1, SeqCst);
                    }
                }
            });
            thread::sleep(Duration::from_micros(200));
            drop(rx); // the senders are blocked on a full channel, or soon will be
        });
        // Every message sent was received (and dropped by the receiver) or dropped with the
        // channel; the values handed back by failed sends were dropped by the senders.
        assert!(received.load(SeqCst) <= sent.load(SeqCst));
        assert_eq!(
            DROPS.load(SeqCst),
            sent.load(SeqCst) + 3,
            "round {round}: each sent message dropped once, plus one refused per sender"
        );
    }
}

/// The other side's last handle dropped while a `send_with` / `recv_with` closure runs: the
/// closure's own send or receive completes, the next one fails without running its closure, and
/// no thread hangs. Receivers dropped during a `fill`: every fill run is a send that succeeded,
/// and at most `capacity` of those (the queued ones, the one in progress among them) go
/// unreceived. Senders dropped during a `read`: every message sent is received, then the
/// receiver fails.
#[test]
fn close_during_closures() {
    const CAPACITY: usize = 2;
    // Rounds whose senders left while a read was seen running (the rest: after the last read).
    let mut during = 0;
    // The main thread's waits fail, rather than hang, if the other side never gets there (it
    // panicked, or the channel lost a wake-up).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let patience = |round: u64| {
        assert!(
            std::time::Instant::now() < deadline,
            "round {round}: the other side never got there"
        );
        thread::yield_now();
    };
    for round in 0..if cfg!(miri) { 4 } else { 40u64 } {
        // Messages the side that stays passes before the other side leaves.
        let before = 1 + round as usize % 7;
        let pause = Duration::from_micros(20 + round % 10 * 10);

        // Receivers leave while a `fill` runs.
        let (tx, rx) = recycling(CAPACITY, String::new);
        let (fills, inside) = (AtomicUsize::new(0), AtomicBool::new(false));
        let (sent, received) = thread::scope(|s| {
            let sender = s.spawn(|| {
                let mut sent = 0;
                while tx
                    .send_with(|m| {
                        fills.fetch_add(1, SeqCst);
                        inside.store(true, SeqCst);
                        m.push_str("message");
                        thread::sleep(pause);
                        inside.store(false, SeqCst);
                    })
                    .is_ok()
                {
                    sent += 1;
                }
                sent
            });
            // Receive `before` messages, then leave as soon as a fill is seen running, taking
            // what is queued meanwhile (a sender waiting on a full ring runs no fill).
            let mut received = 0;
            while received < before || !inside.load(SeqCst) {
                match rx.try_recv_with(|m| assert_eq!(m, "message")) {
                    Ok(()) => received += 1,
                    Err(TryRecvError::Empty) => patience(round),
                    Err(e) => panic!("round {round}: {e:?} with the sender alive"),
                }
            }
            drop(rx);
            (sender.join().unwrap(), received)
        });
        let fills = fills.into_inner();
        assert_eq!(fills, sent, "round {round}: a fill ran for a refused send");
        assert!(
            (received..=received + CAPACITY).contains(&sent),
            "round {round}: {sent} sent, {received} received before the receivers left"
        );

        // Senders leave while a `read` runs.
        let (tx, rx) = recycling(CAPACITY, String::new);
        let (reads, inside) = (AtomicUsize::new(0), AtomicBool::new(false));
        let received = thread::scope(|s| {
            let receiver = s.spawn(|| {
                let mut received = 0;
                while rx
                    .recv_with(|m| {
                        reads.fetch_add(1, SeqCst);
                        inside.store(true, SeqCst);
                        assert_eq!(m, "message");
                        thread::sleep(pause);
                        inside.store(false, SeqCst);
                    })
                    .is_ok()
                {
                    received += 1;
                }
                received
            });
            for _ in 0..before {
                tx.send_with(|m| m.push_str("message")).unwrap();
            }
            // Leave once a read is seen running, or once all are done (the receiver may have
            // taken them all before this thread looks).
            while !inside.load(SeqCst) && reads.load(SeqCst) < before {
                patience(round);
            }
            during += usize::from(inside.load(SeqCst));
            drop(tx);
            receiver.join().unwrap()
        });
        assert_eq!(
            reads.into_inner(),
            received,
            "round {round}: a read ran for a failed receive"
        );
        assert_eq!(
            received, before,
            "round {round}: messages lost after the senders left"
        );
    }
    assert!(during > 0, "no round's senders left during a read");
}

/// Thousands of small channels alive at once, each used briefly: nothing shared between them.
#[test]
fn thousands_of_channels() {
    let channels: Vec<_> = (0..if cfg!(miri) { 100 } else { 5_000 })
        .map(|_| bounded::<u32>(4))
        .collect();
    for (i, (tx, _)) in channels.iter().enumerate() {
        tx.send(i as u32).unwrap();
    }
    for (i, (_, rx)) in channels.iter().enumerate() {
        assert_eq!(rx.try_recv(), Ok(i as u32));
    }
}

/// The work-queue shape: one sender and far more receivers than messages in flight, so most
/// wake-ups find the message already taken by a receiver that never parked, and the woken one
/// waits again; half the receivers wait with short timeouts. Nothing is lost or duplicated,
/// and every receiver sees the disconnect.
#[test]
fn one_sender_and_many_more_receivers() {
    const RECEIVERS: usize = if cfg!(miri) { 8 } else { 100 };
    const PER: u64 = if cfg!(miri) { 100 } else { 10_000 };
    for cap in [1, 64] {
        let (tx, rx) = bounded::<u64>(cap);
        let got = thread::scope(|s| {
            let consumers: Vec<_> = (0..RECEIVERS)
                .map(|i| {
                    let rx = rx.clone();
                    s.spawn(move || {
                        let (mut count, mut sum) = (0, 0);
                        loop {
                            let v = if i % 2 == 0 {
                                match rx.recv() {
                                    Ok(v) => v,
                                    Err(_) => break,
                                }
                            } else {
                                match rx.recv_timeout(Duration::from_micros(50)) {
                                    Ok(v) => v,
                                    Err(RecvTimeoutError::Timeout) => continue,
                                    Err(RecvTimeoutError::Disconnected) => break,
                                }
                            };
                            count += 1;
                            sum += v;
                        }
                        (count, sum)
                    })
                })
                .collect();
            drop(rx);
            (0..PER).for_each(|i| tx.send(i).unwrap());
            drop(tx);
            consumers.into_iter().map(|h| h.join().unwrap()).collect()
        });
        check_sum(got, 1, PER);
    }
}
