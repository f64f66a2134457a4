//! loom models of `thrifty::pool`: every interleaving of gets and returns across threads.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom_pool`
#![cfg(loom)]

use crossbeam_utils::CachePadded;
use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use loom::thread;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use thrifty::pool::{Pool, Pooled, Stats};

#[path = "common/loom.rs"]
mod loom_model;
use loom_model::model_bounded;

/// The pool's models run with 3 preemptions unless they say otherwise.
fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(3, f);
}

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

fn use_once(pool: &Pool<Obj>) {
    let mut o = pool.get();
    assert!(o.data.is_empty(), "handed out dirty");
    o.data.push(1);
}

/// Checks a pool whose `ops` gets have all been returned (kept or discarded): every get a hit or
/// a miss, every return counted, at most `capacity` retained, and every object made and not yet
/// dropped is one the pool retains. Returns the stats it checked.
fn check_settled(pool: &Pool<Obj>, census: &Census, ops: u64, capacity: usize) -> Stats {
    let s = pool.stats();
    assert_eq!(s.hits + s.misses, ops, "{s:?}");
    assert_eq!(s.returned + s.discarded, ops, "{s:?}");
    assert!(s.retained <= capacity, "{s:?}");
    assert_eq!(
        census.made.load(SeqCst) - census.dropped.load(SeqCst),
        s.retained,
        "{s:?}"
    );
    s
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
        check_settled(&pool, &census, 3, 2);
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

/// Another thread gives back an object taken here and uses the pool again, racing a `clear`:
/// nothing is lost or kept twice, and a `clear` that starts after the other thread is done
/// reaches that thread's cache (live or exited) and leaves nothing retained. Some execution
/// must be of that kind.
#[test]
fn loom_clear_races_with_returns() {
    // Executions whose `clear` started after the other thread's last return.
    static CLEARED_AFTER: AtomicUsize = AtomicUsize::new(0);
    model(|| {
        let (pool, census) = pool(2);
        let g = Pool::get_owned(&pool);
        let p = pool.clone();
        let done = Arc::new(AtomicBool::new(false));
        let done_there = done.clone();
        let t = thread::spawn(move || {
            drop(g);
            use_once(&p);
            done_there.store(true, SeqCst);
        });
        let after = done.load(SeqCst);
        pool.clear();
        if after {
            // Nothing touches the pool between that thread's last return and this check.
            let s = pool.stats();
            assert_eq!(s.retained, 0, "clear left the other thread's object: {s:?}");
            CLEARED_AFTER.fetch_add(1, SeqCst);
        }
        t.join().unwrap();
        let s = pool.stats();
        assert!(s.retained <= 2, "{s:?}");
        assert_eq!(
            census.made.load(SeqCst) - census.dropped.load(SeqCst),
            s.retained,
            "{s:?}"
        );
        drop(pool);
        check_census(&census);
    });
    assert!(
        CLEARED_AFTER.load(SeqCst) > 0,
        "no execution cleared after the other thread was done"
    );
}

/// Capacity 1, two other threads: one gives back an object taken here, the other gets and
/// gives back its own, racing (the getter may find the pool dry and reclaim).
#[test]
fn loom_three_threads_share_a_small_pool() {
    model_bounded(2, || {
        let (pool, census) = pool(1);
        let g = Pool::get_owned(&pool);
        let p = pool.clone();
        let getter = thread::spawn(move || use_once(&p));
        let returner = thread::spawn(move || drop(g));
        getter.join().unwrap();
        returner.join().unwrap();
        let s = pool.stats();
        assert!(s.retained <= 1, "{s:?}");
        assert_eq!(s.returned + s.discarded, 2);
        assert_eq!(
            census.made.load(SeqCst) - census.dropped.load(SeqCst),
            s.retained
        );
        drop(pool);
        check_census(&census);
    });
}

/// Objects given back on a thread that never takes from the pool go to the shared store while
/// another thread takes from it: nothing lost, nothing counted twice, capacity kept.
#[test]
fn loom_returns_from_a_non_taker_race_with_takes() {
    model_bounded(2, || {
        let (pool, census) = pool(2);
        let held: Vec<_> = (0..3).map(|_| Pool::get_owned(&pool)).collect();
        let t = thread::spawn(move || drop(held));
        let a = pool.get();
        assert!(a.data.is_empty());
        drop(a);
        t.join().unwrap();
        let s = pool.stats();
        assert!(s.retained <= 2, "{s:?}");
        assert_eq!(s.returned + s.discarded, 4);
        assert_eq!(
            census.made.load(SeqCst) - census.dropped.load(SeqCst),
            s.retained
        );
        drop(pool);
        check_census(&census);
    });
}

/// One thread gets and puts through its hot slot while another reads the statistics and trims,
/// which reclaims every cache: the reclaim waits out the owner's section or the owner keeps
/// out of its cache, so no object is taken twice or lost; and a trim that starts after the
/// owner's last return empties the hot slot before it returns. Some execution must be of that
/// kind.
#[test]
fn loom_trim_and_stats_race_with_a_hot_slot() {
    // Executions whose trim started after the main thread's last return.
    static TRIMMED_AFTER: AtomicUsize = AtomicUsize::new(0);
    model(|| {
        let (pool, census) = pool(2);
        use_once(&pool); // this thread's hot slot now holds one object
        let p = pool.clone();
        let used = Arc::new(AtomicBool::new(false));
        let seen = used.clone();
        let t = thread::spawn(move || {
            assert!(p.stats().retained <= 2);
            let after = seen.load(SeqCst);
            p.trim(0);
            if after {
                // The owner touches the pool no more until the join: its hot slot is empty.
                let s = p.stats();
                assert_eq!(s.retained, 0, "trim left the hot slot's object: {s:?}");
                TRIMMED_AFTER.fetch_add(1, SeqCst);
            }
        });
        use_once(&pool); // out of the hot slot and back in, racing the trim
        used.store(true, SeqCst);
        t.join().unwrap();
        let s = pool.stats();
        assert!(s.retained <= 1, "{s:?}");
        use_once(&pool);
        let s = pool.stats();
        assert_eq!(s.retained, 1, "only the object just returned: {s:?}");
        assert_eq!(census.made.load(SeqCst) - census.dropped.load(SeqCst), 1);
        drop(pool);
        check_census(&census);
    });
    assert!(
        TRIMMED_AFTER.load(SeqCst) > 0,
        "no execution trimmed after the owner's last return"
    );
}

/// A cache passes, with the object in it, to the next thread that holds its slot. Thread A gets
/// and returns an object (kept in its cache) and exits; thread B, spawned after A is joined,
/// takes A's slot, and its first get is a hit from the inherited cache. (loom's join may return
/// before A's locals are destroyed, which is when A gives its slot back: in those schedules B
/// takes a fresh slot while A's claim is still live, so A's hot object counts as a live
/// thread's and is left in place, the pool's one bounded trade-off: B's get may miss.
/// Otherwise, if A's claim has ended, a reclaim finds it.) Meanwhile the main
/// thread, which took an object before A started and so holds a slot of its own, gives it back:
/// to its cache, or to the store while B reclaims. It takes nothing, so it cannot take A's
/// object from B.
#[test]
fn loom_the_next_holder_of_a_slot_inherits_its_cache() {
    // Some schedule must show the inheritance itself: B's get a hit.
    static B_HIT: AtomicUsize = AtomicUsize::new(0);
    model(|| {
        let (pool, census) = pool(2);
        let mine = pool.get();
        let p = pool.clone();
        thread::spawn(move || use_once(&p)).join().unwrap();
        let p = pool.clone();
        let b = thread::spawn(move || use_once(&p));
        drop(mine);
        b.join().unwrap();
        let s = pool.stats();
        assert!(
            matches!((s.misses, s.hits), (2, 1) | (3, 0)),
            "B's get: {s:?}"
        );
        B_HIT.fetch_add(s.hits as usize, SeqCst);
        check_settled(&pool, &census, 3, 2);
        drop(pool);
        check_census(&census);
    });
    assert!(
        B_HIT.load(SeqCst) > 0,
        "no schedule had B inherit A's cache"
    );
}

/// As above, with the main thread clearing the pool while B takes A's slot: the clear reaches
/// A's cache before or after B has it, and either way no object is lost, duplicated or handed
/// out dirty.
#[test]
fn loom_clear_races_the_next_holder_of_a_slot() {
    model(|| {
        let (pool, census) = pool(2);
        let p = pool.clone();
        thread::spawn(move || use_once(&p)).join().unwrap();
        let p = pool.clone();
        let b = thread::spawn(move || use_once(&p));
        pool.clear();
        b.join().unwrap();
        check_settled(&pool, &census, 2, 1);
        pool.clear();
        assert_eq!(pool.stats().retained, 0);
        drop(pool);
        check_census(&census);
    });
}

/// Capacity 1: an object taken through the hot slot is given back on another thread while the
/// taker's cache still holds the reservation. The return must not be dropped for want of room:
/// the reclaim gives the lent reservation back and the object is kept.
#[test]
fn loom_a_lent_reservation_never_blocks_a_cross_thread_return() {
    model(|| {
        let (pool, census) = pool(1);
        use_once(&pool); // the hot slot now holds the object under its reservation
        let g = Pool::get_owned(&pool); // lent out; the reservation stays with the cache
        let t = thread::spawn(move || drop(g));
        t.join().unwrap();
        let s = pool.stats();
        assert_eq!((s.retained, s.discarded), (1, 0), "{s:?}");
        use_once(&pool);
        let s = pool.stats();
        assert_eq!((s.retained, s.misses), (1, 1), "{s:?}");
        drop(pool);
        check_census(&census);
    });
}

/// A value built outside the pool, counted by `census`.
fn fresh(census: &std::sync::Arc<Census>) -> Obj {
    census.made.fetch_add(1, SeqCst);
    Obj {
        data: Vec::new(),
        census: census.clone(),
        dead: false,
    }
}

/// The budget counts exactly what the pool retains: after a `clear`, a pool of `capacity`
/// takes that many values and refuses the next. A unit lost (a ticket neither redeemed nor
/// revoked, a reservation never given back) refuses one too soon; a unit given back twice keeps
/// one too many.
fn check_budget(pool: &Pool<Obj>, census: &std::sync::Arc<Census>, capacity: usize) {
    pool.clear();
    for _ in 0..capacity {
        assert!(pool.try_put(fresh(census)).is_ok(), "a unit was lost");
    }
    assert!(
        pool.try_put(fresh(census)).is_err(),
        "a unit was given back twice"
    );
}

/// Capacity 1, its one unit kept by a lent-out object's ticket: a value put meanwhile is kept
/// (the put revokes the ticket), and the lent object, given back on another thread at any
/// point, is then dropped; or it came back first and the put is refused. One object retained
/// either way.
#[test]
fn loom_a_ticket_never_blocks_a_put_with_room() {
    // Some schedule must have the put before the return, and then the put is kept: a pool that
    // refused it in every schedule would let the ticket block it.
    static PUT_KEPT: AtomicUsize = AtomicUsize::new(0);
    model(|| {
        let (pool, census) = pool(1);
        assert_eq!(pool.prefill(1), 1);
        let g = Pool::get_owned(&pool);
        let t = thread::spawn(move || drop(g));
        let put = pool.try_put(fresh(&census));
        t.join().unwrap();
        let s = pool.stats();
        assert_eq!(s.retained, 1, "{s:?}");
        assert_eq!(s.discarded, u64::from(put.is_ok()), "{s:?}");
        PUT_KEPT.fetch_add(usize::from(put.is_ok()), SeqCst);
        drop(put);
        check_budget(&pool, &census, 1);
        drop(pool);
        check_census(&census);
    });
    assert!(
        PUT_KEPT.load(SeqCst) > 0,
        "no schedule kept the put made while the pool's one unit was a ticket"
    );
}

/// Set by any execution of the model below whose getter took a live thread's stack.
static LIVE_STACK_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A dry get on one thread takes the stack of a live thread that goes on getting and giving
/// back (the main thread stacks a second object behind its hot slot first): the reclaim waits
/// out the owner's section or the owner keeps out of its cache, so no object is handed out
/// twice or dirty, none is lost, and the pool keeps within its capacity. At least one
/// execution must take the stack, or the model did not reach the path it is for.
#[test]
fn loom_a_dry_get_takes_a_live_threads_stack_while_it_works() {
    model_bounded(2, || {
        let (pool, census) = pool(4);
        let (first, second) = (pool.get(), pool.get());
        drop(first); // to the hot slot
        drop(second); // behind it, on the stack
        let p = pool.clone();
        let getter = thread::spawn(move || {
            let a = p.get(); // the store is dry: this thread makes, or takes the stack
            let b = p.get();
            assert!(a.data.is_empty() && b.data.is_empty(), "handed out dirty");
        });
        use_once(&pool);
        getter.join().unwrap();
        let s = pool.stats();
        if s.reclaims > 0 {
            LIVE_STACK_TAKEN.store(true, SeqCst);
        }
        assert!(s.retained <= 4, "{s:?}");
        assert_eq!(
            census.made.load(SeqCst) - census.dropped.load(SeqCst),
            s.retained,
            "{s:?}"
        );
        drop(pool);
        check_census(&census);
    });
    assert!(
        LIVE_STACK_TAKEN.load(SeqCst),
        "no execution took the live thread's stack"
    );
}

/// Executions of the model below whose getter called the factory.
static DRY_GET_MISSED: AtomicUsize = AtomicUsize::new(0);

/// The race `Pool::units_all_stored` tolerates. That check lets a get that found its cache and
/// the store dry skip the look at the other caches (and a put that found the budget full skip
/// the look for room) while the budget counts exactly the objects in the store; it loads the
/// budget's count, then the store's length, and racing puts change the two one after the other.
///
/// Capacity 4. Thread A stacks an object behind its hot slot and exits: the budget counts two
/// units, both A's, and the store is empty. Then thread G's first get finds its own cache and
/// the store dry while the main thread, which never takes, puts two values, which go to the
/// store. Where both puts land between G's two loads, G reads two units and two stored objects,
/// "all stored", and calls the factory though A's stack holds an object: the one factory call
/// the check's doc allows, after which the budget is full and the return of the object made is
/// refused. Otherwise G's get hits: A's hot object if G took A's slot over, a stored value, or
/// what a reclaim moved out of A's cache; and where G took A's hot object, its return finds the
/// budget full with A's hot-slot reservation unused, which the put path's check must see and
/// reclaim. A get over before the puts began must hit (a get path whose check always said "all
/// stored" fails there), and some execution must show the race. Either way nothing is lost,
/// handed out twice or dirty, the pool ends with its capacity retained, and its budget counts
/// exactly that.
#[test]
fn loom_a_dry_get_racing_puts_to_the_store_costs_one_factory_call_at_most() {
    model_bounded(2, || {
        let (pool, census) = pool(4);
        let p = pool.clone();
        thread::spawn(move || {
            let (hot, stacked) = (p.get(), p.get());
            drop(hot);
            drop(stacked);
        })
        .join()
        .unwrap();
        let p = pool.clone();
        let got = Arc::new(AtomicBool::new(false));
        let got_there = got.clone();
        let getter = thread::spawn(move || {
            let o = Pool::get_owned(&p);
            got_there.store(true, SeqCst);
            o
        });
        // Whether G's get was over before the puts began, so that nothing raced it.
        let unraced = got.load(SeqCst);
        for _ in 0..2 {
            assert!(pool.try_put(fresh(&census)).is_ok(), "the budget had room");
        }
        let o = getter.join().unwrap();
        assert!(o.data.is_empty(), "handed out dirty");
        // A made two objects; G's get is the only other one.
        let missed = match pool.stats().misses {
            2 => false,
            3 => true,
            n => panic!("{n} misses: A's two, and G's get at most"),
        };
        assert!(
            !(missed && unraced),
            "a dry get no put raced called the factory while A's stack held an object"
        );
        drop(o);
        let s = pool.stats();
        // A miss leaves the budget full of objects (A's two and the two put), so the return of
        // the object made is refused; after a hit, the object comes back to a pool of three.
        assert_eq!((s.retained, s.discarded), (4, u64::from(missed)), "{s:?}");
        assert_eq!(s.returned + s.discarded, 5, "{s:?}");
        assert_eq!(
            census.made.load(SeqCst) - census.dropped.load(SeqCst),
            s.retained,
            "{s:?}"
        );
        check_budget(&pool, &census, 4);
        drop(pool);
        check_census(&census);
        if missed {
            DRY_GET_MISSED.fetch_add(1, SeqCst);
        }
    });
    assert!(
        DRY_GET_MISSED.load(SeqCst) > 0,
        "no execution had the puts land between the check's two loads: the model no longer \
         reaches the race it is for"
    );
}

/// The layout of the box the pool keeps an `Obj` in, `CachePadded<Held<Obj>>`, whose `Held`
/// adds the ticket (an epoch and a weight) to the value: one padded line. The spare-box model
/// first checks that a miss allocates one box of this layout, so a pool whose boxes change
/// layout fails there instead of leaving the box counts at zero.
fn item_box() -> Layout {
    Layout::new::<CachePadded<(Obj, u64, usize)>>()
}

thread_local! {
    /// Boxes of [`item_box`]'s layout allocated and freed on this OS thread. loom runs a
    /// model's threads as coroutines on the thread that runs the model, so these are one
    /// model's counts whatever other tests run meanwhile. A `const` thread-local without
    /// `Drop`: reading it allocates nothing.
    static ITEM_BOXES: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// `System`, counting the calling thread's item boxes in [`ITEM_BOXES`]. loom tracks its own
/// objects, not the heap: a spare box leaked or freed twice shows here.
struct CountingItemBoxes;

// SAFETY: every method forwards to `System`'s with the caller's arguments; the counting beside
// it touches only a thread-local `Cell`, which allocates nothing.
unsafe impl GlobalAlloc for CountingItemBoxes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout == item_box() {
            ITEM_BOXES.with(|n| n.set((n.get().0 + 1, n.get().1)));
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout == item_box() {
            ITEM_BOXES.with(|n| n.set((n.get().0, n.get().1 + 1)));
        }
        // SAFETY: the caller's contract, passed on: `ptr` came from `System.alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CountingItemBoxes = CountingItemBoxes;

/// Item boxes allocated and freed on this thread so far.
fn item_boxes() -> (usize, usize) {
    ITEM_BOXES.with(Cell::get)
}

/// Executions of the model below whose B boxed its object in the spare A left.
static SPARE_REUSED: AtomicUsize = AtomicUsize::new(0);

/// A spare box passes with its cache to the next holder of the slot, while a full reclaim frees
/// spares. Capacity 1, its unit held by a ticket: the main thread gets the one prefilled object
/// out of the store and holds it. Thread A detaches an object it made (`into_inner`), which
/// leaves the emptied box as its cache's spare, and exits. Thread B, spawned after A is joined,
/// takes A's slot over where A's exit came first (loom's join may return before a thread's
/// locals are destroyed; else B takes a fresh slot), and its miss boxes the new object in the
/// spare it inherited. Meanwhile the main thread puts a value: the budget is full of the ticket,
/// so the put (not refused before it is boxed, as a ticket is out) reclaims for room, a full
/// reclaim, which frees every cache's spare, A's included if B has not taken it yet. loom checks
/// that the reclaim and B's sections never touch the cache at once; the box counts check that
/// every box is a new one or A's spare, that none is left after `clear` (a cache keeps one box
/// at most, which `clear` frees with the objects) and that none is freed twice. Some execution
/// must show B boxing its object in A's spare.
#[test]
fn loom_the_next_holder_of_a_slot_boxes_in_its_spare_while_a_reclaim_frees_spares() {
    model_bounded(2, || {
        let start = item_boxes();
        let (pool, census) = pool(1);
        assert_eq!(pool.prefill(1), 1);
        let ticketed = pool.get(); // out of the store, keeping the one unit as a ticket
        let p = pool.clone();
        thread::spawn(move || {
            let before = item_boxes();
            drop(Pooled::into_inner(p.get()));
            let after = item_boxes();
            assert_eq!(
                (after.0 - before.0, after.1 - before.1),
                (1, 0),
                "a miss boxes its object in a box of `item_box`'s layout, which becomes A's spare"
            );
        })
        .join()
        .unwrap();
        let p = pool.clone();
        let b = thread::spawn(move || Pool::get_owned(&p));
        assert!(
            pool.try_put(fresh(&census)).is_ok(),
            "refused though the budget's one unit was a ticket a reclaim revokes"
        );
        let theirs = b.join().unwrap();
        assert!(theirs.data.is_empty(), "handed out dirty");
        drop(theirs);
        drop(ticketed);
        let s = check_settled(&pool, &census, 3, 1);
        // Every value boxed (the prefill's, the put's, and each miss's) took a new box, but for
        // one that B may have boxed in A's spare: no other thread had a spare when it boxed.
        let allocated = item_boxes().0 - start.0;
        let reused = (2 + s.misses as usize)
            .checked_sub(allocated)
            .filter(|&n| n <= 1)
            .unwrap_or_else(|| panic!("{allocated} boxes for {} misses: {s:?}", s.misses));
        pool.clear();
        let (made, freed) = item_boxes();
        assert_eq!(
            made - start.0,
            freed - start.1,
            "boxes left (or freed twice) after `clear`, with no object lent out: {s:?}"
        );
        check_budget(&pool, &census, 1);
        drop(pool);
        check_census(&census);
        let (made, freed) = item_boxes();
        assert_eq!(
            made - start.0,
            freed - start.1,
            "boxes leaked or freed twice"
        );
        SPARE_REUSED.fetch_add(reused, SeqCst);
    });
    assert!(
        SPARE_REUSED.load(SeqCst) > 0,
        "no execution had B box its object in the spare A left"
    );
}
