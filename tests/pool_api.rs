//! The pool's public API from issue #10: settings the builders refuse (`BuildError`), byte
//! budgets for closure-built pools (`weigh`), short buffers dropped on return, the
//! `BufferPool` constructors and the guards' std traits. Single-threaded, so `stats()` is
//! exact.

#![cfg(not(loom))]

use std::borrow::{Borrow, BorrowMut};
use std::io::Write;
use std::sync::Arc;
use thrifty::pool::{BufferPool, BuildError, Pool};

const MIB: usize = if cfg!(miri) { 1 << 10 } else { 1 << 20 };

// Refused settings: `try_build` says which, `build` panics naming both.

#[test]
fn buffer_capacity_over_isize_max_is_refused_first() {
    let over = isize::MAX as usize + 1;
    // Also over max_buffer_capacity and byte_budget: the overflow is the one reported.
    let err = BufferPool::builder().buffer_capacity(over).try_build();
    assert_eq!(
        err.unwrap_err(),
        BuildError::BufferCapacityOverflow {
            buffer_capacity: over
        }
    );
}

#[test]
#[cfg(target_pointer_width = "64")]
#[should_panic(
    expected = "buffer_capacity (9223372036854775808) is over isize::MAX (9223372036854775807)"
)]
fn build_panics_on_buffer_capacity_over_isize_max() {
    BufferPool::builder()
        .buffer_capacity(isize::MAX as usize + 1)
        .max_buffer_capacity(usize::MAX)
        .byte_budget(usize::MAX)
        .build();
}

#[test]
fn buffer_capacity_over_max_buffer_capacity_is_refused() {
    let err = BufferPool::builder()
        .buffer_capacity(8192)
        .max_buffer_capacity(8191)
        .try_build();
    assert_eq!(
        err.unwrap_err(),
        BuildError::BufferCapacityOverMax {
            buffer_capacity: 8192,
            max_buffer_capacity: 8191
        }
    );
}

#[test]
#[should_panic(expected = "buffer_capacity (8192) is over max_buffer_capacity (8191)")]
fn build_panics_on_buffer_capacity_over_max_buffer_capacity() {
    BufferPool::builder()
        .buffer_capacity(8192)
        .max_buffer_capacity(8191)
        .build();
}

#[test]
fn byte_budget_under_buffer_capacity_is_refused() {
    let err = BufferPool::builder()
        .buffer_capacity(4096)
        .byte_budget(4095)
        .try_build();
    assert_eq!(
        err.unwrap_err(),
        BuildError::ByteBudgetUnderBufferCapacity {
            byte_budget: 4095,
            buffer_capacity: 4096
        }
    );
}

#[test]
#[should_panic(expected = "byte_budget (4095) is under buffer_capacity (4096)")]
fn build_panics_on_byte_budget_under_buffer_capacity() {
    BufferPool::builder()
        .buffer_capacity(4096)
        .byte_budget(4095)
        .build();
}

#[test]
fn byte_budget_without_weigh_is_refused() {
    let err = Pool::builder().byte_budget(MIB).try_build(Vec::<u8>::new);
    assert_eq!(
        err.unwrap_err(),
        BuildError::ByteBudgetWithoutWeigh { byte_budget: MIB }
    );
}

#[test]
#[should_panic(expected = "byte_budget (1048576) is set without weigh")]
fn build_panics_on_byte_budget_without_weigh() {
    // 1 MiB, not `MIB` (a KiB under Miri): the message above names the number. Nothing is
    // allocated.
    Pool::builder().byte_budget(1 << 20).build(Vec::<u8>::new);
}

#[test]
fn max_object_bytes_without_weigh_is_refused() {
    let err = Pool::builder()
        .max_object_bytes(MIB)
        .try_build(Vec::<u8>::new);
    assert_eq!(
        err.unwrap_err(),
        BuildError::MaxObjectBytesWithoutWeigh {
            max_object_bytes: MIB
        }
    );
}

#[test]
#[should_panic(expected = "max_object_bytes (1048576) is set without weigh")]
fn build_panics_on_max_object_bytes_without_weigh() {
    // 1 MiB whatever `MIB` is, as above.
    Pool::builder()
        .max_object_bytes(1 << 20)
        .build(Vec::<u8>::new);
}

