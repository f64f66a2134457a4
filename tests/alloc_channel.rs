//! dhat: what `thrifty::channel` allocates, asserted.
//!
//! dhat's profiler is global, so one `#[test]` runs every case in turn.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Barrier;
use std::time::Duration;
use thrifty::channel::{bounded, recycling, RecvTimeoutError};

mod common;
use common::{allocates_nothing, heap, join_all, park_once, warm_up_threads};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    warm_up_threads(|| {});
    first_waits_at_once_ask_the_os_once();
    u64_send_recv_allocates_nothing();
    recycling_strings_allocate_nothing_once_warm();
    cross_thread_hand_off_allocates_nothing();
    queued_messages_are_freed_on_drop();
    creation_is_one_ring();
    timed_forms_iterators_and_stats_allocate_nothing();
    refusals_and_timeouts_allocate_nothing();
    sends_on_a_disconnected_channel_allocate_nothing();
    cloning_and_dropping_handles_allocates_nothing();
    recycling_try_and_timed_forms_allocate_nothing_once_warm();
    parked_receivers_and_their_disconnect_allocate_at_most_four_blocks();
}

/// The process's first waits, made by four threads at once: they ask the OS for the number of
/// CPUs once in all, so they allocate no more than one `available_parallelism` call does (the
/// channel docs' exception). A cache that each racing thread filled made two of them ask in 4
/// fresh processes of 5. Must run before any other wait of the process.
fn first_waits_at_once_ask_the_os_once() {
    const THREADS: usize = 4;
    let before = heap().total_blocks;
    let _ = std::hint::black_box(std::thread::available_parallelism());
    let one_ask = heap().total_blocks - before;
    let (ready, go, done, exit) = (
        Barrier::new(THREADS + 1),
        Barrier::new(THREADS + 1),
        Barrier::new(THREADS + 1),
        Barrier::new(THREADS + 1),
    );
    let waits = std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let (_tx, rx) = bounded::<u8>(1);
                ready.wait();
                go.wait();
                assert!(rx.recv_timeout(Duration::from_millis(1)).is_err());
                done.wait();
                exit.wait();
            });
        }
        ready.wait();
        let before = heap().total_blocks;
        go.wait();
        done.wait();
        let waits = heap().total_blocks - before;
        exit.wait();
        waits
    });
    assert!(
        waits <= one_ask,
        "{THREADS} first waits at once made {waits} allocations; one ask of the OS makes \
         {one_ask}"
    );
}

/// Makes the process's first wait, which asks the OS for the number of CPUs once (the channel
/// docs' exception), so that it is not counted.
fn first_wait() {
    let (_tx, rx) = bounded::<u8>(1);
    assert!(rx.recv_timeout(Duration::from_millis(1)).is_err());
}

fn u64_send_recv_allocates_nothing() {
    let (tx, rx) = bounded::<u64>(64);
    let mut batch = Vec::with_capacity(64);
    let before = heap();
    for i in 0..10_000u64 {
        tx.send(i).unwrap();
        tx.try_send(i).unwrap();
        assert_eq!(rx.recv(), Ok(i));
        assert_eq!(rx.try_recv(), Ok(i));
        batch.clear();
        tx.send(i).unwrap();
        assert_eq!(rx.recv_many(&mut batch, 64), 1);
    }
    assert_eq!(
        heap().total_blocks,
        before.total_blocks,
        "send/recv of u64 allocated"
    );
}

fn recycling_strings_allocate_nothing_once_warm() {
    let (tx, rx) = recycling(16, String::new);
    let text = "a 64-byte message payload, written anew for every single message!";
    // Warm-up: one lap grows every slot's buffer to the message size.
    for _ in 0..16 {
        tx.send_with(|s| s.push_str(text)).unwrap();
    }
    for _ in 0..16 {
        rx.recv_with(|s| assert_eq!(s.len(), text.len())).unwrap();
    }
    let before = heap();
    for i in 0..10_000 {
        tx.send_with(|s| {
            s.push_str(text);
            s.truncate(text.len() - i % 2);
        })
        .unwrap();
        let len = rx.recv_with(|s| s.len()).unwrap();
        assert_eq!(len, text.len() - i % 2);
    }
    assert_eq!(
        heap().total_blocks,
        before.total_blocks,
        "recycled String messages allocated"
    );
}

