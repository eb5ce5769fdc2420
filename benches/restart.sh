#!/usr/bin/env bash
# How long a broker takes to start after a kill -9, by binary, on the same
# data:
#
#   benches/restart.sh BENCH_BIN RECORDS BROKER_BIN [BROKER_BIN...]
#
# Starts the first BROKER_BIN on an empty data directory, writes RECORDS
# records of 1 KiB with `sluice-bench --workload W1` (nine single-partition
# topics, acks=leader: nothing flushed but sealed segments), kills it with
# SIGKILL and keeps that directory as the crash image. Then, three rounds,
# for each BROKER_BIN in turn, two starts on a fresh copy of the image, each
# printing the seconds until the broker's "broker ready" line and the
# `recovery_ms` it logs (the time its partitions took to open):
#   sync:  the copy is synced first, so the start rescans data the kernel
#          has written back, from the page cache;
#   dirty: no sync, so the recovery's own syncs write the copy back, as a
#          restart right after a crash waits for the data the kernel had not
#          written yet.
#
# Example (docs/durability.md):
#   cargo build --release -p sluice-broker -p sluice-bench --bins
#   benches/restart.sh target/release/sluice-bench 1000000 target/release/sluice-broker
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 BENCH_BIN RECORDS BROKER_BIN [BROKER_BIN...]" >&2
    exit 2
fi
bench=$1
records=$2
shift 2
brokers=("$@")

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

dir=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

# launch BIN DATA_DIR LOG: starts a broker on a free port (in $port, its
# pid in $pid) and waits for its "broker ready" line (up to 60 s).
launch() {
    port=$(free_port)
    "$1" --data-dir "$2" --listen "127.0.0.1:$port" --kafka-listen none \
        --metrics-listen none >"$3" 2>&1 &
    pid=$!
    for _ in $(seq 1 6000); do
        grep -q "broker ready" "$3" && break
        sleep 0.01
    done
}

# kill9: SIGKILL of the broker $pid.
kill9() {
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    pid=""
}

launch "${brokers[0]}" "$dir/image" "$dir/make.log"
"$bench" --workload W1 --records "$records" --broker "127.0.0.1:$port" --broker-pid "$pid" \
    >"$dir/bench.log" 2>&1
kill9
echo "crash image: $(du -sh "$dir/image" | cut -f1) in $(find "$dir/image" -name '*.log' | wc -l) segment files"

start() { # BIN SYNC
    rm -rf "$dir/run"
    cp -a "$dir/image" "$dir/run"
    [ "$2" = sync ] && sync
    local t0 t1
    t0=$(date +%s.%N)
    launch "$1" "$dir/run" "$dir/start.log"
    t1=$(date +%s.%N)
    printf '%-40s %-6s ready after %.2f s, %s\n' "$1" "$2" "$(echo "$t1 - $t0" | bc)" \
        "$(grep -o 'recovery_ms=[0-9]*' "$dir/start.log" || echo 'not ready')"
    kill9
}

for _ in 1 2 3; do
    for b in "${brokers[@]}"; do
        start "$b" sync
        start "$b" dirty
    done
done
