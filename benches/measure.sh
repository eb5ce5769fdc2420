#!/usr/bin/env bash
# Runs sluice-bench against one broker binary while counting what the broker
# process does, for the figures that are steadier than latency on a shared
# machine:
#
#   benches/measure.sh BROKER MODE [sluice-bench options...]
#
# MODE `perf`: `perf stat -p PID` over the run, events from $STAT_EV
# (default task-clock,context-switches; add e.g. raw_syscalls:sys_enter,
# syscalls:sys_enter_sendto for syscall counts). MODE `strace`:
# `strace -c -f -p PID` (slows the broker a lot). Extra broker arguments
# come from $BROKER_ARGS (e.g. "--config file.toml"). Build the harness first:
#   cargo build --release -p sluice-bench
# Example (docs/benchmarks.md, "Pipelined responses in one send"):
#   STAT_EV=task-clock,context-switches,raw_syscalls:sys_enter \
#       benches/measure.sh target/release/sluice-broker perf --workload W4 --duration 5
set -u
if [ "$#" -lt 2 ]; then
    echo "usage: $0 BROKER perf|strace [sluice-bench options...]" >&2
    exit 2
fi
bin=$1
mode=$2
shift 2
bench=${SLUICE_BENCH_BIN:-$(dirname "$0")/../target/release/sluice-bench}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086 # BROKER_ARGS is split on purpose
# Builds with a metrics endpoint get it on a port of their own.
metrics=()
if "$bin" --help 2>/dev/null | grep -q -- --metrics-listen; then metrics=(--metrics-listen 127.0.0.1:0); fi
if "$bin" --help 2>/dev/null | grep -q -- --kafka-listen; then metrics+=(--kafka-listen 127.0.0.1:0); fi
"$bin" --listen "127.0.0.1:$port" --data-dir "$dir/data" "${metrics[@]}" ${BROKER_ARGS:-} >"$dir/broker.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    grep -q listening "$dir/broker.log" && break
    sleep 0.1
done
if [ "$mode" = strace ]; then
    strace -c -f -p "$pid" -o "$dir/trace.out" &
else
    perf stat -e "${STAT_EV:-task-clock,context-switches}" -p "$pid" -o "$dir/trace.out" &
fi
tracer=$!
sleep 0.5
"$bench" --broker "127.0.0.1:$port" --broker-pid "$pid" "$@" 2>/dev/null | grep -E '^(id|W[0-9])'
kill -INT "$tracer"
wait "$tracer" 2>/dev/null
cat "$dir/trace.out"
kill "$pid"
wait "$pid" 2>/dev/null
rm -rf "$dir"