#[test]
fn build_error_is_a_std_error_with_a_lowercase_message() {
    let err: Box<dyn std::error::Error> = Box::new(BuildError::BufferCapacityOverMax {
        buffer_capacity: 2,
        max_buffer_capacity: 1,
    });
    assert_eq!(
        err.to_string(),
        "buffer_capacity (2) is over max_buffer_capacity (1): every buffer would be dropped \
         when returned"
    );
}

#[test]
fn settings_at_their_limits_are_accepted() {
    let equal = BufferPool::builder()
        .buffer_capacity(4096)
        .max_buffer_capacity(4096)
        .byte_budget(4096)
        .try_build();
    assert!(equal.is_ok(), "buffer_capacity == max == budget can work");
    let never_retain = BufferPool::builder().capacity(0).try_build().unwrap();
    drop(never_retain.get());
    assert_eq!(never_retain.stats().retained, 0, "capacity 0: never retain");
    assert!(Pool::builder().capacity(0).try_build(String::new).is_ok());
    let weightless_only = Pool::builder()
        .weigh(|v: &Vec<u8>| v.capacity())
        .byte_budget(0)
        .try_build(Vec::new);
    assert!(weightless_only.is_ok(), "weigh + byte_budget(0) is allowed");
}

// Byte budgets for closure-built pools.

/// Gets `n` buffers of 1 MiB, then gives them all back at once.
fn burst(pool: &Pool<Vec<u8>>, n: usize) {
    let held: Vec<_> = (0..n).map(|_| pool.get()).collect();
    assert!(held.iter().all(|b| b.capacity() == MIB));
    drop(held);
}

#[test]
fn an_unweighted_pool_bounds_only_the_count() {
    // What `Builder::weigh`'s docs warn about: 256 buffers of 1 MiB kept.
    let pool = Pool::new(|| Vec::<u8>::with_capacity(MIB));
    burst(&pool, 1000);
    assert_eq!(pool.stats().retained, 256);
}

#[test]
fn a_weighted_pool_keeps_at_most_its_byte_budget() {
    let pool = Pool::builder()
        .weigh(|v: &Vec<u8>| v.capacity())
        .byte_budget(16 * MIB)
        .build(|| Vec::<u8>::with_capacity(MIB));
    burst(&pool, 1000);
    let s = pool.stats();
    assert!(s.retained * MIB <= 16 * MIB, "retained {}", s.retained);
    assert!(s.retained > 0, "the budget holds some buffers");
    assert!(s.discarded >= 1000 - 16, "discarded {}", s.discarded);
    assert_eq!(s.returned + s.discarded, 1000);
}

#[test]
fn max_object_bytes_drops_heavier_objects() {
    let pool = Pool::builder()
        .weigh(|v: &Vec<u8>| v.capacity())
        .max_object_bytes(1024)
        .build(Vec::<u8>::new);
    let mut heavy = pool.get();
    heavy.reserve_exact(1025);
    drop(heavy);
    assert_eq!((pool.stats().retained, pool.stats().discarded), (0, 1));
    let mut light = pool.get();
    light.reserve_exact(1024);
    drop(light);
    assert_eq!((pool.stats().retained, pool.stats().discarded), (1, 1));
}

// Short buffers.

#[test]
fn a_taken_buffer_is_dropped_not_retained() {
    let pool = BufferPool::builder().buffer_capacity(4096).build();
    let mut buf = pool.get();
    buf.extend_from_slice(b"payload");
    let kept = std::mem::take(&mut *buf);
    assert_eq!(buf.capacity(), 0);
    drop(buf);
    assert_eq!(kept, b"payload");
    let s = pool.stats();
    assert_eq!((s.retained, s.discarded), (0, 1));
    assert!(pool.get().capacity() >= 4096, "the next get is full size");
}

#[test]
fn a_shrunk_buffer_is_dropped_not_retained() {
    let pool = BufferPool::builder().buffer_capacity(4096).build();
    let mut buf = pool.get();
    buf.extend_from_slice(b"abc");
    buf.shrink_to_fit();
    assert!(buf.capacity() < 4096);
    drop(buf);
    assert_eq!(pool.stats().discarded, 1);
    assert!(pool.get().capacity() >= 4096);
}

