#!/usr/bin/env bash
# Instructions per 4 KiB get + put on one thread (examples/pool_loop.rs under callgrind).
#
#   bash scripts/instructions.sh            # thrifty, lockfree-object-pool and the allocator
#   bash scripts/instructions.sh thrifty    # one candidate
#   bash scripts/instructions.sh "thrifty-handoff lockfree-handoff alloc-handoff"
#                                           # get on one thread, drop on another (see the example)
source "$(dirname "$0")/callgrind.sh"
for which in ${1:-thrifty lockfree alloc}; do
    echo "$which: $(per_op pool_loop 200000 "$which") instructions per get + put"
done
