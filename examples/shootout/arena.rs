//! `thrifty::arena`: one request's allocations (N structs of 16, 32, 64 and 256 bytes in turn,
//! each written, plus four strings, all freed at the end) against a heap allocation per object,
//! a fresh `bumpalo::Bump` per request, and the peer arenas; the bound is one `Bump` the thread
//! keeps and resets, which is all a pool of arenas does minus finding the arena and giving it
//! back. `benches/arena.rs` measures the same payload with criterion, from 10 to 100 000
//! objects.
//!
//! Workloads: 10, 1 000 and 10 000 objects per request (ns/op is per request), on 1 and 2
//! threads for 1 000 (every thread uses the same `ArenaPool`).

use crate::harness::{per_thread, Candidate, Harness};
use std::cell::RefCell;
use std::hint::black_box;
use std::sync::Arc;
use thrifty::arena::{ArenaGuard, ArenaPool};

pub fn run(h: &mut Harness) {
    let mut t = h.table(
        "arena",
        "one request: N small structs + 4 strings, freed together",
    );
    t.workload("10 objects", 1, candidates(10, 1));
    for threads in t.threads(&[1, 2]) {
        t.workload("1 000 objects", threads, candidates(1_000, threads));
    }
    t.workload("10 000 objects", 1, candidates(10_000, 1));
}

const STRINGS: [&str; 4] = ["GET", "/api/v1/items/12345", "HTTP/1.1", "application/json"];

/// One request: `n` structs written and read back, four strings.
#[inline(always)]
fn request<A: Alloc>(a: &A, n: usize) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        let x = black_box(i as u64);
        sum += match i % 4 {
            0 => a.s16([x; 2]),
            1 => a.s32([x; 4]),
            2 => a.s64([x; 8]),
            _ => a.s256([x; 32]),
        };
    }
    for s in STRINGS {
        sum += a.str(black_box(s));
    }
    black_box(sum)
}

/// Where a request puts its objects; each method returns the last word, read back.
trait Alloc {
    fn s16(&self, v: [u64; 2]) -> u64;
    fn s32(&self, v: [u64; 4]) -> u64;
    fn s64(&self, v: [u64; 8]) -> u64;
    fn s256(&self, v: [u64; 32]) -> u64;
    fn str(&self, s: &str) -> u64;
}

/// `Alloc` for a type whose `$alloc(v)` and `$str(s)` return something that derefs to the
/// value.
macro_rules! alloc_by {
    ($t:ty, |$a:ident, $v:ident| $alloc:expr, |$b:ident, $s:ident| $str:expr) => {
        impl Alloc for $t {
            #[inline(always)]
            fn s16(&self, $v: [u64; 2]) -> u64 {
                let $a = self;
                ($alloc)[1]
            }
            #[inline(always)]
            fn s32(&self, $v: [u64; 4]) -> u64 {
                let $a = self;
                ($alloc)[3]
            }
            #[inline(always)]
            fn s64(&self, $v: [u64; 8]) -> u64 {
                let $a = self;
                ($alloc)[7]
            }
            #[inline(always)]
            fn s256(&self, $v: [u64; 32]) -> u64 {
                let $a = self;
                ($alloc)[31]
            }
            #[inline(always)]
            fn str(&self, $s: &str) -> u64 {
                let $b = self;
                $str
            }
        }
    };
}

alloc_by!(
    bumpalo::Bump,
    |a, v| a.alloc(v),
    |a, s| a.alloc_str(s).len() as u64
);
alloc_by!(
    ArenaGuard<'_>,
    |a, v| a.alloc(v),
    |a, s| a.alloc_str(s).len() as u64
);
alloc_by!(
    bump_scope::Bump,
    |a, v| *a.alloc(v),
    |a, s| a.alloc_str(s).len() as u64
);

/// A heap allocation per object, each held to the end of the request as a request's objects
/// are (freed by `end` at the end), in a `Vec` per type as `benches/arena.rs` keeps them: a
/// request's objects have their own types, so each free is a direct call with a known size (a
/// `Box<dyn Any>` per object would add a virtual drop and a wider list entry to std's row only).
#[allow(clippy::vec_box)] // one heap allocation per object is the baseline measured
struct Heap {
    s16: RefCell<Vec<Box<[u64; 2]>>>,
    s32: RefCell<Vec<Box<[u64; 4]>>>,
    s64: RefCell<Vec<Box<[u64; 8]>>>,
    s256: RefCell<Vec<Box<[u64; 32]>>>,
    strs: RefCell<Vec<Box<str>>>,
}

