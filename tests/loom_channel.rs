//! loom models of `thrifty::channel`: the claim/publish ring, the park/unpark handshake (no lost
//! wake-up: a model that loses one deadlocks, which loom reports), disconnect while blocked, and
//! timeouts. Capacities are 1 so that full and empty alternate on every message.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2
//! cargo test --release --test loom_channel`
#![cfg(loom)]

#[path = "common/panics.rs"]
mod panics;
use panics::{quiet_panics_containing, Ids};

use loom::thread;
use std::time::Duration;
use thrifty::channel::{
    bounded, recycling, RecvError, RecvTimeoutError, SendError, SendTimeoutError,
};

#[path = "common/loom.rs"]
mod loom_model;

fn model(f: impl Fn() + Sync + Send + 'static) {
    loom_model::model(f);
}

/// Two senders, one receiver, capacity 1: every message arrives once, each sender's in order,
/// and the blocked sender is always woken.
#[test]
fn loom_two_senders_one_receiver() {
    model(|| {
        let (tx, rx) = bounded::<u32>(1);
        let tx2 = tx.clone();
        let a = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        let b = thread::spawn(move || tx2.send(10).unwrap());
        let got: Vec<u32> = rx.iter().collect();
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        let from_a: Vec<_> = got.iter().copied().filter(|&v| v < 10).collect();
        assert_eq!(from_a, [1, 2], "per-producer FIFO");
        assert!(got.contains(&10));
    });
}

/// One sender, two receivers: each message goes to exactly one receiver, and both receivers see
/// the disconnect.
#[test]
fn loom_one_sender_two_receivers() {
    model(|| {
        let (tx, rx) = bounded::<u32>(1);
        let rx2 = rx.clone();
        let other = thread::spawn(move || rx2.iter().collect::<Vec<_>>());
        let sender = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        let mut got: Vec<u32> = rx.iter().collect();
        sender.join().unwrap();
        got.extend(other.join().unwrap());
        got.sort();
        assert_eq!(got, [1, 2]);
    });
}

/// A receiver blocked on an empty channel wakes when the last sender goes.
#[test]
fn loom_disconnect_wakes_blocked_receiver() {
    model(|| {
        let (tx, rx) = bounded::<u32>(1);
        let r = thread::spawn(move || rx.recv());
        drop(tx);
        assert_eq!(r.join().unwrap(), Err(RecvError));
    });
}

/// A sender blocked on a full channel wakes when the last receiver goes, and gets its value back;
/// the queued message is dropped exactly once (by the receiver's drop or the channel's), and the
/// value handed back not at all.
#[test]
fn loom_disconnect_wakes_blocked_sender() {
    model(|| {
        use loom::sync::atomic::Ordering::SeqCst;
        let drops = loom::sync::Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let (tx, rx) = bounded::<Counted>(1);
        tx.send(Counted(drops.clone())).unwrap();
        let blocked = Counted(drops.clone());
        let s = thread::spawn(move || tx.send(blocked));
        drop(rx);
        match s.join().unwrap() {
            Err(SendError(v)) => {
                // Both ends are gone: the channel, and the queued message with it.
                assert_eq!(
                    drops.load(SeqCst),
                    1,
                    "the queued message dropped other than once"
                );
                drop(v);
                assert_eq!(drops.load(SeqCst), 2);
            }
            Ok(()) => panic!("no receiver could have made room"),
        }
    });
}

/// Timeouts: a zero timeout never parks (loom has no clock), so this models the registration
/// and deregistration racing a send; the message is either received or still queued, never lost.
#[test]
fn loom_timeouts_lose_nothing() {
    model(|| {
        let (tx, rx) = bounded::<u32>(1);
        let s = thread::spawn(move || {
            let first = tx.send_timeout(1, Duration::ZERO);
            assert!(first.is_ok(), "the channel starts empty");
            matches!(tx.send_timeout(2, Duration::ZERO), Ok(()))
        });
        let mut got = Vec::new();
        match rx.recv_timeout(Duration::ZERO) {
            Ok(v) => got.push(v),
            Err(e) => assert_eq!(e, RecvTimeoutError::Timeout),
        }
        let second_sent = s.join().unwrap();
        got.extend(rx.try_iter());
        let want: &[u32] = if second_sent { &[1, 2] } else { &[1] };
        assert_eq!(got, want);
        let (tx, _rx) = bounded::<u32>(1);
        tx.send(0).unwrap();
        assert!(matches!(
            tx.send_timeout(1, Duration::ZERO),
            Err(SendTimeoutError::Timeout(1))
        ));
    });
}

/// Two receivers parked, one send, then the disconnect: the message goes to exactly one of
/// them and the other wakes for the disconnect; a wake-up spent on the wrong receiver is passed
/// on, never lost (a lost one deadlocks the model).
#[test]
fn loom_two_parked_receivers_one_message() {
    model(|| {
        let (tx, rx) = bounded::<u32>(1);
        let rx2 = rx.clone();
        let a = thread::spawn(move || rx.recv().ok());
        let b = thread::spawn(move || rx2.recv().ok());
        tx.send(1).unwrap();
        drop(tx);
        let mut got = [a.join().unwrap(), b.join().unwrap()];
        got.sort();
        assert_eq!(got, [None, Some(1)]);
    });
}

