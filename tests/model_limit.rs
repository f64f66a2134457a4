//! proptest: `TokenBucket` and `KeyedLimiter` on a manual clock against a plain reference
//! bucket, over random sequences of requests, refunds and clock advances.
//!
//! Checked on every step: the bucket admits exactly when the model does (so it never refuses
//! what the model admits, and never admits what it refuses); its `retry_after` is the model's;
//! and over every span from the first request, admitted tokens (net of refunds) never exceed
//! `burst + rate × elapsed`, with `rate` the tokens per second asked for. With `acquire` calls
//! asleep on reservations (a clock whose sleeps return at once), the same bound holds over the
//! times their turns come, refunds racing them included.

#![cfg(not(loom))]

use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use thrifty::limit::{Clock, KeyedLimiter, ManualClock, TokenBucket, Tokens};

/// A token bucket as a textbook writes it: a credit in nanoseconds of refill, capped at
/// `burst` tokens' worth, refilled one nanosecond per nanosecond.
struct Model {
    credit: u64,
    cap: u64,
    interval: u64,
    last: u64,
}

impl Model {
    fn new(interval: u64, burst: u32) -> Self {
        let cap = interval * u64::from(burst);
        Self {
            credit: cap,
            cap,
            interval,
            last: 0,
        }
    }
    fn refill(&mut self, now: u64) {
        self.credit = (self.credit + (now - self.last)).min(self.cap);
        self.last = now;
    }
    fn take(&mut self, now: u64, n: u32) -> Result<(), u64> {
        self.refill(now);
        let cost = u64::from(n) * self.interval;
        if cost <= self.credit {
            self.credit -= cost;
            Ok(())
        } else {
            Err(cost - self.credit)
        }
    }
    fn refund(&mut self, now: u64, n: u32) {
        self.refill(now);
        self.credit = (self.credit + u64::from(n) * self.interval).min(self.cap);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Take(u32),
    Refund(usize),
    Advance(u64),
}

fn ops(burst: u32) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => (0..=burst + 1).prop_map(Op::Take),
            1 => any::<usize>().prop_map(Op::Refund),
            3 => prop_oneof![0..1_000u64, 0..50_000_000u64, 0..3_000_000_000u64]
                .prop_map(Op::Advance),
        ],
        1..200,
    )
}

/// Every admission's time and net tokens (refunds as negative).
type Log = Vec<(u64, i64)>;

