#!/usr/bin/env bash
# Instructions per map operation on one thread, counted by callgrind (deterministic, unlike
# time on a shared VM): runs examples/map_loop.rs for N and 2N operations and prints the
# difference divided by N, so building and prefilling the map cancel out.
#
#   bash scripts/instructions_map.sh                    # every candidate, every operation
#   bash scripts/instructions_map.sh "thrifty dashmap"  # some candidates
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 1; }
cargo build --release --example map_loop --quiet
bin=${CARGO_TARGET_DIR:-target}/release/examples/map_loop
n=100000
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" "$3" 2>&1 \
        | awk '/Collected :/ { print $NF }'
}
printf '%-8s %6s %6s %6s %6s   (instructions per operation, 100k keys)\n' map read insert incr churn
for which in ${1:-thrifty dashmap scc papaya rwlock mutex}; do
    row=$(printf '%-8s' "$which")
    for op in read insert incr churn; do
        one=$(count "$which" "$op" $n)
        two=$(count "$which" "$op" $((2 * n)))
        row+=$(printf ' %6d' $(( (two - one) / n )))
    done
    echo "$row"
done
