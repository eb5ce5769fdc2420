#!/usr/bin/env bash
# W4 with a short overload in the middle: runs
#   SLUICE_BROKER_BIN=DIR/sluice-broker DIR/sluice-bench --workload W4 --duration 10
# and, 5 s in, three busy loops for 1 s, then three more for 2 s, to see
# whether the harness (its producer, consumer and sender thread) catches up
# after a stall. Prints the W4 rows. See docs/benchmarks.md.
#
#   benches/w4-stall.sh DIR
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
(
    sleep 5
    for _ in 1 2 3; do timeout 1 sh -c 'while :; do :; done' & done
    sleep 2
    for _ in 1 2 3; do timeout 2 sh -c 'while :; do :; done' & done
    wait
) &
SLUICE_BROKER_BIN="$dir/sluice-broker" "$dir/sluice-bench" --workload W4 --duration 10 2>/dev/null |
    grep -E '^W4 ' | head -2 || true
wait
