//! `thrifty::channel` whose users fail mid-stream, in random mixes: receivers dropped part-way
//! (killed) while the producers and the other consumers go on, and, on a recycling channel,
//! `send_with` fills, `recv_with` reads and slot [`Reset`]s that panic now and then.
//!
//! Each round draws, from its seed, a capacity of 1 to 16, 2 or 3 consumers and how many
//! messages each takes before it drops its receiver (one in three rounds every receiver is
//! killed, so the producers see the disconnect; otherwise one stays until `Disconnected`). Three
//! producers, on fresh threads, send their numbered messages with every form (blocking, `try_`,
//! with a timeout or a deadline) while the consumers receive with every form (and `recv_many`
//! on the bounded channel), each thread drawing its choices from its own xorshift generator.
//! After the round, each message whose send went through was received exactly once (a consumer
//! sees each producer's messages in order) or, with every receiver gone, was still in the
//! channel and dropped with it (at most `capacity` of them); each refused send handed its own
//! message (or `fill`, not run) back, and every send after the disconnect was refused. A census
//! counts each bounded message, recycling slot value and value a `fill` or `read` returned as
//! made and as dropped: every one made is dropped exactly once.
//!
//! On the recycling channel the planned panics must reach the caller as the docs say, and no
//! other: a panicking `fill` sends nothing (its message is sent again); a panicking `read` has
//! consumed its message; a `reset` that panics after a receive propagates (the message is
//! consumed and what `read` returned is dropped), and one armed to fail again makes the next
//! `send_with` into that slot fail with it, `fill` unrun. Every `fill` gets a clean value and
//! every read finds exactly one committed message, so no failed or earlier message reaches a
//! receiver. Each round runs under the deadline of `common/deadline.rs`, so a hang fails with
//! the round's seed instead of hanging; no assertion is about time. Under Miri the rounds and
//! messages are cut down (`cfg!(miri)`).

#![cfg(not(loom))]

#[path = "common/deadline.rs"]
mod deadline;
use deadline::within;
#[path = "common/rng.rs"]
mod rng;
use rng::XorShift;
#[path = "common/panics.rs"]
mod panics;
use panics::quiet_panics_containing;

use std::any::Any;
use std::cell::Cell;
use std::ops::AddAssign;
use std::panic::{catch_unwind, panic_any, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use thrifty::channel::{
    bounded, recycling, Receiver, RecvError, RecvTimeoutError, RecyclingReceiver, RecyclingSender,
    SendError, SendTimeoutError, Sender, TryRecvError, TrySendError,
};
use thrifty::Reset;

/// Producers per round.
const PRODUCERS: usize = 3;
/// Messages each producer makes per round.
const PER_PRODUCER: usize = if cfg!(miri) { 12 } else { 200 };
/// Messages made per round; a message's id is `producer * PER_PRODUCER + seq`.
const TOTAL: usize = PRODUCERS * PER_PRODUCER;
/// Rounds per test.
const ROUNDS: u64 = if cfg!(miri) { 2 } else { 64 };

/// What every planned panic's message starts with (the quiet hook hides those).
const PLANNED: &str = "panics_channel: planned";
const FILL_PANIC: &str = "panics_channel: planned panic in a send's fill";
const READ_PANIC: &str = "panics_channel: planned panic in a receive's read";
const RESET_PANIC: &str = "panics_channel: planned panic in a slot's reset";

/// The shared xorshift generator ([`XorShift`]), one per round and thread, with the draws
/// this test makes.
struct Rng(XorShift);

impl Rng {
    /// The generator of thread `thread` in the round seeded `seed`.
    fn new(seed: u64, thread: u64) -> Self {
        Rng(XorShift::new(
            seed ^ thread.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        ))
    }

    /// A number below `n`.
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }

    /// True once in `n` draws, on average.
    fn one_in(&mut self, n: usize) -> bool {
        self.0.one_in(n)
    }

    /// One time in `n`, 1 to 3 resets to fail in a row; else 0.
    fn failures(&mut self, n: usize) -> u8 {
        if self.one_in(n) {
            1 + self.below(3) as u8
        } else {
            0
        }
    }

    /// A timeout of 0 to 200 µs (0 makes one try).
    fn short_wait(&mut self) -> Duration {
        Duration::from_micros(self.below(201) as u64)
    }
}

