//! Op-sequence interpreter for `thrifty::limit`, shared by the cargo-fuzz target and
//! `tests/fuzz_corpus.rs`. Bytes are parsed by hand: the first bytes pick a rate and burst
//! (invalid ones must be refused with the right error), then each op is one code byte and its
//! arguments. A `TokenBucket` and a `KeyedLimiter` on a manual clock run beside a plain
//! credit-counting model; a `Semaphore` and an `InFlight` gate beside plain counts of what is
//! held. Semaphore requests take the borrowed or the owned form (the weight byte's high bit
//! picks), held side by side; a held permit is dropped, or now and then forgotten (the model's
//! total shrinks). Gate entries likewise take `try_enter` or `try_enter_owned` (an argument
//! byte's high bit). Every decision and every count is checked.

use std::sync::Arc;
use std::time::Duration;
use thrifty::limit::{
    AcquireTimeoutError, Clock, Fairness, InFlight, InFlightPermit, KeyedLimiter, LimitError,
    ManualClock, OwnedInFlightPermit, OwnedPermit, Permit, Semaphore, TokenBucket, Tokens,
    TryAcquireError,
};

#[path = "bytes.rs"]
mod bytes;
use bytes::Bytes;

/// The textbook bucket: credit in nanoseconds of refill, capped at `burst` tokens' worth.
struct Model {
    credit: u64,
    cap: u64,
    interval: u64,
    last: u64,
}

impl Model {
    fn refill(&mut self, now: u64) {
        self.credit = (self.credit + (now - self.last)).min(self.cap);
        self.last = now;
    }
    fn take(&mut self, now: u64, n: u32) -> bool {
        self.refill(now);
        let cost = u64::from(n) * self.interval;
        let ok = cost <= self.credit;
        if ok {
            self.credit -= cost;
        }
        ok
    }
}

/// A held permit of either form: a semaphore's ([`Permit`] or [`OwnedPermit`]) or the
/// in-flight gate's ([`InFlightPermit`] or [`OwnedInFlightPermit`]).
enum Held<B, O> {
    Borrowed(B),
    Owned(O),
}

impl Held<Permit<'_>, OwnedPermit> {
    fn weight(&self) -> u32 {
        match self {
            Self::Borrowed(p) => p.weight(),
            Self::Owned(p) => p.weight(),
        }
    }

    fn forget(self) {
        match self {
            Self::Borrowed(p) => p.forget(),
            Self::Owned(p) => p.forget(),
        }
    }
}

/// A semaphore request's weight byte: the weight, and whether to take the owned form.
fn weight_and_form(byte: u8) -> (u32, bool) {
    (u32::from(byte % 10), byte & 0x80 != 0)
}

