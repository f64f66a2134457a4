//! Parses a batch of HTTP-like requests into borrowed structures, once on the heap (a `String`
//! per field, a `Vec` per list) and once in pooled arenas (`thrifty::arena::ArenaPool`), and
//! prints allocator calls per request for both, and what an oversized request gets.
//!
//! Run: `cargo run --release --example request_arena`

use thrifty::arena::{ArenaFull, ArenaGuard, ArenaPool};
use thrifty::measure::{self, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// A parsed request, on the heap.
#[allow(dead_code)] // the fields are the point; the example reads a few
struct HeapRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

/// The same request, every byte in the arena: plain borrowed data, nothing to drop.
#[allow(dead_code)]
struct ArenaRequest<'a> {
    method: &'a str,
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
    query: &'a [(&'a str, &'a str)],
}

fn parse_heap(raw: &str) -> Option<HeapRequest> {
    let mut lines = raw.lines();
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Some(HeapRequest {
        method,
        path: path.to_owned(),
        headers,
        query,
    })
}

/// Copies `pairs` into the arena: a slice of pairs of arena strings.
fn pairs<'a>(
    arena: &'a ArenaGuard<'_>,
    pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) -> Result<&'a [(&'a str, &'a str)], ArenaFull> {
    // Count first, then fill a slice of that length: no growable vector, nothing to drop.
    // (bumpalo's own `try_` method, through `Deref`; the arena's limit bounds it too.)
    let n = pairs.clone().count();
    let slots = arena
        .try_alloc_slice_fill_copy(n, ("", ""))
        .map_err(|_| ArenaFull {
            requested: n * std::mem::size_of::<(&str, &str)>(),
            limit: arena.limit_bytes(),
        })?;
    for (slot, (k, v)) in slots.iter_mut().zip(pairs) {
        *slot = (&*arena.try_alloc_str(k)?, &*arena.try_alloc_str(v)?);
    }
    Ok(slots)
}

fn parse_arena<'a>(arena: &'a ArenaGuard<'_>, raw: &str) -> Result<ArenaRequest<'a>, ArenaFull> {
    // The raw request is copied in first, so every field borrows the arena, not the input.
    let raw: &'a str = arena.try_alloc_str(raw)?;
    let mut lines = raw.lines();
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("");
    let target = first.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = pairs(arena, query.split('&').filter_map(|kv| kv.split_once('=')))?;
    let headers = pairs(arena, lines.filter_map(|l| l.split_once(": ")))?;
    Ok(ArenaRequest {
        method,
        path,
        headers,
        query,
    })
}

fn batch() -> Vec<String> {
    (0..1000)
        .map(|i| {
            format!(
                "GET /api/items/{i}?page={}&sort=name&limit=50 HTTP/1.1\n\
                 host: example.test\naccept: application/json\nuser-agent: bench/{i}\n\
                 x-request-id: {:016x}\ncookie: session=abc{i}",
                i % 7,
                i * 2_654_435_761u64
            )
        })
        .collect()
}

fn main() {
    let batch = batch();

    let (sum, heap) = measure::count(|| {
        let mut sum = 0;
        for raw in &batch {
            let req = parse_heap(raw).expect("well-formed");
            sum += req.path.len() + req.headers.len() + req.query.len();
        }
        sum
    });

    let arenas = ArenaPool::builder()
        .capacity(4)
        .limit_bytes(64 << 10)
        .retain_bytes(64 << 10)
        .build();
    parse_arena(&arenas.get(), &batch[0]).expect("fits"); // warm: one arena, its chunk
    let (arena_sum, pooled) = measure::count(|| {
        let mut sum = 0;
        for raw in &batch {
            let arena = arenas.get();
            let req = parse_arena(&arena, raw).expect("fits");
            sum += req.path.len() + req.headers.len() + req.query.len();
        }
        sum
    });
    assert_eq!(sum, arena_sum, "both parsers read the same requests");

    let n = batch.len() as u64;
    println!("parsed {n} requests (checksum {sum}: path bytes + header count + query count)");
    println!(
        "  heap (String/Vec per field): {:>6.1} allocator calls per request",
        heap.calls_per(n)
    );
    println!(
        "  thrifty ArenaPool:           {:>6.1} allocator calls per request",
        pooled.calls_per(n)
    );
    let stats = arenas.stats();
    println!(
        "  arenas: {} created, {} reused, {} KiB retained",
        stats.created,
        stats.reused,
        stats.retained_bytes / 1024
    );

    // A hostile request: a 1 MiB cookie against a 64 KiB limit is refused, not allocated.
    let huge = format!("GET / HTTP/1.1\ncookie: {}", "x".repeat(1 << 20));
    let arena = arenas.get();
    match parse_arena(&arena, &huge) {
        Ok(_) => println!("  a 1 MiB request: parsed (unexpected)"),
        Err(e) => println!("  a 1 MiB request: refused ({e})"),
    }
}
