//! Consumer group state survives its coordinator in a 3-node cluster: the
//! group's offsets live in the replicated group-state topic, and the
//! coordinator moves with that topic's partition leader.
//!
//! - A native group member commits, its coordinator is SIGKILLed, a new
//!   member bootstrapped at a surviving node joins at the new coordinator
//!   and resumes at the committed offsets; its commits go on; the killed
//!   node restarts and every node names the same coordinator.
//! - Offsets committed through the Kafka listener (OffsetCommit) are read
//!   back (OffsetFetch) at the new coordinator after the old one is killed.
//! - Clients cannot produce to, delete or create the internal topic, and
//!   it is not listed among the topics.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sluice_client::group::{GroupConfig, GroupConsumer};
use sluice_client::{
    Acks, ClientError, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord,
};
use sluice_protocol::kafka::offsets::{
    FindCoordinatorRequest, FindCoordinatorResponse, OffsetCommitPartition, OffsetCommitRequest,
    OffsetCommitResponse, OffsetCommitTopic, OffsetFetchGroup, OffsetFetchRequest,
    OffsetFetchResponse, OffsetFetchTopic,
};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::offset_commit::CommitPartition;
use sluice_protocol::wire::produce::Acks as WireAcks;
use sluice_tests::cluster::TestCluster;
use sluice_tests::kafka::{call, run_clients};

const TOPIC: &str = "failover";
const GROUP: &str = "failover-group";
const P: u32 = 2;
const INTERNAL: &str = "__sluice_group_state";

async fn produce(c: &TestCluster, nodes: &[u64], from: u64, per_partition: u64) {
    c.produce_spread(nodes, TOPIC, P, from..from + per_partition * u64::from(P))
        .await;
}

fn member(c: &TestCluster, nodes: &[u64]) -> (ConsumerConfig, GroupConfig) {
    let consumer = ConsumerConfig {
        group: Some(GROUP.into()),
        offset_reset: OffsetReset::Earliest,
        max_wait: Duration::from_millis(100),
        auto_commit: None,
        ..ConsumerConfig::with_brokers(nodes.iter().map(|&i| c.node(i).addr.to_string()))
    };
    let group = GroupConfig {
        session_timeout: Duration::from_secs(2),
        heartbeat_interval: Duration::from_millis(300),
        rebalance_timeout: Duration::from_secs(5),
        ..GroupConfig::new(vec![TOPIC.into()])
    };
    (consumer, group)
}