/// A round's shape, drawn from its seed: the capacity, and each consumer's quota, the number of
/// messages it takes before it drops its receiver (`None`: it stays until `Disconnected`).
struct Plan {
    capacity: usize,
    quotas: Vec<Option<usize>>,
}

impl Plan {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed, 99);
        let capacity = 1 + rng.below(16);
        let consumers = 2 + rng.below(2);
        // One round in three every receiver is killed: the quotas add up to less than `TOTAL`,
        // so the producers usually have messages left and see the disconnect.
        let all_killed = rng.one_in(3);
        let quotas = (0..consumers)
            .map(|c| (c > 0 || all_killed).then(|| rng.below(TOTAL / consumers)))
            .collect();
        Plan { capacity, quotas }
    }

    /// Whether a consumer stays until `Disconnected`.
    fn has_survivor(&self) -> bool {
        self.quotas.contains(&None)
    }
}

/// Counts the values of one type made and dropped.
#[derive(Default)]
struct Census {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

impl Census {
    /// Checks that `made` were made and each was dropped, once everything is gone.
    fn assert_all_dropped(&self, what: &str, made: usize) {
        let (m, d) = (self.made.load(SeqCst), self.dropped.load(SeqCst));
        assert_eq!(m, made, "{what}: {m} made");
        assert_eq!(d, m, "{what}: {m} made, {d} dropped");
    }
}

/// One round's books: per message id, and per type of value.
struct Books {
    /// Sends of the message that went through.
    sent: Vec<AtomicU8>,
    /// Receives that took it (returned it, or panicked in or after reading it).
    received: Vec<AtomicU8>,
    /// Bounded channel: the message's drops, whoever dropped it.
    drops: Vec<AtomicU8>,
    /// The message's drops by the channel: of a bounded message neither received nor handed
    /// back, or of a recycling slot holding it committed and unread.
    left_in_channel: Vec<AtomicU8>,
    /// The bounded channel's messages, or the recycling channel's slot values.
    values: Census,
    /// What recycling fills and reads return.
    receipts: Census,
}

impl Books {
    fn new() -> Arc<Self> {
        let per_id = || (0..TOTAL).map(|_| AtomicU8::new(0)).collect();
        Arc::new(Books {
            sent: per_id(),
            received: per_id(),
            drops: per_id(),
            left_in_channel: per_id(),
            values: Census::default(),
            receipts: Census::default(),
        })
    }
}

/// A bounded channel's message: its id, whether the test holds it (received, or handed back by
/// a refused send), and the books that count its making and its drop.
struct Msg {
    id: usize,
    out: bool,
    books: Arc<Books>,
}

impl Msg {
    fn new(id: usize, books: &Arc<Books>) -> Self {
        books.values.made.fetch_add(1, SeqCst);
        Msg {
            id,
            out: false,
            books: Arc::clone(books),
        }
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        self.books.values.dropped.fetch_add(1, SeqCst);
        self.books.drops[self.id].fetch_add(1, SeqCst);
        if !self.out {
            self.books.left_in_channel[self.id].fetch_add(1, SeqCst);
        }
    }
}

/// What a recycling fill or read returns: counted, so one the channel drops (a read whose
/// reset panicked) shows up if it leaks.
struct Receipt(Arc<Books>);

impl Receipt {
    fn new(books: &Arc<Books>) -> Self {
        books.receipts.made.fetch_add(1, SeqCst);
        Receipt(Arc::clone(books))
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        self.0.receipts.dropped.fetch_add(1, SeqCst);
    }
}

/// A recycling slot's value: the ids its fills wrote since its last completed reset (one, for
/// a message), whether the fill finished (`committed`) and whether a read saw it (`consumed`).
/// Its `reset` panics, before clearing anything, while `failing` is above 0 (one per call).
struct Slot {
    ids: Vec<usize>,
    committed: bool,
    consumed: bool,
    failing: u8,
    books: Arc<Books>,
}

impl Slot {
    /// The factory's value, counted.
    fn new(books: &Arc<Books>) -> Self {
        books.values.made.fetch_add(1, SeqCst);
        Slot {
            ids: Vec::with_capacity(2),
            committed: false,
            consumed: false,
            failing: 0,
            books: Arc::clone(books),
        }
    }

