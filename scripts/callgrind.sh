# Sourced by the instruction-count scripts: callgrind counts instructions deterministically
# (unlike time on a shared VM). `per_op <example> <n> <args...>` runs
# `examples/<example>.rs <args...> <count>` for n and 2n operations and prints the difference
# divided by n, so setup and teardown cancel out.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 1; }

per_op() {
    local example=$1 n=$2
    shift 2
    cargo build --release --example "$example" --quiet
    local bin=${CARGO_TARGET_DIR:-target}/release/examples/$example
    local one two
    one=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$@" "$n" 2>&1 \
        | awk '/Collected :/ { print $NF }')
    two=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$@" $((2 * n)) 2>&1 \
        | awk '/Collected :/ { print $NF }')
    echo $(((two - one) / n))
}
