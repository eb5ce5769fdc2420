"""Kafka clients against Sluice's Kafka listener, driven by tests/tests/kafka_*.rs.

Usage: clients.py SCENARIO BOOTSTRAP [ARGS...]; prints one JSON document on
stdout, exits non-zero on failure. Scenarios:

  admin BOOTSTRAP TOPIC            confluent-kafka AdminClient: create (3
                                   partitions), list, delete, list again
  produce BOOTSTRAP TOPIC CODEC N  confluent-kafka producer, idempotent, acks
                                   all, compression CODEC: delivery reports
  kp-produce BOOTSTRAP TOPIC N     kafka-python producer
  aio-produce BOOTSTRAP TOPIC N    aiokafka producer
  consume CLIENT BOOTSTRAP TOPIC N read N records of partition 0 from the
                                   start with CLIENT (confluent, kafka-python,
                                   aiokafka): offset, key, value, headers,
                                   timestamp
"""

import asyncio
import json
import sys
import time


def rec(offset, key, value, headers, timestamp):
    dec = lambda b: None if b is None else b.decode()
    return {
        "offset": offset,
        "key": dec(key),
        "value": dec(value),
        "headers": [[k, dec(v)] for k, v in (headers or [])],
        "timestamp": timestamp,
    }


def admin(bootstrap, topic):
    from confluent_kafka.admin import AdminClient, NewTopic

    a = AdminClient({"bootstrap.servers": bootstrap})
    for _, f in a.create_topics([NewTopic(topic, num_partitions=3)]).items():
        f.result(timeout=20)
    md = a.list_topics(timeout=20)
    parts = len(md.topics[topic].partitions)
    for _, f in a.delete_topics([topic]).items():
        f.result(timeout=20)
    after = topic in a.list_topics(timeout=20).topics
    return {"partitions": parts, "exists_after_delete": after}


def produce(bootstrap, topic, codec, n):
    from confluent_kafka import Producer

    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": codec,
            "linger.ms": 5,
        }
    )
    out = []

    def done(err, msg):
        if err is not None:
            raise SystemExit(f"delivery failed: {err}")
        out.append({"partition": msg.partition(), "offset": msg.offset(), "value": msg.value().decode()})

    for i in range(n):
        p.produce(topic, key=f"k{i}", value=f"{codec}-{i}", partition=0,
                  headers=[("h", f"{i}".encode())], on_delivery=done)
    left = p.flush(30)
    if left:
        raise SystemExit(f"{left} messages not delivered")
    return out


def kp_produce(bootstrap, topic, n):
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip")
    futs = [p.send(topic, key=f"k{i}".encode(), value=f"kp-{i}".encode(), partition=0,
                   headers=[("h", b"x")]) for i in range(n)]
    out = [{"offset": f.get(timeout=20).offset} for f in futs]
    p.close()
    return out


def aio_produce(bootstrap, topic, n):
    from aiokafka import AIOKafkaProducer

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        await p.start()
        try:
            out = []
            for i in range(n):
                md = await p.send_and_wait(topic, key=f"k{i}".encode(), value=f"aio-{i}".encode(),
                                           partition=0)
                out.append({"offset": md.offset})
            return out
        finally:
            await p.stop()

    return asyncio.run(run())


def consume(client, bootstrap, topic, n):
    deadline = time.time() + 30
    out = []
    if client == "confluent":
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                      "enable.auto.commit": False})
        c.assign([TopicPartition(topic, 0, 0)])
        while len(out) < n and time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                raise SystemExit(str(m.error()))
            out.append(rec(m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]))
        c.close()
    elif client == "kafka-python":
        from kafka import KafkaConsumer, TopicPartition

        c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 0)
        while len(out) < n and time.time() < deadline:
            for _, msgs in c.poll(timeout_ms=1000).items():
                for m in msgs:
                    out.append(rec(m.offset, m.key, m.value, m.headers, m.timestamp))
        c.close()
    elif client == "aiokafka":
        from aiokafka import AIOKafkaConsumer, TopicPartition

        async def run():
            c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
            await c.start()
            try:
                tp = TopicPartition(topic, 0)
                c.assign([tp])
                c.seek(tp, 0)
                while len(out) < n and time.time() < deadline:
                    for _, msgs in (await c.getmany(timeout_ms=1000)).items():
                        for m in msgs:
                            out.append(rec(m.offset, m.key, m.value, m.headers, m.timestamp))
            finally:
                await c.stop()

        asyncio.run(run())
    else:
        raise SystemExit(f"unknown client {client}")
    if len(out) < n:
        raise SystemExit(f"{client}: read {len(out)} of {n} records")
    return out[:n]


def main(argv):
    s = argv[1]
    if s == "admin":
        r = admin(argv[2], argv[3])
    elif s == "produce":
        r = produce(argv[2], argv[3], argv[4], int(argv[5]))
    elif s == "kp-produce":
        r = kp_produce(argv[2], argv[3], int(argv[4]))
    elif s == "aio-produce":
        r = aio_produce(argv[2], argv[3], int(argv[4]))
    elif s == "consume":
        r = consume(argv[2], argv[3], argv[4], int(argv[5]))
    else:
        raise SystemExit(f"unknown scenario {s}")
    json.dump(r, sys.stdout)
    print()


if __name__ == "__main__":
    main(sys.argv)