/// Over every span `[t_i, t_j]` starting at an admission, the net tokens admitted in it are at
/// most `burst + rate × elapsed`.
fn check_bound(log: &Log, rate: u64, burst: u32) {
    for i in 0..log.len() {
        let mut net = 0i64;
        for &(t, n) in &log[i..] {
            net += n;
            let elapsed = u128::from(t - log[i].0);
            let bound = u128::from(burst) * 1_000_000_000 + u128::from(rate) * elapsed;
            assert!(
                i128::from(net) * 1_000_000_000 <= bound as i128,
                "{net} tokens in {elapsed} ns at {rate}/s burst {burst}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

    #[test]
    fn bucket_matches_the_model_and_the_bound(
        rate in prop_oneof![1..20u64, 1..1_000_000u64, Just(3u64), Just(1_000_000_000u64)],
        (burst, script) in (1..20u32).prop_flat_map(|burst| (Just(burst), ops(burst))),
    ) {
        let clock = ManualClock::new();
        let bucket = TokenBucket::with_clock(rate, burst, clock.clone()).unwrap();
        let interval = u64::try_from(bucket.interval().as_nanos()).unwrap();
        let mut model = Model::new(interval, burst);
        let mut held: Vec<Tokens> = Vec::new();
        let mut log = Log::new();
        for op in script {
            let now = clock.now();
            match op {
                Op::Take(n) => {
                    let got = bucket.try_acquire(n);
                    if n > burst {
                        prop_assert!(got.unwrap_err().is_insufficient_capacity());
                        continue;
                    }
                    match (got, model.take(now, n)) {
                        (Ok(t), Ok(())) => {
                            log.push((now, i64::from(n)));
                            held.push(t);
                        }
                        (Err(e), Err(wait)) => {
                            prop_assert_eq!(e.retry_after(), Some(Duration::from_nanos(wait)));
                        }
                        (got, want) => prop_assert!(false, "bucket {:?}, model {:?}", got, want),
                    }
                }
                Op::Refund(i) if !held.is_empty() => {
                    let t = held.swap_remove(i % held.len());
                    let n = t.count();
                    let before = bucket.available();
                    bucket.refund(t);
                    model.refund(now, n);
                    // The bucket regained exactly what the model did (in whole tokens).
                    prop_assert_eq!(bucket.available(), u32::try_from(model.credit / interval).unwrap());
                    log.push((now, -i64::from(bucket.available() - before)));
                }
                Op::Refund(_) => {}
                Op::Advance(d) => clock.advance(Duration::from_nanos(d)),
            }
            prop_assert_eq!(bucket.available(), u32::try_from({ model.refill(clock.now()); model.credit / interval }).unwrap());
        }
        check_bound(&log, rate, burst);
    }

    #[test]
    fn keyed_matches_one_model_per_key(
        burst in 1..6u32,
        script in prop::collection::vec((0..4u8, 0..4u32, 0..300_000_000u64), 1..200),
    ) {
        let clock = ManualClock::new();
        let keyed: KeyedLimiter<u8, _> = KeyedLimiter::with_clock(10, burst, clock.clone()).unwrap();
        let mut models: Vec<Model> = (0..4).map(|_| Model::new(100_000_000, burst)).collect();
        for (key, n, advance) in script {
            let now = clock.now();
            let got = keyed.try_acquire(&key, n);
            if n > burst {
                prop_assert!(got.unwrap_err().is_insufficient_capacity());
            } else {
                prop_assert_eq!(got.is_ok(), models[usize::from(key)].take(now, n).is_ok());
            }
            clock.advance(Duration::from_nanos(advance));
            if advance % 7 == 0 {
                keyed.evict_idle(); // evicting full buckets changes no decision
            }
        }
    }
}

/// A clock whose time moves only when the test says, and whose `sleep_until` returns at once,
/// keeping the deadline: each `acquire` on it reserves as a caller going to sleep would, and
/// the test reads the turn it was given.
#[derive(Clone, Default)]
struct Asleep {
    now: Arc<AtomicU64>,
    turn: Arc<AtomicU64>,
}

impl Clock for Asleep {
    fn now(&self) -> u64 {
        self.now.load(Relaxed)
    }
    fn sleep_until(&self, deadline: u64) {
        self.turn.store(deadline, Relaxed);
    }
}

#[derive(Debug, Clone)]
enum Step {
    Take(u32),
    Acquire(u32),
    Refund(usize),
    Advance(u64),
}

fn steps(burst: u32) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0..=burst + 1).prop_map(Step::Take),
            3 => (0..=burst + 1).prop_map(Step::Acquire),
            2 => any::<usize>().prop_map(Step::Refund),
            3 => prop_oneof![0..1_000u64, 0..50_000_000u64, 0..3_000_000_000u64]
                .prop_map(Step::Advance),
        ],
        1..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

    #[test]
    fn reservations_and_refunds_keep_the_bound(
        rate in prop_oneof![1..20u64, 1..1_000_000u64, Just(3u64), Just(1_000_000_000u64)],
        (burst, script) in (1..20u32).prop_flat_map(|burst| (Just(burst), steps(burst))),
    ) {
        let clock = Asleep::default();
        let bucket = TokenBucket::with_clock(rate, burst, clock.clone()).unwrap();
        // Each receipt with the time its tokens passed (a sleeper's turn may lie ahead).
        let mut held: Vec<(Tokens, u64)> = Vec::new();
        let mut log = Log::new();
        for step in script {
            let now = clock.now();
            match step {
                Step::Take(n) => {
                    if let Ok(t) = bucket.try_acquire(n) {
                        log.push((now, i64::from(n)));
                        held.push((t, now));
                    }
                }
                Step::Acquire(n) => {
                    clock.turn.store(0, Relaxed);
                    let Ok(t) = bucket.acquire(n) else {
                        prop_assert!(n > burst, "acquire({}) refused at burst {}", n, burst);
                        continue;
                    };
                    let turn = clock.turn.load(Relaxed).max(now);
                    log.push((turn, i64::from(n)));
                    held.push((t, turn));
                }
                Step::Refund(i) => {
                    // Only a caller whose turn has come holds its tokens and can refund them.
                    let due: Vec<usize> = (0..held.len()).filter(|&j| held[j].1 <= now).collect();
                    if due.is_empty() {
                        continue;
                    }
                    let (t, _) = held.swap_remove(due[i % due.len()]);
                    let n = t.count();
                    let before = bucket.available();
                    bucket.refund(t);
                    let gained = bucket.available() - before;
                    prop_assert!(gained <= n, "{} tokens back for {}", gained, n);
                    log.push((now, -i64::from(gained)));
                }
                Step::Advance(d) => {
                    clock.now.fetch_add(d, Relaxed);
                }
            }
        }
        // Turns may lie ahead of later steps: order the log by time (stable, so a refund stays
        // after the admissions logged before it at the same time).
        log.sort_by_key(|&(t, _)| t);
        check_bound(&log, rate, burst);
    }
}
