//! Unit tests of `channel`, small enough for Miri (`cargo +nightly miri test --lib channel`).
#![cfg(not(loom))]

use super::*;
use crate::sync::{AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::Duration;

/// Counts its drops in a shared counter.
struct Counted<'a>(&'a AtomicUsize);
impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn fifo_and_exact_capacity() {
    for cap in [1, 2, 3, 5, 8] {
        let (tx, rx) = bounded(cap);
        for lap in 0..3 {
            for i in 0..cap {
                tx.try_send(lap * 100 + i).unwrap();
            }
            assert!(tx.is_full());
            assert_eq!(tx.try_send(7), Err(TrySendError::Full(7)));
            assert_eq!(rx.len(), cap);
            for i in 0..cap {
                assert_eq!(rx.try_recv(), Ok(lap * 100 + i));
            }
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        }
    }
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn zero_capacity_panics() {
    let _ = bounded::<u8>(0);
}

#[test]
fn disconnect_from_senders_drains_first() {
    let (tx, rx) = bounded(4);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    assert!(rx.is_disconnected());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(1)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn disconnect_from_receivers_hands_values_back_and_drops_queued_once() {
    let drops = AtomicUsize::new(0);
    let (tx, rx) = bounded(4);
    tx.send(Counted(&drops)).unwrap();
    tx.send(Counted(&drops)).unwrap();
    let rx2 = rx.clone();
    drop(rx);
    assert_eq!(drops.load(SeqCst), 0, "a receiver is still alive");
    drop(rx2);
    assert_eq!(
        drops.load(SeqCst),
        2,
        "the last receiver drops what is queued"
    );
    assert!(tx.is_disconnected());
    let back = tx.try_send(Counted(&drops)).unwrap_err();
    assert!(back.is_disconnected());
    drop(back);
    assert!(tx.send(Counted(&drops)).is_err());
    drop(tx);
    assert_eq!(drops.load(SeqCst), 4);
}

#[test]
fn queued_messages_dropped_with_the_channel() {
    let drops = AtomicUsize::new(0);
    let (tx, rx) = bounded(3);
    for _ in 0..3 {
        tx.send(Counted(&drops)).unwrap();
    }
    drop(rx.recv().unwrap());
    drop(tx);
    assert_eq!(drops.load(SeqCst), 1);
    drop(rx);
    assert_eq!(drops.load(SeqCst), 3);
}

#[test]
fn timeouts_hand_values_back() {
    let (tx, rx) = bounded(1);
    tx.send(1).unwrap();
    assert_eq!(
        tx.send_timeout(2, Duration::from_millis(5)),
        Err(SendTimeoutError::Timeout(2))
    );
    assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Ok(1));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(5)),
        Err(RecvTimeoutError::Timeout)
    );
    assert_eq!(tx.send_timeout(3, Duration::MAX), Ok(()));
    assert_eq!(tx.stats().full_sends, 1);
}

#[test]
fn blocked_ends_wake_on_disconnect() {
    let (tx, rx) = bounded::<u8>(1);
    let waiter = thread::spawn(move || rx.recv());
    thread::sleep(Duration::from_millis(10));
    drop(tx);
    assert_eq!(waiter.join().unwrap(), Err(RecvError));

    let (tx, rx) = bounded::<u8>(1);
    tx.send(0).unwrap();
    let waiter = thread::spawn(move || tx.send(1));
    thread::sleep(Duration::from_millis(10));
    drop(rx);
    assert_eq!(waiter.join().unwrap(), Err(SendError(1)));
}

#[test]
fn blocking_hand_off_across_threads() {
    let (tx, rx) = bounded(2);
    let producer = thread::spawn(move || {
        for i in 0..200u32 {
            tx.send(i).unwrap();
        }
    });
    let got: Vec<u32> = rx.iter().collect();
    producer.join().unwrap();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
}

