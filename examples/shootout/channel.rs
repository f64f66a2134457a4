//! The channel table: messages handed from producer threads to consumer threads through a bounded
//! channel of 1024 slots (16 in the small-channel workload). Even-numbered threads send, odd ones
//! receive, the same number each, so every round ends with the channel empty. Rows: std's
//! `sync_channel` (its receiver, not `Sync`, behind a `Mutex`, held for the round by a lone
//! consumer and locked per message by several), crossbeam-channel, flume, kanal and thrifty's
//! `bounded`; for 64-byte `String` messages also thrifty's `recycling` and thingbuf's `send_ref`
//! (one consumer), whose slots keep their buffers (written in place, so they allocate nothing per
//! message, where the others allocate each string). Two `u64` workloads on one producer and one
//! consumer make one side busy (a chain of 128 dependent multiply-adds per message, as
//! `benches/channel.rs`'s busy rows), so the other side waits: a consumer on a nearly empty
//! channel, a producer on a nearly full one. A third, over 16 slots, makes both sides wait by
//! turns, as a stream through a small channel does (the channel fills and empties, and each side's
//! wait is a wake-up away). Under the table, each candidate's CPU time per message, both sides'
//! together: a waiter that spins spends it where one that sleeps does not. ns/op is per send or
//! receive on each thread; Mops/s, allocs/op and bytes/op are per message.

use crate::harness::{timed_round, Candidate, Harness, Table};
use crate::histogram::{fmt_us, Histogram};
use std::hint::black_box;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const CAP: usize = 1024;
/// Slots of the small-channel workload.
const SMALL: usize = 16;
/// Steps of [`work`] on the busy side of the busy workloads.
const BUSY: u32 = 128;
const TEXT: &str = "a 64-byte message payload, written anew for every single message";

/// std's consumer side, `ops` receives handed to `f`. Its receiver is not `Sync`, so several
/// consumers share it behind a `Mutex`, locked per message; a consumer `alone` holds the lock
/// for its whole round, as it would own the receiver outright.
fn std_recv<T>(rx: &Mutex<Receiver<T>>, alone: bool, ops: u64, mut f: impl FnMut(T)) {
    if alone {
        let rx = rx.lock().unwrap();
        (0..ops).for_each(|_| f(rx.recv().unwrap()));
    } else {
        (0..ops).for_each(|_| f(rx.lock().unwrap().recv().unwrap()));
    }
}

/// A fresh 64-byte `String`, as a producer without recycling builds it.
fn fresh() -> String {
    let mut s = String::with_capacity(TEXT.len());
    s.push_str(black_box(TEXT));
    s
}

/// What a busy side computes per message: `STEPS` dependent multiply-adds on `x` (a constant,
/// so the plain rows' 0 compiles to nothing).
fn work<const STEPS: u32>(x: u64) -> u64 {
    (0..STEPS).fold(x, |x, _| {
        black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1))
    })
}

/// One `u64` workload on `threads` threads over channels of `cap` slots, with `P` and `C` steps
/// of [`work`] per message on the producing and the consuming side (0: none).
fn u64_workload<const P: u32, const C: u32>(
    t: &mut Table<'_>,
    name: &str,
    threads: usize,
    cap: usize,
) {
    let (stx, srx) = std::sync::mpsc::sync_channel::<u64>(cap);
    let srx = Mutex::new(srx);
    let (ctx, crx) = crossbeam_channel::bounded::<u64>(cap);
    let (ftx, frx) = flume::bounded::<u64>(cap);
    let (ktx, krx) = kanal::bounded::<u64>(cap);
    let (ttx, trx) = thrifty::channel::bounded::<u64>(cap);
    t.workload(
        name,
        threads,
        vec![
            Candidate::std("std sync_channel", move |i, ops| {
                if i % 2 == 0 {
                    (0..ops).for_each(|k| stx.send(work::<P>(black_box(k))).unwrap());
                } else {
                    std_recv(&srx, threads == 2, ops, |v| {
                        black_box(work::<C>(v));
                    });
                }
            }),
            Candidate::new("crossbeam-channel", move |i, ops| {
                for k in 0..ops {
                    if i % 2 == 0 {
                        ctx.send(work::<P>(black_box(k))).unwrap();
                    } else {
                        black_box(work::<C>(crx.recv().unwrap()));
                    }
                }
            }),
            Candidate::new("flume", move |i, ops| {
                for k in 0..ops {
                    if i % 2 == 0 {
                        ftx.send(work::<P>(black_box(k))).unwrap();
                    } else {
                        black_box(work::<C>(frx.recv().unwrap()));
                    }
                }
            }),
            Candidate::new("kanal", move |i, ops| {
                for k in 0..ops {
                    if i % 2 == 0 {
                        ktx.send(work::<P>(black_box(k))).unwrap();
                    } else {
                        black_box(work::<C>(krx.recv().unwrap()));
                    }
                }
            }),
            Candidate::new("thrifty bounded", move |i, ops| {
                for k in 0..ops {
                    if i % 2 == 0 {
                        ttx.send(work::<P>(black_box(k))).unwrap();
                    } else {
                        black_box(work::<C>(trx.recv().unwrap()));
                    }
                }
            }),
        ],
    );
}

