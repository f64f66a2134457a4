//! An A/B of thrifty's `bounded` channel against crossbeam-channel with `p` producers and `p`
//! consumers on a channel of `u64` (1024 slots unless told): rounds of 4 M messages in all (at most
//! 100 000 per slot, so that a channel of a few slots, whose threads wait by turns, ends its rounds
//! in seconds; rounded down to a multiple of `p`), the two candidates alternating, each going first
//! in every other round, a fresh channel each round. It prints each one's median, fastest and
//! slowest time per message, and for thrifty how many sends per 1000 found the channel full (from
//! `Stats::full_sends`): a channel that keeps filling runs in a slower regime, and a round's time
//! follows which regime it fell into.
//!
//! `cargo run --release --example channel_pairs -- 1,2,4,8 [slots]` (producer/consumer pairs; 1,2
//! by default; slots 1024 by default). The shootout's channel table measures the same shape with
//! its own rounds; this program exists to repeat one comparison many times cheaply.

use std::hint::black_box;
use std::time::Instant;

const MESSAGES: u64 = 4_000_000;
const ROUNDS: usize = 7;

/// One round: `pairs` senders and `pairs` receivers, `per` messages each; ns per message.
fn round<S, R>(
    pairs: usize,
    per: u64,
    tx: &S,
    rx: &R,
    send: impl Fn(&S, u64) + Sync,
    recv: impl Fn(&R) + Sync,
) -> f64
where
    S: Sync,
    R: Sync,
{
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..pairs {
            s.spawn(|| (0..per).for_each(|k| send(tx, black_box(k))));
            s.spawn(|| (0..per).for_each(|_| recv(rx)));
        }
    });
    start.elapsed().as_nanos() as f64 / (per * pairs as u64) as f64
}

#[path = "common/summary.rs"]
mod summary;
use summary::summary;

fn main() {
    let pairs_list: Vec<usize> = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "1,2".to_owned())
        .split(',')
        .map(|n| n.trim().parse().expect("a list of pair counts, e.g. 1,2,4"))
        .collect();
    assert!(
        pairs_list.iter().all(|&p| p > 0),
        "pair counts are 1 or more: {pairs_list:?}"
    );
    let slots: usize = std::env::args()
        .nth(2)
        .map_or(1024, |s| s.trim().parse().expect("a slot count, e.g. 16"));
    assert!(slots > 0, "1 slot at least");
    println!("{slots} slots");
    println!(
        "| pairs | crossbeam ns/msg (min-max) | thrifty ns/msg (min-max) | thrifty / crossbeam \
         | thrifty full sends per 1k |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for pairs in pairs_list {
        let per = MESSAGES.min(slots as u64 * 100_000) / pairs as u64;
        let sent = per * pairs as u64;
        let (mut crossbeam, mut thrifty, mut full) = (vec![], vec![], vec![]);
        // One round on a fresh channel from `$make`; gives the time and the sender.
        macro_rules! one_round {
            ($make:expr) => {{
                let (tx, rx) = $make;
                let ns = round(
                    pairs,
                    per,
                    &tx,
                    &rx,
                    |tx, k| tx.send(k).unwrap(),
                    |rx| {
                        black_box(rx.recv().unwrap());
                    },
                );
                (ns, tx)
            }};
        }
        for round in 0..ROUNDS {
            // Each goes first in every other round, so an order effect falls on both alike.
            for k in 0..2 {
                if (round + k) % 2 == 0 {
                    crossbeam.push(one_round!(crossbeam_channel::bounded::<u64>(slots)).0);
                } else {
                    let (ns, tx) = one_round!(thrifty::channel::bounded::<u64>(slots));
                    thrifty.push(ns);
                    full.push(tx.stats().full_sends as f64 * 1000.0 / sent as f64);
                }
            }
        }
        let (c, c_min, c_max) = summary(&mut crossbeam);
        let (t, t_min, t_max) = summary(&mut thrifty);
        let (f, f_min, f_max) = summary(&mut full);
        println!(
            "| {pairs} | {c:.1} ({c_min:.1}-{c_max:.1}) | {t:.1} ({t_min:.1}-{t_max:.1}) | \
             {:.2}x | {f:.1} ({f_min:.1}-{f_max:.1}) |",
            t / c
        );
    }
}
