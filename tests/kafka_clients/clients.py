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
  group-commit BOOTSTRAP TOPIC GROUP N
                                   confluent-kafka consumer in GROUP: reads N
                                   records, commits, prints values and the
                                   committed offsets
  group-pair CLIENT BOOTSTRAP TOPIC GROUP
                                   two consumers (kafka-python or aiokafka) in
                                   GROUP split TOPIC's partitions; when one
                                   leaves the other takes all of them
  coop-member BOOTSTRAP TOPIC GROUP
                                   confluent-kafka consumer in GROUP with the
                                   cooperative-sticky assignor; streams JSON
                                   lines: {"assigned": [partitions]} after each
                                   rebalance, {"p", "o", "v"} per record
                                   (committed at once); exits when stdin closes
  alter-configs BOOTSTRAP TOPIC    confluent-kafka incremental_alter_configs
                                   (SET retention.ms, a refused
                                   flush.ms, DELETE retention.ms) and
                                   kafka-python alter_configs (retention.bytes);
                                   prints each outcome and the topic's
                                   retention as DescribeConfigs tells it
  create-partitions BOOTSTRAP TOPIC
                                   TOPIC has 1 partition and a confluent-kafka
                                   group member reading it: confluent-kafka
                                   create_partitions to 3 (validate_only, then
                                   for real; 2 again is refused), kafka-python
                                   create_partitions to 4; one record produced
                                   to each partition; prints the outcomes, the
                                   partition count after each step, and what
                                   the member read (it picks the new
                                   partitions up with its next metadata
                                   refresh)
  delete-records BOOTSTRAP TOPIC
                                   TOPIC has 2 partitions of 10 records each:
                                   confluent-kafka delete_records below offset
                                   4 of partition 0, then past its end
                                   (refused), aiokafka delete_records of all of
                                   partition 1 (offset -1); prints each low
                                   watermark or error, the earliest offsets
                                   after, and what a consumer reads from the
                                   start (auto.offset.reset earliest)
  create BOOTSTRAP TOPIC PARTITIONS RF
                                   confluent-kafka AdminClient: create with a
                                   replication factor; prints the brokers and
                                   each partition's leader, replicas and ISR
  cluster-produce CLIENT BOOTSTRAP TOPIC N PAUSE_MS [TAG]
                                   confluent (idempotent) or kafka-python,
                                   acks all: N records "TAG-i" (TAG: CLIENT
                                   unless given) to partition
                                   i % partitions, PAUSE_MS apart; streams one
                                   JSON line per acknowledged record, then
                                   {"done": N}
  consume-all CLIENT BOOTSTRAP TOPIC N
                                   read N records from every partition's start
                                   (confluent or kafka-python); prints
                                   [partition, offset, value] triples
  group-spread BOOTSTRAP_A BOOTSTRAP_B TOPIC GROUP N
                                   a confluent-kafka member bootstrapped at A
                                   and a kafka-python member at B join GROUP;
                                   once they split TOPIC's partitions, N
                                   records are produced; prints each member's
                                   final assignment and the [partition, offset,
                                   value] it read
