//! The owner's add to its word in a striped counter's cell, in the instruction form a store
//! forwards from at once.
//!
//! The add is a relaxed load and a relaxed store (one writer), which LLVM compiles to one
//! memory-destination `add`. A thread adding in a loop loads the word its last add stored, and
//! how soon that load gets the stored value depends on the core. Timed on an Intel Xeon VM (2
//! cores, 2026-12-05; the repository's JOURNAL.md has the loops): the memory-destination `add`
//! took 1.9-2.0 ns an iteration, the same load, add and store as three instructions 1.9 ns too,
//! and those three with a `nop` between the load and the store (before the add or after it),
//! their address in one register, 0.25-0.55 ns; with the address as base plus index, 1.9 ns
//! again. That core forwards the store to the next load at once, without the usual forwarding
//! latency, only in that form.
//! So on x86-64 the address and the loaded value each pass through an empty `asm!` block (a `nop`
//! for the value): the compiler can then neither fold the three into one instruction nor the
//! address into base plus index. Elsewhere, and under Miri and loom, the plain load and store.

use crate::sync::{AtomicU64, Ordering};

/// The owner's add: a relaxed load and a relaxed store, no locked instruction.
#[inline(always)]
pub(super) fn bump_owned(owned: &AtomicU64, n: u64) {
    let owned = one_register(owned);
    // Relaxed load and store: this thread is the only writer of its `owned` word (see the module
    // doc of `cells`), so the load returns its own last store; readers need no ordering with
    // anything else.
    let v = apart(owned.load(Ordering::Relaxed));
    owned.store(v.wrapping_add(n), Ordering::Relaxed);
}

/// `word`, its address computed into one register.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
#[inline(always)]
// The block reads and writes no memory: the pointer only passes through a register.
#[allow(clippy::pointers_in_nomem_asm_block)]
fn one_register(word: &AtomicU64) -> &AtomicU64 {
    let mut p: *const AtomicU64 = word;
    // SAFETY: an empty template: no instruction, no memory or flags touched, `p` unchanged.
    unsafe { std::arch::asm!("/* {0} */", inout(reg) p, options(nomem, nostack, preserves_flags)) };
    // SAFETY: `p` is `word`'s address, unchanged, with `word`'s provenance and lifetime.
    unsafe { &*p }
}

/// `v`, with a `nop` between the load that gave it and the add that uses it.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
#[inline(always)]
fn apart(mut v: u64) -> u64 {
    // SAFETY: a `nop`: no memory or flags touched, `v` unchanged.
    unsafe {
        std::arch::asm!("nop /* {0} */", inout(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// `word` (no `asm!` here).
#[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
#[inline(always)]
fn one_register(word: &AtomicU64) -> &AtomicU64 {
    word
}

/// `v` (no `asm!` here).
#[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
#[inline(always)]
fn apart(v: u64) -> u64 {
    v
}
