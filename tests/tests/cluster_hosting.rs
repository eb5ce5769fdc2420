//! Hosting per partition: on a 4-node cluster, a topic of 4 partitions
//! with replication factor 2 puts on each node the directories of exactly
//! the partitions it holds a replica of. A node asked to produce, fetch or
//! list offsets of a partition it does not host answers
//! `NotLeaderForPartition` (produce naming the leader); native and Kafka
//! Metadata still list every partition with its leader and replicas. After
//! a restart the node keeps the same directories, its partition groups
//! elect again, and it does not try to form them again (its log says
//! each replica it opened was not fresh).
//!
//! `sluice topic describe` on one node shows every partition, the state
//! of those it does not host asked of their leaders, all at once: with
//! those leaders hung, the client library's description still ends within
//! one request timeout.
//!
//! The Kafka Metadata part needs the Python of `SLUICE_KAFKA_PYTHON` (see
//! `kafka_clients.rs`) and is skipped without it.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::list_offsets::{ListOffsetsPartition, OffsetSpec};
use sluice_protocol::wire::produce::Acks;
use sluice_tests::batch_of;
use sluice_tests::cluster::{TestCluster, partition_dir};
use sluice_tests::kafka::{python, run_clients};

const TOPIC: &str = "sparse";
const PARTITIONS: u32 = 4;
const WAIT: Duration = Duration::from_secs(60);

/// Leaders of every partition of `TOPIC` as node `id`'s native Metadata
/// names them (`None` while any has none).
async fn leaders(c: &TestCluster, id: u64) -> Option<Vec<u64>> {
    let mut conn = sluice_client::Connection::connect(c.node(id).addr)
        .await
        .ok()?;
    let m = conn.metadata(Some(vec![TOPIC.into()])).await.ok()?;
    let t = m.topics.first()?;
    if t.partitions.len() != PARTITIONS as usize {
        return None;
    }
    t.partitions.iter().map(|p| p.leader).collect()
}