"""

import asyncio
import faulthandler
import json
import os
import signal
import sys
import time


def trace(what):
    """A progress line on standard error (shown when a test fails)."""
    t = time.time()
    print(f"{time.strftime('%H:%M:%S', time.localtime(t))}.{int(t * 1000) % 1000:03d} {what}",
          file=sys.stderr, flush=True)


def client_debug():
    """librdkafka debug contexts for confluent-kafka clients, from
    SLUICE_CLIENT_DEBUG (e.g. "cgrp,protocol"), as config entries."""
    d = os.environ.get("SLUICE_CLIENT_DEBUG")
    return {"debug": d} if d else {}


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

    from confluent_kafka.admin import ConfigResource

    a = AdminClient({"bootstrap.servers": bootstrap})
    # As tools create topics: naming the configs whose value is Sluice's.
    named = {"cleanup.policy": "delete", "message.timestamp.type": "CreateTime",
             "retention.ms": "3600000"}
    for _, f in a.create_topics([NewTopic(topic, num_partitions=3, config=named)]).items():
        f.result(timeout=20)
    md = a.list_topics(timeout=20)
    parts = len(md.topics[topic].partitions)
    r = ConfigResource("topic", topic)
    cfg = a.describe_configs([r])[r].result(timeout=20)
    described = {n: [cfg[n].value, cfg[n].is_default]
                 for n in ("cleanup.policy", "message.timestamp.type", "retention.ms")}
    # The broker's own settings, under Kafka's names.
    br = ConfigResource("broker", "0")
    bcfg = a.describe_configs([br])[br].result(timeout=20)
    broker = {n: [bcfg[n].value, bcfg[n].is_read_only]
              for n in ("log.cleanup.policy", "auto.create.topics.enable")}
    # A compacted topic is refused, saying why.
    refused = None
    compacted = NewTopic(topic + "-compacted", num_partitions=1,
                         config={"cleanup.policy": "compact"})
    try:
        a.create_topics([compacted])[compacted.topic].result(timeout=20)
    except Exception as e:  # noqa: BLE001 - the error is the outcome
        refused = [e.args[0].name(), e.args[0].str()]
    # Validated only: answered, not created.
    dry = NewTopic(topic + "-dry", num_partitions=2)
    a.create_topics([dry], validate_only=True)[dry.topic].result(timeout=20)
    dry_exists = dry.topic in a.list_topics(timeout=20).topics
    for _, f in a.delete_topics([topic]).items():
        f.result(timeout=20)
    after = topic in a.list_topics(timeout=20).topics
    return {"partitions": parts, "exists_after_delete": after, "described": described,
            "compacted": refused, "validated_only_exists": dry_exists, "broker": broker}


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


def txn(bootstrap):
    """A transactional producer's init_transactions: how it failed, and
    after how long (the broker serves no transactions)."""
    from confluent_kafka import KafkaException, Producer

    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "sluice-txn"})
    start = time.time()
    try:
        p.init_transactions(20)
        err = None
    except KafkaException as e:
        e = e.args[0]
        err = {"name": e.name(), "fatal": e.fatal(), "retriable": e.retriable(), "text": e.str()}
    return {"error": err, "seconds": time.time() - start}


def list_offsets(bootstrap, topic):
    """Five records in one lingered batch at +0, +50, +20, +90 and +10 ms,
    then the AdminClient's offsets: earliest, latest, the largest timestamp,
    and by timestamp (+30 ms). Timestamps are answered relative to +0."""
    from confluent_kafka import Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 200})
    now = int(time.time() * 1000)
    for i, d in enumerate([0, 50, 20, 90, 10]):
        p.produce(topic, value=f"v{i}".encode(), partition=0, timestamp=now + d)
    if p.flush(20):
        raise SystemExit("records not delivered")
    a = AdminClient({"bootstrap.servers": bootstrap})
    tp = TopicPartition(topic, 0)
    out = {}
    for name, spec in [
        ("earliest", OffsetSpec.earliest()),
        ("latest", OffsetSpec.latest()),
        ("max_timestamp", OffsetSpec.max_timestamp()),
        ("at_plus_30", OffsetSpec.for_timestamp(now + 30)),
    ]:
        r = a.list_offsets({tp: spec})[tp].result(timeout=20)
        out[name] = [r.offset, r.timestamp - now if r.timestamp >= 0 else r.timestamp]
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


def group_commit(bootstrap, topic, group, n):
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 6000})
    c.subscribe([topic])
    deadline = time.time() + 60
    values = []
    while len(values) < n and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            raise SystemExit(str(m.error()))
        values.append(m.value().decode())
    if len(values) < n:
        raise SystemExit(f"read {len(values)} of {n}")
    c.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in c.committed(c.assignment(), timeout=20)}
    c.close()
    return {"values": values, "committed": committed}


def group_refused(bootstrap, topic, group, protocol, seconds):
    """A confluent-kafka consumer of `group` (protocol `classic` or
    `consumer`) polling `topic` for `seconds`: the records it read and the
    errors its application saw (poll errors and error_cb)."""
    from confluent_kafka import Consumer

    errors = []
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "group.protocol": protocol, "auto.offset.reset": "earliest",
                  "error_cb": lambda e: errors.append(e.str())})
    c.subscribe([topic])
    read = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            errors.append(m.error().str())
        else:
            read += 1
    c.close()
    return {"read": read, "errors": errors}


def group_pair(client, bootstrap, topic, group):
    """Consumer A alone, then A and B, then A after B left: assignments."""
    import threading

    state = {"A": None, "B": None}
    stop = {"A": threading.Event(), "B": threading.Event()}
    errors = []

    def kp_member(name):
        from kafka import KafkaConsumer

        try:
            c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                              session_timeout_ms=6000, heartbeat_interval_ms=500,
                              max_poll_interval_ms=10000, enable_auto_commit=False)
            while not stop[name].is_set():
                c.poll(timeout_ms=100)
                state[name] = sorted(tp.partition for tp in c.assignment())
            c.close()
            state[name] = None
        except Exception as e:  # noqa: BLE001
            errors.append(f"{name}: {e!r}")

    async def aio_member(name):
        from aiokafka import AIOKafkaConsumer

        c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                             session_timeout_ms=6000, heartbeat_interval_ms=500,
                             max_poll_interval_ms=10000, enable_auto_commit=False)
        await c.start()
        try:
            while not stop[name].is_set():
                await c.getmany(timeout_ms=100)
                state[name] = sorted(tp.partition for tp in c.assignment())
        finally:
            await c.stop()
            state[name] = None

    def aio_thread(name):
        try:
            asyncio.run(aio_member(name))
        except Exception as e:  # noqa: BLE001
            errors.append(f"{name}: {e!r}")

    run = kp_member if client == "kafka-python" else aio_thread

    def wait_for(cond, what):
        deadline = time.time() + 60
        while time.time() < deadline:
            if errors:
                raise SystemExit("; ".join(errors))
            if cond():
                return
            time.sleep(0.1)
        raise SystemExit(f"timed out waiting for {what}: {state}")

    out = {}
    a = threading.Thread(target=run, args=("A",), daemon=True)
    a.start()
    wait_for(lambda: state["A"] and len(state["A"]) >= 4, "A alone to own every partition")
    out["alone"] = state["A"]
    b = threading.Thread(target=run, args=("B",), daemon=True)
    b.start()

    def split():
        sa, sb = state["A"] or [], state["B"] or []
        return sa and sb and not set(sa) & set(sb) and len(sa) + len(sb) == len(out["alone"])

    wait_for(split, "A and B to split the partitions")
    out["split"] = [state["A"], state["B"]]
    stop["B"].set()
    b.join(30)
    wait_for(lambda: state["A"] == out["alone"], "A to take over after B left")
    out["after"] = state["A"]
    stop["A"].set()
    a.join(30)
    return out


def coop_member(bootstrap, topic, group):
    import threading

    from confluent_kafka import Consumer

    def emit(doc):
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()

    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "partition.assignment.strategy": "cooperative-sticky",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 10000, "heartbeat.interval.ms": 250})
    changed = threading.Event()
    c.subscribe([topic], on_assign=lambda *_: changed.set(),
                on_revoke=lambda *_: changed.set())
    while not closed.is_set():
        m = c.poll(0.1)
        if changed.is_set():
            changed.clear()
            emit({"assigned": sorted(tp.partition for tp in c.assignment())})
        if m is None:
            continue
        if m.error():
            raise SystemExit(str(m.error()))
        emit({"p": m.partition(), "o": m.offset(), "v": m.value().decode()})
        c.commit(message=m, asynchronous=False)
    c.close()


def static_restart(bootstrap, topic, group, strategy):
    """Static members A and B (A first, so that A rejoins once it owns
    partitions); A's process restarts (a new consumer with its
    group.instance.id): what B and each A saw, and what each owned."""
    import threading

    from confluent_kafka import Consumer

    cooperative = strategy == "cooperative-sticky"
    events = {"a": [], "b": [], "a2": []}
    owned = {k: set() for k in events}
    stop = {k: threading.Event() for k in events}
    errors = []

    def member(key, instance):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "group.instance.id": instance, "session.timeout.ms": 30000,
                      "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest",
                      "partition.assignment.strategy": strategy})

        def on_assign(_c, parts):
            got = {p.partition for p in parts}
            events[key].append(["assigned", sorted(got)])
            owned[key] = (owned[key] | got) if cooperative else got

        def on_revoke(_c, parts):
            gone = {p.partition for p in parts}
            events[key].append(["revoked", sorted(gone)])
            owned[key] = owned[key] - gone

        c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        try:
            while not stop[key].is_set():
                m = c.poll(0.2)
                if m is not None and m.error():
                    errors.append(f"{key}: {m.error()}")
        finally:
            # A static member does not leave the group when it closes.
            c.close()

    def wait_for(cond, what):
        deadline = time.time() + 60
        while not cond():
            if time.time() > deadline:
                raise SystemExit(f"timed out waiting for {what}: {events} {errors}")
            time.sleep(0.1)

    threads = {k: threading.Thread(target=member, args=(k, "a" if k == "a2" else k), daemon=True)
               for k in events}
    threads["a"].start()
    wait_for(lambda: len(owned["a"]) == 4, "A to own every partition")
    threads["b"].start()
    wait_for(lambda: owned["a"] and owned["b"] and len(owned["a"] | owned["b"]) == 4,
             "A and B to share the partitions")
    time.sleep(1)
    before = {"a": list(events["a"]), "b": list(events["b"]),
              "a_owned": sorted(owned["a"]), "b_owned": sorted(owned["b"])}
    stop["a"].set()
    threads["a"].join()
    threads["a2"].start()
    wait_for(lambda: owned["a2"], "the restarted A to be assigned")
    time.sleep(3)
    # What they saw as members (closing revokes their partitions locally).
    after = {"a2": list(events["a2"]), "b": list(events["b"]),
             "a2_owned": sorted(owned["a2"]), "b_owned": sorted(owned["b"])}
    for k in ("a2", "b"):
        stop[k].set()
        threads[k].join()
    return {"before": before, "after": after, "errors": errors}


def group_spread(bootstrap_a, bootstrap_b, topic, group, n):
    """Two members of one group reaching different brokers: they must meet
    at the group's coordinator and split the partitions."""
    import threading

    from confluent_kafka import Consumer, Producer
    from kafka import KafkaConsumer

    state = {"A": None, "B": None}
    got = {"A": [], "B": []}
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def confluent_member():
        try:
            c = Consumer({"bootstrap.servers": bootstrap_a, "group.id": group,
                          "enable.auto.commit": False, "auto.offset.reset": "earliest",
                          "session.timeout.ms": 10000, "heartbeat.interval.ms": 250})
            c.subscribe([topic])
            while not stop.is_set():
                m = c.poll(0.1)
                state["A"] = sorted(tp.partition for tp in c.assignment())
                if m is None:
                    continue
                if m.error():
                    raise RuntimeError(str(m.error()))
                with lock:
                    got["A"].append([m.partition(), m.offset(), m.value().decode()])
                c.commit(message=m, asynchronous=False)
            c.close()
        except Exception as e:  # noqa: BLE001
            errors.append(f"A: {e!r}")

    def kp_member():
        try:
            c = KafkaConsumer(topic, bootstrap_servers=bootstrap_b, group_id=group,
                              auto_offset_reset="earliest", session_timeout_ms=10000,
                              heartbeat_interval_ms=250, enable_auto_commit=False)
            while not stop.is_set():
                batches = c.poll(timeout_ms=100)
                state["B"] = sorted(tp.partition for tp in c.assignment())
                for recs in batches.values():
                    with lock:
                        for r in recs:
                            got["B"].append([r.partition, r.offset, r.value.decode()])
                if batches:
                    c.commit()
            c.close()
        except Exception as e:  # noqa: BLE001
            errors.append(f"B: {e!r}")

    def wait_for(cond, what):
        deadline = time.time() + 90
        while time.time() < deadline:
            if errors:
                stop.set()
                raise SystemExit("; ".join(errors))
            if cond():
                return
            time.sleep(0.05)
        stop.set()
        raise SystemExit(f"timed out waiting for {what}: {state} {len(got['A'])}+{len(got['B'])}")

    threads = [threading.Thread(target=f, daemon=True) for f in (confluent_member, kp_member)]
    for t in threads:
        t.start()

    def split():
        sa, sb = state["A"] or [], state["B"] or []
        return bool(sa) and bool(sb) and not set(sa) & set(sb)

    wait_for(split, "the two members to split the partitions")
    p = Producer({"bootstrap.servers": bootstrap_a, "acks": "all"})
    parts = len(state["A"]) + len(state["B"])
    for i in range(n):
        p.produce(topic, value=f"v-{i}".encode(), partition=i % parts)
    if p.flush(60) != 0:
        raise SystemExit("records left unacknowledged")
    wait_for(lambda: len(got["A"]) + len(got["B"]) >= n, f"{n} records read")
    out = {"assigned": [state["A"], state["B"]], "A": got["A"], "B": got["B"]}
    stop.set()
    for t in threads:
        t.join(30)
    return out


