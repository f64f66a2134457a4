//! One request's allocations, the payload of `benches/arena.rs` and of the shootout's arena
//! table: `n` structs of 16, 32, 64 and 256 bytes in turn, each written with values that depend
//! on its index and one word of it read back, then four strings; and where each candidate puts
//! them ([`Alloc`]). One copy, so the bench and the table measure the same work.

use std::cell::RefCell;
use std::hint::black_box;

pub const STRINGS: [&str; 4] = ["GET", "/api/v1/items/12345", "HTTP/1.1", "application/json"];

#[derive(Clone, Copy)]
pub struct S16(pub [u64; 2]);
#[derive(Clone, Copy)]
pub struct S32(pub [u64; 4]);
#[derive(Clone, Copy)]
pub struct S64(pub [u64; 8]);
#[derive(Clone, Copy)]
pub struct S256(pub [u64; 32]);

/// Anything a request can allocate its objects in; each method returns the word it read back.
pub trait Alloc {
    fn s16(&self, v: S16) -> u64;
    fn s32(&self, v: S32) -> u64;
    fn s64(&self, v: S64) -> u64;
    fn s256(&self, v: S256) -> u64;
    fn str(&self, s: &str) -> u64;
}

/// One request's allocations into `a`; returns a checksum of what it read back.
#[inline(always)]
pub fn request(a: &impl Alloc, n: usize) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        let x = black_box(i as u64);
        sum += match i % 4 {
            0 => a.s16(S16([x; 2])),
            1 => a.s32(S32([x; 4])),
            2 => a.s64(S64([x; 8])),
            _ => a.s256(S256([x; 32])),
        };
    }
    for s in STRINGS {
        sum += a.str(black_box(s));
    }
    sum
}

/// `Alloc` for a bump arena whose `$alloc(v)` returns a reference to `v` in place and whose
/// `$str(s)` copies a string in.
macro_rules! bump_like {
    ($t:ty, $alloc:ident, $str:ident) => {
        impl Alloc for $t {
            #[inline(always)]
            fn s16(&self, v: S16) -> u64 {
                self.$alloc(v).0[1]
            }
            #[inline(always)]
            fn s32(&self, v: S32) -> u64 {
                self.$alloc(v).0[3]
            }
            #[inline(always)]
            fn s64(&self, v: S64) -> u64 {
                self.$alloc(v).0[7]
            }
            #[inline(always)]
            fn s256(&self, v: S256) -> u64 {
                self.$alloc(v).0[31]
            }
            #[inline(always)]
            fn str(&self, s: &str) -> u64 {
                self.$str(s).len() as u64
            }
        }
    };
}

bump_like!(bumpalo::Bump, alloc, alloc_str);
bump_like!(thrifty::arena::ArenaGuard<'_>, alloc, alloc_str);
bump_like!(thrifty::arena::ArenaGuardOwned, alloc, alloc_str);
bump_like!(bump_scope::Bump, alloc, alloc_str);

/// A heap allocation per object, each held to the end of the request as a request's objects
/// are (freed by `end`), in a `Vec` per type, the lists kept across requests: a request's
/// objects have their own types, so each free is a direct call with a known size.
#[allow(clippy::vec_box)] // one heap allocation per object is the baseline measured
#[derive(Default)]
pub struct Boxes {
    s16: RefCell<Vec<Box<S16>>>,
    s32: RefCell<Vec<Box<S32>>>,
    s64: RefCell<Vec<Box<S64>>>,
    s256: RefCell<Vec<Box<S256>>>,
    strs: RefCell<Vec<Box<str>>>,
}

/// `Boxes`' method for one struct size: box the value, read a word back, keep the box.
macro_rules! boxed {
    ($field:ident, $t:ty, $last:literal) => {
        #[inline(always)]
        fn $field(&self, v: $t) -> u64 {
            let b = Box::new(v);
            let r = b.0[$last];
            self.$field.borrow_mut().push(b);
            r
        }
    };
}

impl Alloc for Boxes {
    boxed!(s16, S16, 1);
    boxed!(s32, S32, 3);
    boxed!(s64, S64, 7);
    boxed!(s256, S256, 31);
    #[inline(always)]
    fn str(&self, s: &str) -> u64 {
        let b: Box<str> = s.into();
        let r = b.len() as u64;
        self.strs.borrow_mut().push(b);
        r
    }
}

impl Boxes {
    /// Lists with room for a request of `n` objects, so fresh lists cost no regrowth.
    pub fn for_request(n: usize) -> Self {
        fn room<T>(n: usize) -> RefCell<Vec<T>> {
            RefCell::new(Vec::with_capacity(n / 4 + 1))
        }
        Boxes {
            s16: room(n),
            s32: room(n),
            s64: room(n),
            s256: room(n),
            strs: RefCell::new(Vec::with_capacity(STRINGS.len())),
        }
    }

    /// Frees the request's objects, keeping the lists.
    pub fn end(&self) {
        self.s16.borrow_mut().clear();
        self.s32.borrow_mut().clear();
        self.s64.borrow_mut().clear();
        self.s256.borrow_mut().clear();
        self.strs.borrow_mut().clear();
    }
}

/// typed-arena: one arena per struct type and one for the strings' bytes, made per request (it
/// has no reset).
pub struct Typed {
    s16: typed_arena::Arena<S16>,
    s32: typed_arena::Arena<S32>,
    s64: typed_arena::Arena<S64>,
    s256: typed_arena::Arena<S256>,
    bytes: typed_arena::Arena<u8>,
}

impl Typed {
    pub fn new() -> Self {
        Self {
            s16: typed_arena::Arena::new(),
            s32: typed_arena::Arena::new(),
            s64: typed_arena::Arena::new(),
            s256: typed_arena::Arena::new(),
            bytes: typed_arena::Arena::new(),
        }
    }
}

impl Alloc for Typed {
    fn s16(&self, v: S16) -> u64 {
        self.s16.alloc(v).0[1]
    }
    fn s32(&self, v: S32) -> u64 {
        self.s32.alloc(v).0[3]
    }
    fn s64(&self, v: S64) -> u64 {
        self.s64.alloc(v).0[7]
    }
    fn s256(&self, v: S256) -> u64 {
        self.s256.alloc(v).0[31]
    }
    fn str(&self, s: &str) -> u64 {
        self.bytes.alloc_str(s).len() as u64
    }
}
