//! The crate root's "Processes that fork": a value no other thread was inside at the fork works
//! in the child as in the parent. A second thread of the parent uses a pool, an arena pool, a
//! channel, a counter, both maps and a semaphore, then idles, alive (holding its thread slot and
//! its pool caches) while the test thread forks. The child, whose only thread is the forking one,
//! holds more buffers than the pool keeps (reclaims past the idle thread's cache), trims, clears,
//! adds, writes both maps, acquires, sends and receives, and checks every count; it reports
//! through its exit status, which the parent waits for with a deadline (a child that hangs is
//! killed and fails the test).

#![cfg(all(target_os = "linux", not(loom), not(miri)))]

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use thrifty::arena::ArenaPool;
use thrifty::channel;
use thrifty::counter::Counter;
use thrifty::limit::Semaphore;
use thrifty::map::{CowMap, ShardedMap};
use thrifty::pool::BufferPool;

#[test]
fn values_no_thread_was_inside_at_a_fork_work_in_the_child() {
    let pool = Arc::new(
        BufferPool::builder()
            .capacity(64)
            .buffer_capacity(4096)
            .build(),
    );
    let arenas = Arc::new(ArenaPool::builder().capacity(4).build());
    let (tx, rx) = channel::bounded::<u64>(8);
    let counter = Arc::new(Counter::new());
    let cow = Arc::new(CowMap::<u64, u64>::new());
    let sharded = Arc::new(ShardedMap::<u64, u64>::new());
    let sem = Arc::new(Semaphore::new(2));

    let (park, parked) = mpsc::channel::<()>();
    let (ready, idle_now) = mpsc::channel::<()>();
    let idle = std::thread::spawn({
        let (pool, arenas, counter) = (pool.clone(), arenas.clone(), counter.clone());
        let (cow, sharded, sem, tx) = (cow.clone(), sharded.clone(), sem.clone(), tx.clone());
        move || {
            for i in 0..10_000u64 {
                pool.get().push(1);
                drop((0..4).map(|_| pool.get()).collect::<Vec<_>>());
                arenas.get().alloc(i);
                counter.add(1);
                sharded.insert(i % 100, i);
                if i % 100 == 0 {
                    cow.insert(i, i);
                }
                drop(sem.acquire(1).unwrap());
            }
            tx.send(7).unwrap();
            ready.send(()).unwrap();
            let _ = parked.recv(); // idle, alive, inside nothing
        }
    });
    idle_now.recv().unwrap();
    assert_eq!(rx.recv(), Ok(7));

    // SAFETY: `fork` has no memory preconditions; the child runs only this thread and ends with
    // `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for round in 0..200u64 {
                let held: Vec<_> = (0..80).map(|_| pool.get()).collect();
                assert!(held.iter().all(|b| b.is_empty()));
                drop(held);
                if round % 50 == 0 {
                    pool.trim(3);
                }
                arenas.get().alloc(round);
                counter.add(2);
                sharded.insert(1_000 + round, round);
                cow.insert(round, round);
                let permits = sem.acquire(2).unwrap();
                tx.send(round).unwrap();
                assert_eq!(rx.recv(), Ok(round));
                drop(permits);
            }
            pool.clear();
            assert_eq!(pool.stats().retained, 0);
            assert_eq!(counter.sum(), 10_000 + 400);
            // Keys 0..200 and every hundredth of 0..10 000: 0 and 100 are in both.
            assert_eq!(cow.len(), 200 + 100 - 2);
            assert_eq!(sharded.len(), 100 + 200);
        }))
        .is_ok();
        // SAFETY: ends the child at once, without running the parent's exit handlers twice.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut status = 0;
    loop {
        // SAFETY: `pid` is our child; `status` is a valid place for its status.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if got == pid {
            break;
        }
        assert_eq!(got, 0, "waitpid failed");
        if Instant::now() > deadline {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the forked child did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child failed (status {status:#x})"
    );
    drop(park);
    idle.join().unwrap();
}
