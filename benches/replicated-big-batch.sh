#!/usr/bin/env bash
# One large, highly compressible batch through a 3-node cluster: starts
# three brokers of one binary on loopback with Kafka listeners, creates a
# one-partition topic (RF=3), and sends MIB records of 1 MiB of zeros as ONE
# lz4 batch (kafka-python, acks=all). Prints the time to deliver it, the
# partition's leader epoch before and after (a change is an election the
# batch caused), and each node's CPU seconds (user+system, from
# /proc/PID/stat) over the whole run.
#
#   benches/replicated-big-batch.sh BROKER_BIN [MIB] [PYTHON]
#
# PYTHON must have kafka-python, lz4 and confluent-kafka (.ci/run's
# .ci-venv/bin/python has). Example (docs/benchmarks.md):
#   cargo build --release -p sluice-broker --bins
#   benches/replicated-big-batch.sh target/release/sluice-broker 126 .ci-venv/bin/python
set -euo pipefail

if [ "$#" -lt 1 ]; then
    echo "usage: $0 BROKER_BIN [MIB] [PYTHON]" >&2
    exit 2
fi
broker=$1
mib=${2:-126}
python=${3:-python3}

# shellcheck source=benches/loopback-cluster.sh
source "$(dirname "$0")/loopback-cluster.sh"
start_cluster "$broker"
bootstrap=$(IFS=,; echo "${kafka[*]}")

"$python" - "$bootstrap" "$mib" <<'PY'
import sys, time
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

boot, mib = sys.argv[1], int(sys.argv[2])
admin = AdminClient({"bootstrap.servers": boot})
for _ in range(100):  # until the controller has a leader
    try:
        admin.create_topics([NewTopic("big", 1, 3)])["big"].result(timeout=10)
        break
    except Exception:  # noqa: BLE001 - retried
        time.sleep(0.2)
tiny = Producer({"bootstrap.servers": boot, "acks": "all"})

def epoch():
    """The leader epoch stamped in a one-record batch appended now."""
    tiny.produce("big", b"x", partition=0)
    tiny.flush(30)
    c = Consumer({"bootstrap.servers": boot, "group.id": "epoch", "enable.auto.commit": False})
    end = c.get_watermark_offsets(TopicPartition("big", 0), timeout=10)[1]
    c.assign([TopicPartition("big", 0, end - 1)])
    while True:
        m = c.poll(10)
        if m is not None and not m.error():
            c.close()
            return m.leader_epoch()

before = epoch()
# One batch: kafka-python puts every record of a partition into one batch
# up to batch_size.
p = KafkaProducer(bootstrap_servers=boot.split(","), compression_type="lz4", linger_ms=3000,
                  batch_size=(mib + 2) << 20, max_request_size=(mib + 2) << 20, acks="all",
                  request_timeout_ms=60000, buffer_memory=(2 * mib + 8) << 20, retries=5)
value = bytes(1 << 20)
start = time.time()
sent = [p.send("big", value, partition=0) for _ in range(mib)]
p.flush(120)
failed = 0
for f in sent:
    try:
        f.get(0)
    except Exception:  # noqa: BLE001 - counted
        failed += 1
took = time.time() - start  # flush() sends at once: no linger
print(f"{mib} MiB of zeros in one lz4 batch: {mib - failed}/{mib} records delivered "
      f"in {took:.2f} s; leader epoch {before} -> {epoch()}")
PY
tick=$(getconf CLK_TCK)
for id in 1 2 3; do
    awk -v id="$id" -v t="$tick" '{printf "node %s: %.2f CPU s\n", id, ($14 + $15) / t}' \
        "/proc/${pids[$((id - 1))]}/stat"
done