// Constructors.

#[test]
fn buffer_pool_default_has_every_default() {
    let pool = BufferPool::default();
    assert_eq!(pool.capacity(), thrifty::pool::DEFAULT_CAPACITY);
    let buf = pool.get();
    assert!(buf.capacity() >= 4096);
    drop(buf);
    assert_eq!(pool.stats().retained, 1);
}

#[test]
fn pool_new_and_builder_still_infer_the_closure_form() {
    let pool = Pool::new(String::new);
    pool.get().push('x');
    assert!(pool.get().is_empty());
    let pool = Pool::builder().capacity(1).build(String::new);
    assert_eq!(pool.capacity(), 1);
}

// Guard traits.

fn len_of(bytes: impl AsRef<[u8]>) -> usize {
    bytes.as_ref().len()
}

fn first_upper(mut bytes: impl AsMut<[u8]>) {
    bytes.as_mut()[0].make_ascii_uppercase();
}

fn borrowed_len<B: Borrow<Vec<u8>>>(v: &B) -> usize {
    v.borrow().len()
}

#[test]
fn a_buffer_guard_is_a_writer_and_a_byte_slice() {
    let pool = BufferPool::default();
    let mut buf = pool.get();
    let word = "abc";
    write!(buf, "{word}-{}", 42).unwrap();
    buf.flush().unwrap();
    assert_eq!(&buf[..], b"abc-42");
    assert_eq!(len_of(&*buf), 6);
    first_upper(&mut buf);
    assert_eq!(buf.as_ref(), b"Abc-42");
    assert_eq!(len_of(buf), 6, "the guard itself is AsRef<[u8]>");
}

#[test]
fn an_owned_buffer_guard_is_a_writer_and_a_byte_slice() {
    let pool = Arc::new(BufferPool::default());
    let mut buf = pool.get_owned();
    buf.write_all(b"xyz").unwrap();
    first_upper(&mut buf);
    assert_eq!(AsRef::<[u8]>::as_ref(&buf), b"Xyz");
    assert_eq!(len_of(buf), 3);
}

#[test]
fn a_closure_pool_vec_guard_is_a_writer_too() {
    let pool = Pool::new(Vec::<u8>::new);
    let mut buf = pool.get();
    write!(buf, "{}", 7).unwrap();
    assert_eq!(len_of(buf), 1);
}

#[test]
fn guards_borrow_their_object() {
    let pool = Pool::new(Vec::<u8>::new);
    let mut v = pool.get();
    BorrowMut::<Vec<u8>>::borrow_mut(&mut v).push(1);
    assert_eq!(borrowed_len(&v), 1);
    let shared = Arc::new(Pool::new(String::new));
    let mut s = shared.get_owned();
    BorrowMut::<String>::borrow_mut(&mut s).push_str("hi");
    assert_eq!(Borrow::<String>::borrow(&s), "hi");
}

/// `BufferPool::new()`, `default()` and `builder().build()` make the same pool; an `Arc<BufferPool>` lends owned buffers that go back from another thread.
#[test]
fn buffer_pool_constructors_agree_and_owned_buffers_cross_threads() {
    let capacities = [
        BufferPool::new(),
        BufferPool::default(),
        BufferPool::builder().build(),
    ]
    .map(|pool| (pool.capacity(), pool.get().capacity()));
    assert!(
        capacities.iter().all(|&c| c == capacities[0]),
        "{capacities:?}"
    );
    let shown = format!("{:?}", BufferPool::new());
    assert!(
        shown.contains("buffer_capacity: 4096") && !shown.contains("fast_floor"),
        "the settings by their builder names: {shown}"
    );
    assert_eq!(thrifty::pool::DEFAULT_BUFFER_CAPACITY, 4096);
    let pool = Arc::new(BufferPool::new());
    let mut buf = pool.get_owned();
    buf.extend_from_slice(b"payload");
    std::thread::spawn(move || drop(buf)).join().unwrap();
    assert_eq!(pool.stats().retained, 1);
    assert!(pool.get().is_empty(), "reused and reset");
    assert_eq!(
        Arc::strong_count(&pool),
        1,
        "no reference left behind by the guard"
    );
}

