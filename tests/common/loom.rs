//! The one way every `tests/loom_*.rs` file runs a model: included with
//! `#[path = "common/loom.rs"] mod loom_model;`.
#![allow(dead_code)] // each binary uses what it needs

/// Runs `f` under loom with at most `preemptions` preemptions per execution; returns how many
/// executions loom explored.
///
/// # Panics
/// If loom explored one execution only: a model that ran once checked no interleaving. loom's
/// first schedule runs the main thread until it blocks, and if the threads racing it have only
/// loaded by then, loom may find no race to reorder (tokio-rs/loom#392); the main thread writing
/// before it waits avoids it (`src/pool/ring_tests.rs`).
pub fn model_bounded(preemptions: usize, f: impl Fn() + Sync + Send + 'static) -> usize {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    check(builder, f)
}

/// [`model`] with room for `max_branches` scheduling points per execution (loom's default is
/// 1 000), for a model whose one thread walks many objects (every shard of a map with the
/// default shard count, 128 under loom).
pub fn model_long(max_branches: usize, f: impl Fn() + Sync + Send + 'static) -> usize {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions());
    builder.max_branches = max_branches;
    check(builder, f)
}

/// Runs `f` under `builder`, counting executions; panics if loom explored only one.
fn check(builder: loom::model::Builder, f: impl Fn() + Sync + Send + 'static) -> usize {
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = executions.clone();
    builder.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    let n = executions.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("explored {n} executions");
    assert!(n > 1, "loom explored only {n} execution: a vacuous model");
    n
}

/// [`model_bounded`] with the bound `LOOM_MAX_PREEMPTIONS` gives (2 if unset, as CI runs it).
pub fn model(f: impl Fn() + Sync + Send + 'static) -> usize {
    model_bounded(preemptions(), f)
}

/// The preemption bound `LOOM_MAX_PREEMPTIONS` gives (2 if unset, as CI runs it).
fn preemptions() -> usize {
    std::env::var("LOOM_MAX_PREEMPTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2)
}
