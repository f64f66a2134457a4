//! Wake-up shapes of `thrifty::channel` that a single send/receive pair never reaches: one
//! receive freeing several slots at once (`recv_many`), and recycling-channel waiters woken for
//! a message queued behind a slot another thread still holds. Each test fails by a timeout on a
//! `std` channel, then frees whoever is still asleep, so a regression fails instead of hanging.

#![cfg(not(loom))]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use thrifty::channel::{bounded, recycling};

/// Long enough for a woken thread on a busy 2-core machine, stalled for seconds; a thread left
/// asleep never comes. A woken one comes at once, so the length costs only a failing run.
const PATIENCE: Duration = Duration::from_secs(60);

/// Time for a thread that found the channel full or empty to get past its spin and park.
fn let_them_park() {
    thread::sleep(Duration::from_millis(if cfg!(miri) { 50 } else { 200 }));
}

#[test]
fn recv_many_frees_room_for_every_parked_sender() {
    const CAP: usize = 4;
    let (tx, rx) = bounded(CAP);
    (0..CAP).for_each(|i| tx.send(i).unwrap());
    let (done, finished) = mpsc::channel();
    let senders: Vec<_> = (0..CAP)
        .map(|i| {
            let (tx, done) = (tx.clone(), done.clone());
            thread::spawn(move || {
                let sent = tx.send(10 + i).is_ok();
                done.send(()).unwrap();
                sent
            })
        })
        .collect();
    while tx.stats().full_sends < CAP as u64 {
        thread::yield_now();
    }
    let_them_park();
    let mut batch = Vec::new();
    assert_eq!(rx.recv_many(&mut batch, CAP), CAP);
    assert_eq!(batch, [0, 1, 2, 3]);
    let woken = (0..CAP)
        .take_while(|_| finished.recv_timeout(PATIENCE).is_ok())
        .count();
    drop(rx); // frees any sender still asleep, so the joins below end either way
    let sent = senders
        .into_iter()
        .map(|s| s.join().unwrap())
        .filter(|&s| s)
        .count();
    assert_eq!(woken, CAP, "senders left asleep beside free slots");
    assert_eq!(sent, CAP);
}

#[test]
fn a_recycling_receiver_woken_for_a_message_behind_a_busy_slot_still_gets_it() {
    // Receivers R1 and R2 park on an empty channel. Sender A claims position 0 and stays in
    // its closure; sender B sends position 1, which wakes R1; R1 finds position 0 still A's
    // and parks again. A finishes, which wakes R2, and R2 takes position 0 and leaves. R1 must
    // then get position 1.
    let (tx, rx) = recycling(4, Vec::<u32>::new);
    let (got, results) = mpsc::channel();
    let receive = |rx: thrifty::channel::RecyclingReceiver<Vec<u32>>, got: mpsc::Sender<_>| {
        thread::spawn(move || {
            let v = rx.recv_with(|v| v[0]);
            got.send(v.ok()).unwrap();
        })
    };
    let r1 = receive(rx.clone(), got.clone());
    let_them_park();
    let r2 = receive(rx.clone(), got.clone());
    let_them_park();
    let (release, wait) = mpsc::channel::<()>();
    let a = {
        let tx = tx.clone();
        thread::spawn(move || {
            tx.send_with(|v| {
                wait.recv().unwrap();
                v.push(1);
            })
            .unwrap();
        })
    };
    while tx.is_empty() {
        thread::yield_now(); // until A holds position 0
    }
    tx.send_with(|v| v.push(2)).unwrap();
    let_them_park();
    release.send(()).unwrap();
    a.join().unwrap();
    let mut seen: Vec<u32> = (0..2)
        .map_while(|_| results.recv_timeout(PATIENCE).ok().flatten())
        .collect();
    drop(tx); // frees a receiver still asleep
    r1.join().unwrap();
    r2.join().unwrap();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [1, 2],
        "a receiver left asleep beside a queued message"
    );
}