/// Polls `m` until it has read `want` records per partition; returns the
/// offsets read per partition.
async fn read(m: &mut GroupConsumer, want: usize, within: Duration) -> BTreeMap<u32, Vec<u64>> {
    let deadline = Instant::now() + within;
    let mut got: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    while (0..P).any(|p| got.get(&p).map_or(0, Vec::len) < want) {
        assert!(
            Instant::now() < deadline,
            "read {want} records per partition within {within:?}: {got:?}"
        );
        match m.poll().await {
            Ok(records) => {
                for r in records {
                    got.entry(r.partition).or_default().push(r.offset());
                }
            }
            // The coordinator or a leader moved: the member retries.
            Err(e) => {
                eprintln!("poll: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    got
}

/// The offsets `GROUP` committed for the partitions of `TOPIC`, read at
/// the coordinator the nodes of `ids` agree on, once every one is `want`
/// (within 30 s); returns the last answer.
async fn committed(c: &TestCluster, ids: &[u64], want: u64) -> Vec<Option<u64>> {
    c.committed_offsets(ids, GROUP, TOPIC, P, |got| {
        got.iter().all(|o| *o == Some(want))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_group_resumes_at_its_committed_offsets_after_its_coordinator_is_killed() {
    let mut c = TestCluster::start(3);
    c.create_replicated(TOPIC, P, 3, Default::default()).await;
    const FIRST: u64 = 30;
    produce(&c, &[1, 2, 3], 0, FIRST).await;

    let old = c.agreed_coordinator(&[1, 2, 3], GROUP).await;
    let (consumer, group) = member(&c, &[old]);
    let mut a = GroupConsumer::connect(consumer, group).await.unwrap();
    let read_a = read(&mut a, FIRST as usize, Duration::from_secs(60)).await;
    for p in 0..P {
        assert_eq!(read_a[&p], (0..FIRST).collect::<Vec<_>>(), "partition {p}");
    }
    a.commit().await.unwrap();
    assert_eq!(
        committed(&c, &[1, 2, 3], FIRST).await,
        [Some(FIRST); P as usize]
    );
    // The coordinator now (leaders may have moved since the member joined).
    let old = c.agreed_coordinator(&[1, 2, 3], GROUP).await;
    // The member goes away without leaving (its session ends on the new
    // coordinator), then its coordinator dies.
    drop(a);
    c.kill(old);
    let killed = Instant::now();
    let live: Vec<u64> = (1..=3).filter(|&i| i != old).collect();

    const SECOND: u64 = 20;
    produce(&c, &live, FIRST * u64::from(P), SECOND).await;

    // A new member, bootstrapped at a surviving node, joins at the new
    // coordinator and resumes where the group committed: nothing read
    // twice, nothing skipped.
    let (consumer, group) = member(&c, &live[..1]);
    let mut b = GroupConsumer::connect(consumer, group).await.unwrap();
    let read_b = read(&mut b, SECOND as usize, Duration::from_secs(30)).await;
    let took = killed.elapsed();
    for p in 0..P {
        assert_eq!(
            read_b[&p],
            (FIRST..FIRST + SECOND).collect::<Vec<_>>(),
            "partition {p} resumes at the committed offset"
        );
    }
    eprintln!("resumed {took:?} after the coordinator was killed");
    let new = c.agreed_coordinator(&live, GROUP).await;
    assert_ne!(new, old);
    // Commits go on at the new coordinator.
    b.commit().await.unwrap();
    assert_eq!(
        committed(&c, &live, FIRST + SECOND).await,
        [Some(FIRST + SECOND); P as usize]
    );
    b.close().await.unwrap();

    // The killed node comes back; every node names one coordinator, which
    // has the latest commits.
    c.restart(old);
    assert_eq!(
        committed(&c, &[1, 2, 3], FIRST + SECOND).await,
        [Some(FIRST + SECOND); P as usize]
    );
}

fn kafka_coordinator(c: &TestCluster, at: u64, group: &str) -> Option<i32> {
    let mut s = std::net::TcpStream::connect(c.node(at).kafka_addr.unwrap()).ok()?;
    let r: FindCoordinatorResponse = call(
        &mut s,
        1,
        &mut FindCoordinatorRequest {
            key: group.into(),
            key_type: 0,
            coordinator_keys: Vec::new(),
        },
    );
    let co = r.coordinators.first()?;
    (co.error_code == 0).then_some(co.node_id)
}

#[test]
fn offsets_committed_through_the_kafka_listener_survive_a_coordinator_kill() {
    const KGROUP: &str = "kafka-failover";
    let mut c = TestCluster::start_with_kafka(3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(c.create_replicated(TOPIC, P, 3, Default::default()));
    let wait_coordinator = |c: &TestCluster, at: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(n) = kafka_coordinator(c, at, KGROUP) {
                return n as u64;
            }
            assert!(Instant::now() < deadline, "a coordinator is named");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let old = wait_coordinator(&c, 1);
    let mut s = std::net::TcpStream::connect(c.node(old).kafka_addr.unwrap()).unwrap();
    // OffsetCommit v2 with generation -1: a tool's commit, no members.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r: OffsetCommitResponse = call(
            &mut s,
            2,
            &mut OffsetCommitRequest {
                group_id: KGROUP.into(),
                generation_id: -1,
                member_id: String::new(),
                group_instance_id: None,
                retention_time_ms: -1,
                topics: vec![OffsetCommitTopic {
                    name: TOPIC.into(),
                    partitions: (0..P as i32)
                        .map(|p| OffsetCommitPartition {
                            partition_index: p,
                            committed_offset: 7 + i64::from(p),
                            commit_timestamp_ms: -1,
                            committed_leader_epoch: -1,
                            committed_metadata: Some("m".into()),
                        })
                        .collect(),
                }],
            },
        );
        let codes: Vec<i16> = r.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        if codes.iter().all(|c| *c == 0) {
            break;
        }
        assert!(Instant::now() < deadline, "commit accepted: {codes:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // DescribeLogDirs leaves the internal topic out of "everything", as
    // Metadata does, and tells it when it is asked for by name.
    {
        use sluice_protocol::kafka::describe_log_dirs::{
            DescribableLogDirTopic, DescribeLogDirsRequest, DescribeLogDirsResponse,
        };
        let names = |r: &DescribeLogDirsResponse| -> Vec<String> {
            r.results[0].topics.iter().map(|t| t.name.clone()).collect()
        };
        let r: DescribeLogDirsResponse =
            call(&mut s, 4, &mut DescribeLogDirsRequest { topics: None });
        assert_eq!(names(&r), [TOPIC], "{r:?}");
        let r: DescribeLogDirsResponse = call(
            &mut s,
            4,
            &mut DescribeLogDirsRequest {
                topics: Some(vec![DescribableLogDirTopic {
                    topic: INTERNAL.into(),
                    partitions: (0..64).collect(),
                }]),
            },
        );
        assert_eq!(names(&r), [INTERNAL], "{r:?}");
    }
    c.kill(old);
    let live: Vec<u64> = (1..=3).filter(|&i| i != old).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let at = live[0];
        let new = kafka_coordinator(&c, at, KGROUP);
        if let Some(new) = new.map(|n| n as u64).filter(|n| live.contains(n)) {
            let mut s = std::net::TcpStream::connect(c.node(new).kafka_addr.unwrap()).unwrap();
            let r: OffsetFetchResponse = call(
                &mut s,
                1,
                &mut OffsetFetchRequest {
                    groups: vec![OffsetFetchGroup {
                        group_id: KGROUP.into(),
                        member_id: None,
                        member_epoch: -1,
                        topics: Some(vec![OffsetFetchTopic {
                            name: TOPIC.into(),
                            partition_indexes: (0..P as i32).collect(),
                        }]),
                    }],
                    require_stable: false,
                },
            );
            let got: Vec<(i64, i16)> = r.groups[0].topics[0]
                .partitions
                .iter()
                .map(|p| (p.committed_offset, p.error_code))
                .collect();
            if got.iter().all(|(_, e)| *e == 0) {
                assert_eq!(got, [(7, 0), (8, 0)], "{r:?}");
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the new coordinator answers OffsetFetch"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A cluster's first group calls, none of them a FindCoordinator: each waits
/// for what the first one sets off (the group-state topic's creation, its
/// partitions' elections, the new coordinator's load) and is answered,
/// served or `NotCoordinator` naming the coordinator, never
/// `CoordinatorNotAvailable` for a client to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clusters_first_group_calls_are_answered_not_refused() {
    let c = TestCluster::start(3);
    c.create_replicated("plain", 1, 3, Default::default()).await;
    c.wait_until(Duration::from_secs(30), "plain topic on every node", |c| {
        (1..=3).all(|id| c.topic(id, "plain").is_some())
    });
    assert!((1..=3).all(|id| c.topic(id, INTERNAL).is_none()));
    let mut at1 = c.node(1).connect().await;
    let mut at2 = c.node(2).connect().await;
    let mut at3 = c.node(3).connect().await;
    let asked = Instant::now();
    let (beat, fetched, described) = tokio::join!(
        at1.heartbeat("first-a", 0, "m", None),
        at2.offset_fetch("first-b", None),
        at3.describe_groups(vec!["first-c".into(), "first-d".into()]),
    );
    // Within the broker's wait (3 s): answered, not refused at its end.
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    let answered = |what: &str, r: Result<Option<ErrorCode>, ClientError>| match r {
        Ok(code) => {
            if let Some(code) = code {
                assert_eq!(code, ErrorCode::UnknownMemberId, "{what}");
            }
        }
        Err(ClientError::Broker { code, message }) => {
            assert_eq!(code, ErrorCode::NotCoordinator, "{what}: {message}");
            assert!(message.contains("coordinated by node"), "{what}: {message}");
        }
        Err(e) => panic!("{what}: {e:?}"),
    };
    answered("heartbeat", beat.map(|b| Some(b.error_code)));
    answered("offset fetch", fetched.map(|_| None));
    answered("describe groups", described.map(|_| None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_produce_to_delete_or_create_the_group_state_topic() {
    let c = TestCluster::start(3);
    // Not created while no client asked for a coordinator: a topic created
    // after the cluster formed reaches every node, the group-state topic
    // does not.
    c.create_replicated("plain", 1, 3, Default::default()).await;
    c.wait_until(Duration::from_secs(30), "plain topic on every node", |c| {
        (1..=3).all(|id| c.topic(id, "plain").is_some())
    });
    assert!(
        (1..=3).all(|id| c.topic(id, INTERNAL).is_none()),
        "created before any coordinator was asked for"
    );
    // The first FindCoordinator creates it (an operator can describe it),
    // and is answered once the group's partition has a leader: clients
    // need not retry.
    let asked = Instant::now();
    let found = c
        .node(2)
        .connect()
        .await
        .find_coordinator("g")
        .await
        .unwrap();
    assert!((1..=3).contains(&found.node_id), "{found:?}");
    // Within the broker's wait for a coordinator (3 s), not after it.
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    c.wait_until(Duration::from_secs(30), "group-state topic created", |c| {
        (1..=3).all(|id| c.topic(id, INTERNAL).is_some())
    });
    let mut conn = c.node(1).connect().await;
    let described = conn.metadata(Some(vec![INTERNAL.into()])).await.unwrap();
    assert_eq!(described.topics[0].error_code, ErrorCode::None);
    assert_eq!(described.topics[0].partitions.len(), 8);
    // Not listed with the others.
    let all = conn.metadata(None).await.unwrap();
    assert!(
        all.topics.iter().all(|t| t.name != INTERNAL),
        "{:?}",
        all.topics
    );
    // Produce: refused on every node, leader or not.
    let mut b = sluice_protocol::batch::BatchBuilder::new();
    b.push(&sluice_protocol::batch::NewRecord {
        timestamp: 1,
        key: Some(b"k"),
        value: Some(b"v"),
        headers: &[],
    });
    let batch = b.finish();
    for id in 1..=3 {
        let mut conn = c.node(id).connect().await;
        let r = conn
            .produce(WireAcks::All, 5000, &[(INTERNAL, 0, &batch[..])])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            r.partitions[0].error_code,
            ErrorCode::InvalidTopicName,
            "node {id}"
        );
    }
    // Delete and create: refused.
    let r = conn.delete_topics(vec![INTERNAL.into()]).await.unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::InvalidTopicName);
    let r = conn
        .create_topics(vec![NewTopic {
            name: INTERNAL.into(),
            partitions: 1,
            config: Default::default(),
            replication_factor: Some(1),
        }])
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::InvalidTopicName);
    assert!(c.topic(1, INTERNAL).is_some(), "still there");
}

/// A confluent-kafka group consumer commits, the group's coordinator is
/// SIGKILLed, and the next member (bootstrapped at a surviving node)
/// resumes at the committed offset. Needs `SLUICE_KAFKA_PYTHON`.
#[test]
fn a_kafka_client_group_resumes_after_its_coordinator_is_killed() {
    let Some(py) = sluice_tests::kafka::python() else {
        return;
    };
    const KGROUP: &str = "confluent-failover";
    const KTOPIC: &str = "kfailover";
    let mut c = TestCluster::start_with_kafka(3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        c.create_replicated(KTOPIC, 1, 3, Default::default()).await;
        let producer = Producer::new(ProducerConfig {
            acks: Acks::All,
            linger: Duration::from_millis(1),
            ..ProducerConfig::with_brokers((1..=3).map(|i| c.node(i).addr.to_string()))
        });
        for i in 0..20 {
            let v = format!("v-{i}");
            producer
                .send_record(ProducerRecord {
                    topic: KTOPIC,
                    partition: Some(0),
                    value: Some(v.as_bytes()),
                    ..Default::default()
                })
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
    let all = (1..=3)
        .map(|i| c.node(i).kafka_addr.unwrap().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let out = run_clients(&py, &["group-commit", &all, KTOPIC, KGROUP, "10"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["committed"]["0"], 10, "{doc}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let old = loop {
        if let Some(n) = kafka_coordinator(&c, 1, KGROUP) {
            break n as u64;
        }
        assert!(Instant::now() < deadline, "a coordinator is named");
        std::thread::sleep(Duration::from_millis(50));
    };
    c.kill(old);
    let survivor = (1..=3).find(|&i| i != old).unwrap();
    let at = c.node(survivor).kafka_addr.unwrap().to_string();
    let out = run_clients(&py, &["group-commit", &at, KTOPIC, KGROUP, "10"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let values: Vec<&str> = doc["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let want: Vec<String> = (10..20).map(|i| format!("v-{i}")).collect();
    assert_eq!(values, want, "resumes at the committed offset: {doc}");
    assert_eq!(doc["committed"]["0"], 20, "{doc}");
}

/// A group's coordinator is the leader of its group-state partition, which
/// may be a node that hosts no replica of the topics the group consumes:
/// it still accepts and serves their commits (the controller's metadata,
/// not its own topics, says which partitions exist).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_without_a_replica_of_the_topic_serves_and_forgets_its_commits() {
    let c = TestCluster::start(3);
    c.create_replicated("solo", 1, 1, Default::default()).await;
    let holder = c
        .wait_partition_leader(&[1, 2, 3], "solo", Duration::from_secs(30))
        .await;
    // A group coordinated by a node that does not hold "solo".
    let mut chosen = None;
    for i in 0..64 {
        let group = format!("elsewhere-{i}");
        let coord = c.agreed_coordinator(&[1, 2, 3], &group).await;
        if coord != holder {
            chosen = Some((group, coord));
            break;
        }
    }
    let (group, coord) = chosen.expect("a group coordinated away from the topic's only replica");
    let mut conn = c.node(coord).connect().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let committed = loop {
        let r = conn
            .offset_commit(
                &group,
                vec![CommitPartition {
                    topic: "solo".into(),
                    partition: 0,
                    offset: 7,
                    metadata: "m".into(),
                }],
            )
            .await;
        match r {
            // The coordinator may still be loading the partition.
            Err(sluice_client::ClientError::Broker { code, .. })
                if code.is_retriable() && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            r => break r.expect("offset commit"),
        }
    };
    assert_eq!(
        committed.partitions[0].error_code,
        ErrorCode::None,
        "{committed:?}"
    );
    // A partition the topic does not have is still refused.
    let r = conn
        .offset_commit(
            &group,
            vec![CommitPartition {
                topic: "solo".into(),
                partition: 1,
                offset: 7,
                metadata: String::new(),
            }],
        )
        .await
        .expect("offset commit");
    assert_eq!(
        r.partitions[0].error_code,
        ErrorCode::UnknownTopicOrPartition
    );
    let fetched = conn.offset_fetch(&group, None).await.expect("offset fetch");
    assert_eq!(fetched.partitions.len(), 1, "{fetched:?}");
    assert_eq!(fetched.partitions[0].offset, Some(7), "{fetched:?}");
    // Deleting the topic forgets its committed offsets at the coordinator,
    // which hosts no replica of it.
    let r = conn.delete_topics(vec!["solo".into()]).await.unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fetched = conn.offset_fetch(&group, None).await.expect("offset fetch");
        if fetched.partitions.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "offsets of the deleted topic forgotten: {fetched:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