pub fn run(h: &mut Harness) {
    let mut t = h.table(
        "channel",
        "hand messages between threads (bounded, 1024 slots unless named)",
    );
    // Producers and consumers in pairs: an odd count rounds up, 1 becomes 2, and a repeat
    // after rounding is dropped.
    let mut counts: Vec<usize> = t
        .threads(&[2, 4])
        .iter()
        .map(|&n| n.max(2).next_multiple_of(2))
        .collect();
    counts.dedup();
    // Every thread counts its sends or receives: a message is two of those ops.
    t.per_item(2);
    // Waiting is where channels differ most in what they spend: some spin, some sleep.
    t.cpu_time("message");
    for threads in counts {
        u64_workload::<0, 0>(&mut t, "u64", threads, CAP);
    }
    // One producer and one consumer, whatever `--threads` says: the criterion rows' shape.
    u64_workload::<BUSY, 0>(&mut t, "u64, busy producer", 2, CAP);
    u64_workload::<0, BUSY>(&mut t, "u64, busy consumer", 2, CAP);
    u64_workload::<0, 0>(&mut t, "u64, 16 slots", 2, SMALL);
    latency_workload(&mut t);
    let (stx, srx) = std::sync::mpsc::sync_channel::<String>(CAP);
    let srx = Mutex::new(srx);
    let (ctx, crx) = crossbeam_channel::bounded::<String>(CAP);
    let (ftx, frx) = flume::bounded::<String>(CAP);
    let (ktx, krx) = kanal::bounded::<String>(CAP);
    let (ttx, trx) = thrifty::channel::bounded::<String>(CAP);
    // thingbuf's MPSC channel: one consumer, as this workload has.
    let (btx, brx) = thingbuf::mpsc::blocking::channel::<String>(CAP);
    let recycled = Arc::new(thrifty::channel::recycling(CAP, String::new));
    t.workload(
        "String, 64 bytes",
        2,
        vec![
            Candidate::std("std sync_channel", move |i, ops| {
                if i % 2 == 0 {
                    (0..ops).for_each(|_| stx.send(fresh()).unwrap());
                } else {
                    std_recv(&srx, true, ops, |s| {
                        black_box(s.len());
                    });
                }
            }),
            Candidate::new("crossbeam-channel", move |i, ops| {
                for _ in 0..ops {
                    if i % 2 == 0 {
                        ctx.send(fresh()).unwrap();
                    } else {
                        black_box(crx.recv().unwrap().len());
                    }
                }
            }),
            Candidate::new("flume", move |i, ops| {
                for _ in 0..ops {
                    if i % 2 == 0 {
                        ftx.send(fresh()).unwrap();
                    } else {
                        black_box(frx.recv().unwrap().len());
                    }
                }
            }),
            Candidate::new("kanal", move |i, ops| {
                for _ in 0..ops {
                    if i % 2 == 0 {
                        ktx.send(fresh()).unwrap();
                    } else {
                        black_box(krx.recv().unwrap().len());
                    }
                }
            }),
            Candidate::new("thrifty bounded", move |i, ops| {
                for _ in 0..ops {
                    if i % 2 == 0 {
                        ttx.send(fresh()).unwrap();
                    } else {
                        black_box(trx.recv().unwrap().len());
                    }
                }
            }),
            Candidate::new("thingbuf send_ref (in place)", move |i, ops| {
                for _ in 0..ops {
                    if i % 2 == 0 {
                        // The slot comes back cleared (thingbuf's default recycling), keeping
                        // its buffer, as thrifty's recycling slots do; sent when dropped.
                        btx.send_ref().unwrap().push_str(black_box(TEXT));
                    } else {
                        black_box(brx.recv_ref().unwrap().len());
                    }
                }
            }),
            Candidate::new("thrifty recycling", move |i, ops| {
                let (tx, rx) = &*recycled;
                for _ in 0..ops {
                    if i % 2 == 0 {
                        tx.send_with(|s| s.push_str(black_box(TEXT))).ok().unwrap();
                    } else {
                        black_box(rx.recv_with(|s| s.len()).unwrap());
                    }
                }
            }),
        ],
    );
}