/// Waits until every node names the same leader of every partition, one
/// of the partition's replicas; returns them.
async fn agreed_leaders(c: &TestCluster, replicas: &[Vec<u64>]) -> Vec<u64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut seen = Vec::new();
        for id in 1..=4 {
            seen.push(leaders(c, id).await);
        }
        if let Some(Some(l)) = seen.first() {
            let valid = l.iter().zip(replicas).all(|(l, r)| r.contains(l));
            if valid && seen.iter().all(|s| s.as_ref() == Some(l)) {
                return l.clone();
            }
        }
        assert!(Instant::now() < deadline, "no agreed leaders: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The partitions of `TOPIC` with a directory in node `id`'s data dir.
fn dirs(c: &TestCluster, id: u64) -> BTreeSet<u32> {
    (0..PARTITIONS)
        .filter(|p| partition_dir(&c.node(id).data_dir, &format!("{TOPIC}-{p}")).is_some())
        .collect()
}

/// Produce, fetch and ListOffsets of `partition` on node `id` are refused
/// with `NotLeaderForPartition`; the produce refusal names `leader`.
async fn refused_on(c: &TestCluster, id: u64, partition: u32, leader: u64) {
    let mut conn = c.node(id).connect().await;
    let r = conn
        .produce(Acks::All, 2000, &[(TOPIC, partition, &batch_of(&["x"]))])
        .await
        .unwrap()
        .unwrap();
    let p = &r.partitions[0];
    assert_eq!(p.error_code, ErrorCode::NotLeaderForPartition, "{p:?}");
    let message = p.message.clone().unwrap_or_default();
    assert!(message.contains(&format!("node {leader}")), "{message}");
    let f = conn
        .fetch(
            0,
            0,
            1 << 20,
            vec![FetchPartition {
                topic: TOPIC.into(),
                partition,
                offset: 0,
                max_bytes: 1 << 20,
            }],
        )
        .await
        .unwrap();
    assert_eq!(f[0].error_code, ErrorCode::NotLeaderForPartition);
    let l = conn
        .list_offsets(vec![ListOffsetsPartition {
            topic: TOPIC.into(),
            partition,
            spec: OffsetSpec::Latest,
        }])
        .await
        .unwrap();
    assert_eq!(
        l.partitions[0].error_code,
        ErrorCode::NotLeaderForPartition,
        "{l:?}"
    );
}

/// Kafka Metadata through node `id`: every partition without error, with
/// the replicas of the controller's metadata and the leaders that every
/// node's native Metadata agrees on (asked again until both views agree:
/// each node learns a new leader on its own time).
async fn kafka_metadata_agrees(c: &TestCluster, id: u64, replicas: &[Vec<u64>]) {
    let Some(python) = python() else { return };
    let bootstrap = c.node(id).kafka_addr.unwrap().to_string();
    let deadline = Instant::now() + WAIT;
    loop {
        let leaders = agreed_leaders(c, replicas).await;
        let out = run_clients(&python, &["metadata", &bootstrap, TOPIC]);
        let md: Value = serde_json::from_str(&out).unwrap();
        let parts = md["partitions"].as_array().unwrap();
        assert_eq!(parts.len(), PARTITIONS as usize, "{md}");
        for (p, part) in parts.iter().enumerate() {
            assert_eq!(part["id"].as_u64(), Some(p as u64), "{md}");
            assert_eq!(part["error"], Value::Null, "{md}");
            let mut got: Vec<u64> = part["replicas"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_u64().unwrap())
                .collect();
            let mut want = replicas[p].clone();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{md}");
        }
        let kafka_leaders: Vec<Option<u64>> = parts.iter().map(|p| p["leader"].as_u64()).collect();
        if kafka_leaders
            .iter()
            .zip(&leaders)
            .all(|(k, l)| *k == Some(*l))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Kafka Metadata leaders {kafka_leaders:?}, native {leaders:?}: {md}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `sluice topic describe TOPIC --output json` against node `id`: its
/// partition rows.
fn described_on(c: &TestCluster, id: u64) -> Vec<Value> {
    let out = sluice_tests::sluice_ok(
        &c.node(id).addr.to_string(),
        &["topic", "describe", TOPIC, "--output", "json"],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    v["partitions"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_hosts_only_its_partitions_across_a_restart() {
    let mut c = TestCluster::start_with_kafka(4);
    c.create_replicated(TOPIC, PARTITIONS, 2, Default::default())
        .await;
    c.wait_until(WAIT, "every node to apply the topic", |c| {
        (1..=4).all(|id| c.topic(id, TOPIC).is_some())
    });
    let replicas: Vec<Vec<u64>> = c.topic(1, TOPIC).unwrap()["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_u64().unwrap())
                .collect()
        })
        .collect();
    let hosted = |id: u64| -> BTreeSet<u32> {
        (0..PARTITIONS)
            .filter(|&p| replicas[p as usize].contains(&id))
            .collect()
    };
    let leaders = agreed_leaders(&c, &replicas).await;
    eprintln!("replicas {replicas:?}, leaders {leaders:?}");
    for id in 1..=4 {
        assert!(hosted(id).len() < PARTITIONS as usize, "node {id}");
        assert_eq!(dirs(&c, id), hosted(id), "node {id}'s partition dirs");
    }

    // Node 1 refuses what it does not host, naming the leader.
    let unhosted: Vec<u32> = (0..PARTITIONS).filter(|p| !hosted(1).contains(p)).collect();
    for &p in &unhosted {
        refused_on(&c, 1, p, leaders[p as usize]).await;
    }
    // Its hosted partitions are served by their leaders.
    for p in hosted(1) {
        let mut conn = c.node(leaders[p as usize]).connect().await;
        let r = conn
            .produce(Acks::All, 10_000, &[(TOPIC, p, &batch_of(&["v"]))])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None, "{r:?}");
    }
    kafka_metadata_agrees(&c, 1, &replicas).await;

    // Describe on node 1 shows every partition: those it does not host
    // with the state their leaders keep (one record each, committed).
    for &p in &unhosted {
        let mut conn = c.node(leaders[p as usize]).connect().await;
        let r = conn
            .produce(Acks::All, 10_000, &[(TOPIC, p, &batch_of(&["u"]))])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None, "{r:?}");
    }
    let rows = described_on(&c, 1);
    assert_eq!(rows.len(), PARTITIONS as usize, "{rows:?}");
    for (p, row) in rows.iter().enumerate() {
        assert_eq!(row["partition"], p as u64, "{rows:?}");
        assert_eq!(row["leader"], leaders[p], "{rows:?}");
        assert!(row["log_end_offset"].is_u64(), "{rows:?}");
        if unhosted.contains(&(p as u32)) {
            assert_eq!(row["high_watermark"], 1, "partition {p}: {rows:?}");
        }
    }

    // A clean restart of node 1: the same directories, groups elect again
    // without forming them anew.
    let log_before = c.node(1).log().len();
    c.node_mut(1).stop();
    c.restart(1);
    let leaders = agreed_leaders(&c, &replicas).await;
    assert_eq!(
        dirs(&c, 1),
        hosted(1),
        "node 1's partition dirs after restart"
    );
    for &p in &unhosted {
        refused_on(&c, 1, p, leaders[p as usize]).await;
    }
    kafka_metadata_agrees(&c, 1, &replicas).await;
    for p in hosted(1) {
        let mut conn = c.node(leaders[p as usize]).connect().await;
        let r = conn
            .produce(Acks::All, 10_000, &[(TOPIC, p, &batch_of(&["w"]))])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None, "{r:?}");
    }
    let log = c.node(1).log();
    let after = log.get(log_before..).unwrap_or_default();
    let reopened: Vec<&str> = after
        .lines()
        .filter(|l| l.contains("opened partition replica"))
        .collect();
    assert!(
        !reopened.is_empty() && reopened.iter().all(|l| l.contains("fresh=false")),
        "a restarted node must not form its partition groups again:\n{after}"
    );

    // The leaders that hold what node 1 does not host stop answering (a
    // hung process): describing the topic on node 1 still ends within one
    // request timeout, the leaders asked at once, with the rows node 1
    // has.
    let others: BTreeSet<u64> = unhosted
        .iter()
        .map(|&p| leaders[p as usize])
        .filter(|&l| l != 1)
        .collect();
    assert!(!others.is_empty(), "{leaders:?}");
    for &id in &others {
        c.node(id).pause();
    }
    let limit = Duration::from_secs(2);
    let started = Instant::now();
    let state = sluice_client::Admin::connect(&c.node(1).addr.to_string())
        .await
        .unwrap()
        .with_request_timeout(limit)
        .topic_status_from_leaders(TOPIC)
        .await;
    let took = started.elapsed();
    for &id in &others {
        c.node(id).resume();
    }
    let rows: BTreeSet<u32> = state
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.partition)
        .collect();
    assert!(rows.is_superset(&hosted(1)), "{rows:?}");
    assert!(
        rows.iter()
            .all(|p| !unhosted.contains(p) || leaders[*p as usize] == 1),
        "{rows:?}"
    );
    assert!(
        took < limit + Duration::from_millis(1500),
        "{} paused leaders took {took:?}",
        others.len()
    );
}