def alter_configs(bootstrap, topic):
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                       ConfigResource)
    from kafka.admin import ConfigResource as KpResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient

    a = AdminClient({"bootstrap.servers": bootstrap})

    def incremental(name, value, op):
        r = ConfigResource("topic", topic, incremental_configs=[
            ConfigEntry(name, value, incremental_operation=op)])
        try:
            a.incremental_alter_configs([r])[r].result(timeout=20)
            return "ok"
        except Exception as e:  # noqa: BLE001 - the error is the outcome
            return e.args[0].name()

    def retention():
        r = ConfigResource("topic", topic)
        cfg = a.describe_configs([r])[r].result(timeout=20)
        return {n: [cfg[n].value, cfg[n].source] for n in ("retention.ms", "retention.bytes")}

    out = {"set": incremental("retention.ms", "60000", AlterConfigOpType.SET)}
    out["after_set"] = retention()
    out["fixed"] = incremental("flush.ms", "0", AlterConfigOpType.SET)
    out["delete"] = incremental("retention.ms", None, AlterConfigOpType.DELETE)
    kp = KafkaAdminClient(bootstrap_servers=bootstrap)
    resp = kp.alter_configs([KpResource(ConfigResourceType.TOPIC, topic,
                                        configs={"retention.bytes": "1000000"})])
    out["kafka_python"] = [r[0] for r in resp.resources]
    kp.close()
    out["after_all"] = retention()
    return out


