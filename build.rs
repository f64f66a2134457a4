//! Tells the crate whether the compiler takes `label` operands in `asm!` (Rust 1.87 and later):
//! `cfg(thrifty_asm_goto)`. On x86-64 the counter's hot add then compares a counter's state word
//! where it lies and branches on the flags (`src/counter/owned.rs`); older compilers build the
//! plain compare, one instruction longer. Reads `rustc --version` only: no dependency, no file.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok());
    // "rustc 1.95.0 (59807616e 2026-04-14)" or "rustc 1.97.0-nightly (...)".
    let minor = version.as_deref().and_then(|v| {
        let mut parts = v.strip_prefix("rustc 1.")?.split('.');
        parts.next()?.parse::<u32>().ok()
    });
    if minor.is_some_and(|minor| minor >= 87) {
        println!("cargo:rustc-cfg=thrifty_asm_goto");
    }
}