    /// A send's fill: checks the slot comes clean, writes message `id`, arms the next `fail`
    /// resets to panic, then panics if `panics`, or commits the message.
    fn fill(&mut self, id: usize, fail: u8, panics: bool) -> Receipt {
        assert!(
            self.ids.is_empty() && !self.committed && !self.consumed && self.failing == 0,
            "message {id}'s fill got a slot not reset: ids {:?}, committed {}, read {}",
            self.ids,
            self.committed,
            self.consumed
        );
        self.ids.push(id);
        self.failing = fail;
        if panics {
            panic_any(FILL_PANIC);
        }
        self.committed = true;
        Receipt::new(&self.books)
    }

    /// A receive's read: checks the slot holds one committed message not read before, marks it
    /// read and, unless resets are armed to fail already, arms the next `fail`. Returns the
    /// message's id and whether the reset after this read will panic.
    fn read(&mut self, fail: u8) -> (usize, bool) {
        assert!(
            self.committed && !self.consumed && self.ids.len() == 1,
            "a read found ids {:?}, committed {}, read before {}",
            self.ids,
            self.committed,
            self.consumed
        );
        self.consumed = true;
        if self.failing == 0 {
            self.failing = fail;
        }
        (self.ids[0], self.failing > 0)
    }
}

impl Reset for Slot {
    fn reset(&mut self) {
        if self.failing > 0 {
            self.failing -= 1;
            panic_any(RESET_PANIC);
        }
        self.ids.clear();
        self.committed = false;
        self.consumed = false;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.books.values.dropped.fetch_add(1, SeqCst);
        if self.committed && !self.consumed {
            for &id in &self.ids {
                self.books.left_in_channel[id].fetch_add(1, SeqCst);
            }
        }
    }
}

/// A send that did not go through, with what it handed back: `Busy` (full, or timed out) or
/// `Gone` (every receiver dropped).
enum Refused<T> {
    Busy(T),
    Gone(T),
}

impl<T> From<SendError<T>> for Refused<T> {
    fn from(e: SendError<T>) -> Self {
        Refused::Gone(e.0)
    }
}

impl<T> From<TrySendError<T>> for Refused<T> {
    fn from(e: TrySendError<T>) -> Self {
        match e {
            TrySendError::Full(v) => Refused::Busy(v),
            TrySendError::Disconnected(v) => Refused::Gone(v),
        }
    }
}

impl<T> From<SendTimeoutError<T>> for Refused<T> {
    fn from(e: SendTimeoutError<T>) -> Self {
        match e {
            SendTimeoutError::Timeout(v) => Refused::Busy(v),
            SendTimeoutError::Disconnected(v) => Refused::Gone(v),
        }
    }
}

/// A receive's outcome, whichever form made it: a message, none yet, or none ever again.
enum Polled<T> {
    Got(T),
    Nothing,
    Ended,
}

impl<T> From<Result<T, RecvError>> for Polled<T> {
    fn from(r: Result<T, RecvError>) -> Self {
        r.map_or(Polled::Ended, Polled::Got)
    }
}

impl<T> From<Result<T, TryRecvError>> for Polled<T> {
    fn from(r: Result<T, TryRecvError>) -> Self {
        match r {
            Ok(v) => Polled::Got(v),
            Err(TryRecvError::Empty) => Polled::Nothing,
            Err(TryRecvError::Disconnected) => Polled::Ended,
        }
    }
}

impl<T> From<Result<T, RecvTimeoutError>> for Polled<T> {
    fn from(r: Result<T, RecvTimeoutError>) -> Self {
        match r {
            Ok(v) => Polled::Got(v),
            Err(RecvTimeoutError::Timeout) => Polled::Nothing,
            Err(RecvTimeoutError::Disconnected) => Polled::Ended,
        }
    }
}

/// What one consumer received: how many, and the last sequence number from each producer (a
/// consumer gets a producer's messages in the order they were sent).
#[derive(Default)]
struct Taken {
    count: usize,
    last: [Option<usize>; PRODUCERS],
}

impl Taken {
    /// Books message `id` as received: never before, and after its producer's earlier ones.
    fn note(&mut self, id: usize, books: &Books) {
        let (producer, seq) = (id / PER_PRODUCER, id % PER_PRODUCER);
        if let Some(last) = self.last[producer] {
            assert!(
                last < seq,
                "producer {producer}'s message {seq} came after {last}"
            );
        }
        self.last[producer] = Some(seq);
        let before = books.received[id].fetch_add(1, SeqCst);
        assert_eq!(before, 0, "message {id} received twice");
        self.count += 1;
    }