fn cross_thread_hand_off_allocates_nothing() {
    let (tx, rx) = bounded::<u64>(4);
    // Warm-up: both threads park and unpark at least once (std's thread handle is made once).
    // Each sender is joined by hand, so its teardown frees are done before the next count.
    std::thread::scope(|s| {
        let sender = s.spawn(|| (0..1000).for_each(|i| tx.send(i).unwrap()));
        for _ in 0..1000 {
            rx.recv().unwrap();
        }
        join_all(vec![sender]);
    });
    let before = heap();
    std::thread::scope(|s| {
        let sender = s.spawn(|| (0..20_000).for_each(|i| tx.send(i).unwrap()));
        for i in 0..20_000 {
            assert_eq!(rx.recv(), Ok(i));
        }
        join_all(vec![sender]);
    });
    // The scoped thread itself allocates (its stack bookkeeping, its handle); the hand-off of
    // 20 000 messages, with parks on both sides, must not add per-message blocks.
    let blocks = heap().total_blocks - before.total_blocks;
    assert!(
        blocks < 20,
        "{blocks} blocks for 20 000 cross-thread messages"
    );
}

fn queued_messages_are_freed_on_drop() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Counted(#[allow(dead_code)] Box<u64>);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, SeqCst);
        }
    }
    let before = heap();
    {
        let (tx, rx) = bounded(8);
        for i in 0..8 {
            tx.send(Counted(Box::new(i))).unwrap();
        }
        drop(rx.recv().unwrap());
    }
    assert_eq!(DROPS.load(SeqCst), 8, "every message dropped once");
    assert_eq!(heap().curr_blocks, before.curr_blocks, "everything freed");
    {
        let (tx, rx) = recycling(4, || String::with_capacity(100));
        tx.send_with(|s| s.push('x')).unwrap();
        drop((tx, rx));
    }
    assert_eq!(
        heap().curr_blocks,
        before.curr_blocks,
        "recycling slots freed"
    );
}

fn creation_is_one_ring() {
    let before = heap();
    let (tx, rx) = bounded::<u64>(1024);
    // The shared state (one `Arc` holding the ring header) and the slots.
    assert_eq!(heap().total_blocks - before.total_blocks, 2);
    // The slots are a stamp and a `u64` each; the rest is the fixed part the module docs give
    // for x86-64 (its cache-padded lines are 128 bytes there).
    let fixed = heap().total_bytes - before.total_bytes - 1024 * 16;
    #[cfg(target_arch = "x86_64")]
    assert_eq!(fixed, 896, "the fixed part the channel module docs state");
    assert!(fixed < 4096, "{fixed} bytes besides the slots");
    drop((tx, rx));
    // A recycling slot holds two flags beside the stamp and the value (the factory's `String`s
    // allocate nothing while empty).
    let before = heap();
    let (tx, rx) = recycling(1024, String::new);
    assert_eq!(heap().total_blocks - before.total_blocks, 2);
    let slots = heap().total_bytes - before.total_bytes - fixed;
    let slot = std::mem::size_of::<(usize, String, bool, bool)>();
    assert_eq!(
        slots,
        1024 * slot as u64,
        "the slots the channel module docs state"
    );
    drop((tx, rx));
}

/// `send_timeout`, `recv_timeout`, `iter`, `try_iter` and `stats` allocate nothing, as documented.
fn timed_forms_iterators_and_stats_allocate_nothing() {
    first_wait();
    let (tx, rx) = bounded::<u64>(8);
    allocates_nothing("timed sends and receives, iterators or stats", || {
        for i in 0..10_000u64 {
            tx.send_timeout(i, Duration::from_secs(10)).unwrap();
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(i));
            tx.send(i).unwrap();
            tx.send(i + 1).unwrap();
            assert_eq!(rx.try_iter().sum::<u64>(), 2 * i + 1);
            tx.send(i).unwrap();
            assert_eq!(rx.iter().next(), Some(i));
            std::hint::black_box((tx.stats(), rx.stats()));
        }
    });
}

/// Refused and timed-out sends and receives allocate nothing, as their errors' docs say.
fn refusals_and_timeouts_allocate_nothing() {
    first_wait();
    let (tx, rx) = bounded::<u64>(8);
    allocates_nothing("refused or timed-out sends and receives", || {
        for i in 0..8 {
            tx.send(i).unwrap();
        }
        for i in 0..1000 {
            assert!(tx.try_send(i).unwrap_err().is_full());
        }
        for _ in 0..10 {
            assert!(tx.send_timeout(0, Duration::from_micros(100)).is_err());
        }
        for i in 0..8 {
            assert_eq!(rx.recv(), Ok(i));
        }
        for _ in 0..1000 {
            assert!(rx.try_recv().unwrap_err().is_empty());
        }
        for _ in 0..10 {
            assert!(rx.recv_timeout(Duration::from_micros(100)).is_err());
        }
    });
}

