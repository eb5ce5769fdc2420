# Sourced by the cluster benchmark scripts (not run on its own):
# `start_cluster BROKER_BIN [EXTRA BROKER ARGS...]` starts three nodes of
# one broker binary on loopback, in a temporary directory (`$dir`), with a
# cluster file giving each node free native, Raft and Kafka ports; node N
# logs to `$dir/nN.log` at `warn`. Sets `pids` (node N at index N-1),
# `listen` (native addresses) and `kafka` (Kafka addresses). Everything it
# started is stopped, and the directory removed, when the script exits.
# `create_topic PYTHON NAME PARTITIONS` then creates a topic of RF=3
# through the Kafka listeners (PYTHON needs confluent-kafka), retrying
# until the controller has a leader.

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

dir=$(mktemp -d)
pids=()
listen=()
kafka=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

start_cluster() {
    local broker=$1
    shift
    local id l r k
    for id in 1 2 3; do
        l=$(free_port)
        r=$(free_port)
        k=$(free_port)
        listen+=("127.0.0.1:$l")
        kafka+=("127.0.0.1:$k")
        printf '[[node]]\nid = %s\nlisten = "127.0.0.1:%s"\nraft = "127.0.0.1:%s"\nkafka = "127.0.0.1:%s"\n\n' \
            "$id" "$l" "$r" "$k" >>"$dir/cluster.toml"
    done
    for id in 1 2 3; do
        mkdir -p "$dir/n$id"
        "$broker" "$@" --node-id "$id" --cluster "$dir/cluster.toml" --data-dir "$dir/n$id" \
            --metrics-listen none --log warn >"$dir/n$id.log" 2>&1 &
        pids+=($!)
    done
}

create_topic() {
    local bootstrap
    bootstrap=$(IFS=,; echo "${kafka[*]}")
    "$1" - "$bootstrap" "$2" "$3" <<'PY'
import sys, time
from confluent_kafka.admin import AdminClient, NewTopic

boot, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": boot})
for _ in range(100):  # until the controller has a leader
    try:
        admin.create_topics([NewTopic(name, n, 3)], operation_timeout=60)[name].result(timeout=90)
        break
    except Exception as e:  # noqa: BLE001 - retried
        # A retry after a timeout may find the first attempt's topic.
        if "already exists" in str(e):
            break
        time.sleep(0.5)
else:
    sys.exit("could not create the topic")
PY
}
