//! `thrifty::channel` against `std::sync::mpsc::sync_channel`, crossbeam-channel, flume, kanal
//! and thingbuf, all bounded, same capacity, same payload, same threads.
//!
//! Groups (one iteration is one message handed from a producer to a consumer; criterion's
//! throughput is messages per second):
//! - `channel/u64/cap{1,16,1024}/{1p1c,2p2c,4p4c}`: a `u64` per message (no recycling row: a
//!   `u64` owns no buffer to recycle).
//! - `channel/string/cap{16,1024}/{1p1c,2p2c}`: a `String` of 64 or 63 bytes (alternating, so
//!   no length is a constant) in a 64-byte buffer per message, built by the
//!   producer (fresh for the plain channels, written in place for `thrifty recycling` and
//!   thingbuf's `send_ref`); the consumer reads its length.
//! - `channel/u64/cap1024/1p1c busy {producer,consumer}`: as `u64/cap1024/1p1c`, but one side
//!   computes on each message (a chain of 128 dependent multiply-adds), so the other side is the
//!   faster one and waits: a consumer on a nearly empty channel, a producer on a nearly full one.
//!   The shape of a pipeline whose stages do real work, where the waiting side's polls can slow
//!   the busy one down. The `work alone` row is the busy side's loop without a channel, the
//!   floor.
//! - `channel/create/{1024,1M}`: making (and dropping) a channel of that many `u64` slots.
//!
//! 4p4c (8 threads) is labelled oversubscribed on a machine with fewer cores. std's receiver is
//! not `Clone`: with several consumers it sits behind a `Mutex`, as a user would put it (a lone
//! consumer holds the lock for its whole run, as it would own the receiver); thingbuf's
//! blocking channel is single-consumer, so it appears only in the 1-consumer rows. Before the
//! timings the bench prints allocator calls per message for each candidate (1p1c, capacity 16,
//! counted after 1000 warm-up messages through the same channel and threads).
//!
//! `cargo bench --bench channel -- --warm-up-time 1 --measurement-time 2 'u64/cap1024/1p1c'`
//! For one CPU: `taskset -c 0 cargo bench --bench channel -- ... 'u64/cap1024/1p1c'`.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thrifty::measure::{self, CountingAlloc};

mod common;
use common::StartLine;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

const TEXT: &str = "a 64-byte message payload, written anew for every single message";

/// One candidate: make a channel, send, receive (`None` once disconnected and drained).
trait Candidate: Sync {
    type Tx: Clone + Send;
    type Rx: Clone + Send;
    const NAME: &'static str;
    /// Whether it supports several consumers.
    const MPMC: bool = true;
    fn make(&self, cap: usize) -> (Self::Tx, Self::Rx);
    fn send(tx: &Self::Tx, i: u64);
    fn recv(rx: &Self::Rx) -> Option<u64>;
    /// Receives until disconnected and drained, calling `f` on each message; `alone`: no
    /// other consumer shares `rx`.
    fn drain(rx: &Self::Rx, alone: bool, mut f: impl FnMut(u64)) {
        let _ = alone;
        while let Some(v) = Self::recv(rx) {
            f(v);
        }
    }
}

/// Per-message work on each side: steps of [`work`] (0: none).
#[derive(Clone, Copy)]
struct Busy {
    producer: u32,
    consumer: u32,
}

/// Neither side works: the channel alone.
const IDLE: Busy = Busy {
    producer: 0,
    consumer: 0,
};

