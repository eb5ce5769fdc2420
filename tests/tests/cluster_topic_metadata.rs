//! Metadata on every node of a cluster: a node holding no replica of a
//! topic still lists it, with the leader its partition group reported to
//! the controller, and refuses produce to it naming that leader; after the
//! leader of a replicated partition is SIGKILLed, every surviving node
//! (replica or not) names the new leader within a bound.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::metadata::PartitionMetadata;
use sluice_protocol::wire::produce::Acks;
use sluice_tests::batch_of;
use sluice_tests::cluster::TestCluster;

const WAIT: Duration = Duration::from_secs(30);

async fn create(c: &TestCluster, via: u64, name: &str, replication_factor: u16) {
    let r = c
        .node(via)
        .connect()
        .await
        .create_topics(vec![NewTopic {
            name: name.into(),
            partitions: 1,
            config: Default::default(),
            replication_factor: Some(replication_factor),
        }])
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");
}

/// Partition 0 of `topic` as node `id`'s native Metadata shows it.
async fn seen_by(c: &TestCluster, id: u64, topic: &str) -> Option<PartitionMetadata> {
    let mut conn = sluice_client::Connection::connect(c.node(id).addr)
        .await
        .ok()?;
    let m = conn.metadata(Some(vec![topic.into()])).await.ok()?;
    let t = m.topics.into_iter().next()?;
    if t.error_code != ErrorCode::None {
        return None;
    }
    t.partitions.into_iter().next()
}

/// Waits until every node of `ids` names the same leader for partition 0
/// of `topic`, one that `accept` takes; returns it and how long it took.
async fn wait_agreed(
    c: &TestCluster,
    ids: &[u64],
    topic: &str,
    accept: impl Fn(u64) -> bool,
) -> (u64, Duration) {
    let start = Instant::now();
    loop {
        let mut seen = Vec::new();
        for &id in ids {
            seen.push(seen_by(c, id, topic).await.and_then(|p| p.leader));
        }
        if let Some(Some(l)) = seen.first() {
            if accept(*l) && seen.iter().all(|s| *s == Some(*l)) {
                return (*l, start.elapsed());
            }
        }
        assert!(
            start.elapsed() < WAIT,
            "nodes {ids:?} never agreed on a leader of {topic}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The replicas of partition 0 of `topic` in node `id`'s controller view.
fn replicas(c: &TestCluster, id: u64, topic: &str) -> Vec<u64> {
    c.wait_until(WAIT, "the topic in the controller metadata", |c| {
        c.topic(id, topic).is_some()
    });
    c.topic(id, topic).unwrap()["replicas"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_lists_every_topic_and_names_its_leader() {
    let mut c = TestCluster::start(4);
    let all = [1, 2, 3, 4];

    // One replica: only node `a` holds it; the others name it as leader.
    // CreateTopics answers once the node asked knows the new leaders.
    create(&c, 1, "solo", 1).await;
    let p = seen_by(&c, 1, "solo").await.unwrap();
    assert!(
        p.leader.is_some(),
        "no leader right after CreateTopics: {p:?}"
    );
    let a = replicas(&c, 1, "solo")[0];
    let (leader, _) = wait_agreed(&c, &all, "solo", |l| l == a).await;
    assert_eq!(leader, a);
    for id in all {
        let p = seen_by(&c, id, "solo").await.unwrap();
        assert_eq!(p.replicas, [a], "node {id}");
        assert_eq!(p.isr, [a], "node {id}");
        assert!(p.leader_epoch > 0, "node {id}: {p:?}");
    }
    // A node without the replica refuses produce and fetch, naming `a`.
    let other = all.into_iter().find(|&id| id != a).unwrap();
    let mut conn = c.node(other).connect().await;
    let r = conn
        .produce(Acks::All, 2000, &[("solo", 0, &batch_of(&["x"]))])
        .await
        .unwrap()
        .unwrap();
    let p = &r.partitions[0];
    assert_eq!(p.error_code, ErrorCode::NotLeaderForPartition, "{p:?}");
    let message = p.message.clone().unwrap_or_default();
    assert!(message.contains(&format!("node {a}")), "{message}");
    // The leader takes it.
    let mut conn = c.node(a).connect().await;
    let r = conn
        .produce(Acks::All, 5000, &[("solo", 0, &batch_of(&["x"]))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None, "{r:?}");

    // Three replicas on four nodes: one node holds none and learns each
    // new leader from the controller.
    create(&c, 2, "trio", 3).await;
    let p = seen_by(&c, 2, "trio").await.unwrap();
    assert!(
        p.leader.is_some(),
        "no leader right after CreateTopics: {p:?}"
    );
    let hosts = replicas(&c, 1, "trio");
    let outsider = all.into_iter().find(|id| !hosts.contains(id)).unwrap();
    let (old, _) = wait_agreed(&c, &all, "trio", |l| hosts.contains(&l)).await;
    // Every node, leader, followers and the outsider alike, names the same
    // in-sync set: all three replicas once the followers caught up (a
    // follower gives the set its leader reported).
    let mut sorted = hosts.clone();
    sorted.sort_unstable();
    let start = Instant::now();
    loop {
        let mut seen = Vec::new();
        for id in all {
            seen.push(seen_by(&c, id, "trio").await.map(|p| p.isr));
        }
        if seen.iter().all(|s| s.as_ref() == Some(&sorted)) {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "nodes {all:?} never all named {sorted:?} in sync: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.kill(old);
    let survivors: Vec<u64> = all.into_iter().filter(|&id| id != old).collect();
    let (new, took) = wait_agreed(&c, &survivors, "trio", |l| l != old).await;
    assert!(hosts.contains(&new) && new != outsider);
    eprintln!(
        "leader {old} killed: nodes {survivors:?} (node {outsider} holds no replica) \
         named the new leader {new} after {took:?}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    let p = seen_by(&c, outsider, "trio").await.unwrap();
    assert_eq!(p.replicas, hosts);
    assert!(p.isr.contains(&new), "{p:?}");
}
