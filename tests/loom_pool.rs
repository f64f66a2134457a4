//! loom models of `thrifty::pool`: every interleaving of gets and returns across threads.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom_pool`
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use thrifty::pool::Pool;

/// Counts objects made and dropped in one execution; a drop of a dead object (double drop)
/// trips the `dead` flag check.
#[derive(Default)]
struct Census {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

struct Obj {
    data: Vec<u8>,
    census: std::sync::Arc<Census>,
    dead: bool,
}

impl Drop for Obj {
    fn drop(&mut self) {
        assert!(!self.dead, "double drop");
        self.dead = true;
        self.census.dropped.fetch_add(1, SeqCst);
    }
}

fn pool(capacity: usize) -> (Arc<Pool<Obj>>, std::sync::Arc<Census>) {
    let census = std::sync::Arc::new(Census::default());
    let c = census.clone();
    let pool = Pool::builder()
        .capacity(capacity)
        .reset(|o: &mut Obj| o.data.clear())
        .build(move || {
            c.made.fetch_add(1, SeqCst);
            Obj {
                data: Vec::new(),
                census: c.clone(),
                dead: false,
            }
        });
    (Arc::new(pool), census)
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

fn use_once(pool: &Pool<Obj>) {
    let mut o = pool.get();
    assert!(o.data.is_empty(), "handed out dirty");
    o.data.push(1);
}

fn check_census(census: &Census) {
    assert_eq!(
        census.made.load(SeqCst),
        census.dropped.load(SeqCst),
        "an object leaked"
    );
}

#[test]
fn loom_get_put_across_threads() {
    model(|| {
        let (pool, census) = pool(2);
        let p = pool.clone();
        let t = thread::spawn(move || {
            use_once(&p);
            use_once(&p);
        });
        use_once(&pool);
        t.join().unwrap();
        let s = pool.stats();
        assert!(s.retained <= 2, "{s:?}");
        assert_eq!(s.hits + s.misses, 3);
        assert_eq!(s.returned + s.discarded, 3);
        assert_eq!(
            census.made.load(SeqCst) - census.dropped.load(SeqCst),
            s.retained
        );
        drop(pool);
        check_census(&census);
    });
}

#[test]
fn loom_guard_dropped_on_another_thread() {
    model(|| {
        let (pool, census) = pool(2);
        let mut g = Pool::get_owned(&pool);
        g.data.push(7);
        let t = thread::spawn(move || drop(g));
        // Meanwhile this thread gets again: from its cache, the store, or the factory.
        use_once(&pool);
        t.join().unwrap();
        use_once(&pool);
        assert!(pool.stats().retained <= 2);
        drop(pool);
        check_census(&census);
    });
}

#[test]
fn loom_owned_guard_outlives_last_arc() {
    model(|| {
        let (pool, census) = pool(1);
        let g = Pool::get_owned(&pool);
        let t = thread::spawn(move || drop(g));
        drop(pool);
        t.join().unwrap();
        // Whichever side let go last dropped the pool and the object in it.
        check_census(&census);
    });
}

#[test]
fn loom_concurrent_return_to_full_pool() {
    model(|| {
        let (pool, census) = pool(1);
        let a = Pool::get_owned(&pool);
        let b = Pool::get_owned(&pool);
        let t = thread::spawn(move || drop(a));
        drop(b);
        t.join().unwrap();
        let s = pool.stats();
        assert_eq!((s.retained, s.returned, s.discarded), (1, 1, 1), "{s:?}");
        assert_eq!(census.made.load(SeqCst) - census.dropped.load(SeqCst), 1);
        drop(pool);
        check_census(&census);
    });
}

#[test]
fn loom_clear_races_with_returns() {
    model(|| {
        let (pool, census) = pool(2);
        let g = Pool::get_owned(&pool);
        let p = pool.clone();
        let t = thread::spawn(move || {
            drop(g);
            use_once(&p);
        });
        pool.clear();
        t.join().unwrap();
        assert!(pool.stats().retained <= 2);
        drop(pool);
        check_census(&census);
    });
}

#[test]
fn loom_three_threads_share_a_small_pool() {
    model(|| {
        let (pool, census) = pool(1);
        let g = Pool::get_owned(&pool);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let p = pool.clone();
                thread::spawn(move || use_once(&p))
            })
            .collect();
        drop(g);
        for h in handles {
            h.join().unwrap();
        }
        let s = pool.stats();
        assert!(s.retained <= 1, "{s:?}");
        assert_eq!(s.returned + s.discarded, 3);
        drop(pool);
        check_census(&census);
    });
}

/// A full cache spills its objects into the shared store while another thread takes a batch
/// from it: the batch paths (spill with budget units, adopt as reservation) under every
/// interleaving.
#[test]
fn loom_spill_and_batch_take_race() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let (pool, census) = pool(8);
        // The returning thread's cache keeps one in its hot slot and four on its stack; the
        // sixth return spills the stack.
        let held: Vec<_> = (0..6).map(|_| Pool::get_owned(&pool)).collect();
        let t = thread::spawn(move || drop(held));
        let a = pool.get();
        let b = pool.get();
        assert!(a.data.is_empty() && b.data.is_empty());
        drop((a, b));
        t.join().unwrap();
        let s = pool.stats();
        assert!(s.retained <= 8, "{s:?}");
        assert_eq!(s.returned + s.discarded, 8);
        assert_eq!(
            census.made.load(SeqCst) - census.dropped.load(SeqCst),
            s.retained
        );
        drop(pool);
        check_census(&census);
    });
}

/// One thread gets and puts through its hot slot while another reads the statistics (which
/// test the slot for null) and trims (which asks every cache to flush at its next put): no
/// object is lost or counted twice, and the owner's next put after the trim flushes.
#[test]
fn loom_trim_and_stats_race_with_a_hot_slot() {
    model(|| {
        let (pool, census) = pool(2);
        use_once(&pool); // this thread's hot slot now holds one object
        let p = pool.clone();
        let t = thread::spawn(move || {
            assert!(p.stats().retained <= 2);
            p.trim(0);
        });
        use_once(&pool); // out of the hot slot and back in, racing the trim
        t.join().unwrap();
        use_once(&pool); // the trim is done: this put sees the new epoch
        let s = pool.stats();
        assert_eq!(s.retained, 1, "only the object just returned: {s:?}");
        assert_eq!(census.made.load(SeqCst) - census.dropped.load(SeqCst), 1);
        drop(pool);
        check_census(&census);
    });
}

/// Guards the models above against silently exploring one schedule only.
#[test]
fn loom_models_explore_more_than_one_schedule() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    model(|| {
        RUNS.fetch_add(1, SeqCst);
        let (pool, _census) = pool(1);
        let a = Pool::get_owned(&pool);
        let t = thread::spawn(move || drop(a));
        drop(Pool::get_owned(&pool));
        t.join().unwrap();
    });
    assert!(RUNS.load(SeqCst) > 1, "loom explored one schedule");
}