/// The busy-producer workload again, each message the time it was sent (nanoseconds since a
/// shared start, read after the work and before the send), and a note under the table: the
/// p50, p99 and longest wait of a message from its send to its receive, over the timed rounds.
/// A consumer that spins picks each message up sooner than one that sleeps and is woken for a
/// batch; this, beside the CPU-time line, is what each spends for the other.
fn latency_workload(t: &mut Table<'_>) {
    let name = "u64, busy producer, latency timed";
    let start = Instant::now();
    let now = move || start.elapsed().as_nanos() as u64;
    let (stx, srx) = std::sync::mpsc::sync_channel::<u64>(CAP);
    let srx = Mutex::new(srx);
    let (ctx, crx) = crossbeam_channel::bounded::<u64>(CAP);
    let (ftx, frx) = flume::bounded::<u64>(CAP);
    let (ktx, krx) = kanal::bounded::<u64>(CAP);
    let (ttx, trx) = thrifty::channel::bounded::<u64>(CAP);
    let names = [
        "std sync_channel",
        "crossbeam-channel",
        "flume",
        "kanal",
        "thrifty bounded",
    ];
    let kept: Arc<[Mutex<Histogram>; 5]> = Arc::new(Default::default());
    // Each side of candidate `c`: the producer works, then stamps and sends; the consumer
    // receives and, in a timed round, records how long the message waited.
    let side = |c: usize| {
        let kept = Arc::clone(&kept);
        move |i: usize, ops: u64, send: &dyn Fn(u64), recv: &mut dyn FnMut() -> u64| {
            if i % 2 == 0 {
                for k in 0..ops {
                    black_box(work::<BUSY>(black_box(k)));
                    send(now());
                }
            } else {
                let (timed, mut waits) = (timed_round(), Histogram::default());
                for _ in 0..ops {
                    let sent = recv();
                    if timed {
                        waits.record(now().saturating_sub(sent));
                    }
                }
                kept[c].lock().unwrap().merge(&waits);
            }
        }
    };
    let (std_side, cb_side, f_side) = (side(0), side(1), side(2));
    let (k_side, t_side) = (side(3), side(4));
    t.workload(
        name,
        2,
        vec![
            Candidate::std(names[0], move |i, ops| {
                let rx = (i % 2 == 1).then(|| srx.lock().unwrap());
                let recv = &mut || rx.as_ref().unwrap().recv().unwrap();
                std_side(i, ops, &|v| stx.send(v).unwrap(), recv);
            }),
            Candidate::new(names[1], move |i, ops| {
                cb_side(i, ops, &|v| ctx.send(v).unwrap(), &mut || {
                    crx.recv().unwrap()
                });
            }),
            Candidate::new(names[2], move |i, ops| {
                f_side(i, ops, &|v| ftx.send(v).unwrap(), &mut || {
                    frx.recv().unwrap()
                });
            }),
            Candidate::new(names[3], move |i, ops| {
                k_side(i, ops, &|v| ktx.send(v).unwrap(), &mut || {
                    krx.recv().unwrap()
                });
            }),
            Candidate::new(names[4], move |i, ops| {
                t_side(i, ops, &|v| ttx.send(v).unwrap(), &mut || {
                    trx.recv().unwrap()
                });
            }),
        ],
    );
    t.note(format!(
        "  {name}: a message's wait from its send to its receive, timed rounds only (p50 and p99 \
         within 1/32, about 3%):"
    ));
    for (c, waits) in names.iter().zip(kept.iter()) {
        let w = waits.lock().unwrap();
        t.note(format!(
            "    {c:<18} p50 {}, p99 {}, max {} ({} messages)",
            fmt_us(w.quantile(0.5)),
            fmt_us(w.quantile(0.99)),
            fmt_us(w.max),
            w.total
        ));
    }
}
