//! loom models of the pool that need the crate's insides: a thread whose slot lies past the
//! tracked ones (`sync::claim_untracked`), whose liveness a reclaim cannot tell, so a get's
//! reclaim may take a live thread's hot object; and a ticket that `clear` revokes while another
//! thread redeems it, seen through `Pool::tickets_out`. `tests/loom_pool.rs` has the models that
//! the public API alone can set up.

use super::Pool;
use crate::sync::loom_model::{claim_untracked, model, thread};
use crate::sync::plain::RelaxedUsize;
use crate::sync::{thread_slot, Arc, UnsafeCell, TRACKED_SLOTS};

/// Objects made and dropped in one execution.
struct Census {
    made: RelaxedUsize,
    dropped: RelaxedUsize,
}

/// A pooled object whose every use writes a modelled cell, so loom reports two holders that
/// touch it without a happens-before edge between them (one object handed to two threads).
struct Obj {
    /// The factory's count of objects made before this one.
    id: usize,
    uses: UnsafeCell<usize>,
    census: Arc<Census>,
}

impl Drop for Obj {
    fn drop(&mut self) {
        self.census.dropped.increment();
    }
}

/// Writes the object a guard holds.
fn write(o: &Obj) {
    // SAFETY: the guard is the only holder of `o` while the pool is correct; a second holder
    // on another thread without a happens-before edge is the data race loom reports here.
    o.uses.with_mut(|n| unsafe { *n += 1 });
}

/// Gets an object, writes it, and returns it.
fn use_once(pool: &Pool<Obj>) {
    write(&pool.get());
}

#[test]
fn loom_a_get_that_reclaims_a_live_untracked_threads_hot_object_races_its_owner() {
    // Executions where the thief reused the main thread's object (its reclaim won the race),
    // and where the factory made it one (the main thread's get won).
    let outcomes: &'static [RelaxedUsize; 2] =
        Box::leak(Box::new([RelaxedUsize::new(), RelaxedUsize::new()]));
    model(move || {
        // The main thread's claim: a slot past the tracked ones, so its cache records no
        // owner; the thief's: the lowest free slot, tracked.
        let slot = claim_untracked(thread_slot);
        assert!(slot >= TRACKED_SLOTS, "slot {slot} is tracked");
        let census = Arc::new(Census {
            made: RelaxedUsize::new(),
            dropped: RelaxedUsize::new(),
        });
        let made = Arc::clone(&census);
        let pool = Arc::new(
            Pool::builder()
                .capacity(1)
                .reset(|_: &mut Obj| {})
                .build(move || {
                    let id = made.made.get();
                    made.made.increment();
                    Obj {
                        id,
                        uses: UnsafeCell::new(0),
                        census: Arc::clone(&made),
                    }
                }),
        );
        // The main thread's hot slot now holds the one object, under an owner a reclaim
        // counts as gone.
        use_once(&pool);
        let other = Arc::clone(&pool);
        // Finds the store dry and the main thread's cache stealable: reclaims its hot object
        // while the main thread gets from that very slot. Each keeps what it got until both
        // are done, so the model explores only the two gets against each other.
        let thief = thread::spawn(move || {
            let o = Pool::get_owned(&other);
            write(&o);
            o
        });
        let mine = pool.get();
        write(&mine);
        let theirs = thief.join().unwrap();
        let reused = theirs.id == 0;
        drop(mine);
        drop(theirs);
        let kept = pool.stats().retained;
        drop(pool);
        let (made, dropped) = (census.made.get(), census.dropped.get());
        assert_eq!(made, dropped, "an object leaked or was dropped twice");
        assert_eq!(made, 2, "two holders at once, one object before them");
        assert!(kept <= 1, "{kept} retained by a pool of capacity 1");
        outcomes[usize::from(!reused)].increment();
    });
    let [reused, made_anew] = outcomes.each_ref().map(RelaxedUsize::get);
    assert!(
        reused > 0 && made_anew > 0,
        "one outcome never explored: {reused} reuses, {made_anew} new objects"
    );
}

/// A census of nothing made yet.
fn census() -> Arc<Census> {
    Arc::new(Census {
        made: RelaxedUsize::new(),
        dropped: RelaxedUsize::new(),
    })
}

/// A value counted by `census`, numbered by it as the factory numbers its objects.
fn fresh(census: &Arc<Census>) -> Obj {
    let id = census.made.get();
    census.made.increment();
    Obj {
        id,
        uses: UnsafeCell::new(0),
        census: Arc::clone(census),
    }
}

/// An object taken from the shared store keeps its unit of the budget as a ticket; another
/// thread redeems it when it gives the object back, while `clear` revokes every ticket out. So
/// when `clear` returns no ticket is out: redeemed before the revocation, or revoked (and worth
/// nothing when the object comes back). Never both: afterwards the pool of capacity 1 takes one
/// value and refuses the next (a unit lost refuses the first, one given back twice keeps the
/// second).
#[test]
fn loom_a_ticket_is_redeemed_or_revoked_once() {
    model(|| {
        let census = census();
        let made = Arc::clone(&census);
        let pool = Arc::new(
            Pool::builder()
                .capacity(1)
                .reset(|_: &mut Obj| {})
                .build(move || fresh(&made)),
        );
        assert_eq!(pool.prefill(1), 1);
        let g = Pool::get_owned(&pool); // from the store: keeps its unit as a ticket
        assert!(
            pool.tickets_out(),
            "the get from the store issued no ticket"
        );
        let t = thread::spawn(move || drop(g));
        pool.clear();
        assert!(
            !pool.tickets_out(),
            "a ticket is out after `clear` returned"
        );
        t.join().unwrap();
        let s = pool.stats();
        assert!(s.retained <= 1, "{s:?}");
        assert_eq!(s.returned + s.discarded, 1, "{s:?}");
        pool.clear();
        assert!(pool.try_put(fresh(&census)).is_ok(), "a unit was lost");
        assert!(
            pool.try_put(fresh(&census)).is_err(),
            "a unit was given back twice"
        );
        drop(pool);
        assert_eq!(
            census.made.get(),
            census.dropped.get(),
            "an object leaked or was dropped twice"
        );
    });
}
