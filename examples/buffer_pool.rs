//! A request handler that encodes each response into a byte buffer, with and without a
//! `BufferPool`, printing allocator calls per request for both.
//!
//! Run: `cargo run --release --example buffer_pool`

use std::fmt::Write as _;
use std::io::Write as _;
use thrifty::measure::{self, CountingAlloc};
use thrifty::pool::BufferPool;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// A request as the handler sees it.
struct Request {
    id: u64,
    path: &'static str,
    items: usize,
}

/// Encodes a JSON-ish response for `req` into `out` (cleared by the caller or the pool).
fn encode(req: &Request, out: &mut Vec<u8>) {
    write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n"
    )
    .unwrap();
    write!(
        out,
        "{{\"id\":{},\"path\":\"{}\",\"items\":[",
        req.id, req.path
    )
    .unwrap();
    for i in 0..req.items {
        if i > 0 {
            out.push(b',');
        }
        write!(out, "{{\"n\":{i},\"sq\":{}}}", i * i).unwrap();
    }
    out.extend_from_slice(b"]}\n");
}

/// Stands in for the socket: consumes the bytes.
fn send(bytes: &[u8], sink: &mut u64) {
    *sink = sink.wrapping_add(bytes.iter().map(|&b| u64::from(b)).sum::<u64>());
}

fn handle_allocating(req: &Request, sink: &mut u64) {
    let mut out = Vec::new();
    encode(req, &mut out);
    send(&out, sink);
}

fn handle_pooled(pool: &BufferPool, req: &Request, sink: &mut u64) {
    let mut out = pool.get(); // empty, with the capacity an earlier response grew it to
    encode(req, &mut out);
    send(&out, sink);
} // the buffer goes back here

fn main() {
    let pool = BufferPool::builder()
        .buffer_capacity(4 * 1024)
        .max_buffer_capacity(256 * 1024) // a rare huge response is not kept
        .byte_budget(8 * 1024 * 1024)
        .build();
    let requests: Vec<Request> = (0..2_000)
        .map(|id| Request {
            id,
            path: "/api/items",
            items: if id % 500 == 250 {
                20_000
            } else {
                40 + (id as usize % 60)
            },
        })
        .collect();
    let mut sink = 0;

    let (_, plain) = measure::count(|| {
        for req in &requests {
            handle_allocating(req, &mut sink);
        }
    });
    // Warm the pool with one request so the steady state is what we count.
    handle_pooled(&pool, &requests[0], &mut sink);
    let (_, pooled) = measure::count(|| {
        for req in &requests {
            handle_pooled(&pool, req, &mut sink);
        }
    });

    let n = requests.len() as f64;
    let mut big = Vec::new(); // one of the 4 outliers, encoded after the counts for its size
    encode(&requests[250], &mut big);
    let mut report = String::new();
    writeln!(
        report,
        "{} requests, 4 of them with a {} KiB response",
        requests.len(),
        big.len() / 1024
    )
    .unwrap();
    writeln!(
        report,
        "allocating per request: {:>6.2} allocator calls/request, {:>9.0} bytes/request",
        plain.calls() as f64 / n,
        plain.bytes_allocated as f64 / n
    )
    .unwrap();
    writeln!(
        report,
        "with BufferPool:        {:>6.2} allocator calls/request, {:>9.0} bytes/request",
        pooled.calls() as f64 / n,
        pooled.bytes_allocated as f64 / n
    )
    .unwrap();
    let s = pool.stats();
    writeln!(
        report,
        "pool: {} hits, {} misses, {} returned, {} discarded (outliers over 256 KiB), {} retained",
        s.hits, s.misses, s.returned, s.discarded, s.retained
    )
    .unwrap();
    print!("{report}");
    std::hint::black_box(sink);
}