#[test]
fn recv_many_takes_a_batch() {
    let (tx, rx) = bounded(8);
    for i in 0..6 {
        tx.send(i).unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(rx.recv_many(&mut out, 0), 0);
    assert_eq!(rx.recv_many(&mut out, 4), 4);
    assert_eq!(rx.recv_many(&mut out, 4), 2);
    assert_eq!(out, [0, 1, 2, 3, 4, 5]);
    drop(tx);
    assert_eq!(rx.recv_many(&mut out, 4), 0);
}

#[test]
fn stats_track_depth_peak_and_full_sends() {
    let (tx, rx) = bounded(3);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    rx.recv().unwrap();
    tx.send(3).unwrap();
    tx.send(4).unwrap();
    assert!(tx.try_send(5).is_err());
    let s = rx.stats();
    assert_eq!(
        (s.len, s.capacity, s.high_water, s.full_sends),
        (3, 3, 3, 1)
    );
}

#[test]
fn the_sampled_high_water_mark_stays_within_255_of_the_peak() {
    // One send in 256 samples the depth: messages 0, 256, 512, ... (by number, across laps).
    let (tx, rx) = bounded(1024);
    let peak_at = |sent: usize| {
        for i in 0..sent {
            tx.send(i).unwrap();
        }
        let s = rx.stats();
        while rx.try_recv().is_ok() {}
        s.high_water
    };
    assert_eq!(peak_at(300), 257, "sampled at message 256, with 257 queued");
    assert_eq!(
        peak_at(200),
        257,
        "messages 300..500: none sampled, the mark holds"
    );
    // Messages 500..1100 (across the lap at 1024): 512, 768 and 1024 sampled, at 13, 269, 525.
    assert_eq!(peak_at(600), 525);
    let (small, small_rx) = bounded(16);
    for _ in 0..40 {
        for i in 0..16 {
            small.send(i).unwrap();
        }
        while small_rx.try_recv().is_ok() {}
    }
    // 640 messages through 16 slots: numbers 0, 256 and 512 sampled, each the first of a lap.
    assert_eq!(small_rx.stats().high_water, 1);
}

#[test]
fn recycling_keeps_buffers() {
    let (tx, rx) = recycling(2, || String::with_capacity(32));
    for i in 0..10 {
        tx.send_with(|s| {
            assert!(s.is_empty(), "slots come back reset");
            assert!(s.capacity() >= 32, "and keep their buffer");
            s.push_str(&"x".repeat(i));
        })
        .unwrap();
        assert_eq!(rx.recv_with(|s| s.len()), Ok(i));
    }
    assert!(tx.try_send_with(|s| s.push('a')).is_ok());
    assert!(tx.try_send_with(|s| s.push('b')).is_ok());
    assert!(tx.try_send_with(|s| s.push('c')).unwrap_err().is_full());
    assert_eq!(rx.try_recv_with(|s| s.clone()), Ok("a".into()));
    drop(tx);
    assert_eq!(
        rx.recv_with_timeout(|s| s.clone(), Duration::from_millis(1)),
        Ok("b".into())
    );
    assert_eq!(rx.recv_with(|s| s.clone()), Err(RecvError));
}

#[test]
fn recycling_survives_panicking_closures() {
    let (tx, rx) = recycling(2, Vec::<u8>::new);
    let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tx.send_with(|v| {
            v.push(1);
            panic!("fill failed");
        })
    }));
    assert!(sent.is_err());
    tx.send_with(|v| v.push(2)).unwrap();
    assert_eq!(
        rx.recv_with(|v| v.clone()),
        Ok(vec![2]),
        "the failed send is skipped"
    );
    tx.send_with(|v| v.push(3)).unwrap();
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rx.recv_with(|_| panic!("read failed"))
    }));
    assert!(read.is_err());
    tx.send_with(|v| v.push(4)).unwrap();
    tx.send_with(|v| v.push(5)).unwrap();
    assert_eq!(rx.recv_with(|v| v.clone()), Ok(vec![4]));
    assert_eq!(rx.recv_with(|v| v.clone()), Ok(vec![5]));
}

#[test]
fn recycling_close_during_closure_neither_hangs_nor_crashes() {
    let (tx, rx) = recycling(1, String::new);
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let sender = thread::spawn(move || {
        tx.send_with(|s| {
            entered_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            s.push_str("late");
        })
        .is_ok()
    });
    entered_rx.recv().unwrap();
    drop(rx); // the receiver goes while the closure runs
    go_tx.send(()).unwrap();
    assert!(sender.join().unwrap(), "the claimed slot was already ours");
}

