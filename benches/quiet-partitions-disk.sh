#!/usr/bin/env bash
# Disk space held by many quiet partitions: starts one broker of BROKER_BIN
# on a fresh data directory, creates a topic of PARTITIONS partitions,
# produces one short record to each (with the `sluice` CLI, one call per
# partition), and prints the data directory's allocated size
# (`du`) and the file length total (`du --apparent-size`).
#
#   benches/quiet-partitions-disk.sh BROKER_BIN SLUICE_CLI [PARTITIONS]
#
# Example (docs/benchmarks.md):
#   cargo build --release -p sluice-broker -p sluice-client --bins
#   benches/quiet-partitions-disk.sh target/release/sluice-broker target/release/sluice 1000
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 BROKER_BIN SLUICE_CLI [PARTITIONS]" >&2
    exit 2
fi
broker=$1
cli=$2
partitions=${3:-1000}

dir=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$broker" --data-dir "$dir/data" --listen "127.0.0.1:$port" --metrics-listen none \
    --kafka-listen none --log warn >"$dir/broker.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    "$cli" --broker "127.0.0.1:$port" broker >/dev/null 2>&1 && break
    sleep 0.1
done
"$cli" --broker "127.0.0.1:$port" topic create quiet --partitions "$partitions" >/dev/null
# One record per partition, each sent to its own partition.
for p in $(seq 0 $((partitions - 1))); do
    echo "record-$p" | "$cli" --broker "127.0.0.1:$port" produce quiet --partition "$p" >/dev/null
done
sync
printf 'partitions %s: allocated %s KiB, file lengths %s KiB\n' "$partitions" \
    "$(du -sk "$dir/data" | cut -f1)" "$(du -sk --apparent-size "$dir/data" | cut -f1)"