def max_message_bytes(bootstrap, topic, phase):
    """A topic's max.message.bytes through confluent-kafka: `create` makes
    the topic with the configs kafka-ui's create form sends, `raise` lifts
    the limit to 4 MiB, `check` only looks. Each phase reports the
    described value and source and the outcome of producing records of
    500 KB, 2 MB and 5 MB (the client's own limit is set above them, so the
    broker decides)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                       ConfigResource, NewTopic)

    a = AdminClient({"bootstrap.servers": bootstrap})
    out = {}
    if phase == "create":
        t = NewTopic(topic, 1, 1, config={
            "cleanup.policy": "delete", "retention.ms": "604800000",
            "retention.bytes": "-1", "max.message.bytes": "1048588",
            "min.insync.replicas": "1"})
        a.create_topics([t])[topic].result(timeout=20)
    if phase == "raise":
        r = ConfigResource("topic", topic, incremental_configs=[
            ConfigEntry("max.message.bytes", "4194304",
                        incremental_operation=AlterConfigOpType.SET)])
        a.incremental_alter_configs([r])[r].result(timeout=20)
    r = ConfigResource("topic", topic)
    cfg = a.describe_configs([r])[r].result(timeout=20)["max.message.bytes"]
    out["described"] = [cfg.value, cfg.source]
    p = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 10_000_000,
                  "linger.ms": 0, "compression.type": "none", "acks": "all",
                  "message.send.max.retries": 0})
    outcomes = {}

    def report(size):
        def cb(err, _msg):
            outcomes[size] = "ok" if err is None else err.name()
        return cb

    for size in (500_000, 2_000_000, 5_000_000):
        p.produce(topic, value=b"x" * size, on_delivery=report(size))
        p.flush(30)
    out["produced"] = {str(k): v for k, v in sorted(outcomes.items())}
    return out


def create_partitions(bootstrap, topic):
    import threading

    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewPartitions
    from kafka.admin import KafkaAdminClient
    from kafka.admin import NewPartitions as KpNewPartitions

    a = AdminClient({"bootstrap.servers": bootstrap})

    def count():
        return len(a.list_topics(topic=topic, timeout=20).topics[topic].partitions)

    def confluent(n, validate_only=False):
        f = a.create_partitions([NewPartitions(topic, n)], validate_only=validate_only)
        try:
            f[topic].result(timeout=20)
            return "ok"
        except Exception as e:  # noqa: BLE001 - the error is the outcome
            return e.args[0].name()

    read = []
    errors = []
    stop = threading.Event()

    def member():
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": topic + "-g",
                      "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                      "topic.metadata.refresh.interval.ms": 1000})
        c.subscribe([topic])
        while not stop.is_set():
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                errors.append(str(m.error()))
                continue
            read.append([m.partition(), m.value().decode()])
        c.close()

    t = threading.Thread(target=member, daemon=True)
    t.start()
    out = {"before": count()}
    out["validate_only"] = confluent(3, validate_only=True)
    out["after_validate_only"] = count()
    out["raise"] = confluent(3)
    out["after_raise"] = count()
    out["not_more"] = confluent(2)
    kp = KafkaAdminClient(bootstrap_servers=bootstrap)
    resp = kp.create_partitions({topic: KpNewPartitions(4)})
    out["kafka_python"] = [r[1] for r in resp.topic_errors]
    kp.close()
    out["after_all"] = count()
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    delivered = []
    for i in range(4):
        p.produce(topic, value=f"v{i}".encode(), partition=i,
                  on_delivery=lambda e, m: delivered.append(
                      [m.partition(), m.offset()] if e is None else str(e)))
    p.flush(20)
    out["delivered"] = sorted(delivered, key=str)
    deadline = time.time() + 40
    while len(read) < 4 and time.time() < deadline:
        time.sleep(0.2)
    stop.set()
    t.join()
    out["read"] = sorted(read)
    out["errors"] = errors
    return out


def delete_records(bootstrap, topic):
    from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
    from aiokafka.structs import TopicPartition as AioTp
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    a = AdminClient({"bootstrap.servers": bootstrap})

    def confluent(partition, offset):
        tp = TopicPartition(topic, partition, offset)
        try:
            r = a.delete_records([tp])[tp].result(timeout=20)
            return r.low_watermark
        except Exception as e:  # noqa: BLE001 - the error is the outcome
            return e.args[0].name()

    out = {"below_4": confluent(0, 4), "past_end": confluent(0, 1000)}

    async def aio():
        c = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await c.start()
        try:
            r = await c.delete_records({AioTp(topic, 1): RecordsToDelete(before_offset=-1)})
            return {f"{tp.partition}": low for tp, low in r.items()}
        finally:
            await c.close()

    out["aiokafka_all_of_1"] = asyncio.run(aio())
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": topic + "-dr",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    out["earliest"] = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[0]
                       for p in (0, 1)]
    c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    read = []
    deadline = time.time() + 20
    while len(read) < 6 and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        read.append([m.partition(), m.offset(), m.value().decode()])
    c.close()
    out["read"] = read
    return out


def create(bootstrap, topic, partitions, rf):
    from confluent_kafka.admin import AdminClient, NewTopic

    a = AdminClient({"bootstrap.servers": bootstrap})
    for _, f in a.create_topics([NewTopic(topic, num_partitions=partitions,
                                          replication_factor=rf)]).items():
        f.result(timeout=20)
    md = a.list_topics(timeout=20)
    return {
        "brokers": sorted([b.id, b.host, b.port] for b in md.brokers.values()),
        "partitions": [
            {"id": p.id, "leader": p.leader, "replicas": p.replicas, "isrs": p.isrs}
            for p in sorted(md.topics[topic].partitions.values(), key=lambda p: p.id)
        ],
    }


def create_assigned(bootstrap, topic):
    """confluent-kafka's create_topics with a replica assignment: every
    partition on node 0 (created), and one naming node 1 (refused)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    a = AdminClient({"bootstrap.servers": bootstrap})
    out = {}
    for name, assignment in [(topic, [[0], [0], [0]]), (topic + "-elsewhere", [[0], [1]])]:
        # librdkafka wants the count given with the assignment.
        f = a.create_topics([NewTopic(name, num_partitions=len(assignment),
                                      replica_assignment=assignment)])[name]
        try:
            f.result(timeout=20)
            out[name] = "created"
        except Exception as e:  # noqa: BLE001 - the error is the answer
            out[name] = e.args[0].name()
    from confluent_kafka.admin import NewPartitions

    # Partitions added with an assignment: one per partition added, on node 0.
    for total, assignment in [(5, [[0], [0]]), (7, [[0]])]:
        f = a.create_partitions([NewPartitions(topic, total, replica_assignment=assignment)])
        try:
            f[topic].result(timeout=20)
            out[f"to {total}"] = "created"
        except Exception as e:  # noqa: BLE001 - the error is the answer
            out[f"to {total}"] = e.args[0].name()
    md = a.list_topics(timeout=20)
    out["partitions"] = sorted(md.topics[topic].partitions)
    out["listed"] = sorted(t for t in md.topics if t.startswith(topic))
    return out


