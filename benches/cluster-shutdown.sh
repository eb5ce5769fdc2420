#!/usr/bin/env bash
# How long a cluster node takes to shut down on SIGTERM with many partition
# groups: starts three brokers of one binary on loopback, creates one topic
# of PARTITIONS partitions (RF=3, confluent-kafka's AdminClient), waits
# SETTLE seconds, then SIGTERMs node 1, node 2 and node 3, one after
# another, and prints how long each took to exit (the last one has no
# majority left in any group). CONFIG (an environment variable) holds
# extra broker config lines for every node.
#
#   benches/cluster-shutdown.sh BROKER_BIN [PARTITIONS] [PYTHON] [SETTLE]
#
# PYTHON must have confluent-kafka (.ci/run's .ci-venv/bin/python has).
# Example (docs/benchmarks.md):
#   cargo build --release -p sluice-broker --bins
#   benches/cluster-shutdown.sh target/release/sluice-broker 600 .ci-venv/bin/python
set -euo pipefail

if [ "$#" -lt 1 ]; then
    echo "usage: $0 BROKER_BIN [PARTITIONS] [PYTHON] [SETTLE]" >&2
    exit 2
fi
broker=$1
partitions=${2:-600}
python=${3:-python3}
settle=${4:-10}

# shellcheck source=benches/loopback-cluster.sh
source "$(dirname "$0")/loopback-cluster.sh"
printf '%s\n' "${CONFIG:-}" >"$dir/node.toml"
start_cluster "$broker" --config "$dir/node.toml"
create_topic "$python" shutdown "$partitions"
sleep "$settle"

for id in 1 2 3; do
    pid=${pids[$((id - 1))]}
    start=$(date +%s%N)
    kill -TERM "$pid"
    wait "$pid" || true
    end=$(date +%s%N)
    ms=$(((end - start) / 1000000))
    printf 'node %s: exited %d.%02d s after SIGTERM\n' "$id" $((ms / 1000)) $((ms % 1000 / 10))
done