impl Heap {
    /// Lists with room for a request of `n` objects.
    fn new(n: usize) -> Self {
        fn room<T>(n: usize) -> RefCell<Vec<T>> {
            RefCell::new(Vec::with_capacity(n / 4 + 1))
        }
        Heap {
            s16: room(n),
            s32: room(n),
            s64: room(n),
            s256: room(n),
            strs: RefCell::new(Vec::with_capacity(STRINGS.len())),
        }
    }

    /// Frees the request's objects, keeping the lists.
    fn end(&self) {
        self.s16.borrow_mut().clear();
        self.s32.borrow_mut().clear();
        self.s64.borrow_mut().clear();
        self.s256.borrow_mut().clear();
        self.strs.borrow_mut().clear();
    }
}

/// `Heap`'s method for one struct size: box the value, read its last word, keep the box.
macro_rules! boxed {
    ($field:ident, $n:literal) => {
        #[inline(always)]
        fn $field(&self, v: [u64; $n]) -> u64 {
            let b = Box::new(v);
            let last = b[$n - 1];
            self.$field.borrow_mut().push(b);
            last
        }
    };
}

impl Alloc for Heap {
    boxed!(s16, 2);
    boxed!(s32, 4);
    boxed!(s64, 8);
    boxed!(s256, 32);
    #[inline(always)]
    fn str(&self, s: &str) -> u64 {
        let b: Box<str> = s.into();
        let len = b.len() as u64;
        self.strs.borrow_mut().push(b);
        len
    }
}

/// typed-arena: one arena per struct type and one for the strings' bytes, made per request (it
/// has no reset).
struct Typed {
    s16: typed_arena::Arena<[u64; 2]>,
    s32: typed_arena::Arena<[u64; 4]>,
    s64: typed_arena::Arena<[u64; 8]>,
    s256: typed_arena::Arena<[u64; 32]>,
    bytes: typed_arena::Arena<u8>,
}

impl Alloc for Typed {
    fn s16(&self, v: [u64; 2]) -> u64 {
        self.s16.alloc(v)[1]
    }
    fn s32(&self, v: [u64; 4]) -> u64 {
        self.s32.alloc(v)[3]
    }
    fn s64(&self, v: [u64; 8]) -> u64 {
        self.s64.alloc(v)[7]
    }
    fn s256(&self, v: [u64; 32]) -> u64 {
        self.s256.alloc(v)[31]
    }
    fn str(&self, s: &str) -> u64 {
        self.bytes.alloc_str(s).len() as u64
    }
}

fn candidates(n: usize, threads: usize) -> Vec<Candidate> {
    let arenas = Arc::new(ArenaPool::new());
    // Each thread's kept arena lives across rounds, warm, as the pool's arenas do.
    let (bumps, scopes) = (
        per_thread::<bumpalo::Bump>(threads),
        per_thread::<bump_scope::Bump>(threads),
    );
    vec![
        Candidate::std("Box per object", move |_, ops| {
            let heap = Heap::new(n);
            for _ in 0..ops {
                request(&heap, n);
                heap.end();
            }
        }),
        Candidate::new("bumpalo Bump::new() per request, unsized", move |_, ops| {
            for _ in 0..ops {
                request(&bumpalo::Bump::new(), n);
            }
        }),
        Candidate::new("bumpalo Bump kept, reset (bound)", move |t, ops| {
            let mut slot = bumps[t].lock().unwrap();
            let bump = slot.get_or_insert_with(bumpalo::Bump::new);
            for _ in 0..ops {
                request(&*bump, n);
                bump.reset();
            }
        }),
        Candidate::new("thrifty ArenaPool", move |_, ops| {
            for _ in 0..ops {
                request(&arenas.get(), n);
            }
        }),
        Candidate::new("typed-arena per request, unsized", move |_, ops| {
            for _ in 0..ops {
                let typed = Typed {
                    s16: typed_arena::Arena::new(),
                    s32: typed_arena::Arena::new(),
                    s64: typed_arena::Arena::new(),
                    s256: typed_arena::Arena::new(),
                    bytes: typed_arena::Arena::new(),
                };
                request(&typed, n);
            }
        }),
        Candidate::new("bump-scope Bump kept, reset", move |t, ops| {
            let mut slot = scopes[t].lock().unwrap();
            let bump = slot.get_or_insert_with(bump_scope::Bump::new);
            for _ in 0..ops {
                request(&*bump, n);
                bump.reset();
            }
        }),
    ]
}