    /// Books a bounded channel's message as received, then drops it as the test's.
    fn take(&mut self, mut msg: Msg, books: &Books) {
        self.note(msg.id, books);
        msg.out = true;
    }
}

/// How a producer's round ended.
#[derive(Default)]
struct ProducerEnd {
    /// Sends that went through.
    sent: usize,
    /// Sends refused with `Disconnected`: the first, and one per message after it.
    refused: usize,
}

/// How a consumer's round ended.
struct ConsumerEnd {
    quota: Option<usize>,
    /// Messages it took.
    got: usize,
    /// Whether it saw `Disconnected` (else it met its quota and dropped its receiver).
    ended: bool,
}

/// How often each planned event happened, summed over a test's rounds: each must have, or the
/// test proves less than it says.
#[derive(Default, Debug, Clone, Copy)]
struct Seen {
    /// Receivers dropped on their quota, not at `Disconnected`.
    killed: usize,
    /// Sends refused with `Disconnected`.
    refused: usize,
    /// Messages sent but never received, dropped with the channel.
    left_queued: usize,
    fill_panics: usize,
    read_panics: usize,
    /// Resets that panicked after a receive, out of `recv_with`.
    reset_panics_on_recv: usize,
    /// Resets of a slot whose last reset panicked that panicked again, out of `send_with`.
    reset_panics_on_send: usize,
}

impl AddAssign for Seen {
    fn add_assign(&mut self, o: Seen) {
        self.killed += o.killed;
        self.refused += o.refused;
        self.left_queued += o.left_queued;
        self.fill_panics += o.fill_panics;
        self.read_panics += o.read_panics;
        self.reset_panics_on_recv += o.reset_panics_on_recv;
        self.reset_panics_on_send += o.reset_panics_on_send;
    }
}

/// The message of a panic's payload ("" for another payload type).
fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("")
}

/// A panic message as a failure quotes it: a planned one by name (quoted whole, it would make
/// the quiet hook hide the failure), any other as it is.
fn quoted(message: &str) -> String {
    match message {
        FILL_PANIC => "the planned fill panic".to_owned(),
        READ_PANIC => "the planned read panic".to_owned(),
        RESET_PANIC => "the planned reset panic".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Checks that a caught panic is the `planned` one.
fn expect_planned(payload: Box<dyn Any + Send>, planned: &str, context: &str) {
    let got = message(&*payload);
    if got != planned {
        panic!(
            "{context}: {} where {} was due",
            quoted(got),
            quoted(planned)
        );
    }
}

/// Starts a round's thread, named for a failure's report (`bounded 0x… producer 1`).
fn spawn<T: Send + 'static>(name: String, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    thread::Builder::new().name(name).spawn(f).unwrap()
}

/// Joins `handles`, passing a thread's panic on as it was.
fn joined<T>(handles: Vec<JoinHandle<T>>) -> Vec<T> {
    handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|panic| resume_unwind(panic)))
        .collect()
}

