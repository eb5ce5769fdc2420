#!/usr/bin/env bash
# The delivery-under-faults scenario of issue 12, with the real CLI: one
# `sluice produce --acks all` of N records (default 1,000,000) to a
# one-partition topic through a TCP proxy that resets (RST) every connection
# every 0.3 s, while the broker is SIGKILLed and restarted twice. Prints the
# wall time, the records stored, how many were stored more than once, whether
# the partition holds them in input order, and the CLI's exit status.
#
#   cargo build --release -p sluice-broker -p sluice-client
#   benches/produce-faults.sh [extra sluice produce options, e.g. --no-idempotence]
#
# Needs python3 (for the proxy) and a free loopback port pair.
set -euo pipefail

N=${N:-1000000}
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
D=$(mktemp -d)
BPORT=$((20000 + RANDOM % 20000))
PPORT=$((BPORT + 1))
cleanup() {
    kill -9 "$(cat "$D/pid" 2>/dev/null)" 2>/dev/null || true
    kill "${PROXY:-0}" 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT

start_broker() {
    "$BIN/sluice-broker" --data-dir "$D/data" --listen "127.0.0.1:$BPORT" --metrics-listen none --kafka-listen none >>"$D/broker.log" 2>&1 &
    echo $! >"$D/pid"
    sleep 0.5
}

cat >"$D/proxy.py" <<'PY'
import asyncio, socket, struct, sys
listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
conns = set()
def rst(w):
    try:
        w.get_extra_info('socket').setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        w.transport.abort()
    except Exception:
        pass
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except Exception:
        pass
    finally:
        rst(w)
async def handle(cr, cw):
    try:
        sr, sw = await asyncio.open_connection('127.0.0.1', target_port)
    except Exception:
        rst(cw)
        return
    pair = (cw, sw)
    conns.add(pair)
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw))
    conns.discard(pair)
async def resetter():
    while True:
        await asyncio.sleep(0.3)
        for cw, sw in list(conns):
            rst(cw)
            rst(sw)
        conns.clear()
async def main():
    server = await asyncio.start_server(handle, '127.0.0.1', listen_port)
    asyncio.create_task(resetter())
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY

start_broker
"$BIN/sluice" --broker "127.0.0.1:$BPORT" topic create t --partitions 1 >/dev/null
python3 "$D/proxy.py" "$PPORT" "$BPORT" &
PROXY=$!
sleep 0.7
seq -f "r%07.0f" 1 "$N" >"$D/input"
t0=$(date +%s.%N)
set +e
timeout 300 "$BIN/sluice" --broker "127.0.0.1:$PPORT" produce t --acks all "$@" \
    --file "$D/input" >/dev/null 2>"$D/produce.err" &
producer=$!
for _ in 1 2; do
    sleep 2
    kill -9 "$(cat "$D/pid")"
    sleep 0.3
    start_broker
done
wait "$producer"
status=$?
set -e
t1=$(date +%s.%N)
"$BIN/sluice" --broker "127.0.0.1:$BPORT" consume t --from-beginning --timeout-ms 3000 >"$D/out"
stored=$(wc -l <"$D/out")
unique=$(sort -u "$D/out" | wc -l)
in_order=$(sort -c "$D/out" 2>/dev/null && echo yes || echo no)
echo "seconds=$(echo "$t1 - $t0" | bc) stored=$stored stored_twice=$((stored - unique)) missing=$((N - unique)) in_order=$in_order exit=$status"
head -c 300 "$D/produce.err"