/// Runs the ops encoded in `data`; panics if any decision or count disagrees with the model.
pub fn run(data: &[u8]) {
    let mut b = Bytes(data);
    let rate = u64::from(b.u32() % 2_000_000_001);
    let burst = u32::from(b.u8() % 17);
    let clock = ManualClock::new();
    let bucket = match TokenBucket::with_clock(rate, burst, clock.clone()) {
        Ok(bucket) => bucket,
        Err(e) => {
            let want = if rate == 0 {
                LimitError::ZeroRate
            } else if rate > 1_000_000_000 {
                LimitError::RateTooHigh { rate }
            } else {
                LimitError::ZeroBurst
            };
            assert_eq!(e, want);
            return;
        }
    };
    let keyed: KeyedLimiter<u8, _> = KeyedLimiter::with_clock(rate, burst, clock.clone()).unwrap();
    let interval = u64::try_from(bucket.interval().as_nanos()).unwrap();
    let cap = interval * u64::from(burst);
    let new_model = || Model {
        credit: cap,
        cap,
        interval,
        last: clock.now(),
    };
    let mut model = new_model();
    let mut key_models: Vec<Option<Model>> = (0..4).map(|_| None).collect();
    let mut receipts: Vec<Tokens> = Vec::new();

    // The permits byte's top bits pick the fairness: strict, or barging with zero or no
    // patience (one thread never waits, so each must answer as the strict one does).
    let byte = b.u8();
    let permits = u32::from(byte % 8) + 1;
    let fairness = match byte >> 6 {
        2 => Fairness::Eventual(Duration::ZERO),
        3 => Fairness::Eventual(Duration::MAX),
        _ => Fairness::Strict,
    };
    let sem = Arc::new(Semaphore::with_fairness(permits, fairness));
    // The model's total: `permits`, less those forgotten.
    let mut total = permits;
    let mut held = Vec::new();
    let gate = Arc::new(InFlight::new(usize::from(b.u8() % 4) + 1));
    // Both forms side by side; each leaves the gate when dropped.
    let mut inside: Vec<Held<InFlightPermit<'_>, OwnedInFlightPermit>> = Vec::new();
    let mut ops = 0;
    while !b.0.is_empty() && ops < 512 {
        ops += 1;
        let now = clock.now();
        match b.u8() % 10 {
            0 => {
                let n = u32::from(b.u8() % 20);
                let got = bucket.try_acquire(n);
                if n > burst {
                    assert!(got.unwrap_err().is_insufficient_capacity());
                } else {
                    assert_eq!(got.is_ok(), model.take(now, n), "bucket vs model");
                    receipts.extend(got.ok());
                }
            }
            1 => {
                if let Some(t) = receipts.pop() {
                    model.refill(now);
                    model.credit = (model.credit + u64::from(t.count()) * interval).min(cap);
                    bucket.refund(t);
                }
            }
            2 => clock.advance(Duration::from_nanos(u64::from(b.u32()))),
            3 => {
                let key = b.u8() % 4;
                let n = u32::from(b.u8() % 20);
                let got = keyed.try_acquire(&key, n);
                if n > burst {
                    assert!(got.unwrap_err().is_insufficient_capacity());
                } else {
                    let m = key_models[usize::from(key)].get_or_insert_with(new_model);
                    assert_eq!(got.is_ok(), m.take(now, n), "keyed vs model");
                }
            }
            4 => {
                keyed.evict_idle();
            }
            5 => {
                let (w, owned) = weight_and_form(b.u8());
                let got = if owned {
                    sem.try_acquire_owned(w).map(Held::Owned)
                } else {
                    sem.try_acquire(w).map(Held::Borrowed)
                };
                match got {
                    Ok(p) => held.push(p),
                    Err(TryAcquireError::InsufficientCapacity(e)) => {
                        assert!(w > total);
                        assert_eq!(e.capacity, total);
                    }
                    Err(TryAcquireError::NoPermits) => {
                        let used: u32 = held.iter().map(|p| p.weight()).sum();
                        assert!(total - used < w);
                    }
                    Err(TryAcquireError::Closed) => assert!(sem.is_closed()),
                }
            }
            6 => {
                if !held.is_empty() {
                    let byte = b.u8();
                    let p = held.swap_remove(usize::from(byte) % held.len());
                    // One time in sixteen the permit is forgotten rather than dropped.
                    if byte >= 0xf0 {
                        total -= p.weight();
                        p.forget();
                    } else {
                        drop(p);
                    }
                }
            }
            7 => {
                let (w, owned) = weight_and_form(b.u8());
                let got = if owned {
                    sem.acquire_timeout_owned(w, Duration::ZERO)
                        .map(Held::Owned)
                } else {
                    sem.acquire_timeout(w, Duration::ZERO).map(Held::Borrowed)
                };
                match got {
                    Ok(p) => held.push(p),
                    Err(AcquireTimeoutError::InsufficientCapacity(e)) => {
                        assert!(w > total);
                        assert_eq!(e.capacity, total);
                    }
                    Err(AcquireTimeoutError::Timeout) => {
                        let used: u32 = held.iter().map(|p| p.weight()).sum();
                        assert!(total - used < w);
                    }
                    Err(AcquireTimeoutError::Closed) => assert!(sem.is_closed()),
                }
            }
            8 => {
                let entered = match b.u8() & 0x80 != 0 {
                    true => gate.try_enter_owned().map(Held::Owned),
                    false => gate.try_enter().map(Held::Borrowed),
                };
                match entered {
                    Some(p) => inside.push(p),
                    None => assert_eq!(inside.len(), gate.max()),
                }
            }
            _ => {
                if b.u8() % 8 == 0 {
                    sem.close();
                } else {
                    inside.pop();
                }
            }
        }
        let used: u32 = held.iter().map(|p| p.weight()).sum();
        assert_eq!(sem.available() + used, total, "semaphore permits");
        assert_eq!(sem.total(), total, "semaphore total");
        assert_eq!(gate.in_flight(), inside.len(), "in flight");
        model.refill(clock.now());
        assert_eq!(
            u64::from(bucket.available()),
            model.credit / interval,
            "bucket tokens"
        );
    }
    drop(held);
    assert_eq!(sem.available(), total);
    assert_eq!(
        Arc::strong_count(&sem),
        1,
        "an owned permit kept its reference"
    );
    assert!(gate.admitted() >= inside.len() as u64);
    drop(inside);
    assert_eq!(gate.in_flight(), 0);
    assert_eq!(
        Arc::strong_count(&gate),
        1,
        "an owned gate permit kept its reference"
    );
}
