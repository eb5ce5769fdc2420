#!/usr/bin/env bash
# CPU of a 3-node cluster per GiB replicated: starts three brokers of one
# binary on loopback (RF=3, one partition), produces RECORDS records of
# VALUE bytes with `sluice produce --acks all` to the partition leader, and
# prints each node's CPU seconds (user+system, from /proc/PID/stat) spent
# during the produce, per GiB of record bytes produced.
#
#   benches/replication-cpu.sh BROKER_BIN CLI_BIN [RECORDS] [VALUE]
#
# Example (docs/replication.md):
#   cargo build --release -p sluice-broker -p sluice-client --bins
#   benches/replication-cpu.sh target/release/sluice-broker target/release/sluice 1000000 1000
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 BROKER_BIN CLI_BIN [RECORDS] [VALUE]" >&2
    exit 2
fi
broker=$1
cli=$2
records=${3:-1000000}
value=${4:-1000}

# shellcheck source=benches/loopback-cluster.sh
source "$(dirname "$0")/loopback-cluster.sh"
start_cluster "$broker" --kafka-listen none
bootstrap=$(IFS=,; echo "${listen[*]}")

# The controller elects a leader; then the topic.
for _ in $(seq 1 200); do
    if "$cli" --broker "$bootstrap" topic create zc --partitions 1 --replication-factor 3 >/dev/null 2>&1; then
        break
    fi
    sleep 0.1
done
leader=""
for _ in $(seq 1 200); do
    leader=$("$cli" --broker "$bootstrap" topic describe zc --output json 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["partitions"][0]["leader"] or "")' 2>/dev/null || true)
    [ -n "$leader" ] && break
    sleep 0.1
done
[ -n "$leader" ] || { echo "no partition leader" >&2; exit 1; }
sleep 2 # let a group that has just formed settle

python3 -c "
import sys
v = 'x' * $value
with open('$dir/input', 'w') as f:
    for i in range($records):
        f.write(v + '\n')
"
bytes=$(( records * value ))

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
declare -A before
for id in 1 2 3; do before[$id]=$(cpu "${pids[$((id - 1))]}"); done
start=$(date +%s.%N)
"$cli" --broker "${listen[$((leader - 1))]}" produce zc --acks all --partition 0 --file "$dir/input" >/dev/null
end=$(date +%s.%N)
for id in 1 2 3; do
    after=$(cpu "${pids[$((id - 1))]}")
    role=follower
    [ "$id" = "$leader" ] && role=leader
    python3 -c "
b = $bytes; t = $tick
cpu = ($after - ${before[$id]}) / t
print(f'node $id ($role): {cpu:.2f} CPU s for {b / 2**30:.3f} GiB: {cpu / (b / 2**30):.2f} CPU s/GiB')
"
done
python3 -c "print(f'produce took {$end - $start:.2f} s')"