def metadata(bootstrap, topic):
    from confluent_kafka.admin import AdminClient

    a = AdminClient({"bootstrap.servers": bootstrap})
    md = a.list_topics(topic=topic, timeout=20)
    return {
        "brokers": sorted([b.id, b.host, b.port] for b in md.brokers.values()),
        "partitions": [
            {"id": p.id, "leader": p.leader, "replicas": p.replicas, "isrs": p.isrs,
             "error": None if p.error is None else p.error.code()}
            for p in sorted(md.topics[topic].partitions.values(), key=lambda p: p.id)
        ],
    }


def elect_leaders(bootstrap, topic, partitions, kind):
    """confluent-kafka's elect_leaders of `kind` (preferred or unclean) for
    partitions 0..`partitions` of `topic` (-1: every partition of the
    cluster, as null); returns each partition's outcome ("ok" or the
    error's name), by "topic:partition"."""
    from confluent_kafka import ElectionType, TopicPartition
    from confluent_kafka.admin import AdminClient

    a = AdminClient({"bootstrap.servers": bootstrap})
    tps = None if partitions < 0 else [TopicPartition(topic, p) for p in range(partitions)]
    election = ElectionType.PREFERRED if kind == "preferred" else ElectionType.UNCLEAN
    # (confluent-kafka 2.16.1 fails on any keyword argument of elect_leaders)
    r = a.elect_leaders(election, tps).result(timeout=70)
    def name(e):
        if e is None:
            return "ok"
        e = e.args[0] if hasattr(e, "args") else e
        return e.name()

    return {f"{tp.topic}:{tp.partition}": name(e) for tp, e in r.items()}


