#!/usr/bin/env bash
# Like benches/ab.sh, but each side brings its own harness as well as its own
# broker (for a change to the client library, which the harness uses):
# alternates A and B (A first in odd rounds, B first in even ones), running
# `<dir>/sluice-bench` with SLUICE_BROKER_BIN=<dir>/sluice-broker (the harness
# starts that broker on a fresh data directory and a free port). Rows are prefixed with A or B.
#
#   benches/ab-pairs.sh A_DIR B_DIR ROUNDS [sluice-bench options...]
#
# Example (docs/benchmarks.md, W4):
#   benches/ab-pairs.sh /tmp/w4-base target/release 3 --workload W4 --duration 10
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 A_DIR B_DIR ROUNDS [sluice-bench options...]" >&2
    exit 2
fi
a=$1
b=$2
rounds=$3
shift 3

for round in $(seq "$rounds"); do
    echo "# round $round"
    # A first in odd rounds, B first in even ones: whichever side runs
    # second finds the page cache and the disk's write-back where the
    # first left them (an even ROUNDS gives both sides equal turns).
    order="A B"
    [ $((round % 2)) -eq 0 ] && order="B A"
    for side in $order; do
        dir=$a
        [ "$side" = B ] && dir=$b
        SLUICE_BROKER_BIN="$dir/sluice-broker" "$dir/sluice-bench" "$@" 2>/dev/null |
            grep -E '^(id|W[0-9])' | sed "s/^/$side /" || true
    done
done
