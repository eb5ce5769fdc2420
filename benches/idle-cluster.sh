#!/usr/bin/env bash
# What an idle 3-node cluster costs per partition: starts three brokers of
# one binary on loopback, creates one topic of PARTITIONS partitions
# (RF=3, confluent-kafka's AdminClient), waits SETTLE seconds, then for
# SECONDS seconds counts the CPU of the three brokers together (user+system,
# /proc/PID/stat) and node 1's sendto(2) calls (perf's syscall
# tracepoints, if perf can read them). Nothing is produced: what it
# measures is the partition groups' heartbeats and timers. CONFIG (an
# environment variable) holds extra broker config lines for every node,
# e.g. CONFIG=$'raft_heartbeat_ms = 100\nraft_election_timeout_min_ms = 300'.
#
#   benches/idle-cluster.sh BROKER_BIN [PARTITIONS] [PYTHON] [SECONDS] [SETTLE]
#
# PYTHON must have confluent-kafka (.ci/run's .ci-venv/bin/python has).
# Example (docs/benchmarks.md):
#   cargo build --release -p sluice-broker --bins
#   benches/idle-cluster.sh target/release/sluice-broker 300 .ci-venv/bin/python
set -euo pipefail

if [ "$#" -lt 1 ]; then
    echo "usage: $0 BROKER_BIN [PARTITIONS] [PYTHON] [SECONDS] [SETTLE]" >&2
    exit 2
fi
broker=$1
partitions=${2:-300}
python=${3:-python3}
seconds=${4:-20}
settle=${5:-10}

# shellcheck source=benches/loopback-cluster.sh
source "$(dirname "$0")/loopback-cluster.sh"
printf '%s\n' "${CONFIG:-}" >"$dir/node.toml"
start_cluster "$broker" --config "$dir/node.toml"
create_topic "$python" idle "$partitions"
sleep "$settle"

cpu_ticks() {
    local sum=0
    for p in "${pids[@]}"; do
        sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$sum"
}
tick=$(getconf CLK_TCK)
before=$(cpu_ticks)
sends=$(perf stat -x, -e syscalls:sys_enter_sendto -p "${pids[0]}" -- sleep "$seconds" 2>&1 |
    awk -F, '/sys_enter_sendto/ {print $1}') || true
if [ -z "${sends:-}" ]; then
    sleep "$seconds"
    sends="n/a"
fi
after=$(cpu_ticks)
awk -v b="$before" -v a="$after" -v t="$tick" -v s="$seconds" -v n="$partitions" -v sends="$sends" 'BEGIN {
    cpu = (a - b) / t / s * 100
    printf "%d partitions, RF=3, idle: %.1f %% of a CPU (3 nodes together), %.3f %% per partition replica", n, cpu, cpu / (3 * n)
    if (sends != "n/a") printf "; node 1: %.0f sendto/s", sends / s
    printf "\n"
}'