#[test]
fn ends_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Sender<String>>();
    check::<Receiver<String>>();
    check::<RecyclingSender<String>>();
    check::<RecyclingReceiver<String>>();
    check::<TrySendError<String>>();
}

/// As std's and crossbeam's: usable across `catch_unwind` (a panic leaves the channel whole).
#[test]
fn ends_are_unwind_safe() {
    use std::panic::{RefUnwindSafe, UnwindSafe};
    fn check<T: UnwindSafe + RefUnwindSafe>() {}
    check::<Sender<String>>();
    check::<Receiver<String>>();
    check::<RecyclingSender<String>>();
    check::<RecyclingReceiver<String>>();
    check::<super::IntoIter<String>>();
    let (tx, rx) = super::bounded(1);
    let panicked = std::panic::catch_unwind(|| {
        tx.send(1).unwrap();
        panic!("after a send");
    });
    assert!(panicked.is_err());
    assert_eq!(rx.recv(), Ok(1), "the message sent before the panic");
    tx.send(2).unwrap();
    assert_eq!(rx.recv(), Ok(2), "and the ends still work");
}

#[test]
fn errors_debug_without_t_debug_and_display() {
    struct Opaque;
    let e = TrySendError::Full(Opaque);
    assert_eq!(format!("{e:?}"), "Full(..)");
    assert_eq!(e.to_string(), "sending on a full channel");
    assert_eq!(
        RecvError.to_string(),
        "receiving on an empty channel whose senders are all gone"
    );
}

/// A value whose next `reset` panics when `panic_next` is set.
struct Touchy {
    v: u32,
    panic_next: bool,
}

impl crate::Reset for Touchy {
    fn reset(&mut self) {
        self.v = 0;
        if std::mem::take(&mut self.panic_next) {
            panic!("reset failed");
        }
    }
}

#[test]
fn a_panicking_reset_does_not_wedge_the_recycling_channel() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let (tx, rx) = recycling(2, || Touchy {
        v: 0,
        panic_next: false,
    });
    // After a receive: the slot is published anyway and the reset's panic reaches the caller.
    tx.send_with(|t| {
        t.v = 1;
        t.panic_next = true;
    })
    .unwrap();
    let read = catch_unwind(AssertUnwindSafe(|| rx.recv_with(|t| t.v)));
    assert!(read.is_err(), "the reset's panic propagates");
    // While a send's `fill` unwinds: a second panic must not abort, and nothing is sent.
    let fill = catch_unwind(AssertUnwindSafe(|| {
        tx.send_with(|t| {
            t.panic_next = true;
            panic!("fill failed");
        })
    }));
    assert!(fill.is_err());
    assert_eq!(rx.try_recv_with(|t| t.v), Err(TryRecvError::Empty));
    // The ring goes on past both slots, lap after lap.
    for lap in 0..3 {
        for i in 0..2 {
            tx.send_with(|t| t.v = lap * 10 + i).unwrap();
        }
        for i in 0..2 {
            assert_eq!(rx.recv_with(|t| t.v), Ok(lap * 10 + i));
        }
    }
}

/// A send refused because the next slot is still inside a `recv_with` closure counts as a full
/// send, but the channel was never full: the high-water mark must not jump to the capacity.
#[test]
fn a_slot_still_being_read_is_not_a_full_channel_in_the_stats() {
    let (tx, rx) = recycling(2, || Touchy {
        v: 0,
        panic_next: false,
    });
    let (inside, wait_inside) = std::sync::mpsc::channel();
    let (release, wait_release) = std::sync::mpsc::channel::<()>();
    tx.send_with(|v| v.v = 1).unwrap();
    thread::scope(|s| {
        let rx2 = rx.clone();
        let reader = s.spawn(move || {
            rx2.recv_with(|v| {
                inside.send(()).unwrap();
                wait_release.recv().unwrap();
                v.v
            })
        });
        wait_inside.recv().unwrap();
        // Slot 1 takes a message and gives it up: one message queued at most.
        tx.send_with(|v| v.v = 2).unwrap();
        assert_eq!(rx.recv_with(|v| v.v), Ok(2));
        // The next position is slot 0 again, still inside the reader's closure.
        let refused = tx.try_send_with(|v| v.v = 3).is_err_and(|e| e.is_full());
        let stats = tx.stats();
        // Free the reader before asserting: a failed assertion must not hang the scope.
        release.send(()).unwrap();
        assert_eq!(reader.join().unwrap(), Ok(1));
        assert!(refused);
        assert_eq!(stats.full_sends, 1);
        assert!(stats.high_water < 2, "never full, yet {stats:?}");
    });
    tx.send_with(|v| v.v = 4).unwrap();
    tx.send_with(|v| v.v = 5).unwrap();
    assert!(tx.try_send_with(|v| v.v = 6).unwrap_err().is_full());
    assert_eq!(
        tx.stats().high_water,
        2,
        "a full channel still records its capacity"
    );
}

