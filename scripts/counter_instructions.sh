#!/usr/bin/env bash
# Instructions per increment of a random counter in a registry of 10 000, one thread
# (examples/counter_loop.rs under callgrind).
#
#   bash scripts/counter_instructions.sh            # AtomicU64 and thrifty Counter
source "$(dirname "$0")/callgrind.sh"
for which in atomic counter; do
    echo "$which: $(per_op counter_loop 200000 "$which") instructions per increment"
done