/// What a busy side computes per message: `steps` dependent multiply-adds on `x`.
fn work(x: u64, steps: u32) -> u64 {
    let mut x = x;
    for _ in 0..steps {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    x
}

/// Producers send `n` messages in all, each from `work(i, busy.producer)`; consumers receive
/// until disconnected, passing each through `work(v, busy.consumer)`. Returns the span from the
/// first thread's start (after a spinning start line) to the last one's end, and allocator calls
/// inside it. Each thread reads the clock itself: the calling thread, a thread more than the
/// cores at 1p1c on 2, could be descheduled past the start. With `warm` > 0 (as many producers
/// as consumers), each producer first sends and each consumer first receives `warm` messages on
/// the same channel, outside its span: the channel's slots and the threads' thread-locals are
/// warm when the span starts.
fn transfer<C: Candidate>(
    c: &C,
    cap: usize,
    (p, q): (usize, usize),
    n: u64,
    busy: Busy,
    warm: u64,
) -> (Duration, u64) {
    assert!(
        warm == 0 || p == q,
        "each consumer takes `warm` of the producers' warm-up"
    );
    let (tx, rx) = c.make(cap);
    let line = StartLine::new(p + q);
    let received = AtomicU64::new(0);
    let allocs = AtomicU64::new(0);
    // Pausing is per thread: each producer and consumer pauses itself if the caller is paused,
    // so the counting allocator's atomic adds cost no candidate anything while timed.
    let paused = measure::is_paused();
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let mut threads = Vec::new();
        for k in 0..p as u64 {
            let tx = tx.clone();
            let (line, allocs) = (&line, &allocs);
            threads.push(s.spawn(move || {
                let _paused = paused.then(measure::pause);
                line.wait();
                for i in 0..warm {
                    C::send(&tx, work(black_box(i), busy.producer));
                }
                let start = Instant::now();
                let before = measure::thread_stats().calls();
                let share = n / p as u64 + u64::from(k < n % p as u64);
                for i in 0..share {
                    C::send(&tx, work(black_box(i), busy.producer));
                }
                drop(tx);
                allocs.fetch_add(measure::thread_stats().calls() - before, Relaxed);
                (start, Instant::now())
            }));
        }
        for _ in 0..q {
            let rx = rx.clone();
            let (line, received, allocs) = (&line, &received, &allocs);
            threads.push(s.spawn(move || {
                let _paused = paused.then(measure::pause);
                line.wait();
                for _ in 0..warm {
                    let v = C::recv(&rx).expect("a producer sends `warm` first");
                    black_box(work(v, busy.consumer));
                }
                let start = Instant::now();
                let before = measure::thread_stats().calls();
                let mut got = 0;
                C::drain(&rx, q == 1, |v| {
                    black_box(work(v, busy.consumer));
                    got += 1;
                });
                drop(rx);
                received.fetch_add(got, Relaxed);
                allocs.fetch_add(measure::thread_stats().calls() - before, Relaxed);
                (start, Instant::now())
            }));
        }
        drop((tx, rx));
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    assert_eq!(received.into_inner(), n, "{} lost messages", C::NAME);
    (end - start, allocs.into_inner())
}

/// A payload kind: what a producer builds and a consumer reads.
trait Payload {
    const NAME: &'static str;
}
struct U64;
struct Text;
impl Payload for U64 {
    const NAME: &'static str = "u64";
}
impl Payload for Text {
    const NAME: &'static str = "string";
}

/// The message a producer makes for payload `P`.
trait Make<P> {
    type Msg: Send + Sync + 'static;
    fn make(i: u64) -> Self::Msg;
    fn read(m: Self::Msg) -> u64;
}
struct Plain;
impl Make<U64> for Plain {
    type Msg = u64;
    fn make(i: u64) -> u64 {
        i
    }
    fn read(m: u64) -> u64 {
        m
    }
}
impl Make<Text> for Plain {
    type Msg = String;
    fn make(i: u64) -> String {
        let mut s = String::with_capacity(TEXT.len());
        s.push_str(TEXT);
        s.truncate(TEXT.len() - (i as usize & 1));
        s
    }
    fn read(m: String) -> u64 {
        m.len() as u64
    }
}

macro_rules! candidate {
    ($ty:ident, $name:expr, $mpmc:expr, $tx:ty, $rx:ty, $make:expr, $send:expr, $recv:expr) => {
        struct $ty<P>(std::marker::PhantomData<P>);
        impl<P: Payload + Sync> Candidate for $ty<P>
        where
            Plain: Make<P>,
        {
            type Tx = $tx;
            type Rx = $rx;
            const NAME: &'static str = $name;
            const MPMC: bool = $mpmc;
            fn make(&self, cap: usize) -> (Self::Tx, Self::Rx) {
                $make(cap)
            }
            fn send(tx: &Self::Tx, i: u64) {
                $send(tx, <Plain as Make<P>>::make(i))
            }
            fn recv(rx: &Self::Rx) -> Option<u64> {
                $recv(rx).map(<Plain as Make<P>>::read)
            }
        }
    };
}

type Msg<P> = <Plain as Make<P>>::Msg;

candidate!(
    Thrifty,
    "thrifty bounded",
    true,
    thrifty::channel::Sender<Msg<P>>,
    thrifty::channel::Receiver<Msg<P>>,
    thrifty::channel::bounded,
    |tx: &thrifty::channel::Sender<_>, m| tx.send(m).unwrap(),
    |rx: &thrifty::channel::Receiver<_>| rx.recv().ok()
);
/// std's `sync_channel`. Its receiver is not `Clone`: with several consumers it sits behind a
/// `Mutex`, locked per message, as a user would share it; a consumer alone holds the lock for
/// the whole drain, as a user would own the receiver outright.
struct Std<P>(std::marker::PhantomData<P>);
impl<P: Payload + Sync> Candidate for Std<P>
where
    Plain: Make<P>,
{
    type Tx = std::sync::mpsc::SyncSender<Msg<P>>;
    type Rx = Arc<Mutex<std::sync::mpsc::Receiver<Msg<P>>>>;
    const NAME: &'static str = "std sync_channel";
    fn make(&self, cap: usize) -> (Self::Tx, Self::Rx) {
        let (t, r) = std::sync::mpsc::sync_channel(cap);
        (t, Arc::new(Mutex::new(r)))
    }
    fn send(tx: &Self::Tx, i: u64) {
        tx.send(<Plain as Make<P>>::make(i)).unwrap()
    }
    fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.lock().unwrap().recv().ok().map(<Plain as Make<P>>::read)
    }
    fn drain(rx: &Self::Rx, alone: bool, mut f: impl FnMut(u64)) {
        if !alone {
            while let Some(v) = Self::recv(rx) {
                f(v);
            }
            return;
        }
        let rx = rx.lock().unwrap();
        while let Ok(m) = rx.recv() {
            f(<Plain as Make<P>>::read(m));
        }
    }
}
candidate!(
    Crossbeam,
    "crossbeam-channel",
    true,
    crossbeam_channel::Sender<Msg<P>>,
    crossbeam_channel::Receiver<Msg<P>>,
    crossbeam_channel::bounded,
    |tx: &crossbeam_channel::Sender<_>, m| tx.send(m).unwrap(),
    |rx: &crossbeam_channel::Receiver<_>| rx.recv().ok()
);
candidate!(
    Flume,
    "flume",
    true,
    flume::Sender<Msg<P>>,
    flume::Receiver<Msg<P>>,
    flume::bounded,
    |tx: &flume::Sender<_>, m| tx.send(m).unwrap(),
    |rx: &flume::Receiver<_>| rx.recv().ok()
);
candidate!(
    Kanal,
    "kanal",
    true,
    kanal::Sender<Msg<P>>,
    kanal::Receiver<Msg<P>>,
    kanal::bounded,
    |tx: &kanal::Sender<_>, m| tx.send(m).unwrap(),
    |rx: &kanal::Receiver<_>| rx.recv().ok()
);

