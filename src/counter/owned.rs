//! The owner's add to its word in a striped counter's cell, in the instruction form that runs
//! fastest on x86-64.
//!
//! The add ([`bump_owned`]) is a relaxed load and a relaxed store (one writer), which LLVM
//! compiles to one memory-destination `add`. A thread adding in a loop loads the word its last
//! add stored, and how soon that load gets the stored value depends on the core and on the
//! instructions. On an Intel Golden Cove-class core it gets it at once only when the load, the add
//! and the store are three instructions with another one between the load and the store (a `nop`
//! was measured) and the address in one register; as one memory-destination `add`, as three
//! instructions with nothing between, or with the address as base plus index, each add waits out
//! the forwarding latency, about seven cycles, four times as long (JOURNAL.md has the loops'
//! times; the shootout's `own cell, memory-destination add` row shows the slow form beside the
//! floor row). So on x86-64 the address and the loaded value each pass through an empty `asm!`
//! block (a `nop` for the value): the compiler can then neither fold the three into one
//! instruction nor the address into base plus index. Elsewhere, and under Miri and loom, the plain
//! load and store.

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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn bump_owned_adds_and_wraps() {
        let word = AtomicU64::new(u64::MAX - 1);
        bump_owned(&word, 1);
        assert_eq!(word.load(Ordering::Relaxed), u64::MAX);
        bump_owned(&word, 3);
        assert_eq!(word.load(Ordering::Relaxed), 2);
    }
}