/// A buffer whose `reset` panics, before clearing anything, while `failing` is above 0 (each
/// panic uses one up): a reset that fails leaves the old contents in place.
struct Sticky {
    items: Vec<u32>,
    failing: u32,
}

impl crate::Reset for Sticky {
    fn reset(&mut self) {
        if self.failing > 0 {
            self.failing -= 1;
            panic!("reset failed");
        }
        self.items.clear();
    }
}

fn sticky() -> Sticky {
    Sticky {
        items: Vec::new(),
        failing: 0,
    }
}

/// Runs `f`, which must panic with `message`.
fn panics_with<R>(message: &str, f: impl FnOnce() -> R) {
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .err()
        .unwrap_or_else(|| panic!("expected a panic with {message:?}"));
    let got = panic.downcast_ref::<&str>().copied();
    assert_eq!(got, Some(message));
}

/// A receive whose reset panics leaves the slot holding the message it read: the next send into
/// that slot must still get it reset, and the receiver only the new message.
#[test]
fn a_reset_that_panics_after_a_receive_never_reaches_the_next_message() {
    let (tx, rx) = recycling(1, sticky);
    tx.send_with(|b| {
        b.items.push(1);
        b.failing = 1;
    })
    .unwrap();
    panics_with("reset failed", || rx.recv_with(|b| b.items.len()));
    let seen = tx
        .send_with(|b| {
            let seen = b.items.clone();
            b.items.push(2);
            seen
        })
        .unwrap();
    assert_eq!(seen, [] as [u32; 0], "`fill` got the value reset");
    assert_eq!(rx.recv_with(|b| b.items.clone()), Ok(vec![2]));
}

/// A receive whose reset panics after `read` returned: the value `read` returned never reaches
/// the caller (the call unwinds), so it is dropped during the unwind, not leaked. (A panic in a
/// local's drop after the result sits in the return place leaks the result: rust-lang/rust#47949;
/// the receive drops its guard while the result is still a local.)
#[test]
fn a_reset_that_panics_after_a_receive_drops_what_read_returned() {
    struct Counted<'a>(&'a AtomicUsize);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let dropped = AtomicUsize::new(0);
    let (tx, rx) = recycling(1, sticky);
    let read = |_: &mut Sticky| Counted(&dropped);
    let later = Duration::from_secs(10);
    for i in 0..4 {
        tx.send_with(|b| b.failing = 1).unwrap();
        panics_with("reset failed", || match i {
            0 => drop(rx.recv_with(read)),
            1 => drop(rx.try_recv_with(read)),
            2 => drop(rx.recv_with_timeout(read, later)),
            _ => drop(rx.recv_with_deadline(read, std::time::Instant::now() + later)),
        });
        assert_eq!(
            dropped.load(SeqCst),
            i + 1,
            "receive {i}: the result was leaked"
        );
    }
}

/// A `fill` that panics, then a reset that panics too: nothing is sent, and the next message
/// landing in that slot carries only what its own `fill` wrote.
#[test]
fn a_failed_send_whose_reset_panics_never_reaches_the_next_message() {
    let (tx, rx) = recycling(2, sticky);
    panics_with("fill failed", || {
        tx.send_with(|b| {
            b.items.push(1);
            b.failing = 1;
            panic!("fill failed");
        })
    });
    tx.send_with(|b| b.items.push(2)).unwrap();
    assert_eq!(
        rx.recv_with(|b| b.items.clone()),
        Ok(vec![2]),
        "slot 0 skipped"
    );
    tx.send_with(|b| b.items.push(3)).unwrap(); // slot 0 again
    assert_eq!(rx.recv_with(|b| b.items.clone()), Ok(vec![3]));
    assert_eq!(
        rx.try_recv_with(|b| b.items.clone()),
        Err(TryRecvError::Empty)
    );
}

