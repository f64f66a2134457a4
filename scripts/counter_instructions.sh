#!/usr/bin/env bash
# Instructions per increment of a random counter in a registry of 10 000, one thread, counted by
# callgrind (deterministic, unlike time on a shared VM): runs examples/counter_loop.rs for N and
# 2N increments and prints the difference divided by N, so setup and teardown cancel out.
#
#   bash scripts/counter_instructions.sh            # AtomicU64 and thrifty Counter
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 1; }
cargo build --release --example counter_loop --quiet
bin=${CARGO_TARGET_DIR:-target}/release/examples/counter_loop
n=200000
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 \
        | awk '/Collected :/ { print $NF }'
}
for w in atomic counter; do
    one=$(count "$w" $n)
    two=$(count "$w" $((2 * n)))
    echo "$w: $(( (two - one) / n )) instructions per increment"
done
