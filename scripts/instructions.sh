#!/usr/bin/env bash
# Instructions per 4 KiB get + put on one thread, counted by callgrind (deterministic, unlike
# time on a shared VM): runs examples/pool_loop.rs for N and 2N rounds and prints the
# difference divided by N, so setup and teardown cancel out.
#
#   bash scripts/instructions.sh            # thrifty, lockfree-object-pool and the allocator
#   bash scripts/instructions.sh thrifty    # one candidate
#   bash scripts/instructions.sh "thrifty-handoff lockfree-handoff alloc-handoff"
#                                           # get on one thread, drop on another (see the example)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 1; }
cargo build --release --example pool_loop --quiet
bin=${CARGO_TARGET_DIR:-target}/release/examples/pool_loop
n=200000
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 \
        | awk '/Collected :/ { print $NF }'
}
for which in "${@:-thrifty lockfree alloc}"; do
    for w in $which; do
        one=$(count "$w" $n)
        two=$(count "$w" $((2 * n)))
        echo "$w: $(( (two - one) / n )) instructions per get + put"
    done
done