/// thingbuf's blocking MPSC channel, with `send_ref` (writes the slot in place); single
/// consumer, so its `Rx` is cloned only for the 1-consumer rows (the `Arc` is never shared).
struct Thingbuf<P>(std::marker::PhantomData<P>);
impl<P: Payload + Sync> Candidate for Thingbuf<P>
where
    Plain: Make<P>,
    Msg<P>: Default + Clone,
    thingbuf::recycling::DefaultRecycle: thingbuf::Recycle<Msg<P>>,
{
    type Tx = thingbuf::mpsc::blocking::Sender<Msg<P>>;
    type Rx = Arc<thingbuf::mpsc::blocking::Receiver<Msg<P>>>;
    const NAME: &'static str = "thingbuf send_ref";
    const MPMC: bool = false;
    fn make(&self, cap: usize) -> (Self::Tx, Self::Rx) {
        let (t, r) = thingbuf::mpsc::blocking::channel(cap);
        (t, Arc::new(r))
    }
    fn send(tx: &Self::Tx, i: u64) {
        let mut slot = tx.send_ref().unwrap();
        fill::<P>(&mut slot, i);
    }
    fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv_ref().map(|m| peek::<P>(&m))
    }
}

/// thrifty's recycling channel: messages written and read in place.
struct Recycling<P>(std::marker::PhantomData<P>);
impl<P: Payload + Sync> Candidate for Recycling<P>
where
    Plain: Make<P>,
    Msg<P>: thrifty::Reset + Default,
{
    type Tx = thrifty::channel::RecyclingSender<Msg<P>>;
    type Rx = thrifty::channel::RecyclingReceiver<Msg<P>>;
    const NAME: &'static str = "thrifty recycling";
    fn make(&self, cap: usize) -> (Self::Tx, Self::Rx) {
        thrifty::channel::recycling(cap, Msg::<P>::default)
    }
    fn send(tx: &Self::Tx, i: u64) {
        tx.send_with(|slot| fill::<P>(slot, i)).ok().unwrap();
    }
    fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv_with(|m| peek::<P>(m)).ok()
    }
}

