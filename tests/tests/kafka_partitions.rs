//! CreatePartitions through the Kafka listener: a topic's partition count
//! rises, the old partitions keep their data, the new ones take records at
//! once and are still there after a restart; every refusal (a count that
//! does not rise, an unknown or internal topic, a name given twice, a
//! manual assignment, `validate_only`) changes nothing. Kafka's own admin
//! clients (confluent-kafka, kafka-python) raise the count while a
//! confluent-kafka group member reads the topic, and the member picks the
//! new partitions up. In a 3-node cluster the new partitions get replicas
//! on every node, leaders, and the records produced to them, also on a
//! node that was down while they were added.
//!
//! The client part needs the Python of `SLUICE_KAFKA_PYTHON` (see
//! `kafka_clients.rs`).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_protocol::kafka::create_partitions::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsTopic, PartitionAssignment,
};
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::cluster::{TestCluster, segment_batches};
use sluice_tests::kafka::{call, python, run_clients};
use sluice_tests::{TestBroker, batch_of, create_topic, decode_records};

fn raise(name: &str, count: i32) -> CreatePartitionsTopic {
    CreatePartitionsTopic {
        name: name.into(),
        count,
        assignments: None,
    }
}

/// Sends one CreatePartitions request; returns each topic's (name, code,
/// message).
fn create_partitions(
    s: &mut TcpStream,
    version: i16,
    topics: Vec<CreatePartitionsTopic>,
    validate_only: bool,
) -> Vec<(String, i16, Option<String>)> {
    let mut req = CreatePartitionsRequest {
        topics,
        timeout_ms: 10_000,
        validate_only,
    };
    let r: CreatePartitionsResponse = call(s, version, &mut req);
    r.results
        .into_iter()
        .map(|r| (r.name, r.error_code, r.error_message))
        .collect()
}

fn kafka_stream(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// The partition count node `b`'s native Metadata gives `topic`.
async fn partition_count(b: &TestBroker, topic: &str) -> usize {
    let mut c = b.connect().await;
    let m = c.metadata(Some(vec![topic.into()])).await.unwrap();
    m.topics[0].partitions.len()
}

/// The values of partition `p` of `topic` read from `b` from offset 0.
async fn values(b: &TestBroker, topic: &str, partition: u32) -> Vec<String> {
    let mut c = b.connect().await;
    let f = c
        .fetch(
            0,
            1,
            1 << 20,
            vec![FetchPartition {
                topic: topic.into(),
                partition,
                offset: 0,
                max_bytes: 1 << 20,
            }],
        )
        .await
        .unwrap();
    assert_eq!(f[0].error_code, ErrorCode::None, "{:?}", f[0]);
    decode_records(&f[0].records, 0)
        .into_iter()
        .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap())
        .collect()
}