/// The checks common to both channels, once every thread is joined and the channel dropped:
/// each message sent at most once, received at most once and only if sent; each sent and not
/// received one, and no other, dropped by the channel (none while a receiver stayed to the
/// end, at most `capacity` once all were killed); the threads' own counts agree with the
/// books. Returns what the round saw.
fn check_round(
    plan: &Plan,
    books: &Books,
    producers: &[ProducerEnd],
    consumers: &[ConsumerEnd],
) -> Seen {
    let mut seen = Seen::default();
    let (mut sent, mut received) = (0, 0);
    for id in 0..TOTAL {
        let s = books.sent[id].load(SeqCst);
        let r = books.received[id].load(SeqCst);
        assert!(s <= 1 && r <= s, "message {id}: sent {s}×, received {r}×");
        let in_channel = s > r;
        let left = books.left_in_channel[id].load(SeqCst);
        assert_eq!(
            left, in_channel as u8,
            "message {id}: sent {s}×, received {r}×, dropped {left}× by the channel"
        );
        sent += s as usize;
        received += r as usize;
        seen.left_queued += in_channel as usize;
    }
    let (said_sent, said_got) = (
        producers.iter().map(|p| p.sent).sum::<usize>(),
        consumers.iter().map(|c| c.got).sum::<usize>(),
    );
    assert_eq!(
        sent, said_sent,
        "the books' sends against the producers' count"
    );
    assert_eq!(
        received, said_got,
        "the books' receives against the consumers' count"
    );
    seen.refused = producers.iter().map(|p| p.refused).sum();
    for c in consumers {
        if c.ended {
            assert!(
                c.quota.map_or(true, |q| c.got <= q),
                "a consumer went past its quota"
            );
        } else {
            assert_eq!(
                Some(c.got),
                c.quota,
                "a consumer stopped short of its quota"
            );
            seen.killed += 1;
        }
    }
    if plan.has_survivor() {
        assert_eq!(seen.refused, 0, "a send refused while a receiver stayed");
        assert_eq!(sent, TOTAL, "a message never sent while a receiver stayed");
        assert_eq!(
            seen.left_queued, 0,
            "a message left unreceived while a receiver stayed"
        );
    } else {
        assert!(
            seen.left_queued <= plan.capacity,
            "{} left",
            seen.left_queued
        );
    }
    seen
}

/// A bounded channel's producer: sends its messages with forms drawn at random, retrying a
/// message on `Full` or `Timeout`; after a `Disconnected` every later send must be refused
/// the same way. Each refused send must hand back its own message.
fn bounded_producer(p: usize, seed: u64, tx: Sender<Msg>, books: Arc<Books>) -> ProducerEnd {
    let mut rng = Rng::new(seed, p as u64);
    let mut end = ProducerEnd::default();
    for seq in 0..PER_PRODUCER {
        let id = p * PER_PRODUCER + seq;
        let mut msg = Msg::new(id, &books);
        loop {
            let wait = rng.short_wait();
            let outcome: Result<(), Refused<Msg>> = match rng.below(4) {
                0 => tx.send(msg).map_err(Refused::from),
                1 => tx.try_send(msg).map_err(Refused::from),
                2 => tx.send_timeout(msg, wait).map_err(Refused::from),
                _ => tx
                    .send_deadline(msg, Instant::now() + wait)
                    .map_err(Refused::from),
            };
            let gone = end.refused > 0;
            match outcome {
                Ok(()) => {
                    assert!(
                        !gone,
                        "producer {p}: a send went through after Disconnected"
                    );
                    books.sent[id].fetch_add(1, SeqCst);
                    end.sent += 1;
                    break;
                }
                Err(Refused::Busy(back)) => {
                    assert!(!gone, "producer {p}: Full or Timeout after Disconnected");
                    assert_eq!(back.id, id, "another message came back");
                    msg = back;
                    thread::yield_now();
                }
                Err(Refused::Gone(mut back)) => {
                    assert_eq!(back.id, id, "another message came back");
                    back.out = true;
                    end.refused += 1;
                    break; // `back` drops here: refused, not lost
                }
            }
        }
    }
    end
}