/// A slot whose reset keeps panicking: each send that lands in it fails with that panic, its
/// `fill` not run, and nothing is delivered; once a reset succeeds, sends go through clean.
#[test]
fn a_send_into_a_slot_whose_reset_keeps_panicking_fails_and_a_retry_succeeds() {
    let (tx, rx) = recycling(1, sticky);
    tx.send_with(|b| {
        b.items.push(1);
        // The receiver's reset, then the next send's and its guard's: three failures.
        b.failing = 3;
    })
    .unwrap();
    panics_with("reset failed", || rx.recv_with(|b| b.items.len()));
    let ran = AtomicUsize::new(0);
    panics_with("reset failed", || {
        tx.send_with(|b| {
            ran.fetch_add(1, SeqCst);
            b.items.push(2);
        })
    });
    assert_eq!(ran.load(SeqCst), 0, "`fill` never sees the stale value");
    // The failed send holds the only slot until a receiver passes over it.
    assert_eq!((tx.len(), tx.is_full()), (1, true));
    assert!(tx.try_send_with(|b| b.items.push(3)).unwrap_err().is_full());
    assert_eq!(
        rx.try_recv_with(|b| b.items.clone()),
        Err(TryRecvError::Empty)
    );
    // The retry lands in the same slot, still unreset: this time its reset works.
    let seen = tx
        .send_with(|b| {
            let seen = b.items.clone();
            b.items.push(4);
            seen
        })
        .unwrap();
    assert_eq!(seen, [] as [u32; 0]);
    assert_eq!(rx.recv_with(|b| b.items.clone()), Ok(vec![4]));
    // And the slot is clean from then on.
    tx.send_with(|b| b.items.push(5)).unwrap();
    assert_eq!(rx.recv_with(|b| b.items.clone()), Ok(vec![5]));
}

/// A receive that waits goes straight to its wait when nothing is published (no empty check
/// first), and still sees a message queued before it, a disconnect, and its deadline.
#[test]
fn waiting_receives_see_messages_disconnects_and_deadlines() {
    let (tx, rx) = bounded::<u32>(4);
    assert_eq!(
        rx.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    );
    tx.send(7).unwrap();
    assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(7));
    tx.send(8).unwrap();
    assert_eq!(rx.recv(), Ok(8));
    drop(tx);
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)),
        Err(RecvTimeoutError::Disconnected)
    );
    let (tx, rx) = super::recycling(4, String::new);
    assert_eq!(
        rx.recv_with_timeout(|s| s.clone(), Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    );
    tx.send_with(|s| s.push('a')).unwrap();
    assert_eq!(rx.recv_with(|s| s.clone()), Ok("a".to_string()));
    drop(tx);
    assert_eq!(rx.recv_with(|s| s.len()), Err(RecvError));
}

/// A receive whose deadline has passed still waits for a message another thread is moving in
/// (claimed, not yet published) and takes it, as `recv_timeout` promises; the first try, which
/// skips the empty check, leaves that to the wait.
#[test]
fn a_wait_past_its_deadline_takes_a_message_being_moved_in() {
    use super::chan::{Chan, OnBusy};
    let chan = Chan::<u32>::new(4, |_| 0);
    let claim = chan.ring.start_push().expect("room");
    assert!(chan.claim_recv_first().is_none());
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            chan.publish_send(claim, OnBusy::Spin);
        });
        let got = chan.claim_recv_slow(OnBusy::Spin, Some(std::time::Instant::now()));
        chan.publish_recv(got.expect("the message moved in"), OnBusy::Spin);
    });
}