/// Writes message `i` into a reused slot (the in-place twin of `Make::make`).
fn fill<P>(slot: &mut Msg<P>, i: u64)
where
    Plain: Make<P>,
{
    // A `u64` is overwritten; a `String` slot was cleared by the channel and keeps its buffer.
    let any: &mut dyn std::any::Any = slot;
    if let Some(v) = any.downcast_mut::<u64>() {
        *v = i;
    } else if let Some(s) = any.downcast_mut::<String>() {
        s.clear();
        s.push_str(TEXT);
        s.truncate(TEXT.len() - (i as usize & 1));
    }
}

/// Reads a message in place (the in-place twin of `Make::read`).
fn peek<P>(m: &Msg<P>) -> u64
where
    Plain: Make<P>,
{
    let any: &dyn std::any::Any = m;
    any.downcast_ref::<u64>()
        .copied()
        .or_else(|| any.downcast_ref::<String>().map(|s| s.len() as u64))
        .unwrap_or(0)
}

fn row<C: Candidate>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    c: &C,
    cap: usize,
    (p, q): (usize, usize),
    busy: Busy,
) {
    if q > 1 && !C::MPMC {
        return;
    }
    g.bench_function(BenchmarkId::from_parameter(C::NAME), |b| {
        b.iter_custom(|iters| transfer(c, cap, (p, q), iters.max(1), busy, 0).0)
    });
}

/// A row in group `$g` for each plain candidate with payload `$p` (every one but thrifty's
/// recycling channel, which only the `String` rows have).
macro_rules! candidate_rows {
    ($g:expr, $p:ty, $cap:expr, $shape:expr, $busy:expr) => {{
        let g = $g;
        row(g, &Thrifty::<$p>(Default::default()), $cap, $shape, $busy);
        row(g, &Std::<$p>(Default::default()), $cap, $shape, $busy);
        row(g, &Crossbeam::<$p>(Default::default()), $cap, $shape, $busy);
        row(g, &Flume::<$p>(Default::default()), $cap, $shape, $busy);
        row(g, &Kanal::<$p>(Default::default()), $cap, $shape, $busy);
        row(g, &Thingbuf::<$p>(Default::default()), $cap, $shape, $busy);
    }};
}

fn shape_label(p: usize) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let over = if 2 * p > cores {
        " (oversubscribed)"
    } else {
        ""
    };
    format!("{p}p{p}c{over}")
}