/// A bounded channel's consumer: receives with forms drawn at random, `recv_many` included,
/// until its quota (then drops its receiver) or `Disconnected`.
fn bounded_consumer(
    c: usize,
    seed: u64,
    rx: Receiver<Msg>,
    quota: Option<usize>,
    books: Arc<Books>,
) -> ConsumerEnd {
    let mut rng = Rng::new(seed, 10 + c as u64);
    let mut taken = Taken::default();
    let mut batch = Vec::new();
    let ended = loop {
        let left = quota.map_or(usize::MAX, |q| q - taken.count);
        if left == 0 {
            break false;
        }
        let wait = rng.short_wait();
        let polled: Polled<Msg> = match rng.below(5) {
            0 => rx.recv().into(),
            1 => rx.try_recv().into(),
            2 => rx.recv_timeout(wait).into(),
            3 => rx.recv_deadline(Instant::now() + wait).into(),
            _ => {
                let max = 1 + rng.below(left.min(8));
                let n = rx.recv_many(&mut batch, max);
                assert!(
                    n == batch.len() && n <= max.min(rx.capacity()),
                    "recv_many: {n}"
                );
                for msg in batch.drain(..) {
                    taken.take(msg, &books);
                }
                if n > 0 {
                    continue;
                }
                Polled::Ended
            }
        };
        match polled {
            Polled::Got(msg) => taken.take(msg, &books),
            Polled::Nothing => thread::yield_now(),
            Polled::Ended => {
                assert!(
                    rx.is_empty() && rx.is_disconnected(),
                    "Disconnected too soon"
                );
                break true;
            }
        }
    };
    ConsumerEnd {
        quota,
        got: taken.count,
        ended,
    }
}

/// One bounded round; see the module docs. Every message is dropped exactly once, whoever
/// holds it at the end (a consumer, a refused producer, or the channel).
fn bounded_round(seed: u64) -> Seen {
    let plan = Plan::new(seed);
    let books = Books::new();
    let (tx, rx) = bounded::<Msg>(plan.capacity);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (tx, books) = (tx.clone(), Arc::clone(&books));
            spawn(format!("bounded {seed:#x} producer {p}"), move || {
                bounded_producer(p, seed, tx, books)
            })
        })
        .collect();
    let consumers: Vec<_> = (plan.quotas.iter().enumerate())
        .map(|(c, &quota)| {
            let (rx, books) = (rx.clone(), Arc::clone(&books));
            spawn(format!("bounded {seed:#x} consumer {c}"), move || {
                bounded_consumer(c, seed, rx, quota, books)
            })
        })
        .collect();
    drop((tx, rx));
    let (producers, consumers) = (joined(producers), joined(consumers));
    // Every end is gone, so the channel is too: what it held was dropped with it.
    let seen = check_round(&plan, &books, &producers, &consumers);
    for id in 0..TOTAL {
        let drops = books.drops[id].load(SeqCst);
        assert_eq!(drops, 1, "message {id} dropped {drops}×");
    }
    books.values.assert_all_dropped("messages", TOTAL);
    seen
}