def acls(bootstrap, topic):
    """ACLs through confluent-kafka's and kafka-python's admin clients:
    each call's error (its name, or "ok"), and the topic still usable."""
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation,
                                       AclPermissionType, AdminClient, ResourcePatternType,
                                       ResourceType)

    def err_name(e):
        if isinstance(e, type):  # kafka-python lists error classes
            return e.__name__
        inner = e.args[0] if getattr(e, "args", None) else None
        if hasattr(inner, "name"):  # confluent-kafka's KafkaError
            return inner.name()
        return type(e).__name__

    def name(call):
        try:
            r = call()
            return ["ok", repr(r)]
        except Exception as e:  # the error's name is the result
            return err_name(e)

    a = AdminClient({"bootstrap.servers": bootstrap})
    binding = AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice",
                         "*", AclOperation.READ, AclPermissionType.ALLOW)
    flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                           AclOperation.ANY, AclPermissionType.ANY)
    out = {
        "confluent_describe": name(lambda: a.describe_acls(flt).result(timeout=20)),
        "confluent_create": name(
            lambda: [f.result(timeout=20) for f in a.create_acls([binding]).values()]),
        "confluent_delete": name(
            lambda: [f.result(timeout=20) for f in a.delete_acls([flt]).values()]),
    }
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, KafkaAdminClient, ResourcePattern,
                             ResourcePatternFilter)
    from kafka.admin import ResourceType as KpResourceType
    kp = KafkaAdminClient(bootstrap_servers=bootstrap)
    pattern = ResourcePatternFilter(KpResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL)
    kp_filter = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY,
                          permission_type=ACLPermissionType.ANY, resource_pattern=pattern)
    kp_acl = ACL(principal="User:alice", host="*", operation=ACLOperation.READ,
                 permission_type=ACLPermissionType.ALLOW,
                 resource_pattern=ResourcePattern(KpResourceType.TOPIC, topic))
    out["kafka_python_describe"] = name(lambda: kp.describe_acls(kp_filter))
    created = kp.create_acls([kp_acl])
    out["kafka_python_create_failed"] = [err_name(e) for _, e in created["failed"]]
    out["kafka_python_create_succeeded"] = len(created["succeeded"])
    deleted = kp.delete_acls([kp_filter])
    out["kafka_python_delete"] = [err_name(e) if e else "ok" for _, _, e in deleted]
    kp.close()
    out["topic_listed"] = topic in a.list_topics(timeout=20).topics
    return out


