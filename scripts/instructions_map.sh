#!/usr/bin/env bash
# Instructions per map operation on one thread, 100k keys (examples/map_loop.rs under
# callgrind; building and prefilling the map cancel out).
#
#   bash scripts/instructions_map.sh                    # every candidate, every operation
#   bash scripts/instructions_map.sh "thrifty dashmap"  # some candidates
source "$(dirname "$0")/callgrind.sh"
printf '%-8s %6s %6s %6s %6s   (instructions per operation, 100k keys)\n' map read insert incr churn
for which in ${1:-thrifty dashmap scc papaya rwlock mutex}; do
    row=$(printf '%-8s' "$which")
    for op in read insert incr churn; do
        row+=$(printf ' %6d' "$(per_op map_loop 100000 "$which" "$op")")
    done
    echo "$row"
done