#[test]
fn an_object_weighing_usize_max_is_dropped_and_breaks_nothing() {
    // `weigh` may return any `usize`; with light objects already cached, adding such a weight
    // to the cache's byte count would overflow.
    let pool = Pool::builder()
        .weigh(|v: &Vec<u8>| if v.is_empty() { 1 } else { usize::MAX })
        .build(Vec::<u8>::new);
    for _ in 0..3 {
        let held: Vec<_> = (0..4).map(|_| pool.get()).collect();
        drop(held); // light: one in the hot slot, the rest stacked
        let mut heavy = pool.get();
        heavy.push(1);
        drop(heavy);
    }
    let s = pool.stats();
    assert!(s.discarded >= 3, "the heavy ones are not kept: {s:?}");
    assert!(pool.get().is_empty(), "still hands out reset objects");
}

#[test]
fn idle_threads_holding_the_whole_capacity_do_not_keep_it_from_a_working_one() {
    // Capacity 2, and two threads that used the pool once and now idle, each with an object
    // in its hot slot: a third thread's gets must come to reuse objects, not call the factory
    // on every one.
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::Barrier;
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let made = &MADE;
    let pool = Pool::builder().capacity(2).build(|| {
        MADE.fetch_add(1, Relaxed);
        Vec::<u8>::new()
    });
    let idle = Barrier::new(3);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                drop(pool.get());
                idle.wait(); // used once, now idle
                idle.wait(); // until the worker is done
            });
        }
        idle.wait();
        let before = made.load(Relaxed);
        s.spawn(|| (0..1000).for_each(|_| drop(pool.get())))
            .join()
            .unwrap();
        let fresh = made.load(Relaxed) - before;
        idle.wait();
        assert!(
            fresh <= 100,
            "the worker called the factory {fresh} times in 1000 gets"
        );
    });
    assert!(pool.stats().retained <= 2);
}

/// The defaults the README's quick start, the CHANGELOG and the constants' docs give: 256
/// objects kept, buffers of 4 KiB when new, buffers grown past 64 KiB dropped on return (64 KiB
/// itself kept), at most 16 MiB retained.
#[test]
fn the_defaults_are_the_documented_values() {
    assert_eq!(thrifty::pool::DEFAULT_CAPACITY, 256);
    assert_eq!(thrifty::pool::DEFAULT_BUFFER_CAPACITY, 4 << 10);
    assert_eq!(thrifty::pool::DEFAULT_MAX_BUFFER_CAPACITY, 64 << 10);
    assert_eq!(thrifty::pool::DEFAULT_BYTE_BUDGET, 16 << 20);
    assert_eq!(Pool::new(Vec::<u8>::new).capacity(), 256);
    let pool = BufferPool::new();
    assert_eq!(pool.capacity(), 256);
    let (mut at_max, mut grown) = (pool.get(), pool.get());
    at_max.reserve_exact(64 << 10);
    grown.reserve_exact((64 << 10) + 1);
    let kept = at_max.capacity();
    assert!(grown.capacity() > 64 << 10);
    drop((at_max, grown));
    let stats = pool.stats();
    assert_eq!(
        (stats.retained, stats.discarded),
        (usize::from(kept <= 64 << 10), 1),
        "{stats:?}"
    );
}

#[test]
fn a_zeroing_pools_try_put_hands_back_an_emptied_buffer() {
    // The zeroing runs on return, before anything can refuse the buffer (`try_put`'s docs).
    let refuse = |pool: &BufferPool| {
        let mut v = Vec::with_capacity(4096);
        v.extend_from_slice(b"secret");
        pool.try_put(v).map_err(|v| (v.len(), v.capacity()))
    };
    let zeroing = BufferPool::builder()
        .capacity(0)
        .zero_on_return(true)
        .build();
    assert_eq!(refuse(&zeroing), Err((0, 4096)), "refused, emptied");
    let plain = BufferPool::builder().capacity(0).build();
    assert_eq!(refuse(&plain), Err((6, 4096)), "refused as it was");
}