def kip848_pair(bootstrap, topic, group, n, total):
    """Two confluent-kafka consumers of Kafka's consumer group protocol
    (group.protocol=consumer, KIP-848): A alone, then A and B, then A after
    B left, until `total` distinct records were read. Each commits every
    record it reads. Returns the assignments at each step, every
    (partition, offset) read, and whether two members ever held one
    partition at once (as seen by their callbacks)."""
    import threading
    from confluent_kafka import Consumer, KafkaException

    held = {"A": set(), "B": set()}
    lock = threading.Lock()
    overlaps = []
    read = []
    errors = []
    stop = {"A": threading.Event(), "B": threading.Event()}

    def member(name):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "group.protocol": "consumer", "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "client.id": f"kip848-{name}",
                      **client_debug()})

        def on_assign(c, parts):
            trace(f"{name} assigned {[p.partition for p in parts]}")
            with lock:
                for p in parts:
                    other = "B" if name == "A" else "A"
                    if p.partition in held[other]:
                        overlaps.append((name, p.partition))
                    held[name].add(p.partition)

        def on_revoke(c, parts):
            trace(f"{name} revoked {[p.partition for p in parts]}")
            with lock:
                for p in parts:
                    held[name].discard(p.partition)

        c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
        while not stop[name].is_set():
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                errors.append(f"{name}: {m.error()}")
                continue
            with lock:
                read.append([name, m.partition(), m.offset()])
            try:
                c.commit(m, asynchronous=False)
            except KafkaException as e:
                # Reported (the test expects none); the member goes on.
                trace(f"{name} commit of {m.partition()}@{m.offset()}: {e}")
                errors.append(f"{name} commit: {e}")
        trace(f"{name} closing")
        c.close()
        trace(f"{name} closed")
        with lock:
            held[name] = set()

    def wait_for(cond, what):
        trace(f"waiting for {what}")
        deadline = time.time() + 60
        while time.time() < deadline:
            with lock:
                if cond():
                    return
            time.sleep(0.1)
        raise SystemExit(f"timed out waiting for {what}: held {held}, errors {errors}")

    def join(t, name):
        t.join(60)
        if t.is_alive():
            raise SystemExit(f"{name} did not close within 60 s: held {held}, errors {errors}")

    out = {}
    a = threading.Thread(target=member, args=("A",), daemon=True)
    a.start()
    wait_for(lambda: len(held["A"]) == n, "A to hold every partition")
    out["alone"] = sorted(held["A"])
    b = threading.Thread(target=member, args=("B",), daemon=True)
    b.start()
    wait_for(lambda: held["A"] and held["B"] and len(held["A"]) + len(held["B"]) == n,
             "A and B to split the partitions")
    out["split"] = [sorted(held["A"]), sorted(held["B"])]
    # The admin client's view of the group (ConsumerGroupDescribe).
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_consumer_groups([group])[group].result(timeout=20)
    out["described"] = {
        "state": str(described.state),
        "members": sorted([m.client_id, sorted(tp.partition for tp in m.assignment.topic_partitions)]
                          for m in described.members),
    }
    stop["B"].set()
    join(b, "B")
    wait_for(lambda: len(held["A"]) == n, "A to take every partition back")
    out["after"] = sorted(held["A"])
    wait_for(lambda: len({(p, o) for _, p, o in read}) >= total, f"{total} records read")
    time.sleep(0.5)
    stop["A"].set()
    join(a, "A")
    out["read"] = read
    out["overlaps"] = overlaps
    out["errors"] = errors
    return out


def kip848_follow(bootstrap, topic, group, n):
    """One confluent-kafka consumer of Kafka's consumer group protocol
    (KIP-848) reading and committing until it saw `n` distinct values,
    through a kill of its group's coordinator. Prints {"reading": true}
    once the first record arrived; returns the values read and the
    errors the client reported meanwhile."""
    from confluent_kafka import Consumer, KafkaError, KafkaException

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "group.protocol": "consumer", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 1000})
    c.subscribe([topic])
    deadline = time.time() + 60
    seen, errors = set(), []
    while len(seen) < n and time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            # Transport and coordinator errors while a node is down are
            # retried by the client itself.
            errors.append(str(m.error()))
            continue
        if not seen:
            emit_line({"reading": True})
        seen.add(m.value().decode())
        try:
            c.commit(m, asynchronous=False)
        except KafkaException as e:
            errors.append(f"commit: {e}")
    # Commits refused while the group moved are made good: the positions
    # are committed again until the (new) coordinator takes them.
    committed = False
    while not committed and time.time() < deadline:
        try:
            c.commit(asynchronous=False)
            committed = True
        except KafkaException as e:
            if e.args[0].code() == KafkaError._NO_OFFSET:
                # Every position is committed already.
                committed = True
            else:
                errors.append(f"final commit: {e}")
                c.poll(0.5)
    c.close()
    return {"values": sorted(seen), "errors": errors, "committed": committed}


def emit_line(doc):
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def cluster_produce(client, bootstrap, topic, n, pause_ms, tag):
    acked = 0
    if client == "confluent":
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                      "acks": "all", "linger.ms": 1, "message.timeout.ms": 60000})
        parts = len(p.list_topics(topic, timeout=20).topics[topic].partitions)

        def done(err, msg):
            nonlocal acked
            if err is not None:
                raise SystemExit(f"delivery failed: {err}")
            acked += 1
            emit_line({"p": msg.partition(), "o": msg.offset(), "v": msg.value().decode()})

        for i in range(n):
            p.produce(topic, value=f"{tag}-{i}", partition=i % parts, on_delivery=done)
            p.poll(pause_ms / 1000)
        left = p.flush(60)
        if left:
            raise SystemExit(f"{left} messages not delivered")
    elif client == "kafka-python":
        from kafka import KafkaProducer

        p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=50,
                          retry_backoff_ms=100, max_in_flight_requests_per_connection=1)
        parts = len(p.partitions_for(topic))
        for i in range(n):
            md = p.send(topic, value=f"{tag}-{i}".encode(), partition=i % parts).get(timeout=60)
            acked += 1
            emit_line({"p": md.partition, "o": md.offset, "v": f"{tag}-{i}"})
            time.sleep(pause_ms / 1000)
        p.close()
    else:
        raise SystemExit(f"unknown client {client}")
    return {"done": acked}


