//! Counters for every count in a program: [`Counter`] (monotonic `u64`), [`Gauge`] (`i64`
//! level) and [`PerCpu`] (per-thread-slot state of any type).
//!
//! A `Counter` that is not contended is 16 bytes and adds with one `fetch_add` and a few plain
//! instructions (about an `AtomicU64`'s cost in a registry: see [Performance](#performance)),
//! so a metrics registry of thousands can use it for every entry; where two or more threads
//! keep bumping the same one at the same moment, it stripes over per-thread cells (Java's
//! `LongAdder` and Linux's `percpu_counter` idea), starting at 2 and doubling only while
//! threads still have to share a cell.
//!
//! # When a counter stripes
//!
//! Only when contention lasts: one add in 4096 of a thread, on average, checks briefly whether
//! another thread writes the same counter, and 4 hits within 8 consecutive checks stripe it (the
//! rule and why it holds are under [How it works](#how-it-works)). A single burst shorter than that
//! never stripes a fresh counter, which is the point. It takes 4 probes that hit, and a thread's
//! probes come 2 048 to 6 143 of its adds apart: two threads at the same pace need at least about
//! 2 000 adds each (a thread part-way through its gap may probe on its first add to the counter;
//! with more threads, each needs fewer), and fresh threads, whose first probe comes 3 072 to 7 167
//! adds after they start, at least 5 120 each; all at a contended `AtomicU64`'s price, well under
//! a millisecond at full speed. The score has no time limit, though (its window counts the counter's sampled adds, not
//! time): hits from separate bursts add up, so short bursts that keep coming back stripe it
//! (repeated bursts of 1 000 adds on each of two threads do, within some dozens of bursts), as
//! contention that lasts should. Counters spread over a registry almost never stripe: the
//! shootout's registry table reports the share striped after each run (`cargo run --release
//! --example shootout -- --only counter`; 0% of 10 000 and of 100 000 counters, at most 0.1% of
//! 1 000 on 2 threads, up to 2% in earlier series), and `tests/shapes_counter.rs` asserts at most
//! 1% at 10 000.
//!
//! # Memory
//!
//! Bytes per counter on x86-64 (128-byte cells, `CachePadded`): the counter's own 16 bytes plus
//! what `heap_bytes()` reports:
//!
//! | state | this machine (2 CPUs) | 64-CPU machine |
//! | --- | --- | --- |
//! | idle, or bumped by one thread at a time | 16 | 16 |
//! | after 2-thread contention | 16 + 2 × 128 = 272 | 272 |
//! | after N threads contended (cells `c` = N rounded up to a power of two, while no more than `c` threads were ever alive at once; see below) | 16 + (2c − 2) × 128 | 16 + (2c − 2) × 128; all 64 CPUs: 16 + 126 × 128 ≈ 15.8 KiB |
//!
//! A counter that doubled keeps the blocks it outgrew (`2 + 4 + … + c = 2c − 2` cells): their
//! cells still hold counts and a thread may be in the middle of an add to one. Growth stops at
//! the number of threads that contend (each owns a cell, nobody shares, nothing probes), if
//! their thread slots are dense: each looks for a cell within 4 of `slot & (c − 1)`. Slots
//! are dense while no more threads have been alive at once than contend; the survivors of a
//! larger crowd keep slots far apart, and may all map to one cell (5 threads left on slots 0,
//! 8, 16, 24 and 32 after 33 were alive grew a counter to 16 cells, 3 840 heap bytes, where the
//! table gives 8): the bound is then the peak of live threads, rounded up, never past
//! [`Counter::max_cells`], and `heap_bytes()` reports it exactly. A
//! registry of 10 000 counters bumped at random from two threads stays at 16 bytes per counter
//! (`cargo run --release --example shootout -- --only counter`, registry table notes). The
//! unit test `the_memory_table_holds` checks the table's figures up to 8 cells.
//!
//! # Giving memory back
//!
//! [`Counter::compact`] (and [`Gauge::compact`]) fold the cells into the total and free every
//! block, with `&mut self`: only then is it certain that no thread is halfway through an add to
//! a cell. `take` and `reset` cannot do it through `&self`: a cell's owner adds with a plain
//! load and store, so its cell cannot be drained while it may be writing, and a thread may hold
//! a block it loaded a moment ago; freeing it safely would need an epoch or hazard scheme whose
//! fence every add would pay. A counter that keeps its cells costs them in memory only: its
//! owners' adds stay cheap.
//!
//! # `sum`, `take`, `reset`, `set`
//!
//! `sum` is exact once writers are quiescent. While adds run it includes every add that
//! *happens-before* it and may include adds concurrent with it (each wholly or not at all). It does
//! not promise more: the cells are read with relaxed loads, so an add that finished earlier in
//! wall-clock time on a thread the reader never synchronised with may not be seen yet. `take`,
//! `reset` (`Counter`) and `set` (`Gauge`) rewrite the total through `base` by one compare-exchange
//! of `base := new − Σ cells`; an add concurrent with one lands wholly before it (in what `take`
//! returns, or overwritten by `set`) or wholly after it; never both, never neither. The
//! compare-exchange retries (reading the cells again) when something else wrote `base` meanwhile: a
//! compact add, another `take`, `reset` or `set`, or on a striped counter a stray (see How it
//! works): a thread makes at most one per counter and sampling interval, except that a thread that
//! used no striped counter in its last interval strays on a striped counter until one of its probes
//! lands there, about an interval's worth of adds (4 096) to it.
//!
//! # Performance
//!
//! Ratios to an `AtomicU64`'s time per increment per thread: ranges over 5 runs of `cargo run
//! --release --example shootout -- --only counter` on a shared 2-core VM (Intel Xeon, a Golden
//! Cove-class core, 2026-12-06, 05:27 UTC), with medians where the range is wide. The
//! shootout starts a round's threads together (a spinning start line), so a contended baseline
//! contends for its whole round. Read them as ratios; the absolute times move with the machine's
//! load. The cores differ where it matters most (below: an AMD EPYC VM gave other figures for the
//! same rows), so run the shootout on your own machine before choosing. `cargo bench --bench
//! counter -- 'counter/(registry|mixed|increment)'` has the registry, mixed and one-counter
//! increment workloads in criterion (not the handler, several-hot, idle-owner or floor rows).
//!
//! - **Registry** of 1 000, 10 000 and 100 000 counters, a random one per increment (five runs of
//!   their own, 2026-12-06 16:57 UTC). 1 thread: 1.01x–1.03x, 1.03x–1.04x and 1.07x–1.09x. 2
//!   threads: 0.73x–0.74x, 1.04x–1.08x (median 1.06x) and 1.19x–1.20x. `Mutex<u64>` about 2.3x on 1
//!   thread. No counter striped at 10 000 or 100 000 (16 bytes each), at most 0.1% of 1 000 on 2
//!   threads. Part of the cost is size: an `AtomicU64` padded to 16 bytes (the `AtomicU64 in 16 B`
//!   row) takes 0.99x–1.01x, 0.99x–1.01x and 1.04x–1.06x on 1 thread, and 0.72x–0.74x, 0.94x–0.95x
//!   and 1.03x–1.06x on 2 (each candidate bumps a registry of its own, cold at the start of each of
//!   its rounds, and twice the bytes are twice the lines to fetch). The rest is what the add does
//!   beside its locked add: the hot entry's key, the thread's skip flag and the tick (37
//!   instructions an add against the `AtomicU64` loop's 19, `bash
//!   scripts/counter_instructions.sh`). On this core a locked add waits for every load before it
//!   and holds up every load after it, so each L1 load on the way adds its latency to a chain of
//!   locked adds; so the add reads no state word here (a blind add: How it works). Taken apart in a
//!   loop of its own (JOURNAL.md has the runs), the tick and the hot key's compare account for most
//!   of what is left at 100 000 counters on 2 threads. The add is also short enough beside its
//!   locked add that where the compiler places the loop moves it by about 5%. The `thrifty Counter,
//!   after a striped one` row, a thread that owns a cell in a striped counter (each adds to one
//!   first), runs the same instructions in another copy of the loop once its interval after the one
//!   it learned in ends (its memo then holds that counter only, so it adds blind as the plain row's
//!   thread does: How it works): 1.00x–1.03x, 1.01x–1.03x and 1.07x–1.09x on 1 thread, 0.73x–0.74x,
//!   1.05x–1.07x and 1.20x–1.22x on 2. A thread with cells in several striped counters reads its
//!   memo's key and its filter's bit, at places computed from the counter's address, before every
//!   locked add, and the state word after. The `AtomicU64, load + CAS` row bumps an `AtomicU64` by
//!   a load and a compare-exchange: what a counter that reads its word before it writes pays on 2
//!   threads, the cost the add order of "How it works" avoids.
//! - A small, very hot registry (1 000 counters, 2 threads at full speed) meets on the same
//!   counters often enough that some may stripe (at most 0.1% in the registry runs above; earlier
//!   series saw up to 2% of them, about 21 bytes per counter on average). At 100 counters (the
//!   mixed shape below) many do: two threads at full speed add to each of them about every 100
//!   adds, contention that lasts by the rule.
//! - **One hot counter**, 2 threads: 0.6 ns per add, 0.01x an `AtomicU64`'s time; a
//!   [`LocalCounter`], which holds its cell, 0.5–0.6 ns, 0.01x. The thread-local bound row (an add
//!   to a local, unrolled four times) took 0.3 ns: `add` runs at 0.5x of its speed (twice its time)
//!   in all five runs (the shootout prints a tenth of a nanosecond),
//!   the handle at 0.5x–0.6x. The `own cell, load + store (floor)` row, a thread adding to a word
//!   of its own with no look-up at all, runs at 0.5x–0.6x of that speed: what any counter whose
//!   `sum` sees every add pays at least. The add took 1.00x–1.20x the floor's time (median 1.00x).
//!   An add to the counter of the thread's hot entry reads four words (the entry's key and its
//!   pointer to the thread's cell, the counter's state word, then the entry's state word) before
//!   the cell's load and store; the handle reads one (the claim token). On this core, which issues
//!   about six a cycle, the instruction count sets the hot add's pace, which is why the key's
//!   compare takes its operand from memory (How it works; JOURNAL.md has the loops that showed it).
//!   The hot entry has no owner check (freeing blocks voids the entries instead: How it works);
//!   through the memo, which keeps one, an add reads more. The cell's add is a load and a store in
//!   the form this core forwards a store from at once (`owned.rs`): compiled as one
//!   memory-destination `add`, as the `own cell, memory-destination add` row is (0.14x of the
//!   bound's speed), each add waits for the last one's store, about seven cycles. These rows' loops
//!   are a few instructions, and their times move with code placement from build to build
//!   (JOURNAL.md). Other cores differ: an AMD EPYC (Zen 5) VM runs the memory-destination form at
//!   one add a cycle (JOURNAL.md has its figures for these rows).
//! - **Several hot counters**, 2 threads. Two 8 apart in a `Vec`, bumped in turn: 1.4–1.5 ns,
//!   0.02x. Sixteen side by side, bumped in turn, as many as the memo's 16 slots: 2.9–3.1 ns,
//!   0.05x–0.06x; some pairs of them share a memo slot (which do depends on where the `Vec` lies),
//!   and their adds look their cell up again. One of them at a time is the thread's hot entry, the
//!   last it looked up; the others go through the memo. A counter neither the memo nor the filter
//!   holds costs a stray, at most once per counter and thread in each sampling interval.
//! - **A request handler's** 8 adds per request, the first to a counter every thread shares, the
//!   other 7 to its own (`handler, 1 of 8 shared`), 2 threads: 0.22x–0.25x (the counter 4.9–5.0 ns
//!   a request's add).
//! - **Beside an idle owner**: one hot counter, 2 threads, and a third thread that bumped it and
//!   went idle holding a cell (`incr, 1 more thread idle`): 0.6–1.2 ns, 0.02x–0.03x (median
//!   0.03x). With 2 cells, the idle thread holds one and a worker the other, and the second worker
//!   adds to the shared word of its home cell. Where that is the idle thread's cell, nobody else
//!   writes the line and the counter stays at 2 cells (256 bytes); where it is the busy worker's,
//!   the two workers' adds bounce one line between their cores, the shared word's probes see it
//!   change, and the counter doubles to 4 cells, one per thread (768 bytes with the outgrown block
//!   of 2, kept until `compact`). Which of the two happens depends on the threads' slots: about
//!   half the runs each.
//! - **Mixed** (100 cold counters, 1 hot, 2 threads): 0.44x–0.53x (median 0.50x); the counter took
//!   21.5–24.1 ns an add, the `AtomicU64` row 45.2–52.3 ns. The hot one stripes, and so had 2% to
//!   5% of the 101 counters by the end of a run (21.1 to 28.7 bytes per counter on average).
//!
//! # How it works
//!
//! - **When to stripe** (constants in `adapt.rs`): every compact add (and every add to a shared
//!   word, below) counts a per-thread tick; one such add in 4096 of a thread, on average, *probes*:
//!   after its `fetch_add` it watches the counter's word for 512 rounds of two loads (longer than a
//!   cache line's trip between cores) and *hits* if another thread writes it meanwhile. The counter
//!   keeps the score of its probes in its state word: 4 hits within a window of 8 consecutive
//!   probes stripe it; a window that ends with fewer starts again. The window is measured in the
//!   counter's own sampled adds, not in time. Once striped, a thread that finds no cell of its own
//!   near its slot adds to a shared word and probes the same way (the line it shares changing under
//!   it); 4 hits in 8 such probes double the cells, up to one per thread slot
//!   ([`Counter::max_cells`]). Threads without a claim token (past the 1 024 tracked thread slots,
//!   or tearing down their thread-locals) cannot own a cell: they add to a shared word picked by
//!   their slot and never tick or probe there, so they never make a counter grow (their compact
//!   adds tick as any thread's do). A probe hits only if another thread writes the *same* counter
//!   within that window. Two threads hammering one counter do that on many probes when they run at
//!   once (and on none when the scheduler runs them one after the other, which is no contention at
//!   all). Two threads spreading adds over `m` counters hit on about `k / m` of probes, where `k`
//!   is how many adds the other thread makes during one window, so 4 hits in 8 probes of one
//!   counter come about `70 (k/m)^4` of windows: for example, if `k` were 15, once in about
//!   3 × 10^9 windows at 10 000 counters. That is arithmetic on an assumed `k`, not a measurement;
//!   the registry rows of `cargo run --release --example shootout -- --only counter` print the
//!   share of counters that actually striped. Each probe that sees no write costs its thread 1 024
//!   loads, spread over the 4 096 adds between probes on average. That is the average: the add that
//!   probes makes all its loads at once, about 0.3 µs on this machine, so one add in about 4 096
//!   takes that much longer (`shootout --only counter --tails` shows it at the p99 of 64-add
//!   batches). The gap
//!   between two probes is drawn at random between 2 048 and 6 143 adds: with a fixed gap, a
//!   program that repeats the same adds (a handler that makes 8 per request) would probe the same
//!   place of every request, and a shared counter anywhere else in the sequence would never stripe.
//! - **Compact**: the total `base` and a state word, 16 bytes aligned to 16. An add that the
//!   thread's memo (below) knows nothing of `fetch_add`s `base` first, never reading the state word
//!   before it: reading first fetches a line another core last wrote twice, shared for the read
//!   and again to write (the `AtomicU64, load + CAS` row of the Performance figures). A thread
//!   whose memo and filter (below) were both empty at the end of its last sampling interval (one
//!   that bumps a registry of compact counters, and maybe one hot striped counter, its hot entry)
//!   reads nothing else of the counter: a skip flag beside
//!   its hot entry's key (below), at a fixed place in its thread-local words, says so, and its add
//!   is the tick and one locked add, *blind*. Any other thread reads the state word after its add,
//!   from a line the add just made this core's, and reads its memo and filter before it. Those lie
//!   at places computed from the counter's address, and on the cores measured a locked add waits
//!   for every load before it and holds up every load after it (the Performance figures). The flag
//!   is cleared when the thread writes the memo or the filter for a counter other than its hot
//!   one, and set again when its sampling interval ends with its memo empty, or holding its hot
//!   counter only and no stray in the interval. A thread that owns cells in several striped
//!   counters reads both on every add to any counter but its hot one. So does a thread whose
//!   striped counters (several) were dropped: their entries stay in its memo (nothing tells it of
//!   the drop) until each is forgotten (by an add to a counter found compact at its address) or
//!   the thread exits.
//! - **Strays**: an add in that order to a counter that has striped lands in `base`, where it
//!   counts as any compact add did (the total is `base` plus the cells). A blind add does not look:
//!   its thread learns of the stripes when one of its probes (each reads the state word) lands on
//!   the counter, so it strays there for about an interval's worth of adds to that counter (4 096
//!   on average, spread over however many adds it makes meanwhile; a thread that bumps mostly that
//!   counter learns within one interval). A fresh thread is not blind in its first 1 024 adds, so a
//!   thread that starts on striped counters learns of them at once; they end as an interval does,
//!   with no probe, so one that met none adds blind from then on (a thread that lives for a few
//!   thousand adds would otherwise spend most of its life reading after them). Adding blind saves
//!   the registry's path the state word's read (the figures above), and a stray costs about an
//!   `AtomicU64` add, so a thread that joins a hot striped counter pays for about one interval what
//!   a plain atomic would. A [`LocalCounter`]'s first add, and each of its looks for a cell, reads
//!   the state word, so a handle claims its cell at once. Any other add reads the state word after
//!   it and so learns at once. Once it learns, the thread finds its cell (claiming one if it can)
//!   and remembers it, or marks the counter in the memo if it owns no cell there, so its next add
//!   to it reads the state word first and goes to its cell. Learning also sets the counter's bit in
//!   a 512-bit per-thread filter, cleared when the thread's sampling interval ends (2 048 to 6 143
//!   ticking adds): a counter whose bit is set reads first too, and a thread whose interval had a
//!   bit set does not add blind in the next. So a thread that is not blind strays at most once per
//!   interval on each striped counter, however its memo fares (two striped counters whose memo
//!   slots collide evict each other on every add, and the thread stays out of the blind order while
//!   they do), and a `take`, `reset` or `set`, whose compare-exchange on `base` a stray can fail,
//!   meets at most that many from it, plus a blind thread's adds until it learns. Strays come from
//!   a thread's first adds to a striped counter (every new thread's), from adds after its memo lost
//!   the counter, after the counter moved (the memo is keyed by address), and during a thread's
//!   teardown, each bounded so. A compact counter whose bit another set reads first: the old cost,
//!   for the rest of the interval.
//! - **Striped**: the read names the newest block, and the add goes to the thread's cell in it.
//!   No add writes a striped counter's own 16 bytes but strays and `take`, `reset` and `set` (each
//!   one compare-exchange of `base`, which another of them or a stray can fail), so every thread
//!   keeps its line in its cache and the read costs a load, unless compact neighbours on the same
//!   line (4 to 8 counters share one in a `Vec`) are written.
//! - **The memo**: 16 slots per thread, direct-mapped by the counter's address (bits 7 and up added
//!   to bits 4 and up, so that any 8 counters in a row in a `Vec` have slots of their own, any 16
//!   in a row at least 14 slots, and 16 counters 8 apart 16), each holding the counter's
//!   address, the state word the thread found in it, where its own cell lies under it, and the
//!   thread's claim token (or a mark: the address and a state no counter has). While the counter's
//!   state word still holds that value, an add reads the cell's owner token and, if it is the
//!   remembered one, adds: no length decoding, no slot arithmetic. A new block (growth) fails the
//!   first check; a block at the address of a freed one (after `compact`) passes it, and then the
//!   second check lets the add through only to a cell the thread owns there. A failed check sends
//!   the add down the full path, which remembers the cell it finds; a counter found compact again
//!   is forgotten. The memo is wiped when the thread's slot claim ends (in its thread-local
//!   destructors), so a later destructor's add never writes a cell another thread may have taken
//!   over.
//! - **The hot entry**: the cell a thread found last on that full path (which also fills the memo):
//!   the counter's address, its state word and a pointer to the cell's `owned` word, at fixed
//!   places in the thread's words. An add to that counter reads the key and the pointer, loads the
//!   counter's state word (Acquire), then reads the entry's state word and, if the two are equal,
//!   adds through the pointer: no place computed from the address is read, no arithmetic on the
//!   state word is made, and there is no owner check. The entry's state is read after the
//!   counter's, not with the key: a thread that read it before could take an entry voided and freed
//!   meanwhile (its counter moved away from the address and dropped) for one filled under a new
//!   block at the freed one's address, in the counter now there. The key's compare takes its
//!   operand where it lies: the hot add is short enough that its instruction count sets its pace.
//!   Any other state sends the add down the memo's path (the counter grew, or its entry was
//!   voided), or, if the counter is compact, forgets the entry and the memo's slot (a counter moved
//!   in memory takes its blocks along, so a new counter made at its old address has another state
//!   word, and its adds never reach the moved one's cell). The entry holds because no state word
//!   holds a freed block's pointer, and a counter that frees blocks (`compact`, drop) first voids
//!   every thread's entry filled under one of them: a thread registers its entry's state word, once
//!   per slot claim, in a process-wide table of the 1 024 tracked slots (8 KiB and a lock), and
//!   freeing walks the table under its lock, one load per slot up to the highest ever registered.
//!   So compacting or dropping a *striped* counter takes that lock and reads a word per thread that
//!   ever held an entry; a compact counter's drop does neither. A thread's claim takes its word out
//!   of the table when it ends, before the thread's locals are freed; a thread past the tracked
//!   slots keeps no entry. The hot entry, the memo, the filter and the tick are 616 bytes of
//!   thread-local words per thread, no heap.
//! - **Owner-written cells** (as in `percpu_counter`): a cell is one 128-byte line holding its
//!   `owned` word and a `shared` word in its first 64 bytes and its owner's slot claim token in the
//!   other 64. Only the owner writes `owned`, by a relaxed load and store (no locked instruction;
//!   on x86-64 kept as three instructions with a `nop` between the load and the store and the
//!   address in one register, the form in which an Intel core forwards the store to the next add's
//!   load at once: `src/counter/owned.rs`); a thread whose claim ended (it exited) leaves its cell
//!   to the next thread that maps to it, which takes it over by compare-exchange and continues from
//!   the value left there. Threads that find no cell to own, or are tearing down their
//!   thread-locals, add to a cell's `shared` word by `fetch_add`. A thread whose home cell (at its
//!   slot) is not its own reads the next cells' tokens to find its own (the next one inline, the
//!   rest out of line), then remembers it; a thread that owns none reads them on every add. Kept
//!   apart from the words their owners write, those reads leave the owners' lines alone (beside
//!   them, each read would take the line from its owner, and both threads' adds would cost several
//!   times an owner's add).
//! - **Growth**: a new block of twice the cells, which keeps a pointer to the one it outgrew;
//!   the state word points to the newest (its length tagged in the pointer's low bits). Sums
//!   walk the chain, so every count in an outgrown cell is still counted, and an add that
//!   raced the doubling lands in the old block or the new one, never both, never neither
//!   (modelled with loom in `src/counter/cells.rs`).
//! - **Orderings**: adds are relaxed (a count publishes nothing). Blocks are published with
//!   Release and found with Acquire. `take`/`set` write `base` with Release after reading the
//!   cells, and `sum` reads `base` with Acquire before the cells, so a `sum` that sees a
//!   `take`'s offset also sees every cell value it subtracted.

mod adapt;
mod block;
mod cells;
mod gauge;
mod local;
mod monotonic;
mod owned;
mod per_cpu;

pub(crate) use adapt::FIRST_TICK;
pub use gauge::Gauge;
pub use local::{LocalCounter, LocalGauge};
pub use monotonic::Counter;
pub use per_cpu::PerCpu;

#[cfg(all(test, not(loom)))]
mod tests;
