"""kafka-python 3 against Sluice's Kafka listener, driven by
tests/tests/kafka_python3.rs.

kafka-python 3 speaks newer versions of most APIs than 2.0 (it takes the
broker for a Kafka 3.9 from ApiVersions) and has an admin client that covers
groups, offsets and producers. This runs it through a topic's whole life and
prints one JSON document of what each step returned; the Rust test asserts on
it. Exits non-zero only on an unexpected exception.

Usage: kafka_python3.py lifecycle BOOTSTRAP TOPIC
"""

import json
import sys

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ConfigResource,
    ConfigResourceType,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)
from kafka.structs import OffsetAndMetadata

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 20


def failure(e):
    """An expected refusal: the exception's class name."""
    return {"error": type(e).__name__}


def offsets(d):
    """{TopicPartition: OffsetAndMetadata | OffsetAndTimestamp | int} -> {"p": offset}."""
    out = {}
    for tp, v in d.items():
        out[str(tp.partition)] = v if isinstance(v, int) else v.offset
    return out


def lifecycle(bootstrap, topic):
    r = {"client": kafka.__version__}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    r["broker_version"] = ".".join(str(x) for x in admin._client.check_version())

    created = admin.create_topics(
        [NewTopic(topic, 3, 1, topic_configs={"retention.ms": "3600000"})]
    )
    r["create"] = [t["error_code"] for t in created["topics"]]
    try:
        admin.create_topics([NewTopic(topic, 3, 1)], raise_errors=True)
        r["create_again"] = "created"
    except Exception as e:  # noqa: BLE001 - the refusal is the result
        r["create_again"] = failure(e)

    # Every codec, idempotent, acks=all; keys spread the records over the
    # partitions, every record has a header.
    sent = {}
    for codec in CODECS:
        p = KafkaProducer(
            bootstrap_servers=bootstrap,
            compression_type=codec,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
        )
        futures = []
        for i in range(PER_CODEC):
            value = f"{codec or 'none'}-{i}".encode()
            futures.append(
                p.send(topic, key=f"k{i}".encode(), value=value, headers=[("codec", (codec or "none").encode())])
            )
        p.flush()
        for f in futures:
            md = f.get(10)
            sent.setdefault(str(md.partition), []).append(md.offset)
        p.close()
    r["sent"] = {k: sorted(v) for k, v in sent.items()}

    # A group reads everything from the start and commits.
    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=topic + "-g",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    seen = []
    for m in c:
        seen.append([m.partition, m.offset, m.key.decode(), m.value.decode(), [[k, v.decode()] for k, v in m.headers]])
    c.commit()
    r["consumed"] = seen
    r["describe_group_live"] = admin.describe_groups([topic + "-g"])[topic + "-g"]["group_state"]
    c.close()

    g = topic + "-g"
    r["groups"] = sorted(x["group_id"] for x in admin.list_groups())
    r["describe_group"] = admin.describe_groups([g])[g]["group_state"]
    r["committed"] = offsets(admin.list_group_offsets(g)[g])
    admin.alter_group_offsets(g, {TopicPartition(topic, 0): OffsetAndMetadata(1, "moved", -1)})
    r["after_alter"] = offsets(admin.list_group_offsets(g)[g])
    reset = admin.reset_group_offsets(g, {TopicPartition(topic, 1): OffsetSpec.EARLIEST})
    r["reset"] = {str(tp.partition): v["offset"] for tp, v in reset.items()}
    deleted = admin.delete_group_offsets(g, [TopicPartition(topic, 2)])
    r["delete_offsets"] = {str(tp.partition): e.__name__ for tp, e in deleted.items()}
    r["after_offset_changes"] = offsets(admin.list_group_offsets(g)[g])

    tps = [TopicPartition(topic, p) for p in range(3)]
    r["latest"] = offsets(admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps}))
    r["earliest"] = offsets(admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps}))
    r["by_time_0"] = offsets(admin.list_partition_offsets({tp: 0 for tp in tps}))

    modified = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    r["configs_modified"] = {k: v["value"] for k, v in modified["topic"][topic].items()}
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.bytes": "1048576"})])
    every = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    r["configs_after_alter"] = {
        k: [v["value"], v["config_source"]]
        for k, v in every["topic"][topic].items()
        if k in ("retention.ms", "retention.bytes")
    }
    admin.reset_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.bytes": None})])
    every = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    r["configs_after_reset"] = {
        k: [v["value"], v["config_source"]]
        for k, v in every["topic"][topic].items()
        if k in ("retention.ms", "retention.bytes")
    }

    admin.create_partitions({topic: NewPartitions(4)})
    described = admin.describe_topics([topic])[0]
    r["partitions_after_create"] = sorted(p["partition_index"] for p in described["partitions"])
    dr = admin.delete_records({TopicPartition(topic, 0): 2})
    r["delete_records"] = {str(tp.partition): v["low_watermark"] for tp, v in dr.items()}
    r["earliest_after_delete"] = offsets(admin.list_partition_offsets({TopicPartition(topic, 0): OffsetSpec.EARLIEST}))

    producers = admin.describe_producers([TopicPartition(topic, p) for p in range(3)])
    r["producers"] = {str(tp.partition): len(s.active_producers) for tp, s in producers.items()}
    dirs = admin.describe_log_dirs()
    r["log_dir_topics"] = sorted({t["name"] for b in dirs for d in b["log_dirs"] for t in d["topics"]})
    cluster = admin.describe_cluster()
    r["cluster_brokers"] = [f"{b['host']}:{b['port']}" for b in cluster["brokers"]]

    # What Sluice does not have is refused, not left hanging.
    try:
        admin.describe_metadata_quorum()
        r["metadata_quorum"] = "answered"
    except Exception as e:  # noqa: BLE001
        r["metadata_quorum"] = failure(e)
    try:
        tx = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=topic + "-tx", max_block_ms=10000)
        tx.init_transactions()
        r["transactions"] = "initialised"
        tx.close()
    except Exception as e:  # noqa: BLE001
        r["transactions"] = failure(e)

    admin.delete_groups([g])
    r["groups_after_delete"] = sorted(x["group_id"] for x in admin.list_groups())
    admin.delete_topics([topic])
    r["topics_after_delete"] = sorted(admin.list_topics())
    admin.close()
    return r


def main(argv):
    if argv[1] == "lifecycle":
        r = lifecycle(argv[2], argv[3])
    else:
        raise SystemExit(f"unknown scenario {argv[1]}")
    json.dump(r, sys.stdout)


if __name__ == "__main__":
    main(sys.argv)
