//! Op-sequence interpreter for `thrifty::channel`, shared by the cargo-fuzz target and
//! `tests/fuzz_corpus.rs`. Byte 0 picks the capacity (1–8); then each op is one code byte. A
//! plain channel and a recycling one run beside a `VecDeque` model each; every answer, the
//! stats and the drop count of queued messages are checked against the models, including after
//! a burst that hands messages across two threads.

use std::collections::VecDeque;
use std::time::Duration;
use thrifty::channel::{bounded, recycling, TryRecvError, TrySendError};

/// Counts its drops through a shared cell, so the run can check each message is dropped once.
struct Msg {
    id: u32,
    drops: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for Msg {
    fn drop(&mut self) {
        self.drops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Runs the ops encoded in `data`; panics if any answer disagrees with the models.
pub fn run(data: &[u8]) {
    let Some((&first, ops)) = data.split_first() else { return };
    let cap = usize::from(first % 8) + 1;
    let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (t, r) = bounded::<Msg>(cap);
    let (mut tx, mut rx) = (Some(t), Some(r));
    let (rtx, rrx) = recycling(cap, String::new);
    let mut model: VecDeque<u32> = VecDeque::new();
    let mut rmodel: VecDeque<String> = VecDeque::new();
    let (mut next, mut made) = (0u32, 0usize);
    let short = Duration::from_micros(1);
    for &op in ops.iter().take(512) {
        match op % 10 {
            0 | 1 => {
                if let Some(tx) = &tx {
                    made += 1;
                    let m = Msg { id: next, drops: drops.clone() };
                    match tx.try_send(m) {
                        Ok(()) => {
                            assert!(rx.is_some() && model.len() < cap);
                            model.push_back(next);
                        }
                        Err(TrySendError::Full(m)) => assert_eq!((model.len(), m.id), (cap, next)),
                        Err(TrySendError::Disconnected(m)) => {
                            assert!(rx.is_none());
                            assert_eq!(m.id, next);
                        }
                    }
                    next += 1;
                }
            }
            2 | 3 => {
                if let Some(rx) = &rx {
                    match rx.try_recv() {
                        Ok(m) => assert_eq!(Some(m.id), model.pop_front()),
                        Err(TryRecvError::Empty) => assert!(model.is_empty() && tx.is_some()),
                        Err(TryRecvError::Disconnected) => {
                            assert!(model.is_empty() && tx.is_none())
                        }
                    }
                }
            }
            4 => {
                if let Some(rx) = &rx {
                    let got = rx.recv_timeout(short).ok().map(|m| m.id);
                    assert_eq!(got, model.pop_front());
                }
            }
            5 => {
                let text = format!("m{next}");
                let r = rtx.try_send_with(|s| {
                    assert!(s.is_empty(), "slots are reset");
                    s.push_str(&text)
                });
                assert_eq!(r.is_ok(), rmodel.len() < cap);
                if r.is_ok() {
                    rmodel.push_back(text);
                }
                next += 1;
            }
            6 => {
                let got = rrx.try_recv_with(|s| s.clone()).ok();
                assert_eq!(got, rmodel.pop_front());
            }
            7 => {
                // A burst across threads: fill and drain the plain channel from two threads.
                if let (Some(tx), Some(rx)) = (&tx, &rx) {
                    let n = usize::from(op / 10) + 1;
                    let taken = std::thread::scope(|s| {
                        let drops = drops.clone();
                        s.spawn(move || {
                            for i in 0..n {
                                tx.send(Msg { id: 1_000_000 + i as u32, drops: drops.clone() })
                                    .unwrap();
                            }
                        });
                        (0..model.len() + n).map(|_| rx.recv().unwrap().id).collect::<Vec<_>>()
                    });
                    made += n;
                    let want: Vec<u32> =
                        model.drain(..).chain((0..n as u32).map(|i| 1_000_000 + i)).collect();
                    assert_eq!(taken, want);
                }
            }
            8 => {
                if tx.take().is_some() {
                    assert!(rx.as_ref().map_or(true, |r| r.is_disconnected()));
                }
            }
            _ => {
                if rx.take().is_some() {
                    model.clear(); // the last receiver drops what is queued
                }
            }
        }
        let live = made - drops.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(live, model.len(), "each message dropped exactly once, when it should be");
        if let Some(rx) = &rx {
            assert_eq!(rx.len(), model.len());
        }
        assert_eq!(rrx.len(), rmodel.len());
    }
    drop((tx, rx));
    assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), made);
}
