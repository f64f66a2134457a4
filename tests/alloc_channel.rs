//! dhat: what `thrifty::channel` allocates, asserted.
//!
//! dhat's profiler is global, so one `#[test]` runs every case in turn.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use thrifty::channel::{bounded, recycling};

mod common;
use common::{heap, join_all, warm_up_threads};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn allocation_profile() {
    let _profiler = dhat::Profiler::builder().testing().build();
    warm_up_threads(|| {});
    u64_send_recv_allocates_nothing();
    recycling_strings_allocate_nothing_once_warm();
    cross_thread_hand_off_allocates_nothing();
    queued_messages_are_freed_on_drop();
    creation_is_one_ring();
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