/// A send on a disconnected channel allocates nothing, as `SendError`'s docs say.
fn sends_on_a_disconnected_channel_allocate_nothing() {
    let (tx, rx) = bounded::<u64>(4);
    drop(rx);
    allocates_nothing("sends on a disconnected channel", || {
        for i in 0..1000 {
            assert_eq!(tx.send(i).unwrap_err().0, i);
            assert!(tx.try_send(i).unwrap_err().is_disconnected());
            assert!(tx.send_timeout(i, Duration::from_secs(10)).is_err());
        }
    });
}

/// Cloning a `Sender` or `Receiver` is a reference-count increment: no allocation, as documented.
fn cloning_and_dropping_handles_allocates_nothing() {
    let (tx, rx) = bounded::<u64>(4);
    allocates_nothing("cloning or dropping channel handles", || {
        for i in 0..1000 {
            let (tx2, rx2) = (tx.clone(), rx.clone());
            tx2.send(i).unwrap();
            drop(tx2);
            assert_eq!(rx2.recv(), Ok(i));
        }
    });
}

/// A recycling channel's `try_` and timed forms allocate nothing once warm, as its docs say.
fn recycling_try_and_timed_forms_allocate_nothing_once_warm() {
    first_wait();
    let (tx, rx) = recycling(8, String::new);
    let text = "a payload";
    for _ in 0..8 {
        tx.send_with(|s| s.push_str(text)).unwrap();
    }
    for _ in 0..8 {
        rx.recv_with(|s| s.len()).unwrap();
    }
    allocates_nothing("recycling try and timed forms", || {
        for _ in 0..10_000 {
            tx.send_with_timeout(|s| s.push_str(text), Duration::from_secs(10))
                .unwrap();
            let len = rx.recv_with_timeout(|s| s.len(), Duration::from_secs(10));
            assert_eq!(len, Ok(text.len()));
            tx.try_send_with(|s| s.push_str(text)).unwrap();
            assert_eq!(rx.try_recv_with(|s| s.len()), Ok(text.len()));
        }
        assert!(rx.try_recv_with(|s| s.len()).unwrap_err().is_empty());
    });
}

/// Parked receivers grow the wait queue by doubling and a disconnect buffers them, as documented.
fn parked_receivers_and_their_disconnect_allocate_at_most_four_blocks() {
    /// Longer than any wait here should take: a receiver never waits for ever.
    const LONG: Duration = Duration::from_secs(10);
    // The queue grows by doubling (8, 16, 32) and keeps its largest buffer, so 32 receivers
    // parking twice and the disconnect that wakes them allocate at most 3 + 1 blocks, however
    // the threads are scheduled. The sleeps only make it likely that all 32 park at once; an
    // allocation per park would make about 64.
    first_wait();
    park_once();
    let n = 32;
    let (tx, rx) = bounded::<u32>(64);
    let gate = Barrier::new(n + 1);
    let (before, after) = std::thread::scope(|s| {
        let mut threads = Vec::new();
        for _ in 0..n {
            threads.push(s.spawn(|| {
                // A thread's first park sets up parking_lot's per-thread data (it allocates),
                // and the queue's lock may park: do it before the measured span.
                park_once();
                gate.wait(); // main reads `before`
                gate.wait();
                // Parked on the empty channel until a message comes...
                let got = rx.recv_timeout(LONG).is_ok();
                gate.wait();
                // ... and again, until the disconnect wakes every receiver. (Outcomes are
                // returned, not asserted here: a panic would leave the others at the gate.)
                let woken = rx.recv_timeout(LONG) == Err(RecvTimeoutError::Disconnected);
                gate.wait(); // main reads `after`
                gate.wait();
                got && woken
            }));
        }
        gate.wait();
        let before = heap();
        gate.wait();
        std::thread::sleep(Duration::from_millis(500)); // all 32 park
        for i in 0..n as u32 {
            tx.send(i).unwrap();
        }
        gate.wait();
        std::thread::sleep(Duration::from_millis(500)); // all 32 park again
        drop(tx);
        gate.wait();
        let after = heap();
        gate.wait();
        let received = join_all(threads);
        assert!(
            received.iter().all(|&r| r),
            "each receiver gets a message, then the disconnect"
        );
        (before, after)
    });
    let blocks = after.total_blocks - before.total_blocks;
    assert!(
        blocks <= 3 + 1,
        "32 receivers parking twice and their disconnect allocated {blocks} blocks"
    );
}