#[test]
fn partitions_added_through_the_kafka_listener_take_records_and_survive_a_restart() {
    let mut b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "grow", 1, TopicConfig::default()).await;
        let r = c
            .produce(Acks::All, 5000, &[("grow", 0, &batch_of(&["a", "b", "c"]))])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    });
    let count = |b: &TestBroker| rt.block_on(partition_count(b, "grow"));
    let mut s = kafka_stream(&b);
    // Refusals first, at every version; none changes anything.
    for v in 0..=3 {
        let out = create_partitions(&mut s, v, vec![raise("grow", 3)], true);
        assert_eq!(out[0].1, code::NONE, "v{v} validate_only: {out:?}");
        let refused = [
            (vec![raise("grow", 1)], code::INVALID_PARTITIONS),
            (vec![raise("grow", 0)], code::INVALID_PARTITIONS),
            (vec![raise("grow", -5)], code::INVALID_PARTITIONS),
            (vec![raise("grow", 20_000)], code::INVALID_PARTITIONS),
            (vec![raise("nope", 3)], code::UNKNOWN_TOPIC_OR_PARTITION),
            (vec![raise("__sluice_internal", 3)], code::INVALID_REQUEST),
            (
                vec![CreatePartitionsTopic {
                    // Node 1: a single broker is node 0 (an assignment
                    // onto it is taken).
                    assignments: Some(vec![PartitionAssignment {
                        broker_ids: vec![1],
                    }]),
                    ..raise("grow", 2)
                }],
                code::INVALID_REPLICA_ASSIGNMENT,
            ),
        ];
        for (topics, want) in refused {
            let out = create_partitions(&mut s, v, topics, false);
            assert_eq!(out[0].1, want, "v{v}: {out:?}");
            assert!(
                out[0].2.as_deref().is_some_and(|m| !m.is_empty()),
                "{out:?}"
            );
        }
        // Named twice: refused, answered once (librdkafka refuses an
        // answer naming a topic twice), as Kafka answers.
        let out = create_partitions(
            &mut s,
            v,
            vec![raise("grow", 2), raise("other", 2), raise("grow", 2)],
            false,
        );
        let got: Vec<(&str, i16, Option<&str>)> = out
            .iter()
            .map(|o| (o.0.as_str(), o.1, o.2.as_deref()))
            .collect();
        assert_eq!(
            got[0],
            ("grow", code::INVALID_REQUEST, Some("Duplicate topic name.")),
            "{out:?}"
        );
        assert_eq!(got.len(), 2, "{out:?}");
        assert_eq!(got[1].0, "other");
        assert_eq!(count(&b), 1, "v{v} changed the count");
    }
    // More topics than max_partitions_per_request (10,000): each refused
    // without being looked at.
    let many: Vec<_> = (0..10_001).map(|i| raise(&format!("t{i}"), 2)).collect();
    let out = create_partitions(&mut s, 3, many, false);
    assert_eq!(out.len(), 10_001);
    assert!(
        out.iter().all(|o| o.1 == code::INVALID_REQUEST),
        "{:?}",
        &out[..2]
    );
    assert!(!b.data_dir.join("grow-1").exists());
    // For real, twice: 1 → 2 (v0), 2 → 4 (v3), beside a refused topic.
    let out = create_partitions(&mut s, 0, vec![raise("grow", 2)], false);
    assert_eq!(out[0].1, code::NONE, "{out:?}");
    let out = create_partitions(&mut s, 3, vec![raise("nope", 2), raise("grow", 4)], false);
    assert_eq!(
        out.iter().map(|o| (o.0.as_str(), o.1)).collect::<Vec<_>>(),
        [
            ("nope", code::UNKNOWN_TOPIC_OR_PARTITION),
            ("grow", code::NONE)
        ]
    );
    assert_eq!(count(&b), 4);
    let out = create_partitions(&mut s, 2, vec![raise("grow", 4)], false);
    assert_eq!(out[0].1, code::INVALID_PARTITIONS, "{out:?}");
    rt.block_on(async {
        let mut c = b.connect().await;
        for p in 1..4 {
            let r = c
                .produce(
                    Acks::All,
                    5000,
                    &[("grow", p, &batch_of(&[&format!("p{p}")]))],
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.partitions[0].error_code, ErrorCode::None, "{r:?}");
            assert_eq!(r.partitions[0].base_offset, 0, "{r:?}");
        }
    });
    let check = |b: &TestBroker| {
        rt.block_on(async {
            assert_eq!(values(b, "grow", 0).await, ["a", "b", "c"]);
            for p in 1..4 {
                assert_eq!(values(b, "grow", p).await, [format!("p{p}")]);
            }
        })
    };
    check(&b);
    b.stop();
    b.restart();
    assert_eq!(count(&b), 4);
    check(&b);
}

#[test]
fn kafka_admin_clients_add_partitions_that_a_group_member_picks_up() {
    let Some(python) = python() else { return };
    let b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "widen", 1, TopicConfig::default()).await;
    });
    let bootstrap = b.kafka_addr.unwrap().to_string();
    let out = run_clients(&python, &["create-partitions", &bootstrap, "widen"]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["before"], 1, "{r}");
    assert_eq!(r["validate_only"], "ok", "{r}");
    assert_eq!(r["after_validate_only"], 1, "{r}");
    assert_eq!(r["raise"], "ok", "{r}");
    assert_eq!(r["after_raise"], 3, "{r}");
    assert_eq!(r["not_more"], "INVALID_PARTITIONS", "{r}");
    assert_eq!(r["kafka_python"], serde_json::json!([0]), "{r}");
    assert_eq!(r["after_all"], 4, "{r}");
    assert_eq!(
        r["delivered"],
        serde_json::json!([[0, 0], [1, 0], [2, 0], [3, 0]]),
        "{r}"
    );
    assert_eq!(
        r["read"],
        serde_json::json!([[0, "v0"], [1, "v1"], [2, "v2"], [3, "v3"]]),
        "the group member did not read every partition: {r}"
    );
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    assert_eq!(rt.block_on(partition_count(&b, "widen")), 4);
}

