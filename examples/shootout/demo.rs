//! The demonstration table: growing a `Vec` by pushes versus sizing it up front. It needs no
//! thrifty primitive; it shows the frame (ns/op beside allocs/op) on a case everyone knows.

use crate::harness::{Candidate, Harness};
use std::hint::black_box;

const LEN: usize = 1000;

pub fn run(h: &mut Harness) {
    let mut t = h.table(
        "demo",
        "build a Vec<u64> of 1000 pushes (no thrifty module: proves the frame)",
    );
    for threads in t.threads(&[1, 2]) {
        t.workload(
            "1000 pushes",
            threads,
            vec![
                Candidate::std("Vec::new + push", |_, ops| {
                    for _ in 0..ops {
                        let mut v = Vec::new();
                        for i in 0..black_box(LEN) as u64 {
                            v.push(i);
                        }
                        black_box(v);
                    }
                }),
                Candidate::new("Vec::with_capacity + push", |_, ops| {
                    for _ in 0..ops {
                        let mut v = Vec::with_capacity(black_box(LEN));
                        for i in 0..black_box(LEN) as u64 {
                            v.push(i);
                        }
                        black_box(v);
                    }
                }),
            ],
        );
    }
}