/// Two receivers, two sends with room for both: each receiver gets one message, whichever
/// order the parks, notifies and pass-ons take.
#[test]
fn loom_two_parked_receivers_both_served() {
    model(|| {
        let (tx, rx) = bounded::<u32>(2);
        let rx2 = rx.clone();
        let a = thread::spawn(move || rx.recv().unwrap());
        let b = thread::spawn(move || rx2.recv().unwrap());
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let mut got = [a.join().unwrap(), b.join().unwrap()];
        got.sort();
        assert_eq!(got, [1, 2]);
    });
}

/// The recycling channel: senders and a receiver wait on claimed slots (a closure runs there)
/// and are woken by the fenced publish.
#[test]
fn loom_recycling_hand_off() {
    model(|| {
        let (tx, rx) = recycling(1, String::new);
        let s = thread::spawn(move || {
            tx.send_with(|s| s.push('a')).unwrap();
            tx.send_with(|s| s.push('b')).unwrap();
        });
        let mut got = String::new();
        while let Ok(()) = rx.recv_with(|s| got.push_str(s)) {}
        s.join().unwrap();
        assert_eq!(got, "ab");
    });
}

/// A receiver's reset panics and leaves the slot holding its message; the send waiting for that
/// slot (capacity 1) must get it reset, on whichever thread the dirty mark was set.
#[test]
fn loom_recycling_reset_panic_after_receive_never_leaks() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    quiet_panics_containing("expected:");
    model(|| {
        let (tx, rx) = recycling(1, Ids::default);
        tx.send_with(|v| {
            v.ids.push(1);
            v.failing = 1;
        })
        .unwrap();
        let r = thread::spawn(move || {
            let first = catch_unwind(AssertUnwindSafe(|| rx.recv_with(|v| v.ids.clone())));
            assert!(first.is_err(), "the reset's panic reaches the receiver");
            rx.recv_with(|v| v.ids.clone())
        });
        let seen = tx
            .send_with(|v| {
                let seen = v.ids.clone();
                v.ids.push(2);
                seen
            })
            .unwrap();
        assert_eq!(seen, [] as [usize; 0], "`fill` got the value reset");
        assert_eq!(r.join().unwrap(), Ok(vec![2]));
    });
}

/// A `fill` panics and so does the guard's reset after it; then, on another thread, a send
/// waits for that same slot (capacity 1) while the receiver passes over it: the message it
/// sends there holds only itself. (The failed send runs before the other threads exist: loom's
/// lock cannot be taken again once a guard of it was dropped during a panic, which a notify
/// during the unwind would do with a receiver parked.)
#[test]
fn loom_recycling_failed_send_with_failed_reset_never_leaks() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    quiet_panics_containing("expected:");
    model(|| {
        let (tx, rx) = recycling(1, Ids::default);
        let failed = catch_unwind(AssertUnwindSafe(|| {
            tx.send_with(|v| {
                v.ids.push(1);
                v.failing = 1;
                panic!("expected: fill failed");
            })
        }));
        assert!(failed.is_err());
        let s = thread::spawn(move || tx.send_with(|v| v.ids.push(2)).unwrap());
        let got = rx.recv_with(|v| v.ids.clone());
        s.join().unwrap();
        assert_eq!(got, Ok(vec![2]));
        assert_eq!(rx.recv_with(|v| v.ids.len()), Err(RecvError));
    });
}

/// `recv_many` frees a batch of slots and wakes one sender for the batch (its first `recv`
/// wakes one too). Capacity 2, full, two senders blocked: after one `recv_many` of 2 the
/// receiver takes nothing more until both senders have returned, so a wake-up lost between a
/// sender's registration and the batch's notify leaves a sender parked beside a free slot for
/// ever (loom reports the deadlock). (With three senders and capacity 3, two wake-ups stand for
/// three slots and the woken sender's pass-on is needed too; that model deadlocks within
/// seconds with the pass-on removed, but takes over 5 minutes to pass at two preemptions.)
#[test]
fn loom_recv_many_wakes_every_sender_it_made_room_for() {
    model(|| {
        let (tx, rx) = bounded::<u32>(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let tx2 = tx.clone();
        let a = thread::spawn(move || tx.send(10).unwrap());
        let b = thread::spawn(move || tx2.send(20).unwrap());
        let mut got = Vec::new();
        assert_eq!(rx.recv_many(&mut got, 2), 2);
        a.join().unwrap();
        b.join().unwrap();
        got.extend(rx.try_iter());
        assert_eq!(&got[..2], [1, 2], "FIFO: the queued messages first");
        got.sort();
        assert_eq!(got, [1, 2, 10, 20]);
    });
}

/// A message's drops, counted.
struct Counted(loom::sync::Arc<loom::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
    }
}

/// A send (with room) races the last receiver's drop, which closes pushes: the send either
/// fails and hands its message back, or succeeds and the channel drops the message when it
/// goes; in every order the message is dropped exactly once (a push whose claim lands as the
/// receiver goes must neither leak its message nor have it dropped twice).
#[test]
fn loom_a_send_racing_the_last_receivers_drop_drops_its_message_once() {
    model(|| {
        let drops = loom::sync::Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let (tx, rx) = bounded::<Counted>(1);
        let s = {
            let drops = drops.clone();
            thread::spawn(move || match tx.send(Counted(drops)) {
                Ok(()) => true,
                Err(SendError(v)) => {
                    drop(v);
                    false
                }
            })
        };
        drop(rx);
        let sent = s.join().unwrap();
        assert_eq!(
            drops.load(loom::sync::atomic::Ordering::SeqCst),
            1,
            "sent: {sent}: the message dropped other than once"
        );
    });
}