/// The receivers' spin hint holds once every sender is gone, so a waiting receiver sees the
/// disconnect at its next poll instead of at the end of its spin.
#[test]
fn the_receive_hint_holds_once_the_senders_are_gone() {
    let chan = super::chan::Chan::<u32>::new(4, |_| 0);
    assert!(!chan.recv_ready(), "empty, a sender left");
    chan.drop_sender();
    assert!(chan.recv_ready(), "empty, no sender left");
}

/// What a crossbeam user reaches for: `?` across the error flavours, deadlines shared by
/// several calls, `is_full` on either end, and telling channels apart.
#[test]
fn crossbeam_conveniences_convert_wait_until_and_compare() {
    fn forward(tx: &Sender<u8>, v: u8) -> Result<(), TrySendError<u8>> {
        tx.send(v)?; // `SendError` becomes `Disconnected`, the value kept
        Ok(())
    }
    let (tx, rx) = bounded::<u8>(1);
    assert!(!rx.is_full());
    forward(&tx, 1).unwrap();
    assert!(rx.is_full() && tx.is_full());
    let past = std::time::Instant::now();
    assert_eq!(tx.send_deadline(2, past), Err(SendTimeoutError::Timeout(2)));
    let soon = std::time::Instant::now() + Duration::from_millis(50);
    assert_eq!(rx.recv_deadline(soon), Ok(1));
    assert_eq!(rx.recv_deadline(past), Err(RecvTimeoutError::Timeout));
    assert!(tx.same_channel(&tx.clone()) && rx.same_channel(&rx.clone()));
    let (other_tx, other_rx) = bounded::<u8>(1);
    assert!(!tx.same_channel(&other_tx) && !rx.same_channel(&other_rx));
    drop(rx);
    assert_eq!(forward(&tx, 3), Err(TrySendError::Disconnected(3)));
    assert_eq!(
        SendTimeoutError::from(SendError(4)),
        SendTimeoutError::Disconnected(4)
    );
    assert_eq!(TryRecvError::from(RecvError), TryRecvError::Disconnected);
    assert_eq!(
        RecvTimeoutError::from(RecvError),
        RecvTimeoutError::Disconnected
    );

    let (tx, rx) = recycling(1, String::new);
    assert!(!rx.is_full());
    tx.send_with(|s| s.push('x')).unwrap();
    assert!(rx.is_full());
    assert!(tx.same_channel(&tx.clone()) && rx.same_channel(&rx.clone()));
    let (other_tx, other_rx) = recycling(1, String::new);
    assert!(!tx.same_channel(&other_tx) && !rx.same_channel(&other_rx));
}

/// A deadline call that has to wait is woken by the message or slot it waits for, or by the
/// other side's disconnect, well before its deadline; both flavours.
#[test]
fn deadline_waits_end_on_a_send_a_receive_or_a_disconnect() {
    let far = || std::time::Instant::now() + Duration::from_secs(20);
    let (tx, rx) = bounded::<u8>(1);
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(10));
            tx.send(7).unwrap();
        });
        assert_eq!(rx.recv_deadline(far()), Ok(7), "woken by the send");
    });
    tx.send(1).unwrap(); // full: the next send waits for a receive
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(10));
            assert_eq!(rx.recv(), Ok(1));
        });
        assert_eq!(tx.send_deadline(2, far()), Ok(()), "woken by the receive");
    });
    assert_eq!(rx.recv(), Ok(2));
    thread::scope(|s| {
        s.spawn(move || {
            thread::sleep(Duration::from_millis(10));
            drop(tx);
        });
        assert_eq!(rx.recv_deadline(far()), Err(RecvTimeoutError::Disconnected));
    });

    let (tx, rx) = recycling(1, String::new);
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(10));
            tx.send_with(|m| m.push('a')).unwrap();
        });
        assert_eq!(
            rx.recv_with_deadline(|m| m.clone(), far()),
            Ok("a".to_string())
        );
    });
    tx.send_with(|m| m.push('b')).unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(10));
            rx.recv_with(|_| ()).unwrap();
        });
        assert!(tx.send_with_deadline(|m| m.push('c'), far()).is_ok());
    });
    drop(rx);
    assert!(matches!(
        tx.send_with_deadline(|m| m.push('d'), far()),
        Err(SendTimeoutError::Disconnected(_))
    ));
}
