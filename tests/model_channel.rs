//! proptest: random op sequences on a channel against a `VecDeque` model, and a multi-thread
//! run that counts every message exactly once with per-producer FIFO.
//!
//! The sequence test is single-threaded, so every answer is exact: `try_send` is `Full` exactly
//! when the model holds `capacity` messages, `try_recv` returns the model's front, disconnects
//! follow the documented rules, and `stats()` matches the model's depth and full count, and its
//! peak within the documented sampling.
//!
//! `PROPTEST_CASES=n` sets the case count (default 256).

#![cfg(not(loom))]

use proptest::prelude::*;
use std::collections::VecDeque;
use std::time::Duration;
use thrifty::channel::{bounded, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};

#[derive(Debug, Clone)]
enum Op {
    TrySend,
    SendTimeout,
    TryRecv,
    RecvTimeout,
    RecvMany(usize),
    CloneSender,
    DropSender,
    CloneReceiver,
    DropReceiver,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::TrySend),
        2 => Just(Op::SendTimeout),
        6 => Just(Op::TryRecv),
        2 => Just(Op::RecvTimeout),
        2 => (0usize..5).prop_map(Op::RecvMany),
        1 => Just(Op::CloneSender),
        1 => Just(Op::DropSender),
        1 => Just(Op::CloneReceiver),
        1 => Just(Op::DropReceiver),
    ]
}

proptest! {
    #[test]
    fn ops_match_a_vecdeque(cap in 1usize..6, ops in prop::collection::vec(op(), 1..120)) {
        let (tx, rx) = bounded::<u32>(cap);
        let mut senders = vec![tx];
        let mut receivers = vec![rx];
        let mut model = VecDeque::new();
        let (mut next, mut peak, mut full) = (0u32, 0usize, 0u64);
        let short = Duration::from_micros(1);
        for op in ops {
            let receivers_gone = receivers.is_empty();
            let senders_gone = senders.is_empty();
            match op {
                Op::TrySend | Op::SendTimeout if senders_gone => {}
                Op::TrySend => {
                    let r = senders[0].try_send(next);
                    if receivers_gone {
                        prop_assert_eq!(r, Err(TrySendError::Disconnected(next)));
                    } else if model.len() == cap {
                        full += 1;
                        prop_assert_eq!(r, Err(TrySendError::Full(next)));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        model.push_back(next);
                    }
                    next += 1;
                }
                Op::SendTimeout => {
                    let r = senders[senders.len() - 1].send_timeout(next, short);
                    if receivers_gone {
                        prop_assert_eq!(r, Err(SendTimeoutError::Disconnected(next)));
                    } else if model.len() == cap {
                        full += 1;
                        prop_assert_eq!(r, Err(SendTimeoutError::Timeout(next)));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        model.push_back(next);
                    }
                    next += 1;
                }
                Op::TryRecv | Op::RecvTimeout | Op::RecvMany(_) if receivers_gone => {}
                Op::TryRecv => {
                    let want = match model.pop_front() {
                        Some(v) => Ok(v),
                        None if senders_gone => Err(TryRecvError::Disconnected),
                        None => Err(TryRecvError::Empty),
                    };
                    prop_assert_eq!(receivers[0].try_recv(), want);
                }
                Op::RecvTimeout => {
                    let want = match model.pop_front() {
                        Some(v) => Ok(v),
                        None if senders_gone => Err(RecvTimeoutError::Disconnected),
                        None => Err(RecvTimeoutError::Timeout),
                    };
                    prop_assert_eq!(receivers[receivers.len() - 1].recv_timeout(short), want);
                }
                Op::RecvMany(max) => {
                    // recv_many blocks for the first message: only call it when one is queued
                    // or none ever will be.
                    if model.is_empty() && !senders_gone {
                        continue;
                    }
                    let mut out = Vec::new();
                    let n = receivers[0].recv_many(&mut out, max);
                    let want: Vec<u32> = model.drain(..max.min(model.len())).collect();
                    prop_assert_eq!(n, want.len());
                    prop_assert_eq!(out, want);
                }
                Op::CloneSender if !senders_gone => senders.push(senders[0].clone()),
                Op::DropSender => { senders.pop(); }
                Op::CloneReceiver if !receivers_gone => receivers.push(receivers[0].clone()),
                Op::DropReceiver => {
                    receivers.pop();
                    if receivers.is_empty() {
                        model.clear(); // the last receiver drops what is queued
                    }
                }
                Op::CloneSender | Op::CloneReceiver => {}
            }
            peak = peak.max(model.len());
            let stats = senders.first().map(|s| s.stats()).or(receivers.first().map(|r| r.stats()));
            if let Some(stats) = stats {
                prop_assert_eq!(stats.len, model.len());
                prop_assert_eq!(stats.capacity, cap);
                // Sampled every 256th index (once a lap below 256 slots), exact once the
                // channel was full (stats.rs).
                prop_assert!(stats.high_water <= peak);
                prop_assert!(stats.high_water + 255.min(cap - 1) >= peak);
                if full > 0 {
                    prop_assert_eq!(stats.high_water, cap);
                }
                prop_assert_eq!(stats.full_sends, full);
            }
        }
    }
}

/// Several producers and consumers on real threads: every message arrives exactly once, and
/// each consumer sees each producer's messages in order.
#[test]
fn threads_count_every_message_once_in_producer_order() {
    const PRODUCERS: u64 = 3;
    // 1 000 under Miri, which runs some thousand times slower.
    const PER: u64 = if cfg!(miri) { 1_000 } else { 20_000 };
    for cap in [1, 7, 64] {
        let (tx, rx) = bounded::<(u64, u64)>(cap);
        let seen: Vec<Vec<(u64, u64)>> = std::thread::scope(|s| {
            for p in 0..PRODUCERS {
                let tx = tx.clone();
                s.spawn(move || (0..PER).for_each(|i| tx.send((p, i)).unwrap()));
            }
            drop(tx);
            let consumers: Vec<_> = (0..3)
                .map(|_| {
                    let rx = rx.clone();
                    s.spawn(move || rx.iter().collect::<Vec<_>>())
                })
                .collect();
            consumers.into_iter().map(|c| c.join().unwrap()).collect()
        });
        // Each producer's messages as received, by whichever consumer: sorted, exactly 0..PER
        // (a duplicate beside a lost one would keep a count right, not this).
        let mut got_of = vec![Vec::new(); PRODUCERS as usize];
        for got in &seen {
            let mut last = vec![None; PRODUCERS as usize];
            for &(p, i) in got {
                assert!(last[p as usize] < Some(i), "producer {p} reordered at {i}");
                last[p as usize] = Some(i);
                got_of[p as usize].push(i);
            }
        }
        for (p, mut got) in got_of.into_iter().enumerate() {
            got.sort_unstable();
            assert!(
                got.iter().copied().eq(0..PER),
                "cap {cap}: producer {p}'s messages lost or duplicated"
            );
        }
    }
}