/// A recycling channel's producer: sends each message with a form drawn at random, its `fill`
/// panicking one time in 8 and arming 1 to 3 reset panics one time in 6, until a send goes
/// through (a failed one sent nothing, so the message is sent again) or is refused with
/// `Disconnected`. Checks each planned panic, and no other, reaches it, and that a refused send
/// never ran its `fill`.
fn recycling_producer(
    p: usize,
    seed: u64,
    tx: RecyclingSender<Slot>,
    books: Arc<Books>,
) -> (ProducerEnd, Seen) {
    let mut rng = Rng::new(seed, p as u64);
    let (mut end, mut seen) = (ProducerEnd::default(), Seen::default());
    for seq in 0..PER_PRODUCER {
        let id = p * PER_PRODUCER + seq;
        loop {
            let panics = rng.one_in(8);
            let fail = rng.failures(6);
            let (form, wait) = (rng.below(3), rng.short_wait());
            let ran = Cell::new(false);
            let fill = |slot: &mut Slot| {
                ran.set(true);
                slot.fill(id, fail, panics)
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<_, Refused<_>> {
                match form {
                    0 => tx.send_with(fill).map_err(Refused::from),
                    1 => tx.try_send_with(fill).map_err(Refused::from),
                    _ => tx.send_with_timeout(fill, wait).map_err(Refused::from),
                }
            }));
            let context = format!("producer {p}, message {id}");
            let gone = end.refused > 0;
            match outcome {
                Ok(Ok(receipt)) => {
                    assert!(!gone, "{context}: a send went through after Disconnected");
                    assert!(ran.get() && !panics, "{context}: sent without a clean fill");
                    drop(receipt);
                    books.sent[id].fetch_add(1, SeqCst);
                    end.sent += 1;
                    break;
                }
                // The `fill` comes back, unrun, and is dropped here.
                Ok(Err(Refused::Gone(_))) => {
                    assert!(!ran.get(), "{context}: a refused send ran its fill");
                    end.refused += 1;
                    break;
                }
                Ok(Err(Refused::Busy(_))) => {
                    assert!(!ran.get(), "{context}: a refused send ran its fill");
                    assert!(!gone, "{context}: Full or Timeout after Disconnected");
                    thread::yield_now();
                }
                Err(payload) => {
                    assert!(!gone, "{context}: a send after Disconnected took a slot");
                    if ran.get() {
                        // The planned fill panic (a reset's panic while it unwinds is dropped).
                        expect_planned(payload, FILL_PANIC, &context);
                        seen.fill_panics += 1;
                    } else {
                        // The slot's last reset panicked and so did this send's reset of it.
                        expect_planned(payload, RESET_PANIC, &context);
                        seen.reset_panics_on_send += 1;
                    }
                }
            }
        }
    }
    (end, seen)
}

/// A recycling channel's consumer: receives with forms drawn at random, its `read` panicking
/// one time in 8 and arming 1 to 3 reset panics one time in 8, until its quota (then drops its
/// receiver) or `Disconnected`. A receive that read a message consumed it, whether it returned
/// or panicked; the panic must be the read's if it panicked, else the reset's if one was armed.
fn recycling_consumer(
    c: usize,
    seed: u64,
    rx: RecyclingReceiver<Slot>,
    quota: Option<usize>,
    books: Arc<Books>,
) -> (ConsumerEnd, Seen) {
    let mut rng = Rng::new(seed, 10 + c as u64);
    let (mut taken, mut seen) = (Taken::default(), Seen::default());
    let ended = loop {
        if quota == Some(taken.count) {
            break false;
        }
        let panics = rng.one_in(8);
        let fail = rng.failures(8);
        let (form, wait) = (rng.below(3), rng.short_wait());
        let read_one = Cell::new(None);
        let read = |slot: &mut Slot| {
            read_one.set(Some(slot.read(fail)));
            if panics {
                panic_any(READ_PANIC);
            }
            Receipt::new(&books)
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Polled<Receipt> {
            match form {
                0 => rx.recv_with(read).into(),
                1 => rx.try_recv_with(read).into(),
                _ => rx.recv_with_timeout(read, wait).into(),
            }
        }));
        let context = format!("consumer {c}, after {} messages", taken.count);
        if let Some((id, _)) = read_one.get() {
            taken.note(id, &books);
        }
        match outcome {
            Ok(Polled::Got(receipt)) => {
                let (_, reset_panics) = read_one.get().expect("a receive returned unread");
                assert!(!panics, "{context}: the read's panic was lost");
                assert!(
                    !reset_panics,
                    "{context}: the reset's panic did not propagate"
                );
                drop(receipt);
            }
            Ok(Polled::Nothing) => {
                assert!(read_one.get().is_none(), "{context}: read, then Empty");
                thread::yield_now();
            }
            Ok(Polled::Ended) => {
                assert!(
                    read_one.get().is_none(),
                    "{context}: read, then Disconnected"
                );
                assert!(
                    rx.is_empty(),
                    "{context}: Disconnected with {} queued",
                    rx.len()
                );
                break true;
            }
            Err(payload) => {
                let Some((_, reset_panics)) = read_one.get() else {
                    panic!(
                        "{context}: panicked before reading: {:?}",
                        quoted(message(&*payload))
                    );
                };
                if panics {
                    expect_planned(payload, READ_PANIC, &context);
                    seen.read_panics += 1;
                } else {
                    assert!(reset_panics, "{context}: {}", quoted(message(&*payload)));
                    expect_planned(payload, RESET_PANIC, &context);
                    seen.reset_panics_on_recv += 1;
                }
            }
        }
    };
    let end = ConsumerEnd {
        quota,
        got: taken.count,
        ended,
    };
    (end, seen)
}

