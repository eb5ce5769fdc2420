#!/usr/bin/env bash
# Runs the same sluice-bench workloads against two broker binaries, A and B,
# alternating them (A first in odd rounds, B first in even ones) on this machine, so a change is measured side by
# side in one run (machines here are shared and noisy: compare within a run).
#
#   benches/ab.sh A_BROKER B_BROKER ROUNDS [sluice-bench options...]
#
# Each run starts the broker on a fresh data directory and a free loopback
# port, points `sluice-bench --broker ... --broker-pid ...` at it, and stops
# it afterwards. Rows are prefixed with A or B. Build the harness first:
#   cargo build --release -p sluice-bench
# Example (the hardening change, docs/benchmarks.md):
#   git worktree add /tmp/base c52b946 && (cd /tmp/base && cargo build --release -p sluice-broker)
#   benches/ab.sh /tmp/base/target/release/sluice-broker target/release/sluice-broker 3 \
#       --workload W1,W2 --in-flight 1
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 A_BROKER B_BROKER ROUNDS [sluice-bench options...]" >&2
    exit 2
fi
a=$1
b=$2
rounds=$3
shift 3
bench=${SLUICE_BENCH_BIN:-$(dirname "$0")/../target/release/sluice-bench}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

run_one() {
    local label=$1 bin=$2
    shift 2
    local dir port pid
    dir=$(mktemp -d)
    port=$(free_port)
    # Builds with a metrics endpoint get it on a port of their own.
    metrics=()
    if "$bin" --help 2>/dev/null | grep -q -- --metrics-listen; then metrics=(--metrics-listen 127.0.0.1:0); fi
    if "$bin" --help 2>/dev/null | grep -q -- --kafka-listen; then metrics+=(--kafka-listen 127.0.0.1:0); fi
    "$bin" --listen "127.0.0.1:$port" --data-dir "$dir/data" "${metrics[@]}" >"$dir/broker.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        grep -q "listening" "$dir/broker.log" && break
        sleep 0.1
    done
    "$bench" --broker "127.0.0.1:$port" --broker-pid "$pid" --broker-data-dir "$dir/data" "$@" 2>/dev/null |
        grep -E '^(id|W[0-9])' | sed "s/^/$label /" || true
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}

for round in $(seq "$rounds"); do
    echo "# round $round"
    # A first in odd rounds, B first in even ones (see ab-pairs.sh; an
    # even ROUNDS gives both sides equal turns).
    if [ $((round % 2)) -eq 1 ]; then
        run_one A "$a" "$@"
        run_one B "$b" "$@"
    else
        run_one B "$b" "$@"
        run_one A "$a" "$@"
    fi
done