def consume_all(client, bootstrap, topic, n):
    deadline = time.time() + 60
    out = []
    if client == "confluent":
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                      "enable.auto.commit": False})
        parts = c.list_topics(topic, timeout=20).topics[topic].partitions
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        while len(out) < n and time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                raise SystemExit(str(m.error()))
            out.append([m.partition(), m.offset(), m.value().decode()])
        c.close()
    elif client == "kafka-python":
        from kafka import KafkaConsumer, TopicPartition

        c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tps = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        while len(out) < n and time.time() < deadline:
            for _, msgs in c.poll(timeout_ms=1000).items():
                for m in msgs:
                    out.append([m.partition, m.offset, m.value.decode()])
        c.close()
    else:
        raise SystemExit(f"unknown client {client}")
    if len(out) < n:
        raise SystemExit(f"{client}: read {len(out)} of {n} records")
    return out


def tail(bootstrap, topic, tag, n):
    """A confluent-kafka consumer on every partition from the start, reading
    while records are produced (and a leader is killed) until it saw `n`
    distinct values starting with `tag-`, then 1 s more so that any
    repeat shows; returns every record read, as [partition, offset, value].
    Prints {"reading": true} once the first record arrived."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "tail",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "fetch.wait.max.ms": 100, "topic.metadata.refresh.interval.ms": 1000})
    parts = c.list_topics(topic, timeout=20).topics[topic].partitions
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    deadline = time.time() + 150
    out, seen, linger = [], set(), None
    while time.time() < deadline and (linger is None or time.time() < linger):
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            # Transport and leader errors while a broker is down are
            # retried by the client itself; they are not the test's.
            continue
        v = m.value().decode()
        if not out:
            emit_line({"reading": True})
        out.append([m.partition(), m.offset(), v])
        if v.startswith(tag + "-"):
            seen.add(v)
            if len(seen) >= n and linger is None:
                linger = time.time() + 1.0
    c.close()
    return out


def main(argv):
    s = argv[1]
    if s == "coop-member":
        coop_member(argv[2], argv[3], argv[4])
        return
    if s == "admin":
        r = admin(argv[2], argv[3])
    elif s == "produce":
        r = produce(argv[2], argv[3], argv[4], int(argv[5]))
    elif s == "list-offsets":
        r = list_offsets(argv[2], argv[3])
    elif s == "txn":
        r = txn(argv[2])
    elif s == "kp-produce":
        r = kp_produce(argv[2], argv[3], int(argv[4]))
    elif s == "aio-produce":
        r = aio_produce(argv[2], argv[3], int(argv[4]))
    elif s == "consume":
        r = consume(argv[2], argv[3], argv[4], int(argv[5]))
    elif s == "group-commit":
        r = group_commit(argv[2], argv[3], argv[4], int(argv[5]))
    elif s == "alter-configs":
        r = alter_configs(argv[2], argv[3])
    elif s == "max-message-bytes":
        r = max_message_bytes(argv[2], argv[3], argv[4])
    elif s == "delete-records":
        r = delete_records(argv[2], argv[3])
    elif s == "create-partitions":
        r = create_partitions(argv[2], argv[3])
    elif s == "create":
        r = create(argv[2], argv[3], int(argv[4]), int(argv[5]))
    elif s == "create-assigned":
        r = create_assigned(argv[2], argv[3])
    elif s == "metadata":
        r = metadata(argv[2], argv[3])
    elif s == "acls":
        r = acls(argv[2], argv[3])
    elif s == "elect-leaders":
        r = elect_leaders(argv[2], argv[3], int(argv[4]), argv[5])
    elif s == "cluster-produce":
        tag = argv[7] if len(argv) > 7 else argv[2]
        json.dump(cluster_produce(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]), tag),
                  sys.stdout)
        print()
        return
    elif s == "tail":
        r = tail(argv[2], argv[3], argv[4], int(argv[5]))
    elif s == "consume-all":
        r = consume_all(argv[2], argv[3], argv[4], int(argv[5]))
    elif s == "group-spread":
        r = group_spread(argv[2], argv[3], argv[4], argv[5], int(argv[6]))
    elif s == "kip848-follow":
        r = kip848_follow(argv[2], argv[3], argv[4], int(argv[5]))
    elif s == "kip848-pair":
        r = kip848_pair(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]))
    elif s == "group-refused":
        r = group_refused(argv[2], argv[3], argv[4], argv[5], float(argv[6]))
    elif s == "group-pair":
        r = group_pair(argv[2], argv[3], argv[4], argv[5])
    elif s == "static-restart":
        r = static_restart(argv[2], argv[3], argv[4], argv[5])
    else:
        raise SystemExit(f"unknown scenario {s}")
    json.dump(r, sys.stdout)
    print()


if __name__ == "__main__":
    # The test's deadline sends SIGTERM first: every thread's stack goes to
    # standard error, so a stuck client shows where it waits.
    faulthandler.register(signal.SIGTERM, all_threads=True)
    main(sys.argv)