fn u64_rows(c: &mut Criterion) {
    let _paused = measure::pause();
    for cap in [1, 16, 1024] {
        for p in [1, 2, 4] {
            let mut g = c.benchmark_group(format!("channel/u64/cap{cap}/{}", shape_label(p)));
            g.throughput(Throughput::Elements(1));
            candidate_rows!(&mut g, U64, cap, (p, p), IDLE);
            g.finish();
        }
    }
}

/// Steps of `work` on the busy side of the busy rows.
const BUSY: u32 = 128;

fn busy_rows(c: &mut Criterion) {
    let _paused = measure::pause();
    let shapes = [
        (
            "producer",
            Busy {
                producer: BUSY,
                ..IDLE
            },
        ),
        (
            "consumer",
            Busy {
                consumer: BUSY,
                ..IDLE
            },
        ),
    ];
    for (side, busy) in shapes {
        let mut g = c.benchmark_group(format!("channel/u64/cap1024/1p1c busy {side}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("work alone", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(work(black_box(i), BUSY));
                }
                start.elapsed()
            })
        });
        candidate_rows!(&mut g, U64, 1024, (1, 1), busy);
        g.finish();
    }
}

fn string_rows(c: &mut Criterion) {
    let _paused = measure::pause();
    for cap in [16, 1024] {
        for p in [1, 2] {
            let mut g = c.benchmark_group(format!("channel/string/cap{cap}/{}", shape_label(p)));
            g.throughput(Throughput::Elements(1));
            candidate_rows!(&mut g, Text, cap, (p, p), IDLE);
            row(
                &mut g,
                &Recycling::<Text>(Default::default()),
                cap,
                (p, p),
                IDLE,
            );
            g.finish();
        }
    }
}

fn create_rows(c: &mut Criterion) {
    let _paused = measure::pause();
    for cap in [1024usize, 1 << 20] {
        let mut g = c.benchmark_group(format!("channel/create/{cap}"));
        g.bench_function("thrifty bounded", |b| {
            b.iter(|| thrifty::channel::bounded::<u64>(black_box(cap)))
        });
        g.bench_function("std sync_channel", |b| {
            b.iter(|| std::sync::mpsc::sync_channel::<u64>(black_box(cap)))
        });
        g.bench_function("crossbeam-channel", |b| {
            b.iter(|| crossbeam_channel::bounded::<u64>(black_box(cap)))
        });
        g.bench_function("flume", |b| {
            b.iter(|| flume::bounded::<u64>(black_box(cap)))
        });
        g.bench_function("kanal", |b| {
            b.iter(|| kanal::bounded::<u64>(black_box(cap)))
        });
        g.bench_function("thingbuf", |b| {
            b.iter(|| thingbuf::mpsc::blocking::channel::<u64>(black_box(cap)))
        });
        g.finish();
    }
}

/// Prints allocator calls per message, 1p1c, capacity 16, counted after 1000 warm-up messages
/// on the same channel and threads.
fn allocations(_: &mut Criterion) {
    fn one<C: Candidate>(c: &C, payload: &str) {
        let n = 20_000;
        let (_, allocs) = transfer(c, 16, (1, 1), n, IDLE, 1000);
        println!(
            "allocs/message  {payload:6} {:18} {:.3}",
            C::NAME,
            allocs as f64 / n as f64
        );
    }
    macro_rules! all {
        ($p:ty) => {
            one(&Thrifty::<$p>(Default::default()), <$p>::NAME);
            one(&Std::<$p>(Default::default()), <$p>::NAME);
            one(&Crossbeam::<$p>(Default::default()), <$p>::NAME);
            one(&Flume::<$p>(Default::default()), <$p>::NAME);
            one(&Kanal::<$p>(Default::default()), <$p>::NAME);
            one(&Thingbuf::<$p>(Default::default()), <$p>::NAME);
        };
    }
    all!(U64);
    all!(Text);
    one(&Recycling::<Text>(Default::default()), Text::NAME);
}

criterion_group!(
    benches,
    allocations,
    u64_rows,
    busy_rows,
    string_rows,
    create_rows
);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
