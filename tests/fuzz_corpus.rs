//! Replays every seed and finding under `fuzz/corpus/<target>/` through the same interpreter the
//! cargo-fuzz target runs (`fuzz/ops/<target>.rs`), so the corpus is checked on stable in CI.

#![cfg(not(loom))]
// Every interpreter includes `fuzz/ops/bytes.rs` itself, since each cargo-fuzz target builds
// exactly one interpreter; here they all meet, so the reader is compiled once per interpreter.
#![allow(clippy::duplicate_mod)]

use std::path::Path;

/// Installed so that the `measure` interpreter checks exact counts (its read-outs panic without
/// it); the other interpreters do not read it.
#[global_allocator]
static ALLOC: thrifty::measure::CountingAlloc = thrifty::measure::CountingAlloc::new();

/// Files replayed per target under Miri (which needs `-Zmiri-disable-isolation` to read them),
/// the first in name order: the whole corpus, some 500 files a target, would take hours there.
const MIRI_FILES: usize = 6;

/// Feeds every file of `fuzz/corpus/<target>/` to `run` (under Miri, the first [`MIRI_FILES`]);
/// fails if the folder is empty.
#[allow(dead_code)]
fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files = 0;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    if cfg!(miri) {
        paths.sort();
        paths.truncate(MIRI_FILES);
    }
    for path in paths {
        let data = std::fs::read(&path).unwrap();
        // Name the input on failure so it can be rerun with `cargo fuzz run <target> <path>`.
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{} failed on {}", target, path.display());
        files += 1;
    }
    assert!(files > 0, "{} has no seeds", dir.display());
}

/// One test per fuzz target: `corpus!(name, "../fuzz/ops/name.rs")` includes the interpreter as
/// module `name` and replays `fuzz/corpus/name/` through its `run(&[u8])`.
#[allow(unused_macros)]
macro_rules! corpus {
    ($name:ident, $path:literal) => {
        #[path = $path]
        mod $name;

        #[test]
        fn $name() {
            replay(stringify!($name), $name::run);
        }
    };
}

// One line per module:
corpus!(counter, "../fuzz/ops/counter.rs");
corpus!(pool, "../fuzz/ops/pool.rs");
corpus!(arena, "../fuzz/ops/arena.rs");
corpus!(map_sharded, "../fuzz/ops/map_sharded.rs");
corpus!(map_cow, "../fuzz/ops/map_cow.rs");
corpus!(limit, "../fuzz/ops/limit.rs");
corpus!(channel, "../fuzz/ops/channel.rs");
corpus!(measure, "../fuzz/ops/measure.rs");
