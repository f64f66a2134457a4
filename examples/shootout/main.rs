//! `cargo run --release --example shootout`: every thrifty primitive against its std alternative
//! and peer crates, side by side in one run, one table per module.
//!
//! Flags: `--only <module>`, `--threads <n,...>`, `--quick` (a few seconds; CI uses it to prove
//! the command runs), `--markdown` (tables ready to paste into the README), `--tails` (each
//! candidate's batch-time percentiles under each table), `--help`.

mod arena;
#[path = "../common/arena_request.rs"]
mod arena_request;
mod channel;
mod counter;
mod counter_registry;
mod demo;
mod harness;
mod histogram;
mod limit;
mod map_cow;
mod map_sharded;
mod pool;
mod pool_crowd;
mod pool_threads;
mod report;
#[path = "../common/start_line.rs"]
mod start_line;

use harness::{Harness, Settings};
use thrifty::measure::CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// A table's entry: its module name for `--only`, and the function that measures it.
type Module = (&'static str, fn(&mut Harness));

/// Every table, in print order.
const MODULES: &[Module] = &[
    ("demo", demo::run),
    ("pool", pool::run),
    ("pool", pool_threads::run),
    ("pool", pool_crowd::run),
    ("counter", counter::run),
    ("counter", counter_registry::run),
    ("arena", arena::run),
    ("map", map_sharded::run),
    ("map", map_cow::run),
    ("limit", limit::run),
    ("channel", channel::run),
];

/// What `--help` prints, and what follows an argument error.
fn usage() -> String {
    let mut modules: Vec<&str> = MODULES.iter().map(|(name, _)| *name).collect();
    modules.dedup(); // a module with several tables has several entries, side by side
    format!(
        "usage: cargo run --release --example shootout -- [--only <module>] [--threads 1,2,...] [--quick] [--markdown] [--tails]\n\
         \n  \
         --only <module>     run one module's tables: {modules}\n  \
         --threads <n,...>   thread counts for every workload that varies them (default: each table's own)\n  \
         --quick             short rounds: proves the command runs (CI uses it), not for quoting\n  \
         --markdown          print the tables as Markdown, ready to paste into the README\n  \
         --tails             add, under each table, the p50/p99/p99.9/longest time per op of batches of 64 ops\n  \
         -h, --help          print this and exit",
        modules = modules.join(", "),
    )
}

/// What the command line asks for.
enum Command {
    Run(Settings),
    Help,
}

fn main() {
    let settings = match parse(std::env::args().skip(1)) {
        Ok(Command::Run(s)) => s,
        Ok(Command::Help) => {
            println!("{}", usage());
            return;
        }
        Err(msg) => {
            eprintln!("shootout: {msg}\n{}", usage());
            std::process::exit(2);
        }
    };
    if let Some(only) = &settings.only {
        if !MODULES.iter().any(|(name, _)| name == only) {
            eprintln!("shootout: no module {only:?}\n{}", usage());
            std::process::exit(2);
        }
    }
    // glibc's malloc skips its locking until the process's first thread: one spawned here puts
    // the whole run, setup on this thread included, in the state a threaded program runs in.
    // (Every round runs on spawned threads, 1-thread rows too: see `harness::run_round`.)
    std::thread::spawn(|| ()).join().unwrap();
    let started = std::time::Instant::now();
    let mut h = Harness::new(settings.clone());
    h.header();
    for (name, run) in MODULES {
        if settings.only.as_deref().map_or(true, |only| only == *name) {
            run(&mut h);
        }
    }
    h.footer();
    println!(
        "shootout finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut s = Settings {
        only: None,
        threads: None,
        quick: false,
        markdown: false,
        tails: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--quick" => s.quick = true,
            "--markdown" => s.markdown = true,
            "--tails" => s.tails = true,
            "--only" => s.only = Some(args.next().ok_or("--only needs a module name")?),
            "--threads" => {
                let list = args.next().ok_or("--threads needs a list such as 1,2,4")?;
                let threads = list
                    .split(',')
                    .map(|n| n.trim().parse::<usize>().ok().filter(|&n| n > 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        format!("--threads {list:?}: expected positive numbers, e.g. 1,2,4")
                    })?;
                s.threads = Some(threads);
            }
            // `cargo bench`/`cargo test` pass these to every target; accept and ignore them.
            "--bench" | "--test" | "--nocapture" => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Command::Run(s))
}