/// Leaders of `topic`'s partitions as node `id`'s native Metadata names
/// them, when it lists `n` partitions each with a leader.
async fn leaders(c: &TestCluster, id: u64, topic: &str, n: usize) -> Option<Vec<u64>> {
    let mut conn = sluice_client::Connection::connect(c.node(id).addr)
        .await
        .ok()?;
    let m = conn.metadata(Some(vec![topic.into()])).await.ok()?;
    let t = m.topics.first()?;
    if t.partitions.len() != n {
        return None;
    }
    t.partitions.iter().map(|p| p.leader).collect()
}

/// Waits until nodes `ids` agree on a leader for each of `n` partitions.
async fn agreed(c: &TestCluster, ids: &[u64], topic: &str, n: usize) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = Vec::new();
        for &id in ids {
            seen.push(leaders(c, id, topic, n).await);
        }
        if let Some(Some(l)) = seen.first() {
            if seen.iter().all(|s| s.as_ref() == Some(l)) {
                return l.clone();
            }
        }
        assert!(Instant::now() < deadline, "no agreed leaders: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_added_in_a_cluster_are_replicated_and_reach_a_node_that_was_down() {
    let mut c = TestCluster::start_with_kafka_config(3, "max_partitions = 60");
    {
        let mut conn = c.node(1).connect().await;
        let r = conn
            .create_topics(vec![sluice_protocol::wire::create_topics::NewTopic {
                name: "wide".into(),
                partitions: 2,
                config: TopicConfig::default(),
                replication_factor: Some(3),
            }])
            .await
            .unwrap();
        assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");
    }
    agreed(&c, &[1, 2, 3], "wide", 2).await;
    // Node 3 is down while the count rises: the groups of three replicas
    // still elect with two.
    c.kill(3);
    let mut s = kafka_stream(c.node(2));
    let out = create_partitions(&mut s, 3, vec![raise("wide", 5)], false);
    assert_eq!(out[0].1, code::NONE, "{out:?}");
    let out = create_partitions(&mut s, 3, vec![raise("wide", 5)], false);
    assert_eq!(out[0].1, code::INVALID_PARTITIONS, "{out:?}");
    // Past the nodes' max_partitions: refused before the controller
    // commits anything (validate_only too), so the count stays.
    for validate_only in [true, false] {
        let out = create_partitions(&mut s, 3, vec![raise("wide", 200)], validate_only);
        assert_eq!(out[0].1, code::INVALID_PARTITIONS, "{out:?}");
        assert!(
            out[0].2.as_deref().unwrap().contains("max_partitions"),
            "{out:?}"
        );
    }
    let led = agreed(&c, &[1, 2], "wide", 5).await;
    for p in 2..5u32 {
        let leader = led[p as usize];
        let mut conn = c.node(leader).connect().await;
        let r = conn
            .produce(
                Acks::All,
                10_000,
                &[("wide", p, &batch_of(&[&format!("n{p}")]))],
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None, "{r:?}");
        assert_eq!(values(c.node(leader), "wide", p).await, [format!("n{p}")]);
    }
    // Node 3 comes back, adds the partitions it missed and catches up.
    c.restart(3);
    agreed(&c, &[1, 2, 3], "wide", 5).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    for p in 2..5 {
        let name = format!("wide-{p}");
        while segment_batches(&c.node(3).data_dir, &name).len() != 1 {
            assert!(
                Instant::now() < deadline,
                "node 3 holds no copy of {name}: {:?}",
                segment_batches(&c.node(3).data_dir, &name)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