/// One recycling round; see the module docs. The factory runs `capacity` times and every slot
/// value is dropped with the channel; a slot holding a committed, unread message then counts
/// it in `left_in_channel`, which must be exactly the messages sent and not received.
fn recycling_round(seed: u64) -> Seen {
    let plan = Plan::new(seed);
    let books = Books::new();
    let (tx, rx) = {
        let books = Arc::clone(&books);
        recycling(plan.capacity, move || Slot::new(&books))
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (tx, books) = (tx.clone(), Arc::clone(&books));
            spawn(format!("recycling {seed:#x} producer {p}"), move || {
                recycling_producer(p, seed, tx, books)
            })
        })
        .collect();
    let consumers: Vec<_> = (plan.quotas.iter().enumerate())
        .map(|(c, &quota)| {
            let (rx, books) = (rx.clone(), Arc::clone(&books));
            spawn(format!("recycling {seed:#x} consumer {c}"), move || {
                recycling_consumer(c, seed, rx, quota, books)
            })
        })
        .collect();
    drop((tx, rx));
    let (producers, producers_seen): (Vec<_>, Vec<_>) = joined(producers).into_iter().unzip();
    let (consumers, consumers_seen): (Vec<_>, Vec<_>) = joined(consumers).into_iter().unzip();
    let mut seen = check_round(&plan, &books, &producers, &consumers);
    books
        .values
        .assert_all_dropped("slot values", plan.capacity);
    let receipts = books.receipts.made.load(SeqCst);
    books.receipts.assert_all_dropped("receipts", receipts);
    for s in producers_seen.into_iter().chain(consumers_seen) {
        seen += s;
    }
    seen
}

/// Runs `round` for each seed, each under the deadline; returns what the rounds saw in all.
fn rounds(what: &str, first_seed: u64, round: fn(u64) -> Seen) -> Seen {
    let mut seen = Seen::default();
    for r in 0..ROUNDS {
        let seed = first_seed + r;
        seen += within(&format!("{what} round {r} (seed {seed:#x})"), move || {
            round(seed)
        });
    }
    seen
}

/// Bounded channels, 3 producers and 2 or 3 consumers, some of whom drop their receivers
/// mid-stream (in a third of the rounds all of them, so the producers get their messages back
/// with `Disconnected`): nothing lost, duplicated, reordered per producer or leaked.
#[test]
fn bounded_channels_lose_nothing_when_receivers_are_killed_mid_stream() {
    let seen = rounds("bounded", 0x5eed_b000_0000, bounded_round);
    if !cfg!(miri) {
        assert!(
            seen.killed > 0 && seen.refused > 0 && seen.left_queued > 0,
            "{seen:?}"
        );
    }
}

/// Recycling channels shaped as the bounded ones, whose fills, reads and resets panic now and
/// then: each panic is the planned one, reaches the caller the docs name, and costs exactly
/// the message the docs say (a failed send's, sent again; a failed receive's, consumed), and
/// the channel goes on for the other threads.
#[test]
fn recycling_channels_lose_nothing_when_closures_and_resets_panic_and_receivers_are_killed() {
    quiet_panics_containing(PLANNED);
    let seen = rounds("recycling", 0x5eed_7e00_0000, recycling_round);
    if !cfg!(miri) {
        assert!(
            seen.killed > 0
                && seen.refused > 0
                && seen.left_queued > 0
                && seen.fill_panics > 0
                && seen.read_panics > 0
                && seen.reset_panics_on_recv > 0
                && seen.reset_panics_on_send > 0,
            "{seen:?}"
        );
    }
}
